// TaskBoard: goals and the tasks under them, their status machine, and handing tasks to
// agents over their Connect streams.
//
// The status machine lives here and only here:
//   pending → ready → assigned → running → completed | failed | canceled, plus blocked.
// A task with unfinished deps is pending; once they complete it is ready; the scheduler
// hands a ready task to an idle, connected agent of its role (assigned), starting
// another agent of the role when none is idle and the role is below max_instances; the
// agent's first event makes it running; the agent's TaskCompleted or TaskFailed ends
// the attempt. A failed attempt marked retryable goes back to ready while attempts
// remain. Cancel ends the task and everything under it, and tells the agents at work.
// A task whose model call would pass a budget is held (BLOCKED, BUDGET_REACHED) until a
// person raises it, with policy.budget.on_exhausted "pause" (the default); with "fail" it
// fails its whole goal with BUDGET_EXCEEDED. A task whose provider fails past the agent's
// own retries is held (BLOCKED, PROVIDER) and handed back, same attempt, after a backoff;
// after policy.provider_retry.max such waits in a row it fails with PROVIDER_ERROR.
// A goal with checks (its done-criteria) is not completed by its agent's complete_task:
// it is blocked (CHECKS) while agentd runs them (CheckRunner), completed when all pass,
// and otherwise handed back to its agent, same attempt, with the failures as the answer
// to that complete_task call; after max_check_rounds failed rounds it fails with
// CHECKS_FAILED.
//
// Deliveries (assignments, cancels) are stored before they are sent, carry a seq that
// increases per agent, and are sent again after a reconnect until acknowledged. An agent
// that dies mid-task keeps its task: when it is back (restarted by the supervisor) the
// assignment is sent again with the same attempt number, so it resumes from its session.
// An agent that will not come back (stopped, failed) loses its task to another agent
// of the role, as a new attempt, or fails it when no attempt is left.
//
// Every transition is stored with its event, before it is acted on.
//
// Thread-safety: core loop thread only. ConnectSink::Deliver is called on the loop.
#ifndef AGENTD_MANAGER_CORE_TASKS_H_
#define AGENTD_MANAGER_CORE_TASKS_H_

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agentd/v1/agent_host.pb.h"
#include "agentd/v1/plans.pb.h"
#include "agentd/v1/tasks.pb.h"
#include "manager/core/audit.h"
#include "manager/core/checks.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/core/handbacks.h"
#include "manager/core/ledger.h"
#include "manager/core/outbox.h"
#include "manager/core/scheduler.h"
#include "manager/core/supervisor.h"
#include "manager/core/task_graph.h"
#include "manager/core/tracing.h"
#include "manager/core/transcripts.h"
#include "manager/core/workspace_policy.h"
#include "manager/core/workspaces.h"
#include "manager/store/store.h"

namespace agentd {

class TaskBoard {
 public:
  struct Options {
    std::string workspaces_dir;  // new workspaces go under <workspaces_dir>/<goal>
    int32_t default_max_attempts = 3;
    std::string templates_dir;  // project templates are under <templates_dir>/projects
    // Directories a goal's workspace must not contain (workspace_policy.h).
    std::vector<ProtectedDir> protected_dirs;
    // How many finished tasks are kept whole in memory; the rest live in the store and
    // are read back when asked for (task_graph.h).
    size_t resident_finished_tasks = 1000;
  };

  // What TaskBoard records its changes with and runs goals' checks through; none owned,
  // each may be null (tests): no audit entries; no checks (SubmitGoal refuses goals that
  // have any); no metrics.
  struct Services {
    AuditLog* audit = nullptr;
    CheckRunner* checks = nullptr;
    DaemonMetrics* metrics = nullptr;
    Tracing* tracing = nullptr;          // null: agentd does not trace
    Transcripts* transcripts = nullptr;  // null: no transcripts are kept
  };

  // None of the pointers is owned.
  TaskBoard(EventLoop* loop, Store* store, Outbox* outbox, Supervisor* supervisor, Ledger* ledger,
            const ConfigState* config, Services services, Options options);

  // Loads the stored tasks and undelivered deliveries.
  absl::Status Recover();

  // Where project templates are (<templates_dir>/projects). Set at construction: safe
  // from any thread.
  const std::string& templates_dir() const { return options_.templates_dir; }

  // TaskService. `by` is who asks ("human:<name>", "ci"). Answers on the loop once the
  // goal's workspace is ready (WorkspaceProvisioner, off the loop) and the goal stored.
  // Errors: INVALID_ARGUMENT (no text; a workspace that cannot be used, saying why),
  // FAILED_PRECONDITION (no `ceo` role configured). A repeated request_id answers with
  // the goal it made, also while that one is still being prepared.
  using GoalDone = absl::AnyInvocable<void(absl::StatusOr<v1::Task>) &&>;
  void SubmitGoal(const v1::SubmitGoalRequest& req, const std::string& by, GoalDone done);
  // Errors: NOT_FOUND; UNAVAILABLE when a finished task's record cannot be read back from
  // the store.
  absl::StatusOr<v1::Task> Get(const std::string& id) const;
  absl::StatusOr<v1::ListTasksResponse> List(const v1::ListTasksRequest& req) const;
  // How many tasks agentd knows (goals included), and how many goals have not ended.
  size_t task_count() const { return graph_.size(); }
  size_t open_goals() const { return graph_.OpenGoals(); }
  // How many tasks are kept whole in memory (task_graph.h).
  size_t tasks_in_memory() const { return graph_.resident(); }
  // Cancels the task and its subtree. Errors: NOT_FOUND.
  absl::StatusOr<v1::CancelTaskResponse> Cancel(const std::string& id, const std::string& reason,
                                                const std::string& by);
  // Errors: NOT_FOUND; FAILED_PRECONDITION (not a goal, or already final).
  absl::StatusOr<v1::Task> SetPaused(const std::string& goal_id, bool paused,
                                     const std::string& by);
  // Makes a failed or canceled task ready again. Errors: NOT_FOUND, FAILED_PRECONDITION.
  absl::StatusOr<v1::Task> Retry(const std::string& id, const std::string& by);

  // AgentHost. An agent's stream opened: what it has not acknowledged after `after_seq`
  // is sent, and its current task again.
  void Attach(const std::string& agent, ConnectSink* sink, int64_t after_seq);
  // The stream closed; `sink` is not used again.
  void Detach(const std::string& agent, ConnectSink* sink);
  void Ack(const std::string& agent, int64_t seq);
  // An event about a task; events for a task the agent no longer holds, or for an older
  // attempt, are dropped.
  void OnTaskEvent(const std::string& agent, const v1::TaskEvent& event);
  // A child task of `agent`'s task, for a role (the delegate tool). Errors:
  // PERMISSION_DENIED (not the agent's task), INVALID_ARGUMENT (unknown role, no
  // instructions, a dep that is not a sibling), NOT_FOUND.
  absl::StatusOr<v1::Task> Delegate(const std::string& agent, const v1::DelegateRequest& req);
  // What the daemon believes `agent` is doing, for Register.
  v1::SessionResumeHint ResumeHint(const std::string& agent) const;
  // The task an agent's call is for: it must hold it. Errors: NOT_FOUND,
  // PERMISSION_DENIED (another agent's task).
  absl::StatusOr<v1::Task> TaskOfAgent(const std::string& agent, const std::string& task_id) const;

  // The supervisor reports an agent's state: stopped and failed agents lose their task.
  void OnAgentState(const std::string& agent, v1::AgentState state);
  // After the supervisor recovered: tasks held by agents that are not coming back.
  void ReconcileAgents();
  // Whether `agent` is the assignee of an unfinished task: one it works on, or one
  // waiting for its children or a check whose conversation lives in its session. On the
  // loop.
  bool HoldsWork(const std::string& agent) const;
  // Ids of the goals that have not ended, oldest first.
  std::vector<std::string> OpenGoals() const;

  // A connected agent of `role`: an idle one if any, else a busy one; empty if none.
  std::string PickAgent(const std::string& role) const;
  // Told when an agent's stream opens, and when it acknowledges deliveries (the bus).
  void SetStreamObservers(std::function<void(const std::string& agent)> on_attach,
                          std::function<void(const std::string& agent, int64_t seq)> on_ack) {
    on_attach_ = std::move(on_attach);
    on_ack_ = std::move(on_ack);
  }

  // Observes every task change after it is stored and the change under way is over (plans).
  void AddObserver(std::function<void(const v1::Task&)> observer) {
    observers_.push_back(std::move(observer));
  }
  // Says whether a task has a plan waiting for a decision: such a task waits as for
  // children.
  void SetPlanPending(std::function<bool(const std::string& task_id)> pending) {
    plan_pending_ = std::move(pending);
  }
  // The step tasks of an approved plan, children of its task, deps mapped from step ids,
  // in step order: made (ids taken) but neither stored nor kept. The caller stores them
  // with the plan in one transaction (Store::SavePlanWithTasks, rows from RowOf), then
  // hands them over with AdoptPlanTasks. Errors: NOT_FOUND (the plan's task).
  absl::StatusOr<std::vector<v1::Task>> PlanTasks(const v1::Plan& plan);
  // A task's row and its event payload, as Save stores them.
  static std::pair<TaskRow, std::string> RowOf(const v1::Task& t);
  // Keeps tasks that were stored (PlanTasks), tells the observers and schedules them.
  void AdoptPlanTasks(std::vector<v1::Task> tasks);
  // A budget changed (SetBudget): tasks held at a budget (BLOCKED, BUDGET_REACHED) go on
  // where they stopped, each in the same attempt and session.
  void OnBudgetChanged();
  // A task waiting for its children or a plan decision goes on if nothing is open any
  // more (a plan was rejected, say).
  void Wake(const std::string& task_id);

 private:
  v1::Task* Find(const std::string& id) { return graph_.Find(id); }
  // Stores `t` with an event of `kind`; false (logged) when the store failed.
  // With `audit`, the entry that records the change goes in its transaction. Inside a
  // batch (EndSubtree), the change waits for the batch's one transaction instead.
  // Observers hear of it once the change is over (Notify), never from inside it.
  // `request_id`: a new goal's SubmitGoalRequest.request_id, saved with it.
  bool Save(v1::Task& t, const char* kind, const std::string& agent = "",
            const AuditIntent* audit = nullptr, const std::string& request_id = "");
  // What a committed change means in memory: the live index, and the observers told
  // once the loop is done with the change that made it.
  void Committed(const v1::Task& t);
  void Notify(const std::string& id);
  // Tells the observers of every change Notify holds, now.
  void FlushObservers();
  // An attempt that ended without ending the task (retried, reassigned), in its transcript:
  // an outcome entry READY saying why.
  void RecordEnd(const v1::Task& t, const std::string& why);
  void SetStatus(v1::Task& t, v1::TaskStatus status, const char* kind,
                 const AuditIntent* audit = nullptr);
  // Ends `t` and every unfinished task under it with `status` and `failure`.
  // `audit` records the root's change (with details["canceled"], the number of tasks
  // ended), in its transaction.
  int EndSubtree(v1::Task& t, v1::TaskStatus status, const v1::TaskFailure& failure,
                 AuditIntent* audit = nullptr);
  // EndSubtree's work, inside the batch it opened.
  int EndSubtreeInBatch(v1::Task& t, v1::TaskStatus status, const v1::TaskFailure& failure,
                        AuditIntent* audit);
  void Assign(v1::Task& t, const std::string& agent);
  // Sends `t` to its assignee; a fresh hand-out (not one sent again to an agent that
  // reconnected on it) carries reservations for the run's first calls when the ledger
  // grants them (AddFirstReservations).
  void SendAssignment(const v1::Task& t, bool fresh = false);
  // Reservations for the first two model calls of `a`'s run, made as ones asked for ahead
  // (ledger.h) and added to `a`: those calls then need not wait for the ledger. None for
  // an agent that did not say it takes them, is not connected or has no model, or when
  // the store cannot say how long a handed-back run's conversation is; only the first,
  // or none, when the ledger refuses them.
  void AddFirstReservations(const v1::Task& t, v1::TaskAssignment* a);
  // Pending tasks whose deps completed become ready; then ready tasks go to agents.
  void Schedule();
  void ScheduleSoon();
  // Stops agents started on demand that have been idle past their role's idle_timeout.
  void StopIdleAgents();
  // The snapshot the scheduler decides on (scheduler.h): every agent the supervisor
  // knows, by id, and the configured roles' limits.
  std::vector<SchedAgent> SchedAgents() const;
  std::map<std::string, SchedRole> SchedRoles() const;
  // A child ended: a parent waiting for its children may go on.
  void ChildEnded(const v1::Task& child);
  bool HasOpenChildren(const v1::Task& t) const;
  // Provider retry `retry` of task `id` is due: handed back unless it moved on meanwhile.
  void ProviderRetryDue(const std::string& id, int retry);
  // A goal whose agent completed it: blocked while its checks run.
  void StartChecks(v1::Task& goal);
  // A round of `goal_id`'s checks ended with `results`.
  void OnChecksDone(const std::string& goal_id, std::vector<v1::GoalCheck> results);
  std::string NewId(const char* prefix);
  // SubmitGoal's checks of everything but the workspace; the role the goal goes to.
  absl::StatusOr<std::string> CheckGoal(const v1::SubmitGoalRequest& req) const;
  // SubmitGoal's last step, with the workspace ready: the goal stored and scheduled.
  absl::StatusOr<v1::Task> CreateGoal(const v1::SubmitGoalRequest& req, const std::string& by,
                                      const std::string& id, const std::string& role,
                                      const v1::Workspace& ws);

  EventLoop* loop_;
  Store* store_;
  Supervisor* supervisor_;
  Ledger* ledger_;
  const ConfigState* config_;
  Options options_;
  Outbox* outbox_;  // not owned
  // AGENTD_STRICT=1 (tests): a transition outside the status machine stops agentd.
  bool strict_ = false;
  // Reads a finished task back from the store (TaskGraph's loader); logs why it cannot.
  std::optional<v1::Task> LoadStored(const std::string& id) const;
  // Every task, its children, the unfinished; finished ones beyond the bound are read back
  // from the store when asked for.
  TaskGraph graph_{[this](const std::string& id) { return LoadStored(id); },
                   options_.resident_finished_tasks, [this] { ShelveSoon(); }};
  // Posts one step that shelves finished tasks beyond the bound (TaskGraph::Shelve).
  void ShelveSoon();
  bool shelve_posted_ = false;
  // Freed memory goes back to the system once this many tasks were shelved since it last
  // did (ReleaseFreedMemory).
  static constexpr size_t kReleaseAfterShelving = 256;
  size_t shelved_since_release_ = 0;
  static void ReleaseFreedMemory();
  void Add(v1::Task t) { graph_.Add(std::move(t)); }
  std::vector<std::string> ChildrenOf(const std::string& id) const { return graph_.ChildrenOf(id); }

  // Requests whose goal's workspace is being prepared: the answers that wait for it.
  std::map<std::string, std::vector<GoalDone>> preparing_;
  std::unique_ptr<WorkspaceProvisioner> workspaces_;
  // (parent, request id) → child, so a retried delegate call creates one task.
  std::map<std::pair<std::string, std::string>, std::string> delegated_;
  std::map<std::string, std::string> busy_;  // agent → task it holds
  std::set<std::string> resume_;             // ready tasks handed back after waiting: same attempt
  DaemonMetrics* metrics_ = nullptr;
  Tracing* tracing_ = nullptr;
  Transcripts* transcripts_ = nullptr;
  std::vector<std::function<void(const v1::Task&)>> observers_;
  // Tasks changed since the observers were last told (Notify), in order of change.
  std::vector<std::string> to_notify_;
  // A subtree's end, saved in one transaction: the changes, the audit entry of its root,
  // and the agents' cancellations, delivered once it is committed.
  struct Batch {
    std::vector<Store::TaskChange> changes;
    std::vector<std::string> ids;
    std::optional<AuditIntent> audit;
    std::vector<std::pair<std::string, v1::ConnectResponse>> deliveries;
  };
  std::optional<Batch> batch_;
  std::function<bool(const std::string&)> plan_pending_;
  std::function<void(const std::string&)> on_attach_;
  std::function<void(const std::string&, int64_t)> on_ack_;
  int64_t next_id_ = 1;
  bool schedule_posted_ = false;
  AuditLog* audit_ = nullptr;
  CheckRunner* checks_ = nullptr;
  std::map<std::string, absl::Time> idle_since_;  // connected agents without a task
  // What a started tool call acts on, by (agent, call id), until it finishes: for agents
  // that send ToolCallStarted and no ToolCallFinished.call_summary. At most
  // kMaxCallTargets.
  static constexpr size_t kMaxCallTargets = 4096;
  std::map<std::pair<std::string, std::string>, std::string> call_targets_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_TASKS_H_
