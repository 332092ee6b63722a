// agentd-desktop, the GTK/WebKitGTK shell, as a person's desktop runs it: a real X server
// (Xvfb), a session D-Bus (dbus-daemon) with a notification service that records what it
// is asked to show (tests/helpers/notify_server), the real agentd and dev/fakellm. PID 1
// is not systemd here, so `systemctl` on the shell's PATH is a script that does what
// systemd would for agentd's user unit (start it detached, stop it, say its MainPID) and
// records every call.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// systemd as agentd's user unit would have it: `start` runs agentd detached from the
// shell (its own session, output to a file), `stop` ends it, `show` answers what the shell
// asks. FAKE_UNIT is "loaded" (the unit is installed) or "not-found".
constexpr char kDesktopFakeSystemctl[] = R"sh(#!/bin/sh
echo "$*" >> "$FAKE_DIR/systemctl.calls"
case "$*" in
  "--user show --property=LoadState --value agentd.service") echo "$FAKE_UNIT" ;;
  "--user show --property=MainPID --value agentd.service")
    if [ -s "$FAKE_DIR/agentd.pid" ]; then cat "$FAKE_DIR/agentd.pid"; else echo 0; fi ;;
  "--user start agentd.service")
    [ "$FAKE_UNIT" = loaded ] || { echo "Unit agentd.service not found." >&2; exit 5; }
    setsid "$FAKE_AGENTD" --config "$FAKE_DIR/agentd.yaml" --socket "$FAKE_SOCKET" \
      >>"$FAKE_DIR/systemd-agentd.log" 2>&1 </dev/null &
    echo $! > "$FAKE_DIR/agentd.pid" ;;
  "--user stop agentd.service")
    [ -s "$FAKE_DIR/agentd.pid" ] && kill -TERM "$(cat "$FAKE_DIR/agentd.pid")"
    : > "$FAKE_DIR/agentd.pid" ;;
  *) echo "fake systemctl: unexpected: $*" >&2; exit 1 ;;
esac
)sh";

constexpr char kDesktopConfig[] = R"(
server: {http: "127.0.0.1:0"}
state_dir: ${STATE}
supervision: {restart_sec: 50ms, stop_timeout: 2s}
providers:
  fake: {kind: openai, base_url: "${URL}/v1"}
models:
  ceo: {provider: fake, model: ceo-m, max_tokens: 100}
  coder: {provider: fake, model: coder-m, max_tokens: 100}
  manager: {provider: fake, model: manager-m, max_tokens: 100}
roles:
  ceo: {model: ceo, prompt: roles/ceo.md, tools: [delegate, complete_task, fail_task], max_instances: 1}
  coder: {model: coder, prompt: roles/coder.md, max_instances: 2,
          tools: [fs.read, fs.write, fs.list, shell.run, complete_task, fail_task]}
  manager: {model: manager, prompt: roles/manager.md,
            tools: [propose_plan, delegate, complete_task, fail_task]}
agents: []
policy:
  shell: {allow: [sh, ls, cat], sandbox: auto}
  plan_approval: manual
)";

// The X server's screen, as Xvfb keeps it in its -fbdir file (XWD format).
struct Screen {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width × height × 3
};

uint32_t Be32(const std::string& d, size_t at) {
  return (uint32_t{static_cast<uint8_t>(d[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(d[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(d[at + 2])} << 8) | static_cast<uint8_t>(d[at + 3]);
}

// The screen, or an empty one when the file is not a 32-bit XWD image.
Screen ReadScreen(const std::string& xwd_file) {
  Screen s;
  std::string d = ReadFileOrEmpty(xwd_file);
  if (d.size() < 100) return s;
  uint32_t header = Be32(d, 0), width = Be32(d, 16), height = Be32(d, 20);
  uint32_t byte_order = Be32(d, 28), bpp = Be32(d, 44), stride = Be32(d, 48);
  uint32_t ncolors = Be32(d, 76);
  size_t pixels = size_t{header} + size_t{ncolors} * 12;
  if (bpp != 32 || width == 0 || height == 0 || stride < width * 4 ||
      d.size() < pixels + size_t{stride} * height) {
    return s;
  }
  s.width = static_cast<int>(width);
  s.height = static_cast<int>(height);
  s.rgb.reserve(size_t{width} * height * 3);
  for (uint32_t y = 0; y < height; ++y) {
    for (uint32_t x = 0; x < width; ++x) {
      const char* p = &d[pixels + size_t{y} * stride + size_t{x} * 4];
      // Pixels are 0x00RRGGBB in the server's byte order.
      auto b = [&](int i) { return static_cast<uint8_t>(p[i]); };
      if (byte_order == 0) {
        s.rgb.insert(s.rgb.end(), {b(2), b(1), b(0)});
      } else {
        s.rgb.insert(s.rgb.end(), {b(1), b(2), b(3)});
      }
    }
  }
  return s;
}

// How much of the screen is not its most common colour, and how many colours it shows:
// a window that drew nothing (or an X server showing nothing) is one colour.
struct Variety {
  double other_share = 0;
  size_t colours = 0;
};
Variety Measure(const Screen& s) {
  std::map<uint32_t, size_t> counts;
  for (size_t i = 0; i + 2 < s.rgb.size(); i += 3) {
    ++counts[(uint32_t{s.rgb[i]} << 16) | (uint32_t{s.rgb[i + 1]} << 8) | s.rgb[i + 2]];
  }
  size_t most = 0, total = s.rgb.size() / 3;
  for (const auto& [c, n] : counts) most = std::max(most, n);
  Variety v;
  v.colours = counts.size();
  v.other_share = total == 0 ? 0 : 1.0 - static_cast<double>(most) / static_cast<double>(total);
  return v;
}

void WritePng(const Screen& s, const std::string& path) {
  std::string raw;
  raw.reserve(s.rgb.size() + static_cast<size_t>(s.height));
  for (int y = 0; y < s.height; ++y) {
    raw.push_back('\0');  // filter: none
    raw.append(reinterpret_cast<const char*>(&s.rgb[static_cast<size_t>(y) * s.width * 3]),
               static_cast<size_t>(s.width) * 3);
  }
  uLongf size = compressBound(raw.size());
  std::string z(size, '\0');
  compress2(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
            raw.size(), 6);
  z.resize(size);
  auto be = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    std::string td = type + data;
    uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(td.data()), td.size());
    return be(static_cast<uint32_t>(data.size())) + td + be(crc);
  };
  std::string ihdr = be(s.width) + be(s.height) + std::string{8, 2, 0, 0, 0};
  std::ofstream out(path, std::ios::binary);
  out << std::string("\x89PNG\r\n\x1a\n", 8) << chunk("IHDR", ihdr) << chunk("IDAT", z)
      << chunk("IEND", "");
}

std::vector<nlohmann::json> JsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(path), '\n', absl::SkipEmpty())) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

int64_t ReadPid(const std::string& path) {
  int64_t pid = 0;
  std::string text = ReadFileOrEmpty(path);
  absl::StripAsciiWhitespace(&text);
  return absl::SimpleAtoi(text, &pid) ? pid : 0;
}

// The parent of process `pid`, from /proc; 0 when it cannot be read.
int64_t ParentOf(int64_t pid) {
  std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(stat.substr(close + 2), ' ');
  int64_t ppid = 0;
  return fields.size() > 1 && absl::SimpleAtoi(fields[1], &ppid) ? ppid : 0;
}

class DesktopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"run", "bin", "home", "fb", "xdg"}) {
      ASSERT_EQ(mkdir(dir_.Join(d).c_str(), 0700), 0) << d;
    }
    ASSERT_NO_FATAL_FAILURE(StartX());
    bus_ = std::make_unique<Subprocess>(
        std::vector<std::string>{"dbus-daemon", "--session", "--nofork", "--nopidfile",
                                 absl::StrCat("--address=unix:path=", dir_.Join("bus"))},
        dir_.Join("dbus.out"), dir_.Join("dbus.err"));
    ASSERT_TRUE(
        WaitFor([&] { return access(dir_.Join("bus").c_str(), F_OK) == 0; }, absl::Seconds(10)))
        << ReadFileOrEmpty(dir_.Join("dbus.err"));
    WriteFile(dir_.Join("bin/systemctl"), kDesktopFakeSystemctl);
    ASSERT_EQ(chmod(dir_.Join("bin/systemctl").c_str(), 0755), 0);
  }

  void TearDown() override {
    // The shell goes first (its child agentd with it, on SIGTERM), then any agentd left:
    // one the fake systemd started is nobody's child, and a failed test may leave the
    // shell's. Each is waited for, so nothing writes into the directory being removed.
    if (shell_ && shell_->running()) {
      shell_->Signal(SIGTERM);
      shell_->WaitExit(absl::Seconds(45));
    }
    for (int64_t pid : {ReadPid(dir_.Join("agentd.pid")), agentd_pid_}) {
      if (pid <= 0 || ProcessGone(pid)) continue;
      kill(static_cast<pid_t>(pid), SIGTERM);
      if (!WaitFor([&] { return ProcessGone(pid); }, absl::Seconds(30))) {
        kill(static_cast<pid_t>(pid), SIGKILL);
      }
    }
  }

  // Xvfb on a display it chooses itself (-displayfd: no race with another server for a
  // number), its screen kept in fb/.
  void StartX() {
    x_ = std::make_unique<Subprocess>(
        std::vector<std::string>{"Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24", "-fbdir",
                                 dir_.Join("fb"), "-nolisten", "tcp"},
        dir_.Join("xvfb.out"), dir_.Join("xvfb.err"));
    std::string number;
    ASSERT_TRUE(WaitFor(
        [&] {
          number = ReadFileOrEmpty(dir_.Join("xvfb.out"));
          return absl::StrContains(number, "\n") || !x_->running();
        },
        absl::Seconds(15)))
        << ReadFileOrEmpty(dir_.Join("xvfb.err"));
    absl::StripAsciiWhitespace(&number);
    ASSERT_TRUE(x_->running() && !number.empty()) << ReadFileOrEmpty(dir_.Join("xvfb.err"));
    display_ = absl::StrCat(":", number);
  }

  void StartNotifier() {
    std::vector<std::string> argv = {HelperBinary("notify_server"), dir_.Join("notify.log")};
    notifier_ =
        std::make_unique<Subprocess>(argv, dir_.Join("notify.out"), dir_.Join("notify.err"), Env());
    ASSERT_TRUE(
        WaitFor([&] { return !JsonLines(dir_.Join("notify.log")).empty(); }, absl::Seconds(10)))
        << ReadFileOrEmpty(dir_.Join("notify.err"));
  }

  void WriteConfig(const std::string& scenario) {
    fake_ = std::make_unique<FakeLlm>(dir_, scenario);
    ASSERT_FALSE(fake_->url().empty()) << fake_->log();
    WriteFile(dir_.Join("agentd.yaml"),
              absl::StrReplaceAll(kDesktopConfig,
                                  {{"${STATE}", dir_.Join("state")}, {"${URL}", fake_->url()}}));
  }

  std::vector<std::string> Env() const {
    const char* path = std::getenv("PATH");
    return {absl::StrCat("DISPLAY=", display_),
            "GDK_BACKEND=x11",
            "NO_AT_BRIDGE=1",
            absl::StrCat("DBUS_SESSION_BUS_ADDRESS=unix:path=", dir_.Join("bus")),
            absl::StrCat("XDG_RUNTIME_DIR=", dir_.Join("run")),
            absl::StrCat("HOME=", dir_.Join("home")),
            absl::StrCat("XDG_CONFIG_HOME=", dir_.Join("xdg")),
            absl::StrCat("XDG_CACHE_HOME=", dir_.Join("xdg")),
            absl::StrCat("XDG_DATA_HOME=", dir_.Join("xdg")),
            absl::StrCat("PATH=", dir_.Join("bin"), ":", path != nullptr ? path : "/usr/bin:/bin"),
            absl::StrCat("FAKE_DIR=", dir_.path()),
            absl::StrCat("FAKE_UNIT=", unit_installed_ ? "loaded" : "not-found"),
            absl::StrCat("FAKE_AGENTD=", AgentdBinary()),
            absl::StrCat("FAKE_SOCKET=", Socket())};
  }

  std::string Socket() const { return dir_.Join("run/agentd/agentd.sock"); }

  // The shell with this test's agentd and config, or (`own_agentd` false) as a person
  // launches it from their desktop: no options, the default socket.
  void LaunchShell(bool own_agentd = true) {
    std::vector<std::string> argv = {AGENTD_DESKTOP_BINARY};
    if (own_agentd) {
      argv.insert(argv.end(), {"--config", dir_.Join("agentd.yaml"), "--agentd", AgentdBinary()});
    }
    // Nothing of the developer's own desktop or agentd reaches the shell.
    shell_ =
        std::make_unique<Subprocess>(argv, dir_.Join("shell.out"), dir_.Join("shell.err"), Env(),
                                     std::vector<std::string>{"WAYLAND_DISPLAY", "AGENTD_SOCKET",
                                                              "AGENTD_ADDR", "AGENTD_TOKEN"});
  }
  std::string ShellLog() const { return ReadFileOrEmpty(dir_.Join("shell.err")); }

  // The pid of the agentd serving on the socket once it serves; 0 when none does in time.
  int64_t WaitServing(absl::Duration timeout = absl::Seconds(30)) {
    int64_t pid = 0;
    WaitFor(
        [&] {
          if (access(Socket().c_str(), F_OK) != 0) return false;
          grpc::Status s;
          v1::GetInfoResponse info = Client(UnixChannelTo(Socket())).GetInfo(&s);
          pid = s.ok() && info.state() == v1::DAEMON_STATE_SERVING ? info.pid() : 0;
          return pid != 0;
        },
        timeout);
    return pid;
  }

  ::testing::AssertionResult ShellSays(const std::string& text,
                                       absl::Duration timeout = absl::Seconds(30)) {
    if (WaitFor([&] { return absl::StrContains(ShellLog(), text); }, timeout)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "the shell never said \"" << text << "\"; its output:\n"
                                         << ShellLog();
  }

  // Waits until the screen shows something (not one colour) and has stopped changing
  // (the same for half a second: the page has finished drawing; a clock on it ticks
  // only once a second), saves it as
  // build/tests/desktop-screenshots/NAME.png, and returns how varied it was.
  Variety Screenshot(const std::string& name) {
    Variety v;
    Screen s;
    std::vector<uint8_t> last;
    absl::Time changed = absl::Now();
    WaitFor(
        [&] {
          s = ReadScreen(dir_.Join("fb/Xvfb_screen0"));
          if (s.rgb != last) {
            last = s.rgb;
            changed = absl::Now();
            return false;
          }
          v = Measure(s);
          return v.other_share > 0.05 && v.colours > 32 &&
                 absl::Now() - changed > absl::Milliseconds(500);
        },
        absl::Seconds(30));
    mkdir(AGENTD_SCREENSHOT_DIR, 0755);
    if (s.width > 0) WritePng(s, absl::StrCat(AGENTD_SCREENSHOT_DIR, "/", name, ".png"));
    return v;
  }

  static std::shared_ptr<grpc::Channel> UnixChannelTo(const std::string& socket) {
    return grpc::CreateChannel(absl::StrCat("unix:", socket), grpc::InsecureChannelCredentials());
  }

  RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {AgentctlBinary(), "--socket", Socket()});
    return RunCommand(args, absl::Seconds(60));
  }

  // What a person's click on notification `id` does: the service's ActionInvoked.
  void Click(const nlohmann::json& id, const std::string& action) {
    RunResult r =
        RunCommand({"gdbus", "call", "--session", "--dest", "org.freedesktop.Notifications",
                    "--object-path", "/org/freedesktop/Notifications", "--method",
                    "agentd.test.Clicker.Click", id.dump(), action},
                   absl::Seconds(10), Env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::vector<std::string> SystemctlCalls() const {
    return absl::StrSplit(ReadFileOrEmpty(dir_.Join("systemctl.calls")), '\n', absl::SkipEmpty());
  }

  // The Notify calls notify_server recorded, oldest first.
  std::vector<nlohmann::json> Notified() const {
    std::vector<nlohmann::json> out;
    for (nlohmann::json& j : JsonLines(dir_.Join("notify.log"))) {
      if (j["event"] == "Notify") out.push_back(std::move(j));
    }
    return out;
  }
  // Waits for the first Notify call and gives it.
  ::testing::AssertionResult FirstNotification(nlohmann::json* out) const {
    if (WaitFor([&] { return !Notified().empty(); }, absl::Seconds(60))) {
      *out = Notified().front();
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "no notification was raised; the shell said:\n"
                                         << ShellLog();
  }
  ::testing::AssertionResult Closed(const nlohmann::json& id) const {
    bool closed = WaitFor(
        [&] {
          for (const nlohmann::json& j : JsonLines(dir_.Join("notify.log"))) {
            if (j["event"] == "CloseNotification" && j["id"] == id) return true;
          }
          return false;
        },
        absl::Seconds(30));
    if (closed) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "notification " << id << " was never closed:\n"
                                         << ReadFileOrEmpty(dir_.Join("notify.log")) << ShellLog();
  }

  TempDir dir_;
  int64_t agentd_pid_ = 0;  // the shell's child agentd, for TearDown
  bool unit_installed_ = false;
  std::string display_;
  std::unique_ptr<Subprocess> x_, bus_, notifier_, shell_;
  std::unique_ptr<FakeLlm> fake_;
};

TEST_F(DesktopTest, StartsAgentdAsItsChildWhenNoneRunsShowsTheOverviewAndStopsItOnClose) {
  ASSERT_NO_FATAL_FAILURE(StartNotifier());
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Scenario("consent_date")));
  ASSERT_FALSE(ProcessGone(x_->pid()));
  LaunchShell();
  int64_t agentd = WaitServing();
  ASSERT_NE(agentd, 0) << ShellLog();
  agentd_pid_ = agentd;
  // Given an agentd and a configuration of its own, the shell runs that agentd as its
  // child, never the user's systemd unit.
  EXPECT_EQ(ParentOf(agentd), shell_->pid());
  EXPECT_THAT(SystemctlCalls(), ::testing::IsEmpty());
  // Logged in by the shell itself: the view shows the UI's overview (its title names the
  // view only once a call with the session cookie has succeeded)…
  ASSERT_TRUE(ShellSays("page: agentd · Overview at http://127.0.0.1:"));
  EXPECT_TRUE(ShellSays(absl::StrCat("agentd is running (pid ", agentd)));
  // …and the login code was never in a URL the view loaded (the shell logs each one).
  EXPECT_THAT(ShellLog(), Not(HasSubstr("code=")));

  Variety v = Screenshot("overview");
  EXPECT_GT(v.other_share, 0.05) << "the screen is nearly one colour";
  EXPECT_GT(v.colours, 32u);

  // Every web session revoked (as when one expires): the UI falls to its login page, and
  // the shell logs it in again by itself.
  RunResult revoke = Ctl({"ui", "--revoke-all"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  ASSERT_TRUE(ShellSays("logging in again: the UI's session ended"));
  EXPECT_TRUE(WaitFor(
      [&] {
        std::string log = ShellLog();
        size_t again = log.find("logging in again");
        return again != std::string::npos &&
               log.find("page: agentd · Overview", again) != std::string::npos;
      },
      absl::Seconds(30)))
      << ShellLog();
  EXPECT_THAT(ShellLog(), Not(HasSubstr("code=")));

  // Closing the shell stops its child agentd, which drains and exits.
  shell_->Signal(SIGTERM);
  std::optional<int> status = shell_->WaitExit(absl::Seconds(30));
  ASSERT_TRUE(status.has_value()) << ShellLog();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << DescribeWaitStatus(status);
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(agentd); }, absl::Seconds(20)));
  EXPECT_THAT(ShellLog(), HasSubstr("agentd exited with status 0"));
}

TEST_F(DesktopTest, AConsentRequestRaisesANotificationAndClickingItOpensTheRequest) {
  ASSERT_NO_FATAL_FAILURE(StartNotifier());
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Scenario("consent_date")));
  LaunchShell();
  agentd_pid_ = WaitServing();
  ASSERT_NE(agentd_pid_, 0) << ShellLog();
  ASSERT_TRUE(ShellSays("page: agentd · Overview"));
  RunResult goal = Ctl({"goal", "Print the date"});
  ASSERT_EQ(goal.exit_code, 0) << goal.err;

  // The coder's `date +%Y` is off the allowlist: agentd asks a person, and the shell asks
  // the desktop to show it.
  nlohmann::json notified;
  ASSERT_TRUE(FirstNotification(&notified));
  EXPECT_EQ(notified["summary"], "agentd: an agent asks for permission");
  EXPECT_THAT(notified["body"].get<std::string>(), HasSubstr("run `date +%Y`"));
  EXPECT_THAT(notified["body"].get<std::string>(), HasSubstr("coder-1"));
  EXPECT_THAT(notified["actions"], ::testing::Contains("default"));

  nlohmann::json consents =
      nlohmann::json::parse(Ctl({"-o", "json", "get", "consents"}).out, nullptr, false);
  ASSERT_EQ(ArraySize(consents, "consentRequests"), 1u) << consents.dump();
  std::string id = consents["consentRequests"][0]["id"];
  // A person clicks the notification: the window opens on that request's dialog.
  EXPECT_THAT(ShellLog(), Not(HasSubstr("opening consent request")));
  ASSERT_NO_FATAL_FAILURE(Click(notified["id"], "default"));
  EXPECT_TRUE(ShellSays(absl::StrCat("opening consent request ", id)));
  EXPECT_TRUE(ShellSays(absl::StrCat("/#/overview?consent=", id)));
  Variety v = Screenshot("consent");
  EXPECT_GT(v.other_share, 0.05);
  RunResult deny = Ctl({"consent", "deny", id, "--reason", "not now"});
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        return absl::StrContains(Ctl({"-o", "json", "describe", "task", "g-1"}).out,
                                 "TASK_STATUS_COMPLETED");
      },
      absl::Seconds(30)));
  // Exactly one notification for the one request, however often agentd reported it.
  size_t notifies = 0;
  for (const nlohmann::json& j : JsonLines(dir_.Join("notify.log")))
    notifies += j["event"] == "Notify";
  EXPECT_EQ(notifies, 1u);
}

TEST_F(DesktopTest, APlanAwaitingApprovalRaisesANotificationThatOpensThePlan) {
  ASSERT_NO_FATAL_FAILURE(StartNotifier());
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Scenario("plan_markup")));
  LaunchShell();
  agentd_pid_ = WaitServing();
  ASSERT_NE(agentd_pid_, 0) << ShellLog();
  ASSERT_TRUE(ShellSays("page: agentd · Overview"));
  RunResult goal = Ctl({"goal", "Write the files"});
  ASSERT_EQ(goal.exit_code, 0) << goal.err;
  nlohmann::json notified;
  ASSERT_TRUE(FirstNotification(&notified));
  EXPECT_EQ(notified["summary"], "agentd: a plan awaits approval");
  EXPECT_THAT(notified["body"].get<std::string>(), HasSubstr("Plan p-1 for goal g-1, 2 steps"));
  // The model's summary, to a server that reads markup: shown as the text it is, never
  // as bold type or a link.
  EXPECT_THAT(notified["body"].get<std::string>(),
              HasSubstr("&lt;b&gt;Urgent&lt;/b&gt; &amp; &lt;a href=&quot;https://evil.example/"))
      << notified.dump();
  EXPECT_THAT(notified["body"].get<std::string>(), Not(HasSubstr("<a")));
  // Its Review button opens the plan (the notification stays until the plan is decided).
  EXPECT_THAT(notified["actions"], ::testing::Contains("app.open-plan::p-1"));
  RunResult open = RunCommand(
      {"gdbus", "call", "--session", "--dest", "agentd.Desktop", "--object-path", "/agentd/Desktop",
       "--method", "org.gtk.Actions.Activate", "open-plan", "[<'p-1'>]", "{}"},
      absl::Seconds(10), Env());
  ASSERT_EQ(open.exit_code, 0) << open.err;
  EXPECT_TRUE(ShellSays("opening plan p-1"));
  EXPECT_TRUE(ShellSays("page: agentd · Plans at http://127.0.0.1:"));
  EXPECT_TRUE(ShellSays("/#/plans/p-1"));
  Screenshot("plan");
  // Approved elsewhere: the notification goes.
  RunResult approve = Ctl({"approve", "p-1"});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_TRUE(Closed(notified["id"]));
}

TEST_F(DesktopTest, ClosingTheShellLeavesASystemdStartedAgentdRunningAndStopStopsIt) {
  unit_installed_ = true;
  ASSERT_NO_FATAL_FAILURE(StartNotifier());
  ASSERT_NO_FATAL_FAILURE(WriteConfig(Scenario("consent_date")));
  // Launched as from the desktop's menu: the user's own agentd, which systemd runs.
  LaunchShell(/*own_agentd=*/false);
  int64_t agentd = WaitServing();
  ASSERT_NE(agentd, 0) << ShellLog() << ReadFileOrEmpty(dir_.Join("systemd-agentd.log"));
  EXPECT_EQ(ReadPid(dir_.Join("agentd.pid")), agentd);
  EXPECT_NE(ParentOf(agentd), shell_->pid());
  EXPECT_THAT(SystemctlCalls(), ::testing::Contains("--user start agentd.service"));
  ASSERT_TRUE(ShellSays("page: agentd · Overview"));
  // A request waits for a person while the shell closes.
  RunResult goal = Ctl({"goal", "Print the date"});
  ASSERT_EQ(goal.exit_code, 0) << goal.err;
  ASSERT_TRUE(WaitFor([&] { return Notified().size() == 1; }, absl::Seconds(60))) << ShellLog();

  shell_->Signal(SIGTERM);
  std::optional<int> status = shell_->WaitExit(absl::Seconds(30));
  ASSERT_TRUE(status.has_value()) << ShellLog();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << DescribeWaitStatus(status);
  // Still there, still serving, and systemd was never asked to stop it.
  EXPECT_EQ(WaitServing(absl::Seconds(5)), agentd);
  EXPECT_THAT(SystemctlCalls(), Not(::testing::Contains("--user stop agentd.service")));

  // A new shell finds it running (starts nothing) and tells of the request still pending
  // (from agentd's list, not the feed: it was made before this shell looked).
  std::rename(dir_.Join("shell.err").c_str(), dir_.Join("shell-1.err").c_str());
  size_t calls_before = SystemctlCalls().size();
  LaunchShell(/*own_agentd=*/false);
  ASSERT_TRUE(ShellSays(absl::StrCat("agentd is running (pid ", agentd)));
  ASSERT_TRUE(WaitFor([&] { return Notified().size() == 2; }, absl::Seconds(30))) << ShellLog();
  nlohmann::json again = Notified()[1];
  EXPECT_EQ(again["summary"], "agentd: an agent asks for permission");
  EXPECT_THAT(again["body"].get<std::string>(), HasSubstr("run `date +%Y`"));
  // Decided elsewhere: the notification is taken back.
  nlohmann::json consents =
      nlohmann::json::parse(Ctl({"-o", "json", "get", "consents"}).out, nullptr, false);
  ASSERT_EQ(ArraySize(consents, "consentRequests"), 1u) << consents.dump();
  RunResult deny = Ctl({"consent", "deny", consents["consentRequests"][0]["id"].get<std::string>(),
                        "--reason", "not now"});
  ASSERT_EQ(deny.exit_code, 0) << deny.err;
  EXPECT_TRUE(Closed(again["id"]));

  // Its Stop (the app.stop action, as the header's button) asks systemd.
  ASSERT_TRUE(ShellSays("page: agentd · Overview"));
  RunResult stop =
      RunCommand({"gdbus", "call", "--session", "--dest", "agentd.Desktop", "--object-path",
                  "/agentd/Desktop", "--method", "org.gtk.Actions.Activate", "stop", "[]", "{}"},
                 absl::Seconds(10), Env());
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(agentd); }, absl::Seconds(30))) << ShellLog();
  std::vector<std::string> calls = SystemctlCalls();
  calls.erase(calls.begin(), calls.begin() + static_cast<ptrdiff_t>(calls_before));
  EXPECT_THAT(calls, Not(::testing::Contains("--user start agentd.service")));
  EXPECT_THAT(calls, ::testing::Contains("--user stop agentd.service"));
  EXPECT_TRUE(ShellSays("stopped agentd.service (systemd)"));
  EXPECT_TRUE(ShellSays("agentd stopped answering"));
}

}  // namespace
}  // namespace agentd::testing
