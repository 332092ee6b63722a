// A2A v1.0: another agent system hands agentd goals through the official JS SDK's client
// (@a2a-js/sdk): the Agent Card, a streamed goal that stops at INPUT_REQUIRED while its
// plan awaits approval, the answers that approve the plan and a consent request, the
// finished task with its result, a canceled goal, and the errors for an unknown task, an
// ended one and a wrong token.
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

TEST_F(GoalTest, AnA2aClientHandsAGoalAnswersItsQuestionsAndFollowsItToTheEnd) {
  extra_policy_ = "  plan_approval: manual";
  daemon_args_ = {"--http", "127.0.0.1:0", "--grpc-tcp", "127.0.0.1:0"};
  const std::string roles = R"(  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, complete_task, fail_task]}
)";
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("mcp_client_plan"), roles));
  grpc::Status s;
  std::string http = daemon_.client().GetInfo(&s).paths().http();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::string token(absl::StripAsciiWhitespace(ReadFileOrEmpty(dir_.Join("state/a2a.token"))));
  ASSERT_FALSE(token.empty());
  RunResult r = RunCommand({"node", AGENTD_SOURCE_ROOT "/tests/interop/a2a_client.mjs",
                            absl::StrCat("http://", http), token},
                           Scaled(absl::Seconds(180)));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  nlohmann::json seen = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(seen.is_object()) << r.out;
  EXPECT_EQ(seen["card"]["name"], "agentd");
  EXPECT_EQ(seen["card"]["binding"], "JSONRPC");
  EXPECT_EQ(seen["card"]["streaming"], true);
  EXPECT_THAT(seen["card"]["skills"], Contains("manager"));
  EXPECT_EQ(seen["taskId"], "g-1");
  // The stream ends where a person is needed: the plan awaits approval.
  ASSERT_TRUE(seen["streamStates"].is_array() && !seen["streamStates"].empty()) << r.out;
  EXPECT_EQ(seen["streamStates"].back(), "TASK_STATE_INPUT_REQUIRED") << r.out;
  EXPECT_THAT(Text(seen["question"]), HasSubstr("awaits approval"));
  EXPECT_EQ(seen["afterPlan"]["state"], "TASK_STATE_INPUT_REQUIRED") << r.out;
  EXPECT_THAT(Text(seen["afterPlan"]["question"]), HasSubstr("date +%Y"));
  EXPECT_EQ(seen["done"]["state"], "TASK_STATE_COMPLETED") << r.out;
  EXPECT_THAT(seen["done"]["artifacts"], Contains("dated"));
  EXPECT_EQ(seen["got"], "TASK_STATE_COMPLETED");
  EXPECT_THAT(Text(seen["toEnded"]), HasSubstr("has ended"));
  const std::string second = Text(seen["second"]["id"]);
  EXPECT_TRUE(absl::StartsWith(second, "g-")) << second;  // a goal of its own
  EXPECT_EQ(seen["canceled"], "TASK_STATE_CANCELED");
  EXPECT_THAT(Text(seen["missing"]), HasSubstr("not found"));
  EXPECT_THAT(Text(seen["wrongToken"]),
              ::testing::AnyOf(HasSubstr("401"), HasSubstr("unauthenticated")));
  // The gRPC binding, on the TCP listener the card names.
  ASSERT_TRUE(seen.contains("grpc")) << r.out;
  EXPECT_EQ(seen["grpc"]["got"], "TASK_STATE_COMPLETED");
  EXPECT_EQ(seen["grpc"]["canceled"], "TASK_STATE_CANCELED");
  EXPECT_EQ(TaskStatus(Text(seen["grpc"]["third"])), "TASK_STATUS_CANCELED");
  EXPECT_THAT(Text(seen["grpc"]["missing"]), HasSubstr("not found"));
  EXPECT_THAT(Text(seen["grpc"]["wrongToken"]), HasSubstr("16 the bearer token is neither"));
  // The A2A token is for A2A alone: agentd's own API refuses it.
  std::string tcp = daemon_.client().GetInfo(&s).paths().grpc_tcp();
  RunResult own = Ctl({"--addr", tcp, "--token", token, "get", "agents"});
  EXPECT_NE(own.exit_code, 0) << own.out;
  EXPECT_THAT(own.err, HasSubstr("PERMISSION_DENIED"));
  // Over A2A as over agentctl: the plan was approved and ran, the goal is agentd's record.
  EXPECT_EQ(TaskStatus("g-1"), "TASK_STATUS_COMPLETED");
  EXPECT_EQ(TaskStatus(second), "TASK_STATUS_CANCELED");
}

}  // namespace
}  // namespace agentd::testing
