// Goals end to end: a real agentd, real agentd-agent processes, dev/fakellm playing the
// models (one model name per role, so a scenario can tell the roles apart), driven with
// agentctl as a person or a CI job would.
#include <signal.h>
#include <sys/wait.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "common/paths.h"
#include "common/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class GoalTest : public ::testing::Test {
 protected:
  // Starts fakellm on `scenario` and agentd with roles ceo (model ceo-m) and coder
  // (coder-m), plus `extra_roles` (YAML lines under roles:).
  void Start(const std::string& scenario, const std::string& extra_roles = "",
             const std::string& ceo_tools = "[delegate, complete_task, fail_task]") {
    fake_ = std::make_unique<FakeLlm>(dir_, scenario);
    ASSERT_FALSE(fake_->url().empty()) << fake_->log();
    WriteFile(dir_.Join("agentd.yaml"), absl::StrCat(R"(
supervision:
  restart_sec: 50ms
  heartbeat: {interval: 200ms, ttl: 3s}
  stop_timeout: 2s
providers:
  fake: {kind: openai, base_url: ")",
                                                     fake_->url(), R"(/v1"}
models:
  ceo:   {provider: fake, model: ceo-m, max_tokens: 100, price: {input_per_mtok: 1, output_per_mtok: 2}}
  coder: {provider: fake, model: coder-m, max_tokens: 100}
  other: {provider: fake, model: other-m, max_tokens: 100, temperature: 0.25}
  manager: {provider: fake, model: manager-m, max_tokens: 100}
  tester: {provider: fake, model: tester-m, max_tokens: 100}
roles:
  ceo:   {model: ceo, prompt: roles/ceo.md, tools: )",
                                                     ceo_tools, R"(, max_instances: 1}
  coder: {model: coder, prompt: roles/coder.md, max_instances: 2,
          tools: [fs.read, fs.write, fs.list, shell.run, git.commit, complete_task, fail_task]}
)",
                                                     extra_roles, R"(
agents: []
policy:
  shell: {allow: [sh, ls, cat], sandbox: auto}
)"));
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  }

  // A user's git repository: calc.py with add(), its pytest test, one commit on main.
  // Empty when it could not be made (the failure says why).
  std::string CalcRepo() {
    std::string repo = dir_.Join("repo");
    RunResult init = RunCommand(
        {"sh", "-c",
         absl::StrCat(
             "git init -q -b main '", repo, "' && cd '", repo,
             "' && printf 'def add(a, b):\\n    return a + b\\n' > calc.py && printf "
             "'from calc import add\\n\\n\\ndef test_add():\\n    assert add(1, 2) == 3\\n' "
             "> test_calc.py && printf '[pytest]\\n' > pytest.ini && git add . && git -c "
             "user.name=t -c user.email=t@t commit -q -m base")});
    EXPECT_EQ(init.exit_code, 0) << init.err;
    return init.exit_code == 0 ? repo : "";
  }

  RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, timeout);
  }

  nlohmann::json CtlJson(std::vector<std::string> args) {
    args.insert(args.begin(), {"-o", "json"});
    RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err << daemon_.log();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  std::string Git(const std::string& repo, const std::string& args) {
    RunResult r = RunCommand({"sh", "-c", absl::StrCat("git -C '", repo, "' ", args)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  // The requests fakellm answered, as it logged them.
  nlohmann::json FakeRequests() {
    RunResult r = RunCommand({"curl", "-s", fake_->url() + "/_fakellm/requests"});
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  v1::Agent GetAgent(const std::string& id) {
    auto stub = v1::AgentService::NewStub(daemon_.UnixChannel());
    grpc::ClientContext ctx;
    v1::GetAgentRequest req;
    req.set_agent_id(id);
    v1::GetAgentResponse resp;
    (void)stub->GetAgent(&ctx, req, &resp);
    return resp.agent();
  }

  TempDir dir_;
  std::unique_ptr<FakeLlm> fake_;
  Daemon daemon_{dir_};
};

// The CEO hands the work to a Coder, which writes a file and commits it; the CEO is
// handed its task back with the Coder's result and completes the goal.
constexpr char kDelegateScenario[] = R"(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply:
      tool_calls:
        - {name: complete_task, arguments: {summary: "hello.txt is written and committed"}}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls:
        - {name: delegate, arguments: {role: coder, title: "Write hello.txt",
                                       instructions: "Write hello.txt containing hi, commit it"}}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting for the coder."}
  - name: coder-write
    match: {model: coder-m, last_role: user}
    reply:
      tool_calls:
        - {name: fs_write, arguments: {path: hello.txt, content: "hi\n"}}
  - name: coder-commit
    match: {model: coder-m, last_role: tool}
    times: 1
    reply:
      tool_calls:
        - {name: git_commit, arguments: {message: "Add hello.txt"}}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply:
      tool_calls:
        - {name: complete_task, arguments: {summary: "wrote and committed hello.txt"}}
)";

TEST_F(GoalTest, CeoDelegatesToACoderWhoCommitsOnTheGoalsBranch) {
  Start(kDelegateScenario);
  // A repository of the user's: the goal works in a worktree and branch of its own.
  std::string repo = dir_.Join("repo");
  RunCommand({"sh", "-c",
              absl::StrCat("git init -q -b main '", repo, "' && cd '", repo,
                           "' && echo base > README && git add README && git -c user.name=t -c "
                           "user.email=t@t commit -q -m base")});
  RunResult r = Ctl({"goal", "Write hello.txt", "--workspace", repo, "--wait", "--timeout", "60s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  EXPECT_THAT(r.out, HasSubstr("hello.txt is written and committed"));
  EXPECT_THAT(r.err, HasSubstr("coder"));  // progress shows the delegated task

  // The commit is on the goal's branch; the user's checkout is untouched.
  EXPECT_THAT(Git(repo, "log --format=%s agentd/g-1"), HasSubstr("Add hello.txt"));
  EXPECT_EQ(Git(repo, "show agentd/g-1:hello.txt"), "hi\n");
  EXPECT_EQ(ReadFileOrEmpty(repo + "/hello.txt"), "");
  EXPECT_EQ(Git(repo, "rev-parse --abbrev-ref HEAD"), "main\n");

  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  ASSERT_EQ(tasks["tasks"].size(), 2u) << tasks.dump();
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
  Start(R"(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "reviewed"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls:
        - {name: delegate, arguments: {role: reviewer, instructions: "Review the README"}}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: review
    match: {model: other-m}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "README reads well"}}]}
)",
        "  reviewer: {model: other, prompt: roles/reviewer.md, tools: [fs.read, complete_task]}\n");
  RunResult r = Ctl({"goal", "Get the README reviewed", "--wait", "--timeout", "60s"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  v1::Agent reviewer = GetAgent("reviewer-1");
  EXPECT_EQ(reviewer.role(), "reviewer");
  bool prompted = false;
  for (const auto& req : FakeRequests()) {
    if (req["model"] != "other-m") continue;
    // The model's settings from the config are on every call.
    EXPECT_EQ(req["body"]["temperature"], 0.25);
    EXPECT_EQ(req["body"]["max_tokens"], 100);
    std::string system = req["body"]["messages"][0]["content"];
    prompted = system.find("reviewer-1, the team's REVIEWER-PROMPT. Review: Review the README") !=
               std::string::npos;
  }
  EXPECT_TRUE(prompted) << "the reviewer's prompt file was not rendered into its system prompt";
  nlohmann::json task = CtlJson({"describe", "task", "t-2"});
  EXPECT_EQ(task["result"]["summary"], "README reads well");
}

TEST_F(GoalTest, AGoalPastItsBudgetFailsWithBudgetExceededAndNoCallIsMadePastIt) {
  // The CEO never stops listing files: only the budget ends it.
  Start(R"(
rules:
  - name: forever
    match: {model: ceo-m}
    reply:
      tool_calls: [{name: fs_list, arguments: {path: "."}}]
      usage: {prompt_tokens: 1000, completion_tokens: 100}
)",
        "", "[fs.list, complete_task, fail_task]");
  RunResult r = Ctl({"goal", "List forever", "--tokens", "6000", "--wait", "--timeout", "60s"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("BUDGET_EXCEEDED"));
  EXPECT_THAT(r.out, HasSubstr("goal g-1 budget of 6000 tokens would be exceeded"));
  nlohmann::json usage = CtlJson({"usage", "--goal", "g-1"});
  int64_t calls = std::stoll(usage["total"]["calls"].get<std::string>());
  int64_t tokens = std::stoll(usage["total"]["totalTokens"].get<std::string>());
  EXPECT_GE(calls, 2);      // the budget allowed some calls…
  EXPECT_LE(tokens, 6000);  // …never more than it holds…
  EXPECT_EQ(static_cast<int64_t>(FakeRequests().size()), calls);  // …and none unreserved
  // Each call is a record of its own, newest first, paged.
  auto usage_stub = v1::UsageService::NewStub(daemon_.UnixChannel());
  v1::ListUsageRecordsRequest list;
  list.mutable_filter()->set_goal_id("g-1");
  list.set_page_size(1);
  int64_t records = 0, last_us = INT64_MAX;
  for (;;) {
    grpc::ClientContext ctx;
    v1::ListUsageRecordsResponse page;
    ASSERT_TRUE(usage_stub->ListUsageRecords(&ctx, list, &page).ok());
    for (const v1::UsageRecord& rec : page.records()) {
      ++records;
      int64_t us = rec.time().seconds() * 1000000 + rec.time().nanos() / 1000;
      EXPECT_LE(us, last_us);
      last_us = us;
      EXPECT_EQ(rec.role(), "ceo");
      EXPECT_EQ(rec.prompt_tokens(), 1000);
    }
    if (page.next_page_token().empty()) break;
    list.set_page_token(page.next_page_token());
  }
  EXPECT_EQ(records, calls);
}

TEST_F(GoalTest, CancelingARunningGoalStopsItsAgentsWithinTwoSeconds) {
  Start(R"(
rules:
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls: [{name: delegate, arguments: {role: coder, instructions: "Think hard"}}]
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: coder-slow
    match: {model: coder-m}
    reply: {text: "done thinking", delay_ms: 60000}
)");
  RunResult submitted = Ctl({"goal", "Think"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // The coder is in its (minute-long) model call.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const auto& req : FakeRequests()) {
          if (req["model"] == "coder-m") return true;
        }
        return false;
      },
      absl::Seconds(30)))
      << daemon_.log();
  ASSERT_TRUE(WaitFor([&] { return GetAgent("coder-1").state() == v1::AGENT_STATE_BUSY; },
                      absl::Seconds(5)));
  absl::Time start = absl::Now();
  RunResult c = Ctl({"cancel", "g-1", "--reason", "changed my mind"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_THAT(c.out, HasSubstr("canceled 2 task(s)"));
  EXPECT_TRUE(WaitFor([&] { return GetAgent("coder-1").state() == v1::AGENT_STATE_IDLE; },
                      absl::Seconds(2)))
      << "the coder still works on a canceled task after 2s";
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  for (const auto& t : tasks["tasks"]) {
    EXPECT_EQ(t["status"], "TASK_STATUS_CANCELED") << t.dump();
    EXPECT_THAT(t["failure"]["message"].get<std::string>(), HasSubstr("changed my mind"));
  }
}

TEST_F(GoalTest, AKilledCoderResumesItsSessionAndRunsEachSideEffectOnce) {
  Start(R"(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "ran once"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls: [{name: delegate, arguments: {role: coder, instructions: "Append to runs.log"}}]
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: coder-append
    match: {model: coder-m, last_role: user}
    reply:
      tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo run >> runs.log"]}}]
  - name: coder-slow-finish
    match: {model: coder-m, last_role: tool}
    times: 1
    reply: {text: "", delay_ms: 60000}
  - name: coder-finish
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "appended"}}]}
)");
  RunResult submitted = Ctl({"goal", "Append once"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // The coder ran its command and now waits on the model: kill -9 it there.
  ASSERT_TRUE(WaitFor(
      [&] {
        int coder = 0;
        for (const auto& req : FakeRequests()) coder += req["model"] == "coder-m";
        return coder >= 2;
      },
      absl::Seconds(30)))
      << daemon_.log();
  v1::Agent coder = GetAgent("coder-1");
  ASSERT_GT(coder.pid(), 0);
  ASSERT_EQ(kill(static_cast<pid_t>(coder.pid()), SIGKILL), 0);

  ASSERT_TRUE(WaitFor(
      [&] {
        nlohmann::json t = CtlJson({"describe", "task", "g-1"});
        return t["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(60)))
      << daemon_.log();
  EXPECT_GE(GetAgent("coder-1").restarts(), 1);
  std::string ws = CtlJson({"describe", "task", "g-1"})["workspace"]["path"];
  EXPECT_EQ(ReadFileOrEmpty(ws + "/runs.log"), "run\n");  // the command ran exactly once
  nlohmann::json task = CtlJson({"describe", "task", "t-2"});
  EXPECT_EQ(task["attempts"], 1);  // resumed, not started over
}

// A command off the allowlist is a person's call: the agent asks through agentd and
// waits; approved, it runs; denied, the model is told so.
constexpr char kConsentScenario[] = R"(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "asked"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls: [{name: delegate, arguments: {role: coder, instructions: "Print the date"}}]
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: coder-date
    match: {model: coder-m, last_role: user}
    reply:
      tool_calls: [{name: shell_run, arguments: {argv: ["date", "+%Y"]}}]
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "ran date"}}]}
)";

TEST_F(GoalTest, AToolCallBeyondItsGrantWaitsForAPersonsApproval) {
  Start(kConsentScenario);
  ASSERT_EQ(Ctl({"goal", "Print the date"}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitFor(
      [&] {
        pending = CtlJson({"get", "consents"});
        return pending["consentRequests"].size() == 1;
      },
      absl::Seconds(30)))
      << daemon_.log();
  const nlohmann::json& req = pending["consentRequests"][0];
  // A watcher from the start (as the UI's consent dialog) gets what waits now, then the
  // decision.
  auto consents = v1::ConsentService::NewStub(daemon_.UnixChannel());
  grpc::ClientContext watch_ctx;
  v1::WatchConsentRequestsRequest watch_req;
  watch_req.set_goal_id("g-1");
  auto watch = consents->WatchConsentRequests(&watch_ctx, watch_req);
  v1::WatchConsentRequestsResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.consent_request().id(), req["id"]);
  EXPECT_EQ(seen.consent_request().status(), v1::CONSENT_STATUS_PENDING);
  EXPECT_EQ(seen.consent_request().goal_id(), "g-1");
  EXPECT_EQ(req["agentId"], "coder-1");
  EXPECT_EQ(req["kind"], "CONSENT_KIND_COMMAND_NOT_ALLOWED");
  EXPECT_THAT(req["summary"].get<std::string>(), HasSubstr("run `date +%Y`"));
  // Nothing ran yet: the coder has made one model call and waits.
  int coder_calls = 0;
  for (const auto& r : FakeRequests()) coder_calls += r["model"] == "coder-m";
  EXPECT_EQ(coder_calls, 1);
  RunResult ok = Ctl({"consent", "approve", req["id"]});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.consent_request().status(), v1::CONSENT_STATUS_APPROVED);
  EXPECT_GT(seen.seq(), 0);
  watch_ctx.TryCancel();
  ASSERT_TRUE(WaitFor(
      [&] {
        return CtlJson({"describe", "task", "g-1"})["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(30)))
      << daemon_.log();
  std::string result;
  for (const auto& r : FakeRequests()) {
    if (r["model"] == "coder-m" && r["body"]["messages"].back()["role"] == "tool") {
      result = r["body"]["messages"].back()["content"];
    }
  }
  EXPECT_THAT(result, HasSubstr("exit code 0"));
  EXPECT_THAT(result, HasSubstr("20"));  // the year date printed
}

TEST_F(GoalTest, ADeniedToolCallIsReportedToTheModelAndNothingRuns) {
  Start(kConsentScenario);
  ASSERT_EQ(Ctl({"goal", "Print the date"}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitFor(
      [&] {
        pending = CtlJson({"get", "consents"});
        return pending["consentRequests"].size() == 1;
      },
      absl::Seconds(30)))
      << daemon_.log();
  RunResult no = Ctl({"consent", "deny", pending["consentRequests"][0]["id"], "--reason", "no"});
  ASSERT_EQ(no.exit_code, 0) << no.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        return CtlJson({"describe", "task", "g-1"})["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(30)))
      << daemon_.log();
  std::string result;
  for (const auto& r : FakeRequests()) {
    if (r["model"] == "coder-m" && r["body"]["messages"].back()["role"] == "tool") {
      result = r["body"]["messages"].back()["content"];
    }
  }
  EXPECT_THAT(result, HasSubstr("a person denied running it"));
  EXPECT_THAT(result, Not(HasSubstr("exit code")));
}

// Record a whole goal's provider exchanges, then replay it offline with a fresh daemon on
// the same paths: the same tool calls run and the goal ends with the same result.
TEST(GoalReplayTest, ARecordedGoalReplaysOfflineWithTheSameToolCallsAndResult) {
  TempDir dir;
  auto config = [&](const std::string& providers, const std::string& ceo_env,
                    const std::string& coder_env) {
    WriteFile(dir.Join("agentd.yaml"), absl::StrCat(R"(
supervision: {restart_sec: 50ms, heartbeat: {interval: 200ms, ttl: 3s}, stop_timeout: 2s}
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
  auto run_goal = [&](std::string* summary) {
    Daemon daemon(dir);
    if (!daemon.Start({"--config", dir.Join("agentd.yaml")})) return daemon.log();
    RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "goal",
                              "Write hello.txt", "--wait", "--timeout", "60s"},
                             absl::Seconds(90));
    *summary = r.out;
    std::string out = r.exit_code == 0 ? "" : r.err + daemon.log();
    daemon.Stop();
    return out;
  };
  std::string live, replayed;
  {
    FakeLlm fake(dir, kDelegateScenario);
    ASSERT_FALSE(fake.url().empty()) << fake.log();
    config(absl::StrCat("  pceo: {kind: openai, base_url: \"", fake.url(), "/v1\"}\n",
                        "  pcoder: {kind: openai, base_url: \"", fake.url(), "/v1\"}"),
           absl::StrCat("\"AGENTD_LLM_RECORD=", dir.Join("ceo.jsonl"), "\""),
           absl::StrCat("\"AGENTD_LLM_RECORD=", dir.Join("coder.jsonl"), "\""));
    std::string err = run_goal(&live);
    ASSERT_EQ(err, "");
  }  // fakellm is gone: offline from here on
  std::string first = ReadFileOrEmpty(dir.Join("state/workspaces/g-1/hello.txt"));
  ASSERT_EQ(first, "hi\n");
  ASSERT_EQ(rename(dir.Join("state").c_str(), dir.Join("state.live").c_str()), 0);
  config(absl::StrCat("  pceo: {kind: replay, cassette: \"", dir.Join("ceo.jsonl"), "\"}\n",
                      "  pcoder: {kind: replay, cassette: \"", dir.Join("coder.jsonl"), "\"}"),
         "", "");
  std::string err = run_goal(&replayed);
  ASSERT_EQ(err, "");
  EXPECT_EQ(replayed, live);
  EXPECT_EQ(ReadFileOrEmpty(dir.Join("state/workspaces/g-1/hello.txt")), first);
}

// A provider key in agentd's environment reaches the provider with every call — and
// nothing written down: logs, events, sessions, cassettes (a grep over all of them).
TEST(GoalSecretsTest, AProviderKeyIsInNoLogEventSessionOrCassetteAfterAGoal) {
  TempDir dir;
  const std::string key = "sk-live-DO-NOT-LEAK-fedcba9876543210";
  FakeLlm fake(dir, kDelegateScenario);
  ASSERT_FALSE(fake.url().empty()) << fake.log();
  WriteFile(dir.Join("agentd.yaml"), absl::StrCat(R"(
supervision: {heartbeat: {interval: 200ms, ttl: 3s}, stop_timeout: 2s}
providers:
  paid: {kind: openai, base_url: ")",
                                                  fake.url(), R"(/v1", api_key_env: AGENTD_TEST_KEY}
models:
  ceo:   {provider: paid, model: ceo-m, max_tokens: 100}
  coder: {provider: paid, model: coder-m, max_tokens: 100}
roles:
  ceo:   {model: ceo, prompt: roles/ceo.md, tools: [delegate, complete_task],
          env: ["AGENTD_LLM_RECORD=)",
                                                  dir.Join("state/ceo.jsonl"), R"("]}
  coder: {model: coder, prompt: roles/coder.md, tools: [fs.write, git.commit, complete_task],
          env: ["AGENTD_LLM_RECORD=)",
                                                  dir.Join("state/coder.jsonl"), R"("]}
agents: []
)"));
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml"), "--log-level", "debug"},
                           {"AGENTD_TEST_KEY=" + key}))
      << daemon.log();
  RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "goal",
                            "Write hello.txt", "--wait", "--timeout", "60s"},
                           absl::Seconds(90));
  ASSERT_EQ(r.exit_code, 0) << r.err << daemon.log();
  // The calls were made, recorded and stored…
  EXPECT_NE(ReadFileOrEmpty(dir.Join("state/ceo.jsonl")), "");
  EXPECT_NE(ReadFileOrEmpty(dir.Join("state/sessions/coder-1.db")), "");
  RunResult logs = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "logs", "coder-1"});
  EXPECT_NE(logs.out.find("task t-2 completed"), std::string::npos) << logs.out;
  ASSERT_TRUE(daemon.Stop().has_value());
  // …and only the provider saw the key (fakellm's own files are the provider's side).
  RunResult grep = RunCommand({"grep", "-r", "-l", "-a", "--exclude=fakellm.*", key, dir.path()});
  EXPECT_EQ(grep.out, "") << "the key is in these files";
  EXPECT_EQ(grep.exit_code, 1) << grep.err;  // grep: 1 = no match
}

// ask_human puts a question on the bus and waits; a person answers with agentctl send
// --reply-to; a plain message to the agent joins its conversation.
TEST_F(GoalTest, AnAgentAsksAPersonAndGoesOnWithTheAnswer) {
  Start(R"(
rules:
  - name: ask
    match: {model: ceo-m, last_role: user, contains: "Pick"}
    reply: {tool_calls: [{name: ask_human, arguments: {question: "Which colour?"}}]}
  - name: done
    match: {model: ceo-m}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "picked"}}]}
)",
        "", "[ask_human, complete_task]");
  ASSERT_EQ(Ctl({"goal", "Pick a colour"}).exit_code, 0);
  nlohmann::json query;
  ASSERT_TRUE(WaitFor(
      [&] {
        nlohmann::json all = CtlJson({"messages", "--agent", "human"});
        if (all["envelopes"].empty()) return false;
        query = all["envelopes"][0];
        return true;
      },
      absl::Seconds(30)))
      << daemon_.log();
  EXPECT_EQ(query["from"], "ceo-1");
  EXPECT_EQ(query["type"], "ENVELOPE_TYPE_QUERY");
  EXPECT_EQ(query["body"], "Which colour?");
  EXPECT_EQ(query["taskId"], "g-1");
  // A remark first (it waits for the next turn), then the answer.
  ASSERT_EQ(Ctl({"send", "@ceo-1", "prefer short names"}).exit_code, 0);
  RunResult answer = Ctl({"send", "@ceo-1", "blue", "--reply-to", query["id"]});
  ASSERT_EQ(answer.exit_code, 0) << answer.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        return CtlJson({"describe", "task", "g-1"})["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(30)))
      << daemon_.log();
  nlohmann::json last = FakeRequests().back()["body"]["messages"];
  std::string all;
  for (const auto& m : last)
    all += m["content"].is_string() ? m["content"].get<std::string>() + "\n" : "";
  EXPECT_THAT(all, HasSubstr("answer from human:local: blue"));
  EXPECT_THAT(all, HasSubstr("from human:local: prefer short names"));
  // Both messages were acknowledged by the agent.
  nlohmann::json to_ceo = CtlJson({"messages", "--agent", "ceo-1"});
  int acked = 0;
  for (const auto& m : to_ceo["envelopes"]) {
    acked += m["from"] == "human:local" && m.contains("ackTime");
  }
  EXPECT_EQ(acked, 2) << to_ceo.dump();
  RunResult bad = Ctl({"send", "@nobody", "hello"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("\"nobody\" is not an agent"));
}

// The five-role flow of a real change: the CEO hands the goal to the Manager, whose
// first proposals are invalid (a cycle, an unknown role) and whose first valid plan a
// person rejects; the revision is approved with agentctl; Coders change the code and
// commit on the goal's branch, the Tester runs the project's real tests.
constexpr char kPlanScenario[] = R"yaml(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "mul() is in, with a passing test"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply:
      tool_calls:
        - {name: delegate, arguments: {role: manager, instructions: "Plan and run: add mul() to calc.py, with a test"}}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting for the manager."}

  - name: manager-final
    match: {model: manager-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "3 steps done: mul, its test, tests pass"}}]}
  - name: manager-revise
    match: {model: manager-m, contains: "was rejected"}
    times: 1
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            summary: "Implement, test, verify (revised: the tester runs the tests)"
            steps:
              - {id: impl, role: coder, title: "Add mul", instructions: "Add mul(a, b) to calc.py", estimate_tokens: 2000}
              - {id: test, role: coder, title: "Test mul", instructions: "Add a test for mul in test_mul.py", deps: [impl]}
              - {id: verify, role: tester, title: "Run the tests", instructions: "Run the project's tests", deps: [test]}
  - name: manager-cycle
    match: {model: manager-m, last_role: user}
    times: 1
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps:
              - {id: a, role: coder, instructions: "x", deps: [b]}
              - {id: b, role: coder, instructions: "y", deps: [a]}
  - name: manager-unknown-role
    match: {model: manager-m, last_role: tool}
    times: 1
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps: [{id: draw, role: designer, instructions: "Draw it"}]
  - name: manager-first-plan
    match: {model: manager-m, last_role: tool}
    times: 1
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps:
              - {id: impl, role: coder, instructions: "Add mul(a, b) to calc.py"}
  - name: manager-wait
    match: {model: manager-m, last_role: tool}
    reply: {text: "Waiting for the plan."}

  - name: coder-impl
    match: {model: coder-m, last_role: user, contains: "Add mul(a, b)"}
    reply:
      tool_calls:
        - {name: fs_write, arguments: {path: calc.py, content: "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"}}
  - name: coder-test
    match: {model: coder-m, last_role: user, contains: "test for mul"}
    reply:
      tool_calls:
        - {name: fs_write, arguments: {path: test_mul.py, content: "from calc import mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n"}}
  - name: coder-commit-impl
    match: {model: coder-m, last_role: tool, contains: "Add mul(a, b)"}
    times: 1
    reply: {tool_calls: [{name: git_commit, arguments: {message: "Add mul"}}]}
  - name: coder-commit-test
    match: {model: coder-m, last_role: tool, contains: "test for mul"}
    times: 1
    reply: {tool_calls: [{name: git_commit, arguments: {message: "Test mul"}}]}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "done and committed"}}]}

  - name: tester-run
    match: {model: tester-m, last_role: user}
    reply: {tool_calls: [{name: tests_run, arguments: {}}]}
  - name: tester-done
    match: {model: tester-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "all tests pass"}}]}
)yaml";

TEST_F(GoalTest, AManagersPlanIsCheckedRejectedRevisedApprovedAndRunToAPassingTest) {
  Start(kPlanScenario, R"(  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, delegate, complete_task, fail_task]}
  tester: {model: tester, prompt: roles/tester.md, tools: [tests.run, complete_task, fail_task]}
)");
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  Subprocess wait({AgentctlBinary(), "--socket", daemon_.socket(), "goal", "Add mul() with tests",
                   "--workspace", repo, "--approve", "manual", "--wait", "--timeout", "120s"},
                  dir_.Join("goal.out"), dir_.Join("goal.err"));
  // The first valid plan waits for a person; the invalid ones never reached one.
  nlohmann::json plan;
  ASSERT_TRUE(WaitFor(
      [&] {
        nlohmann::json plans = CtlJson({"get", "plans"});
        if (plans["plans"].size() != 1) return false;
        plan = plans["plans"][0];
        return true;
      },
      absl::Seconds(30)))
      << daemon_.log();
  EXPECT_EQ(plan["status"], "PLAN_STATUS_PROPOSED");
  std::string told;
  for (const auto& r : FakeRequests()) {
    if (r["model"] != "manager-m") continue;
    for (const auto& m : r["body"]["messages"]) {
      if (m["role"] == "tool") told += m["content"].get<std::string>() + "\n";
    }
  }
  EXPECT_THAT(told, HasSubstr("steps a → b → a form a cycle"));
  EXPECT_THAT(told, HasSubstr("step draw: role \"designer\" is not configured"));
  RunResult rejected = Ctl({"reject", plan["id"], "--reason", "the tests must run too"});
  ASSERT_EQ(rejected.exit_code, 0) << rejected.err;

  // The revision: three steps, estimates shown before anyone approves.
  nlohmann::json revised;
  ASSERT_TRUE(WaitFor(
      [&] {
        nlohmann::json plans = CtlJson({"get", "plans"});
        for (const auto& p : plans["plans"]) {
          if (p["status"] == "PLAN_STATUS_PROPOSED") revised = p;
        }
        return !revised.is_null();
      },
      absl::Seconds(30)))
      << daemon_.log();
  EXPECT_EQ(revised["revision"], 2);
  EXPECT_EQ(revised["previousPlanId"], plan["id"]);
  EXPECT_EQ(revised["steps"].size(), 3u);
  RunResult shown = Ctl({"describe", "plan", revised["id"]});
  EXPECT_THAT(shown.out, HasSubstr("2000 tokens"));
  RunResult approved = Ctl({"approve", revised["id"]});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;

  std::optional<int> st = wait.WaitExit(absl::Seconds(120));
  ASSERT_TRUE(st.has_value()) << daemon_.log();
  EXPECT_EQ(WEXITSTATUS(*st), 0) << ReadFileOrEmpty(dir_.Join("goal.err")) << daemon_.log();
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("goal.out")), HasSubstr("mul() is in"));
  // The steps ran in order on the goal's branch; the tester ran the real tests.
  EXPECT_EQ(Git(repo, "log --format=%s agentd/g-1"), "Test mul\nAdd mul\nbase\n");
  EXPECT_THAT(Git(repo, "show agentd/g-1:calc.py"), HasSubstr("def mul"));
  std::string tests_output;
  for (const auto& r : FakeRequests()) {
    if (r["model"] == "tester-m" && r["body"]["messages"].back()["role"] == "tool") {
      tests_output = r["body"]["messages"].back()["content"];
    }
  }
  EXPECT_THAT(tests_output, HasSubstr("2 passed"));
  nlohmann::json done = CtlJson({"describe", "plan", revised["id"]});
  EXPECT_EQ(done["status"], "PLAN_STATUS_COMPLETED");
  nlohmann::json usage = CtlJson({"usage", "--by", "role"});
  std::set<std::string> roles;
  for (const auto& g : usage["groups"]) roles.insert(g["role"]);
  EXPECT_EQ(roles, (std::set<std::string>{"ceo", "manager", "coder", "tester"}));
}

// Side effects, decisions and admin actions land in the hash-chained audit log; an entry
// edited behind agentd's back is named by Verify.
TEST_F(GoalTest, TheAuditLogChainsEverySideEffectAndVerifyNamesAnEditedEntry) {
  Start(kDelegateScenario);
  RunResult r = Ctl({"goal", "Write hello.txt", "--wait", "--timeout", "60s"});
  ASSERT_EQ(r.exit_code, 0) << r.err << daemon_.log();
  ASSERT_EQ(Ctl({"stop", "coder-1"}).exit_code, 0);
  nlohmann::json audit = CtlJson({"audit"});
  std::vector<std::string> seen;
  for (const auto& e : audit["entries"]) {
    seen.push_back(absl::StrCat(e["actor"]["id"].get<std::string>(), " ",
                                e["action"].get<std::string>(), " ",
                                e["target"].get<std::string>()));
  }
  EXPECT_THAT(seen, ::testing::Contains("human:local goal.submit g-1"));
  EXPECT_THAT(seen, ::testing::Contains("coder-1 fs.write hello.txt"));
  EXPECT_THAT(seen, ::testing::Contains("coder-1 git.commit Add hello.txt"));
  EXPECT_THAT(seen, ::testing::Contains("human:local agent.stop coder-1"));
  nlohmann::json by_goal = CtlJson({"audit", "--goal", "g-1", "--action", "fs."});
  ASSERT_EQ(by_goal["entries"].size(), 1u) << by_goal.dump();
  RunResult ok = Ctl({"audit", "--verify"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("audit chain intact"));

  // Someone rewrites history in agentd.db while agentd is down.
  int64_t edited = std::stoll(by_goal["entries"][0]["seq"].get<std::string>());
  ASSERT_TRUE(daemon_.Stop().has_value());
  {
    auto db = sqlite::Db::Open(daemon_.state_dir() + "/agentd.db", false);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(
        (*db)
            ->Exec(absl::StrCat("UPDATE audit SET target = 'innocent.txt' WHERE seq = ", edited))
            .ok());
  }
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  RunResult broken = Ctl({"audit", "--verify"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_THAT(broken.out,
              HasSubstr(absl::StrCat("audit chain BROKEN at entry ", edited, ": hash mismatch")));
}

// kill -9 of agentd while a plan runs: the restarted daemon finds its goals, plans and
// tasks in agentd.db, the agents resume their sessions, and the goal completes with
// every step done once.
TEST_F(GoalTest, AGoalSurvivesKillNineOfTheDaemonMidPlanWithNoStepLostOrRunTwice) {
  Start(
      R"yaml(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "both steps done"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply: {tool_calls: [{name: delegate, arguments: {role: manager, instructions: "Run the plan"}}]}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: manager-final
    match: {model: manager-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "plan done"}}]}
  - name: manager-plan
    match: {model: manager-m, last_role: user}
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps:
              - {id: one, role: coder, instructions: "Write one.txt"}
              - {id: two, role: coder, instructions: "Write two.txt", deps: [one]}
  - name: manager-wait
    match: {model: manager-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: coder-one
    match: {model: coder-m, last_role: user, contains: "one.txt"}
    reply: {tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo one >> one.txt"]}}]}
  - name: coder-two
    match: {model: coder-m, last_role: user, contains: "two.txt"}
    reply: {tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo two >> two.txt"]}}]}
  - name: coder-two-slow
    match: {model: coder-m, last_role: tool, contains: "two.txt"}
    times: 1
    reply: {text: "", delay_ms: 60000}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "written"}}]}
)yaml",
      R"(  manager: {model: manager, prompt: roles/manager.md, tools: [propose_plan, complete_task]}
)");
  ASSERT_EQ(Ctl({"goal", "Write two files", "--approve", "auto"}).exit_code, 0);
  // Step two has run its command and waits on the model: kill -9 agentd there.
  ASSERT_TRUE(WaitFor(
      [&] {
        int n = 0;
        for (const auto& r : FakeRequests()) {
          if (r["model"] != "coder-m") continue;
          for (const auto& m : r["body"]["messages"]) n += m["role"] == "tool";
        }
        return n >= 2;  // one tool result in each step's conversation
      },
      absl::Seconds(30)))
      << daemon_.log();
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  ASSERT_TRUE(WaitFor(
      [&] {
        return CtlJson({"describe", "task", "g-1"})["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(60)))
      << daemon_.log();
  std::string ws = CtlJson({"describe", "task", "g-1"})["workspace"]["path"];
  EXPECT_EQ(ReadFileOrEmpty(ws + "/one.txt"), "one\n");  // each step's command ran once
  EXPECT_EQ(ReadFileOrEmpty(ws + "/two.txt"), "two\n");
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  EXPECT_EQ(tasks["tasks"].size(), 4u);  // goal, manager's task, two steps: none lost or added
  for (const auto& t : tasks["tasks"]) {
    EXPECT_EQ(t["status"], "TASK_STATUS_COMPLETED") << t.dump() << daemon_.log();
    EXPECT_EQ(t["attempts"], 1) << t.dump();  // resumed, never started over
  }
}

// Every transition is an event; a watcher follows the feed live and resumes from its
// cursor after a disconnect with nothing lost and nothing twice.
TEST_F(GoalTest, EventsWatchFollowsEveryTransitionAndResumesFromItsCursor) {
  Start(kDelegateScenario);
  auto events = v1::EventService::NewStub(daemon_.UnixChannel());
  // A watcher from now on, before the goal exists.
  grpc::ClientContext live_ctx;
  v1::WatchEventsRequest live_req;
  live_req.set_after_seq(-1);
  live_req.mutable_filter()->add_kinds("task.");
  live_req.mutable_filter()->add_kinds("goal.");
  auto live = events->WatchEvents(&live_ctx, live_req);
  ASSERT_EQ(Ctl({"goal", "Write hello.txt", "--wait", "--timeout", "60s"}).exit_code, 0);
  std::vector<v1::Event> seen;
  v1::WatchEventsResponse r;
  while (live->Read(&r)) {
    seen.push_back(r.event());
    if (r.event().task_id() == "g-1" && r.event().kind() == "task.completed") break;
  }
  live_ctx.TryCancel();
  ASSERT_FALSE(seen.empty());
  std::vector<std::string> goal_statuses;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(seen[i].seq(), seen[i - 1].seq());
    }
    if (seen[i].task_id() == "g-1") {
      goal_statuses.push_back(v1::TaskStatus_Name(seen[i].task().status()));
    }
  }
  EXPECT_EQ(goal_statuses.front(), "TASK_STATUS_READY");  // goal.submitted
  EXPECT_THAT(goal_statuses, ::testing::Contains("TASK_STATUS_BLOCKED"));
  EXPECT_EQ(goal_statuses.back(), "TASK_STATUS_COMPLETED");

  // From the start, in two pieces: cut after the third event, resume from its seq.
  auto read_from = [&](int64_t after, size_t max) {
    grpc::ClientContext ctx;
    v1::WatchEventsRequest req;
    req.set_after_seq(after);
    *req.mutable_filter() = live_req.filter();
    auto stream = events->WatchEvents(&ctx, req);
    std::vector<int64_t> seqs;
    v1::WatchEventsResponse e;
    while (seqs.size() < max && stream->Read(&e)) seqs.push_back(e.event().seq());
    ctx.TryCancel();
    return seqs;
  };
  std::vector<int64_t> first = read_from(0, 3);
  ASSERT_EQ(first.size(), 3u);
  std::vector<int64_t> rest = read_from(first.back(), seen.size() - 3);
  first.insert(first.end(), rest.begin(), rest.end());
  std::vector<int64_t> expected;
  for (const v1::Event& e : seen) expected.push_back(e.seq());
  EXPECT_EQ(first, expected);

  // ListEvents pages through the same feed.
  grpc::ClientContext list_ctx;
  v1::ListEventsRequest list;
  list.mutable_filter()->set_goal_id("g-1");
  list.mutable_filter()->add_kinds("plan.");
  list.mutable_filter()->add_kinds("task.completed");
  v1::ListEventsResponse page;
  ASSERT_TRUE(events->ListEvents(&list_ctx, list, &page).ok());
  ASSERT_EQ(page.events_size(), 2);  // the coder's task, then the goal
  EXPECT_EQ(page.events(0).task().id(), "t-2");
  EXPECT_EQ(page.events(1).task().result().summary(), "hello.txt is written and committed");

  // A call's usage rides on its event, priced (the UI's charts grow from these).
  grpc::ClientContext usage_ctx;
  v1::ListEventsRequest usage_list;
  usage_list.mutable_filter()->add_kinds("usage.recorded");
  v1::ListEventsResponse usage_page;
  ASSERT_TRUE(events->ListEvents(&usage_ctx, usage_list, &usage_page).ok());
  ASSERT_GT(usage_page.events_size(), 0);
  const v1::UsageRecord& rec = usage_page.events(0).usage_record();
  EXPECT_EQ(rec.model(), "ceo-m");
  EXPECT_GT(rec.prompt_tokens(), 0);
  EXPECT_GT(rec.cost_usd(), 0);
}

// The built-in bootstrapper renders a project template and runs its own tests — the
// end-to-end flow that needs no model — and its post-check's output is in its log.
TEST_F(GoalTest, BootstrapRendersEachProjectTemplateAndItsPostCheckPasses) {
  Start("rules: []\n");
  for (const std::string name : {"python-fastapi", "cpp-cmake"}) {
    std::string dir = dir_.Join("new-" + name);
    RunResult r = Ctl({"bootstrap", name, dir, "--timeout", "300s"}, absl::Seconds(320));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err << daemon_.log();
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("rendered template ", name)));
    EXPECT_THAT(r.out, HasSubstr("post-check passed"));
    EXPECT_EQ(Git(dir, "log --format=%s"), absl::StrCat("Bootstrap from template ", name, "\n"));
  }
  // {{project}} became the directory's name.
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("new-python-fastapi/app/main.py")),
              HasSubstr("FastAPI(title=\"new-python-fastapi\")"));
  RunResult logs = Ctl({"logs", "bootstrapper-1"});
  EXPECT_THAT(logs.out + Ctl({"logs", "bootstrapper-2"}).out,
              HasSubstr("100% tests passed, 0 tests failed out of 1"));  // ctest, as it ran
  RunResult unknown = Ctl({"bootstrap", "no-such-template", dir_.Join("x")});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("templates are: cpp-cmake, python-fastapi"));
}

// Agents started for work are stopped when idle past their role's idle_timeout; the
// others stay.
TEST_F(GoalTest, AnAgentStartedOnDemandIsStoppedAfterItsRolesIdleTimeout) {
  Start(kDelegateScenario, "  reviewer: {model: other, tools: [complete_task]}\n");
  // The coder role idles out fast in this test (config edited before the start).
  std::string config = ReadFileOrEmpty(dir_.Join("agentd.yaml"));
  ASSERT_TRUE(daemon_.Stop().has_value());
  size_t at = config.find("max_instances: 2,");
  ASSERT_NE(at, std::string::npos);
  config.insert(at, "idle_timeout: 1s, ");
  WriteFile(dir_.Join("agentd.yaml"), config);
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  ASSERT_EQ(Ctl({"goal", "Write hello.txt", "--wait", "--timeout", "60s"}).exit_code, 0);
  EXPECT_TRUE(WaitFor([&] { return GetAgent("coder-1").state() == v1::AGENT_STATE_STOPPED; },
                      absl::Seconds(10)))
      << daemon_.log();
  EXPECT_EQ(GetAgent("ceo-1").state(), v1::AGENT_STATE_IDLE);  // 10m by default
  EXPECT_THAT(daemon_.log(), HasSubstr("agent coder-1 idle for its role's idle_timeout"));
}

// The Tester's failure goes back up: the plan fails, the Manager gets the failure
// summary, plans a fix; the Coder fixes, the Tester's re-run passes.
TEST_F(GoalTest, ATestersFailureReachesTheCoderWhoFixesItAndTheRerunPasses) {
  Start(
      R"yaml(
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "mul works, tests pass"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply: {tool_calls: [{name: delegate, arguments: {role: manager, instructions: "Add mul() and make the tests pass"}}]}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}

  - name: manager-fix
    match: {model: manager-m, contains: "test_mul failed"}
    times: 1
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps:
              - {id: fix, role: coder, instructions: "Fix mul so that test_mul passes (it returned a + b)"}
              - {id: retest, role: tester, instructions: "Run the tests again", deps: [fix], max_attempts: 1}
  - name: manager-final
    match: {model: manager-m, last_role: user, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "fixed after one failed test run"}}]}
  - name: manager-plan
    match: {model: manager-m, last_role: user}
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps:
              - {id: impl, role: coder, instructions: "Add mul(a, b) to calc.py, with test_mul.py"}
              - {id: verify, role: tester, instructions: "Run the tests", deps: [impl], max_attempts: 1}
  - name: manager-wait
    match: {model: manager-m, last_role: tool}
    reply: {text: "Waiting."}

  - name: coder-impl
    match: {model: coder-m, last_role: user, contains: "Add mul(a, b)"}
    reply:
      tool_calls:
        - {name: fs_write, arguments: {path: calc.py, content: "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n"}}
        - {name: fs_write, arguments: {path: test_mul.py, content: "from calc import mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n"}}
  - name: coder-fix
    match: {model: coder-m, last_role: user, contains: "Fix mul"}
    reply:
      tool_calls:
        - {name: fs_write, arguments: {path: calc.py, content: "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"}}
  - name: coder-commit-impl
    match: {model: coder-m, last_role: tool, contains: "Add mul(a, b)"}
    times: 1
    reply: {tool_calls: [{name: git_commit, arguments: {message: "Add mul"}}]}
  - name: coder-commit-fix
    match: {model: coder-m, last_role: tool, contains: "Fix mul"}
    times: 1
    reply: {tool_calls: [{name: git_commit, arguments: {message: "Fix mul"}}]}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "committed"}}]}

  - name: tester-run
    match: {model: tester-m, last_role: user}
    reply: {tool_calls: [{name: tests_run, arguments: {}}]}
  - name: tester-fails-first
    match: {model: tester-m, last_role: tool}
    times: 1
    reply: {tool_calls: [{name: fail_task, arguments: {reason: "test_mul failed: assert 7 == 12"}}]}
  - name: tester-passes
    match: {model: tester-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "all tests pass"}}]}
)yaml",
      R"(  manager: {model: manager, prompt: roles/manager.md, tools: [propose_plan, complete_task, fail_task]}
  tester: {model: tester, prompt: roles/tester.md, tools: [tests.run, complete_task, fail_task]}
)");
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  RunResult r = Ctl({"goal", "Add mul()", "--workspace", repo, "--approve", "auto", "--wait",
                     "--timeout", "120s"},
                    absl::Seconds(130));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << daemon_.log();
  EXPECT_EQ(Git(repo, "log --format=%s agentd/g-1"), "Fix mul\nAdd mul\nbase\n");
  std::vector<std::string> runs;  // what tests.run said, in order
  for (const auto& q : FakeRequests()) {
    if (q["model"] == "tester-m" && q["body"]["messages"].back()["role"] == "tool") {
      runs.push_back(q["body"]["messages"].back()["content"]);
    }
  }
  ASSERT_EQ(runs.size(), 2u) << daemon_.log();
  EXPECT_THAT(runs[0], HasSubstr("1 failed"));
  EXPECT_THAT(runs[0], HasSubstr("test_mul"));
  EXPECT_THAT(runs[1], HasSubstr("2 passed"));
  nlohmann::json plans = CtlJson({"get", "plans"});
  std::map<std::string, std::string> status;
  for (const auto& p : plans["plans"]) status[p["id"]] = p["status"];
  EXPECT_EQ(status["p-1"], "PLAN_STATUS_FAILED");
  EXPECT_EQ(status["p-2"], "PLAN_STATUS_COMPLETED");
}

// A paused goal's tasks are not handed out, even to an idle agent of their role; resumed,
// the goal runs. The CEO (one instance) is busy with a slow goal while the second is
// submitted and paused, so the pause is in place before any agent could take it; the slow
// goal's end is handled on agentd's loop, scheduling included, before the status query
// that sees it.
TEST_F(GoalTest, APausedGoalIsNotHandedOutAndRunsOnceResumed) {
  Start(R"(
rules:
  - match: {model: ceo-m, contains: "Slow"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "slow done"}}], delay_ms: 1500}
  - match: {model: ceo-m}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "done"}}]}
)");
  ASSERT_EQ(Ctl({"goal", "Slow"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return fake_->Requests() >= 1; }, absl::Seconds(30)))
      << daemon_.log();  // the CEO is in its slow call
  ASSERT_EQ(Ctl({"goal", "Paused one"}).exit_code, 0);
  ASSERT_EQ(Ctl({"pause", "g-2"}).exit_code, 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        return CtlJson({"describe", "task", "g-1"})["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(30)))
      << daemon_.log();
  nlohmann::json paused = CtlJson({"describe", "task", "g-2"});
  EXPECT_EQ(paused["status"], "TASK_STATUS_READY") << paused.dump();
  EXPECT_EQ(paused["assignee"], "");
  EXPECT_EQ(paused["paused"], true);
  ASSERT_EQ(Ctl({"resume", "g-2"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return CtlJson({"describe", "task", "g-2"})["status"] == "TASK_STATUS_COMPLETED";
      },
      absl::Seconds(30)))
      << daemon_.log();
}

}  // namespace
}  // namespace agentd::testing
