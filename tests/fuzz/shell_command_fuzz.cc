// shell.run's command-line splitter (agents/tools/shell.h ParseCommand) on any line: argv
// or INVALID_ARGUMENT, and what it accepts holds no shell syntax it promised to refuse.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agents/tools/shell.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string line(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<std::string>> argv = agentd::tools::ParseCommand(line);
  if (!argv.ok()) {
    FUZZ_CHECK(argv.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  // Every unquoted metacharacter is refused, so a line without quotes or backslashes that
  // parses cannot have held one.
  if (line.find_first_of("'\"\\") == std::string::npos) {
    FUZZ_CHECK(line.find_first_of(";|&$`<>") == std::string::npos);
  }
  return 0;
}
