// Output: agentctl prints data on stdout as a table (for people), JSON (canonical
// protobuf JSON, for jq and scripts) or YAML; progress and errors go to stderr.
//
// Whatever agentctl prints for people passes through TerminalText: the daemon's strings
// carry what models, programs and workspaces wrote (task titles, results, plans,
// messages, consent summaries, log lines, error messages), and a terminal acts on control
// sequences in them — "\r\x1b[2K" redraws a line, so a harmless command could be shown
// over the dangerous one being approved. JSON and YAML are data and stay exact.
#ifndef AGENTD_MANAGER_CTL_OUTPUT_H_
#define AGENTD_MANAGER_CTL_OUTPUT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "nlohmann/json.hpp"

namespace agentd::ctl {

enum class Format { kTable, kJson, kYaml };

// Whether a string is shown on one line (a table cell, a key's value) or may span
// several (instructions, a result, a plan's summary, a log line, an error message).
enum class Lines { kOne, kMany };

// `text` escaped for the terminal (EscapeForTerminal in common/text.h): with Lines::kMany
// newline and tab are kept, with kOne they are escaped too, so a value cannot forge the
// lines after it.
std::string TerminalText(absl::string_view text, Lines lines = Lines::kOne);

// `text` (TerminalText, kMany) with every line after the first indented by `indent`,
// for a multi-line field under its heading.
std::string Indented(absl::string_view text, absl::string_view indent = "  ");

absl::StatusOr<Format> ParseFormat(const std::string& name);

// JSON of `msg` with every field shown (zero values included), two-space indented, or
// on one line when `multiline` is false (one document per line, for streams).
std::string ToJson(const google::protobuf::Message& msg, bool multiline = true);
// The same document as YAML.
std::string ToYaml(const google::protobuf::Message& msg);

// A JSON document as YAML.
std::string JsonToYaml(const nlohmann::json& j);

// "key:   value" lines, keys padded to one column; values pass through TerminalText
// (one line each).
std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_OUTPUT_H_
