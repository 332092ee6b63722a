// Limits on what a goal and its agents may use: a goal's token budget, which no model call
// may overrun, and a role's idle_timeout, after which an agent started for work stops.
#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"
#include "tests/support/http_conn.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// Goal `goal_id`'s budget as GetBudget answers it; a failure records why and gives an
// empty budget.
v1::Budget GoalBudget(const Daemon& daemon, const std::string& goal_id) {
  v1::GetBudgetRequest get;
  get.set_scope(v1::BUDGET_SCOPE_GOAL);
  get.set_scope_id(goal_id);
  v1::GetBudgetResponse budget;
  Client client = daemon.client();
  grpc::ClientContext ctx;
  grpc::Status s = client.usage().GetBudget(&ctx, get, &budget);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return budget.budget();
}

// How many calls of AgentHostService's `method` agentd has served, from its /metrics
// (agentd_rpc_duration_seconds_count); -1 when they cannot be read.
double AgentHostCallsServed(const Daemon& daemon, absl::string_view method) {
  Client client = daemon.client();
  v1::GetInfoResponse info;
  grpc::ClientContext ctx;
  if (!client.system().GetInfo(&ctx, v1::GetInfoRequest(), &info).ok()) return -1;
  int port = 0;
  if (!absl::SimpleAtoi(info.paths().http().substr(info.paths().http().rfind(':') + 1), &port)) {
    return -1;
  }
  HttpConn metrics(port);
  metrics.Send("GET", "/metrics", {"Authorization: Bearer " + daemon.admin_token()});
  if (!metrics.ReadHead() || !metrics.ReadAll()) return -1;
  double n = 0;
  for (absl::string_view line : absl::StrSplit(metrics.body(), '\n')) {
    if (!absl::StartsWith(line, "agentd_rpc_duration_seconds_count{") ||
        !absl::StrContains(line, absl::StrCat("\"agentd.v1.AgentHostService/", method, "\""))) {
      continue;
    }
    double v = 0;
    if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) n += v;
  }
  return n;
}

// Which of this agentd's reservations a call ran on, counted from 1 ("res-<tag>-<n>"); 0
// when the id is not one of those.
int64_t ReservationNumber(const v1::UsageRecord& rec) {
  const std::string& id = rec.reservation_id();
  int64_t n = 0;
  if (!absl::StartsWith(id, "res-") || !absl::SimpleAtoi(id.substr(id.rfind('-') + 1), &n)) {
    return 0;
  }
  return n;
}

// With policy.budget.on_exhausted: fail.
TEST_F(GoalTest, AGoalPastItsBudgetFailsWithBudgetExceededAndNoCallIsMadePastIt) {
  // The CEO never stops listing files: only the budget ends it.
  budget_on_exhausted_ = "fail";
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("budget_forever"), "", "[fs.list, complete_task, fail_task]"));
  RunResult r = CtlGoalAndWait({"List forever", "--tokens", "6000"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("BUDGET_EXCEEDED"));
  EXPECT_THAT(r.out, HasSubstr("goal g-1 budget of 6000 tokens would be exceeded"));
  nlohmann::json usage = CtlJson({"usage", "--goal", "g-1"});
  int64_t calls = std::stoll(usage["total"]["calls"].get<std::string>());
  int64_t tokens = std::stoll(usage["total"]["totalTokens"].get<std::string>());
  EXPECT_GE(calls, 2);      // the budget allowed some calls…
  EXPECT_LE(tokens, 6000);  // …never more than it holds…
  EXPECT_EQ(static_cast<int64_t>(FakeRequests().size()), calls);  // …and none unreserved

  // Each call is a record of its own, newest first, paged.
  Client client = daemon_.client();
  v1::ListUsageRecordsRequest list;
  list.mutable_filter()->set_goal_id("g-1");
  list.set_page_size(1);
  int64_t records = 0, last_us = INT64_MAX;
  for (int64_t pages = 1;; ++pages) {
    // A page token that never runs out would loop for ever; there is one page a call.
    ASSERT_LE(pages, calls + 1) << "the pages do not end";
    v1::ListUsageRecordsResponse page;
    grpc::Status s = client.usage().ListUsageRecords(Ctx().get(), list, &page);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_LE(page.records_size(), 1);
    for (const v1::UsageRecord& rec : page.records()) {
      ++records;
      int64_t us = rec.time().seconds() * 1000000 + rec.time().nanos() / 1000;
      EXPECT_LE(us, last_us);
      last_us = us;
      EXPECT_EQ(rec.role(), "ceo");
      EXPECT_EQ(rec.prompt_tokens(), 1000);
    }
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(records, calls);
}

// A model call costs one round trip to the ledger, made while the previous call's tools
// run: its usage goes with the reservation for the next call (ReserveBudget's settle,
// ahead), which the next call uses. Nothing is lost on the way: every call is recorded,
// nothing stays reserved once the goal has ended, and no guess shows as a refusal.
TEST_F(GoalTest, EachModelCallIsOneRoundTripToTheLedgerAndEveryCallIsRecorded) {
  daemon_args_ = {"--http", "127.0.0.1:0"};
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("budget_pause"), "", "[fs.list, complete_task, fail_task]"));
  RunResult r = CtlGoalAndWait({"List five times"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  const int64_t calls = static_cast<int64_t>(FakeRequests().size());
  ASSERT_EQ(calls, 6);  // five listings and the completion

  Client client = daemon_.client();
  v1::ListUsageRecordsRequest list;
  list.mutable_filter()->set_goal_id("g-1");
  v1::ListUsageRecordsResponse records;
  grpc::Status s = client.usage().ListUsageRecords(Ctx().get(), list, &records);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(records.records_size(), calls);
  v1::Budget budget = GoalBudget(daemon_, "g-1");
  EXPECT_EQ(budget.used_tokens(), calls * 1100);
  EXPECT_EQ(budget.reserved_tokens(), 0) << "a reservation outlived its goal";
  v1::ListEventsRequest refused;
  refused.mutable_filter()->add_kinds("budget.refused");
  v1::ListEventsResponse none;
  s = client.events().ListEvents(Ctx().get(), refused, &none);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(none.events_size(), 0) << none.ShortDebugString();

  // The RPCs, as agentd counted them: none for the first two calls, which used the
  // reservations agentd made as it handed the task out (the first two it
  // made), and one with each call's usage, asking for the call after next (the last two
  // unused, released when the goal ended); no report on its own.
  EXPECT_EQ(ReservationNumber(records.records(calls - 1)), 1) << records.ShortDebugString();
  EXPECT_EQ(ReservationNumber(records.records(calls - 2)), 2) << records.ShortDebugString();
  EXPECT_EQ(AgentHostCallsServed(daemon_, "ReserveBudget"), calls);
  EXPECT_EQ(AgentHostCallsServed(daemon_, "ReportUsage"), 0);
}

// The next call's reservation is held while a call runs, so that it is there when that
// call starts: a quick tool leaves no time for a round trip through agentd. A run's first
// two come with the task, agentd's guesses. With the first call stalled (the provider
// sends headers and nothing more), agentd holds both and was asked for neither.
TEST_F(GoalTest, TheNextCallsReservationIsHeldWhileACallRuns) {
  daemon_args_ = {"--http", "127.0.0.1:0"};
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("stalled_call"), "", "[fs.list, complete_task, fail_task]"));
  ASSERT_EQ(Ctl({"goal", "Wait for the model"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return !FakeRequests().empty(); }, absl::Seconds(30))) << daemon_.log();
  EXPECT_EQ(FakeRequests().size(), 1u) << "the first call is still the only one";
  EXPECT_EQ(AgentHostCallsServed(daemon_, "ReserveBudget"), 0) << "a call asked for its own";
  v1::Budget budget = GoalBudget(daemon_, "g-1");
  // The call's own and the guess for the next (with 8,192 tokens more for the first
  // call's tools' results), both made with the task: each at least 1,024 + 8,192 tokens
  // of room, so together more than one of them could hold here.
  EXPECT_GE(budget.reserved_tokens(), 2 * (1024 + 8192) + 8192) << budget.ShortDebugString();
  EXPECT_EQ(budget.used_tokens(), 0);
  ASSERT_EQ(Ctl({"cancel", "g-1"}).exit_code, 0);
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_CANCELED")) << daemon_.log();
}

// A call whose tools returned more than the guess made for it has room for takes the
// guess made for the call after it when that is larger, and the smaller one is released:
// still no reservation asked for on the turn's path, and none left held.
TEST_F(GoalTest, ACallThatOutgrewItsGuessTakesTheNextOneAndReleasesItsOwn) {
  daemon_args_ = {"--http", "127.0.0.1:0"};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("big_read"), "", "[fs.read, complete_task, fail_task]"));
  const std::string ws = dir_.Join("ws");
  ASSERT_EQ(mkdir(ws.c_str(), 0755), 0);
  std::string line(63, 'w');
  line += '\n';
  std::string text;
  while (text.size() < 80 * 1024) text += line;  // ~20,000 tokens at four bytes each
  WriteFile(dir_.Join("ws/big.txt"), text);
  RunResult r = CtlGoalAndWait({"Read big.txt", "--workspace", ws, "--init-existing"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  ASSERT_EQ(FakeRequests().size(), 2u);
  // The second call ran on the guess asked for with the first call's usage, agentd's third
  // reservation: the first was the first call's own and the second agentd's guess for the
  // second call (both made with the task; the second too small, released), and one asked
  // for on the second call's path would be its fourth.
  v1::ListUsageRecordsRequest list;
  list.mutable_filter()->set_goal_id("g-1");
  v1::ListUsageRecordsResponse records;
  Client client = daemon_.client();
  grpc::Status listed = client.usage().ListUsageRecords(Ctx().get(), list, &records);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(records.records_size(), 2) << records.ShortDebugString();
  EXPECT_EQ(ReservationNumber(records.records(1)), 1);  // newest first
  EXPECT_EQ(ReservationNumber(records.records(0)), 3) << records.ShortDebugString();
  v1::Budget budget = GoalBudget(daemon_, "g-1");
  EXPECT_EQ(budget.reserved_tokens(), 0) << "a reservation outlived its goal";
  EXPECT_GT(budget.used_tokens(), 12000) << budget.ShortDebugString();
}

// Agents started for work are stopped when idle past their role's idle_timeout; the
// others stay.
TEST_F(GoalTest, AnAgentStartedOnDemandIsStoppedAfterItsRolesIdleTimeout) {
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("delegate"), "  reviewer: {model: other, tools: [complete_task]}\n"));
  // The coder role idles out fast in this test (config edited before the start).
  std::string config = ReadFileOrEmpty(dir_.Join("agentd.yaml"));
  ASSERT_TRUE(daemon_.Stop().has_value());
  size_t at = config.find("max_instances: 2,");
  ASSERT_NE(at, std::string::npos);
  config.insert(at, "idle_timeout: 1s, ");
  WriteFile(dir_.Join("agentd.yaml"), config);
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  RunResult r = CtlGoalAndWait({"Write hello.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  // The coder did the work (it was started), and then stopped for being idle.
  EXPECT_GE(CountRequests(FakeRequests(), "coder-m"), 1);
  EXPECT_TRUE(AgentReaches("coder-1", v1::AGENT_STATE_STOPPED, absl::Seconds(10))) << daemon_.log();
  EXPECT_EQ(daemon_.client().GetAgent("ceo-1").state(), v1::AGENT_STATE_IDLE);  // 10m by default
  EXPECT_THAT(daemon_.log(), HasSubstr("agent coder-1 idle for its role's idle_timeout"));
}

// The default, policy.budget.on_exhausted: pause. A goal at its budget is held, not
// failed: no call is made past it, and once a person raises the budget it goes on where
// it stopped (the same conversation, nothing done again) and completes.
TEST_F(GoalTest, AGoalAtItsBudgetPausesAndGoesOnWhereItStoppedOnceTheBudgetIsRaised) {
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("budget_pause"), "", "[fs.list, complete_task, fail_task]"));
  ASSERT_EQ(Ctl({"goal", "List five times", "--tokens", "3000"}).exit_code, 0);
  nlohmann::json goal;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"describe", "task", "g-1"});
      },
      [](const nlohmann::json& t) {
        return t.is_object() && t.value("blockedReason", "") == "BLOCK_REASON_BUDGET";
      },
      absl::Seconds(30), &goal))
      << daemon_.log();
  EXPECT_EQ(goal["status"], "TASK_STATUS_BLOCKED") << DumpJson(goal);
  EXPECT_THAT(Text(goal["blockedDetail"]), HasSubstr("BUDGET_REACHED"));
  EXPECT_THAT(Text(goal["blockedDetail"]), HasSubstr("agentctl budget set g-1"));
  size_t held_at = FakeRequests().size();
  EXPECT_EQ(held_at, 2u) << "3000 tokens allow two calls of 1100";
  // Held: no call goes out while it waits (polled: the agent would have called at once).
  RunResult get = Ctl({"budget", "get", "g-1"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_THAT(get.out, HasSubstr("2200 used of 3000"));
  EXPECT_EQ(FakeRequests().size(), held_at);

  RunResult set = Ctl({"budget", "set", "g-1", "--tokens", "20000"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_THAT(set.out, HasSubstr("of 20000"));
  // The change is an event carrying the budget as it is after it: the goal's limit at
  // submission, then the raise.
  v1::ListEventsRequest budget_events;
  budget_events.mutable_filter()->add_kinds("budget.changed");
  v1::ListEventsResponse changed;
  Client client = daemon_.client();
  grpc::Status listed = client.events().ListEvents(Ctx().get(), budget_events, &changed);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(changed.events_size(), 2) << changed.ShortDebugString();
  EXPECT_EQ(changed.events(0).budget().max_tokens(), 3000);
  EXPECT_EQ(changed.events(1).goal_id(), "g-1");
  EXPECT_EQ(changed.events(1).budget().max_tokens(), 20000);
  EXPECT_EQ(changed.events(1).budget().used_tokens(), 2200) << changed.ShortDebugString();
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED")) << daemon_.log();
  // Five listings and the completion: six calls in all, none repeated, and each call
  // after the raise carried the conversation from before it.
  nlohmann::json requests = FakeRequests();
  ASSERT_EQ(requests.size(), 6u) << DumpJson(requests);
  size_t last = 0;
  for (const auto& q : requests) {
    size_t n = q["body"]["messages"].size();
    EXPECT_GT(n, last) << "a call started over: " << DumpJson(q["body"]["messages"]);
    last = n;
  }
  EXPECT_EQ(CtlJson({"describe", "task", "g-1"})["attempts"], 1);
}

// A provider that is down past the agent's own retries does not fail the goal, nor start
// it over: the task waits (BLOCKED, PROVIDER, the provider's error as the reason), is
// handed back in the same attempt after agentd's backoff, and completes.
TEST_F(GoalTest, AProviderDownPastTheAgentsRetriesHoldsTheTaskAndItGoesOnInTheSameAttempt) {
  extra_policy_ = "  provider_retry: {max: 3, backoff: 2s, max_backoff: 2s}";
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("provider_down"), "", "[fs.list, complete_task, fail_task]"));
  ASSERT_EQ(Ctl({"goal", "List it"}).exit_code, 0);
  nlohmann::json goal;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"describe", "task", "g-1"});
      },
      [](const nlohmann::json& t) {
        return t.is_object() && t.value("blockedReason", "") == "BLOCK_REASON_PROVIDER";
      },
      absl::Seconds(60), &goal))
      << daemon_.log();
  EXPECT_THAT(Text(goal["blockedDetail"]), HasSubstr("the model is loading"));
  EXPECT_THAT(Text(goal["blockedDetail"]), HasSubstr("retry 1 of 3"));
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  nlohmann::json done = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(done["attempts"], 1) << DumpJson(done);
  EXPECT_EQ(CountRequests(FakeRequests(), "ceo-m"), 7) << "five refused, then list and done";
}

// Down for good: after policy.provider_retry.max waits the task fails with
// PROVIDER_ERROR, saying what the provider answered.
TEST_F(GoalTest, AProviderDownForGoodFailsTheTaskWithProviderErrorAfterTheRetries) {
  extra_policy_ = "  provider_retry: {max: 1, backoff: 100ms, max_backoff: 100ms}";
  std::string scenario = Scenario("provider_down");
  ASSERT_NE(scenario.find("times: 5"), std::string::npos);
  scenario.replace(scenario.find("times: 5"), 8, "times: 1000");
  ASSERT_NO_FATAL_FAILURE(Start(scenario, "", "[fs.list, complete_task, fail_task]"));
  RunResult r = CtlGoalAndWait({"List it"}, absl::Seconds(90));
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(goal["status"], "TASK_STATUS_FAILED") << DumpJson(goal);
  EXPECT_EQ(goal["failure"]["code"], "TASK_FAILURE_CODE_PROVIDER_ERROR") << DumpJson(goal);
  EXPECT_THAT(Text(goal["failure"]["message"]), HasSubstr("the model is loading"));
  EXPECT_EQ(goal["attempts"], 1) << "not started over: " << DumpJson(goal);
  // The agent's five calls, twice: before the wait and after it.
  EXPECT_EQ(CountRequests(FakeRequests(), "ceo-m"), 10);
}

}  // namespace
}  // namespace agentd::testing
