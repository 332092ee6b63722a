// A person's control over a running goal: cancel it, pause it, resume it.
//
// Timing tests (ctest label `timing`, run serially): each asserts a time window — a
// cancel that takes effect within two seconds, a pause that must land while another goal
// holds the only CEO — so a machine busy with other tests could fail them. Their windows
// are Scaled() by AGENTD_TEST_TIME_SCALE.
#include <cstdint>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(GoalTest, CancelingARunningGoalStopsItsAgentsWithinTwoSeconds) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("cancel_slow_coder")));
  RunResult submitted = Ctl({"goal", "Think"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // The coder is in its (minute-long) model call.
  ASSERT_TRUE(
      WaitFor([&] { return CountRequests(FakeRequests(), "coder-m") >= 1; }, absl::Seconds(30)))
      << daemon_.log();
  ASSERT_TRUE(AgentReaches("coder-1", v1::AGENT_STATE_BUSY, absl::Seconds(5))) << daemon_.log();

  // The window starts before agentctl does: a person's cancel includes it.
  const absl::Duration window = Scaled(absl::Seconds(2));
  absl::Time start = absl::Now();
  RunResult c = Ctl({"cancel", "g-1", "--reason", "changed my mind"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_THAT(c.out, HasSubstr("canceled 2 task(s)"));
  EXPECT_TRUE(AgentReaches("coder-1", v1::AGENT_STATE_IDLE, absl::Seconds(2)))
      << "the coder still works on a canceled task after " << absl::FormatDuration(window);
  EXPECT_LT(absl::Now() - start, window);

  // Both the goal and the coder's task are canceled, with the person's reason.
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  ASSERT_EQ(ArraySize(tasks, "tasks"), 2u) << tasks.dump();
  std::set<std::string> ids;
  for (auto& t : tasks["tasks"]) {
    ids.insert(t["id"].get<std::string>());
    EXPECT_EQ(t["status"], "TASK_STATUS_CANCELED") << t.dump();
    EXPECT_THAT(Text(t["failure"]["message"]), HasSubstr("changed my mind")) << t.dump();
  }
  EXPECT_EQ(ids, (std::set<std::string>{"g-1", "t-2"}));
}

// A paused goal's tasks are not handed out, even to an idle agent of their role; resumed,
// the goal runs. The CEO (one instance) is busy with a slow goal while the second is
// submitted and paused, so the pause is in place before any agent could take it; the slow
// goal's end is handled on agentd's loop, scheduling included, before the status query
// that sees it.
TEST_F(GoalTest, APausedGoalIsNotHandedOutAndRunsOnceResumed) {
  // The slow call must outlast two agentctl runs (submit, pause): the window is scaled.
  const int64_t slow_ms = absl::ToInt64Milliseconds(Scaled(absl::Milliseconds(1500)));
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("paused_goal", {{"SLOW_MS", absl::StrCat(slow_ms)}})));
  ASSERT_EQ(Ctl({"goal", "Slow"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return fake_->Requests() >= 1; }, absl::Seconds(30)))
      << daemon_.log();  // the CEO is in its slow call
  ASSERT_EQ(Ctl({"goal", "Paused one"}).exit_code, 0);
  ASSERT_EQ(Ctl({"pause", "g-2"}).exit_code, 0);
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED")) << daemon_.log();
  // The CEO was free from here on, and still g-2 waits.
  nlohmann::json paused = CtlJson({"describe", "task", "g-2"});
  EXPECT_EQ(paused["status"], "TASK_STATUS_READY") << paused.dump();
  EXPECT_EQ(paused["assignee"], "");
  EXPECT_EQ(paused["paused"], true);
  EXPECT_EQ(CountRequests(FakeRequests(), "ceo-m"), 1);  // nothing asked about g-2
  ASSERT_EQ(Ctl({"resume", "g-2"}).exit_code, 0);
  EXPECT_TRUE(TaskReaches("g-2", "TASK_STATUS_COMPLETED")) << daemon_.log();
}

}  // namespace
}  // namespace agentd::testing
