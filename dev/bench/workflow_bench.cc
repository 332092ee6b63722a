// dev/bench/workflow_bench: a five-agent workflow against a zero-delay dev/fakellm —
// a CEO delegates the goal to a Manager, who delegates to a Specialist, a Coder and a
// Tester in parallel and sums up — run as goals of a real agentd with real agentd-agent
// processes, beside the same flow written with the OpenAI Agents SDK for JavaScript
// (@openai/agents, agents as tools; dev/bench/peers/agents_workflow.mjs) against the same
// endpoint, in the same run.
//
// Reported: time per workflow and per LLM call (the provider answers at once, so that is
// orchestration overhead), and peak memory (agentd plus its five agents; the SDK's one
// Node process).
//
//   workflow_bench [--quick]
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "dev/bench/bench_util.h"
#include "dev/bench/goal_util.h"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::bench {
namespace {

constexpr char kScenario[] = R"yaml(
rules:
  # agentd's roles (models *-m)
  - {match: {model: ceo-m, last_role: user, contains: "have ended"},
     reply: {tool_calls: [{name: complete_task, arguments: {summary: "goal done"}}]}}
  # a planned goal: the planner proposes three steps, approved by policy
  - {match: {model: ceo-m, last_role: user, contains: "PLANNED"},
     reply: {tool_calls: [{name: delegate, arguments: {role: planner, instructions: "Plan it"}}]}}
  - {match: {model: planner-m, last_role: user, contains: "have ended"},
     reply: {tool_calls: [{name: complete_task, arguments: {summary: "the plan ran"}}]}}
  - match: {model: planner-m, last_role: user}
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            summary: "Review, write and test mul()"
            steps:
              - {id: review, role: specialist, instructions: "Review the design"}
              - {id: write, role: coder, instructions: "Write mul()", deps: [review]}
              - {id: test, role: tester, instructions: "Test mul()", deps: [write]}
  - {match: {model: planner-m, last_role: tool}, reply: {text: "Waiting."}}
  - {match: {model: ceo-m, last_role: user},
     reply: {tool_calls: [{name: delegate, arguments: {role: manager, instructions: "Plan and run it"}}]}}
  - {match: {model: ceo-m, last_role: tool}, reply: {text: "Waiting."}}
  - {match: {model: manager-m, last_role: user, contains: "have ended"},
     reply: {tool_calls: [{name: complete_task, arguments: {summary: "all three done"}}]}}
  - match: {model: manager-m, last_role: user}
    reply:
      tool_calls:
        - {name: delegate, arguments: {role: specialist, instructions: "Review the design"}}
        - {name: delegate, arguments: {role: coder, instructions: "Write mul()"}}
        - {name: delegate, arguments: {role: tester, instructions: "Test mul()"}}
  - {match: {model: manager-m, last_role: tool}, reply: {text: "Waiting."}}
  - {match: {model: specialist-m}, reply: {text: "Looks right."}}
  - {match: {model: coder-m}, reply: {text: "Written."}}
  - {match: {model: tester-m}, reply: {text: "Passes."}}
  # the same flow for @openai/agents (models *-sdk; agents as tools)
  - {match: {model: ceo-sdk, last_role: user},
     reply: {tool_calls: [{name: manager, arguments: {input: "Plan and run it"}}]}}
  - {match: {model: ceo-sdk, last_role: tool}, reply: {text: "goal done"}}
  - match: {model: manager-sdk, last_role: user}
    reply:
      tool_calls:
        - {name: specialist, arguments: {input: "Review the design"}}
        - {name: coder, arguments: {input: "Write mul()"}}
        - {name: tester, arguments: {input: "Test mul()"}}
  - {match: {model: manager-sdk, last_role: tool}, reply: {text: "all three done"}}
  - {match: {model: specialist-sdk}, reply: {text: "Looks right."}}
  - {match: {model: coder-sdk}, reply: {text: "Written."}}
  - {match: {model: tester-sdk}, reply: {text: "Passes."}}
)yaml";

int Main(int argc, char** argv) {
  int n = 30, history = 600, planned = 300;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") n = 8, history = 100, planned = 50;
  }
  testing::TempDir dir;
  testing::FakeLlm fake(dir, kScenario);
  if (fake.url().empty()) {
    std::fprintf(stderr, "workflow_bench: fakellm did not start:\n%s\n", fake.log().c_str());
    return 1;
  }
  std::string models, roles;
  for (const char* r : {"ceo", "manager", "specialist", "coder", "tester", "planner"}) {
    absl::StrAppend(&models, "  ", r, ": {provider: fake, model: ", r, "-m}\n");
  }
  testing::WriteFile(dir.Join("agentd.yaml"), absl::StrCat(R"(
providers: {fake: {kind: openai, base_url: ")",
                                                           fake.url(), R"(/v1"}}
models:
)",
                                                           models, R"(roles:
  ceo: {model: ceo, tools: [delegate, complete_task]}
  manager: {model: manager, tools: [delegate, complete_task]}
  specialist: {model: specialist, tools: [complete_task], ends_on_text: true}
  coder: {model: coder, tools: [complete_task], ends_on_text: true}
  tester: {model: tester, tools: [complete_task], ends_on_text: true}
  planner: {model: planner, tools: [propose_plan, complete_task]}
agents: []
# Each agent's newest log lines are kept in memory up to ring_bytes: small here, so that
# the rings are full after the warm-up and their filling is not counted as history.
logs: {ring_bytes: 64KiB}
)"));
  testing::Daemon daemon(dir);
  if (!daemon.Start({"--config", dir.Join("agentd.yaml")})) {
    std::fprintf(stderr, "workflow_bench: agentd did not start:\n%s\n", daemon.log().c_str());
    return 1;
  }
  auto tasks = v1::TaskService::NewStub(daemon.UnixChannel());
  // The time of a goal is agentd's own record, created to completed, so the bench's
  // polling does not count.
  absl::Duration total;
  auto run_goal = [&](bool plan = false) -> bool {
    v1::SubmitGoalRequest g;
    g.set_text(plan ? "PLANNED: add mul() with tests" : "Add mul() with tests");
    g.set_approval_policy(v1::APPROVAL_POLICY_AUTO);
    std::optional<v1::Task> done = RunGoal(tasks.get(), g);
    if (!done.has_value()) return false;
    total += GoalTime(*done);
    return done->status() == v1::TASK_STATUS_COMPLETED;
  };
  if (!run_goal()) {  // warm-up: the five agents start
    std::fprintf(stderr, "workflow_bench: the warm-up goal did not complete\n%s\n",
                 daemon.log().c_str());
    return 1;
  }
  int before = fake.Requests();
  total = absl::ZeroDuration();
  for (int i = 0; i < n; ++i) {
    if (!run_goal()) return 1;
  }
  double agentd_ms = absl::ToDoubleMilliseconds(total) / n;
  double agentd_calls = static_cast<double>(fake.Requests() - before) / n;
  int64_t peak_kb = PeakRssKiB(daemon.process()->pid());
  auto agents = v1::AgentService::NewStub(daemon.UnixChannel());
  grpc::ClientContext lc;
  v1::ListAgentsResponse list;
  (void)agents->ListAgents(&lc, v1::ListAgentsRequest(), &list);
  for (const v1::Agent& a : list.agents()) {
    if (a.pid() > 0) peak_kb += PeakRssKiB(static_cast<pid_t>(a.pid()));
  }
  int agent_count = list.agents_size();
  // Finished work lives in the store: what agentd's memory grows by per finished goal, over
  // many more goals. Measured from the steady state: once agentd keeps in memory no more of
  // its finished tasks than its bound (the rest only in the store; GetInfo's counters say
  // when), so that filling that window is not counted as history.
  auto system = v1::SystemService::NewStub(daemon.UnixChannel());
  int filled = 0;
  for (;; ++filled) {
    grpc::ClientContext ic;
    v1::GetInfoResponse info;
    if (!system->GetInfo(&ic, v1::GetInfoRequest(), &info).ok()) return 1;
    if (info.counters().tasks() > info.counters().tasks_in_memory() + 100) break;
    if (filled > 2000) {
      std::fprintf(stderr, "workflow_bench: agentd keeps every finished task in memory\n");
      return 1;
    }
    if (!run_goal()) return 1;
  }
  int64_t rss_before = RssKiB(daemon.process()->pid());
  for (int i = 0; i < history; ++i) {
    if (!run_goal()) return 1;
  }
  double kb_per_goal = static_cast<double>(RssKiB(daemon.process()->pid()) - rss_before) / history;
  std::printf("agentd RSS grows  %.2f KB per finished goal (over %d more goals)\n", kb_per_goal,
              history);
  Report({.bench = "workflow_bench",
          .name = "agentd RSS growth per finished goal",
          .value = kb_per_goal,
          .unit = "KB",
          // 100,000 finished goals within 100 MB, beside an idle daemon of about 25 MB.
          .budget = Budget::ValueAtMost(0.75),
          .note = absl::StrCat("over ", history, " goals of five tasks, after ", filled,
                               " that filled the in-memory window")});
  // The same for goals that run a plan (a planner's three steps, approved by policy): the
  // plan and its tasks are finished work too. The first of them starts the planner agent.
  if (!run_goal(true)) {
    std::fprintf(stderr, "workflow_bench: a planned goal did not complete\n%s\n",
                 daemon.log().c_str());
    return 1;
  }
  rss_before = RssKiB(daemon.process()->pid());
  for (int i = 0; i < planned; ++i) {
    if (!run_goal(true)) return 1;
  }
  double kb_per_planned =
      static_cast<double>(RssKiB(daemon.process()->pid()) - rss_before) / planned;
  std::printf("agentd RSS grows  %.2f KB per finished planned goal (over %d goals)\n",
              kb_per_planned, planned);
  Report({.bench = "workflow_bench",
          .name = "agentd RSS growth per finished planned goal",
          .value = kb_per_planned,
          .unit = "KB",
          .budget = Budget::ValueAtMost(0.75),
          .note = absl::StrCat("over ", planned,
                               " goals that each ran a plan of three steps (six tasks)")});
  daemon.Stop();

  testing::RunResult sdk = testing::RunCommand(
      {"node", std::string(AGENTD_SOURCE_DIR) + "/dev/bench/peers/agents_workflow.mjs", fake.url(),
       std::to_string(n)},
      absl::Minutes(5));
  nlohmann::json j = nlohmann::json::parse(sdk.out, nullptr, false);
  std::printf(
      "workflow_bench (%d cores): a goal through five roles, %d runs each, zero-delay provider\n\n",
      static_cast<int>(std::thread::hardware_concurrency()), n);
  std::printf(
      "agentd            %7.1f ms per workflow, %.0f LLM calls (%.2f ms each), peak memory "
      "%.1f MB (agentd + %d agents)\n",
      agentd_ms, agentd_calls, agentd_ms / agentd_calls, peak_kb / 1024.0, agent_count);
  if (sdk.exit_code != 0 || !j.is_object()) {
    std::printf("@openai/agents    did not run (dev/setup --bench installs it): %s\n",
                sdk.err.substr(0, 400).c_str());
    return 0;
  }
  double sdk_ms = j["ms_per_workflow"], sdk_calls = j["calls"];
  double sdk_mb = j["peak_rss_kb"].get<double>() / 1024.0;
  std::printf(
      "@openai/agents    %7.1f ms per workflow, %.0f LLM calls (%.2f ms each), peak memory "
      "%.1f MB (one Node process)\n",
      sdk_ms, sdk_calls, sdk_ms / sdk_calls, sdk_mb);
  Report({.bench = "workflow_bench",
          .name = "five-role workflow",
          .value = agentd_ms,
          .unit = "ms",
          .baseline = "@openai/agents",
          .baseline_value = sdk_ms,
          .budget = Budget::RatioAtMost(0.6)});
  Report({.bench = "workflow_bench",
          .name = "five-role workflow, per LLM call",
          .value = agentd_ms / agentd_calls,
          .unit = "ms",
          .baseline = "@openai/agents",
          .baseline_value = sdk_ms / sdk_calls});
  Report({.bench = "workflow_bench",
          .name = "five-role workflow, peak memory",
          .value = peak_kb / 1024.0,
          .unit = "MB",
          .baseline = "@openai/agents (one process)",
          .baseline_value = sdk_mb,
          .budget = Budget::RatioAtMost(1.0),
          .note = absl::StrCat("agentd + ", agent_count, " agents")});
  std::printf("ratio agentd/SDK  %.2f per workflow, %.2f per call, %.2f memory\n",
              agentd_ms / sdk_ms, (agentd_ms / agentd_calls) / (sdk_ms / sdk_calls),
              (peak_kb / 1024.0) / sdk_mb);
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) { return agentd::bench::Main(argc, argv); }
