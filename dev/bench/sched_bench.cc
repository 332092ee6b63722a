// dev/bench/sched_bench: what handing out a plan's steps costs as the plan grows. A
// manager (dev/fakellm) proposes a plan of N independent coder steps, approved by policy;
// eight always-on coder agents take them, each answered at once by the provider. Reported
// at each size, from agentd's own records:
//   per hand-out   the steps' span (first step created to last step ended) ÷ N: the
//                  scheduler, delivery, the agent's turn and the bookkeeping of one step,
//                  with eight agents working at once
//   agentd CPU     agentd's CPU time over the whole goal ÷ N
// There is no outside baseline: the figure to watch is the curve, which should stay flat.
//
//   sched_bench [--quick]        N = 50, 100, 200 (20, 50 with --quick)
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "dev/bench/bench_util.h"
#include "dev/bench/goal_util.h"
#include "grpcpp/client_context.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::bench {
namespace {

constexpr int kAgents = 8;

std::string Scenario(int steps) {
  std::string plan;
  for (int i = 1; i <= steps; ++i) {
    absl::StrAppend(&plan, "              - {id: s", i, ", role: coder, title: \"Step ", i,
                    "\", instructions: \"Do step ", i, "\"}\n");
  }
  return absl::StrCat(R"yaml(
rules:
  - {match: {model: ceo-m, contains: "have ended"},
     reply: {tool_calls: [{name: complete_task, arguments: {summary: "done"}}]}}
  - {match: {model: ceo-m, last_role: user},
     reply: {tool_calls: [{name: delegate, arguments: {role: manager, instructions: "Plan it"}}]}}
  - {match: {model: ceo-m, last_role: tool}, reply: {text: "Waiting."}}
  - {match: {model: manager-m, contains: "have ended"},
     reply: {tool_calls: [{name: complete_task, arguments: {summary: "all steps done"}}]}}
  - match: {model: manager-m, last_role: user}
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            steps:
)yaml",
                      plan, R"yaml(
  - {match: {model: manager-m, last_role: tool}, reply: {text: "Waiting."}}
  - {match: {model: coder-m}, reply: {text: "Done."}}
)yaml");
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// Every task of `goal`, all pages.
std::vector<v1::Task> GoalTasks(v1::TaskService::Stub* tasks, const std::string& goal) {
  std::vector<v1::Task> all;
  v1::ListTasksRequest req;
  req.set_goal_id(goal);
  req.set_page_size(1000);
  for (;;) {
    grpc::ClientContext ctx;
    v1::ListTasksResponse resp;
    if (!tasks->ListTasks(&ctx, req, &resp).ok()) std::exit(1);
    all.insert(all.end(), resp.tasks().begin(), resp.tasks().end());
    if (resp.next_page_token().empty()) return all;
    req.set_page_token(resp.next_page_token());
  }
}

void Plan(int steps) {
  testing::TempDir dir;
  testing::FakeLlm fake(dir, Scenario(steps));
  if (fake.url().empty()) {
    std::fprintf(stderr, "sched_bench: fakellm did not start:\n%s\n", fake.log().c_str());
    std::exit(1);
  }
  std::string agents;
  for (int i = 1; i <= kAgents; ++i)
    absl::StrAppend(&agents, "  - {id: coder-", i, ", role: coder}\n");
  testing::WriteFile(dir.Join("agentd.yaml"), absl::StrCat(R"(
providers: {fake: {kind: openai, base_url: ")",
                                                           fake.url(), R"(/v1"}}
models:
  ceo: {provider: fake, model: ceo-m}
  manager: {provider: fake, model: manager-m}
  coder: {provider: fake, model: coder-m}
roles:
  ceo: {model: ceo, tools: [delegate, complete_task]}
  manager: {model: manager, tools: [propose_plan, complete_task]}
  coder: {model: coder, tools: [complete_task], ends_on_text: true, max_instances: )",
                                                           kAgents, R"(}
policy: {plan_approval: auto}
agents:
)",
                                                           agents));
  testing::Daemon daemon(dir);
  if (!daemon.Start({"--config", dir.Join("agentd.yaml")})) {
    std::fprintf(stderr, "sched_bench: agentd did not start:\n%s\n", daemon.log().c_str());
    std::exit(1);
  }
  // The coders up and idle first: their start is not part of a hand-out.
  auto agent_stub = v1::AgentService::NewStub(daemon.UnixChannel());
  testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        v1::ListAgentsRequest req;
        req.add_states(v1::AGENT_STATE_IDLE);
        v1::ListAgentsResponse resp;
        (void)agent_stub->ListAgents(&ctx, req, &resp);
        return resp.agents_size() >= kAgents;
      },
      absl::Seconds(60));
  auto tasks = v1::TaskService::NewStub(daemon.UnixChannel());
  v1::SubmitGoalRequest g;
  g.set_text("Run the plan");
  double cpu0 = CpuSeconds(daemon.process()->pid());
  std::optional<v1::Task> done = RunGoal(tasks.get(), g);
  double cpu = CpuSeconds(daemon.process()->pid()) - cpu0;
  if (!done.has_value() || done->status() != v1::TASK_STATUS_COMPLETED) {
    std::fprintf(stderr, "sched_bench: the goal of %d steps did not complete\n%s\n", steps,
                 daemon.log().c_str());
    std::exit(1);
  }
  absl::Time first = absl::InfiniteFuture(), last = absl::InfinitePast();
  int coder_tasks = 0;
  for (const v1::Task& t : GoalTasks(tasks.get(), done->id())) {
    if (t.role() != "coder") continue;
    ++coder_tasks;
    first = std::min(first, ToTime(t.create_time()));
    last = std::max(last, ToTime(t.end_time()));
  }
  if (coder_tasks != steps) {
    std::fprintf(stderr, "sched_bench: %d coder tasks for a plan of %d steps\n", coder_tasks,
                 steps);
    std::exit(1);
  }
  double per_ms = absl::ToDoubleMilliseconds(last - first) / steps;
  double cpu_ms = 1000 * cpu / steps;
  std::printf("%4d steps on %d agents   %6.2f ms per hand-out, agentd CPU %.2f ms per step\n",
              steps, kAgents, per_ms, cpu_ms);
  Report({.bench = "sched_bench",
          .name = absl::StrCat("plan of ", steps, " steps, per hand-out"),
          .value = per_ms,
          .unit = "ms",
          .note = absl::StrCat(kAgents, " agents; span of the steps / steps")});
  Report({.bench = "sched_bench",
          .name = absl::StrCat("plan of ", steps, " steps, agentd CPU"),
          .value = cpu_ms,
          .unit = "ms per step"});
  daemon.Stop(absl::Seconds(60));
}

int Main(int argc, char** argv) {
  std::vector<int> sizes = {50, 100, 200};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") sizes = {20, 50};
  }
  std::printf("sched_bench (%d cores): plans of independent steps, %d agents of the role\n\n",
              static_cast<int>(std::thread::hardware_concurrency()), kAgents);
  for (int steps : sizes) Plan(steps);
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) { return agentd::bench::Main(argc, argv); }
