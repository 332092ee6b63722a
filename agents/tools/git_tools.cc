// git.status, git.diff, git.commit, git.checkpoint, git.rollback: the workspace as a git
// repository. Checkpoints are commits of the whole tree (untracked files included,
// ignored ones not) kept under refs/agentd/checkpoints/, made with a private index so the
// agent's staging area and branch are never touched; a rollback puts the files back as
// they were at a checkpoint, removing those made since.
//
// A repository's files are hostile input: its config can name programs git runs
// (core.fsmonitor on every status, hooks, core.pager, diff.external and textconv, clean
// and smudge filters, core.sshCommand, gpg.program…). So git runs in the same sandbox as
// shell.run (bubblewrap: no network, no capabilities, nothing of the machine but the
// system read-only, the workspace and its git directories), with system and global
// config ignored and every setting that runs a program overridden on the command line,
// where config given by the caller beats every file. Other tools cannot write `.git`
// (Workspace refuses; the sandbox binds it read-only for every other program), so what
// the overrides do not cover cannot be planted by the agent in the first place.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agents/tools/shell.h"
#include "agents/tools/tool.h"

namespace agentd::tools {
namespace {

using nlohmann::json;

// Settings that make git run a program, or reach beyond the repository, each set to the
// value that runs nothing. Given as command-line config (GIT_CONFIG_COUNT/KEY/VALUE,
// which git passes on to the git processes it starts itself), they win over the
// repository's own config and includes.
constexpr std::pair<const char*, const char*> kNeutral[] = {
    {"core.fsmonitor", "false"},      // a program run on every status and diff
    {"core.hooksPath", "/dev/null"},  // hooks: no directory, no hooks
    {"core.pager", "cat"},
    {"core.editor", "true"},
    {"sequence.editor", "true"},
    {"core.sshCommand", "false"},
    {"core.askPass", "false"},
    {"credential.helper", ""},    // an empty value clears the list of helpers
    {"protocol.allow", "never"},  // no transport at all: ext::, file://, ssh…
    // diff.external and diff.<driver>.command: git.diff passes --no-ext-diff (an empty
    // diff.external would be run as a program named "").
    {"commit.gpgSign", "false"},  // gpg.program would run on commit
    {"tag.gpgSign", "false"},
    {"log.showSignature", "false"},
    {"gc.auto", "0"},  // no background gc or maintenance after a commit
    {"maintenance.auto", "false"},
    {"submodule.recurse", "false"},  // a submodule's config is not neutralised here
    {"status.submoduleSummary", "false"},
    {"core.quotePath", "off"},
};

// Per-driver settings (filter.<driver>.clean …) that run a program: found in the
// repository's config (`git config --list --name-only`) and each overridden to nothing.
// A filter marked required would fail without its program, so that is overridden too.
bool IsDriverProgram(absl::string_view key, std::string* value) {
  std::string lower = absl::AsciiStrToLower(key);
  auto ends = [&](absl::string_view s) { return absl::EndsWith(lower, s); };
  if (absl::StartsWith(lower, "filter.") &&
      (ends(".clean") || ends(".smudge") || ends(".process"))) {
    *value = "";
    return true;
  }
  if (absl::StartsWith(lower, "filter.") && ends(".required")) {
    *value = "false";
    return true;
  }
  if (absl::StartsWith(lower, "diff.") && (ends(".textconv") || ends(".command"))) {
    *value = "";
    return true;
  }
  if (absl::StartsWith(lower, "merge.") && ends(".driver")) {
    *value = "";
    return true;
  }
  return false;
}

// Where the workspace's repository lives. A `.git` directory is the usual case. A
// `.git` file (`gitdir: PATH`) is a worktree's — how agentd itself gives a goal a branch
// of a person's repository — whose git directory lies outside the workspace, under the
// main repository's common directory (named by `<gitdir>/commondir`): both must be bound
// into the sandbox writable. agentd reads them itself rather than asking git, which
// would mean running git outside the sandbox on a repository not yet checked. Because
// the workspace may be hostile, the layout is held to what `git worktree add` makes
// (the git directory is `<common>/worktrees/<name>`, the common directory holds
// `objects`), and neither may lie inside the workspace, where tools could write them.
struct GitDirs {
  std::string git_dir;               // for GIT_DIR
  std::vector<std::string> outside;  // bound writable into the sandbox
};

std::string RealPath(const std::string& path) {
  char real[PATH_MAX];
  return realpath(path.c_str(), real) == nullptr ? "" : std::string(real);
}

bool IsDir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Beneath(const std::string& path, const std::string& dir) {
  return path == dir || absl::StartsWith(path, dir + "/");
}

// A small regular file outside the workspace (a worktree's commondir), read without
// blocking or following a final symlink.
absl::StatusOr<std::string> ReadSmall(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  absl::StatusOr<FileData> data = ReadRegularFile(fd, path, 4096);
  close(fd);
  if (!data.ok()) return data.status();
  return std::string(absl::StripAsciiWhitespace(data->bytes));
}

absl::StatusOr<GitDirs> FindGitDirs(const Workspace& ws) {
  const std::string& root = ws.root();
  std::string dot_git = root + "/.git";
  struct stat st {};
  if (lstat(dot_git.c_str(), &st) != 0) {
    return absl::FailedPreconditionError("the workspace is not a git repository (it has no .git)");
  }
  if (S_ISDIR(st.st_mode)) return GitDirs{dot_git, {}};
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the workspace's .git is ", FileKind(st.st_mode),
                     ": the git tools work only with a .git directory or a worktree's .git file"));
  }
  auto refuse = [&](const std::string& why) {
    return absl::FailedPreconditionError(
        absl::StrCat("the workspace's .git file does not name a worktree of a repository: ", why,
                     " (the git tools refuse to work on it)"));
  };
  absl::StatusOr<FileData> file = ws.ReadFile(".git", 4096);
  if (!file.ok()) return refuse(std::string(file.status().message()));
  std::string text(absl::StripAsciiWhitespace(file->bytes));
  if (!absl::StartsWith(text, "gitdir: ")) return refuse("it does not start with \"gitdir: \"");
  std::string named = text.substr(8);
  std::string git_dir = RealPath(named[0] == '/' ? named : absl::StrCat(root, "/", named));
  if (git_dir.empty() || !IsDir(git_dir)) return refuse(named + " is not a directory");
  if (Beneath(git_dir, root)) return refuse(named + " lies inside the workspace");
  absl::StatusOr<std::string> commondir = ReadSmall(git_dir + "/commondir");
  std::string common;
  if (commondir.ok()) {
    common = RealPath(absl::StartsWith(*commondir, "/") ? *commondir
                                                        : absl::StrCat(git_dir, "/", *commondir));
    if (common.empty() || RealPath(ParentOf(git_dir)) != common + "/worktrees") {
      return refuse(absl::StrCat(git_dir,
                                 " is not a worktree of the repository its commondir "
                                 "names"));
    }
  } else {
    common = git_dir;  // a separate git directory (git init --separate-git-dir)
  }
  if (!IsDir(common + "/objects")) return refuse(common + " holds no objects");
  if (Beneath(common, root) || Beneath(root, common)) {
    return refuse(common + " overlaps the workspace");
  }
  return GitDirs{git_dir, {common}};
}

// Runs git for one tool call, in the sandbox, with the repository's program-running
// settings overridden. Removes its scratch directory (private indexes) when destroyed.
class GitRunner {
 public:
  static absl::StatusOr<std::unique_ptr<GitRunner>> For(const ToolContext& ctx) {
    absl::StatusOr<GitDirs> dirs = FindGitDirs(*ctx.workspace);
    if (!dirs.ok()) return dirs.status();
    std::unique_ptr<GitRunner> g(new GitRunner(ctx, *dirs));
    // The drivers the repository's config names (their programs are overridden too).
    absl::StatusOr<ShellResult> keys = g->Run({"config", "--list", "--name-only", "-z"});
    if (!keys.ok()) return keys.status();
    if (keys->exit_code != 0) {
      return absl::FailedPreconditionError(absl::StrCat("git cannot read the repository's config: ",
                                                        absl::StripAsciiWhitespace(keys->output)));
    }
    std::set<std::string> seen;
    for (absl::string_view key : absl::StrSplit(keys->output, '\0', absl::SkipEmpty())) {
      std::string value;
      if (!IsDriverProgram(key, &value) || !seen.insert(std::string(key)).second) continue;
      if (key.find('\n') != absl::string_view::npos) {
        return absl::FailedPreconditionError(
            "the repository's config has a key git tools "
            "cannot override; refusing to run git on it");
      }
      g->config_.emplace_back(std::string(key), value);
    }
    return g;
  }

  ~GitRunner() {
    if (!scratch_.empty()) {
      unlink((scratch_ + "/index").c_str());
      unlink((scratch_ + "/index.lock").c_str());
      rmdir(scratch_.c_str());
    }
  }

  // A private index in a scratch directory of the agent's own (bound into the sandbox),
  // for `GIT_INDEX_FILE=`; kept across this runner's git commands.
  absl::StatusOr<std::string> PrivateIndex() {
    if (scratch_.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      std::string dir =
          absl::StrCat(tmp != nullptr && *tmp != 0 ? tmp : "/tmp", "/agentd-git-XXXXXX");
      if (mkdtemp(dir.data()) == nullptr) {
        return absl::InternalError(
            absl::StrCat("cannot make a scratch directory for git: ", std::strerror(errno)));
      }
      scratch_ = dir;
    }
    return scratch_ + "/index";
  }

  absl::StatusOr<ShellResult> Run(std::vector<std::string> args,
                                  std::vector<std::string> env = {}) const {
    ShellOptions o = *ctx_.shell;
    o.git_writable = true;
    o.writable_binds = dirs_.outside;
    if (!scratch_.empty()) o.writable_binds.push_back(scratch_);
    o.output_cap = 1 << 20;
    o.network = false;
    // Not the agent's environment (HOME, USER…): only what git needs, and what keeps it
    // from reading any config but the repository's.
    o.inherit_env = false;
    o.env = {"GIT_DIR=" + dirs_.git_dir,
             "GIT_WORK_TREE=" + ctx_.workspace->root(),
             "GIT_CONFIG_NOSYSTEM=1",
             "GIT_CONFIG_SYSTEM=/dev/null",
             "GIT_CONFIG_GLOBAL=/dev/null",
             "GIT_ATTR_NOSYSTEM=1",
             "GIT_TERMINAL_PROMPT=0",
             "GIT_PAGER=cat",
             "PAGER=cat",
             "GIT_EDITOR=true"};
    std::vector<std::pair<std::string, std::string>> config;
    for (const auto& [k, v] : kNeutral) config.emplace_back(k, v);
    config.insert(config.end(), config_.begin(), config_.end());
    o.env.push_back(absl::StrCat("GIT_CONFIG_COUNT=", config.size()));
    for (size_t i = 0; i < config.size(); ++i) {
      o.env.push_back(absl::StrCat("GIT_CONFIG_KEY_", i, "=", config[i].first));
      o.env.push_back(absl::StrCat("GIT_CONFIG_VALUE_", i, "=", config[i].second));
    }
    o.env.insert(o.env.end(), env.begin(), env.end());
    // agentd's identity, so that a commit never fails for want of one.
    std::vector<std::string> argv = {
        "git", "--no-pager", "-c", "user.name=agentd", "-c", "user.email=agentd@localhost"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<ShellResult> r = RunProgram(argv, ctx_.workspace->root(), o, ctx_.cancel);
    if (r.ok() && !r->unconfined_why.empty()) note_ = SandboxNote(*r);
    return r;
  }

  // The output of a git command that must succeed, or an error naming it.
  absl::StatusOr<std::string> Ok(std::vector<std::string> args,
                                 std::vector<std::string> env = {}) const {
    std::string what = absl::StrJoin(args, " ");
    absl::StatusOr<ShellResult> r = Run(std::move(args), std::move(env));
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("git ", what, " failed: ", absl::StripAsciiWhitespace(r->output)));
    }
    return r->output;
  }

  // " [NOT SANDBOXED: …]" when git ran unconfined (the "auto" fallback), else "".
  const std::string& note() const { return note_; }

 private:
  GitRunner(const ToolContext& ctx, GitDirs dirs) : ctx_(ctx), dirs_(std::move(dirs)) {}
  const ToolContext& ctx_;
  GitDirs dirs_;
  std::vector<std::pair<std::string, std::string>> config_;  // the drivers' overrides
  std::string scratch_;
  mutable std::string note_;
};

// The tool's answer: the output (or `empty`), or the error; with the sandbox note when
// git ran unconfined.
ToolResult Result(const GitRunner& git, const absl::StatusOr<std::string>& r,
                  const std::string& empty = "") {
  if (!r.ok()) return {absl::StrCat(r.status().message(), git.note()), true};
  return {absl::StrCat(r->empty() ? empty : *r, git.note())};
}

json Schema(json props = json::object(), json required = json::array()) {
  return {{"type", "object"}, {"properties", props}, {"required", required}};
}

// The runner for one call, or the error result that says why there is none.
absl::StatusOr<std::unique_ptr<GitRunner>> Runner(const ToolContext& ctx) {
  return GitRunner::For(ctx);
}

ToolResult Error(const absl::Status& s) { return {std::string(s.message()), true}; }

class GitStatus final : public Tool {
 public:
  std::string name() const override { return "git.status"; }
  std::string description() const override { return "The branch and the changed files."; }
  json schema() const override { return Schema(); }
  bool side_effect() const override { return false; }
  ToolResult Run(const json&, const ToolContext& ctx) const override {
    absl::StatusOr<std::unique_ptr<GitRunner>> git = Runner(ctx);
    if (!git.ok()) return Error(git.status());
    return Result(**git,
                  (*git)->Ok({"status", "--porcelain=v1", "--branch", "--ignore-submodules=all"}));
  }
};

class GitDiff final : public Tool {
 public:
  std::string name() const override { return "git.diff"; }
  std::string description() const override {
    return "The changes not yet committed (staged ones too with staged: true).";
  }
  json schema() const override { return Schema({{"staged", {{"type", "boolean"}}}}); }
  bool side_effect() const override { return false; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    absl::StatusOr<std::unique_ptr<GitRunner>> git = Runner(ctx);
    if (!git.ok()) return Error(git.status());
    // No external diff program and no textconv, whatever the config or attributes say.
    std::vector<std::string> a = {"diff", "--no-ext-diff", "--no-textconv",
                                  "--ignore-submodules=all"};
    if (args.value("staged", false)) a.push_back("--cached");
    return Result(**git, (*git)->Ok(a), "(no changes)");
  }
};

class GitCommit final : public Tool {
 public:
  std::string name() const override { return "git.commit"; }
  std::string description() const override {
    return "Commit every change in the workspace with a message; answers the commit id.";
  }
  json schema() const override {
    return Schema({{"message", {{"type", "string"}}}}, json::array({"message"}));
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string message = args["message"];
    if (absl::StripAsciiWhitespace(message).empty()) return {"the message must not be empty", true};
    absl::StatusOr<std::unique_ptr<GitRunner>> git = Runner(ctx);
    if (!git.ok()) return Error(git.status());
    GitRunner& g = **git;
    if (auto s = g.Ok({"add", "-A"}); !s.ok()) return Result(g, s);
    absl::StatusOr<ShellResult> r =
        g.Run({"commit", "-q", "--no-verify", "--no-gpg-sign", "-m", message});
    if (!r.ok()) return Error(r.status());
    if (r->exit_code != 0) {
      return {absl::StrCat("nothing committed: ", absl::StripAsciiWhitespace(r->output), g.note()),
              true};
    }
    absl::StatusOr<std::string> head = g.Ok({"rev-parse", "HEAD"});
    ToolResult result = Result(g, head.ok() ? absl::StatusOr<std::string>(absl::StrCat(
                                                  "committed ", absl::StripAsciiWhitespace(*head)))
                                            : head);
    // What the commit changed, for the transcript (people, not the model): one more git
    // run in the same sandbox. Its output is bounded by the shell's output cap, and made
    // valid UTF-8 with the rest of the transcript.
    if (head.ok()) {
      absl::StatusOr<std::string> shown =
          g.Ok({"show", "--no-color", "--no-ext-diff", "--no-textconv", "--format=", "HEAD"});
      if (shown.ok()) result.diff = *shown;
    }
    return result;
  }
};

class GitCheckpoint final : public Tool {
 public:
  std::string name() const override { return "git.checkpoint"; }
  std::string description() const override {
    return "Save the workspace as it is now (without committing) under a name, to roll back "
           "to later.";
  }
  json schema() const override {
    return Schema({{"name", {{"type", "string"}}}}, json::array({"name"}));
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string name = args["name"];
    if (name.empty() ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789-_.") != std::string::npos ||
        name.find("..") != std::string::npos) {
      return {"name: letters, digits, '-', '_' and '.' only", true};
    }
    absl::StatusOr<std::unique_ptr<GitRunner>> git = Runner(ctx);
    if (!git.ok()) return Error(git.status());
    GitRunner& g = **git;
    // A private index: the agent's own staging area stays as it is.
    absl::StatusOr<std::string> index = g.PrivateIndex();
    if (!index.ok()) return Error(index.status());
    std::vector<std::string> env = {"GIT_INDEX_FILE=" + *index};
    if (auto s = g.Ok({"add", "-A"}, env); !s.ok()) return Result(g, s);
    absl::StatusOr<std::string> tree = g.Ok({"write-tree"}, env);
    if (!tree.ok()) return Result(g, tree);
    absl::StatusOr<std::string> commit =
        g.Ok({"commit-tree", "--no-gpg-sign", std::string(absl::StripAsciiWhitespace(*tree)), "-m",
              absl::StrCat("agentd checkpoint ", name)});
    if (!commit.ok()) return Result(g, commit);
    std::string id(absl::StripAsciiWhitespace(*commit));
    if (auto s = g.Ok({"update-ref", "refs/agentd/checkpoints/" + name, id}); !s.ok()) {
      return Result(g, s);
    }
    return {absl::StrCat("checkpoint ", name, " saved (", id, ")", g.note())};
  }
};

class GitRollback final : public Tool {
 public:
  std::string name() const override { return "git.rollback"; }
  std::string description() const override {
    return "Put the workspace's files back as they were at a checkpoint (files made since "
           "are removed; ignored files are left alone). `commit`, the id the checkpoint "
           "answered, pins it: the checkpoint's name may have been saved again since.";
  }
  json schema() const override {
    return Schema({{"name", {{"type", "string"}}}, {"commit", {{"type", "string"}}}},
                  json::array({"name"}));
  }
  bool side_effect() const override { return true; }
  ToolResult Run(const json& args, const ToolContext& ctx) const override {
    std::string commit = args.value("commit", "");
    if (!commit.empty() && (commit.find_first_not_of("0123456789abcdef") != std::string::npos ||
                            (commit.size() != 40 && commit.size() != 64))) {
      return {"commit: a full commit id (40 or 64 lowercase hex digits)", true};
    }
    absl::StatusOr<std::unique_ptr<GitRunner>> git = Runner(ctx);
    if (!git.ok()) return Error(git.status());
    GitRunner& g = **git;
    std::string ref = commit.empty() ? "refs/agentd/checkpoints/" + args["name"].get<std::string>()
                                     : commit + "^{commit}";
    absl::StatusOr<std::string> id = g.Ok({"rev-parse", "--verify", "--quiet", ref});
    if (!id.ok()) {
      return {commit.empty() ? absl::StrCat("no checkpoint named \"",
                                            args["name"].get<std::string>(), "\"", g.note())
                             : absl::StrCat("no commit ", commit, g.note()),
              true};
    }
    ref = std::string(absl::StripAsciiWhitespace(*id));
    absl::StatusOr<std::string> then = g.Ok({"ls-tree", "-r", "--name-only", "-z", ref});
    absl::StatusOr<std::string> now =
        g.Ok({"ls-files", "-z", "--cached", "--others", "--exclude-standard"});
    if (!then.ok()) return Result(g, then);
    if (!now.ok()) return Result(g, now);
    std::set<std::string> keep;
    for (absl::string_view f : absl::StrSplit(*then, '\0', absl::SkipEmpty())) keep.emplace(f);
    int removed = 0;
    for (absl::string_view f : absl::StrSplit(*now, '\0', absl::SkipEmpty())) {
      // Through the workspace, like every other tool's write.
      if (keep.count(std::string(f)) == 0 && ctx.workspace->Remove(std::string(f)).ok()) {
        ++removed;
      }
    }
    absl::StatusOr<std::string> index = g.PrivateIndex();
    if (!index.ok()) return Error(index.status());
    std::vector<std::string> env = {"GIT_INDEX_FILE=" + *index};
    absl::StatusOr<std::string> read = g.Ok({"read-tree", ref}, env);
    absl::StatusOr<std::string> out = read.ok() ? g.Ok({"checkout-index", "-a", "-f"}, env) : read;
    if (!out.ok()) return Result(g, out);
    return {absl::StrCat("rolled back to ", args["name"].get<std::string>(), " (",
                         absl::StripAsciiWhitespace(*id), "); removed ", removed,
                         " file(s) made since", g.note())};
  }
};

}  // namespace

std::vector<std::unique_ptr<Tool>> NewGitTools() {
  std::vector<std::unique_ptr<Tool>> out;
  out.push_back(std::make_unique<GitStatus>());
  out.push_back(std::make_unique<GitDiff>());
  out.push_back(std::make_unique<GitCommit>());
  out.push_back(std::make_unique<GitCheckpoint>());
  out.push_back(std::make_unique<GitRollback>());
  return out;
}

}  // namespace agentd::tools
