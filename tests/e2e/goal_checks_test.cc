// A goal's checks: done-criteria agentd runs itself in the goal's workspace (sandboxed)
// once the CEO completes it. `goal --wait` exits 0 only when they pass; a failure goes
// back to the CEO as the answer to its complete_task, up to the goal's rounds.
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kRefused[] = "[agentd] The goal is not complete";

// The CEO's model calls whose last message is agentd's answer to a refused complete_task.
int RefusalsSeen(const nlohmann::json& requests, const std::string& check) {
  int n = 0;
  for (const auto& q : requests) {
    if (q["model"] != "ceo-m") continue;
    const auto& msgs = q["body"]["messages"];
    if (!msgs.is_array() || msgs.empty()) continue;
    std::string last = Text(msgs.back()["content"]);
    if (Text(msgs.back()["role"]) == "tool" && last.find(kRefused) != std::string::npos &&
        last.find(check) != std::string::npos) {
      ++n;
    }
  }
  return n;
}

// The coder writes the wrong thing first: the check fails, the CEO hears why as the
// answer to its complete_task, has it fixed, and the goal completes only then.
TEST_F(GoalTest, AFailedCheckGoesBackToTheCeoAndTheGoalCompletesOnceItPasses) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("goal_checks")));
  const std::string check = "grep -qx hello hello.txt";
  RunResult r = CtlGoalAndWait({"Write hello.txt", "--check", check});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  EXPECT_EQ(ReadFileOrEmpty(Workspace("g-1") + "/hello.txt"), "hello\n");
  nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(goal["status"], "TASK_STATUS_COMPLETED") << DumpJson(goal);
  ASSERT_EQ(ArraySize(goal, "checks"), 1u) << DumpJson(goal);
  EXPECT_EQ(goal["checks"][0]["command"], check);
  EXPECT_EQ(goal["checks"][0]["passed"], true) << DumpJson(goal);
  EXPECT_EQ(goal["checkRounds"], 1) << DumpJson(goal);
  // The failure reached the CEO once, with the command that failed.
  EXPECT_EQ(RefusalsSeen(FakeRequests(), check), 1) << DumpJson(FakeRequests());
  // Shown to a person too.
  RunResult described = Ctl({"describe", "task", "g-1"});
  EXPECT_THAT(described.out, HasSubstr(check + ": passed")) << described.out;
  // Each round is in the audit log.
  nlohmann::json audit = CtlJson({"audit", "--goal", "g-1"});
  int rounds = 0;
  for (const auto& e : audit["entries"]) rounds += e["action"] == "goal.checks" ? 1 : 0;
  EXPECT_EQ(rounds, 2) << DumpJson(audit);
}

// A check that cannot pass: after the goal's rounds the goal fails with CHECKS_FAILED,
// and `goal --wait` does not exit 0, however sure the CEO is.
TEST_F(GoalTest, AGoalWhoseCheckKeepsFailingFailsWithChecksFailed) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("goal_checks")));
  const std::string check = "test -e never-there";
  RunResult r = CtlGoalAndWait({"Write hello.txt", "--check", check, "--check-rounds", "1"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(goal["status"], "TASK_STATUS_FAILED") << DumpJson(goal);
  EXPECT_EQ(goal["failure"]["code"], "TASK_FAILURE_CODE_CHECKS_FAILED") << DumpJson(goal);
  EXPECT_THAT(Text(goal["failure"]["message"]), HasSubstr(check));
  EXPECT_EQ(goal["checks"][0]["passed"], false) << DumpJson(goal);
  // One round went back to the CEO; the second failure ended the goal.
  EXPECT_EQ(RefusalsSeen(FakeRequests(), check), 1) << DumpJson(FakeRequests());
}

// Checks are commands a person gives; a malformed one is refused with what is wrong.
TEST_F(GoalTest, AnEmptyCheckIsRefusedWhenTheGoalIsSubmitted) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("goal_checks")));
  RunResult r = Ctl({"goal", "Write hello.txt", "--check", "  "});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr("checks[0]"));
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
}

}  // namespace
}  // namespace agentd::testing
