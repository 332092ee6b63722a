#include "agents/runtime/bootstrap.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agents/runtime/prompt.h"
#include "common/hardening.h"
#include "spdlog/spdlog.h"
#include "yaml-cpp/yaml.h"

namespace agentd::agent {
namespace {

namespace fs = std::filesystem;

// Runs argv in `dir` with this process's stdout and stderr; returns the wait status.
absl::StatusOr<int> Run(const std::vector<std::string>& argv, const std::string& dir,
                        const llm::CancelToken* cancel) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, dir.c_str());
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own group, to stop it whole; and none of the signals the agent blocks for its
  // signal thread, nor its dispositions.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  pid_t pid = 0;
  // A minimal environment (common/hardening.h): the program runs on a person's behalf
  // and needs none of the agent's variables, tokens or keys.
  std::vector<std::string> env = MinimalEnvironment();
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawnp(&pid, cargv[0], &fa, &attr, cargv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run ", argv[0], ": ", std::strerror(rc)));
  }
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return absl::InternalError("waitpid failed");
    if (cancel != nullptr && cancel->WaitFor(absl::Milliseconds(100))) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      return absl::CancelledError("canceled while the post-check ran");
    }
    if (cancel == nullptr) absl::SleepFor(absl::Milliseconds(100));
  }
}

}  // namespace

absl::StatusOr<std::string> Bootstrap(const std::string& templates_dir,
                                      const std::string& template_name,
                                      const std::string& workspace,
                                      const llm::CancelToken* cancel) {
  fs::path src = fs::path(templates_dir) / "projects" / template_name;
  std::error_code ec;
  if (template_name.empty() || template_name.find('/') != std::string::npos ||
      !fs::is_directory(src, ec)) {
    return absl::NotFoundError(absl::StrCat("no project template \"", template_name, "\" in ",
                                            templates_dir, "/projects"));
  }
  std::vector<std::string> post_check;
  std::string spec_path = (src / "template.yaml").string();
  try {
    YAML::Node spec = YAML::LoadFile(spec_path);
    if (spec["post_check"]) post_check = spec["post_check"].as<std::vector<std::string>>();
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec_path, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
  std::string project = fs::path(workspace).filename().string();
  std::map<std::string, std::string> vars = {{"project", project}};
  int files = 0;
  for (auto it = fs::recursive_directory_iterator(src, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    fs::path rel = fs::relative(it->path(), src);
    if (rel == "template.yaml") continue;
    fs::path dst = fs::path(workspace) / rel;
    if (it->is_directory()) {
      fs::create_directories(dst, ec);
      continue;
    }
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    fs::create_directories(dst.parent_path(), ec);
    std::ofstream out(dst, std::ios::binary | std::ios::trunc);
    out << RenderTemplate(text.str(), vars);
    if (!out) return absl::InternalError(absl::StrCat("writing ", dst.string()));
    fs::permissions(dst, fs::status(it->path()).permissions(), ec);
    ++files;
  }
  std::printf("rendered %d files of template %s into %s\n", files, template_name.c_str(),
              workspace.c_str());
  std::fflush(stdout);
  // The rendered project is the workspace's first commit.
  if (fs::exists(fs::path(workspace) / ".git")) {
    absl::StatusOr<int> add = Run({"git", "add", "-A"}, workspace, cancel);
    absl::StatusOr<int> commit =
        Run({"git", "-c", "user.name=agentd", "-c", "user.email=agentd@localhost", "commit", "-q",
             "-m", absl::StrCat("Bootstrap from template ", template_name)},
            workspace, cancel);
    if (!add.ok() || !commit.ok()) spdlog::warn("committing the rendered template failed");
  }
  if (post_check.empty()) {
    return absl::StrCat("rendered template ", template_name, " (", files, " files) into ",
                        workspace, "; it has no post-check");
  }
  std::printf("post-check: %s\n", absl::StrJoin(post_check, " ").c_str());
  std::fflush(stdout);
  absl::Time start = absl::Now();
  absl::StatusOr<int> st = Run(post_check, workspace, cancel);
  if (!st.ok()) return st.status();
  std::string took = absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(10)));
  if (!WIFEXITED(*st) || WEXITSTATUS(*st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the post-check of template ", template_name, " failed (",
                     WIFEXITED(*st) ? absl::StrCat("exit ", WEXITSTATUS(*st))
                                    : absl::StrCat("signal ", WTERMSIG(*st)),
                     ", after ", took, "); agentctl logs shows its output"));
  }
  return absl::StrCat("rendered template ", template_name, " (", files, " files) into ", workspace,
                      "; post-check passed in ", took);
}

}  // namespace agentd::agent
