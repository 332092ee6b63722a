// Plans: a Manager's proposal is checked by agentd, approved or rejected by a person (or
// automatically), and run step by step by Coders and a Tester against a real project's
// real tests; a failed step goes back up to the Manager, who plans the fix.
#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// The five-role flow of a real change: the CEO hands the goal to the Manager, whose
// first proposals are invalid (a cycle, an unknown role) and whose first valid plan a
// person rejects; the revision is approved with agentctl; Coders change the code and
// commit on the goal's branch, the Tester runs the project's real tests.
TEST_F(GoalTest, AManagersPlanIsCheckedRejectedRevisedApprovedAndRunToAPassingTest) {
  const std::string extra_roles = R"(  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, delegate, complete_task, fail_task]}
  tester: {model: tester, prompt: roles/tester.md, tools: [tests.run, complete_task, fail_task]}
)";
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plan_review"), extra_roles));
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  const absl::Duration goal_timeout = absl::Seconds(120);
  Subprocess wait(
      {AgentctlBinary(), "--socket", daemon_.socket(), "goal", "Add mul() with tests",
       "--workspace", repo, "--approve", "manual", "--wait", "--timeout", ScaledText(goal_timeout)},
      dir_.Join("goal.out"), dir_.Join("goal.err"));
  // The first valid plan waits for a person; the invalid ones never reached one.
  nlohmann::json plans;
  ASSERT_TRUE(PlansReach(1, &plans));
  nlohmann::json plan = plans["plans"][0];
  EXPECT_EQ(plan["status"], "PLAN_STATUS_PROPOSED");
  std::string told;  // every tool result in the manager's conversations
  for (nlohmann::json& r : FakeRequests()) {
    if (r["model"] != "manager-m") continue;
    for (nlohmann::json& m : r["body"]["messages"]) {
      if (m["role"] == "tool") told += Text(m["content"]) + "\n";
    }
  }
  EXPECT_THAT(told, HasSubstr("steps a → b → a form a cycle"));
  EXPECT_THAT(told, HasSubstr("step draw: role \"designer\" is not configured"));
  RunResult rejected =
      Ctl({"reject", plan["id"].get<std::string>(), "--reason", "the tests must run too"});
  ASSERT_EQ(rejected.exit_code, 0) << rejected.err;

  // The revision: three steps, estimates shown before anyone approves.
  nlohmann::json revised;
  ASSERT_TRUE(WaitForValue(
      [&] {
        nlohmann::json proposed;  // null until there is a proposed plan
        nlohmann::json all = PollCtlJson({"get", "plans"});
        if (ArraySize(all, "plans") == 0) return proposed;
        for (auto& p : all["plans"]) {
          if (p["status"] == "PLAN_STATUS_PROPOSED") proposed = p;
        }
        return proposed;
      },
      [](const nlohmann::json& p) { return !p.is_null(); }, absl::Seconds(30), &revised))
      << daemon_.log();
  EXPECT_EQ(revised["revision"], 2);
  EXPECT_EQ(revised["previousPlanId"], plan["id"]);
  EXPECT_EQ(ArraySize(revised, "steps"), 3u) << revised.dump();
  RunResult shown = Ctl({"describe", "plan", revised["id"].get<std::string>()});
  EXPECT_THAT(shown.out, HasSubstr("2000 tokens"));
  RunResult approved =
      Ctl({"approve", revised["id"].get<std::string>(), "--comment", "ship it, tests first"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  // The approver's comment is kept with the decision in the audit log.
  std::string approval_comment;
  nlohmann::json audit = CtlJson({"audit", "--goal", "g-1", "--action", "plan.approve"});
  for (auto& e : audit["entries"]) {
    if (e["target"] == revised["id"]) approval_comment = Text(e["details"]["comment"]);
  }
  EXPECT_EQ(approval_comment, "ship it, tests first") << audit.dump();

  std::optional<int> st = wait.WaitExit(goal_timeout + absl::Seconds(30));
  ASSERT_TRUE(st.has_value()) << daemon_.log();
  // A signal's death has WEXITSTATUS 0 too: the exit must be a normal one.
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
      << DescribeWaitStatus(st) << "\n"
      << ReadFileOrEmpty(dir_.Join("goal.err")) << daemon_.log();
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("goal.out")), HasSubstr("mul() is in"));
  // The steps ran in order on the goal's branch; the tester ran the real tests.
  EXPECT_EQ(Git(repo, "log --format=%s agentd/g-1"), "Test mul\nAdd mul\nbase\n");
  EXPECT_THAT(Git(repo, "show agentd/g-1:calc.py"), HasSubstr("def mul"));
  std::vector<std::string> test_runs = ToolResults(FakeRequests(), "tester-m");
  ASSERT_FALSE(test_runs.empty()) << "the tester never ran the tests";
  EXPECT_THAT(test_runs.back(), HasSubstr("2 passed"));
  nlohmann::json done = CtlJson({"describe", "plan", revised["id"].get<std::string>()});
  EXPECT_EQ(done["status"], "PLAN_STATUS_COMPLETED");
  nlohmann::json usage = CtlJson({"usage", "--by", "role"});
  std::set<std::string> roles;
  for (auto& g : usage["groups"]) roles.insert(g["role"].get<std::string>());
  EXPECT_EQ(roles, (std::set<std::string>{"ceo", "manager", "coder", "tester"}));

  // Finished work lives in the store: once the task that proposed them has ended, the
  // plans leave agentd's memory and are read back from the store as they were, before
  // and after a restart (which reads back only what may still change).
  auto expect_plans_in_store = [&](const std::string& when) {
    EXPECT_TRUE(NoPlansInMemory()) << when;
    nlohmann::json all = CtlJson({"get", "plans", "--goal", "g-1"});
    ASSERT_EQ(ArraySize(all, "plans"), 2u) << when << ": " << DumpJson(all);
    EXPECT_EQ(all["plans"][0]["id"], revised["id"]) << "newest first";
    EXPECT_EQ(all["plans"][0]["status"], "PLAN_STATUS_COMPLETED");
    EXPECT_EQ(ArraySize(all["plans"][0], "steps"), 3u);
    EXPECT_EQ(all["plans"][1]["status"], "PLAN_STATUS_REJECTED");
    nlohmann::json first = CtlJson({"describe", "plan", plan["id"].get<std::string>()});
    EXPECT_EQ(first["rejectionReason"], "the tests must run too") << when;
    RunResult again = Ctl({"approve", revised["id"].get<std::string>()});
    EXPECT_NE(again.exit_code, 0) << when;
    EXPECT_THAT(again.err, HasSubstr("is completed; only a proposed plan can be approved")) << when;
    RunResult reject = Ctl({"reject", plan["id"].get<std::string>(), "--reason", "twice"});
    EXPECT_THAT(reject.err, HasSubstr("is rejected; only a proposed plan can be rejected")) << when;
  };
  expect_plans_in_store("after the goal");
  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  expect_plans_in_store("after a restart");
}

// The Tester's failure goes back up: the plan fails, the Manager gets the failure
// summary, plans a fix; the Coder fixes, the Tester's re-run passes.
class TesterFailureTest : public GoalTest {
 protected:
  void RunGoal() {
    const std::string extra_roles = R"(  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, complete_task, fail_task]}
  tester: {model: tester, prompt: roles/tester.md, tools: [tests.run, complete_task, fail_task]}
)";
    ASSERT_NO_FATAL_FAILURE(Start(Scenario("tester_failure"), extra_roles));
    std::string repo = CalcRepo();
    ASSERT_FALSE(repo.empty());
    RunResult r =
        CtlGoalAndWait({"Add mul()", "--workspace", repo, "--approve", "auto"}, absl::Seconds(120));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
    EXPECT_EQ(Git(repo, "log --format=%s agentd/g-1"), "Fix mul\nAdd mul\nbase\n");
    std::vector<std::string> runs = ToolResults(FakeRequests(), "tester-m");  // tests.run's
    ASSERT_EQ(runs.size(), 2u) << daemon_.log();
    EXPECT_THAT(runs[0], HasSubstr("1 failed"));
    EXPECT_THAT(runs[0], HasSubstr("test_mul"));
    EXPECT_THAT(runs[1], HasSubstr("2 passed"));
    nlohmann::json plans = CtlJson({"get", "plans"});
    std::map<std::string, std::string> status;
    for (auto& p : plans["plans"]) status[p["id"]] = p["status"];
    EXPECT_EQ(status["p-1"], "PLAN_STATUS_FAILED");
    EXPECT_EQ(status["p-2"], "PLAN_STATUS_COMPLETED");
  }
};

TEST_F(TesterFailureTest, ATestersFailureReachesTheCoderWhoFixesItAndTheRerunPasses) { RunGoal(); }

// The same with no finished task kept in memory: each is read back from the store when
// the plan, the hand-back to the Manager or the next assignment needs it.
TEST_F(TesterFailureTest, WithEveryFinishedTaskOnlyInTheStoreTheFailureStillReachesTheCoder) {
  daemon_env_ = {"AGENTD_TEST_RESIDENT_FINISHED_TASKS=0"};
  RunGoal();
  nlohmann::json info = CtlJson({"status"});
  EXPECT_EQ(info["counters"]["tasksInMemory"], "0") << DumpJson(info);
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  EXPECT_GE(ArraySize(tasks, "tasks"), 6u) << DumpJson(tasks);
  for (const auto& task : tasks["tasks"]) EXPECT_FALSE(task["title"].get<std::string>().empty());
}

// policy.on_plan_failure rollback: a plan whose step fails for good has its workspace put
// back as it was when the plan started (the first step's file is gone), and the task that
// proposed it is told what was undone before it goes on.
TEST_F(GoalTest, AFailedPlanIsRolledBackToItsCheckpointAndTheProposerIsTold) {
  extra_policy_ = "  on_plan_failure: rollback";
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plan_rollback"),
                                "  manager: {model: manager, prompt: roles/manager.md,\n"
                                "            tools: [propose_plan, complete_task, fail_task]}\n"
                                "  hand: {model: coder, prompt: roles/coder.md,\n"
                                "         tools: [fs.write, git.checkpoint, complete_task]}\n"));
  RunResult r = CtlGoalAndWait({"Write one.txt, then give up", "--approve", "auto"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  nlohmann::json plan = CtlJson({"describe", "plan", "p-1"});
  EXPECT_EQ(plan["status"], "PLAN_STATUS_FAILED") << plan.dump();
  EXPECT_THAT(Text(plan["checkpoint"]), HasSubstr("checkpoint plan-p-1 saved")) << plan.dump();
  EXPECT_THAT(Text(plan["rollback"]), HasSubstr("rolled back to plan-p-1")) << plan.dump();
  // Step one did write the file; the rollback took it away.
  std::map<std::string, std::string> step_status;
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  for (const auto& t : tasks["tasks"]) {
    if (t.contains("planStepId")) step_status[Text(t["planStepId"])] = Text(t["status"]);
  }
  EXPECT_EQ(step_status["one"], "TASK_STATUS_COMPLETED");
  EXPECT_EQ(step_status["two"], "TASK_STATUS_FAILED");
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_FALSE(std::filesystem::exists(ws + "/one.txt")) << "not rolled back";
  // Though the step saved a checkpoint of its own under the plan's name, with one.txt.
  bool overwritten = false;
  for (const auto& q : FakeRequests()) {
    overwritten =
        overwritten ||
        (q["model"] == "coder-m" &&
         DumpJson(q["body"]["messages"]).find("checkpoint plan-p-1 saved") != std::string::npos);
  }
  EXPECT_TRUE(overwritten) << DumpJson(FakeRequests());
  // The Manager heard it, and only then went on.
  bool told = false;
  for (const auto& q : FakeRequests()) {
    if (q["model"] != "manager-m") continue;
    told =
        told || DumpJson(q["body"]["messages"]).find("put the workspace back") != std::string::npos;
  }
  EXPECT_TRUE(told) << DumpJson(FakeRequests());
  nlohmann::json manager = CtlJson({"describe", "task", "t-2"});
  EXPECT_THAT(Text(manager["failure"]["message"]), HasSubstr("rolled back"))
      << manager.dump() << daemon_.log();
}

}  // namespace
}  // namespace agentd::testing
