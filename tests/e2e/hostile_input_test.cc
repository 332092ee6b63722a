// Input that once crashed agentd or its agents (issue 12, item 11): a goal title of CJK
// text cut at 80 bytes, a Latin-1 file, program output cut mid-character at the output
// cap, and provider usage of the wrong JSON types. Each must leave a goal that completes,
// an agent that never restarts, and a daemon that finds it all again after a restart.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// 40 CJK characters: 120 bytes, so an 80-byte title cut lands inside one of them (77 is
// not a multiple of 3).
std::string CjkLine() {
  std::string line;
  for (int i = 0; i < 40; ++i) line += "中";
  return line;
}

TEST_F(GoalTest, ACjkGoalLongerThanATitleCompletesAndSurvivesADaemonRestart) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("hostile_input")));
  const std::string first_line = CjkLine();
  RunResult done = CtlGoalAndWait({absl::StrCat(first_line, "\n第二行")});
  ASSERT_EQ(done.exit_code, 0) << done.out << done.err << daemon_.log();

  auto check_goal = [&](const char* when) {
    nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
    EXPECT_EQ(goal["status"], "TASK_STATUS_COMPLETED") << when << ": " << goal.dump();
    std::string title = Text(goal["title"]);
    EXPECT_TRUE(IsValidUtf8(title)) << when;
    EXPECT_LE(title.size(), 80u) << when << ": " << title;
    EXPECT_THAT(title, StartsWith(first_line.substr(0, 75))) << when;  // 25 whole characters
    EXPECT_THAT(title, ::testing::EndsWith("...")) << when;
  };
  check_goal("before the restart");
  RunResult audit = Ctl({"audit", "--verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;

  ASSERT_EQ(daemon_.Stop(), 0) << daemon_.log();
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  check_goal("after the restart");  // not silently dropped on recovery
  nlohmann::json goals = CtlJson({"get", "tasks"});
  EXPECT_EQ(ArraySize(goals, "tasks"), 1u) << goals.dump();
  audit = Ctl({"audit", "--verify"});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
}

TEST_F(GoalTest, NonUtf8ToolOutputAndWrongUsageTypesNeitherAbortTheAgentNorStopTheTask) {
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("hostile_input"), "", "[fs.read, shell.run, complete_task, fail_task]"));
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  // A Latin-1 file, and one whose last 64 KiB (shell.run's default cap) start inside a
  // character: 1 + 3 × 30000 bytes, the cap's cut at 24465 = 1 + 3 × 8154 + 2.
  WriteFile(repo + "/latin1.txt", "caf\xe9 cr\xe8me br\xfbl\xe9\xe9\n");
  std::string big = "a";
  for (int i = 0; i < 30000; ++i) big += "語";
  WriteFile(repo + "/big.txt", big);
  Git(repo, "add latin1.txt big.txt");
  Git(repo, "-c user.name=t -c user.email=t@t commit -q -m files");

  RunResult done = CtlGoalAndWait({"Read the Latin-1 file", "--workspace", repo});
  EXPECT_EQ(done.exit_code, 0) << done.out << done.err << daemon_.log();
  nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(goal["status"], "TASK_STATUS_COMPLETED") << goal.dump();

  std::vector<std::string> results = ToolResults(FakeRequests(), "ceo-m");
  ASSERT_EQ(results.size(), 2u) << daemon_.log();
  // The Latin-1 bytes reach the model as U+FFFD, with a note saying why.
  EXPECT_THAT(results[0], HasSubstr("caf\xef\xbf\xbd cr\xef\xbf\xbd"));
  EXPECT_THAT(results[0], HasSubstr("not UTF-8"));
  // The output kept from the cap starts on a character boundary: no stray bytes, no note.
  EXPECT_TRUE(IsValidUtf8(results[1]));
  EXPECT_THAT(results[1], HasSubstr("(output: the last"));
  EXPECT_THAT(results[1], HasSubstr("\n語語語"));
  EXPECT_THAT(results[1], ::testing::Not(HasSubstr("\xef\xbf\xbd")));

  // The agent never aborted (it would have been restarted, and crash-looped on resume).
  EXPECT_EQ(daemon_.client().GetAgent("ceo-1").restarts(), 0) << daemon_.log();
  // Usage of the wrong types counts as none; what was a number counts (1.5 → 1 token).
  nlohmann::json usage = CtlJson({"usage", "--by", "role"});
  ASSERT_EQ(ArraySize(usage, "groups"), 1u) << usage.dump();
  const nlohmann::json& totals = usage["groups"][0]["totals"];
  EXPECT_EQ(totals["calls"], "3") << usage.dump();
  EXPECT_EQ(totals["promptTokens"], "1") << usage.dump();
  EXPECT_EQ(totals.value("completionTokens", "0"), "0") << usage.dump();
}

}  // namespace
}  // namespace agentd::testing
