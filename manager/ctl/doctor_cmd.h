// agentctl doctor: whether a goal given now could run, and what to do where it could not.
#ifndef AGENTD_MANAGER_CTL_DOCTOR_CMD_H_
#define AGENTD_MANAGER_CTL_DOCTOR_CMD_H_

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds `doctor` to the tree.
void AddDoctorCommands(const CommandTree& tree);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_DOCTOR_CMD_H_
