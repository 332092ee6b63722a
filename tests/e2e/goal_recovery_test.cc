// Recovery from kill -9: of an agent mid-task, and of agentd itself mid-plan. What was
// done stays done — each side effect runs once — and the work resumes where it stopped.
#include <signal.h>
#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

TEST_F(GoalTest, AKilledCoderResumesItsSessionAndRunsEachSideEffectOnce) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("killed_coder")));
  RunResult submitted = Ctl({"goal", "Append once"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // The coder ran its command and now waits on the model: kill -9 it there.
  ASSERT_TRUE(
      WaitFor([&] { return CountRequests(FakeRequests(), "coder-m") >= 2; }, absl::Seconds(30)))
      << daemon_.log();
  v1::Agent coder = daemon_.client().GetAgent("coder-1");
  ASSERT_GT(coder.pid(), 0) << coder.ShortDebugString();
  ASSERT_EQ(kill(static_cast<pid_t>(coder.pid()), SIGKILL), 0);

  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  EXPECT_GE(daemon_.client().GetAgent("coder-1").restarts(), 1);
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_EQ(ReadFileOrEmpty(ws + "/runs.log"), "run\n");  // the command ran exactly once
  nlohmann::json task = CtlJson({"describe", "task", "t-2"});
  EXPECT_EQ(task["status"], "TASK_STATUS_COMPLETED") << task.dump();
  EXPECT_EQ(task["attempts"], 1) << task.dump();  // resumed, not started over
}

// kill -9 of agentd while a plan runs: the restarted daemon finds its goals, plans and
// tasks in agentd.db, the agents resume their sessions, and the goal completes with
// every step done once.
TEST_F(GoalTest, AGoalSurvivesKillNineOfTheDaemonMidPlanWithNoStepLostOrRunTwice) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("daemon_kill_mid_plan"),
                                "  manager: {model: manager, prompt: roles/manager.md,\n"
                                "            tools: [propose_plan, complete_task]}\n"));
  ASSERT_EQ(Ctl({"goal", "Write two files", "--approve", "auto"}).exit_code, 0);
  // Step two has run its command and waits on the model: kill -9 agentd there.
  ASSERT_TRUE(WaitFor(
      [&] {
        int n = 0;
        for (nlohmann::json& r : FakeRequests()) {
          if (r["model"] != "coder-m") continue;
          for (nlohmann::json& m : r["body"]["messages"]) n += m["role"] == "tool";
        }
        return n >= 2;  // one tool result in each step's conversation
      },
      absl::Seconds(30)))
      << daemon_.log();
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_EQ(ReadFileOrEmpty(ws + "/one.txt"), "one\n");  // each step's command ran once
  EXPECT_EQ(ReadFileOrEmpty(ws + "/two.txt"), "two\n");
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  // The goal, the manager's task, two steps: none lost or added.
  ASSERT_EQ(ArraySize(tasks, "tasks"), 4u) << tasks.dump();
  for (const auto& t : tasks["tasks"]) {
    EXPECT_EQ(t["status"], "TASK_STATUS_COMPLETED") << t.dump() << daemon_.log();
    EXPECT_EQ(t["attempts"], 1) << t.dump();  // resumed, never started over
  }
}

// agentd dies right after a plan's approval is stored, before anything of its execution:
// the restarted agentd executes the approved plan, each step once. (A plan's step tasks
// and its EXECUTING are stored in one transaction, so no crash leaves some of them.)
TEST_F(GoalTest, APlanApprovedJustBeforeACrashIsExecutedOnceAfterTheRestart) {
  daemon_env_ = {"AGENTD_FAULT_EXIT_AFTER_EVENT=plan.approved"};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plan_two_steps"),
                                "  manager: {model: manager, prompt: roles/manager.md,\n"
                                "            tools: [propose_plan, complete_task]}\n"));
  ASSERT_EQ(Ctl({"goal", "Write two files", "--approve", "auto"}).exit_code, 0);
  ASSERT_NO_FATAL_FAILURE(RestartAfterInjectedExit());
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_EQ(ReadFileOrEmpty(ws + "/one.txt"), "one\n");
  EXPECT_EQ(ReadFileOrEmpty(ws + "/two.txt"), "two\n");
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  ASSERT_EQ(ArraySize(tasks, "tasks"), 4u) << tasks.dump();
  for (const auto& t : tasks["tasks"]) {
    EXPECT_EQ(t["status"], "TASK_STATUS_COMPLETED") << t.dump();
    EXPECT_EQ(t["attempts"], 1) << t.dump();
  }
  nlohmann::json plan = CtlJson({"describe", "plan", "p-1"});
  EXPECT_EQ(plan["status"], "PLAN_STATUS_COMPLETED") << plan.dump();
}

// kill -9 of agentd, and then of the agent, while a task waits out a provider's outage:
// the wait survives both, and the task goes on in its first attempt and completes.
TEST_F(GoalTest, KillNineOfAgentdAndOfTheAgentDuringProviderBackoffLosesNothing) {
  extra_policy_ = "  provider_retry: {max: 3, backoff: 3s, max_backoff: 3s}";
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("provider_down"), "", "[fs.list, complete_task, fail_task]"));
  ASSERT_EQ(Ctl({"goal", "List it"}).exit_code, 0);
  auto blocked_on_provider = [&] {
    nlohmann::json t = PollCtlJson({"describe", "task", "g-1"});
    return t.is_object() && t.value("blockedReason", "") == "BLOCK_REASON_PROVIDER";
  };
  ASSERT_TRUE(WaitFor(blocked_on_provider, absl::Seconds(60))) << daemon_.log();
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  // Still waiting after the restart (the backoff starts again), then the agent dies too.
  ASSERT_TRUE(blocked_on_provider()) << daemon_.log();
  nlohmann::json ceo = CtlJson({"describe", "agent", "ceo-1"});
  std::string pid = Text(ceo["pid"]);
  if (!pid.empty() && pid != "0" && pid != "null") kill(std::stoi(pid), SIGKILL);
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  nlohmann::json goal = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(goal["attempts"], 1) << "started over: " << goal.dump();
  EXPECT_EQ(CountRequests(FakeRequests(), "ceo-m"), 7) << "five refused, then list and done";
}

// A change and the audit entry that records it are one transaction: agentd dying right
// after a goal's submission is stored leaves its audit entry stored too, and the chain
// verifies.
TEST_F(GoalTest, AChangeAndItsAuditEntryAreStoredTogether) {
  daemon_env_ = {"AGENTD_FAULT_EXIT_AFTER_EVENT=goal.submitted"};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("goal_checks")));
  (void)Ctl({"goal", "Write hello.txt"});  // agentd may exit before it answers
  ASSERT_NO_FATAL_FAILURE(RestartAfterInjectedExit());
  nlohmann::json audit = CtlJson({"audit", "--goal", "g-1"});
  bool submitted = false;
  for (const auto& e : audit["entries"]) {
    submitted =
        submitted || (e.value("action", "") == "goal.submit" && e.value("target", "") == "g-1");
  }
  EXPECT_TRUE(submitted) << DumpJson(audit);
  RunResult verify = Ctl({"audit", "--verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// A canceled goal's subtree ends in one transaction: agentd stopped right after the
// first task.canceled event was committed leaves, after its restart, the goal and its
// running child both canceled — not a child canceled under a goal that goes on.
TEST_F(GoalTest, ACanceledSubtreeIsStoredWholeOrNotAtAll) {
  daemon_env_ = {"AGENTD_FAULT_EXIT_AFTER_EVENT=task.canceled"};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("cancel_slow_coder")));
  ASSERT_EQ(Ctl({"goal", "Think"}).exit_code, 0);
  ASSERT_TRUE(
      WaitFor([&] { return CountRequests(FakeRequests(), "coder-m") >= 1; }, absl::Seconds(30)))
      << daemon_.log();
  (void)Ctl({"cancel", "g-1", "--reason", "changed my mind"});  // agentd may exit first
  ASSERT_NO_FATAL_FAILURE(RestartAfterInjectedExit());
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  ASSERT_EQ(ArraySize(tasks, "tasks"), 2u) << DumpJson(tasks);
  for (const auto& t : tasks["tasks"]) {
    EXPECT_EQ(t["status"], "TASK_STATUS_CANCELED") << DumpJson(t);
  }
}

}  // namespace
}  // namespace agentd::testing
