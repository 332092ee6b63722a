// The bootstrapper: agentd's built-in role with no model. It renders a project template
// (templates/projects/<name>) into the goal's workspace, commits it, and runs the
// template's post-check — the generated project's own build and tests — with its output
// going straight to this agent's log, so `agentctl logs -f` shows it as it runs.
//
// A template is a folder of files and a template.yaml (`description`, `post_check`: the
// argv to run in the workspace). `{{project}}` in file contents becomes the workspace
// directory's name. The post-check runs unsandboxed: it is the template's own command,
// from agentd's templates folder, not something a model wrote.
//
// Thread-safety: one call at a time per workspace.
#ifndef AGENTD_AGENTS_RUNTIME_BOOTSTRAP_H_
#define AGENTD_AGENTS_RUNTIME_BOOTSTRAP_H_

#include <string>

#include "absl/status/statusor.h"
#include "agents/llm/http.h"

namespace agentd::agent {

// Returns a summary for the task's result. Errors: NOT_FOUND (no such template),
// INVALID_ARGUMENT (template.yaml unreadable, saying where), FAILED_PRECONDITION (the
// post-check failed: its exit status), CANCELLED.
absl::StatusOr<std::string> Bootstrap(const std::string& templates_dir,
                                      const std::string& template_name,
                                      const std::string& workspace, const llm::CancelToken* cancel);

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_BOOTSTRAP_H_
