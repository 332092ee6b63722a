#include "manager/core/ledger.h"

#include <set>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/token.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

// A reservation nobody settles is released after this long: longer than any sane LLM
// call, short enough that a dead agent's hold does not block its goal for long.
constexpr absl::Duration kReservationLifetime = absl::Minutes(15);
// How far a reservation asked for ahead of its call may fill a budget (Reserve), and
// when a call that only such guesses stand in the way of asks again.
constexpr double kAheadShare = 0.5;
constexpr absl::Duration kAheadRetry = absl::Milliseconds(200);

std::string ScopeName(int scope, const std::string& id) {
  switch (scope) {
    case v1::BUDGET_SCOPE_GOAL:
      return absl::StrCat("goal ", id);
    case v1::BUDGET_SCOPE_ROLE:
      return absl::StrCat("role ", id);
    default:
      return "global";
  }
}

void Add(v1::UsageTotals* t, const UsageRow& u) {
  t->set_calls(t->calls() + 1);
  t->set_prompt_tokens(t->prompt_tokens() + u.prompt_tokens);
  t->set_completion_tokens(t->completion_tokens() + u.completion_tokens);
  t->set_total_tokens(t->total_tokens() + u.prompt_tokens + u.completion_tokens);
  t->set_cost_usd(t->cost_usd() + u.cost_usd);
  absl::Duration latency = FromProto(t->latency()) + absl::Microseconds(u.latency_us);
  SetDuration(latency, t->mutable_latency());
}

}  // namespace

absl::Status Ledger::Recover() {
  absl::StatusOr<std::vector<BudgetRow>> budgets = store_->LoadBudgets(v1::BUDGET_SCOPE_GOAL);
  if (!budgets.ok()) return budgets.status();
  for (const BudgetRow& b : *budgets) {
    limits_[{static_cast<int>(b.scope), b.scope_id}] = {
        b.max_tokens, b.max_cost_usd, absl::FromUnixMicros(b.update_us), b.updated_by};
  }
  // Sums by SQL: start-up does not read every call ever made, nor every goal.
  absl::StatusOr<std::vector<UsageRow>> sums = store_->SumUsageByRole();
  if (!sums.ok()) return sums.status();
  for (const UsageRow& u : *sums) {
    for (const Key& k : {Key{v1::BUDGET_SCOPE_GLOBAL, ""}, Key{v1::BUDGET_SCOPE_ROLE, u.role}}) {
      if (k.first != v1::BUDGET_SCOPE_GLOBAL && k.second.empty()) continue;
      use_[k].used_tokens += u.prompt_tokens;
      use_[k].used_cost += u.cost_usd;
    }
  }
  absl::StatusOr<int64_t> count = store_->CountUsage();
  if (!count.ok()) return count.status();
  next_record_ = *count + 1;
  return absl::OkStatus();
}

absl::StatusOr<Ledger::StoredGoal> Ledger::ReadGoal(const std::string& goal_id) const {
  StoredGoal g;
  absl::StatusOr<std::optional<BudgetRow>> row = store_->LoadBudget(v1::BUDGET_SCOPE_GOAL, goal_id);
  if (!row.ok()) {
    return absl::UnavailableError(absl::StrCat("reading budgets: ", row.status().message()));
  }
  if (row->has_value()) {
    const BudgetRow& b = **row;
    g.limit = Limit{b.max_tokens, b.max_cost_usd, absl::FromUnixMicros(b.update_us), b.updated_by};
  }
  absl::StatusOr<UsageRow> sum = store_->SumUsageOfGoal(goal_id);
  if (!sum.ok()) {
    return absl::UnavailableError(absl::StrCat("reading usage: ", sum.status().message()));
  }
  g.use.used_tokens = sum->prompt_tokens;
  g.use.used_cost = sum->cost_usd;
  return g;
}

bool Ledger::LoadGoal(const std::string& goal_id) {
  if (goal_id.empty()) return true;
  Key key{v1::BUDGET_SCOPE_GOAL, goal_id};
  if (use_.count(key) != 0) return true;
  absl::StatusOr<StoredGoal> stored = ReadGoal(goal_id);
  if (!stored.ok()) {
    spdlog::error("goal {}: {}", goal_id, stored.status().message());
    return false;
  }
  if (stored->limit.has_value()) limits_[key] = *stored->limit;
  use_[key] = stored->use;
  return true;
}

void Ledger::ForgetGoal(const std::string& goal_id) {
  for (const auto& [id, r] : reservations_) {
    if (r.goal_id() == goal_id) {
      ended_.insert(goal_id);  // forgotten when its last reservation is settled or expires
      return;
    }
  }
  ended_.erase(goal_id);
  use_.erase({v1::BUDGET_SCOPE_GOAL, goal_id});
  limits_.erase({v1::BUDGET_SCOPE_GOAL, goal_id});
}

size_t Ledger::goals_in_memory() const {
  size_t n = 0;
  for (const auto& [key, use] : use_) n += key.first == v1::BUDGET_SCOPE_GOAL;
  return n;
}

Ledger::Limit Ledger::LimitOf(const Key& key) const {
  if (auto it = limits_.find(key); it != limits_.end()) return it->second;
  Limit l;
  l.updated_by = "config";
  if (key.first == v1::BUDGET_SCOPE_GOAL) {
    l.max_tokens = config_->config().policy.budget_goal_tokens;
    l.max_cost_usd = config_->config().policy.budget_goal_usd;
  }
  return l;
}

absl::Status Ledger::SetGoalBudget(const std::string& goal_id, const v1::BudgetLimit& limit) {
  if (!LoadGoal(goal_id)) return absl::UnavailableError("the store cannot be read");
  const PolicyConfig& p = config_->config().policy;
  Limit l;
  l.max_tokens = limit.max_tokens() > 0 ? limit.max_tokens() : p.budget_goal_tokens;
  l.max_cost_usd = limit.max_cost_usd() > 0 ? limit.max_cost_usd() : p.budget_goal_usd;
  l.update_time = loop_->clock()->Now();
  l.updated_by = "goal";
  return SaveLimit({v1::BUDGET_SCOPE_GOAL, goal_id}, l).status();
}

absl::StatusOr<v1::Budget> Ledger::SaveLimit(const Key& key, const Limit& l) {
  // The event carries the budget as it is after the change; memory changes only with
  // the row.
  std::optional<Limit> before;
  if (auto it = limits_.find(key); it != limits_.end()) before = it->second;
  limits_[key] = l;
  v1::Budget after = ToProto(key);
  BudgetRow row{
      key.first,   key.second, l.max_tokens, l.max_cost_usd, absl::ToUnixMicros(l.update_time),
      l.updated_by};
  absl::Status s =
      store_->SaveBudget(row, l.update_time, after.SerializeAsString(),
                         key.first == v1::BUDGET_SCOPE_GOAL ? key.second : std::string());
  if (!s.ok()) {
    if (before) {
      limits_[key] = *before;
    } else {
      limits_.erase(key);
    }
    return s;
  }
  return after;
}

const ModelConfig* Ledger::FindModel(const std::string& provider, const std::string& model) const {
  for (const auto& [name, m] : config_->config().models) {
    if (m.provider == provider && (m.model == model || name == model)) return &m;
  }
  return nullptr;
}

std::pair<double, double> Ledger::Rates(const std::string& provider,
                                        const std::string& model) const {
  if (const ModelConfig* m = FindModel(provider, model)) {
    return {m->price.input_per_mtok, m->price.output_per_mtok};
  }
  std::pair<double, double> highest{0, 0};
  for (const auto& [name, m] : config_->config().models) {
    highest.first = std::max(highest.first, m.price.input_per_mtok);
    highest.second = std::max(highest.second, m.price.output_per_mtok);
  }
  return highest;
}

std::string Ledger::NewReservationPrefix() {
  uint32_t tag = 0;
  // The clock when the kernel has no randomness to give: still another tag after a restart.
  if (!FillRandom(&tag, sizeof(tag))) tag = static_cast<uint32_t>(absl::ToUnixMicros(absl::Now()));
  return absl::StrFormat("res-%08x-", tag);
}

const v1::BudgetReservation* Ledger::Reservation(const std::string& id) const {
  auto it = reservations_.find(id);
  return it == reservations_.end() ? nullptr : &it->second;
}

absl::StatusOr<v1::BudgetReservation> Ledger::Reserve(const Caller& caller,
                                                      const v1::ReserveBudgetRequest& req) {
  if (req.estimated_tokens() < 0 || req.estimated_cost_usd() < 0 ||
      !std::isfinite(req.estimated_cost_usd())) {
    return absl::InvalidArgumentError(
        "estimated_tokens and estimated_cost_usd must be finite and >= 0");
  }
  if (!LoadGoal(caller.goal_id)) {
    return absl::UnavailableError("the goal's budget cannot be read from the store; try again");
  }
  ended_.erase(caller.goal_id);  // it runs again (a retry)
  const int64_t tokens = std::min(req.estimated_tokens(), kMaxTokensPerCall);
  absl::Time now = loop_->clock()->Now();
  v1::BudgetReservation r;
  r.set_agent_id(caller.agent_id);
  r.set_task_id(caller.task_id);
  r.set_goal_id(caller.goal_id);
  r.set_role(caller.role);
  r.set_provider(req.provider());
  r.set_model(req.model());
  r.set_estimated_tokens(tokens);
  // The daemon's price table, not the agent's arithmetic. Without the split of prompt
  // and completion, every token is priced at the dearer rate.
  auto [in_rate, out_rate] = Rates(req.provider(), req.model());
  double cost =
      std::min(static_cast<double>(tokens) * std::max(in_rate, out_rate) / 1e6, kMaxCostPerCallUsd);
  r.set_estimated_cost_usd(cost);
  SetTime(now, r.mutable_create_time());

  std::vector<Key> scopes = {{v1::BUDGET_SCOPE_GOAL, caller.goal_id},
                             {v1::BUDGET_SCOPE_ROLE, caller.role},
                             {v1::BUDGET_SCOPE_GLOBAL, ""}};
  for (const Key& k : scopes) {
    if (k.first != v1::BUDGET_SCOPE_GLOBAL && k.second.empty()) continue;
    Limit l = LimitOf(k);
    const Use& u = use_[k];
    // Past the limit with what is held, and without the guesses held ahead of calls.
    // A guess made early may fill a budget only up to half its limit.
    const double share = req.ahead() ? kAheadShare : 1.0;
    auto over_cost = [&](double held) {
      return l.max_cost_usd > 0 && u.used_cost + held + cost > l.max_cost_usd * share;
    };
    auto over_tokens = [&](int64_t held) {
      return l.max_tokens > 0 && static_cast<double>(u.used_tokens + held + tokens) >
                                     static_cast<double>(l.max_tokens) * share;
    };
    std::string why;
    if (over_cost(u.reserved_cost)) {
      why = absl::StrFormat(
          "%s budget of $%.4f would be exceeded: $%.4f used, $%.4f held by calls in flight, "
          "this call may cost up to $%.4f",
          ScopeName(k.first, k.second), l.max_cost_usd, u.used_cost, u.reserved_cost, cost);
    } else if (over_tokens(u.reserved_tokens)) {
      why = absl::StrFormat(
          "%s budget of %d tokens would be exceeded: %d used, %d held by calls in flight, this "
          "call may use up to %d",
          ScopeName(k.first, k.second), l.max_tokens, u.used_tokens, u.reserved_tokens, tokens);
    }
    if (!why.empty()) {
      r.set_status(v1::BUDGET_RESERVATION_STATUS_REFUSED);
      r.set_refusal_reason(why);
      r.set_limiting_scope(static_cast<v1::BudgetScope>(k.first));
      r.set_limiting_scope_id(k.second);
      if (req.ahead()) return r;  // the call itself asks again, and is recorded then
      if (!over_cost(u.reserved_cost - u.ahead_cost) &&
          !over_tokens(u.reserved_tokens - u.ahead_tokens)) {
        // Only guesses stand in the way, and they are used or released within moments.
        r.set_refusal_reason(absl::StrCat(
            why, " (of it held ahead of other calls: ", u.ahead_tokens, " tokens; ask again)"));
        r.mutable_retry_after()->set_nanos(
            static_cast<int32_t>(absl::ToInt64Nanoseconds(kAheadRetry)));
        return r;
      }
      nlohmann::json payload = {{"agent", caller.agent_id}, {"reason", why}};
      if (auto s = store_->AppendEvent(now, "budget.refused", DumpJson(payload), caller.agent_id,
                                       caller.task_id, caller.goal_id);
          !s.ok()) {
        spdlog::error("recording a budget refusal: {}", s.status().message());
      }
      return r;
    }
  }
  r.set_id(absl::StrCat(reservation_prefix_, next_reservation_++));
  r.set_status(v1::BUDGET_RESERVATION_STATUS_GRANTED);
  SetTime(now + kReservationLifetime, r.mutable_expire_time());
  for (const Key& k : scopes) {
    if (k.first != v1::BUDGET_SCOPE_GLOBAL && k.second.empty()) continue;
    use_[k].reserved_tokens += tokens;
    use_[k].reserved_cost += cost;
    if (req.ahead()) {
      use_[k].ahead_tokens += tokens;
      use_[k].ahead_cost += cost;
    }
  }
  reservations_[r.id()] = r;
  if (req.ahead()) ahead_.insert(r.id());
  // Canceled when the reservation is settled or released first: a timer per call kept for
  // the whole lifetime would hold memory in proportion to the call rate.
  expiry_[r.id()] = loop_->RunAt(now + kReservationLifetime, [this, id = r.id()] {
    Settle(id, v1::BUDGET_RESERVATION_STATUS_EXPIRED);
  });
  return r;
}

void Ledger::Settle(const std::string& id, v1::BudgetReservationStatus) {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return;
  if (auto timer = expiry_.find(id); timer != expiry_.end()) {
    loop_->Cancel(timer->second);  // false when this is the timer running
    expiry_.erase(timer);
  }
  const v1::BudgetReservation& r = it->second;
  for (const Key& k : {Key{v1::BUDGET_SCOPE_GOAL, r.goal_id()},
                       Key{v1::BUDGET_SCOPE_ROLE, r.role()}, Key{v1::BUDGET_SCOPE_GLOBAL, ""}}) {
    if (k.first != v1::BUDGET_SCOPE_GLOBAL && k.second.empty()) continue;
    if (k.first == v1::BUDGET_SCOPE_GOAL && use_.count(k) == 0) continue;  // not in memory
    Use& u = use_[k];
    u.reserved_tokens = std::max<int64_t>(0, u.reserved_tokens - r.estimated_tokens());
    u.reserved_cost = std::max(0.0, u.reserved_cost - r.estimated_cost_usd());
    if (ahead_.count(id) != 0) {
      u.ahead_tokens = std::max<int64_t>(0, u.ahead_tokens - r.estimated_tokens());
      u.ahead_cost = std::max(0.0, u.ahead_cost - r.estimated_cost_usd());
    }
  }
  ahead_.erase(id);
  std::string goal = r.goal_id();
  reservations_.erase(it);
  if (ended_.count(goal) != 0) ForgetGoal(goal);
}

void Ledger::ReleaseTask(const std::string& task_id) {
  std::vector<std::string> ids;
  for (const auto& [id, r] : reservations_) {
    if (r.task_id() == task_id) ids.push_back(id);
  }
  for (const std::string& id : ids) Settle(id, v1::BUDGET_RESERVATION_STATUS_RELEASED);
}

absl::Status Ledger::Release(const std::string& agent_id, const std::string& id) {
  auto it = reservations_.find(id);
  if (it == reservations_.end()) return absl::OkStatus();  // settled, released or expired
  if (it->second.agent_id() != agent_id) {
    return absl::PermissionDeniedError(
        absl::StrCat("reservation \"", id, "\" was made by agent \"", it->second.agent_id(), "\""));
  }
  Settle(id, v1::BUDGET_RESERVATION_STATUS_RELEASED);
  return absl::OkStatus();
}

absl::StatusOr<v1::UsageRecord> Ledger::Report(const Caller& caller, v1::UsageRecord rec) {
  if (rec.prompt_tokens() < 0 || rec.completion_tokens() < 0) {
    return absl::InvalidArgumentError("prompt_tokens and completion_tokens must be >= 0");
  }
  if (const v1::BudgetReservation* held = Reservation(rec.reservation_id());
      held != nullptr && held->agent_id() != caller.agent_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "reservation \"", rec.reservation_id(), "\" was made by agent \"", held->agent_id(),
        "\", not \"", caller.agent_id, "\": an agent settles only its own reservations"));
  }
  if (rec.prompt_tokens() > kMaxTokensPerCall || rec.completion_tokens() > kMaxTokensPerCall) {
    spdlog::warn(
        "agent {} reported {} prompt and {} completion tokens for one call; counted as "
        "at most {} each",
        caller.agent_id, rec.prompt_tokens(), rec.completion_tokens(), kMaxTokensPerCall);
    rec.set_prompt_tokens(std::min(rec.prompt_tokens(), kMaxTokensPerCall));
    rec.set_completion_tokens(std::min(rec.completion_tokens(), kMaxTokensPerCall));
  }
  // Label values come from the configuration, never from what an agent sent: an agent
  // cannot grow /metrics without bound.
  const std::string provider_label =
      config_->config().providers.count(rec.provider()) ? rec.provider() : "other";
  const std::string model_label =
      FindModel(rec.provider(), rec.model()) != nullptr ? rec.model() : "other";
  static const std::set<std::string>* kOutcomes = new std::set<std::string>{
      "ok", "timeout", "unavailable", "rate_limited", "refused", "error", "canceled"};
  std::string outcome = rec.outcome().empty() ? "ok" : rec.outcome();
  if (kOutcomes->count(outcome) == 0) outcome = "error";
  rec.set_outcome(outcome);
  auto observe_call = [&] {
    if (metrics_ == nullptr) return;
    metrics_->llm_calls->Add({provider_label, model_label, caller.role, outcome});
    if (rec.has_latency()) {
      metrics_->llm_call_seconds->Observe({provider_label, model_label, outcome},
                                          absl::ToDoubleSeconds(FromProto(rec.latency())));
    }
    if (rec.has_time_to_first_token()) {
      metrics_->llm_first_token_seconds->Observe(
          {provider_label, model_label},
          absl::ToDoubleSeconds(FromProto(rec.time_to_first_token())));
    }
    if (rec.attempts() > 1) {
      metrics_->llm_retries->Add({provider_label, model_label},
                                 static_cast<double>(std::min(rec.attempts(), 100) - 1));
    }
  };
  if (outcome != "ok") {
    // A call that failed has no usage: its reservation is released, and only the metrics
    // count it — once: a report repeated after its reservation was settled is not counted.
    const bool repeated =
        !rec.reservation_id().empty() && Reservation(rec.reservation_id()) == nullptr;
    Settle(rec.reservation_id(), v1::BUDGET_RESERVATION_STATUS_RELEASED);
    rec.set_prompt_tokens(0);
    rec.set_completion_tokens(0);
    rec.set_cost_usd(0);
    rec.set_agent_id(caller.agent_id);
    rec.set_task_id(caller.task_id);
    rec.set_goal_id(caller.goal_id);
    rec.set_role(caller.role);
    if (!repeated) observe_call();
    return rec;
  }
  absl::Time now = loop_->clock()->Now();
  rec.set_agent_id(caller.agent_id);
  rec.set_task_id(caller.task_id);
  rec.set_goal_id(caller.goal_id);
  rec.set_role(caller.role);
  if (rec.id().empty()) {
    rec.set_id(absl::StrCat("use-", absl::ToUnixMicros(now), "-", next_record_++));
  } else {
    rec.set_id(absl::StrCat(caller.agent_id, "/", rec.id()));
  }
  // Tokens × the price table; the agent's cost_usd is never used (see the header).
  auto [in_rate, out_rate] = Rates(rec.provider(), rec.model());
  double cost = (static_cast<double>(rec.prompt_tokens()) * in_rate +
                 static_cast<double>(rec.completion_tokens()) * out_rate) /
                1e6;
  rec.set_cost_usd(std::isfinite(cost) ? std::clamp(cost, 0.0, kMaxCostPerCallUsd) : 0.0);
  SetTime(now, rec.mutable_time());
  UsageRow row;
  row.id = rec.id();
  row.time_us = absl::ToUnixMicros(now);
  row.agent_id = rec.agent_id();
  row.task_id = rec.task_id();
  row.goal_id = rec.goal_id();
  row.role = rec.role();
  row.provider = rec.provider();
  row.model = rec.model();
  row.prompt_tokens = rec.prompt_tokens();
  row.completion_tokens = rec.completion_tokens();
  row.cost_usd = rec.cost_usd();
  row.latency_us = absl::ToInt64Microseconds(FromProto(rec.latency()));
  row.reservation_id = rec.reservation_id();
  nlohmann::json payload = {{"agent", row.agent_id},
                            {"model", row.model},
                            {"prompt_tokens", row.prompt_tokens},
                            {"completion_tokens", row.completion_tokens},
                            {"cost_usd", row.cost_usd}};
  absl::StatusOr<bool> added = store_->AddUsage(row, payload.dump(), rec.SerializeAsString());
  if (!added.ok()) return added.status();
  Settle(rec.reservation_id(), v1::BUDGET_RESERVATION_STATUS_SETTLED);
  if (*added) {
    for (const Key& k : {Key{v1::BUDGET_SCOPE_GOAL, row.goal_id},
                         Key{v1::BUDGET_SCOPE_ROLE, row.role}, Key{v1::BUDGET_SCOPE_GLOBAL, ""}}) {
      if (k.first != v1::BUDGET_SCOPE_GLOBAL && k.second.empty()) continue;
      // A goal not in memory is summed from the store when it is read back.
      if (k.first == v1::BUDGET_SCOPE_GOAL && use_.count(k) == 0) continue;
      use_[k].used_tokens += row.prompt_tokens + row.completion_tokens;
      use_[k].used_cost += row.cost_usd;
    }
    observe_call();
    if (metrics_ != nullptr) {
      metrics_->tokens->Add({row.role, model_label, "input"},
                            static_cast<double>(row.prompt_tokens));
      metrics_->tokens->Add({row.role, model_label, "output"},
                            static_cast<double>(row.completion_tokens));
      metrics_->cost_usd->Add({row.role, model_label}, row.cost_usd);
    }
  }
  return rec;
}

v1::Budget Ledger::ToProto(const Key& key) const {
  auto it = use_.find(key);
  return ToProto(key, LimitOf(key), it != use_.end() ? it->second : Use());
}

v1::Budget Ledger::ToProto(const Key& key, const Limit& l, const Use& u) {
  v1::Budget b;
  b.set_scope(static_cast<v1::BudgetScope>(key.first));
  b.set_scope_id(key.second);
  b.set_max_tokens(l.max_tokens);
  b.set_max_cost_usd(l.max_cost_usd);
  b.set_used_tokens(u.used_tokens);
  b.set_used_cost_usd(u.used_cost);
  b.set_reserved_tokens(u.reserved_tokens);
  b.set_reserved_cost_usd(u.reserved_cost);
  if (l.update_time != absl::Time()) SetTime(l.update_time, b.mutable_update_time());
  b.set_updated_by(l.updated_by);
  return b;
}

absl::StatusOr<v1::Budget> Ledger::GetBudget(v1::BudgetScope scope,
                                             const std::string& scope_id) const {
  if (scope == v1::BUDGET_SCOPE_UNSPECIFIED) {
    return absl::InvalidArgumentError("scope is required: GLOBAL, GOAL or ROLE");
  }
  if (scope != v1::BUDGET_SCOPE_GLOBAL && scope_id.empty()) {
    return absl::InvalidArgumentError("scope_id is required for a GOAL or ROLE budget");
  }
  if (scope == v1::BUDGET_SCOPE_GOAL && use_.count({scope, scope_id}) == 0) {
    // Not in memory: as the store has it (the configured limit when none is stored).
    absl::StatusOr<StoredGoal> stored = ReadGoal(scope_id);
    if (!stored.ok()) return stored.status();
    Key key{scope, scope_id};
    return ToProto(key, stored->limit.value_or(LimitOf(key)), stored->use);
  }
  return ToProto({scope, scope == v1::BUDGET_SCOPE_GLOBAL ? "" : scope_id});
}

absl::StatusOr<v1::Budget> Ledger::SetBudget(const v1::SetBudgetRequest& req,
                                             const std::string& by) {
  absl::StatusOr<v1::Budget> check = GetBudget(req.scope(), req.scope_id());
  if (!check.ok()) return check.status();
  if (req.limit().max_tokens() < 0 || req.limit().max_cost_usd() < 0) {
    return absl::InvalidArgumentError("limits must be >= 0 (0 removes a limit)");
  }
  Key key{req.scope(), req.scope() == v1::BUDGET_SCOPE_GLOBAL ? "" : req.scope_id()};
  // A goal not in memory (finished, or not called for since a restart) is read back for
  // the change and left in the store again: a retry reads it back when it calls.
  const bool goal_away = key.first == v1::BUDGET_SCOPE_GOAL && use_.count(key) == 0;
  if (goal_away && !LoadGoal(key.second)) {
    return absl::UnavailableError("the store cannot be read");
  }
  Limit l{req.limit().max_tokens(), req.limit().max_cost_usd(), loop_->clock()->Now(), by};
  absl::StatusOr<v1::Budget> changed = SaveLimit(key, l);
  if (goal_away) {
    use_.erase(key);
    limits_.erase(key);
  }
  if (!changed.ok()) return changed.status();
  for (const auto& fn : budget_observers_) fn();
  return changed;
}

namespace {

UsageQuery QueryOf(const v1::UsageFilter& f) {
  UsageQuery q;
  if (f.has_start_time()) q.start_us = absl::ToUnixMicros(FromProto(f.start_time()));
  if (f.has_end_time()) q.end_us = absl::ToUnixMicros(FromProto(f.end_time()));
  q.goal_id = f.goal_id();
  q.task_id = f.task_id();
  q.agent_id = f.agent_id();
  q.role = f.role();
  q.provider = f.provider();
  q.model = f.model();
  return q;
}

}  // namespace

absl::StatusOr<v1::ListUsageRecordsResponse> Ledger::ListRecords(
    const v1::ListUsageRecordsRequest& req) const {
  size_t size = req.page_size() <= 0 ? 100 : static_cast<size_t>(std::min(req.page_size(), 1000));
  size_t skip = 0;
  if (!req.page_token().empty() && !absl::SimpleAtoi(req.page_token(), &skip)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", req.page_token(), "\" is not one this server issued"));
  }
  absl::StatusOr<std::vector<UsageRow>> rows = store_->QueryUsage(QueryOf(req.filter()));
  if (!rows.ok()) return rows.status();
  v1::ListUsageRecordsResponse resp;
  for (size_t i = skip; i < rows->size() && static_cast<size_t>(resp.records_size()) < size; ++i) {
    const UsageRow& u = (*rows)[rows->size() - 1 - i];  // newest first
    v1::UsageRecord* r = resp.add_records();
    r->set_id(u.id);
    r->set_agent_id(u.agent_id);
    r->set_task_id(u.task_id);
    r->set_goal_id(u.goal_id);
    r->set_role(u.role);
    r->set_provider(u.provider);
    r->set_model(u.model);
    r->set_prompt_tokens(u.prompt_tokens);
    r->set_completion_tokens(u.completion_tokens);
    r->set_cost_usd(u.cost_usd);
    SetDuration(absl::Microseconds(u.latency_us), r->mutable_latency());
    SetTime(absl::FromUnixMicros(u.time_us), r->mutable_time());
    r->set_reservation_id(u.reservation_id);
  }
  if (skip + size < rows->size()) resp.set_next_page_token(absl::StrCat(skip + size));
  return resp;
}

absl::StatusOr<v1::GetUsageResponse> Ledger::GetUsage(const v1::GetUsageRequest& req) const {
  UsageQuery q = QueryOf(req.filter());
  absl::StatusOr<std::vector<UsageRow>> rows = store_->QueryUsage(q);
  if (!rows.ok()) return rows.status();
  v1::GetUsageResponse resp;
  std::map<std::vector<std::string>, v1::UsageGroup> groups;
  for (const UsageRow& u : *rows) {
    Add(resp.mutable_total(), u);
    if (req.group_by().empty()) continue;
    v1::UsageGroup g;
    std::vector<std::string> key;
    for (int by : req.group_by()) {
      switch (by) {
        case v1::USAGE_GROUP_BY_ROLE:
          g.set_role(u.role);
          key.push_back(u.role);
          break;
        case v1::USAGE_GROUP_BY_MODEL:
          g.set_provider(u.provider);
          g.set_model(u.model);
          key.push_back(u.provider + "\n" + u.model);
          break;
        case v1::USAGE_GROUP_BY_GOAL:
          g.set_goal_id(u.goal_id);
          key.push_back(u.goal_id);
          break;
        case v1::USAGE_GROUP_BY_AGENT:
          g.set_agent_id(u.agent_id);
          key.push_back(u.agent_id);
          break;
        case v1::USAGE_GROUP_BY_TASK:
          g.set_task_id(u.task_id);
          key.push_back(u.task_id);
          break;
        default:
          return absl::InvalidArgumentError(absl::StrCat("group_by value ", by, " is unknown"));
      }
    }
    auto [it, fresh] = groups.try_emplace(key, g);
    Add(it->second.mutable_totals(), u);
  }
  std::vector<v1::UsageGroup> sorted;
  for (auto& [k, g] : groups) sorted.push_back(std::move(g));
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const v1::UsageGroup& a, const v1::UsageGroup& b) {
                     return a.totals().cost_usd() > b.totals().cost_usd();
                   });
  for (v1::UsageGroup& g : sorted) *resp.add_groups() = std::move(g);
  return resp;
}

}  // namespace agentd
