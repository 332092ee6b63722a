#include "manager/ctl/output.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
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

namespace {

// The code point at text[*i], advancing *i past it; -1 (advancing one byte) for a byte
// that does not start a well-formed UTF-8 sequence (RFC 3629).
int32_t NextCodePoint(absl::string_view text, size_t* i) {
  unsigned char c = static_cast<unsigned char>(text[*i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || *i + len > text.size()) {
    ++*i;
    return -1;
  }
  int32_t cp = len == 1 ? c : c & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(text[*i + k]);
    if ((cc & 0xc0) != 0x80) {
      ++*i;
      return -1;
    }
    cp = (cp << 6) | (cc & 0x3f);
  }
  static constexpr int32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
    ++*i;
    return -1;
  }
  *i += len;
  return cp;
}

}  // namespace

std::string TerminalText(absl::string_view text, Lines lines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t start = i;
    int32_t cp = NextCodePoint(text, &i);
    if (cp < 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(text[start]));
    } else if (cp == '\n' || cp == '\t') {
      if (lines == Lines::kMany) {
        out += static_cast<char>(cp);
      } else {
        out += cp == '\n' ? "\\n" : "\\t";
      }
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", cp);
    } else if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
               (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
      // C1 controls (0x9b is CSI to some terminals), and what reorders the text shown.
      absl::StrAppendFormat(&out, "\\u%04x", cp);
    } else {
      out.append(text.data() + start, i - start);
    }
  }
  return out;
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
