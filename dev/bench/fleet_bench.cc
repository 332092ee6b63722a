// dev/bench/fleet_bench: agentd with many agents connected, and what one agent costs.
//
//   N agents at 1 Hz   agentd starts N agents (tests/helpers/token_leaker: each hands over
//                      the token agentd gave it, then sleeps). This bench then acts as all
//                      of them from one process, over one connection: it registers each,
//                      holds each one's Connect stream open, and sends each a heartbeat
//                      once a second on it, as agentd-agent does; at the first size also
//                      as unary Heartbeat calls, the baseline. Reported: agentd's CPU
//                      (share of one core) and RSS over a measured window, the heartbeats
//                      sent per second and those that failed (none expected). The budget
//                      is < 10% of a core and < 100 MB at 1,000 agents.
//   agent idle RSS     one agentd-agent, registered and idle, beside the idle RSS of the
//                      pm2 daemon (npm `pm2`, installed under dev/bench/peers) and of
//                      supervisord (Debian `supervisor`).
//
//   fleet_bench [--quick] [--agents N]     N: 1,000 then 10,000 (200, 1,000 with --quick)
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agentd/v1/agent_host.grpc.pb.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "common/lock_checks.h"
#include "dev/bench/bench_util.h"
#include "grpcpp/client_context.h"
#include "tests/support/daemon.h"

namespace agentd::bench {
namespace {

using testing::Daemon;
using testing::Subprocess;
using testing::TempDir;

// One agent's Connect stream, held open until Close(): hello first, then what Send()
// queues (one write in flight at a time, as gRPC allows).
class HeldConnect final : public grpc::ClientBidiReactor<v1::ConnectRequest, v1::ConnectResponse> {
 public:
  HeldConnect(v1::AgentHostService::Stub* stub, const std::string& token,
              const std::string& lease) {
    ctx_.AddMetadata("authorization", "Bearer " + token);
    stub->async()->Connect(&ctx_, this);
    v1::ConnectRequest hello;
    hello.mutable_hello()->set_lease_id(lease);
    Send(std::move(hello));
    StartRead(&resp_);
    StartCall();
  }
  // False once a write has failed (the stream is gone).
  bool Send(v1::ConnectRequest m) {
    absl::MutexLock l(&mu_);
    if (failed_) return false;
    queue_.push_back(std::move(m));
    if (queue_.size() == 1) StartWrite(&queue_.front());
    return true;
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock l(&mu_);
    queue_.pop_front();
    if (!ok) {
      failed_ = true;
      queue_.clear();
      return;
    }
    if (!queue_.empty()) StartWrite(&queue_.front());
  }
  void OnReadDone(bool ok) override {
    if (ok) StartRead(&resp_);
  }
  void OnDone(const grpc::Status&) override { done_.Notify(); }
  void Close() {
    ctx_.TryCancel();
    done_.WaitForNotification();
  }

 private:
  grpc::ClientContext ctx_;
  v1::ConnectResponse resp_;
  absl::Notification done_;
  absl::Mutex mu_;
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::ConnectRequest> queue_ ABSL_GUARDED_BY(mu_);
};

struct SimAgent {
  std::string id, token, lease;
};

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

// Heartbeats as agentd-agent sends them (on its Connect stream), or as unary calls.
void Fleet(int n, absl::Duration window, bool on_stream) {
  TempDir dir;
  std::string tokens = dir.Join("tokens/");
  testing::RunCommand({"/bin/mkdir", "-p", tokens});
  std::string cfg = dir.Join("fleet.yaml");
  testing::WriteFile(cfg, absl::StrCat(R"(
supervision: {heartbeat: {interval: 1s, ttl: 10s}}
agents: []
roles:
  sim: {command: [")",
                                       testing::HelperBinary("token_leaker"), "\", \"", tokens,
                                       "\"], max_instances: ", n, "}\n"));
  Daemon daemon(dir);
  if (!daemon.Start({"--config", cfg})) {
    std::fprintf(stderr, "fleet_bench: agentd did not start:\n%s\n", daemon.log().c_str());
    std::exit(1);
  }
  pid_t pid = daemon.process()->pid();
  auto agents = v1::AgentService::NewStub(daemon.UnixChannel());
  auto host = v1::AgentHostService::NewStub(daemon.UnixChannel());
  std::vector<SimAgent> sims(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext ctx;
    v1::StartAgentRequest req;
    req.set_role("sim");
    req.set_agent_id(absl::StrCat("sim-", i));
    v1::StartAgentResponse resp;
    if (grpc::Status s = agents->StartAgent(&ctx, req, &resp); !s.ok()) {
      std::fprintf(stderr, "fleet_bench: StartAgent: %s\n", s.error_message().c_str());
      std::exit(1);
    }
    sims[i].id = req.agent_id();
  }
  for (SimAgent& a : sims) {
    testing::WaitFor([&] { return !(a.token = testing::ReadFileOrEmpty(tokens + a.id)).empty(); },
                     absl::Seconds(60));
    v1::RegisterRequest req;
    req.set_agent_id(a.id);
    req.set_runtime_version("fleet_bench");
    v1::RegisterResponse resp;
    if (grpc::Status s = host->Register(Ctx(a.token).get(), req, &resp); !s.ok()) {
      std::fprintf(stderr, "fleet_bench: Register %s: %s\n", a.id.c_str(),
                   s.error_message().c_str());
      std::exit(1);
    }
    a.lease = resp.lease_id();
  }
  std::vector<std::unique_ptr<HeldConnect>> streams;
  for (const SimAgent& a : sims)
    streams.push_back(std::make_unique<HeldConnect>(host.get(), a.token, a.lease));

  // Heartbeats: 4 senders, each agent once a second, spread evenly over the second.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sent{0}, failed{0};
  std::vector<std::thread> senders;
  constexpr int kSenders = 4;
  for (int t = 0; t < kSenders; ++t) {
    senders.emplace_back([&, t] {
      absl::Time next = absl::Now();
      while (!stop) {
        for (size_t i = t; i < sims.size() && !stop; i += kSenders) {
          v1::ConnectRequest beat;
          v1::HeartbeatRequest& req = *beat.mutable_heartbeat();
          req.set_lease_id(sims[i].lease);
          req.set_activity(v1::AGENT_ACTIVITY_IDLE);
          if (on_stream) {
            if (!streams[i]->Send(std::move(beat))) ++failed;
          } else {
            v1::HeartbeatResponse resp;
            if (!host->Heartbeat(Ctx(sims[i].token).get(), req, &resp).ok()) ++failed;
          }
          ++sent;
          next += absl::Seconds(1) * kSenders / static_cast<double>(sims.size());
          absl::SleepFor(next - absl::Now());  // pacing the load, not synchronization
        }
      }
    });
  }
  absl::SleepFor(absl::Seconds(3));  // warm-up: every agent has heartbeated a few times
  double cpu0 = CpuSeconds(pid);
  int64_t sent0 = sent;
  absl::Time t0 = absl::Now();
  absl::SleepFor(window);
  double cpu = CpuSeconds(pid) - cpu0;
  double wall = absl::ToDoubleSeconds(absl::Now() - t0);
  int64_t beats = sent - sent0;
  int64_t rss = RssKiB(pid);
  stop = true;
  for (auto& s : senders) s.join();
  int64_t idle = 0;
  {
    v1::ListAgentsRequest req;
    req.add_states(v1::AGENT_STATE_IDLE);
    req.set_page_size(1000);
    for (int pages = 0; pages <= n / 1000 + 1; ++pages) {  // every page
      grpc::ClientContext ctx;
      v1::ListAgentsResponse resp;
      if (!agents->ListAgents(&ctx, req, &resp).ok()) break;
      idle += resp.agents_size();
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
  }
  for (auto& s : streams) s->Close();
  const char* how = on_stream ? "on Connect" : "as calls";
  std::printf(
      "%d agents, 1 Hz heartbeats %s  agentd CPU %.1f%% of a core, RSS %.1f MB "
      "(%.0f heartbeats/s over %.0f s, %lld failed; %lld agents idle at the end)\n",
      n, how, 100 * cpu / wall, rss / 1024.0, static_cast<double>(beats) / wall, wall,
      static_cast<long long>(failed.load()), static_cast<long long>(idle));
  double per_s = static_cast<double>(beats) / wall;
  std::string note = absl::StrCat(static_cast<int64_t>(per_s), " heartbeats/s, ", failed.load(),
                                  " failed, ", idle, " of ", n, " agents idle at the end");
  Report({.bench = "fleet_bench",
          .name = absl::StrCat(n, " agents at 1 Hz ", how, ", agentd CPU"),
          .value = 100 * cpu / wall,
          .unit = "% of a core",
          .budget = n <= 1000 && on_stream ? Budget::ValueAtMost(10) : Budget{},
          .note = note});
  Report({.bench = "fleet_bench",
          .name = absl::StrCat(n, " agents at 1 Hz ", how, ", agentd RSS"),
          .value = rss / 1024.0,
          .unit = "MB",
          .budget = n <= 1000 && on_stream ? Budget::ValueAtMost(100) : Budget{}});
  daemon.Stop(absl::Seconds(60));
}

struct Footprint {
  int64_t rss = -1, pss = -1, anon = -1;
};

// One agentd-agent, registered and idle: its RSS, PSS and anonymous memory in KiB.
Footprint AgentIdle() {
  TempDir dir;
  std::string cfg = dir.Join("one.yaml");
  testing::WriteFile(cfg, R"(
supervision: {heartbeat: {interval: 1s, ttl: 10s}}
agents: []
providers: {local: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models: {m: {provider: local, model: bench}}
roles: {bench: {model: m}}
)");
  Daemon daemon(dir);
  if (!daemon.Start({"--config", cfg})) std::exit(1);
  auto agents = v1::AgentService::NewStub(daemon.UnixChannel());
  {
    grpc::ClientContext ctx;
    v1::StartAgentRequest req;
    req.set_role("bench");
    req.set_agent_id("one");
    v1::StartAgentResponse resp;
    if (!agents->StartAgent(&ctx, req, &resp).ok()) std::exit(1);
  }
  v1::Agent a;
  testing::WaitFor(
      [&] {
        grpc::ClientContext ctx;
        v1::GetAgentRequest req;
        req.set_agent_id("one");
        v1::GetAgentResponse resp;
        agents->GetAgent(&ctx, req, &resp);
        a = resp.agent();
        return a.state() == v1::AGENT_STATE_IDLE && a.has_heartbeat_age();
      },
      absl::Seconds(20));
  auto pid = static_cast<pid_t>(a.pid());
  Footprint f{RssKiB(pid), ProcKiB(pid, "smaps_rollup", "Pss"), ProcKiB(pid, "status", "RssAnon")};
  daemon.Stop();
  return f;
}

// The pm2 daemon's RSS once it is up and idle; -1 without pm2.
int64_t Pm2IdleRssKiB(const std::string& pm2) {
  if (access(pm2.c_str(), X_OK) != 0) return -1;
  TempDir home;
  std::vector<std::string> env = {"PM2_HOME=" + home.path()};
  testing::RunCommand({pm2, "ping"}, absl::Seconds(60), env);
  int64_t pid = 0;
  absl::SimpleAtoi(testing::ReadFileOrEmpty(home.Join("pm2.pid")), &pid);
  int64_t rss = pid > 0 ? RssKiB(static_cast<pid_t>(pid)) : -1;
  testing::RunCommand({pm2, "kill"}, absl::Seconds(60), env);
  return rss;
}

int Main(int argc, char** argv) {
  std::vector<int> sizes = {1000, 10000};
  absl::Duration window = absl::Seconds(10);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      sizes = {200, 1000};
      window = absl::Seconds(3);
    } else if (a == "--agents" && i + 1 < argc) {
      sizes = {std::atoi(argv[++i])};
    }
  }
  std::printf("fleet_bench (%d cores)\n\n", static_cast<int>(std::thread::hardware_concurrency()));
  // Each agent holds up to six descriptors in agentd (pidfd, output pipes, init report,
  // cgroup): 10,000 need more than the usual 1,024 or 20,000. Raised here (agentd
  // inherits it) as far as this process may.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  rlim_t want = static_cast<rlim_t>(*std::max_element(sizes.begin(), sizes.end())) * 6 + 4096;
  if (nofile.rlim_max < want) {
    rlimit raised{want, want};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
  }
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  for (int size : sizes) {
    if (static_cast<rlim_t>(size) * 6 + 1024 > nofile.rlim_cur) {
      // The most this machine's descriptor limit allows, in thousands, instead.
      int fits = static_cast<int>((nofile.rlim_cur - 1024) / 6) / 1000 * 1000;
      std::printf(
          "%d agents: need %d descriptors, the limit is %llu (raising it needs "
          "CAP_SYS_RESOURCE): %d instead\n",
          size, size * 6 + 1024, static_cast<unsigned long long>(nofile.rlim_cur), fits);
      if (fits <= sizes.front()) continue;
      size = fits;
    }
    // The calls as the baseline at the first size, where they keep up.
    if (size == sizes.front()) Fleet(size, window, /*on_stream=*/false);
    Fleet(size, window, /*on_stream=*/true);
  }
  Footprint agent = AgentIdle();
  std::string pm2 = PM2_BINARY;
  int64_t pm2_rss = Pm2IdleRssKiB(pm2);
  std::printf("agent idle RSS         agentd-agent %.1f MB (PSS %.1f MB, anonymous %.1f MB)",
              agent.rss / 1024.0, agent.pss / 1024.0, agent.anon / 1024.0);
  if (pm2_rss > 0) {
    std::printf(" (pm2 daemon idle: %.1f MB; ratio %.2f)", pm2_rss / 1024.0,
                static_cast<double>(agent.rss) / static_cast<double>(pm2_rss));
  } else {
    std::printf(" (pm2 not installed: dev/setup --bench installs it)");
  }
  std::printf("\n");
  Report({.bench = "fleet_bench",
          .name = "agentd-agent idle RSS",
          .value = agent.rss / 1024.0,
          .unit = "MB",
          .baseline = "pm2 daemon idle RSS",
          .baseline_value = pm2_rss > 0 ? pm2_rss / 1024.0 : NAN,
          .budget = Budget::ValueAtMost(15)});
  Report({.bench = "fleet_bench",
          .name = "agentd-agent idle PSS",
          .value = agent.pss / 1024.0,
          .unit = "MB",
          .note = absl::StrCat("anonymous ", agent.anon / 1024.0, " MB")});
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) {
  agentd::ConfigureLockChecks();  // the baselines and clients as agentd's own processes run
  return agentd::bench::Main(argc, argv);
}
