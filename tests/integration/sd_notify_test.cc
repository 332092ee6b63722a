// systemd's notify protocol against a datagram socket the test binds, as systemd would:
// with SO_PASSCRED, so that the sender of every notification is known (systemd's
// default for Type=notify, NotifyAccess=main, drops what any other process sends).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agentd/v1/system.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

struct Datagram {
  std::string text;
  pid_t sender = 0;  // from SCM_CREDENTIALS; 0 when none came
};

class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    int one = 1;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0) {
      ADD_FAILURE() << "cannot bind " << path << ": " << std::strerror(errno);
    }
  }
  ~NotifySocket() { close(fd_); }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  // The next datagram, or nullopt after Scaled(timeout). Each is also kept in seen().
  std::optional<Datagram> Receive(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(Scaled(timeout)))) <= 0) {
      return std::nullopt;
    }
    char buf[4096];
    iovec iov{buf, sizeof(buf)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t n = recvmsg(fd_, &msg, 0);
    if (n < 0) return std::nullopt;
    Datagram d{std::string(buf, static_cast<size_t>(n)), 0};
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        d.sender = cred.pid;
      }
    }
    seen_.push_back(d);
    return d;
  }
  // Waits (Scaled(timeout) at most) for a datagram containing `what`.
  std::optional<Datagram> ReceiveContaining(const std::string& what, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + Scaled(timeout);
    while (absl::Now() < deadline) {
      std::optional<Datagram> m = Receive((deadline - absl::Now()) / TimeScale());
      if (m && m->text.find(what) != std::string::npos) return m;
    }
    return std::nullopt;
  }
  // Every datagram received so far, for failure messages.
  std::string Seen() const {
    std::string out;
    for (const Datagram& d : seen_) absl::StrAppend(&out, "[pid ", d.sender, "] ", d.text, "\n");
    return out;
  }
  const std::vector<Datagram>& seen() const { return seen_; }

 private:
  int fd_ = -1;
  std::vector<Datagram> seen_;
};

TEST(SdNotifyTest, ReadyArrivesOnlyOnceTheSocketAcceptsCalls) {
  TempDir dir;
  NotifySocket notify(dir.Join("notify.sock"));
  Daemon daemon(dir);
  daemon.Spawn({}, {"NOTIFY_SOCKET=" + dir.Join("notify.sock")});
  std::optional<Datagram> ready = notify.ReceiveContaining("READY=1", absl::Seconds(20));
  ASSERT_TRUE(ready.has_value()) << notify.Seen() << daemon.log();
  // From agentd itself, the unit's main process: systemd would drop it from anyone else.
  EXPECT_EQ(ready->sender, daemon.process()->pid());
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
  auto ctx = Ctx(absl::Seconds(5));
  ctx->set_wait_for_ready(false);
  v1::GetVersionResponse v;
  grpc::Status s = daemon.client().system().GetVersion(ctx.get(), v1::GetVersionRequest(), &v);
  EXPECT_TRUE(s.ok()) << s.error_message();
  std::optional<int> st = daemon.Stop();
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(st);
  // And STOPPING=1 on the way out (sent before it exited, so already queued here).
  EXPECT_TRUE(notify.ReceiveContaining("STOPPING=1", absl::Seconds(10)).has_value())
      << notify.Seen();
}

// A timing window: WATCHDOG_USEC is scaled, and the pings must come at about half of it.
TEST(SdNotifyTest, WatchdogPingsAtAboutHalfOfWatchdogUsec) {
  TempDir dir;
  NotifySocket notify(dir.Join("notify.sock"));
  Daemon daemon(dir);
  const absl::Duration watchdog = Scaled(absl::Milliseconds(400));
  daemon.Spawn({}, {"NOTIFY_SOCKET=" + dir.Join("notify.sock"),
                    absl::StrCat("WATCHDOG_USEC=", absl::ToInt64Microseconds(watchdog))});
  std::vector<absl::Time> pings;
  absl::Time deadline = absl::Now() + Scaled(absl::Seconds(30));
  while (pings.size() < 8 && absl::Now() < deadline) {
    std::optional<Datagram> m = notify.Receive(absl::Seconds(5));
    if (m && m->text.find("WATCHDOG=1") != std::string::npos) {
      pings.push_back(absl::Now());
      EXPECT_EQ(m->sender, daemon.process()->pid());
    }
  }
  ASSERT_EQ(pings.size(), 8u) << notify.Seen() << daemon.log();
  std::vector<absl::Duration> gaps;
  // The first ping is sent at start; intervals are measured from the second one on.
  for (size_t i = 2; i < pings.size(); ++i) gaps.push_back(pings[i] - pings[i - 1]);
  std::sort(gaps.begin(), gaps.end());
  absl::Duration median = gaps[gaps.size() / 2];
  EXPECT_GE(median, watchdog * 0.35) << median;
  EXPECT_LE(median, watchdog * 0.65) << median;
}

// The notify socket is agentd's alone. Its agents do not get NOTIFY_SOCKET or the
// watchdog's variables (with NotifyAccess=all an agent could otherwise say READY=1 or
// feed the watchdog for a wedged daemon), and every notification, from READY=1 to
// STOPPING=1, comes from agentd's own pid. This replaces a test that only showed agentd
// starts without NOTIFY_SOCKET, which every other integration test shows (the test
// support unsets it).
TEST(SdNotifyTest, OnlyTheDaemonNotifiesAndItsAgentsGetNoNotifySocket) {
  TempDir dir;
  NotifySocket notify(dir.Join("notify.sock"));
  WriteFile(dir.Join("agentd.yaml"),
            absl::StrCat("roles:\n  sleeper: {command: [\"", HelperBinary("sleeper"),
                         "\"]}\nagents:\n  - {id: notify-1, role: sleeper}\n"));
  Daemon daemon(dir);
  const absl::Duration watchdog = Scaled(absl::Milliseconds(400));
  daemon.Spawn({"--config", dir.Join("agentd.yaml")},
               {"NOTIFY_SOCKET=" + dir.Join("notify.sock"),
                absl::StrCat("WATCHDOG_USEC=", absl::ToInt64Microseconds(watchdog))});
  ASSERT_TRUE(notify.ReceiveContaining("READY=1", absl::Seconds(20)).has_value())
      << notify.Seen() << daemon.log();
  ASSERT_TRUE(daemon.WaitReady()) << daemon.log();
  Client client = daemon.client();
  v1::Agent agent;
  ASSERT_TRUE(WaitForValue(
      [&] { return client.GetAgent("notify-1"); },
      [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_RUNNING && a.pid() > 0; },
      absl::Seconds(10), &agent))
      << daemon.log();
  std::string env = ReadFileOrEmpty(absl::StrCat("/proc/", agent.pid(), "/environ"));
  ASSERT_THAT(env, HasSubstr("AGENTD_AGENT_ID=notify-1")) << "not the agent's environment";
  for (const char* name : {"NOTIFY_SOCKET=", "WATCHDOG_USEC="}) {
    EXPECT_EQ(env.find(name), std::string::npos) << "the agent inherited " << name;
  }
  // A watchdog ping while the agent runs, then the way out.
  EXPECT_TRUE(notify.ReceiveContaining("WATCHDOG=1", absl::Seconds(10)).has_value())
      << notify.Seen();
  std::optional<int> st = daemon.Stop();
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(st);
  EXPECT_TRUE(notify.ReceiveContaining("STOPPING=1", absl::Seconds(10)).has_value())
      << notify.Seen();
  // Nothing else is queued: agentd has exited, and so have its agents.
  while (notify.Receive(absl::ZeroDuration()).has_value()) {
  }
  for (const Datagram& d : notify.seen()) {
    EXPECT_EQ(d.sender, daemon.process()->pid()) << "\"" << d.text << "\" from another process";
  }
}

}  // namespace
}  // namespace agentd::testing
