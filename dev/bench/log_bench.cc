// dev/bench/log_bench: how fast agentd captures an agent's output while a follower reads
// it live, beside baselines measured in the same run.
//
// The same writer runs in every case: tests/helpers/flooder, writing LINES lines of 100
// bytes as fast as its stdout takes them and reporting how long that took. Its stdout is
//   cat           a pipe into `cat > FILE` (what moving the bytes through a pipe costs)
//   supervisord   supervisord's log file (Debian `supervisor`, no rotation, no follower)
//   agentd        agentd's log store, alone, and then with one live follower: a
//                 StreamLogs client in this process reading every record as it comes
// Throughput is bytes / the writer's time: a capture that cannot keep up blocks the
// writer, so the writer's time is the capture's. For agentd the bench also reports when
// the follower had every line, checks that it got every line (count), and agentd's peak
// RSS (VmHWM) over the run.
//
//   log_bench [--quick]     1 GB, or 200 MB with --quick
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "dev/bench/bench_util.h"
#include "tests/support/daemon.h"

namespace agentd::bench {
namespace {

using testing::Daemon;
using testing::Subprocess;
using testing::TempDir;

constexpr int kLineLen = 100;

// The seconds in "flooder: wrote B bytes in S s" within `text`; -1 when absent.
double FlooderSeconds(const std::string& text) {
  size_t at = text.find("flooder: wrote ");
  if (at == std::string::npos) return -1;
  size_t in = text.find(" in ", at);
  size_t s = text.find(" s", in + 4);
  double secs = -1;
  if (in == std::string::npos || s == std::string::npos ||
      !absl::SimpleAtod(text.substr(in + 4, s - in - 4), &secs)) {
    return -1;
  }
  return secs;
}

double CatSeconds(const TempDir& dir, uint64_t lines) {
  testing::RunResult r =
      testing::RunCommand({"/bin/sh", "-c",
                           absl::StrCat(testing::HelperBinary("flooder"), " ", lines, " ", kLineLen,
                                        " --report | cat > ", dir.Join("cat.out"))},
                          absl::Minutes(10));
  unlink(dir.Join("cat.out").c_str());
  return FlooderSeconds(r.err);
}

struct SupervisordResult {
  double seconds = -1;
  int64_t peak_kib = -1;
};

SupervisordResult SupervisordSeconds(const TempDir& dir, uint64_t lines) {
  SupervisordResult out;
  if (access("/usr/bin/supervisord", X_OK) != 0) return out;
  std::string conf = dir.Join("svlog.conf");
  std::string log = dir.Join("flood.log"), err = dir.Join("flood.err");
  testing::WriteFile(
      conf, absl::StrCat("[supervisord]\nnodaemon=true\nlogfile=", dir.Join("svlog.log"),
                         "\npidfile=", dir.Join("svlog.pid"),
                         "\n[unix_http_server]\nfile=", dir.Join("svlog.sock"),
                         "\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                         "supervisor.rpcinterface:make_main_rpcinterface\n[program:flood]\n",
                         "command=", testing::HelperBinary("flooder"), " ", lines, " ", kLineLen,
                         " --report\nautostart=true\nautorestart=false\nstartsecs=0\n",
                         "stdout_logfile=", log, "\nstdout_logfile_maxbytes=0\n",
                         "stderr_logfile=", err, "\nstderr_logfile_maxbytes=0\n"));
  Subprocess sv({"/usr/bin/supervisord", "-c", conf}, "/dev/null", dir.Join("svlog.err"));
  testing::WaitFor([&] { return FlooderSeconds(testing::ReadFileOrEmpty(err)) >= 0; },
                   absl::Minutes(10));
  out.seconds = FlooderSeconds(testing::ReadFileOrEmpty(err));
  out.peak_kib = PeakRssKiB(sv.pid());
  sv.Signal(SIGTERM);
  sv.WaitExit(absl::Seconds(20));
  unlink(log.c_str());
  return out;
}

struct AgentdResult {
  double writer_seconds = -1;    // the flooder's own time
  double follower_seconds = -1;  // from start until the follower had every line
  uint64_t followed_lines = 0;
  int64_t peak_kib = -1;
};

AgentdResult AgentdSeconds(uint64_t lines, bool follow) {
  AgentdResult out;
  TempDir dir;
  std::string cfg = dir.Join("logs.yaml");
  testing::WriteFile(cfg, absl::StrCat(R"(
logs: {segment_bytes: 64MiB, keep_segments: 32, ring_bytes: 4MiB}
agents: []
roles:
  flood: {command: [")",
                                       testing::HelperBinary("flooder"), "\", \"", lines, "\", \"",
                                       kLineLen, "\", \"--report\"]}\n"));
  Daemon daemon(dir);
  if (!daemon.Start({"--config", cfg})) {
    std::fprintf(stderr, "log_bench: agentd did not start:\n%s\n", daemon.log().c_str());
    std::exit(1);
  }
  auto agents = v1::AgentService::NewStub(daemon.UnixChannel());
  auto logs = v1::LogService::NewStub(daemon.UnixChannel());
  absl::Time t0 = absl::Now();
  {
    grpc::ClientContext ctx;
    v1::StartAgentRequest req;
    req.set_role("flood");
    req.set_agent_id("flood");
    v1::StartAgentResponse resp;
    if (!agents->StartAgent(&ctx, req, &resp).ok()) std::exit(1);
  }
  std::atomic<uint64_t> followed{0};
  grpc::ClientContext follow_ctx;
  std::thread follower([&] {
    if (!follow) return;
    v1::StreamLogsRequest req;
    req.set_agent_id("flood");
    req.set_follow(true);
    req.add_streams(v1::LOG_STREAM_STDOUT);
    auto reader = logs->StreamLogs(&follow_ctx, req);
    v1::StreamLogsResponse resp;
    while (reader->Read(&resp)) {
      followed += static_cast<uint64_t>(resp.records_size());
      if (followed >= lines) {
        out.follower_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
        break;
      }
    }
    follow_ctx.TryCancel();
    reader->Finish();
  });
  // The writer's report arrives on its stderr, i.e. in its log.
  auto report = [&] {
    grpc::ClientContext ctx;
    v1::StreamLogsRequest req;
    req.set_agent_id("flood");
    req.add_streams(v1::LOG_STREAM_STDERR);
    auto reader = logs->StreamLogs(&ctx, req);
    v1::StreamLogsResponse resp;
    std::string text;
    while (reader->Read(&resp)) {
      for (const auto& r : resp.records()) absl::StrAppend(&text, r.line(), "\n");
    }
    reader->Finish();
    return FlooderSeconds(text);
  };
  testing::WaitFor([&] { return report() >= 0; }, absl::Minutes(10));
  out.writer_seconds = report();
  if (follow) testing::WaitFor([&] { return followed >= lines; }, absl::Minutes(5));
  follow_ctx.TryCancel();
  follower.join();
  out.followed_lines = followed;
  out.peak_kib = PeakRssKiB(daemon.process()->pid());
  daemon.Stop();
  return out;
}

int Main(int argc, char** argv) {
  uint64_t lines = 10'000'000;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") lines = 2'000'000;
  }
  double mb = static_cast<double>(lines * kLineLen) / 1e6;
  TempDir dir;
  std::printf("log_bench (%d cores): %.0f MB of %d-byte lines\n\n",
              static_cast<int>(std::thread::hardware_concurrency()), mb, kLineLen);
  double cat = CatSeconds(dir, lines);
  SupervisordResult sv = SupervisordSeconds(dir, lines);
  AgentdResult alone = AgentdSeconds(lines, false);
  AgentdResult ad = AgentdSeconds(lines, true);
  std::printf("cat through a pipe     %7.0f MB/s\n", mb / cat);
  if (sv.seconds > 0) {
    std::printf("supervisord, no reader %7.0f MB/s, peak RSS %.1f MB\n", mb / sv.seconds,
                sv.peak_kib / 1024.0);
  }
  std::printf("agentd, no reader      %7.0f MB/s, peak RSS %.1f MB\n", mb / alone.writer_seconds,
              alone.peak_kib / 1024.0);
  std::printf(
      "agentd, 1 live reader  %7.0f MB/s, peak RSS %.1f MB; the reader had all %llu lines "
      "%.2f s after the start (%s)\n",
      mb / ad.writer_seconds, ad.peak_kib / 1024.0,
      static_cast<unsigned long long>(ad.followed_lines), ad.follower_seconds,
      ad.followed_lines == lines ? "none missing" : "LINES MISSING");
  std::printf("ratios                 agentd/cat %.2f", cat / ad.writer_seconds);
  if (sv.seconds > 0) std::printf(", agentd/supervisord %.2f", sv.seconds / ad.writer_seconds);
  std::printf(" (throughput; > 1 is faster)\n");
  Report({.bench = "log_bench",
          .name = "1 GB captured, one live follower",
          .value = mb / ad.writer_seconds,
          .unit = "MB/s",
          .baseline = "supervisord, no follower",
          .baseline_value = sv.seconds > 0 ? mb / sv.seconds : NAN,
          .budget = Budget::RatioAtLeast(1.0),
          .note = absl::StrCat("cat through a pipe ", static_cast<int>(mb / cat), " MB/s")});
  Report({.bench = "log_bench",
          .name = "lines the follower missed",
          .value = static_cast<double>(lines - ad.followed_lines),
          .unit = "lines",
          .budget = Budget::ValueAtMost(0)});
  Report({.bench = "log_bench",
          .name = "agentd peak RSS, one live follower",
          .value = ad.peak_kib / 1024.0,
          .unit = "MB",
          .baseline = "supervisord, no follower",
          .baseline_value = sv.seconds > 0 ? sv.peak_kib / 1024.0 : NAN,
          .budget = Budget::ValueAtMost(64)});
  return ad.followed_lines == lines ? 0 : 1;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) { return agentd::bench::Main(argc, argv); }
