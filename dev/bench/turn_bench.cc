// dev/bench/turn_bench: what agentd's LLM client and agent loop add to a model call,
// beside a direct HTTP call to the same dev/fakellm endpoint in the same run.
//
//   direct HTTP    libcurl POSTing the same request body, reading the whole SSE stream
//   LlmClient      agentd's client: body built, stream decoded, usage and cost
//   agent loop     one task of two model turns and one tool call (fs.read) with the
//                  session in SQLite (WAL, synchronous NORMAL): the time per turn
//   agent RSS      the loop_runner process (the agent loop alone) at its peak during a
//                  streamed reply that takes 2 s
//   through agentd the same two-turn task as a goal of a real agentd, worked by a real
//                  agentd-agent: delivery over Connect, a budget reservation and a usage
//                  report per call, token and tool events, the session — from the goal's
//                  creation to its completion as agentd recorded them, per turn; the
//                  CPU agentd and the agent spend on one more turn (N goals of each
//                  kind in a row); then again with tracing on, every span exported to
//                  a local OTLP collector
// Latencies are medians over N calls, after a warm-up. The provider answers at once.
//
//   turn_bench [--quick]
#include <curl/curl.h>
#include <sys/stat.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "agents/runtime/agent_loop.h"
#include "common/lock_checks.h"
#include "dev/bench/bench_util.h"
#include "dev/bench/goal_util.h"
#include "grpcpp/client_context.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"
#include "tests/support/process.h"

namespace agentd::bench {
namespace {

constexpr char kScenario[] = R"(
rules:
  - match: {contains: "slow stream"}
    reply: {text: "one two three four five six seven eight nine ten", chunk_delay_ms: 200}
  - match: {contains: "read the file", last_role: user}
    reply: {tool_calls: [{name: fs_read, arguments: {path: "a.txt"}}], usage: {prompt_tokens: 50, completion_tokens: 10}}
  - match: {last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "read"}}]}
  - match: {contains: "hello"}
    reply: {text: "Hello! How can I help you today?", usage: {prompt_tokens: 20, completion_tokens: 9}}
)";

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

// The baseline: one POST of `body`, the whole response read. Returns the time taken.
absl::Duration DirectCall(CURL* c, const std::string& url, const std::string& body) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  absl::Time t0 = absl::Now();
  if (curl_easy_perform(c) != CURLE_OK) std::exit(1);
  return absl::Now() - t0;
}

int Main(int argc, char** argv) {
  int n = 300;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") n = 50;
  }
  testing::TempDir dir;
  testing::FakeLlm fake(dir, kScenario);
  if (fake.url().empty()) {
    std::fprintf(stderr, "turn_bench: fakellm did not start:\n%s\n", fake.log().c_str());
    return 1;
  }
  std::printf("turn_bench (%d cores), %d calls each\n\n",
              static_cast<int>(std::thread::hardware_concurrency()), n);
  llm::ProviderOptions o;
  o.name = "fake";
  o.kind = "openai";
  o.base_url = fake.url() + "/v1";
  auto client = *llm::LlmClient::Create(o);
  llm::ChatRequest req;
  req.model = "bench";
  req.messages = {llm::SystemMessage("You are terse."), llm::UserMessage("hello there")};
  std::unique_ptr<llm::Codec> codec = llm::NewCodec("openai");
  const std::string body = codec->Body(req);
  const std::string url = codec->Url(o.base_url);

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* c = curl_easy_init();
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  std::vector<double> direct, ours, ttft;
  for (int i = 0; i < 20; ++i) DirectCall(c, url, body), (void)client->Chat(req);  // warm-up
  for (int i = 0; i < n; ++i) {
    direct.push_back(absl::ToDoubleMicroseconds(DirectCall(c, url, body)));
    absl::Time t0 = absl::Now();
    absl::Time first = absl::InfiniteFuture();
    absl::StatusOr<llm::ChatResult> r = client->Chat(req, [&](absl::string_view) {
      if (first == absl::InfiniteFuture()) first = absl::Now();
    });
    if (!r.ok()) {
      std::fprintf(stderr, "turn_bench: %s\n", r.status().ToString().c_str());
      return 1;
    }
    ours.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
    ttft.push_back(absl::ToDoubleMicroseconds(first - t0));
  }
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  std::printf("direct HTTP call       median %7.0f us\n", Median(direct));
  std::printf(
      "LlmClient::Chat        median %7.0f us (+%.0f us, ratio %.2f); first text after %.0f us\n",
      Median(ours), Median(ours) - Median(direct), Median(ours) / Median(direct), Median(ttft));
  Report({.bench = "turn_bench",
          .name = "LlmClient::Chat",
          .value = Median(ours),
          .unit = "us",
          .baseline = "direct HTTP call (libcurl)",
          .baseline_value = Median(direct)});

  // Whole tasks: two turns and a tool call each, journaled in SQLite.
  mkdir(dir.Join("ws").c_str(), 0755);
  testing::WriteFile(dir.Join("ws/a.txt"), "contents\n");
  auto ws = *tools::Workspace::Open(dir.Join("ws"));
  auto sessions = *session::SessionStore::Open(dir.Join("session.db"));
  tools::ShellOptions shell;
  tools::ToolBox box = tools::ToolBox::ForRole({"fs.read"});
  agent::AgentLoop loop(client.get(), "bench", &box,
                        {ws.get(), &shell, nullptr, "", "", nullptr, ""}, sessions.get(), nullptr,
                        agent::LoopLimits{});
  std::vector<double> per_turn;
  for (int i = 0; i < n / 2; ++i) {
    absl::Time t0 = absl::Now();
    absl::StatusOr<agent::TaskOutcome> out =
        loop.Run(absl::StrCat("t", i), "sys", "Please read the file.");
    if (!out.ok() || out->status != agent::TaskOutcome::Status::kCompleted) {
      std::fprintf(stderr, "turn_bench: a task did not complete\n");
      return 1;
    }
    per_turn.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0) / out->turns);
  }
  std::printf(
      "agent loop, per turn   median %7.0f us (+%.0f us beyond a direct call: body, stream, "
      "tool, session writes)\n",
      Median(per_turn), Median(per_turn) - Median(direct));
  Report({.bench = "turn_bench",
          .name = "agent loop, per turn",
          .value = Median(per_turn),
          .unit = "us",
          .baseline = "direct HTTP call (libcurl)",
          .baseline_value = Median(direct)});

  // The agent's memory while a reply streams for 2 s.
  mkdir(dir.Join("ws2").c_str(), 0755);
  testing::Subprocess runner({testing::HelperBinary("loop_runner"), fake.url(), dir.Join("ws2"),
                              dir.Join("s2.db"), "slow", "a slow stream please"},
                             dir.Join("runner.out"), dir.Join("runner.err"));
  int64_t peak = 0;
  testing::WaitFor(
      [&] {
        int64_t hwm = PeakRssKiB(runner.pid());
        if (hwm > peak) peak = hwm;
        return !runner.running();
      },
      absl::Seconds(30));
  std::printf("agent RSS, streaming   peak %.1f MB (the loop_runner process)\n", peak / 1024.0);
  Report({.bench = "turn_bench",
          .name = "agent loop peak RSS while a reply streams",
          .value = peak / 1024.0,
          .unit = "MB"});

  // The whole path: agentd, an agentd-agent, the ledger and the events; once as agentd
  // runs by default (no tracing), once exporting every span to a collector.
  mkdir(dir.Join("ws3").c_str(), 0755);
  testing::WriteFile(dir.Join("ws3/a.txt"), "contents\n");
  // The collector: tests/interop's OTLP receiver, decoding every span and writing nowhere.
  testing::Subprocess collector(
      {"node", AGENTD_SOURCE_ROOT "/tests/interop/otlp_receiver.mjs", "/dev/null"},
      dir.Join("collector.out"), dir.Join("collector.err"));
  int collector_port = 0;
  testing::WaitFor(
      [&] {
        std::string out = testing::ReadFileOrEmpty(dir.Join("collector.out"));
        return out.rfind("port ", 0) == 0 &&
               absl::SimpleAtoi(absl::StripAsciiWhitespace(out.substr(5)), &collector_port);
      },
      absl::Seconds(30));
  // Median one-turn and two-turn goal times, created to completed, and (untraced) the
  // CPU agentd and the agent spend on one more turn; nullopt on failure.
  struct Through {
    double one_turn = 0, two_turns = 0;
    double agentd_cpu_us = 0, agent_cpu_us = 0;  // per extra turn
  };
  auto through_agentd = [&](bool traced) -> std::optional<Through> {
    testing::WriteFile(dir.Join("agentd.yaml"),
                       absl::StrCat(R"(
providers: {fake: {kind: openai, base_url: ")",
                                    fake.url(), R"(/v1"}}
models: {m: {provider: fake, model: bench, max_tokens: 100}}
roles: {ceo: {model: m, tools: [fs.read, complete_task], ends_on_text: true}}
agents: [{id: ceo-1, role: ceo}]
)",
                                    traced ? absl::StrCat("telemetry: {otlp_endpoint: "
                                                          "\"http://127.0.0.1:",
                                                          collector_port, "\"}\n")
                                           : ""));
    testing::Daemon daemon(dir);
    if (!daemon.Start({"--config", dir.Join("agentd.yaml")})) {
      std::fprintf(stderr, "turn_bench: agentd did not start:\n%s\n", daemon.log().c_str());
      return std::nullopt;
    }
    auto tasks = v1::TaskService::NewStub(daemon.UnixChannel());
    auto submit = [&](bool two) -> std::optional<v1::Task> {
      v1::SubmitGoalRequest g;
      g.set_text(two ? "Please read the file." : "hello there");
      g.mutable_workspace()->set_kind(v1::WORKSPACE_KIND_NEW_DIRECTORY);
      g.mutable_workspace()->set_path(dir.Join("ws3"));
      g.mutable_workspace()->set_init_existing(true);  // it holds a.txt: made a repository
      std::optional<v1::Task> done = RunGoal(tasks.get(), g);
      if (!done.has_value() || done->status() != v1::TASK_STATUS_COMPLETED) {
        std::fprintf(stderr, "turn_bench: a goal did not complete\n%s\n", daemon.log().c_str());
        return std::nullopt;
      }
      return done;
    };
    // Goals of one turn ("hello": answered with text, which the role takes as its result)
    // and of two (a tool call, then complete_task): the difference is what one more turn
    // costs through agentd, the one-turn time what a task costs beyond its turn.
    std::vector<double> one_turn, two_turns;
    for (int i = 0; i < n + 10; ++i) {
      bool two = i % 2 == 1;
      std::optional<v1::Task> done = submit(two);
      if (!done.has_value()) return std::nullopt;
      if (i < 10) continue;  // warm-up: the agent's first start
      (two ? two_turns : one_turn).push_back(absl::ToDoubleMicroseconds(GoalTime(*done)));
    }
    Through out{.one_turn = Median(one_turn), .two_turns = Median(two_turns)};
    if (!traced) {
      // CPU: a run of one-turn goals, then as many two-turn goals; the difference, per
      // goal, is what one more turn costs each process (the bench's own polling is the
      // same in both runs).
      auto agents = v1::AgentService::NewStub(daemon.UnixChannel());
      grpc::ClientContext ctx;
      v1::GetAgentRequest get;
      get.set_agent_id("ceo-1");
      v1::GetAgentResponse agent;
      if (!agents->GetAgent(&ctx, get, &agent).ok() || agent.agent().pid() <= 0) {
        std::fprintf(stderr, "turn_bench: no pid for ceo-1\n");
        return std::nullopt;
      }
      const pid_t daemon_pid = daemon.process()->pid();
      const auto agent_pid = static_cast<pid_t>(agent.agent().pid());
      double cpu[2][2];  // [one or two turns][agentd or agent]
      for (int two = 0; two < 2; ++two) {
        double d0 = CpuSeconds(daemon_pid), a0 = CpuSeconds(agent_pid);
        for (int i = 0; i < n; ++i) {
          if (!submit(two == 1).has_value()) return std::nullopt;
        }
        cpu[two][0] = CpuSeconds(daemon_pid) - d0;
        cpu[two][1] = CpuSeconds(agent_pid) - a0;
      }
      out.agentd_cpu_us = (cpu[1][0] - cpu[0][0]) * 1e6 / n;
      out.agent_cpu_us = (cpu[1][1] - cpu[0][1]) * 1e6 / n;
    }
    daemon.Stop();
    return out;
  };
  std::optional<Through> plain = through_agentd(false);
  if (!plain.has_value()) return 1;
  double turn = plain->two_turns - plain->one_turn;
  std::printf(
      "through agentd         a one-turn goal %.0f us, a two-turn goal %.0f us (created to "
      "completed)\n"
      "                       one more turn %.0f us (+%.0f us beyond a direct call, ratio %.2f: "
      "reservation, usage report, events, tool, session)\n",
      plain->one_turn, plain->two_turns, turn, turn - Median(direct), turn / Median(direct));
  std::printf(
      "                       CPU of one more turn: agentd %.0f us, agent %.0f us (the direct "
      "call's latency %.0f us; %d goals of each kind)\n",
      plain->agentd_cpu_us, plain->agent_cpu_us, Median(direct), n);
  Report({.bench = "turn_bench",
          .name = "one more turn through agentd, beyond a direct call",
          .value = turn - Median(direct),
          .unit = "us",
          .baseline = "direct HTTP call (libcurl)",
          .baseline_value = Median(direct),
          .ratio = turn / Median(direct),
          .budget = Budget::ValueAtMost(500),
          .note = "ratio: the whole turn over the direct call; tracing off (the default)"});
  if (collector_port == 0) {
    std::fprintf(stderr, "turn_bench: the OTLP receiver did not start (node, tests/interop)\n");
    return 1;
  }
  for (const auto& [who, cpu_us] :
       {std::pair("agentd", plain->agentd_cpu_us), std::pair("agent", plain->agent_cpu_us)}) {
    Report({.bench = "turn_bench",
            .name = absl::StrCat(who, " CPU per extra turn"),
            .value = cpu_us,
            .unit = "us",
            .baseline = "direct HTTP call (latency)",
            .baseline_value = Median(direct),
            .note = "clock-tick resolution: +-1e4/N us"});
  }
  std::optional<Through> traced = through_agentd(true);
  if (!traced.has_value()) return 1;
  double traced_turn = traced->two_turns - traced->one_turn;
  std::printf(
      "through agentd, traced a one-turn goal %.0f us, a two-turn goal %.0f us; one more turn "
      "%.0f us (ratio %.2f to the untraced turn: a chat and an execute_tool span, exported)\n",
      traced->one_turn, traced->two_turns, traced_turn, traced_turn / turn);
  Report({.bench = "turn_bench",
          .name = "one more turn through agentd, traced",
          .value = traced_turn,
          .unit = "us",
          .baseline = "the same turn untraced",
          .baseline_value = turn,
          .ratio = traced_turn / turn,
          .note = "every span exported over OTLP/HTTP to a local collector"});
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) {
  agentd::ConfigureLockChecks();  // the baselines and clients as agentd's own processes run
  return agentd::bench::Main(argc, argv);
}
