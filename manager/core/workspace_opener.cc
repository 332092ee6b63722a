#include "manager/core/workspace_opener.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/hardening.h"
#include "common/logging.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

// The program as the daemon's PATH resolves it, or empty.
std::string FindProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Starts `argv` in its own session with stdio on /dev/null, and reaps it from a
// detached thread so it never lingers as a zombie. Returns its pid.
absl::StatusOr<pid_t> SpawnDetached(const std::vector<std::string>& argv) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd <= 2; ++fd) {
    posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  // A minimal environment (common/hardening.h): the program runs on a person's behalf
  // and needs none of agentd's variables, tokens or keys.
  std::vector<std::string> env = MinimalEnvironment();
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }
  std::thread([pid] { waitpid(pid, nullptr, 0); }).detach();
  return pid;
}

}  // namespace

absl::StatusOr<v1::OpenWorkspaceResponse> WorkspaceOpener::Open(const std::string& task_id,
                                                                const std::string& by) {
  absl::StatusOr<v1::Task> task = tasks_->Get(task_id);
  if (!task.ok()) return task.status();
  v1::Task goal = *task;
  if (!goal.goal_id().empty() && goal.goal_id() != goal.id()) {
    absl::StatusOr<v1::Task> g = tasks_->Get(goal.goal_id());
    if (!g.ok()) return g.status();
    goal = *g;
  }
  const std::string& path = goal.workspace().path();
  if (path.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("goal \"", goal.id(), "\" has no workspace directory yet"));
  }
  const std::vector<std::string>& editor = config_->config().ui.editor;
  if (editor.empty()) {
    return absl::FailedPreconditionError(
        "ui.editor is empty in agentd's config, so opening workspaces is off; set it, e.g. "
        "ui: {editor: [code]}");
  }
  if (FindProgram(editor[0]).empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the editor \"", editor[0],
                     "\" (ui.editor) is not on agentd's PATH; install it or set ui.editor to "
                     "its full path"));
  }
  std::vector<std::string> argv = editor;
  argv.push_back(path);
  v1::RequestConsentRequest req;
  req.set_task_id(goal.id());
  req.set_tool("ui.open_workspace");
  req.set_kind(v1::CONSENT_KIND_OPEN_EDITOR);
  req.set_summary(absl::StrCat("open ", path, " with ", editor[0], " on agentd's host"));
  (*req.mutable_details())["path"] = path;
  (*req.mutable_details())["command"] = absl::StrJoin(argv, " ");
  (*req.mutable_details())["requested_by"] = by;
  absl::StatusOr<v1::RequestConsentResponse> r = consents_->Request(kAgent, req, goal.id());
  if (!r.ok()) return r.status();
  v1::OpenWorkspaceResponse resp;
  resp.set_consent_request_id(r->consent_request_id());
  resp.set_path(path);
  for (const std::string& a : argv) resp.add_argv(a);
  return resp;
}

void WorkspaceOpener::OnDecided(const v1::ConsentRequest& request) {
  if (request.agent_id() != kAgent || request.kind() != v1::CONSENT_KIND_OPEN_EDITOR ||
      request.status() != v1::CONSENT_STATUS_APPROVED) {
    return;
  }
  auto path = request.details().find("path");
  const std::vector<std::string>& editor = config_->config().ui.editor;
  if (path == request.details().end() || editor.empty()) {
    spdlog::warn("consent {} approved, but there is no editor or path to open", request.id());
    return;
  }
  std::vector<std::string> argv = editor;
  argv.push_back(path->second);
  // What runs is exactly what the person saw: a config reload since the request may have
  // changed the editor, and then nothing runs.
  auto shown = request.details().find("command");
  if (shown == request.details().end() || shown->second != absl::StrJoin(argv, " ") ||
      path->second.empty() || path->second[0] != '/') {
    spdlog::warn("consent {} approved, but ui.editor changed since it was asked for; not opening",
                 request.id());
    return;
  }
  absl::StatusOr<pid_t> pid = SpawnDetached(argv);
  if (!pid.ok()) {
    spdlog::warn("consent {}: {}", request.id(), pid.status().message());
    return;
  }
  spdlog::info("opened {} with {} (pid {}), approved by {}", path->second, editor[0], *pid,
               request.decided_by());
  if (audit_ != nullptr) {
    audit_->AppendBy(
        request.decided_by(), "workspace.open", absl::StrJoin(argv, " "), request.goal_id(),
        request.task_id(),
        {{"request", request.id()},
         {"pid", std::to_string(*pid)},
         {"requested_by",
          request.details().contains("requested_by") ? request.details().at("requested_by") : ""}});
  }
}

}  // namespace agentd
