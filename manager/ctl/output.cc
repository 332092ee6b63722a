#include "manager/ctl/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/text.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace agentd::ctl {
namespace {

void Emit(YAML::Emitter& out, const nlohmann::json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      Emit(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& v : j) Emit(out, v);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    out << j.get<std::string>();
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<int64_t>();
  } else if (j.is_number()) {
    out << j.get<double>();
  } else {
    out << YAML::Null;
  }
}

}  // namespace

std::string TerminalText(absl::string_view text, Lines lines) {
  return EscapeForTerminal(text, /*keep_newlines=*/lines == Lines::kMany);
}

std::string Indented(absl::string_view text, absl::string_view indent) {
  return absl::StrReplaceAll(TerminalText(text, Lines::kMany),
                             {{"\n", absl::StrCat("\n", indent)}});
}

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "table") return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  return absl::InvalidArgumentError(
      absl::StrCat("-o ", name, ": unknown output format (expected table, json or yaml)"));
}

std::string ToJson(const google::protobuf::Message& msg, bool multiline) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.always_print_primitive_fields = true;
  opts.always_print_enums_as_ints = false;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(msg, &out, opts);
  if (!multiline) return out;  // protobuf prints one line when not asked to indent
  // Re-indented with two spaces (protobuf's printer indents by one).
  return nlohmann::json::parse(out).dump(2);
}

std::string ToYaml(const google::protobuf::Message& msg) {
  return JsonToYaml(nlohmann::json::parse(ToJson(msg)));
}

std::string JsonToYaml(const nlohmann::json& j) {
  YAML::Emitter out;
  Emit(out, j);
  return absl::StrCat(out.c_str(), "\n");
}

std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : rows) {
    absl::StrAppend(&out, k, ":", std::string(width - k.size() + 2, ' '), TerminalText(v), "\n");
  }
  return out;
}

}  // namespace agentd::ctl
