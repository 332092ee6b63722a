// DumpJson: JSON text from a document that may hold bytes that are not UTF-8.
//
// nlohmann's plain dump() throws (type_error 316) on such bytes; on the core loop or in
// an agent's turn that exception would end the process. Every string should be made
// valid (common/text.h) before it enters a document; this is the backstop where a
// document is written out: bytes that are not UTF-8 become U+FFFD, as ValidUtf8 does.
// Header-only, so that it adds no link dependency on nlohmann_json to agentd_common.
#ifndef AGENTD_COMMON_JSON_DUMP_H_
#define AGENTD_COMMON_JSON_DUMP_H_

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace agentd {

// `j` as JSON text (compact, or indented by `indent` spaces); never throws for bad UTF-8.
inline std::string DumpJson(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Whether the JSON text `text` nests arrays and objects at most `max_depth` deep (a cheap
// scan that skips strings; it does not validate). nlohmann parses without recursion but
// copies and dumps recursively: a document nested a million deep from another program
// would overflow the stack. Check text from outside before parsing it.
inline bool JsonNestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// The nesting allowed in a message from another program (MCP, A2A): far beyond any real one.
inline constexpr int kMaxJsonNesting = 128;

}  // namespace agentd

#endif  // AGENTD_COMMON_JSON_DUMP_H_
