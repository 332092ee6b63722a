#include "manager/core/agent_scope.h"

#include "absl/strings/str_cat.h"

namespace agentd {

absl::StatusOr<v1::Task> AgentScope::HeldTask(const std::string& agent,
                                              const std::string& task_id) const {
  if (task_id.empty()) {
    return absl::InvalidArgumentError("task_id is required: the task this call is for");
  }
  absl::StatusOr<v1::Task> t = tasks_->TaskOfAgent(agent, task_id);
  if (t.ok()) return t;
  if (t.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("task \"", task_id, "\" does not exist"));
  }
  if (t.status().code() == absl::StatusCode::kPermissionDenied) {
    return absl::PermissionDeniedError(
        absl::StrCat("task \"", task_id, "\" is not held by agent \"", agent,
                     "\": an agent acts only on the tasks assigned to it"));
  }
  return t.status();
}

absl::StatusOr<Ledger::Caller> AgentScope::CallerFor(const std::string& agent,
                                                     const std::string& task_id) const {
  absl::StatusOr<v1::Agent> a = supervisor_->Get(agent);
  if (!a.ok()) return a.status();
  Ledger::Caller c{agent, a->role(), "", ""};
  if (task_id.empty()) return c;
  absl::StatusOr<v1::Task> t = HeldTask(agent, task_id);
  if (!t.ok()) return t.status();
  c.task_id = t->id();
  c.goal_id = t->goal_id();
  return c;
}

absl::StatusOr<Ledger::Caller> AgentScope::UsageCaller(const std::string& agent,
                                                       const v1::UsageRecord& rec) const {
  absl::StatusOr<Ledger::Caller> caller = CallerFor(agent, "");
  if (!caller.ok()) return caller.status();
  // Usage is recorded even when the task ended meanwhile — the money was spent — but only
  // for a task that was the agent's.
  if (const v1::BudgetReservation* res = ledger_->Reservation(rec.reservation_id());
      res != nullptr && res->agent_id() == agent) {
    if (!rec.task_id().empty() && rec.task_id() != res->task_id()) {
      return absl::InvalidArgumentError(absl::StrCat("reservation \"", res->id(),
                                                     "\" is for task \"", res->task_id(),
                                                     "\", not \"", rec.task_id(), "\""));
    }
    caller->task_id = res->task_id();
    caller->goal_id = res->goal_id();
  } else if (!rec.task_id().empty()) {
    absl::StatusOr<v1::Task> t = tasks_->Get(rec.task_id());
    if (!t.ok()) {
      return absl::NotFoundError(absl::StrCat("task \"", rec.task_id(), "\" does not exist"));
    }
    if (t->assignee() != agent) {
      return absl::PermissionDeniedError(
          absl::StrCat("task \"", rec.task_id(), "\" is not held by agent \"", agent,
                       "\": an agent reports usage only for its own tasks"));
    }
    caller->task_id = t->id();
    caller->goal_id = t->goal_id();
  }
  return caller;
}

}  // namespace agentd
