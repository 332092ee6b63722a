// Delegation: the CEO hands work to other roles' agents — the built-in ones and a role
// that only the config defines — which do it in the goal's own workspace and branch.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/json_dump.h"
#include "common/paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// The CEO hands the work to a Coder, which writes a file and commits it; the CEO is
// handed its task back with the Coder's result and completes the goal.
TEST_F(GoalTest, CeoDelegatesToACoderWhoCommitsOnTheGoalsBranch) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("delegate")));
  // A repository of the user's: the goal works in a worktree and branch of its own.
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  RunResult r = CtlGoalAndWait({"Write hello.txt", "--workspace", repo});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  EXPECT_THAT(r.out, HasSubstr("hello.txt is written and committed"));
  EXPECT_THAT(r.err, HasSubstr("coder"));  // progress shows the delegated task

  // The commit is on the goal's branch; the user's checkout is untouched.
  EXPECT_THAT(Git(repo, "log --format=%s agentd/g-1"), HasSubstr("Add hello.txt"));
  EXPECT_EQ(Git(repo, "show agentd/g-1:hello.txt"), "hi\n");
  EXPECT_EQ(ReadFileOrEmpty(repo + "/hello.txt"), "");
  EXPECT_EQ(Git(repo, "rev-parse --abbrev-ref HEAD"), "main\n");

  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  ASSERT_EQ(ArraySize(tasks, "tasks"), 2u) << tasks.dump();  // the goal and the coder's task
  for (const auto& t : tasks["tasks"]) EXPECT_EQ(t["status"], "TASK_STATUS_COMPLETED") << t.dump();

  // Usage per role, priced from the config's table (the coder's model is free).
  nlohmann::json usage = CtlJson({"usage", "--by", "role"});
  std::map<std::string, nlohmann::json> by_role;
  for (const auto& g : usage["groups"]) by_role[g["role"]] = g["totals"];
  ASSERT_EQ(by_role.count("ceo"), 1u) << usage.dump();
  ASSERT_EQ(by_role.count("coder"), 1u) << usage.dump();
  EXPECT_EQ(by_role["ceo"]["calls"], "3") << FakeRequests().dump();  // delegate, wait, complete
  EXPECT_EQ(by_role["coder"]["calls"], "3");
  EXPECT_GT(by_role["ceo"]["costUsd"].get<double>(), 0);
  EXPECT_EQ(by_role["coder"]["costUsd"].get<double>(), 0);
}

TEST_F(GoalTest, ARoleAddedByConfigAloneIsSpawnedAndUsed) {
  ASSERT_TRUE(MakeDirs(dir_.Join("roles"), 0755).ok());
  WriteFile(dir_.Join("roles/reviewer.md"),
            "You are {{agent}}, the team's REVIEWER-PROMPT. Review: {{task}}.\n");
  ASSERT_NO_FATAL_FAILURE(Start(
      Scenario("reviewer_role"),
      "  reviewer: {model: other, prompt: roles/reviewer.md, tools: [fs.read, complete_task]}\n"));
  RunResult r = CtlGoalAndWait({"Get the README reviewed"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  EXPECT_EQ(daemon_.client().GetAgent("reviewer-1").role(), "reviewer");
  std::vector<nlohmann::json> calls;  // the reviewer's
  for (nlohmann::json& q : FakeRequests()) {
    if (q["model"] == "other-m") calls.push_back(q);
  }
  ASSERT_FALSE(calls.empty()) << "the reviewer made no model call\n" << daemon_.log();
  for (nlohmann::json& q : calls) {
    // The model's settings from the config are on every call…
    EXPECT_EQ(q["body"]["temperature"], 0.25) << q.dump();
    EXPECT_EQ(q["body"]["max_tokens"], 100) << q.dump();
    // …and so is the system prompt rendered from the role's prompt file.
    EXPECT_THAT(Text(q["body"]["messages"][0]["content"]),
                HasSubstr("reviewer-1, the team's REVIEWER-PROMPT. Review: Review the README"));
  }
  nlohmann::json task = CtlJson({"describe", "task", "t-2"});
  EXPECT_EQ(task["role"], "reviewer") << task.dump();
  EXPECT_EQ(task["result"]["summary"], "README reads well") << task.dump();
}

// A CEO that answers in plain text first is nudged, not taken at its word: it then
// delegates, the coder writes the file, and the goal completes with the work done.
TEST_F(GoalTest, ACeoThatAnswersInPlainTextFirstIsNudgedAndTheGoalCompletesWithTheWorkDone) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plain_text_ceo")));
  RunResult r = CtlGoalAndWait({"Write hello.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  EXPECT_THAT(r.out, HasSubstr("hello.txt is written"));
  EXPECT_EQ(ReadFileOrEmpty(Workspace("g-1") + "/hello.txt"), "hi\n");
  nlohmann::json requests = FakeRequests();
  int nudges = 0;
  for (const auto& q : requests) {
    if (q["model"] != "ceo-m") continue;
    const auto& msgs = q["body"]["messages"];
    if (msgs.is_array() && !msgs.empty() &&
        Text(msgs.back()["content"]).rfind("[agentd] Your turn ended", 0) == 0) {
      ++nudges;
    }
  }
  EXPECT_EQ(nudges, 1) << DumpJson(requests);
}

// A CEO that only talks does nothing: `goal --wait` must not exit 0. The goal fails with
// NO_RESULT after the role's nudges, and says what the model last answered.
TEST_F(GoalTest, AGoalWhoseModelOnlyAnswersInPlainTextFailsWithNoResult) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plain_text_only")));
  RunResult r = CtlGoalAndWait({"Write hello.txt"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(goal["status"], "TASK_STATUS_FAILED") << DumpJson(goal);
  EXPECT_EQ(goal["failure"]["code"], "TASK_FAILURE_CODE_NO_RESULT") << DumpJson(goal);
  EXPECT_THAT(Text(goal["failure"]["message"]), HasSubstr("plain text"));
  EXPECT_EQ(CountRequests(FakeRequests(), "ceo-m"), 3) << "the answer and two nudged ones";
}

// A goal's workspace is made ready (git init, a worktree) off the core loop: while git
// runs for one goal, agentd answers everything else. Here git waits for the test's word,
// and agentd must answer a status call in the meantime.
TEST_F(GoalTest, WhileAGoalsWorkspaceIsPreparedAgentdAnswersOtherCalls) {
  mkdir(dir_.Join("fakebin").c_str(), 0755);
  std::string started = dir_.Join("git-started"), release = dir_.Join("git-release");
  WriteFile(dir_.Join("fakebin/git"),
            absl::StrCat("#!/bin/sh\ntouch '", started, "' 2>/dev/null\nwhile [ ! -e '", release,
                         "' ]; do sleep 0.05; done\nexec /usr/bin/git \"$@\"\n"));
  chmod(dir_.Join("fakebin/git").c_str(), 0755);
  const char* path = std::getenv("PATH");
  daemon_env_ = {
      absl::StrCat("PATH=", dir_.Join("fakebin"), ":", path != nullptr ? path : "/usr/bin:/bin")};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("delegate")));
  Subprocess submit({AgentctlBinary(), "--socket", daemon_.socket(), "goal", "Write hello.txt"},
                    dir_.Join("submit.out"), dir_.Join("submit.err"));
  ASSERT_TRUE(WaitFor([&] { return access(started.c_str(), F_OK) == 0; }, absl::Seconds(30)))
      << "agentd never ran git";
  // git holds the goal's workspace; agentd answers.
  RunResult status = Ctl({"--timeout", "5s", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
  EXPECT_TRUE(submit.running()) << "the goal was answered before its workspace was ready";
  WriteFile(release, "");
  std::optional<int> exited = submit.WaitExit(absl::Seconds(60));
  ASSERT_TRUE(exited.has_value());
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 0)
      << ReadFileOrEmpty(dir_.Join("submit.err"));
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
}

}  // namespace
}  // namespace agentd::testing
