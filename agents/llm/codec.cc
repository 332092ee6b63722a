#include "agents/llm/codec.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/json_dump.h"
#include "common/text.h"

namespace agentd::llm {

std::unique_ptr<Codec> NewOpenAiCodec();
std::unique_ptr<Codec> NewAnthropicCodec();
std::unique_ptr<Codec> NewOllamaCodec();

std::unique_ptr<Codec> NewCodec(absl::string_view kind) {
  if (kind == "openai") return NewOpenAiCodec();
  if (kind == "anthropic") return NewAnthropicCodec();
  if (kind == "ollama") return NewOllamaCodec();
  return nullptr;
}

std::string WireToolName(absl::string_view name) {
  std::string out(name.substr(0, 64));
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out;
}

namespace codec_internal {

std::string Excerpt(absl::string_view text) {
  return Utf8Prefix(text, 200 + std::strlen("…"), "…");
}

const nlohmann::json& Field(const nlohmann::json& j, const char* key) {
  static const nlohmann::json* const kNull = new nlohmann::json();
  if (!j.is_object()) return *kNull;
  auto it = j.find(key);
  return it == j.end() ? *kNull : *it;
}

std::string String(const nlohmann::json& j, const char* key, absl::string_view dflt) {
  const nlohmann::json& v = Field(j, key);
  return v.is_string() ? v.get<std::string>() : std::string(dflt);
}

bool Bool(const nlohmann::json& j, const char* key, bool dflt) {
  const nlohmann::json& v = Field(j, key);
  return v.is_boolean() ? v.get<bool>() : dflt;
}

int64_t Count(const nlohmann::json& j, const char* key, int64_t dflt) {
  // Past 2^40 a count is a lie, and as a double it would not fit int64_t (a cast of an
  // out-of-range double is undefined behaviour).
  constexpr int64_t kMax = int64_t{1} << 40;
  const nlohmann::json& v = Field(j, key);
  if (v.is_number_unsigned())
    return static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), kMax));
  if (v.is_number_integer()) return std::clamp<int64_t>(v.get<int64_t>(), 0, kMax);
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!(d >= 0)) return 0;  // negative or NaN
    return d >= static_cast<double>(kMax) ? kMax : static_cast<int64_t>(d);
  }
  return dflt;
}

std::string Dump(const nlohmann::json& j) { return DumpJson(j); }

std::string ToolNameFromWire(const ChatRequest& req, absl::string_view wire) {
  for (const ToolSpec& t : req.tools) {
    if (WireToolName(t.name) == wire) return t.name;
  }
  return std::string(wire);
}

nlohmann::json FunctionTools(const ChatRequest& req) {
  nlohmann::json tools = nlohmann::json::array();
  for (const ToolSpec& t : req.tools) {
    tools.push_back({{"type", "function"},
                     {"function",
                      {{"name", WireToolName(t.name)},
                       {"description", t.description},
                       {"parameters", t.parameters}}}});
  }
  return tools;
}

absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view what) {
  nlohmann::json j =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(absl::StrCat(what, " is not valid JSON: ", Excerpt(text)));
  }
  return j;
}

}  // namespace codec_internal
}  // namespace agentd::llm
