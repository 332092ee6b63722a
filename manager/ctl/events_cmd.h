// agentctl get events: agentd's change feed (EventService), listed or followed.
#ifndef AGENTD_MANAGER_CTL_EVENTS_CMD_H_
#define AGENTD_MANAGER_CTL_EVENTS_CMD_H_

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds `get events` to the tree.
void AddEventCommands(const CommandTree& tree);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_EVENTS_CMD_H_
