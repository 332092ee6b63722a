// agentctl's commands for goals, tasks and usage.
#ifndef AGENTD_MANAGER_CTL_TASKS_CMD_H_
#define AGENTD_MANAGER_CTL_TASKS_CMD_H_

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds goal, get tasks, describe task, cancel, pause, resume, retry, usage, send, messages,
// get plans, describe plan, approve, reject, budget, audit and bootstrap to the tree.
void AddTaskCommands(const CommandTree& tree);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_TASKS_CMD_H_
