// Output: agentctl prints data on stdout as a table (for people), JSON (canonical
// protobuf JSON, for jq and scripts) or YAML; progress and errors go to stderr.
#ifndef AGENTD_MANAGER_CTL_OUTPUT_H_
#define AGENTD_MANAGER_CTL_OUTPUT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace agentd::ctl {

enum class Format { kTable, kJson, kYaml };

absl::StatusOr<Format> ParseFormat(const std::string& name);

// JSON of `msg` with every field shown (zero values included), two-space indented, or
// on one line when `multiline` is false (one document per line, for streams).
std::string ToJson(const google::protobuf::Message& msg, bool multiline = true);
// The same document as YAML.
std::string ToYaml(const google::protobuf::Message& msg);

// A JSON document as YAML.
std::string JsonToYaml(const nlohmann::json& j);

// "key:   value" lines, keys padded to one column.
std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_OUTPUT_H_
