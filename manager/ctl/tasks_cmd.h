// agentctl's commands for goals, tasks and usage.
#ifndef AGENTD_MANAGER_CTL_TASKS_CMD_H_
#define AGENTD_MANAGER_CTL_TASKS_CMD_H_

#include <string>
#include <vector>

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// goal "text" [--workspace DIR] [--approve auto|manual] [--budget USD] [--tokens N]
//      [--title T] [--wait] [--timeout D]
// With --wait: progress on stderr, the final summary on stdout; exit 0 only if the goal
// completed (1 failed or canceled, 4 still running at the timeout).
int GoalCmd(const Globals& g, const std::vector<std::string>& args);
// get tasks [--goal G] [--tree]
int GetTasks(const Globals& g, const CmdArgs& args);
// describe task T
int DescribeTask(const Globals& g, const std::string& id);
// cancel T [--reason R] | pause GOAL | resume GOAL | retry T
int CancelCmd(const Globals& g, const std::vector<std::string>& args);
int PauseCmd(const Globals& g, const std::vector<std::string>& args, bool pause);
int RetryCmd(const Globals& g, const std::vector<std::string>& args);
// get plans [--goal G] | describe plan P | approve P [--comment C] | reject P --reason R
int GetPlans(const Globals& g, const CmdArgs& args);
int DescribePlan(const Globals& g, const std::string& id);
int ApproveCmd(const Globals& g, const std::vector<std::string>& args);
int RejectCmd(const Globals& g, const std::vector<std::string>& args);
// send @AGENT|role:NAME|human TEXT [--task T] [--reply-to ID]
int SendCmd(const Globals& g, const std::vector<std::string>& args);
// messages [--goal G] [--task T] [--agent A]
int MessagesCmd(const Globals& g, const std::vector<std::string>& args);
// audit [--goal G] [--actor A] [--action X] [--verify]
int AuditCmd(const Globals& g, const std::vector<std::string>& args);
int BudgetCmd(const Globals& g, const std::vector<std::string>& args);
// bootstrap TEMPLATE DIR [--no-wait] [--timeout D]: a project from templates/projects,
// its post-check run; waits like goal --wait unless --no-wait.
int BootstrapCmd(const Globals& g, const std::vector<std::string>& args);
// usage [--by role|model|goal|agent|task] [--goal G]
int UsageCmd(const Globals& g, const std::vector<std::string>& args);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_TASKS_CMD_H_
