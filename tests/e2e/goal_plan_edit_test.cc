// A person edits a proposed plan before approving it: the edit is checked as an agent's
// plan is, and the plan that runs is the person's revision.
#include <sys/wait.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kManager[] = R"(  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, delegate, complete_task, fail_task]}
)";

// The plan as the test's "person" writes it: first with a cycle, then valid.
constexpr char kCyclic[] = R"(summary: mine
steps:
  - {id: one, title: One, role: coder, instructions: "Write one.txt", deps: [three]}
  - {id: three, title: Three, role: coder, instructions: "Write one.txt again", deps: [one]}
)";
constexpr char kEdited[] = R"(summary: only the first step, done carefully
steps:
  - id: one
    title: One, carefully
    role: coder
    instructions: |
      Write one.txt, twice as carefully
    deps: []
    estimate: {tokens: 2000, cost_usd: 0, duration: 1m}
)";

TEST_F(GoalTest, APersonEditsAPlanInTheirEditorAndTheEditedPlanRuns) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plan_edit"), kManager));
  const absl::Duration goal_timeout = absl::Seconds(90);
  Subprocess wait({AgentctlBinary(), "--socket", daemon_.socket(), "goal", "Two files", "--approve",
                   "manual", "--wait", "--timeout", ScaledText(goal_timeout)},
                  dir_.Join("goal.out"), dir_.Join("goal.err"));
  nlohmann::json plans;
  ASSERT_TRUE(PlansReach(1, &plans));
  const std::string proposed = Text(plans["plans"][0]["id"]);
  ASSERT_EQ(plans["plans"][0]["status"], "PLAN_STATUS_PROPOSED");

  // Checked without approving: every problem with its step and field.
  Client client = daemon_.client();
  {
    v1::ApprovePlanRequest req;
    req.set_plan_id(proposed);
    req.set_validate_only(true);
    v1::PlanStep* a = req.add_steps();
    a->set_id("a");
    a->set_role("designer");
    a->set_instructions("Draw");
    v1::PlanStep* b = req.add_steps();
    b->set_id("b");
    b->set_role("coder");
    b->set_instructions("Code");
    b->add_deps("nowhere");
    v1::ApprovePlanResponse resp;
    std::unique_ptr<grpc::ClientContext> ctx = Ctx();
    grpc::Status s = client.plans().ApprovePlan(ctx.get(), req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> seen;
    for (const v1::PlanViolation& v : resp.violations()) {
      seen.push_back(absl::StrCat(v.step_id(), ":", v1::PlanViolationCode_Name(v.code())));
    }
    EXPECT_THAT(seen, ::testing::UnorderedElementsAre("a:PLAN_VIOLATION_CODE_UNKNOWN_ROLE",
                                                      "b:PLAN_VIOLATION_CODE_UNKNOWN_DEP"));
    // Too many steps, chained: refused as an agent's would be, without being walked.
    v1::ApprovePlanRequest many;
    many.set_plan_id(proposed);
    many.set_validate_only(true);
    for (int i = 0; i < 5000; ++i) {
      v1::PlanStep* st = many.add_steps();
      st->set_id(absl::StrCat("s", i));
      st->set_role("coder");
      st->set_instructions("x");
      if (i > 0) st->add_deps(absl::StrCat("s", i - 1));
    }
    v1::ApprovePlanResponse too_many;
    std::unique_ptr<grpc::ClientContext> many_ctx = Ctx();
    ASSERT_TRUE(client.plans().ApprovePlan(many_ctx.get(), many, &too_many).ok());
    bool refused = false;
    for (const v1::PlanViolation& v : too_many.violations()) {
      refused = refused || v.code() == v1::PLAN_VIOLATION_CODE_TOO_MANY_STEPS;
    }
    EXPECT_TRUE(refused) << too_many.violations_size();
    // The same edit, approved: refused, saying why, and nothing changed.
    req.set_validate_only(false);
    std::unique_ptr<grpc::ClientContext> ctx2 = Ctx();
    s = client.plans().ApprovePlan(ctx2.get(), req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("designer"));
    nlohmann::json still = CtlJson({"get", "plans"});
    ASSERT_EQ(ArraySize(still, "plans"), 1u);
    EXPECT_EQ(still["plans"][0]["status"], "PLAN_STATUS_PROPOSED");
  }

  // The person's editor: a script that writes a cyclic plan first, then (seeing the
  // problem written at the top of the file it is given again) the valid edit.
  WriteFile(dir_.Join("cyclic.yaml"), kCyclic);
  WriteFile(dir_.Join("edited.yaml"), kEdited);
  const std::string editor = dir_.Join("editor.sh");
  WriteFile(editor,
            absl::StrCat("#!/bin/sh\nset -e\ncp \"$1\" \"", dir_.Join("seen"), "-$(ls ",
                         dir_.path(), " | grep -c '^seen-' || true)\"\n",
                         "if grep -q 'not approved' \"$1\"; then cp \"", dir_.Join("edited.yaml"),
                         "\" \"$1\"; else cp \"", dir_.Join("cyclic.yaml"), "\" \"$1\"; fi\n"));
  std::filesystem::permissions(editor, std::filesystem::perms::owner_all);
  RunResult edited =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "approve", proposed, "--edit"},
                 absl::Seconds(60), {"VISUAL=" + editor, "EDITOR=" + editor});
  ASSERT_EQ(edited.exit_code, 0) << edited.out << edited.err;
  EXPECT_THAT(edited.err, HasSubstr("cycle"));
  EXPECT_THAT(edited.out, HasSubstr("edited into plan"));
  // What the editor was shown: the plan as proposed, then the same with the problem on top.
  std::string first = ReadFileOrEmpty(dir_.Join("seen-0"));
  EXPECT_THAT(first, HasSubstr("instructions: Write two.txt"));
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("seen-1")), HasSubstr("form a cycle"));

  std::optional<int> st = wait.WaitExit(Scaled(goal_timeout + absl::Seconds(30)));
  ASSERT_TRUE(st.has_value() && WIFEXITED(*st) && WEXITSTATUS(*st) == 0)
      << DescribeWaitStatus(st) << ReadFileOrEmpty(dir_.Join("goal.err")) << daemon_.log();
  nlohmann::json after = CtlJson({"get", "plans"});
  ASSERT_EQ(ArraySize(after, "plans"), 2u) << after.dump();
  nlohmann::json mine, theirs;
  for (const auto& p : after["plans"]) (Text(p["id"]) == proposed ? theirs : mine) = p;
  EXPECT_EQ(theirs["status"], "PLAN_STATUS_SUPERSEDED");
  EXPECT_EQ(mine["status"], "PLAN_STATUS_COMPLETED");
  EXPECT_EQ(Text(mine["previousPlanId"]), proposed);
  EXPECT_THAT(Text(mine["proposer"]), HasSubstr("human:"));
  EXPECT_EQ(Text(mine["summary"]), "only the first step, done carefully");
  ASSERT_EQ(ArraySize(mine, "steps"), 1u);
  EXPECT_EQ(Text(mine["steps"][0]["estimate"]["tokens"]), "2000");
  // Only the person's step ran, with the person's instructions.
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  int steps = 0;
  for (const auto& t : tasks["tasks"]) {
    if (Text(t["planStepId"]).empty()) continue;
    ++steps;
    EXPECT_THAT(Text(t["input"]["instructions"]), HasSubstr("twice as carefully"));
  }
  EXPECT_EQ(steps, 1) << tasks.dump();
  // The manager heard that its plan runs as the person changed it.
  std::string told;
  for (nlohmann::json& r : FakeRequests()) {
    if (r["model"] != "manager-m") continue;
    for (nlohmann::json& m : r["body"]["messages"]) told += Text(m["content"]) + "\n";
  }
  EXPECT_THAT(told, HasSubstr(absl::StrCat("plan ", proposed, " was edited")));
}

// The plan is decided elsewhere while its person edits it: agentctl says why nothing was
// approved and keeps the edit where the person can find it, not deleted with the temp dir.
TEST_F(GoalTest, AnEditThatCannotBeApprovedIsKeptInItsFile) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("plan_edit"), kManager));
  ASSERT_EQ(Ctl({"goal", "Two files", "--approve", "manual"}).exit_code, 0);
  nlohmann::json plans;
  ASSERT_TRUE(PlansReach(1, &plans));
  const std::string proposed = Text(plans["plans"][0]["id"]);
  WriteFile(dir_.Join("edited.yaml"), kEdited);
  const std::string editor = dir_.Join("editor.sh");
  WriteFile(editor,
            absl::StrCat("#!/bin/sh\nset -e\n'", AgentctlBinary(), "' --socket '", daemon_.socket(),
                         "' reject ", proposed, " --reason 'decided elsewhere' >/dev/null\ncp '",
                         dir_.Join("edited.yaml"), "' \"$1\"\n"));
  std::filesystem::permissions(editor, std::filesystem::perms::owner_all);
  RunResult edited =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "approve", proposed, "--edit"},
                 absl::Seconds(60), {"VISUAL=" + editor, "EDITOR=" + editor});
  EXPECT_NE(edited.exit_code, 0) << edited.out << edited.err;
  EXPECT_THAT(edited.err, HasSubstr("FAILED_PRECONDITION"));
  const std::string marker = "your edit is kept in ";
  size_t at = edited.err.find(marker);
  ASSERT_NE(at, std::string::npos) << edited.err;
  std::string path = edited.err.substr(at + marker.size());
  path = path.substr(0, path.find('\n'));
  EXPECT_THAT(ReadFileOrEmpty(path), HasSubstr("twice as carefully")) << path;
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
  EXPECT_EQ(CtlJson({"get", "plans"})["plans"][0]["status"], "PLAN_STATUS_REJECTED");
}

// A goal canceled while its plan waits for a person: the plan can never run, so it fails
// with its task, is offered to no one to decide, and leaves agentd's memory.
class ProposedPlanTest : public GoalTest {
 protected:
  // Proposes a plan for manual approval and cancels the goal while it waits; with
  // `agentd_exits`, agentd stops right after the cancel is committed (before anything
  // else of it runs) and is started again. Sets proposed_ to the plan's id.
  void CancelWhileProposed(bool agentd_exits) {
    if (agentd_exits) daemon_env_ = {"AGENTD_FAULT_EXIT_AFTER_EVENT=task.canceled"};
    ASSERT_NO_FATAL_FAILURE(Start(Scenario("plan_edit"), kManager));
    ASSERT_EQ(Ctl({"goal", "Two files", "--approve", "manual"}).exit_code, 0);
    nlohmann::json plans;
    ASSERT_TRUE(PlansReach(1, &plans));
    proposed_ = Text(plans["plans"][0]["id"]);
    ASSERT_EQ(plans["plans"][0]["status"], "PLAN_STATUS_PROPOSED");
    RunResult cancel = Ctl({"cancel", "g-1"});
    if (agentd_exits) {
      ASSERT_NO_FATAL_FAILURE(RestartAfterInjectedExit());  // agentd may exit before answering
    } else {
      ASSERT_EQ(cancel.exit_code, 0) << cancel.out << cancel.err;
    }
    EXPECT_EQ(CtlJson({"describe", "task", "g-1"})["status"], "TASK_STATUS_CANCELED");
  }
  void ExpectFailedAndForgotten(const std::string& when) {
    nlohmann::json plan;
    ASSERT_TRUE(WaitForValue(
        [&] {
          return PollCtlJson({"describe", "plan", proposed_});
        },
        [](const nlohmann::json& p) { return !p.is_null() && p["status"] == "PLAN_STATUS_FAILED"; },
        absl::Seconds(10), &plan))
        << when << ": " << DumpJson(plan) << daemon_.log();
    EXPECT_TRUE(NoPlansInMemory()) << when;
    nlohmann::json all = CtlJson({"get", "plans", "--goal", "g-1"});
    ASSERT_EQ(ArraySize(all, "plans"), 1u) << when << ": " << DumpJson(all);
    EXPECT_EQ(all["plans"][0]["status"], "PLAN_STATUS_FAILED") << when;
    RunResult approve = Ctl({"approve", proposed_});
    EXPECT_NE(approve.exit_code, 0) << when;
    EXPECT_THAT(approve.err, HasSubstr("is failed; only a proposed plan can be approved")) << when;
  }
  std::string proposed_;
};

// Before and after a restart (which would otherwise read an undecided plan back each time).
TEST_F(ProposedPlanTest, APlanStillProposedWhenItsGoalIsCanceledFailsAndIsNoLongerDecidable) {
  ASSERT_NO_FATAL_FAILURE(CancelWhileProposed(/*agentd_exits=*/false));
  ASSERT_NO_FATAL_FAILURE(ExpectFailedAndForgotten("after the cancel"));
  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  ExpectFailedAndForgotten("after a restart");
}

// agentd stopped between the cancel's commit and failing the plan: the store holds a
// proposed plan of an ended task, and start-up fails it then (as it would one left by an
// older agentd).
TEST_F(ProposedPlanTest, AProposedPlanOfATaskThatEndedBeforeAStopFailsAtStart) {
  ASSERT_NO_FATAL_FAILURE(CancelWhileProposed(/*agentd_exits=*/true));
  ExpectFailedAndForgotten("after the restart");
}

}  // namespace
}  // namespace agentd::testing
