// The parts of shell.run that tests and other tools (tests.run, git.*) use directly: the
// command-line splitter, the allowlist, and running a program in the sandbox.
#ifndef AGENTD_AGENTS_TOOLS_SHELL_H_
#define AGENTD_AGENTS_TOOLS_SHELL_H_

#include <functional>
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
  // Why it ran outside the sandbox though the policy is not "off" (the "auto" fallback);
  // empty when sandboxed or when the policy is "off".
  std::string unconfined_why;
};

// Runs argv in `workspace` inside bubblewrap — the system read-only, the workspace
// writable but its `.git` read-only (unless options.git_writable), no network unless
// options.network, its own pid namespace, no capabilities — killing its process group
// at the timeout or on cancel. With options.sandbox "off" it runs unconfined; with "auto"
// it does too when the sandbox does not work (options.sandbox_broken, or no bwrap on
// PATH), saying why in unconfined_why. Errors: FAILED_PRECONDITION (the sandbox is
// required and does not work, saying why: nothing ran), NOT_FOUND (cannot start).
absl::StatusOr<ShellResult> RunProgram(const std::vector<std::string>& argv,
                                       const std::string& workspace, const ShellOptions& options,
                                       const llm::CancelToken* cancel);

// A program's argv and environment as RunProgram starts it: wrapped in bubblewrap (as
// RunProgram describes) unless the policy or the machine says otherwise.
struct SandboxedCommand {
  std::vector<std::string> argv;  // bwrap's arguments, then the program's
  std::vector<std::string> env;   // NAME=value: the basics (ShellOptions::inherit_env), then env
  bool sandboxed = false;
  std::string unconfined_why;  // as ShellResult's
};
// Errors: FAILED_PRECONDITION (the sandbox is required and does not work, saying why).
absl::StatusOr<SandboxedCommand> SandboxCommand(const std::vector<std::string>& argv,
                                                const std::string& workspace,
                                                const ShellOptions& options);

// The line a tool result carries when its program ran unconfined (the "auto" fallback):
// " [NOT SANDBOXED: why]"; "" when it ran sandboxed or the policy is "off".
std::string SandboxNote(const ShellResult& r);

// The path of `program` (a name found through $PATH, or a path, which must be
// executable); empty when there is none.
std::string FindProgram(const std::string& program);

// What the probe at an agent's start found: whether bubblewrap makes a sandbox here.
struct SandboxProbe {
  bool works = false;
  std::string bwrap;  // the path found through PATH, or empty
  std::string why;    // when it does not work: the reason, e.g. bwrap's own error
};

// Runs `true` in a sandbox made exactly as RunProgram makes one (in a scratch workspace
// under $TMPDIR or /tmp), because bwrap's presence proves nothing: it fails in a chroot
// ("Failed to make / slave") and where user namespaces are off. Takes a few milliseconds.
// `run`, when given, runs the trial's command instead of RunProgram (agentd runs it
// under its agents' isolation: LocalLauncher::TryIsolated); OK means it exited 0.
using SandboxTrial = std::function<absl::Status(const SandboxedCommand& command)>;
SandboxProbe ProbeSandbox(const std::string& bwrap = "bwrap", const SandboxTrial& run = nullptr);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_SHELL_H_
