#include "manager/core/workspace_git.h"

#include "absl/status/status.h"
#include "agents/llm/http.h"
#include "agents/tools/tool.h"
#include "agents/tools/workspace.h"
#include "nlohmann/json.hpp"

namespace agentd {

WorkspaceGit::WorkspaceGit(EventLoop* loop, Options options)
    : options_(std::move(options)), jobs_(loop) {}

void WorkspaceGit::SetOptions(Options options) {
  absl::MutexLock l(&mu_);
  options_ = std::move(options);
}

void WorkspaceGit::Checkpoint(const std::string& workspace, const std::string& name, Done done) {
  Run("git.checkpoint", workspace, nlohmann::json{{"name", name}}, std::move(done));
}

void WorkspaceGit::Rollback(const std::string& workspace, const std::string& name,
                            const std::string& commit, Done done) {
  Run("git.rollback", workspace, nlohmann::json{{"name", name}, {"commit", commit}},
      std::move(done));
}

void WorkspaceGit::Run(const std::string& tool, const std::string& workspace, nlohmann::json args,
                       Done done) {
  tools::ShellOptions shell;
  {
    absl::MutexLock l(&mu_);
    // git runs in a workspace the agents wrote: as agentd, never unconfined unless a
    // person said so (policy.shell.sandbox off).
    shell.sandbox = options_.sandbox == "off" ? "off" : "required";
    shell.sandbox_broken = options_.sandbox_broken;
    shell.bwrap = options_.bwrap;
  }
  shell.inherit_env = false;
  jobs_.Run<absl::StatusOr<std::string>>(
      [tool, workspace, args = std::move(args), shell]() mutable -> absl::StatusOr<std::string> {
        absl::StatusOr<std::unique_ptr<tools::Workspace>> ws = tools::Workspace::Open(workspace);
        if (!ws.ok()) return ws.status();
        for (const std::unique_ptr<tools::Tool>& t : tools::BuiltinTools()) {
          if (t->name() != tool) continue;
          llm::CancelToken cancel;
          tools::ToolContext ctx{ws->get(), &shell, &cancel, "", "", nullptr, ""};
          tools::ToolResult r = t->Run(args, ctx);
          if (r.error) return absl::FailedPreconditionError(r.content);
          return r.content;
        }
        return absl::InternalError(absl::StrCat("no tool named ", tool));
      },
      [done = std::move(done)](absl::StatusOr<std::string> result) mutable {
        done(std::move(result));
      });
}

}  // namespace agentd
