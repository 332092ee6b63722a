// agentctl's commands for the daemon and its agents: status, version, ui, config, get and
// describe agent, start, stop, restart, consents and logs.
#ifndef AGENTD_MANAGER_CTL_AGENTS_CMD_H_
#define AGENTD_MANAGER_CTL_AGENTS_CMD_H_

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds the commands above to the tree.
void AddAgentCommands(const CommandTree& tree);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_AGENTS_CMD_H_
