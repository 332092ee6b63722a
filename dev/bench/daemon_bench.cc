// dev/bench/daemon_bench: agentd's start-up, idle memory and unary RPC throughput, each
// beside a baseline measured in the same run.
//
//   start → READY    median of N starts of agentd (READY=1 over a NOTIFY_SOCKET the bench
//                    binds), beside spawning and reaping /bin/true (the cost of a process)
//   idle RSS         agentd's VmRSS once serving, beside supervisord's (Debian
//                    `supervisor`) when it is installed
//   spawn/stop 100   100 agentd-agent processes started through StartAgent until all have
//                    registered, then stopped until all have exited, beside supervisord
//                    starting and stopping 100 programs (`supervisorctl start all`, with
//                    startsecs=0 so it does not wait a second per program)
//   unary RPC        SystemService.GetInfo over the unix socket with 1 and 8 client
//                    threads, beside a raw gRPC callback server built into this bench,
//                    serving the same method with a canned response on its own unix
//                    socket. It runs in a child forked before any gRPC state exists, so
//                    that, like agentd, it does not share a process with the clients.
//                    Runs alternate (baseline, agentd, …) and the median of the rounds is
//                    reported, to keep the machine's noise in both.
//
//   daemon_bench [--quick]      all of the above (--quick: fewer starts and rounds)
//   daemon_bench --spawn-only   only spawn/stop 100, and no report: a run to profile
//                               (perf record -a -g -- daemon_bench --spawn-only)
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/lock_checks.h"
#include "dev/bench/bench_util.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server_builder.h"
#include "tests/support/daemon.h"

namespace agentd::bench {
namespace {

using testing::Daemon;
using testing::Subprocess;
using testing::TempDir;

// The baseline: the same service and method, answered inline with a canned response.
class RawSystemService final : public v1::SystemService::CallbackService {
 public:
  RawSystemService() {
    canned_.mutable_version()->set_version("0.0.0");
    canned_.set_pid(getpid());
    canned_.mutable_paths()->set_socket("/tmp/baseline.sock");
    canned_.mutable_paths()->set_state_dir("/tmp/baseline");
    canned_.mutable_paths()->set_database("/tmp/baseline/agentd.db");
  }
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx, const v1::GetInfoRequest*,
                                    v1::GetInfoResponse* resp) override {
    *resp = canned_;
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  v1::GetInfoResponse canned_;
};

// Calls GetInfo from `threads` threads (one channel each) for `duration`; returns calls/s.
double MeasureQps(const std::string& socket, int threads, absl::Duration duration) {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < threads; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("agentd.bench.channel", i);  // distinct args: one connection per thread
    channels.push_back(
        grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args));
  }
  std::atomic<int64_t> calls{0};
  std::atomic<bool> failed{false};
  absl::Time start = absl::Now();
  absl::Time end = start + duration;
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] {
      auto stub = v1::SystemService::NewStub(channels[i]);
      int64_t n = 0;
      while (absl::Now() < end) {
        grpc::ClientContext ctx;
        v1::GetInfoResponse resp;
        if (!stub->GetInfo(&ctx, v1::GetInfoRequest(), &resp).ok()) {
          failed = true;
          return;
        }
        ++n;
      }
      calls += n;
    });
  }
  for (auto& w : workers) w.join();
  if (failed) {
    std::fprintf(stderr, "daemon_bench: a GetInfo call failed on %s\n", socket.c_str());
    std::exit(1);
  }
  return static_cast<double>(calls.load()) / absl::ToDoubleSeconds(absl::Now() - start);
}

double StartToReadyMs(const TempDir& dir, int i) {
  NotifySocket notify(dir.Join(absl::StrCat("n", i, ".sock")));
  absl::Time t0 = absl::Now();
  Subprocess p({testing::AgentdBinary(), "--state-dir", dir.Join(absl::StrCat("s", i)), "--socket",
                dir.Join(absl::StrCat("r", i, ".sock")), "--http", ""},
               "/dev/null", "/dev/null", {notify.Env()});
  double ms = absl::ToDoubleMilliseconds(notify.ReadyAfter(t0, absl::Seconds(10)));
  p.Signal(SIGTERM);
  p.WaitExit(absl::Seconds(10));
  return ms;
}

double SpawnTrueMs() {
  absl::Time t0 = absl::Now();
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/true", "true", nullptr);
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return absl::ToDoubleMilliseconds(absl::Now() - t0);
}

// Runs the baseline server in a child process until SIGTERM. Call before any gRPC use.
pid_t StartRawServer(const std::string& socket) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  RawSystemService raw;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&raw);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);
  int sig = 0;
  sigwait(&term, &sig);
  server->Shutdown();
  _exit(0);
}

int64_t SupervisordIdleRssKiB(const TempDir& dir) {
  if (access("/usr/bin/supervisord", X_OK) != 0) return -1;
  std::string conf = dir.Join("supervisord.conf");
  testing::WriteFile(conf, absl::StrCat("[supervisord]\nnodaemon=true\nlogfile=",
                                        dir.Join("sv.log"), "\npidfile=", dir.Join("sv.pid"),
                                        "\n[unix_http_server]\nfile=", dir.Join("sv.sock"), "\n"));
  Subprocess p({"/usr/bin/supervisord", "-c", conf}, "/dev/null", dir.Join("sv.err"));
  // Up once it has bound its control socket.
  testing::WaitFor([&] { return access(dir.Join("sv.sock").c_str(), F_OK) == 0; },
                   absl::Seconds(20));
  int64_t rss = RssKiB(p.pid());
  p.Signal(SIGTERM);
  p.WaitExit(absl::Seconds(10));
  return rss;
}

// Seconds for agentd to have `n` agents registered, then all stopped.
std::pair<double, double> SpawnAndStopAgents(const TempDir& dir, int n) {
  std::string cfg = dir.Join("spawn.yaml");
  testing::WriteFile(cfg, absl::StrCat(R"(
supervision: {heartbeat: {interval: 1s, ttl: 10s}, stop_timeout: 10s}
agents: []
providers: {local: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models: {m: {provider: local, model: bench}}
roles: {bench: {model: m, max_instances: )",
                                       n, "}}\n"));
  TempDir sub;
  Daemon daemon(sub);
  if (!daemon.Start({"--config", cfg})) {
    std::fprintf(stderr, "daemon_bench: agentd did not start:\n%s\n", daemon.log().c_str());
    std::exit(1);
  }
  auto stub = v1::AgentService::NewStub(daemon.UnixChannel());
  auto count = [&](v1::AgentState state) {
    grpc::ClientContext ctx;
    v1::ListAgentsRequest req;
    req.add_states(state);
    v1::ListAgentsResponse resp;
    stub->ListAgents(&ctx, req, &resp);
    return resp.agents_size();
  };
  absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext ctx;
    v1::StartAgentRequest req;
    req.set_role("bench");
    v1::StartAgentResponse resp;
    if (!stub->StartAgent(&ctx, req, &resp).ok()) std::exit(1);
  }
  testing::WaitFor([&] { return count(v1::AGENT_STATE_IDLE) == n; }, absl::Seconds(120));
  double up = absl::ToDoubleSeconds(absl::Now() - t0);
  absl::Time t1 = absl::Now();
  for (int i = 1; i <= n; ++i) {
    grpc::ClientContext ctx;
    v1::StopAgentRequest req;
    req.set_agent_id(absl::StrCat("bench-", i));
    v1::StopAgentResponse resp;
    stub->StopAgent(&ctx, req, &resp);
  }
  testing::WaitFor([&] { return count(v1::AGENT_STATE_STOPPED) == n; }, absl::Seconds(120));
  double down = absl::ToDoubleSeconds(absl::Now() - t1);
  daemon.Stop();
  return {up, down};
}

// The same with supervisord: -1 when it is not installed.
std::pair<double, double> SupervisordSpawnAndStop(const TempDir& dir, int n) {
  if (access("/usr/bin/supervisord", X_OK) != 0) return {-1, -1};
  std::string conf = dir.Join("sv100.conf");
  std::string text = absl::StrCat("[supervisord]\nnodaemon=true\nlogfile=", dir.Join("sv100.log"),
                                  "\npidfile=", dir.Join("sv100.pid"),
                                  "\n[unix_http_server]\nfile=", dir.Join("sv100.sock"),
                                  "\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                                  "supervisor.rpcinterface:make_main_rpcinterface\n"
                                  "[supervisorctl]\nserverurl=unix://",
                                  dir.Join("sv100.sock"), "\n");
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&text, "[program:p", i, "]\ncommand=/bin/sleep 1000\nautostart=false\n",
                    "startsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n");
  }
  testing::WriteFile(conf, text);
  Subprocess sv({"/usr/bin/supervisord", "-c", conf}, "/dev/null", dir.Join("sv100.err"));
  auto ctl = [&](const char* verb) {
    return testing::RunCommand({"/usr/bin/supervisorctl", "-c", conf, verb, "all"},
                               absl::Seconds(120));
  };
  testing::WaitFor(
      [&] {
        return ctl("status").exit_code >= 0 && access(dir.Join("sv100.sock").c_str(), F_OK) == 0;
      },
      absl::Seconds(20));
  absl::Time t0 = absl::Now();
  ctl("start");
  double up = absl::ToDoubleSeconds(absl::Now() - t0);
  absl::Time t1 = absl::Now();
  ctl("stop");
  double down = absl::ToDoubleSeconds(absl::Now() - t1);
  sv.Signal(SIGTERM);
  sv.WaitExit(absl::Seconds(20));
  return {up, down};
}

int Main(int argc, char** argv) {
  int starts = 20, rounds = 3;
  absl::Duration run = absl::Seconds(2);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--spawn-only") {  // for profiling the spawn path alone
      TempDir dir;
      auto [up, down] = SpawnAndStopAgents(dir, 100);
      std::printf("100 agents registered  %.2f s, stopped %.2f s\n", up, down);
      return 0;
    }
    if (a == "--quick") {
      starts = 5;
      rounds = 1;
      run = absl::Milliseconds(500);
    }
  }
  TempDir dir;
  std::string raw_socket = dir.Join("raw.sock");
  pid_t raw_pid = StartRawServer(raw_socket);
  std::printf("daemon_bench (%d cores)\n\n", static_cast<int>(std::thread::hardware_concurrency()));

  std::vector<double> ready, spawn;
  for (int i = 0; i < starts; ++i) {
    ready.push_back(StartToReadyMs(dir, i));
    spawn.push_back(SpawnTrueMs());
  }
  std::printf(
      "start -> READY=1       median %7.2f ms over %d starts (baseline: spawn+reap "
      "/bin/true %.2f ms; ratio %.1fx)\n",
      Median(ready), starts, Median(spawn), Median(ready) / Median(spawn));
  Report({.bench = "daemon_bench",
          .name = "start to READY=1",
          .value = Median(ready),
          .unit = "ms",
          .baseline = "spawn+reap /bin/true",
          .baseline_value = Median(spawn),
          .note = absl::StrCat("median of ", starts, " starts")});

  Daemon daemon(dir);
  if (!daemon.Start()) {
    std::fprintf(stderr, "daemon_bench: agentd did not start:\n%s\n", daemon.log().c_str());
    return 1;
  }
  int64_t rss = RssKiB(daemon.process()->pid());
  int64_t anon = ProcKiB(daemon.process()->pid(), "status", "RssAnon");
  int64_t pss = ProcKiB(daemon.process()->pid(), "smaps_rollup", "Pss");
  int64_t sv = SupervisordIdleRssKiB(dir);
  Report({.bench = "daemon_bench",
          .name = "agentd idle RSS",
          .value = rss / 1024.0,
          .unit = "MB",
          .baseline = "supervisord idle RSS",
          .baseline_value = sv > 0 ? sv / 1024.0 : NAN,
          .budget = Budget::ValueAtMost(20)});
  Report({.bench = "daemon_bench",
          .name = "agentd idle PSS",
          .value = pss / 1024.0,
          .unit = "MB",
          .note = absl::StrCat("anonymous ", anon / 1024.0, " MB")});
  if (sv > 0) {
    std::printf(
        "idle RSS               agentd %.1f MB (of it anonymous %.1f MB; PSS %.1f MB) "
        "(baseline: supervisord %.1f MB; ratio %.2f)\n",
        rss / 1024.0, anon / 1024.0, pss / 1024.0, sv / 1024.0, static_cast<double>(rss) / sv);
  } else {
    std::printf("idle RSS               agentd %.1f MB (supervisord not installed: no baseline)\n",
                rss / 1024.0);
  }

  testing::WaitFor([&] { return access(raw_socket.c_str(), F_OK) == 0; }, absl::Seconds(20));

  for (int threads : {1, 8}) {
    std::vector<double> base, ours;
    for (int r = 0; r < rounds; ++r) {
      base.push_back(MeasureQps(raw_socket, threads, run));
      ours.push_back(MeasureQps(daemon.socket(), threads, run));
    }
    std::printf(
        "GetInfo, %d thread%s     agentd %8.0f calls/s, raw callback server %8.0f "
        "calls/s: ratio %.2f (median of %d rounds of %s)\n",
        threads, threads == 1 ? " " : "s", Median(ours), Median(base), Median(ours) / Median(base),
        rounds, absl::FormatDuration(run).c_str());
    Report({.bench = "daemon_bench",
            .name = absl::StrCat("GetInfo, ", threads, " client thread", threads == 1 ? "" : "s"),
            .value = Median(ours),
            .unit = "calls/s",
            .baseline = "raw gRPC callback server",
            .baseline_value = Median(base),
            .budget = Budget::RatioAtLeast(0.8),
            .note = absl::StrCat("median of ", rounds, " rounds")});
  }
  int64_t rss_after = RssKiB(daemon.process()->pid());
  std::printf("agentd RSS after load  %.1f MB\n", rss_after / 1024.0);
  kill(raw_pid, SIGTERM);
  waitpid(raw_pid, nullptr, 0);
  raw_pid = -1;
  daemon.Stop();

  auto [up, down] = SpawnAndStopAgents(dir, 100);
  auto [sv_up, sv_down] = SupervisordSpawnAndStop(dir, 100);
  Report({.bench = "daemon_bench",
          .name = "100 agents spawned to registered",
          .value = up,
          .unit = "s",
          .baseline = "supervisord starting 100 programs",
          .baseline_value = sv_up >= 0 ? sv_up : NAN,
          .budget = Budget::ValueAtMost(0.5)});
  Report({.bench = "daemon_bench",
          .name = "100 agents stopped",
          .value = down,
          .unit = "s",
          .baseline = "supervisord stopping 100 programs",
          .baseline_value = sv_down >= 0 ? sv_down : NAN});
  if (sv_up >= 0) {
    std::printf(
        "100 agents registered  %.2f s (supervisord starting 100 programs: %.2f s; "
        "ratio %.2f)\n",
        up, sv_up, up / sv_up);
    std::printf(
        "100 agents stopped     %.2f s (supervisord stopping 100 programs: %.2f s; "
        "ratio %.2f)\n",
        down, sv_down, down / sv_down);
  } else {
    std::printf("100 agents registered  %.2f s, stopped %.2f s (no supervisord baseline)\n", up,
                down);
  }
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) {
  agentd::ConfigureLockChecks();  // the baselines and clients as agentd's own processes run
  return agentd::bench::Main(argc, argv);
}
