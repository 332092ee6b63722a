// dev/run --demo's team: the demo configuration (dev/demo/agentd.yaml, read over the
// default) and its scripted models (dev/demo/scenario.yaml) take a goal from the CEO
// through the manager's plan to a coder and a tester and back, with no model installed.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

TEST(DemoTest, TheDemoTeamTakesAGoalThroughEveryRole) {
  TempDir dir;
  const std::string demo = absl::StrCat(AGENTD_SOURCE_ROOT, "/dev/demo");
  const std::string scenario = ReadFileOrEmpty(demo + "/scenario.yaml");
  ASSERT_NE(scenario, "");
  FakeLlm fake(dir, scenario);
  ASSERT_FALSE(fake.url().empty()) << fake.log();
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", demo + "/agentd.yaml"}, {"AGENTD_DEMO_URL=" + fake.url()}))
      << daemon.log();
  const absl::Duration timeout = Scaled(absl::Seconds(60));
  RunResult goal = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "goal",
                               "Write hello.py that prints hello, with a pytest test", "--wait",
                               "--timeout", ScaledText(absl::Seconds(60))},
                              timeout + absl::Seconds(30));
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon.log() << fake.log();
  EXPECT_THAT(goal.out, HasSubstr("hello.py prints hello and its test passes"));

  // Every role of the team did its part, and each part ended completed.
  RunResult tasks =
      RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "get", "tasks", "-o", "json"});
  ASSERT_EQ(tasks.exit_code, 0) << tasks.err;
  nlohmann::json j = nlohmann::json::parse(tasks.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << tasks.out;
  std::map<std::string, std::string> by_role;
  for (const nlohmann::json& t : j.value("tasks", nlohmann::json::array())) {
    by_role[t.value("role", "")] = t.value("status", "");
  }
  for (const char* role : {"ceo", "manager", "coder", "tester"}) {
    EXPECT_EQ(by_role[role], "TASK_STATUS_COMPLETED") << role << "\n" << tasks.out;
  }
  EXPECT_EQ(ReadFileOrEmpty(dir.Join("state-workspaces/g-1/hello.py")).find("def hello"), 0u);
  EXPECT_NE(ReadFileOrEmpty(dir.Join("state-workspaces/g-1/test_hello.py")), "");
}

}  // namespace
}  // namespace agentd::testing
