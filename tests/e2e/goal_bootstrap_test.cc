// The built-in bootstrapper: the end-to-end flow that needs no model.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// The bootstrapper renders a project template and runs its own tests, and its
// post-check's output is in its log.
TEST_F(GoalTest, BootstrapRendersEachProjectTemplateAndItsPostCheckPasses) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("no_model")));
  const absl::Duration timeout = absl::Seconds(300);
  for (const std::string name : {"python-fastapi", "cpp-cmake"}) {
    std::string dir = dir_.Join("new-" + name);
    RunResult r = Ctl({"bootstrap", name, dir, "--timeout", ScaledText(timeout)},
                      timeout + absl::Seconds(20));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.out << r.err << daemon_.log();
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("rendered template ", name)));
    EXPECT_THAT(r.out, HasSubstr("post-check passed"));
    EXPECT_EQ(Git(dir, "log --format=%s"), absl::StrCat("Bootstrap from template ", name, "\n"));
  }
  // {{project}} became the directory's name.
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("new-python-fastapi/app/main.py")),
              HasSubstr("FastAPI(title=\"new-python-fastapi\")"));
  // The cpp-cmake template's ctest, as it ran, in the log of whichever bootstrapper ran it.
  RunResult first = Ctl({"logs", "bootstrapper-1"});
  RunResult second = Ctl({"logs", "bootstrapper-2"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out + second.out, HasSubstr("100% tests passed, 0 tests failed out of 1"));
  RunResult unknown = Ctl({"bootstrap", "no-such-template", dir_.Join("x")});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("templates are: cpp-cmake, python-fastapi"));
}

}  // namespace
}  // namespace agentd::testing
