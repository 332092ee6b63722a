// A gigabyte of agent output while a log follower is frozen: nothing is lost, nothing is
// out of order, and the daemon's memory stays bounded. Real agentd, real flooder process,
// a real `agentctl logs -f` stopped with SIGSTOP.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/helpers/flooder.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

constexpr uint64_t kLines = 10'000'000;  // of 100 bytes: 1 GB
constexpr size_t kLineLen = 100;
constexpr int64_t kRssBoundKiB = 64 << 10;  // the log capture budget: daemon RSS < 64 MB

int64_t StatusKiB(pid_t pid, const std::string& field) {
  std::string status = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/status"));
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, field + ":")) {
      int64_t kib = 0;
      if (absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(line), " kB"), &kib)) {
        return kib;
      }
    }
  }
  return -1;
}

// Counts the lines of a file that another process is appending to, reading only what was
// added since the last call: the test polls it often, and rereading a gigabyte on every
// poll would take the CPU the follower needs to catch up.
class LineCounter {
 public:
  explicit LineCounter(std::string path) : path_(std::move(path)) {}
  ~LineCounter() {
    if (fd_ >= 0) close(fd_);
  }
  LineCounter(const LineCounter&) = delete;
  LineCounter& operator=(const LineCounter&) = delete;

  uint64_t Count() {
    if (fd_ < 0) fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return 0;
    buf_.resize(1 << 20);
    for (ssize_t r; (r = read(fd_, buf_.data(), buf_.size())) > 0;) {
      const char* end = buf_.data() + r;
      for (const char* p = buf_.data();
           (p = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p))));
           ++p) {
        ++lines_;
      }
    }
    return lines_;
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t lines_ = 0;
  std::string buf_;
};

TEST(LogsChaosTest, GigabyteWithAStalledFollowerLosesNothingWithinTheMemoryBound) {
  TempDir dir;
  Daemon daemon(dir);
  WriteFile(dir.Join("agentd.yaml"),
            absl::StrCat(R"(
logs: {segment_bytes: 64MiB, keep_segments: 20, ring_bytes: 4MiB}
agents: []
roles:
  flood: {command: [")",
                         HelperBinary("flooder"), "\", \"", kLines, "\", \"", kLineLen, R"("]}
)"));
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
  Client client = daemon.client();
  grpc::Status started = client.StartAgent("flood", "big");
  ASSERT_TRUE(started.ok()) << started.error_message();
  // A follower that takes the first lines, then freezes while the flood goes on. It runs
  // under nohup: a stopped process whose process group the kernel finds orphaned (the
  // test's group, when the runner gave the test a session of its own and some other member
  // exits) is sent SIGHUP, which would end it silently, a harness artefact.
  Subprocess follower({"nohup", AgentctlBinary(), "--socket", daemon.socket(), "logs", "-f", "big",
                       "--stream", "stdout"},
                      dir.Join("follow.out"), dir.Join("follow.err"));
  ASSERT_TRUE(
      WaitFor([&] { return !ReadFileOrEmpty(dir.Join("follow.out")).empty(); }, absl::Seconds(30)))
      << "the follower got nothing: " << ReadFileOrEmpty(dir.Join("follow.err"));
  follower.Signal(SIGSTOP);

  v1::Agent flood;
  ASSERT_TRUE(WaitForValue([&] { return client.GetAgent("big"); },
                           [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_STOPPED; },
                           absl::Minutes(5), &flood))
      << daemon.log();
  // Exited 0 (a code, not a signal): the flooder was never blocked for good.
  EXPECT_EQ(flood.last_exit().status_case(), v1::AgentExit::kExitCode) << flood.DebugString();
  EXPECT_EQ(flood.last_exit().exit_code(), 0) << flood.DebugString();

  // Every line, once, in order: each is checked against what the flooder wrote.
  auto ctx = Ctx(absl::Minutes(10));
  v1::StreamLogsRequest req;
  req.set_agent_id("big");
  req.add_streams(v1::LOG_STREAM_STDOUT);
  auto reader = client.logs().StreamLogs(ctx.get(), req);
  v1::StreamLogsResponse resp;
  uint64_t next = 0;
  int64_t last_seq = 0;
  std::string expected;
  bool in_order = true;
  while (reader->Read(&resp)) {
    ASSERT_FALSE(resp.has_gap()) << resp.gap().DebugString();
    for (const v1::LogRecord& r : resp.records()) {
      FlooderLine(next, kLineLen - 1, &expected);
      if (r.seq() <= last_seq || r.line() != expected) {
        in_order = false;
        ADD_FAILURE() << "line " << next << " at seq " << r.seq() << ": " << r.line();
        break;
      }
      last_seq = r.seq();
      ++next;
    }
    if (!in_order) break;
  }
  if (in_order) {
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
  } else {
    ctx->TryCancel();
    reader->Finish();
  }
  EXPECT_EQ(next, kLines);

  int64_t peak = StatusKiB(daemon.process()->pid(), "VmHWM");
  ASSERT_GT(peak, 0) << "no VmHWM in /proc/" << daemon.process()->pid() << "/status";
  std::printf("agentd peak RSS while capturing 1 GB with a stalled follower: %.1f MiB\n",
              static_cast<double>(peak) / 1024);
  EXPECT_LT(peak, kRssBoundKiB) << "peak RSS of agentd while capturing 1 GB";

  // Thawed, the follower catches up from disk and misses nothing either.
  follower.Signal(SIGCONT);
  LineCounter followed(dir.Join("follow.out"));
  EXPECT_TRUE(WaitFor([&] { return followed.Count() == kLines; }, absl::Minutes(2)))
      << followed.Count()
      << " lines; the follower's stderr: " << ReadFileOrEmpty(dir.Join("follow.err"))
      << "; its state: " << ReadFileOrEmpty(absl::StrCat("/proc/", follower.pid(), "/stat")) << "; "
      << DescribeWaitStatus(follower.WaitExit(absl::ZeroDuration()));
}

}  // namespace
}  // namespace agentd::testing
