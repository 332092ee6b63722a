// AgentScope: what an agent may act on, as agentd decides it — the rules behind every
// AgentHost call that names a task or spends money, kept in the core so that the API
// layer only translates.
//
//   - An agent acts only on a task it holds now (assigned or running): consent requests,
//     messages about a task, budget reservations.
//   - Usage is attributed to the task the agent held when it reserved the call (the
//     reservation says which, and whose: another agent's is refused); without a
//     reservation, to a task named in the record only if the agent holds or held it.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_AGENT_SCOPE_H_
#define AGENTD_MANAGER_CORE_AGENT_SCOPE_H_

#include <string>

#include "absl/status/statusor.h"
#include "agentd/v1/tasks.pb.h"
#include "agentd/v1/usage.pb.h"
#include "manager/core/ledger.h"
#include "manager/core/supervisor.h"
#include "manager/core/tasks.h"

namespace agentd {

class AgentScope {
 public:
  // None of the pointers is owned.
  AgentScope(Supervisor* supervisor, TaskBoard* tasks, Ledger* ledger)
      : supervisor_(supervisor), tasks_(tasks), ledger_(ledger) {}

  // Task `task_id` when `agent` holds it now. Errors say which task and which agent:
  // INVALID_ARGUMENT (none named), NOT_FOUND, PERMISSION_DENIED (another agent's task,
  // or one that ended).
  absl::StatusOr<v1::Task> HeldTask(const std::string& agent, const std::string& task_id) const;
  // The ledger's view of a call by `agent` for `task_id` (empty: no task): the agent must
  // hold the task. Errors: those of HeldTask; NOT_FOUND (no such agent).
  absl::StatusOr<Ledger::Caller> CallerFor(const std::string& agent,
                                           const std::string& task_id) const;
  // Who a usage report of `agent` is charged to (see the top of this file). Errors:
  // INVALID_ARGUMENT (the record names another task than its reservation's), NOT_FOUND,
  // PERMISSION_DENIED (a task that was never the agent's).
  absl::StatusOr<Ledger::Caller> UsageCaller(const std::string& agent,
                                             const v1::UsageRecord& record) const;

 private:
  Supervisor* supervisor_;
  TaskBoard* tasks_;
  Ledger* ledger_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_AGENT_SCOPE_H_
