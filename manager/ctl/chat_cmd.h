// agentctl chat: a conversation with the CEO or any agent, with the seed workflow's
// commands (/spawn, /agents, /stop, /plans, /approve, /reject, @agent).
#ifndef AGENTD_MANAGER_CTL_CHAT_CMD_H_
#define AGENTD_MANAGER_CTL_CHAT_CMD_H_

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds `chat` to the tree.
void AddChatCommands(const CommandTree& tree);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_CHAT_CMD_H_
