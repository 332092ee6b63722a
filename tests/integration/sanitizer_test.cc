// The sanitizer stage sees inside every process a test starts: a report from an agent
// (which agentd restarts, and whose stderr lives in agentd's log store) or from agentd
// itself fails the test that started it, and so does a daemon that does not exit 0.
// The fault tests are built into the sanitizer build only, where agentd-agent injects the
// fault a test asks for (AGENTD_TEST_FAULTS).
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// The failures the test support recorded while `body` ran, instead of failing this test.
template <typename Body>
std::vector<std::string> FailuresOf(Body body) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS, &results);
    body();
  }
  std::vector<std::string> failures;
  for (int i = 0; i < results.size(); ++i) {
    if (results.GetTestPartResult(i).failed()) {
      failures.push_back(results.GetTestPartResult(i).message());
    }
  }
  return failures;
}

#ifdef AGENTD_SANITIZER_BUILD
// A daemon whose always-on agent f1 runs agentd-agent with AGENTD_AGENT_FAULT=`fault`.
// Its provider is never called: the fault comes before any work.
std::string FaultyConfig(const std::string& fault) {
  return absl::StrCat(R"(
supervision:
  restart_sec: 50ms
  crash_loop: {max: 3, window: 1m}
  stop_timeout: 5s
providers:
  none: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  m: {provider: none, model: m}
roles:
  faulty: {model: m, env: ["AGENTD_AGENT_FAULT=)",
                      fault, R"("]}
agents: [{id: f1, role: faulty}]
)");
}

TEST(TestSupportTest, AnOutOfBoundsReadInAnAgentFailsTheTestWithTheReport) {
  std::vector<std::string> failures = FailuresOf([] {
    TempDir dir;
    WriteFile(dir.Join("agentd.yaml"), FaultyConfig("heap-overflow"));
    Daemon daemon(dir);
    ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
    // agentd restarts the agent after each abort, until its crash-loop breaker trips.
    ASSERT_TRUE(
        WaitFor([&] { return daemon.client().GetAgent("f1").state() == v1::AGENT_STATE_FAILED; },
                absl::Seconds(60)));
  });
  ASSERT_FALSE(failures.empty()) << "an agent's heap overflow passed unseen";
  EXPECT_THAT(absl::StrJoin(failures, "\n"),
              HasSubstr("ERROR: AddressSanitizer: heap-buffer-overflow"));
  EXPECT_THAT(absl::StrJoin(failures, "\n"), HasSubstr("InjectTestFault"))
      << "the report is printed with its stack";
}

TEST(TestSupportTest, ALeakReportedWhenAnAgentExitsFailsTheTest) {
  std::vector<std::string> failures = FailuresOf([] {
    TempDir dir;
    WriteFile(dir.Join("agentd.yaml"), FaultyConfig("leak"));
    Daemon daemon(dir);
    ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
    ASSERT_TRUE(
        WaitFor([&] { return daemon.client().GetAgent("f1").state() == v1::AGENT_STATE_IDLE; },
                absl::Seconds(30)));
    // The leak is reported only as the agent exits, when the daemon stops it at the end.
  });
  ASSERT_FALSE(failures.empty()) << "an agent's leak passed unseen";
  EXPECT_THAT(absl::StrJoin(failures, "\n"), HasSubstr("ERROR: LeakSanitizer"));
}

#endif  // AGENTD_SANITIZER_BUILD

// A daemon with no agents, so that nothing outlives a daemon the test kills.
bool StartBareDaemon(const TempDir& dir, Daemon& daemon) {
  WriteFile(dir.Join("agentd.yaml"), "agents: []\n");
  return daemon.Start({"--config", dir.Join("agentd.yaml")});
}

TEST(TestSupportTest, ADaemonThatDiesOfASignalTheTestDidNotSendFailsTheTest) {
  std::vector<std::string> failures = FailuresOf([] {
    TempDir dir;
    Daemon daemon(dir);
    ASSERT_TRUE(StartBareDaemon(dir, daemon)) << daemon.log();
    // Not through the test support, as a crash would not be: SIGABRT, no report.
    ASSERT_EQ(kill(daemon.process()->pid(), SIGABRT), 0);
    ASSERT_TRUE(daemon.process()->WaitExit(absl::Seconds(20)).has_value());
  });
  ASSERT_EQ(failures.size(), 1u) << absl::StrJoin(failures, "\n");
  EXPECT_THAT(failures[0], HasSubstr("killed by signal 6"));
}

TEST(TestSupportTest, KillingTheDaemonOnPurposeIsNotAFailure) {
  std::vector<std::string> failures = FailuresOf([] {
    TempDir dir;
    Daemon daemon(dir);
    ASSERT_TRUE(StartBareDaemon(dir, daemon)) << daemon.log();
    daemon.process()->Signal(SIGKILL);
    ASSERT_TRUE(daemon.process()->WaitExit(absl::Seconds(20)).has_value());
  });
  EXPECT_THAT(failures, ::testing::IsEmpty());
}

}  // namespace
}  // namespace agentd::testing
