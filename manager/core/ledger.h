// Ledger: what LLM calls cost, and the budgets that bound them.
//
// An agent reserves budget before each call (Reserve) and reports the call afterwards
// (Report), which settles the reservation. A reservation is checked against every budget
// that covers the call — the goal's, the calling role's and the global one — counting
// what completed calls used plus what granted reservations still hold; the first budget
// the call could push past refuses it, and the refusal says which budget, its limit and
// what is used. So no call is made past a budget, however many agents share it.
//
// Usage records are stored (one row per call, idempotent by record id) with their event;
// totals per scope live in memory and are rebuilt from the store at start. A goal's
// budget and totals are in memory only while the goal may still call: read from the
// store when first needed, and forgotten when it ends (ForgetGoal), so that memory does
// not grow with the history of finished goals. A finished goal's budget is answered
// from the store.
//
// Nothing an agent says about money is believed: costs are tokens × the configured price
// table (models.<name>.price), never the agent's figure. A model missing from the table
// is priced at the highest configured input and output rates — not refused, because a
// report comes after the call and refusing it would lose tokens really spent, and the
// dearest rate means naming an unknown model can only make an agent's calls cost more.
// Token counts are clamped to kMaxTokensPerCall and costs to kMaxCostPerCallUsd, so one
// absurd figure (1e308) cannot poison a budget or the totals for good. A reservation is
// settled only by the agent it was made for.
//
// Reservations live in memory: after a daemon restart an agent simply reserves again. A
// granted reservation not settled within its lifetime is released. Reservation ids are
// "res-<tag>-<n>", the tag random for each ledger, so that one an agent still holds from
// before a restart is never taken for another agent's after it: it is unknown, and
// settling or releasing it does nothing.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_LEDGER_H_
#define AGENTD_MANAGER_CORE_LEDGER_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentd/v1/agent_host.pb.h"
#include "agentd/v1/usage.pb.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/core/metrics.h"
#include "manager/store/store.h"

namespace agentd {

class Ledger {
 public:
  // More than any model's context plus completion; a figure past it is not a real call.
  static constexpr int64_t kMaxTokensPerCall = 10'000'000;
  // A sanity bound on one call's cost, whatever the price table says.
  static constexpr double kMaxCostPerCallUsd = 1000.0;

  // Who is calling, as the daemon knows it (never taken from the agent's word).
  struct Caller {
    std::string agent_id, role, task_id, goal_id;
  };

  // None of the pointers is owned.
  Ledger(EventLoop* loop, Store* store, const ConfigState* config)
      : loop_(loop), store_(store), config_(config) {}

  // Loads the stored global and role budgets and sums stored usage per role and in all;
  // goals' are read when first needed.
  absl::Status Recover();
  // Goal `goal_id` ended: its budget and totals leave memory unless a reservation of it
  // is still held (they are read back if it runs again).
  void ForgetGoal(const std::string& goal_id);
  // How many goals' budgets and totals are in memory.
  size_t goals_in_memory() const;

  // The budget of a goal, set when it is submitted: `limit`'s zero fields take the
  // configured per-goal defaults (policy.budget).
  absl::Status SetGoalBudget(const std::string& goal_id, const v1::BudgetLimit& limit);

  // Grants or refuses one call. Its cost is estimated_tokens (clamped) at the model's
  // dearer rate; the agent's estimated_cost_usd is not used. A reservation asked for
  // `ahead` of its call is refused where it would take a scope past half its limit, and
  // its refusal records no event (the call asks again). A call that only such guesses
  // push past a limit is refused with retry_after and no event. Errors:
  // INVALID_ARGUMENT (negative or non-finite estimates).
  absl::StatusOr<v1::BudgetReservation> Reserve(const Caller& caller,
                                                const v1::ReserveBudgetRequest& req);
  // Records a completed call and settles its reservation. Tokens are clamped and the cost
  // is computed here (see the top of this file). A retried report (same record id) is
  // recorded once and returns the stored figures. Errors: INVALID_ARGUMENT (negative
  // tokens), PERMISSION_DENIED (record.reservation_id is another agent's), store errors.
  absl::StatusOr<v1::UsageRecord> Report(const Caller& caller, v1::UsageRecord record);
  // The granted, unsettled reservation `id`, or nullptr. Valid until the next call.
  const v1::BudgetReservation* Reservation(const std::string& id) const;
  // Releases the reservations still held for `task_id` (the task ended).
  void ReleaseTask(const std::string& task_id);
  // Releases reservation `id`, which `agent_id` made and did not use. One no longer held
  // is ignored. Errors: PERMISSION_DENIED (another agent's).
  absl::Status Release(const std::string& agent_id, const std::string& id);

  // Errors: INVALID_ARGUMENT (unspecified scope, or GOAL/ROLE without an id).
  absl::StatusOr<v1::Budget> GetBudget(v1::BudgetScope scope, const std::string& scope_id) const;
  // Stores new limits; then tells the budget observers (after the store accepted them).
  absl::StatusOr<v1::Budget> SetBudget(const v1::SetBudgetRequest& req, const std::string& by);
  // Called on the loop after every SetBudget that was stored.
  void AddBudgetObserver(std::function<void()> fn) { budget_observers_.push_back(std::move(fn)); }
  // The calls the filter selects, newest first, one page. Errors: INVALID_ARGUMENT (a page
  // token this server did not issue), store errors.
  absl::StatusOr<v1::ListUsageRecordsResponse> ListRecords(
      const v1::ListUsageRecordsRequest& req) const;
  // Sums the calls the filter selects, in total and per group. Errors: store errors.
  absl::StatusOr<v1::GetUsageResponse> GetUsage(const v1::GetUsageRequest& req) const;
  // Where calls, tokens and cost are counted; not owned, may be null.
  void SetMetrics(DaemonMetrics* metrics) { metrics_ = metrics; }

 private:
  DaemonMetrics* metrics_ = nullptr;
  std::vector<std::function<void()>> budget_observers_;
  using Key = std::pair<int, std::string>;  // (v1::BudgetScope, scope id)
  struct Limit {
    int64_t max_tokens = 0;
    double max_cost_usd = 0;
    absl::Time update_time;
    std::string updated_by;
  };
  struct Use {
    int64_t used_tokens = 0, reserved_tokens = 0;
    double used_cost = 0, reserved_cost = 0;
    // Of the reserved, what reservations asked for ahead of their calls hold.
    int64_t ahead_tokens = 0;
    double ahead_cost = 0;
  };
  // The limits of a scope: stored ones, else configured ones (global none, roles none).
  Limit LimitOf(const Key& key) const;
  // A goal key is in memory when use_ has it (limits_ then has its stored limit, if any).
  // Reads goal `goal_id`'s into memory when it is not; false (logged) when the store
  // cannot be read, and nothing is kept.
  bool LoadGoal(const std::string& goal_id);
  // A goal's stored limit (none: the configured one applies) and used totals.
  struct StoredGoal {
    std::optional<Limit> limit;
    Use use;
  };
  absl::StatusOr<StoredGoal> ReadGoal(const std::string& goal_id) const;
  v1::Budget ToProto(const Key& key) const;
  static v1::Budget ToProto(const Key& key, const Limit& limit, const Use& use);
  // Sets the limit of `key` with its row and "budget.changed" event; on a store error
  // nothing changes. Returns the budget as it is after.
  absl::StatusOr<v1::Budget> SaveLimit(const Key& key, const Limit& l);
  // The configured model a provider's model name belongs to, or nullptr.
  const ModelConfig* FindModel(const std::string& provider, const std::string& model) const;
  // The rates (USD per million tokens) a call to provider/model is priced at: the model's
  // own, or the highest configured ones when the model is not in the table.
  std::pair<double, double> Rates(const std::string& provider, const std::string& model) const;
  void Settle(const std::string& reservation_id, v1::BudgetReservationStatus status);
  static std::string NewReservationPrefix();

  EventLoop* loop_;
  Store* store_;
  const ConfigState* config_;
  std::map<Key, Limit> limits_;
  std::map<Key, Use> use_;
  std::map<std::string, v1::BudgetReservation> reservations_;  // GRANTED, unsettled
  std::set<std::string> ahead_;  // of those, the ones asked for ahead of their calls
  std::set<std::string> ended_;  // goals that ended while a reservation of theirs was held
  std::map<std::string, EventLoop::TimerId> expiry_;  // of those, each one's expiry timer
  const std::string reservation_prefix_ = NewReservationPrefix();  // "res-<tag>-"
  int64_t next_reservation_ = 1;
  int64_t next_record_ = 1;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_LEDGER_H_
