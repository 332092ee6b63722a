#include "agents/llm/codec.h"

#include "absl/strings/str_cat.h"

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
  if (text.size() <= 200) return std::string(text);
  return absl::StrCat(text.substr(0, 200), "…");
}

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
