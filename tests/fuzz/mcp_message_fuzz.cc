// What an MCP server sends (agents/mcp): any bytes as one message, classified the way the
// connections do, and read as a tools/list page and as a tools/call result, as the client
// does. Never a crash or an exception; what reaches the model is valid UTF-8 and within
// its cap; an MCP tool's schema checks any arguments without throwing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agents/mcp/client.h"
#include "agents/mcp/connection.h"
#include "agents/tools/tool.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // As the connections do: bytes that are not UTF-8 are made so before parsing.
  std::string text =
      agentd::ValidUtf8(absl::string_view(reinterpret_cast<const char*>(data), size));
  nlohmann::json m = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded()) return 0;
  agentd::mcp::internal::Incoming in = agentd::mcp::internal::Classify(m);
  FUZZ_CHECK(in.kind != agentd::mcp::internal::Incoming::Kind::kInvalid || !in.why.empty());
  const nlohmann::json& result =
      in.kind == agentd::mcp::internal::Incoming::Kind::kResponse && in.error.ok() ? in.result : m;
  std::vector<agentd::mcp::ToolInfo> tools;
  std::vector<std::string> skipped;
  std::string cursor;
  (void)agentd::mcp::internal::ParseToolsPage(result, &tools, &skipped, &cursor);
  for (const agentd::mcp::ToolInfo& t : tools) {
    FUZZ_CHECK(agentd::IsValidUtf8(t.description));
    FUZZ_CHECK(t.input_schema.is_object());
    (void)agentd::DumpJson(t.input_schema);
    // The schema judges arguments (here the message itself) without throwing.
    absl::Status s = agentd::tools::CheckArguments(t.input_schema, m);
    FUZZ_CHECK(s.ok() || s.code() == absl::StatusCode::kInvalidArgument);
  }
  for (const std::string& s : skipped) FUZZ_CHECK(agentd::IsValidUtf8(s));
  absl::StatusOr<agentd::mcp::CallResult> r = agentd::mcp::internal::ParseCallResult(result, 1000);
  if (r.ok()) {
    FUZZ_CHECK(agentd::IsValidUtf8(r->text));
    FUZZ_CHECK(r->text.size() <= 1000 + 100);
  }
  return 0;
}
