// The agentctl command tree: global flags, every command with its own help, `help`, and
// shell completion. Parsing is CLI11's; this file decides what the tree holds and how a
// parse error, a request for help and the exit code are reported.
#ifndef AGENTD_MANAGER_CTL_APP_H_
#define AGENTD_MANAGER_CTL_APP_H_

#include <string>
#include <vector>

namespace agentd::ctl {

// Runs agentctl with these arguments (argv[0] excluded) and returns its exit code:
// 0 ok, 1 failed, 2 usage error (printed with a pointer to the command's --help),
// 3 cannot connect to agentd, 4 still running when a wait ran out.
int RunAgentctl(const std::vector<std::string>& args);

// The words a shell should offer for the word being typed, `current`, after `before`
// (the words already on the line, argv[0] excluded): commands, flags, flag values, and ids
// the daemon holds (agents, tasks, goals, plans, consent requests) where an id is due.
// Asking the daemon is best-effort: a short deadline, nothing printed when it is away.
std::vector<std::string> Completions(const std::vector<std::string>& before,
                                     const std::string& current);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_APP_H_
