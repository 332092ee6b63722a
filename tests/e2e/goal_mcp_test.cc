// MCP tool servers in a goal: a role granted an MCP server's tools gets them with their
// schemas, its agent starts the server inside its sandbox, the model's call reaches the
// server and its answer the model; a tool the server marks destructive waits for a person;
// every call is audited.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

class McpGoalTest : public GoalTest {
 protected:
  void SetUp() override {
    const std::string modules = AGENTD_SOURCE_ROOT "/tests/interop/node_modules";
    extra_config_ = absl::StrCat(
        "mcp_servers:\n"
        "  everything: {command: node, args: [\"",
        modules,
        "/@modelcontextprotocol/server-everything/dist/index.js\", stdio],\n"
        "               read_only_paths: [\"",
        modules, "\"]}\n", "  files: {command: node, args: [\"", modules,
        "/@modelcontextprotocol/server-filesystem/dist/index.js\", \".\"],\n"
        "          read_only_paths: [\"",
        modules, "\"]}\n");
  }
  // The role that uses them (model other-m).
  static constexpr char kRole[] =
      "  mcpuser: {model: other, prompt: roles/coder.md, max_instances: 1,\n"
      "            tools: [\"mcp:everything/get-sum\", \"mcp:files\", complete_task, fail_task]}\n";
};

int McpCallsAudited(const nlohmann::json& audit, const std::string& action) {
  int n = 0;
  for (const auto& e : audit["entries"]) n += e["action"] == action && e["details"]["ok"] == "true";
  return n;
}

TEST_F(McpGoalTest, AModelCallsAnMcpToolUsesItsAnswerAndAPersonApprovesADestructiveOne) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("mcp_sum"), kRole));
  std::string ws = dir_.Join("ws");
  ASSERT_EQ(Ctl({"goal", "Add 2 and 3", "--workspace", ws}).exit_code, 0);
  // write_file is destructive, and the role grants the whole server, not the tool: a
  // person decides, on exactly these arguments.
  nlohmann::json pending;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"get", "consents"});
      },
      [](const nlohmann::json& j) { return ArraySize(j, "consentRequests") == 1; },
      absl::Seconds(60), &pending))
      << daemon_.log();
  nlohmann::json req = pending["consentRequests"][0];
  EXPECT_EQ(req["kind"], "CONSENT_KIND_DESTRUCTIVE_TOOL");
  EXPECT_EQ(req["tool"], "mcp:files/write_file");
  EXPECT_THAT(Text(req["summary"]), HasSubstr("call write_file of MCP server files"));
  EXPECT_THAT(Text(req["summary"]), HasSubstr("sum.txt"));
  // The model saw the sum server-everything computed.
  std::vector<std::string> results = ToolResults(FakeRequests(), "other-m");
  ASSERT_EQ(results.size(), 1u) << DumpJson(FakeRequests());
  EXPECT_THAT(results[0], HasSubstr("The sum of 2 and 3 is 5"));
  // The tools reached the model under their wire names, with the servers' schemas.
  bool saw_schema = false;
  for (const nlohmann::json& q : FakeRequests()) {
    if (q.value("model", "") != "other-m") continue;
    for (const nlohmann::json& t : q["body"].value("tools", nlohmann::json::array())) {
      if (t["function"]["name"] == "mcp_everything_get-sum") {
        saw_schema = t["function"]["parameters"]["properties"].contains("a");
      }
    }
  }
  EXPECT_TRUE(saw_schema) << DumpJson(FakeRequests());
  EXPECT_TRUE(ReadFileOrEmpty(ws + "/sum.txt").empty());  // nothing written before consent
  RunResult ok = Ctl({"consent", "approve", req["id"].get<std::string>()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  EXPECT_EQ(ReadFileOrEmpty(ws + "/sum.txt"), "5\n");
  // Each call is audited, as a side effect is.
  nlohmann::json audit = CtlJson({"audit", "--goal", "g-1"});
  EXPECT_EQ(McpCallsAudited(audit, "mcp:everything/get-sum"), 1) << DumpJson(audit);
  EXPECT_EQ(McpCallsAudited(audit, "mcp:files/write_file"), 1) << DumpJson(audit);
}

// A hostile MCP server in a goal: a crash, malformed JSON and a hang each reach the model
// as an error that says so, and the agent goes on (it is not restarted for them). A call
// that changes things, cut off by kill -9 of the agent, is reported to the model as
// uncertain by the resumed agent, not run again.
TEST_F(McpGoalTest, AHostileServersFailuresReachTheModelAndACutCallIsReportedUncertain) {
  const std::string helpers = AGENTD_SOURCE_ROOT "/tests/helpers";
  extra_config_ = absl::StrCat(
      "mcp_servers:\n"
      "  mis: {command: node, args: [\"",
      helpers,
      "/mcp_misbehaving_server.mjs\"],\n"
      "        read_only_paths: [\"",
      helpers, "\"], timeout: ", ScaledText(absl::Seconds(2)), "}\n",
      "  slow: {command: node, args: [\"", helpers,
      "/mcp_misbehaving_server.mjs\"],\n"
      "         read_only_paths: [\"",
      helpers, "\"], timeout: 10m}\n");
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("mcp_hostile"),
            "  mcpuser: {model: other, prompt: roles/coder.md, max_instances: 1,\n"
            "            tools: [\"mcp:mis\", \"mcp:slow/slow-write\",\n"
            "                    complete_task, fail_task]}\n"));
  std::string ws = dir_.Join("ws");
  ASSERT_EQ(Ctl({"goal", "Use the tools", "--workspace", ws}).exit_code, 0);
  // slow-write marks its start in the workspace and never answers: kill -9 the agent there.
  ASSERT_TRUE(WaitFor([&] { return !ReadFileOrEmpty(ws + "/slow-write-started").empty(); },
                      absl::Seconds(60)))
      << daemon_.log();
  v1::Agent agent = daemon_.client().GetAgent("mcpuser-1");
  ASSERT_GT(agent.pid(), 0) << agent.ShortDebugString();
  EXPECT_EQ(agent.restarts(), 0);  // the server's crash, garbage and hang did not end it
  ASSERT_EQ(kill(static_cast<pid_t>(agent.pid()), SIGKILL), 0);
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  std::vector<std::string> results = ToolResults(FakeRequests(), "other-m");
  ASSERT_EQ(results.size(), 4u) << DumpJson(FakeRequests());
  EXPECT_THAT(results[0], HasSubstr("the server failed during the call"));
  EXPECT_THAT(results[0], HasSubstr("exit status 3"));
  EXPECT_THAT(results[1], HasSubstr("malformed message"));
  EXPECT_THAT(results[2], HasSubstr("gave no answer within"));
  EXPECT_THAT(results[3], HasSubstr("may or may not have taken effect"));
  EXPECT_EQ(daemon_.client().GetAgent("mcpuser-1").restarts(), 1);
}

// agentd as an MCP server: the official TypeScript SDK's client drives a goal through
// `agentctl mcp` as a person would — submits it, approves its plan and its Coder's consent
// request, and waits for it with progress notifications.
TEST_F(GoalTest, AnMcpClientSubmitsAGoalApprovesItsPlanAndConsentAndWaitsForIt) {
  extra_policy_ = "  plan_approval: manual";
  const std::string roles = R"(  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, complete_task, fail_task]}
)";
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("mcp_client_plan"), roles, "[delegate, complete_task, fail_task]"));
  RunResult r = RunCommand({"node", AGENTD_SOURCE_ROOT "/tests/interop/agentctl_mcp_client.mjs",
                            AgentctlBinary(), daemon_.socket()},
                           Scaled(absl::Seconds(180)));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  nlohmann::json seen = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << r.out;
  EXPECT_EQ(seen["server"]["name"], "agentd");
  EXPECT_EQ(seen["modern"]["protocol"], "2026-07-28");
  EXPECT_EQ(seen["modern"]["tools"], 9);
  EXPECT_EQ(seen["modern"]["plans"], 0);
  EXPECT_EQ(seen["modern"]["isError"], false);
  EXPECT_EQ(seen["tools"], nlohmann::json({"approve_plan", "cancel_goal", "decide_consent",
                                           "get_goal", "list_consent_requests", "list_plans",
                                           "reject_plan", "submit_goal", "wait_goal"}));
  EXPECT_EQ(seen["missingGoal"]["isError"], true);
  EXPECT_THAT(Text(seen["missingGoal"]["text"]), HasSubstr("NOT_FOUND"));
  EXPECT_EQ(seen["goal"], "g-1");
  EXPECT_EQ(seen["planStatus"], "PLAN_STATUS_PROPOSED");
  EXPECT_EQ(seen["consent"]["kind"], "CONSENT_KIND_COMMAND_NOT_ALLOWED");
  EXPECT_THAT(Text(seen["consent"]["summary"]), HasSubstr("date +%Y"));
  EXPECT_EQ(seen["status"], "TASK_STATUS_COMPLETED");
  EXPECT_EQ(seen["summary"], "dated");
  EXPECT_GE(seen["tasks"].get<int>(), 3);  // the goal, the Manager's task, the plan's step
  EXPECT_GT(seen["progress"].get<int>(), 0);
  // What the client did is agentd's record as any person's would be.
  nlohmann::json plan = CtlJson({"describe", "plan", seen["plan"].get<std::string>()});
  EXPECT_EQ(plan["status"], "PLAN_STATUS_COMPLETED");
}

}  // namespace
}  // namespace agentd::testing
