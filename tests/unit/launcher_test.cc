// LocalLauncher with real child processes (manager/core/launcher.h): what a program that
// is PID 1 of its own namespace is handed at birth.
#include "manager/core/launcher.h"

#include <signal.h>

#include <optional>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace agentd {
namespace {

// A stop that reaches an agent while it is still loading (before it waits for the
// signal) must not be lost: as PID 1 of its namespace with no handler yet, the signal
// would be discarded and the stop would sit out stop_timeout. The program here takes a
// while before it installs its handler and unblocks SIGTERM, as a slow loader would.
TEST(LauncherTest, ASigtermSentBeforeAPid1ProgramHandlesItIsDeliveredOnceItDoes) {
  LaunchSpec spec;
  spec.isolation.enabled = true;
  spec.isolation.own_pids = true;
  if (absl::Status s = LocalLauncher::ProbeIsolation(spec.isolation); !s.ok()) {
    GTEST_SKIP() << "namespaces do not work here: " << s;
  }
  absl::Mutex mu;
  std::optional<ExitStatus> exited;
  LocalLauncher launcher([&](ProcessId, ExitStatus status) {
    absl::MutexLock lock(&mu);
    exited = status;
  });
  spec.argv = {"/usr/bin/python3", "-c",
               "import signal, sys, time\n"
               "time.sleep(0.5)\n"
               "signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
               "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})\n"
               "time.sleep(120)\n"
               "sys.exit(4)\n"};
  spec.env = {"PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"};
  absl::StatusOr<ProcessId> id = launcher.Start(spec);
  ASSERT_TRUE(id.ok()) << id.status();
  launcher.SignalGroup(*id, SIGTERM);

  absl::MutexLock lock(&mu);
  auto done = [&] { return exited.has_value(); };
  if (!mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(60))) {
    launcher.SignalGroup(*id, SIGKILL);
    mu.Await(absl::Condition(&done));
    FAIL() << "the SIGTERM was lost: the program ran on until killed";
  }
  EXPECT_EQ(exited->exit_code, 3) << exited->ToString();
}

// TryIsolated runs a program as an isolated agent would run, and says how it ended: what
// agentd uses to try the tools' sandbox once for all its agents.
TEST(LauncherTest, TryIsolatedRunsAProgramUnderTheIsolationAndSaysHowItEnded) {
  LaunchSpec::Isolation isolation;
  isolation.enabled = true;
  isolation.own_pids = true;
  if (absl::Status s = LocalLauncher::ProbeIsolation(isolation); !s.ok()) {
    GTEST_SKIP() << "namespaces do not work here: " << s;
  }
  const std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  EXPECT_TRUE(LocalLauncher::TryIsolated(isolation, {"/bin/true"}, env).ok());
  absl::Status failed = LocalLauncher::TryIsolated(isolation, {"/bin/false"}, env);
  EXPECT_EQ(failed.code(), absl::StatusCode::kFailedPrecondition) << failed;
  EXPECT_NE(failed.message().find("exited with code 1"), std::string::npos) << failed;
  absl::Status missing = LocalLauncher::TryIsolated(isolation, {"/nonexistent/program"}, env);
  EXPECT_NE(missing.message().find("cannot execute /nonexistent/program"), std::string::npos)
      << missing;
  EXPECT_EQ(LocalLauncher::TryIsolated(isolation, {"true"}, env).code(),
            absl::StatusCode::kInvalidArgument);
  // It runs isolated: PID 1 of its own namespace, with the environment it was given and
  // none of agentd's descriptors beyond the standard three (on /dev/null).
  EXPECT_TRUE(LocalLauncher::TryIsolated(
                  isolation,
                  {"/bin/sh", "-c",
                   "test \"$$\" = 1 && test \"$PATH\" = /usr/bin:/bin && test -z \"$HOME\" && "
                   "test \"$(ls /proc/self/fd | wc -l)\" -le 4"},
                  env)
                  .ok());
  // What it runs is the isolation's: a hidden directory is empty inside.
  isolation.hide = {"/etc"};
  EXPECT_FALSE(
      LocalLauncher::TryIsolated(isolation, {"/bin/sh", "-c", "test -e /etc/passwd"}, env).ok());
  EXPECT_TRUE(
      LocalLauncher::TryIsolated(isolation, {"/bin/sh", "-c", "test ! -e /etc/passwd"}, env).ok());
}

}  // namespace
}  // namespace agentd
