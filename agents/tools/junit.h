// Test results from JUnit XML (what ctest --output-junit and pytest --junitxml write).
#ifndef AGENTD_AGENTS_TOOLS_JUNIT_H_
#define AGENTD_AGENTS_TOOLS_JUNIT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace agentd::tools {

struct TestCounts {
  int passed = 0, failed = 0, skipped = 0;
  std::vector<std::string> failing;  // "classname.name" (or "name")
};

// Counts the <testcase> elements of a JUnit report: failed when one holds <failure> or
// <error>, skipped when it holds <skipped>, passed otherwise. Errors: INVALID_ARGUMENT
// when there is no <testcase> or an element is cut off.
absl::StatusOr<TestCounts> ParseJunit(absl::string_view xml);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_JUNIT_H_
