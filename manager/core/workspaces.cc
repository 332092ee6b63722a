#include "manager/core/workspaces.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/agent_host.pb.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/paths.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

extern char** environ;

namespace agentd {
namespace {

// Runs git with `args`, waiting for it (on a provisioning thread). Errors carry
// git's own message. It runs as agentd, outside any sandbox, on a repository a person
// named: nothing the repository's config or hooks name may run (a post-checkout hook, an
// fsmonitor), and the system's and user's config are not read.
absl::Status Git(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"git",
                                   "-c",
                                   "core.hooksPath=/dev/null",
                                   "-c",
                                   "core.fsmonitor=false",
                                   "-c",
                                   "protocol.allow=never",
                                   "-c",
                                   "core.sshCommand=false"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int err[2];
  if (pipe2(err, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  pid_t pid = 0;
  std::vector<std::string> env = {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"};
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "GIT_")) env.emplace_back(*e);
  }
  std::vector<char*> cenv;
  for (std::string& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  int rc = posix_spawnp(&pid, "git", &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  close(err[1]);
  std::string output;
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(err[0], buf, sizeof(buf))) > 0;) {
      output.append(buf, static_cast<size_t>(std::min<ssize_t>(n, 8192)));
    }
  }
  close(err[0]);
  if (rc != 0) return absl::FailedPreconditionError("git is not installed (needed for workspaces)");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "git ", absl::StrJoin(args, " "), " failed: ", absl::StripAsciiWhitespace(output)));
  }
  return absl::OkStatus();
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Whether `dir` does not exist or holds nothing.
bool IsEmptyOrMissing(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT;
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(d);
  return empty;
}

// Whether the repository at `path` has a commit at HEAD (a worktree is made from one).
bool HasCommit(const std::string& path) {
  return Git({"-C", path, "rev-parse", "--verify", "--quiet", "HEAD"}).ok();
}

}  // namespace

WorkspaceProvisioner::WorkspaceProvisioner(EventLoop* loop, Options options)
    : options_(std::move(options)), jobs_(loop) {}

void WorkspaceProvisioner::Prepare(v1::Workspace requested, std::string goal_id, Done done) {
  jobs_.Run<absl::StatusOr<v1::Workspace>>(
      [options = options_, requested = std::move(requested), goal_id = std::move(goal_id)] {
        return PrepareNow(options, requested, goal_id);
      },
      std::move(done));
}

absl::StatusOr<v1::Workspace> WorkspaceProvisioner::PrepareNow(const Options& options,
                                                               const v1::Workspace& requested,
                                                               const std::string& goal_id) {
  v1::Workspace in = requested;
  if (!in.path().empty() && in.path()[0] == '/') {
    if (absl::Status s = CheckWorkspacePath(in.path(), options.protected_dirs); !s.ok()) {
      return s;
    }
  }
  // No kind: the path decides, as the daemon's host sees it (a browser cannot look). A
  // repository with no commit yet (one an earlier goal's --init-existing made, say) has
  // nothing to branch from: the goal works in it, as that goal did.
  if (in.kind() == v1::WORKSPACE_KIND_UNSPECIFIED && !in.path().empty()) {
    bool repo = access((in.path() + "/.git").c_str(), F_OK) == 0;
    in.set_kind(repo && (in.path()[0] != '/' || HasCommit(in.path()))
                    ? v1::WORKSPACE_KIND_EXISTING_REPO
                    : v1::WORKSPACE_KIND_NEW_DIRECTORY);
  }
  v1::Workspace ws = in;
  std::string dir = absl::StrCat(options.workspaces_dir, "/", goal_id);
  if (in.kind() == v1::WORKSPACE_KIND_EXISTING_REPO) {
    if (in.path().empty() || in.path()[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("workspace.path \"", in.path(), "\" must be an absolute path"));
    }
    if (!IsDir(in.path() + "/.git") && !IsDir(in.path())) {
      return absl::InvalidArgumentError(
          absl::StrCat("workspace.path ", in.path(), " does not exist"));
    }
    // The goal works in a worktree and branch of its own: the repository's checkout is
    // never touched, and the branch holds exactly the goal's commits.
    std::string branch = in.branch().empty() ? absl::StrCat("agentd/", goal_id) : in.branch();
    if (IsDir(in.path() + "/.git") && !HasCommit(in.path())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "workspace ", in.path(),
          " is a git repository with no commit yet, and a goal works in a branch of its own, "
          "made from a commit: commit first (git -C ",
          in.path(), " commit --allow-empty -m start), or give it as a new directory"));
    }
    if (absl::Status s = MakeDirs(DirName(dir), 0700); !s.ok()) return s;
    if (absl::Status s = Git({"-C", in.path(), "worktree", "add", "-q", "-b", branch, dir});
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "workspace ", in.path(), " cannot be used (it must be a git repository): ", s.message()));
    }
    ws.set_path(dir);
    ws.set_branch(branch);
    return ws;
  }
  ws.set_kind(v1::WORKSPACE_KIND_NEW_DIRECTORY);
  if (!in.path().empty()) {
    if (in.path()[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("workspace.path \"", in.path(), "\" must be an absolute path"));
    }
    dir = in.path();
  }
  if (!IsDir(dir + "/.git") && !in.init_existing() && !IsEmptyOrMissing(dir)) {
    // git init would turn a person's folder into a repository, and its files into the
    // goal's first commit: only when they said so.
    return absl::FailedPreconditionError(absl::StrCat(
        "workspace.path ", dir,
        " is a folder with files in it and not a git repository; agentd would run git init "
        "in it. Say so to go ahead (agentctl goal --init-existing; init_existing in the API), "
        "or choose an empty or new folder"));
  }
  if (absl::Status s = MakeDirs(dir, 0755); !s.ok()) return s;
  if (!IsDir(dir + "/.git")) {
    std::string branch = in.branch().empty() ? "main" : in.branch();
    // No template (--template=): git would copy its sample hooks, description and
    // info/exclude into every new workspace, none of which agentd or an agent uses (hooks
    // never run: core.hooksPath). Without them git init takes 3.2 ms instead of 3.9 ms
    // (median of 300, CPU 2.6 ms against 3.2 ms), on the way of every goal given no
    // workspace.
    if (absl::Status s = Git({"init", "-q", "--template=", "-b", branch, dir}); !s.ok()) {
      return s;
    }
    ws.set_branch(branch);
  }
  ws.set_path(dir);
  return ws;
}

namespace {

// `path` as an earlier run may have written it (`--state-dir state/`: relative, with a
// doubled slash) made absolute, without repeated slashes or "." parts.
std::string Tidy(const std::string& path) {
  std::string in = path;
  if (!in.empty() && in[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) in = absl::StrCat(cwd, "/", in);
  }
  std::string out;
  for (absl::string_view part : absl::StrSplit(in, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    absl::StrAppend(&out, "/", part);
  }
  return out.empty() ? "/" : out;
}

// `path` with `from` (a directory) replaced by `to`, when it is `from` or beneath it.
bool Rebase(std::string* path, const std::string& from, const std::string& to) {
  std::string tidy = Tidy(*path);
  if (tidy != from && !absl::StartsWith(tidy, from + "/")) return false;
  *path = to + tidy.substr(from.size());
  return true;
}

// A worktree's .git file names its repository, which names the worktree back: the
// repository learns where the worktree went. Safe to run again.
void RepairWorktree(const std::string& dir) {
  struct stat st {};
  if (lstat((dir + "/.git").c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  if (absl::Status s = Git({"-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-C",
                            dir, "worktree", "repair"});
      !s.ok()) {
    spdlog::warn("workspace {} moved, but its repository was not told: {}", dir, s.message());
  }
}

}  // namespace

absl::Status MoveLegacyWorkspaces(Store* store, const std::string& legacy_dir,
                                  const std::string& workspaces_dir, absl::Time now) {
  struct stat legacy_st {};
  if (lstat(legacy_dir.c_str(), &legacy_st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::InternalError(
        absl::StrCat("cannot look at ", legacy_dir, ": ", std::strerror(errno)));
  }
  // A symlink there (a person moved the workspaces themselves): its entries move out of
  // where it leads, unless that is workspaces_dir already; then the link goes.
  const bool link = S_ISLNK(legacy_st.st_mode);
  bool same_place = false;
  if (link) {
    char a[PATH_MAX], b[PATH_MAX];
    same_place = realpath(legacy_dir.c_str(), a) != nullptr &&
                 realpath(workspaces_dir.c_str(), b) != nullptr && std::strcmp(a, b) == 0;
  }
  DIR* d = same_place ? nullptr : opendir(legacy_dir.c_str());
  if (d == nullptr && !same_place) {
    return absl::InternalError(
        absl::StrCat("cannot read ", legacy_dir, ": ", std::strerror(errno)));
  }
  std::vector<std::string> names;
  while (d != nullptr) {
    dirent* e = readdir(d);
    if (e == nullptr) break;
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      names.emplace_back(e->d_name);
    }
  }
  if (d != nullptr) closedir(d);
  std::sort(names.begin(), names.end());
  if (absl::Status s = MakeDirs(workspaces_dir, 0700); !s.ok()) return s;
  int moved = 0;
  for (const std::string& name : names) {
    std::string from = absl::StrCat(legacy_dir, "/", name);
    std::string to = absl::StrCat(workspaces_dir, "/", name);
    struct stat st {};
    if (lstat(to.c_str(), &st) == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot move the workspace ", from, " out of agentd's state directory: ", to,
                       " already exists. Move one of them aside, then start agentd again"));
    }
    if (rename(from.c_str(), to.c_str()) != 0) {
      int err = errno;
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot move the workspace ", from, " to ", to, ": ", std::strerror(err),
          err == EXDEV ? ". They are on different file systems: move it yourself (mv), or set "
                         "workspaces_dir to a directory on the state directory's file system"
                       : ""));
    }
    ++moved;
  }

  // The records: every task whose workspace was under legacy_dir, and every assignment
  // not yet delivered that carries one.
  absl::StatusOr<std::vector<TaskRow>> tasks = store->LoadTasks();
  if (!tasks.ok()) return tasks.status();
  std::vector<TaskRow> changed_tasks;
  std::vector<std::string> goals;
  std::set<std::string> moved_paths;
  for (TaskRow& row : *tasks) {
    if (row.body.find("/workspaces/") == std::string::npos) continue;
    v1::Task t;
    if (!t.ParseFromString(row.body)) continue;
    std::string path = t.workspace().path();
    if (!Rebase(&path, legacy_dir, workspaces_dir)) continue;
    t.mutable_workspace()->set_path(path);
    row.body = t.SerializeAsString();
    moved_paths.insert(path);
    if (row.parent_id.empty()) goals.push_back(row.id);
    changed_tasks.push_back(std::move(row));
  }
  absl::StatusOr<std::vector<DeliveryRow>> deliveries = store->LoadDeliveries();
  if (!deliveries.ok()) return deliveries.status();
  std::vector<DeliveryRow> changed_deliveries;
  for (DeliveryRow& row : *deliveries) {
    if (row.body.find("/workspaces/") == std::string::npos) continue;
    v1::ConnectResponse c;
    if (!c.ParseFromString(row.body) || !c.has_task_assignment()) continue;
    std::string path = c.task_assignment().task().workspace().path();
    if (!Rebase(&path, legacy_dir, workspaces_dir)) continue;
    c.mutable_task_assignment()->mutable_task()->mutable_workspace()->set_path(path);
    row.body = c.SerializeAsString();
    changed_deliveries.push_back(std::move(row));
  }
  if (!changed_tasks.empty() || !changed_deliveries.empty()) {
    nlohmann::json payload = {{"from", legacy_dir}, {"to", workspaces_dir}, {"goals", goals}};
    absl::StatusOr<int64_t> seq =
        store->RewriteWorkspaceRecords(changed_tasks, changed_deliveries, now, DumpJson(payload));
    if (!seq.ok()) return seq.status();
  }
  // Repaired here, for every goal the records moved, rather than right after its rename:
  // a crash between the two would otherwise leave a worktree its repository lost.
  for (const std::string& path : moved_paths) RepairWorktree(path);
  if ((link ? unlink(legacy_dir.c_str()) : rmdir(legacy_dir.c_str())) != 0 && errno != ENOENT) {
    return absl::InternalError(
        absl::StrCat("cannot remove ", legacy_dir, ": ", std::strerror(errno)));
  }
  if (moved > 0 || !changed_tasks.empty()) {
    spdlog::info("moved {} workspace(s) from {} to {} ({} task record(s) updated)", moved,
                 legacy_dir, workspaces_dir, changed_tasks.size());
  }
  return absl::OkStatus();
}

}  // namespace agentd
