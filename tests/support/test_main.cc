// The main of every GoogleTest program in tests/: GoogleTest's own, plus a last look for
// sanitizer reports from the processes the tests started (see TakeSanitizerReports) once
// every test has run, so that a report written after a test's own checks still fails
// the program.
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace {

class SanitizerReportCheck : public ::testing::Environment {
 public:
  void TearDown() override {
    agentd::testing::FailOnSanitizerReports();
    rmdir(agentd::testing::SanitizerReportDir().c_str());
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new SanitizerReportCheck);
  return RUN_ALL_TESTS();
}
