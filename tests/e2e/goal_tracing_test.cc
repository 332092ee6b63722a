// OpenTelemetry traces of a whole team's goal: agentd and its agents export spans over
// OTLP/HTTP to a test collector (tests/interop/otlp_receiver.mjs) that decodes them with
// OpenTelemetry JS's own protobuf definitions; the tree is checked span by span.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// The receiver's spans so far, one object each (and {"error": …} for what it refused).
std::vector<nlohmann::json> Spans(const std::string& file) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(file), '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::string Attr(const nlohmann::json& span, const std::string& key) {
  const nlohmann::json& a = span["attributes"];
  if (!a.is_object() || !a.contains(key)) return "";
  return a[key].is_string() ? a[key].get<std::string>() : DumpJson(a[key]);
}

class TracingTest : public GoalTest {
 protected:
  // Starts the receiver; its port, or 0 (with a failure recorded).
  int StartReceiver() {
    receiver_ = std::make_unique<Subprocess>(
        std::vector<std::string>{"node", AGENTD_SOURCE_ROOT "/tests/interop/otlp_receiver.mjs",
                                 spans_file_},
        dir_.Join("receiver.out"), dir_.Join("receiver.err"));
    int port = 0;
    bool up = WaitFor(
        [&] {
          std::string out = ReadFileOrEmpty(dir_.Join("receiver.out"));
          return out.rfind("port ", 0) == 0 &&
                 absl::SimpleAtoi(absl::StripAsciiWhitespace(out.substr(5)), &port);
        },
        absl::Seconds(30));
    EXPECT_TRUE(up) << ReadFileOrEmpty(dir_.Join("receiver.err"));
    return up ? port : 0;
  }

  std::string spans_file_ = dir_.Join("spans.jsonl");
  std::unique_ptr<Subprocess> receiver_;
};

// The five-role goal whose tester's first run fails: the Manager's two plans, the Coders'
// and the Tester's tasks, every model call and every tool call, in one trace whose tree
// follows the delegation.
TEST_F(TracingTest, AWholeTeamsGoalIsOneTraceWithASpanForEachTaskModelCallAndToolCall) {
  int port = StartReceiver();
  ASSERT_NE(port, 0);
  extra_config_ = "telemetry: {otlp_endpoint: \"http://127.0.0.1:" + std::to_string(port) + "\"}\n";
  daemon_env_ = {
      "OTEL_BSP_SCHEDULE_DELAY=200", "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental",
      "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20collector-key", "OTEL_SERVICE_NAME=team"};
  daemon_args_ = {"--log-format", "json"};
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

  // The goal's span is exported when it ends, within a batch's delay.
  std::vector<nlohmann::json> spans;
  ASSERT_TRUE(WaitForValue([&] { return Spans(spans_file_); },
                           [](const std::vector<nlohmann::json>& s) {
                             for (const auto& x : s) {
                               if (x.value("name", "") == "invoke_workflow") return true;
                             }
                             return false;
                           },
                           absl::Seconds(30), &spans))
      << ReadFileOrEmpty(spans_file_) << daemon_.log();
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  const size_t n_tasks = ArraySize(tasks, "tasks");
  ASSERT_GE(n_tasks, 5u) << DumpJson(tasks);
  const size_t n_model_calls = FakeRequests().size();
  // Every span is in by the time each task's, each model call's and each tool call's is.
  nlohmann::json tool_events =
      CtlJson({"get", "events", "--goal", "g-1", "--kind", "task.tool_call"});
  const size_t n_tool_calls = ArraySize(tool_events, "events");
  ASSERT_GT(n_tool_calls, 0u) << DumpJson(tool_events);
  auto count = [&](const std::vector<nlohmann::json>& s, const std::string& prefix) {
    size_t n = 0;
    for (const auto& x : s) n += x.value("name", "").rfind(prefix, 0) == 0;
    return n;
  };
  ASSERT_TRUE(WaitForValue([&] { return Spans(spans_file_); },
                           [&](const std::vector<nlohmann::json>& s) {
                             return count(s, "invoke_agent ") >= n_tasks &&
                                    count(s, "chat ") >= n_model_calls &&
                                    count(s, "execute_tool ") >= n_tool_calls;
                           },
                           absl::Seconds(30), &spans))
      << "tasks " << n_tasks << ", model calls " << n_model_calls << ", tool calls " << n_tool_calls
      << "\n"
      << ReadFileOrEmpty(spans_file_);

  std::map<std::string, nlohmann::json> by_id;
  for (const auto& s : spans) {
    ASSERT_FALSE(s.contains("error")) << DumpJson(s);
    EXPECT_TRUE(by_id.emplace(s["span_id"].get<std::string>(), s).second)
        << "span id used twice: " << DumpJson(s);
  }
  // One trace, one root: the goal.
  std::set<std::string> traces;
  for (const auto& s : spans) traces.insert(s["trace_id"].get<std::string>());
  ASSERT_EQ(traces.size(), 1u);
  // agentd's JSON log records about the goal name its trace and the span they concern.
  size_t logged = 0;
  for (absl::string_view line : absl::StrSplit(daemon_.log(), '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || j.value("goal_id", "") != "g-1") continue;
    ++logged;
    EXPECT_EQ(j.value("trace_id", ""), *traces.begin()) << line;
    EXPECT_TRUE(by_id.count(j.value("span_id", ""))) << "a span the trace does not hold: " << line;
  }
  EXPECT_GT(logged, 0u) << daemon_.log();
  EXPECT_EQ(count(spans, "invoke_workflow"), 1u);
  EXPECT_EQ(count(spans, "invoke_agent "), n_tasks);
  EXPECT_EQ(count(spans, "chat "), n_model_calls);
  EXPECT_EQ(count(spans, "execute_tool "), n_tool_calls);
  std::string workflow;
  for (const auto& s : spans) {
    const std::string name = s["name"];
    const std::string parent = s["parent_span_id"];
    if (name == "invoke_workflow") {
      workflow = s["span_id"];
      EXPECT_EQ(parent, "");
      EXPECT_EQ(Attr(s, "gen_ai.operation.name"), "invoke_workflow");
      EXPECT_EQ(Attr(s, "agentd.goal.id"), "g-1");
      EXPECT_EQ(s["resource"]["service.name"], "team");
      continue;
    }
    ASSERT_TRUE(by_id.count(parent)) << "no parent span for " << DumpJson(s);
    const nlohmann::json& p = by_id[parent];
    const std::string pname = p["name"];
    if (name.rfind("invoke_agent ", 0) == 0) {
      EXPECT_TRUE(pname == "invoke_workflow" || pname.rfind("invoke_agent ", 0) == 0) << pname;
      EXPECT_EQ(name, "invoke_agent " + Attr(s, "gen_ai.agent.name"));
      EXPECT_NE(Attr(s, "gen_ai.agent.id"), "") << DumpJson(s);
      EXPECT_EQ(s["kind"], "SPAN_KIND_INTERNAL");
    } else if (name.rfind("chat ", 0) == 0) {
      EXPECT_EQ(pname.rfind("invoke_agent ", 0), 0u) << DumpJson(s);
      EXPECT_EQ(s["kind"], "SPAN_KIND_CLIENT");
      EXPECT_EQ(Attr(s, "gen_ai.operation.name"), "chat");
      EXPECT_EQ(Attr(s, "gen_ai.provider.name"), "openai");  // the latest conventions' name
      EXPECT_EQ(name, "chat " + Attr(s, "gen_ai.request.model"));
      EXPECT_NE(Attr(s, "gen_ai.usage.input_tokens"), "");
      EXPECT_NE(Attr(s, "gen_ai.usage.output_tokens"), "");
      EXPECT_THAT(Attr(s, "gen_ai.response.finish_reasons"), HasSubstr("\""));
      EXPECT_EQ(s["resource"]["service.name"], "team-agent");
      EXPECT_EQ(s["schema_url"], "https://opentelemetry.io/schemas/1.41.0");
    } else if (name.rfind("execute_tool ", 0) == 0) {
      EXPECT_EQ(pname.rfind("invoke_agent ", 0), 0u) << DumpJson(s);
      EXPECT_EQ(name, "execute_tool " + Attr(s, "gen_ai.tool.name"));
      EXPECT_EQ(Attr(s, "gen_ai.operation.name"), "execute_tool");
      EXPECT_NE(Attr(s, "agentd.tool.outcome"), "");
    } else if (name == "await_plan_approval") {
      EXPECT_EQ(pname, "invoke_agent manager");
      EXPECT_EQ(Attr(s, "agentd.plan.decision"), "approved") << DumpJson(s);
    } else {
      ADD_FAILURE() << "unexpected span " << DumpJson(s);
    }
    EXPECT_EQ(s["authorization"], "Bearer collector-key");
  }
  EXPECT_NE(workflow, "");
  EXPECT_EQ(count(spans, "await_plan_approval"), 2u);  // two plans, approved by policy
  // The CEO's task hangs from the goal; the Manager's from the CEO's.
  std::map<std::string, std::string> parent_role;
  for (const auto& s : spans) {
    if (s["name"].get<std::string>().rfind("invoke_agent ", 0) != 0) continue;
    const nlohmann::json& p = by_id[s["parent_span_id"].get<std::string>()];
    parent_role[Attr(s, "gen_ai.agent.name")] =
        p["name"] == "invoke_workflow" ? "(goal)" : Attr(p, "gen_ai.agent.name");
  }
  EXPECT_EQ(parent_role["ceo"], "(goal)");
  EXPECT_EQ(parent_role["manager"], "ceo");
  EXPECT_EQ(parent_role["coder"], "manager");
  EXPECT_EQ(parent_role["tester"], "manager");
  // The tester's failed run is a failed tool span or task span, with its reason.
  bool a_failure = false;
  for (const auto& s : spans) a_failure |= s["status"]["code"] == "STATUS_CODE_ERROR";
  EXPECT_TRUE(a_failure) << "the first plan failed: some span should say so";
}

// The trace context reaches an MCP server with the call (in `_meta`), as the span of that
// very call; a consent request's wait for a person is a span of the task that asked.
TEST_F(TracingTest, AnMcpCallCarriesItsSpanToTheServerAndAConsentWaitIsASpan) {
  int port = StartReceiver();
  ASSERT_NE(port, 0);
  const std::string helpers = AGENTD_SOURCE_ROOT "/tests/helpers";
  extra_config_ = "telemetry: {otlp_endpoint: \"http://127.0.0.1:" + std::to_string(port) +
                  "\"}\nmcp_servers:\n  mis: {command: node, args: [\"" + helpers +
                  "/mcp_misbehaving_server.mjs\"], read_only_paths: [\"" + helpers + "\"]}\n";
  daemon_env_ = {"OTEL_BSP_SCHEDULE_DELAY=200"};
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("mcp_trace"),
            "  mcpuser: {model: other, prompt: roles/coder.md, max_instances: 1,\n"
            "            tools: [\"mcp:mis\", complete_task, fail_task]}\n"));
  ASSERT_EQ(Ctl({"goal", "Trace it", "--workspace", dir_.Join("ws")}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return PollCtlJson({"get", "consents"});
      },
      [](const nlohmann::json& j) { return ArraySize(j, "consentRequests") == 1; },
      absl::Seconds(60), &pending))
      << daemon_.log();
  const std::string consent = pending["consentRequests"][0]["id"];
  ASSERT_EQ(Ctl({"consent", "approve", consent}).exit_code, 0);
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();
  // The request's events name its goal (and task): the goal's feed shows them.
  nlohmann::json consent_events = CtlJson({"get", "events", "--goal", "g-1", "--kind", "consent."});
  EXPECT_EQ(ArraySize(consent_events, "events"), 2u) << DumpJson(consent_events);

  std::vector<std::string> results = ToolResults(FakeRequests(), "other-m");
  ASSERT_FALSE(results.empty());
  const std::string prefix = "traceparent=";
  size_t at = results[0].find(prefix);
  ASSERT_NE(at, std::string::npos) << results[0];
  std::vector<std::string> parts = absl::StrSplit(results[0].substr(at + prefix.size(), 55), '-');
  ASSERT_EQ(parts.size(), 4u) << results[0];  // 00-<trace>-<span>-01

  std::vector<nlohmann::json> spans;
  auto has = [](const std::vector<nlohmann::json>& s, const std::string& name) {
    for (const auto& x : s) {
      if (x.value("name", "") == name) return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitForValue([&] { return Spans(spans_file_); },
                           [&](const std::vector<nlohmann::json>& s) {
                             return has(s, "invoke_workflow") &&
                                    has(s, "execute_tool mcp:mis/meta") &&
                                    has(s, "await_consent destructive_tool");
                           },
                           absl::Seconds(30), &spans))
      << ReadFileOrEmpty(spans_file_);
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& s : spans) by_id[s["span_id"].get<std::string>()] = s;
  // The server saw the span of its call, in the goal's trace.
  ASSERT_TRUE(by_id.count(parts[2]))
      << "no span " << parts[2] << " in " << ReadFileOrEmpty(spans_file_);
  const nlohmann::json& call = by_id[parts[2]];
  EXPECT_EQ(call["name"], "execute_tool mcp:mis/meta");
  EXPECT_EQ(call["trace_id"], parts[1]);
  EXPECT_EQ(Attr(call, "gen_ai.tool.type"), "extension");
  for (const auto& s : spans) {
    if (s["name"] != "await_consent destructive_tool") continue;
    EXPECT_EQ(s["trace_id"], parts[1]);
    EXPECT_EQ(Attr(s, "agentd.consent.id"), consent);
    EXPECT_EQ(Attr(s, "agentd.consent.decision"), "approved");
    EXPECT_EQ(Attr(s, "gen_ai.tool.name"), "mcp:mis/destroy");
    const nlohmann::json& parent = by_id[s["parent_span_id"].get<std::string>()];
    EXPECT_EQ(parent["name"], "invoke_agent mcpuser") << DumpJson(s);
    // The v1.36 conventions by default.
    EXPECT_EQ(s["schema_url"], "https://opentelemetry.io/schemas/1.36.0");
  }
  for (const auto& s : spans) {
    if (s.value("name", "").rfind("chat ", 0) == 0) {
      EXPECT_NE(Attr(s, "gen_ai.system"), "");
    }
  }
}

}  // namespace
}  // namespace agentd::testing
