// A person in the loop: a tool call beyond an agent's grant waits for a person's consent
// (approved, it runs; denied, the model is told so and nothing runs), and an agent that
// asks a question goes on with the person's answer.
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// How many entries of `audit` (agentctl audit -o json) record a command that ran: a
// shell.run whose call succeeded. A refused call is audited too, as not ok.
int CommandsRun(nlohmann::json audit) {
  int n = 0;
  for (auto& e : audit["entries"]) n += e["action"] == "shell.run" && e["details"]["ok"] == "true";
  return n;
}

TEST_F(GoalTest, AToolCallBeyondItsGrantWaitsForAPersonsApproval) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("consent_date")));
  ASSERT_EQ(Ctl({"goal", "Print the date"}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"get", "consents"});
      },
      [](const nlohmann::json& j) { return ArraySize(j, "consentRequests") == 1; },
      absl::Seconds(30), &pending))
      << daemon_.log();
  nlohmann::json req = pending["consentRequests"][0];
  // A watcher from the start (as the UI's consent dialog) gets what waits now, then the
  // decision.
  Client client = daemon_.client();
  std::unique_ptr<grpc::ClientContext> watch_ctx = Ctx(absl::Seconds(60));
  v1::WatchConsentRequestsRequest watch_req;
  watch_req.set_goal_id("g-1");
  auto watch = client.consent().WatchConsentRequests(watch_ctx.get(), watch_req);
  v1::WatchConsentRequestsResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.consent_request().id(), req["id"]);
  EXPECT_EQ(seen.consent_request().status(), v1::CONSENT_STATUS_PENDING);
  EXPECT_EQ(seen.consent_request().goal_id(), "g-1");
  EXPECT_EQ(req["agentId"], "coder-1");
  EXPECT_EQ(req["kind"], "CONSENT_KIND_COMMAND_NOT_ALLOWED");
  EXPECT_THAT(Text(req["summary"]), HasSubstr("run `date +%Y`"));
  // Nothing ran yet: the coder has made one model call and waits.
  EXPECT_EQ(CountRequests(FakeRequests(), "coder-m"), 1);
  EXPECT_EQ(CommandsRun(CtlJson({"audit", "--goal", "g-1"})), 0);
  RunResult ok = Ctl({"consent", "approve", req["id"].get<std::string>()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.consent_request().status(), v1::CONSENT_STATUS_APPROVED);
  EXPECT_GT(seen.seq(), 0);
  watch_ctx->TryCancel();
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED")) << daemon_.log();
  // The command ran, once, and the model was given its output.
  std::vector<std::string> results = ToolResults(FakeRequests(), "coder-m");
  ASSERT_EQ(results.size(), 1u) << FakeRequests().dump();
  EXPECT_THAT(results[0], HasSubstr("exit code 0"));
  EXPECT_THAT(results[0], HasSubstr("20"));  // the year date printed
  EXPECT_EQ(CommandsRun(CtlJson({"audit", "--goal", "g-1"})), 1);
}

TEST_F(GoalTest, ADeniedToolCallIsReportedToTheModelAndNothingRuns) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("consent_date")));
  ASSERT_EQ(Ctl({"goal", "Print the date"}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"get", "consents"});
      },
      [](const nlohmann::json& j) { return ArraySize(j, "consentRequests") == 1; },
      absl::Seconds(30), &pending))
      << daemon_.log();
  RunResult no = Ctl({"consent", "deny", pending["consentRequests"][0]["id"].get<std::string>(),
                      "--reason", "no"});
  ASSERT_EQ(no.exit_code, 0) << no.err;
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED")) << daemon_.log();
  std::vector<std::string> results = ToolResults(FakeRequests(), "coder-m");
  ASSERT_EQ(results.size(), 1u) << FakeRequests().dump();
  EXPECT_THAT(results[0], HasSubstr("a person denied running it"));
  EXPECT_THAT(results[0], Not(HasSubstr("exit code")));
  // The audit log, which records a command that runs (see the approval's test), has none.
  EXPECT_EQ(CommandsRun(CtlJson({"audit", "--goal", "g-1"})), 0);
}

// ask_human puts a question on the bus and waits; a person answers with agentctl send
// --reply-to; a plain message to the agent joins its conversation.
TEST_F(GoalTest, AnAgentAsksAPersonAndGoesOnWithTheAnswer) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("ask_human"), "", "[ask_human, complete_task]"));
  ASSERT_EQ(Ctl({"goal", "Pick a colour"}).exit_code, 0);
  nlohmann::json to_human;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"messages", "--agent", "human"});
      },
      [](const nlohmann::json& j) { return ArraySize(j, "envelopes") > 0; }, absl::Seconds(30),
      &to_human))
      << daemon_.log();
  nlohmann::json query = to_human["envelopes"][0];
  EXPECT_EQ(query["from"], "ceo-1");
  EXPECT_EQ(query["type"], "ENVELOPE_TYPE_QUERY");
  EXPECT_EQ(query["body"], "Which colour?");
  EXPECT_EQ(query["taskId"], "g-1");
  // A remark first (it waits for the next turn), then the answer.
  ASSERT_EQ(Ctl({"send", "@ceo-1", "prefer short names"}).exit_code, 0);
  RunResult answer = Ctl({"send", "@ceo-1", "blue", "--reply-to", query["id"].get<std::string>()});
  ASSERT_EQ(answer.exit_code, 0) << answer.err;
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED")) << daemon_.log();
  // The CEO's last call had both in its conversation.
  nlohmann::json requests = FakeRequests();
  ASSERT_FALSE(requests.empty());
  nlohmann::json last = requests.back();
  EXPECT_EQ(last["model"], "ceo-m");
  std::string all;
  for (auto& m : last["body"]["messages"]) {
    all += m["content"].is_string() ? m["content"].get<std::string>() + "\n" : "";
  }
  EXPECT_THAT(all, HasSubstr("answer from human:local: blue"));
  EXPECT_THAT(all, HasSubstr("from human:local: prefer short names"));
  // Both messages were acknowledged by the agent.
  nlohmann::json to_ceo = CtlJson({"messages", "--agent", "ceo-1"});
  int acked = 0;
  for (auto& m : to_ceo["envelopes"]) {
    acked += m["from"] == "human:local" && m.contains("ackTime");
  }
  EXPECT_EQ(acked, 2) << to_ceo.dump();
  RunResult bad = Ctl({"send", "@nobody", "hello"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("\"nobody\" is not an agent"));
}

}  // namespace
}  // namespace agentd::testing
