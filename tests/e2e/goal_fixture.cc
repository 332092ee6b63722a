#include "tests/e2e/goal_fixture.h"

#include <sys/wait.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "common/json_dump.h"
#include "tests/support/client.h"

namespace agentd::testing {

std::string Scenario(const std::string& name, const std::map<std::string, std::string>& vars) {
  const std::string path = absl::StrCat(AGENTD_E2E_SCENARIOS, "/", name, ".yaml");
  std::string text = ReadFileOrEmpty(path);
  if (text.empty()) {
    ADD_FAILURE() << "cannot read the scenario " << path;
    return "";
  }
  for (const auto& [key, value] : vars) {
    text = absl::StrReplaceAll(text, {{absl::StrCat("${", key, "}"), value}});
  }
  if (size_t at = text.find("${"); at != std::string::npos) {
    ADD_FAILURE() << path << ": no value for " << text.substr(at, text.find('}', at) - at + 1);
    return "";
  }
  return text;
}

std::string ScaledText(absl::Duration d) { return absl::FormatDuration(Scaled(d)); }

nlohmann::json LoggedRequests(const FakeLlm& fake) {
  RunResult r = RunCommand({"curl", "-sf", fake.url() + "/_fakellm/requests"});
  nlohmann::json requests = nlohmann::json::parse(r.out, nullptr, false);
  return requests.is_array() ? requests : nlohmann::json::array();
}

namespace {

// Whether `request` (one of LoggedRequests) was for `model`.
bool IsFor(const nlohmann::json& request, const std::string& model) {
  return request.is_object() && request.contains("model") && request["model"] == model;
}

}  // namespace

int CountRequests(const nlohmann::json& requests, const std::string& model) {
  int n = 0;
  for (const nlohmann::json& q : requests) n += IsFor(q, model);
  return n;
}

std::vector<std::string> ToolResults(const nlohmann::json& requests, const std::string& model) {
  std::vector<std::string> results;
  for (const nlohmann::json& q : requests) {
    if (!IsFor(q, model) || !q.contains("body") || !q["body"].is_object()) continue;
    const nlohmann::json& messages = q["body"].value("messages", nlohmann::json::array());
    if (!messages.is_array() || messages.empty()) continue;
    const nlohmann::json& last = messages.back();
    if (!last.is_object() || last.value("role", nlohmann::json()) != "tool") continue;
    results.push_back(Text(last.value("content", nlohmann::json())));
  }
  return results;
}

std::string Text(const nlohmann::json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

size_t ArraySize(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  return it != object.end() && it->is_array() ? it->size() : 0;
}

// agentd's config for the goal tests, with the ${…} filled in by Start. The heartbeat's
// lease stretches with the time scale: a slow (sanitizer) build must not read as agents
// that stopped answering.
constexpr char kConfig[] = R"(
supervision:
  restart_sec: 50ms
  heartbeat: {interval: 200ms, ttl: ${TTL}}
  stop_timeout: 2s
providers:
  fake: {kind: openai, base_url: "${URL}/v1"${PROVIDER_TIMEOUTS}}
models:
  ceo:   {provider: fake, model: ceo-m, max_tokens: 100,
          price: {input_per_mtok: 1, output_per_mtok: 2}}
  coder: {provider: fake, model: coder-m, max_tokens: 100}
  other: {provider: fake, model: other-m, max_tokens: 100, temperature: 0.25}
  manager: {provider: fake, model: manager-m, max_tokens: 100}
  tester: {provider: fake, model: tester-m, max_tokens: 100}
roles:
  ceo:   {model: ceo, prompt: roles/ceo.md, tools: ${CEO_TOOLS}, max_instances: 1}
  coder: {model: coder, prompt: roles/coder.md, max_instances: 2,
          tools: [fs.read, fs.write, fs.list, shell.run, git.commit, complete_task, fail_task]}
${EXTRA_ROLES}
agents: []
policy:
  shell: {allow: [sh, ls, cat], sandbox: ${SANDBOX}}
  budget: {on_exhausted: ${ON_EXHAUSTED}}
${EXTRA_POLICY}
${EXTRA_CONFIG}
)";

void GoalTest::RestartAfterInjectedExit() {
  std::optional<int> exited = daemon_.process()->WaitExit(absl::Seconds(60));
  ASSERT_TRUE(exited.has_value()) << "agentd did not stop at the injected fault ("
                                  << absl::StrJoin(daemon_env_, " ") << "): " << daemon_.log();
  EXPECT_TRUE(WIFEXITED(*exited) && WEXITSTATUS(*exited) == 86) << *exited;
  daemon_.ExpectUncleanExit();  // the injected fault's exit
  daemon_env_.clear();
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
}

void GoalTest::Start(const std::string& scenario, const std::string& extra_roles,
                     const std::string& ceo_tools) {
  fake_ = std::make_unique<FakeLlm>(dir_, scenario);
  ASSERT_FALSE(fake_->url().empty()) << fake_->log();
  WriteFile(
      dir_.Join("agentd.yaml"),
      absl::StrReplaceAll(
          kConfig, {{"${TTL}", ScaledText(absl::Seconds(3))},
                    {"${URL}", fake_->url()},
                    {"${CEO_TOOLS}", ceo_tools},
                    {"${EXTRA_ROLES}", extra_roles},
                    {"${SANDBOX}", sandbox_policy_},
                    {"${ON_EXHAUSTED}", budget_on_exhausted_},
                    {"${EXTRA_POLICY}", extra_policy_},
                    {"${EXTRA_CONFIG}", extra_config_},
                    {"${PROVIDER_TIMEOUTS}",
                     provider_timeouts_.empty() ? "" : ", timeouts: " + provider_timeouts_}}));
  std::vector<std::string> args = {"--config", dir_.Join("agentd.yaml")};
  args.insert(args.end(), daemon_args_.begin(), daemon_args_.end());
  ASSERT_TRUE(daemon_.Start(args, daemon_env_)) << daemon_.log();
}

::testing::AssertionResult GoalTest::NoPlansInMemory(absl::Duration timeout) {
  nlohmann::json info;
  ::testing::AssertionResult r =
      WaitForValue([&] { return PollCtlJson({"status"}); },
                   [](const nlohmann::json& i) {
                     return i.is_object() && i.contains("counters") &&
                            i["counters"].value("plansInMemory", "") == "0";
                   },
                   timeout, &info);
  if (!r) r << "\n" << DumpJson(info);
  return r;
}

::testing::AssertionResult GoalTest::PlansReach(size_t count, nlohmann::json* plans,
                                                absl::Duration timeout) {
  ::testing::AssertionResult r = WaitForValue(
      [&] {
        return PollCtlJson({"get", "plans"});
      },
      [&](const nlohmann::json& j) { return ArraySize(j, "plans") == count; }, timeout, plans);
  if (!r) r << "\n" << daemon_.log();
  return r;
}

std::string GoalTest::CalcRepo() {
  std::string repo = dir_.Join("repo");
  RunResult init = RunCommand(
      {"sh", "-c",
       absl::StrCat("git init -q -b main '", repo, "' && cd '", repo,
                    "' && printf 'def add(a, b):\\n    return a + b\\n' > calc.py && printf "
                    "'from calc import add\\n\\n\\ndef test_add():\\n    assert add(1, 2) == 3\\n' "
                    "> test_calc.py && printf '[pytest]\\n' > pytest.ini && git add . && git -c "
                    "user.name=t -c user.email=t@t commit -q -m base")});
  EXPECT_EQ(init.exit_code, 0) << init.err;
  return init.exit_code == 0 ? repo : "";
}

RunResult GoalTest::Ctl(std::vector<std::string> args, absl::Duration timeout) {
  std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout);
}

RunResult GoalTest::CtlGoalAndWait(std::vector<std::string> args, absl::Duration timeout) {
  args.insert(args.begin(), "goal");
  args.insert(args.end(), {"--wait", "--timeout", ScaledText(timeout)});
  // agentctl's own time-out must be what ends a wait that is too long, with its message.
  return Ctl(args, timeout + absl::Seconds(30));
}

nlohmann::json GoalTest::CtlJson(std::vector<std::string> args) {
  args.insert(args.begin(), {"-o", "json"});
  RunResult r = Ctl(args);
  EXPECT_EQ(r.exit_code, 0) << "agentctl " << absl::StrJoin(args, " ") << ": " << r.err
                            << daemon_.log();
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_object()) {
    ADD_FAILURE() << "agentctl " << absl::StrJoin(args, " ")
                  << " printed no JSON object: " << r.out;
    return nlohmann::json::object();
  }
  return j;
}

nlohmann::json GoalTest::PollCtlJson(std::vector<std::string> args) {
  args.insert(args.begin(), {"-o", "json"});
  RunResult r = Ctl(args);
  if (r.exit_code != 0) return nullptr;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_object() ? j : nullptr;
}

std::string GoalTest::Git(const std::string& repo, const std::string& args) {
  RunResult r = RunCommand({"sh", "-c", absl::StrCat("git -C '", repo, "' ", args)});
  EXPECT_EQ(r.exit_code, 0) << "git " << args << ": " << r.err;
  return r.out;
}

std::string GoalTest::TaskStatus(const std::string& id) {
  v1::GetTaskRequest req;
  req.set_task_id(id);
  v1::GetTaskResponse resp;
  if (!daemon_.client().tasks().GetTask(Ctx().get(), req, &resp).ok()) return "";
  return v1::TaskStatus_Name(resp.task().status());
}

::testing::AssertionResult GoalTest::TaskReaches(const std::string& id, const std::string& status,
                                                 absl::Duration timeout) {
  ::testing::AssertionResult reached = WaitForValue(
      [&] { return TaskStatus(id); }, [&](const std::string& s) { return s == status; }, timeout);
  if (!reached) reached << " (task " << id << ", waiting for " << status << ")";
  return reached;
}

::testing::AssertionResult GoalTest::AgentReaches(const std::string& id, v1::AgentState state,
                                                  absl::Duration timeout) {
  ::testing::AssertionResult reached =
      WaitForValue([&] { return daemon_.client().GetAgent(id); },
                   [&](const v1::Agent& a) { return a.state() == state; }, timeout);
  if (!reached) {
    reached << " (agent " << id << ", waiting for " << v1::AgentState_Name(state) << ")";
  }
  return reached;
}

std::string GoalTest::Workspace(const std::string& goal_id) {
  nlohmann::json goal = CtlJson({"describe", "task", goal_id});
  const nlohmann::json& path = goal["workspace"]["path"];
  if (!path.is_string() || path.get<std::string>().empty()) {
    ADD_FAILURE() << "goal " << goal_id << " has no workspace: " << goal.dump();
    return "";
  }
  return path.get<std::string>();
}

}  // namespace agentd::testing
