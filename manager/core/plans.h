// PlanBook: the plans agents propose for their tasks — validation, approval by policy
// or by a person, and execution as child tasks.
//
// A proposal is checked in full and every problem is reported at once, each with the
// step and field at fault and a message written for the proposing model: no steps,
// missing fields, duplicate step ids, deps on unknown steps, cycles (named step by
// step), roles that are not configured, too many steps, estimates over the goal's
// remaining budget. A valid plan is stored; an earlier undecided proposal for the same
// task is superseded. Under the goal's `auto` policy it is approved at once; under
// `manual` a person approves it (its estimates shown) or rejects it with a reason that
// goes back to the proposer, whose task is handed back to it to revise.
//
// An approved plan becomes one child task per step, deps mapped from step ids to task
// ids; the scheduler runs them in parallel where deps allow. The plan completes when all
// its step tasks complete, and fails when one fails for good (dependents then fail as
// DEPENDENCY_FAILED); either way the proposing task is handed back with the results.
// With policy.on_plan_failure rollback, agentd takes a checkpoint of the workspace before
// a plan's steps start (WorkspaceGit), and when the plan fails, once none of its steps
// runs any more, puts the workspace back to it; the proposing task waits for that, and is
// told what was undone (a message from "agentd") when it is handed back.
//
// Finished work lives in the store, not in memory. A plan is kept in memory while its
// task has not ended, and while it is proposed, approved, executing or due a rollback;
// once its task has ended and nothing more can happen to it, it is forgotten, and Get and
// List read it from the store. At start only the plans of goals that have not ended and
// those still proposed, approved or executing are read back. A plan that failed and
// whose rollback agentd had not recorded when it stopped is rolled back after a restart
// if its goal is still open; the workspace of a goal that ended meanwhile is left as it is.
// A repeated proposal (same request id) answers with the plan it made while that plan is
// in memory; after it was forgotten, or after a restart, it is a new proposal. A plan
// still proposed when its task ended (its goal was canceled or failed meanwhile) can never
// run: it fails then ("plan.failed"), and is no longer offered to anyone to decide; if a
// person retries the task, its agent proposes afresh. One agentd stopped before failing
// is failed at the next start.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_PLANS_H_
#define AGENTD_MANAGER_CORE_PLANS_H_

#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentd/v1/agent_host.pb.h"
#include "agentd/v1/plans.pb.h"
#include "manager/core/audit.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/core/ledger.h"
#include "manager/core/tasks.h"
#include "manager/core/workspace_git.h"
#include "manager/store/store.h"

namespace agentd {

class PlanBook {
 public:
  // Steps a plan may have.
  static constexpr int kMaxSteps = 256;

  // What PlanBook records decisions with, takes checkpoints through and tells agents
  // with; none owned, each may be null (tests): no audit entries, no rollback, no notes.
  struct Services {
    AuditLog* audit = nullptr;
    WorkspaceGit* git = nullptr;
    // Tells the agent working on task `task_id` something from agentd (a message).
    std::function<void(const std::string& task_id, const std::string& text)> tell;
  };

  // None of the pointers is owned.
  PlanBook(EventLoop* loop, Store* store, Outbox* outbox, TaskBoard* tasks, Ledger* ledger,
           const ConfigState* config, Services services)
      : loop_(loop),
        store_(store),
        outbox_(outbox),
        tasks_(tasks),
        ledger_(ledger),
        config_(config),
        audit_(services.audit),
        git_(services.git),
        tell_(std::move(services.tell)) {}

  absl::Status Recover();

  // A proposal by `agent` for a task it holds. An invalid plan is not an error: the
  // response carries its violations. Errors: PERMISSION_DENIED / NOT_FOUND (the task).
  absl::StatusOr<v1::ProposePlanResponse> Propose(const std::string& agent,
                                                  const v1::ProposePlanRequest& req);
  // Errors: NOT_FOUND; FAILED_PRECONDITION (not PROPOSED, saying what it is);
  // INVALID_ARGUMENT (a rejection without a reason). A non-empty `comment` (the
  // approver's note) goes into the audit entry, cut to kMaxCommentBytes.
  absl::StatusOr<v1::Plan> Approve(const std::string& id, const std::string& by,
                                   const std::string& comment = "");
  static constexpr size_t kMaxCommentBytes = 4096;
  // A person's approval, of the plan as proposed (no steps in `req`) or as they edited it:
  // the edit is validated as a proposal is; a valid one supersedes the proposal with a
  // new revision proposed by `by`, approved at once, and its proposer is told. With
  // validate_only nothing changes, and the response carries the violations. Errors: as
  // Approve; FAILED_PRECONDITION for editing a plan that is not PROPOSED; INVALID_ARGUMENT
  // for an invalid edit (every violation in the message).
  absl::StatusOr<v1::ApprovePlanResponse> Decide(const v1::ApprovePlanRequest& req,
                                                 const std::string& by);
  absl::StatusOr<v1::Plan> Reject(const std::string& id, const std::string& reason,
                                  const std::string& by);
  // Errors: NOT_FOUND; UNAVAILABLE when the store cannot be read.
  absl::StatusOr<v1::Plan> Get(const std::string& id) const;
  // Newest first. Errors: UNAVAILABLE when the store cannot be read.
  absl::StatusOr<v1::ListPlansResponse> List(const v1::ListPlansRequest& req) const;
  // How many plans are kept in memory.
  size_t plans_in_memory() const { return plans_.size(); }

  // Whether `task_id` has a proposal waiting for a decision, or a failed plan being rolled
  // back (its task waits for it).
  bool Pending(const std::string& task_id) const;
  // A task changed: a step task that ended may end its plan.
  void OnTask(const v1::Task& task);

 private:
  // A FAILED plan none of whose steps runs any more: its workspace goes back to its
  // checkpoint (policy.on_plan_failure rollback), once.
  void MaybeRollBack(v1::Plan& plan);
  std::vector<v1::PlanViolation> Validate(const v1::ProposePlanRequest& req,
                                          const v1::Task& task) const;
  // `steps` as the plan's (task ids cleared), with its total estimate.
  static void SetSteps(const google::protobuf::RepeatedPtrField<v1::PlanStep>& steps,
                       v1::Plan* plan);
  // The plan's row and its event payload, as Save stores them.
  static std::pair<PlanRow, std::string> RowOf(const v1::Plan& plan);
  void Save(v1::Plan& plan, const char* event, const std::string& agent = "");
  // Creates the step tasks of an approved plan.
  void Execute(v1::Plan& plan);
  // The plan in memory, or null when it is not kept (it may be in the store).
  v1::Plan* Resident(const std::string& id);
  // Keeps `plan` in memory (a new one, or one read back at start).
  v1::Plan& Keep(v1::Plan plan);
  // Every plan of `task_id`, in memory or stored, oldest first.
  absl::StatusOr<std::vector<v1::Plan>> PlansOfTask(const std::string& task_id) const;
  // Whether nothing more can happen to the plan: decided against, completed, or failed
  // with no rollback to come.
  bool Settled(const v1::Plan& plan) const;
  // Whether the plan failed after its steps were made, and its workspace is to go back to
  // its checkpoint (policy.on_plan_failure rollback) and has not yet.
  bool RollbackDue(const v1::Plan& plan) const;
  // In a step of its own (no plan is held then): forgets the plans of `task_id` when the
  // task has ended and every one of them is settled.
  void ForgetSoon(const std::string& task_id);
  void MaybeForget(const std::string& task_id);

  EventLoop* loop_;
  Store* store_;
  Outbox* outbox_;
  TaskBoard* tasks_;
  Ledger* ledger_;
  const ConfigState* config_;
  std::map<std::string, v1::Plan> plans_;                    // in memory, by id
  std::map<std::string, std::vector<std::string>> by_task_;  // task → ids in plans_, oldest first
  std::map<std::pair<std::string, std::string>, std::string> by_key_;  // (task, request id)
  int64_t next_id_ = 1;
  AuditLog* audit_ = nullptr;
  WorkspaceGit* git_ = nullptr;
  std::function<void(const std::string&, const std::string&)> tell_;
  std::set<std::string> rolling_back_;  // plan ids
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_PLANS_H_
