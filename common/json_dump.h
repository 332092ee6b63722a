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

#include "nlohmann/json.hpp"

namespace agentd {

// `j` as JSON text (compact, or indented by `indent` spaces); never throws for bad UTF-8.
inline std::string DumpJson(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace agentd

#endif  // AGENTD_COMMON_JSON_DUMP_H_
