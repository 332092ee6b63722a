// The parts of shell.run that tests and other tools (tests.run, git.*) use directly.
#ifndef AGENTD_AGENTS_TOOLS_SHELL_H_
#define AGENTD_AGENTS_TOOLS_SHELL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agents/llm/http.h"
#include "agents/tools/tool.h"

namespace agentd::tools {

// A command line split into argv the way a shell splits plain words ('…', "…" and a
// backslash quote), with no shell at all: `;`, `|`, `&`, `$`, backticks, redirections, globs and
// the like are refused with a message that says why. Errors: INVALID_ARGUMENT.
absl::StatusOr<std::vector<std::string>> ParseCommand(absl::string_view command);

// PERMISSION_DENIED unless argv[0] is a bare program name on `options.allow` (no path,
// no NAME=value prefix).
absl::Status CheckProgram(const std::vector<std::string>& argv, const ShellOptions& options);

struct ShellResult {
  int exit_code = -1;
  int signal = 0;
  bool timed_out = false, cancelled = false, sandboxed = false;
  std::string output;       // the last output_cap bytes of stdout and stderr
  size_t output_bytes = 0;  // all that was written
};

// Runs argv in `workspace` (inside bubblewrap unless options.sandbox is "off" or, for
// "auto", bwrap is missing), killing its process group at the timeout or on cancel.
// Errors: FAILED_PRECONDITION (sandbox required, no bwrap), NOT_FOUND (cannot start).
absl::StatusOr<ShellResult> RunProgram(const std::vector<std::string>& argv,
                                       const std::string& workspace, const ShellOptions& options,
                                       const llm::CancelToken* cancel);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_SHELL_H_
