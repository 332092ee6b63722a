// systemd's notify protocol against a datagram socket the test binds, as systemd would.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agentd/v1/system.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
  }
  ~NotifySocket() { close(fd_); }
  // The next datagram, or nullopt after `timeout`.
  std::optional<std::string> Receive(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<size_t>(n));
  }
  // Waits for a datagram containing `what`.
  bool ReceiveContaining(const std::string& what, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      auto m = Receive(deadline - absl::Now());
      if (m && m->find(what) != std::string::npos) return true;
    }
    return false;
  }

 private:
  std::string path_;
  int fd_;
};

TEST(SdNotifyTest, ReadyArrivesOnlyOnceTheSocketAcceptsCalls) {
  TempDir dir;
  NotifySocket notify(dir.Join("notify.sock"));
  Daemon daemon(dir);
  daemon.Spawn({}, {"NOTIFY_SOCKET=" + dir.Join("notify.sock")});
  ASSERT_TRUE(notify.ReceiveContaining("READY=1", absl::Seconds(20))) << daemon.log();
  // At once, a plain connect(2): the socket must exist and be listening already.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", daemon.socket().c_str());
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  EXPECT_EQ(rc, 0) << "connect right after READY=1: " << std::strerror(err);
  // No retry, no wait-for-ready: the very first call must succeed.
  auto stub = v1::SystemService::NewStub(daemon.UnixChannel());
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(false);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetVersionResponse v;
  grpc::Status s = stub->GetVersion(&ctx, v1::GetVersionRequest(), &v);
  EXPECT_TRUE(s.ok()) << s.error_message();
  daemon.Stop();
  // And STOPPING=1 on the way out.
  EXPECT_TRUE(notify.ReceiveContaining("STOPPING=1", absl::Seconds(10)));
}

TEST(SdNotifyTest, WatchdogPingsAtAboutHalfOfWatchdogUsec) {
  TempDir dir;
  NotifySocket notify(dir.Join("notify.sock"));
  Daemon daemon(dir);
  constexpr int64_t kWatchdogUsec = 400000;
  daemon.Spawn({}, {"NOTIFY_SOCKET=" + dir.Join("notify.sock"),
                    "WATCHDOG_USEC=" + std::to_string(kWatchdogUsec)});
  std::vector<absl::Time> pings;
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (pings.size() < 8 && absl::Now() < deadline) {
    auto m = notify.Receive(absl::Seconds(5));
    if (m && m->find("WATCHDOG=1") != std::string::npos) pings.push_back(absl::Now());
  }
  ASSERT_EQ(pings.size(), 8u) << daemon.log();
  std::vector<absl::Duration> gaps;
  // The first ping is sent at start; intervals are measured from the second one on.
  for (size_t i = 2; i < pings.size(); ++i) gaps.push_back(pings[i] - pings[i - 1]);
  std::sort(gaps.begin(), gaps.end());
  absl::Duration median = gaps[gaps.size() / 2];
  EXPECT_GE(median, absl::Microseconds(kWatchdogUsec) * 0.35) << median;
  EXPECT_LE(median, absl::Microseconds(kWatchdogUsec) * 0.65) << median;
}

TEST(SdNotifyTest, NoNotifySocketMeansNoNotifications) {
  // Started by hand: it must still serve (no failure from a missing NOTIFY_SOCKET).
  TempDir dir;
  Daemon daemon(dir);
  EXPECT_TRUE(daemon.Start()) << daemon.log();
}

}  // namespace
}  // namespace agentd::testing
