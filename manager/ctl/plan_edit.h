// agentctl approve --edit: a proposed plan as YAML in the person's $EDITOR, read back,
// checked by agentd (ApprovePlan with validate_only) and approved as edited. As with
// `kubectl edit`, a file that fails (YAML errors with line:column, or the plan's
// violations with their step and field) is opened again with the problems written at its
// top; saving it unchanged, or empty, gives up and approves nothing.
#ifndef AGENTD_MANAGER_CTL_PLAN_EDIT_H_
#define AGENTD_MANAGER_CTL_PLAN_EDIT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentd/v1/plans.pb.h"
#include "manager/ctl/cli.h"

namespace agentd::ctl {

// The plan's summary and steps as the YAML a person edits, with `problems` (from the last
// try) as comments at the top.
std::string PlanToYaml(const v1::Plan& plan, const std::vector<std::string>& problems);

// What the person wrote: the summary and the steps. Errors: INVALID_ARGUMENT saying what
// and where (line:column) for YAML that is not a plan.
struct EditedPlan {
  std::string summary;
  std::vector<v1::PlanStep> steps;
};
absl::StatusOr<EditedPlan> PlanFromYaml(const std::string& text);

// The whole of `agentctl approve PLAN --edit`; its exit code.
int EditAndApprove(const Globals& g, const std::string& plan_id, const std::string& comment);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_PLAN_EDIT_H_
