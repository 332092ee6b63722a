// Tool-argument validation (agents/tools/tool.h CheckArguments, what ToolBox::Call does
// before a tool runs) on any JSON a model sends, against every built-in tool's schema:
// OK or an INVALID_ARGUMENT naming the argument, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/tools/tool.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<agentd::tools::Tool>>* tools =
      new std::vector<std::unique_ptr<agentd::tools::Tool>>(agentd::tools::BuiltinTools());
  nlohmann::json args =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded()) return 0;
  for (const auto& t : *tools) {
    absl::Status s = agentd::tools::CheckArguments(t->schema(), args);
    FUZZ_CHECK(s.ok() || s.code() == absl::StatusCode::kInvalidArgument);
  }
  return 0;
}
