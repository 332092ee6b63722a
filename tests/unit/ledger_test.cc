// The ledger on a FakeClock, with a real SQLite store and no processes: reservations
// against budgets, settling, expiry, the price table, and totals rebuilt at start.
#include "manager/core/ledger.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/clock.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/core/metrics.h"
#include "manager/store/store.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Two models: cheap (1 / 2 USD per million tokens in / out) and dear (10 / 30).
constexpr char kConfig[] = R"(
providers: {p: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models:
  cheap: {provider: p, model: cheap-m, price: {input_per_mtok: 1, output_per_mtok: 2}}
  dear:  {provider: p, model: dear-m, price: {input_per_mtok: 10, output_per_mtok: 30}}
policy: {budget: {goal_tokens: 1000}}
)";

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.Join("agentd.yaml"), kConfig);
    auto config = ConfigState::Load(dir_.Join("agentd.yaml"), {});
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = std::make_unique<ConfigState>(*std::move(config));
    Open();
  }
  // (Re)opens the store and a ledger over it, as agentd does at start.
  void Open() {
    ledger_.reset();
    store_.reset();
    auto store = Store::Open(dir_.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ledger_ = std::make_unique<Ledger>(&loop_, store_.get(), config_.get());
    ASSERT_TRUE(ledger_->Recover().ok());
  }
  v1::BudgetReservation Reserve(const std::string& agent, int64_t tokens,
                                const std::string& model = "cheap-m") {
    v1::ReserveBudgetRequest req;
    req.set_provider("p");
    req.set_model(model);
    req.set_estimated_tokens(tokens);
    auto r = ledger_->Reserve(Caller(agent), req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : v1::BudgetReservation();
  }
  absl::StatusOr<v1::UsageRecord> Report(const std::string& agent, const std::string& reservation,
                                         int64_t prompt, int64_t completion,
                                         const std::string& id = "",
                                         const std::string& model = "cheap-m") {
    v1::UsageRecord rec;
    rec.set_id(id);
    rec.set_reservation_id(reservation);
    rec.set_provider("p");
    rec.set_model(model);
    rec.set_prompt_tokens(prompt);
    rec.set_completion_tokens(completion);
    rec.set_cost_usd(0.0000001);  // never believed
    return ledger_->Report(Caller(agent), rec);
  }
  static Ledger::Caller Caller(const std::string& agent) { return {agent, "coder", "t-2", "g-1"}; }
  v1::Budget Goal() {
    auto b = ledger_->GetBudget(v1::BUDGET_SCOPE_GOAL, "g-1");
    EXPECT_TRUE(b.ok()) << b.status();
    return b.ok() ? *b : v1::Budget();
  }

  testing::TempDir dir_;
  FakeClock clock_;
  EventLoop loop_{&clock_};
  std::unique_ptr<ConfigState> config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Ledger> ledger_;
};

// An agent may hold a reservation across a restart of agentd (a guess asked for ahead of
// its next call). The new ledger never made it: it must not take it for one of its own,
// another agent's or the same agent's other call.
TEST_F(LedgerTest, AReservationFromBeforeARestartIsNeverTakenForOneMadeAfterIt) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  const std::string before = Reserve("coder-1", 400).id();
  Open();
  const std::string theirs = Reserve("coder-2", 300).id();
  const std::string mine = Reserve("coder-1", 200).id();
  EXPECT_NE(theirs, before);
  EXPECT_NE(mine, before);
  EXPECT_EQ(ledger_->Reservation(before), nullptr);
  // Released as unused, and the call it was for reported: neither is refused, and neither
  // touches what the new ledger holds.
  EXPECT_TRUE(ledger_->Release("coder-1", before).ok());
  absl::StatusOr<v1::UsageRecord> rec = Report("coder-1", before, 100, 50);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_NE(ledger_->Reservation(theirs), nullptr);
  EXPECT_NE(ledger_->Reservation(mine), nullptr);
  EXPECT_EQ(Goal().reserved_tokens(), 500);
  EXPECT_EQ(Goal().used_tokens(), 150);
}

TEST_F(LedgerTest, ACallIsReservedThenSettledByItsReport) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  v1::BudgetReservation r = Reserve("coder-1", 400);
  ASSERT_EQ(r.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED) << r.ShortDebugString();
  EXPECT_EQ(Goal().reserved_tokens(), 400);
  absl::StatusOr<v1::UsageRecord> rec = Report("coder-1", r.id(), 100, 50);
  ASSERT_TRUE(rec.ok()) << rec.status();
  // The price table's figure, not the agent's: 100 × 1 + 50 × 2 per million.
  EXPECT_DOUBLE_EQ(rec->cost_usd(), 200.0 / 1e6);
  EXPECT_EQ(Goal().used_tokens(), 150);
  EXPECT_EQ(Goal().reserved_tokens(), 0) << "the report settles the reservation";
  EXPECT_EQ(ledger_->Reservation(r.id()), nullptr);
  EXPECT_EQ(loop_.pending_timers(), 0u) << "its expiry timer went with it";
}

TEST_F(LedgerTest, CallsInFlightCountAgainstTheBudgetAndTheRefusalSaysWhichAndWhy) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());  // 1000 tokens (policy.budget)
  v1::BudgetReservation first = Reserve("coder-1", 600);
  ASSERT_EQ(first.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  v1::BudgetReservation second = Reserve("coder-2", 600);
  EXPECT_EQ(second.status(), v1::BUDGET_RESERVATION_STATUS_REFUSED) << second.ShortDebugString();
  EXPECT_EQ(second.limiting_scope(), v1::BUDGET_SCOPE_GOAL);
  EXPECT_EQ(second.limiting_scope_id(), "g-1");
  EXPECT_THAT(second.refusal_reason(), HasSubstr("1000 tokens would be exceeded"));
  EXPECT_THAT(second.refusal_reason(), HasSubstr("600 held by calls in flight"));
  // A raise lets it through, and tells the observers.
  int told = 0;
  ledger_->AddBudgetObserver([&] { ++told; });
  v1::SetBudgetRequest raise;
  raise.set_scope(v1::BUDGET_SCOPE_GOAL);
  raise.set_scope_id("g-1");
  raise.mutable_limit()->set_max_tokens(5000);
  ASSERT_TRUE(ledger_->SetBudget(raise, "human:local").ok());
  EXPECT_EQ(told, 1);
  EXPECT_EQ(Reserve("coder-2", 600).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
}

TEST_F(LedgerTest, AReservationNeverSettledIsReleasedWhenItExpires) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  v1::BudgetReservation held = Reserve("coder-1", 900);
  ASSERT_EQ(held.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  EXPECT_EQ(Reserve("coder-2", 200).status(), v1::BUDGET_RESERVATION_STATUS_REFUSED);
  clock_.Advance(absl::Minutes(14));
  loop_.RunDue();
  EXPECT_EQ(Goal().reserved_tokens(), 900) << "released before its lifetime";
  clock_.Advance(absl::Minutes(2));
  loop_.RunDue();
  EXPECT_EQ(Goal().reserved_tokens(), 0);
  EXPECT_EQ(ledger_->Reservation(held.id()), nullptr);
  EXPECT_EQ(Reserve("coder-2", 200).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
}

TEST_F(LedgerTest, OnlyTheAgentThatReservedSettlesAndARetriedReportCountsOnce) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  v1::BudgetReservation r = Reserve("coder-1", 100);
  absl::StatusOr<v1::UsageRecord> stolen = Report("coder-2", r.id(), 10, 10);
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kPermissionDenied) << stolen.status();
  EXPECT_NE(ledger_->Reservation(r.id()), nullptr) << "another agent settled it";
  ASSERT_TRUE(Report("coder-1", r.id(), 10, 10, "call-1").ok());
  ASSERT_TRUE(Report("coder-1", r.id(), 10, 10, "call-1").ok());
  EXPECT_EQ(Goal().used_tokens(), 20) << "a retried report counted twice";
}

TEST_F(LedgerTest, AnUnknownModelCostsTheDearestRatesAndAbsurdFiguresAreClamped) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  absl::StatusOr<v1::UsageRecord> unknown = Report("coder-1", "", 1000, 1000, "", "made-up-m");
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_DOUBLE_EQ(unknown->cost_usd(), (1000.0 * 10 + 1000.0 * 30) / 1e6);
  absl::StatusOr<v1::UsageRecord> absurd = Report("coder-1", "", int64_t{1} << 60, 0, "", "dear-m");
  ASSERT_TRUE(absurd.ok()) << absurd.status();
  EXPECT_EQ(absurd->prompt_tokens(), Ledger::kMaxTokensPerCall);
  EXPECT_LE(absurd->cost_usd(), Ledger::kMaxCostPerCallUsd);
  v1::ReserveBudgetRequest bad;
  bad.set_estimated_tokens(-1);
  EXPECT_EQ(ledger_->Reserve(Caller("coder-1"), bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LedgerTest, TotalsAndBudgetsAreRebuiltFromTheStoreAtStart) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  ASSERT_TRUE(Report("coder-1", "", 300, 100, "a").ok());
  ASSERT_TRUE(Report("coder-1", "", 200, 0, "b").ok());
  v1::BudgetReservation in_flight = Reserve("coder-1", 100);
  ASSERT_EQ(in_flight.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  Open();  // a restart: reservations were in memory, usage and budgets are stored
  v1::Budget goal = Goal();
  EXPECT_EQ(goal.max_tokens(), 1000);
  EXPECT_EQ(goal.used_tokens(), 600);
  EXPECT_EQ(goal.reserved_tokens(), 0);
  EXPECT_EQ(Reserve("coder-1", 401).status(), v1::BUDGET_RESERVATION_STATUS_REFUSED);
  EXPECT_EQ(Reserve("coder-1", 400).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
}

// A goal's budget and totals are in memory only while it may call: once it ends (and no
// reservation of it is held) they are read from the store, as they were, and read back
// into memory when it runs again.
TEST_F(LedgerTest, AFinishedGoalsBudgetLeavesMemoryAndIsReadBackFromTheStore) {
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());
  ASSERT_TRUE(Report("coder-1", "", 300, 100, "a").ok());
  EXPECT_EQ(ledger_->goals_in_memory(), 1u);
  v1::BudgetReservation held = Reserve("coder-1", 100);
  ASSERT_EQ(held.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  ledger_->ForgetGoal("g-1");
  EXPECT_EQ(ledger_->goals_in_memory(), 1u) << "forgotten while a reservation is held";
  ASSERT_TRUE(Report("coder-1", held.id(), 10, 10, "b").ok());
  EXPECT_EQ(ledger_->goals_in_memory(), 0u) << "kept after its last reservation was settled";
  v1::Budget stored = Goal();
  EXPECT_EQ(stored.max_tokens(), 1000);
  EXPECT_EQ(stored.used_tokens(), 420);
  EXPECT_EQ(stored.reserved_tokens(), 0);
  // A late report is stored and counted, without bringing the goal back into memory.
  ASSERT_TRUE(Report("coder-1", "", 50, 0, "c").ok());
  EXPECT_EQ(ledger_->goals_in_memory(), 0u);
  EXPECT_EQ(Goal().used_tokens(), 470);
  // A person raises it for a retry: stored, and read back when the goal calls again.
  v1::SetBudgetRequest raise;
  raise.set_scope(v1::BUDGET_SCOPE_GOAL);
  raise.set_scope_id("g-1");
  raise.mutable_limit()->set_max_tokens(2000);
  absl::StatusOr<v1::Budget> raised = ledger_->SetBudget(raise, "human:local");
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(raised->used_tokens(), 470);
  EXPECT_EQ(ledger_->goals_in_memory(), 0u) << "a finished goal's raise keeps nothing";
  EXPECT_EQ(Goal().max_tokens(), 2000);
  EXPECT_EQ(Reserve("coder-1", 1531).status(), v1::BUDGET_RESERVATION_STATUS_REFUSED);
  EXPECT_EQ(Reserve("coder-1", 1530).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  EXPECT_EQ(ledger_->goals_in_memory(), 1u);
  EXPECT_EQ(Goal().reserved_tokens(), 1530);
}

}  // namespace
}  // namespace agentd

namespace agentd {
namespace {

// Every call is counted by how it ended — failed ones too, which release their
// reservation and leave no usage — with its latency, time to first token and retries;
// label values are the configuration's, whatever an agent sends.
TEST_F(LedgerTest, CallsAreCountedByOutcomeWithLatencyAndAFailedOneReleasesItsReservation) {
  std::unique_ptr<DaemonMetrics> metrics = DaemonMetrics::Create();
  ledger_->SetMetrics(metrics.get());
  ASSERT_TRUE(ledger_->SetGoalBudget("g-1", {}).ok());

  v1::BudgetReservation ok = Reserve("coder-1", 300);
  v1::UsageRecord good;
  good.set_reservation_id(ok.id());
  good.set_provider("p");
  good.set_model("cheap-m");
  good.set_prompt_tokens(100);
  good.set_completion_tokens(20);
  good.set_outcome("ok");
  good.set_attempts(3);
  good.mutable_latency()->set_seconds(2);
  good.mutable_time_to_first_token()->set_nanos(300000000);
  ASSERT_TRUE(ledger_->Report(Caller("coder-1"), good).ok());

  v1::BudgetReservation lost = Reserve("coder-1", 400);
  ASSERT_EQ(Goal().reserved_tokens(), 400);
  v1::UsageRecord failed;
  failed.set_reservation_id(lost.id());
  failed.set_provider("p");
  failed.set_model("cheap-m");
  failed.set_prompt_tokens(999);  // a failed call has no usage, whatever is claimed
  failed.set_outcome("timeout");
  failed.set_attempts(1);
  failed.mutable_latency()->set_seconds(45);
  absl::StatusOr<v1::UsageRecord> f = ledger_->Report(Caller("coder-1"), failed);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(ledger_->Report(Caller("coder-1"), failed).ok());  // repeated: counted once
  EXPECT_EQ(f->prompt_tokens(), 0);
  EXPECT_EQ(Goal().reserved_tokens(), 0) << "the failed call's reservation is released";
  EXPECT_EQ(Goal().used_tokens(), 120) << "and it used nothing";
  EXPECT_EQ(ledger_->Reservation(lost.id()), nullptr);

  v1::UsageRecord odd;
  odd.set_provider("made-up");
  odd.set_model("made-up-model");
  odd.set_outcome("exploded\"{");
  ASSERT_TRUE(ledger_->Report(Caller("coder-1"), odd).ok());

  std::string m = metrics->registry.Render();
  EXPECT_THAT(m, HasSubstr("agentd_llm_calls_total{provider=\"p\",model=\"cheap-m\",role=\"coder\","
                           "outcome=\"ok\"} 1"));
  EXPECT_THAT(m, HasSubstr("agentd_llm_calls_total{provider=\"p\",model=\"cheap-m\",role=\"coder\","
                           "outcome=\"timeout\"} 1"));
  EXPECT_THAT(m, HasSubstr("agentd_llm_calls_total{provider=\"other\",model=\"other\",role="
                           "\"coder\",outcome=\"error\"} 1"));
  EXPECT_THAT(m, HasSubstr("agentd_llm_call_duration_seconds_bucket{provider=\"p\",model=\"cheap-"
                           "m\",outcome=\"timeout\",le=\"60\"} 1"));
  EXPECT_THAT(m, HasSubstr("agentd_llm_call_duration_seconds_bucket{provider=\"p\",model=\"cheap-"
                           "m\",outcome=\"timeout\",le=\"30\"} 0"));
  EXPECT_THAT(m, HasSubstr("agentd_llm_time_to_first_token_seconds_count{provider=\"p\",model="
                           "\"cheap-m\"} 1"));
  EXPECT_THAT(m, HasSubstr("agentd_llm_retries_total{provider=\"p\",model=\"cheap-m\"} 2"));
  EXPECT_THAT(m, Not(HasSubstr("made-up")));
}

}  // namespace
}  // namespace agentd
