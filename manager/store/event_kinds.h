// The kinds of event agentd records, declared once: the change feed's vocabulary
// (Event.kind in proto/agentd/v1/events.proto lists the same, and a unit test holds the
// two, and the emitting code, together).
//
// Each kind is "<resource>.<change>". The X-macro gives every kind its name and when it
// is recorded; Store refuses to record a kind that is not here (see IsEventKind).
#ifndef AGENTD_MANAGER_STORE_EVENT_KINDS_H_
#define AGENTD_MANAGER_STORE_EVENT_KINDS_H_

#include <string_view>

namespace agentd {

// X(name, when)
#define AGENTD_EVENT_KINDS(X)                                                                     \
  X("daemon.started", "agentd started (payload: version, pid)")                                   \
  X("daemon.stopped", "agentd stopped cleanly")                                                   \
  X("config.reloaded", "a configuration reload took effect (payload: applied, restart_required)") \
  X("agent.started", "an agent process started")                                                  \
  X("agent.registered", "an agent registered with its token and is idle")                         \
  X("agent.activity", "an agent turned busy or idle")                                             \
  X("agent.unresponsive", "an agent missed its heartbeat lease")                                  \
  X("agent.stopping", "an agent is being stopped")                                                \
  X("agent.stopped", "an agent process ended and is not restarted")                               \
  X("agent.backoff", "an agent process ended and waits to be restarted")                          \
  X("agent.failed", "an agent could not start, or exited too often, and stays down")              \
  X("agent.held", "an agent's restart waits: too many agents failed at once (global breaker)")    \
  X("agent.deleted", "a person deleted a stopped agent's record")                                 \
  X("goal.submitted", "a goal was submitted (its root task)")                                     \
  X("goal.paused", "a person paused a goal")                                                      \
  X("goal.resumed", "a person resumed a goal")                                                    \
  X("goal.checking", "a goal's root task completed and agentd runs its checks")                   \
  X("goal.checks_failed", "a round of a goal's checks failed: the goal goes back to the CEO")     \
  X("task.created", "a task was created (delegated, or a plan's step)")                           \
  X("task.ready", "a task may be assigned")                                                       \
  X("task.assigned", "a task was handed to an agent (an attempt or a hand-back)")                 \
  X("task.running", "the agent started working on a task")                                        \
  X("task.tool_call", "an agent's tool call started or ended (the task is not in the payload)")   \
  X("task.blocked", "a task waits: for its children, a plan, checks, a budget or a provider")     \
  X("task.unblocked", "a waiting task may go on")                                                 \
  X("task.budget_reached", "a task is held at its goal's budget")                                 \
  X("task.budget_raised", "a task held at its budget goes on after a raise")                      \
  X("task.provider_backoff", "a task waits to retry a provider that failed")                      \
  X("task.provider_retry", "a task waiting for its provider is handed back")                      \
  X("task.retry", "a task's attempt failed and another is scheduled")                             \
  X("task.retried", "a person asked for another attempt of a failed task")                        \
  X("task.reassigned", "a task's agent went away and the task goes to another")                   \
  X("task.completed", "a task completed with a result")                                           \
  X("task.failed", "a task failed for good, with a failure code")                                 \
  X("task.canceled", "a task was canceled")                                                       \
  X("plan.proposed", "an agent proposed a plan")                                                  \
  X("plan.superseded", "a newer plan of the same task replaced a proposed one")                   \
  X("plan.approved", "a plan was approved, by a person or by policy")                             \
  X("plan.rejected", "a plan was rejected, with a reason")                                        \
  X("plan.executing", "an approved plan's steps were created")                                    \
  X("plan.completed", "every step of a plan completed")                                           \
  X("plan.failed", "a plan's step failed for good, or the plan could not start")                  \
  X("plan.rolled_back", "a failed plan's workspace was put back to its checkpoint")               \
  X("workspaces.moved", "agentd moved goals' workspaces out of its state directory at start")     \
  X("message.sent", "a message was sent to an agent or to people")                                \
  X("consent.requested", "an agent asked a person for consent")                                   \
  X("consent.approved", "a consent request was approved")                                         \
  X("consent.denied", "a consent request was denied")                                             \
  X("consent.expired", "a consent request expired unanswered")                                    \
  X("usage.recorded", "an LLM call's tokens and cost were recorded")                              \
  X("budget.changed", "a budget's limits were set (a goal's at submission, or SetBudget)")        \
  X("budget.refused", "a model call was refused because it would pass a budget")                  \
  X("audit.appended", "an entry was appended to the audit log")

struct EventKind {
  std::string_view name;
  std::string_view when;
};

#define AGENTD_EVENT_KIND_ENTRY(name, when) EventKind{name, when},
inline constexpr EventKind kEventKinds[] = {AGENTD_EVENT_KINDS(AGENTD_EVENT_KIND_ENTRY)};
#undef AGENTD_EVENT_KIND_ENTRY

// Whether `kind` is declared above.
constexpr bool IsEventKind(std::string_view kind) {
  for (const EventKind& k : kEventKinds) {
    if (k.name == kind) return true;
  }
  return false;
}

}  // namespace agentd

#endif  // AGENTD_MANAGER_STORE_EVENT_KINDS_H_
