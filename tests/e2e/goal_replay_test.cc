// Recording a goal's provider exchanges (AGENTD_LLM_RECORD): the cassettes replay a goal
// offline, and they, like every other file agentd writes, keep no provider key.
#include <stdio.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// What the CEO of the "delegate" scenario completes the goal with.
constexpr char kDelegateResult[] = "hello.txt is written and committed";

// Record a whole goal's provider exchanges, then replay it offline with a fresh daemon on
// the same paths: the same tool calls run and the goal ends with the same result.
TEST(GoalReplayTest, ARecordedGoalReplaysOfflineWithTheSameToolCallsAndResult) {
  TempDir dir;
  auto config = [&](const std::string& providers, const std::string& ceo_env,
                    const std::string& coder_env) {
    WriteFile(dir.Join("agentd.yaml"),
              absl::StrCat(R"(
supervision: {restart_sec: 50ms, heartbeat: {interval: 200ms, ttl: )",
                           ScaledText(absl::Seconds(3)), R"(}, stop_timeout: 2s}
providers:
)",
                           providers, R"(
models:
  ceo:   {provider: pceo, model: ceo-m, max_tokens: 100}
  coder: {provider: pcoder, model: coder-m, max_tokens: 100}
roles:
  ceo:   {model: ceo, prompt: roles/ceo.md, tools: [delegate, complete_task], env: [)",
                           ceo_env, R"(]}
  coder: {model: coder, prompt: roles/coder.md, tools: [fs.write, complete_task], env: [)",
                           coder_env, R"(]}
agents: []
)"));
  };
  // Runs the goal on a daemon of its own; "" when it succeeded (its output in *summary),
  // else what went wrong.
  auto run_goal = [&](std::string* summary) -> std::string {
    Daemon daemon(dir);
    if (!daemon.Start({"--config", dir.Join("agentd.yaml")})) return daemon.log();
    const absl::Duration timeout = absl::Seconds(60);
    RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "goal",
                              "Write hello.txt", "--wait", "--timeout", ScaledText(timeout)},
                             timeout + absl::Seconds(30));
    *summary = r.out;
    std::string out = r.exit_code == 0 ? "" : r.err + daemon.log();
    if (!daemon.Stop().has_value()) out += "agentd did not stop on SIGTERM\n";
    return out;
  };
  std::string live, replayed;
  {
    FakeLlm fake(dir, Scenario("delegate"));
    ASSERT_FALSE(fake.url().empty()) << fake.log();
    config(absl::StrCat("  pceo: {kind: openai, base_url: \"", fake.url(), "/v1\"}\n",
                        "  pcoder: {kind: openai, base_url: \"", fake.url(), "/v1\"}"),
           absl::StrCat("\"AGENTD_LLM_RECORD=", dir.Join("ceo.jsonl"), "\""),
           absl::StrCat("\"AGENTD_LLM_RECORD=", dir.Join("coder.jsonl"), "\""));
    std::string err = run_goal(&live);
    ASSERT_EQ(err, "");
  }  // fakellm is gone: offline from here on
  // The live run did the work: two empty outputs would compare equal below.
  ASSERT_THAT(live, HasSubstr(kDelegateResult));
  ASSERT_NE(ReadFileOrEmpty(dir.Join("ceo.jsonl")), "") << "nothing was recorded";
  ASSERT_NE(ReadFileOrEmpty(dir.Join("coder.jsonl")), "") << "nothing was recorded";
  std::string first = ReadFileOrEmpty(dir.Join("state-workspaces/g-1/hello.txt"));
  ASSERT_EQ(first, "hi\n");
  ASSERT_EQ(rename(dir.Join("state").c_str(), dir.Join("state.live").c_str()), 0);
  config(absl::StrCat("  pceo: {kind: replay, cassette: \"", dir.Join("ceo.jsonl"), "\"}\n",
                      "  pcoder: {kind: replay, cassette: \"", dir.Join("coder.jsonl"), "\"}"),
         "", "");
  std::string err = run_goal(&replayed);
  ASSERT_EQ(err, "");
  EXPECT_EQ(replayed, live);
  // The replayed coder wrote the file again, in the fresh state directory.
  EXPECT_EQ(ReadFileOrEmpty(dir.Join("state-workspaces/g-1/hello.txt")), first);
}

// A provider key in agentd's environment reaches the provider with every call — and
// nothing written down: logs, events, sessions, cassettes (a grep over all of them).
TEST(GoalSecretsTest, AProviderKeyIsInNoLogEventSessionOrCassetteAfterAGoal) {
  TempDir dir;
  const std::string key = "sk-live-DO-NOT-LEAK-fedcba9876543210";
  FakeLlm fake(dir, Scenario("delegate"));
  ASSERT_FALSE(fake.url().empty()) << fake.log();
  WriteFile(dir.Join("agentd.yaml"), absl::StrCat(R"(
supervision: {heartbeat: {interval: 200ms, ttl: )",
                                                  ScaledText(absl::Seconds(3)),
                                                  R"(}, stop_timeout: 2s}
providers:
  paid: {kind: openai, base_url: ")",
                                                  fake.url(), R"(/v1", api_key_env: AGENTD_TEST_KEY}
models:
  ceo:   {provider: paid, model: ceo-m, max_tokens: 100}
  coder: {provider: paid, model: coder-m, max_tokens: 100}
roles:
  ceo:   {model: ceo, prompt: roles/ceo.md, tools: [delegate, complete_task],
          env: ["AGENTD_LLM_RECORD=)",
                                                  dir.Join("ceo.jsonl"), R"("]}
  coder: {model: coder, prompt: roles/coder.md, tools: [fs.write, git.commit, complete_task],
          env: ["AGENTD_LLM_RECORD=)",
                                                  dir.Join("coder.jsonl"), R"("]}
agents: []
)"));
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml"), "--log-level", "debug"},
                           {"AGENTD_TEST_KEY=" + key}))
      << daemon.log();
  const absl::Duration timeout = absl::Seconds(60);
  RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "goal",
                            "Write hello.txt", "--wait", "--timeout", ScaledText(timeout)},
                           timeout + absl::Seconds(30));
  ASSERT_EQ(r.exit_code, 0) << r.err << daemon.log();
  // The calls were made with a key (fakellm notes that one came, never its value)…
  nlohmann::json requests = LoggedRequests(fake);
  ASSERT_FALSE(requests.empty());
  for (auto& q : requests) EXPECT_EQ(q["has_authorization"], true) << q.dump();
  // …recorded and stored…
  EXPECT_NE(ReadFileOrEmpty(dir.Join("ceo.jsonl")), "");
  EXPECT_NE(ReadFileOrEmpty(dir.Join("state/sessions/coder-1/coder-1.db")), "");
  RunResult logs = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "logs", "coder-1"});
  EXPECT_THAT(logs.out, HasSubstr("task t-2 completed"));
  ASSERT_TRUE(daemon.Stop().has_value());
  // …and only the provider saw the key (fakellm's own files are the provider's side).
  RunResult grep = RunCommand({"grep", "-r", "-l", "-a", "--exclude=fakellm.*", key, dir.path()});
  EXPECT_EQ(grep.out, "") << "the key is in these files";
  EXPECT_EQ(grep.exit_code, 1) << grep.err;  // grep: 1 = no match
}

}  // namespace
}  // namespace agentd::testing
