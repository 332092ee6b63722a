// Codec: one provider's wire format — the request body it wants, the response it sends
// (whole, or streamed as SSE or NDJSON) — mapped to and from llm/types.h.
//
// Codecs hold no state between calls and are thread-safe; a StreamDecoder belongs to one
// response. Malformed input is an error that quotes it (never a crash, never an
// exception): INTERNAL for a response that is not the provider's format, with the
// offending text cut to 200 bytes on a character boundary. A field of the wrong JSON type
// (`"prompt_tokens": null`, `"choices": {}`, `"content": 7`) reads as absent. Every string
// a codec returns is valid UTF-8.
#ifndef AGENTD_AGENTS_LLM_CODEC_H_
#define AGENTD_AGENTS_LLM_CODEC_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agents/llm/types.h"

namespace agentd::llm {

class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Feeds the next bytes of the body; text pieces go to `on_text` as they complete.
  virtual absl::Status Feed(absl::string_view bytes, const TextCallback& on_text) = 0;
  // At the end of the body: the whole result, or DATA_LOSS when the stream ended before
  // the provider's final event (cut off).
  virtual absl::StatusOr<ChatResult> Finish() = 0;
};

class Codec {
 public:
  virtual ~Codec() = default;
  // "openai", "anthropic", "ollama".
  virtual std::string kind() const = 0;
  // The URL of the chat endpoint under the provider's base URL.
  virtual std::string Url(const std::string& base_url) const = 0;
  // Headers for the call, the API key's included (when there is one).
  virtual std::vector<std::string> Headers(const std::string& api_key) const = 0;
  virtual std::string Body(const ChatRequest& req) const = 0;
  // A whole (not streamed) response body.
  virtual absl::StatusOr<ChatResult> Parse(absl::string_view body,
                                           const ChatRequest& req) const = 0;
  virtual std::unique_ptr<StreamDecoder> NewDecoder(const ChatRequest& req) const = 0;
  // The provider's own words from an error response body, or the body itself, cut.
  virtual std::string ErrorMessage(absl::string_view body) const = 0;
};

// The codec for a provider kind, or nullptr for a kind agentd does not speak.
std::unique_ptr<Codec> NewCodec(absl::string_view kind);

// Shared by the codecs.
namespace codec_internal {
// `text` cut to 200 bytes on a character boundary and made valid UTF-8, for error
// messages (a provider's error body may be anything).
std::string Excerpt(absl::string_view text);

// Type-checked reads of a provider's JSON: the value when `j` is an object holding `key`
// with the expected type, else the default. Never throw, whatever `j` is.
// The member `key` of `j`, or a null value.
const nlohmann::json& Field(const nlohmann::json& j, const char* key);
std::string String(const nlohmann::json& j, const char* key, absl::string_view dflt = "");
bool Bool(const nlohmann::json& j, const char* key, bool dflt = false);
// A count (tokens, an index): a number clamped to [0, 2^40] (a fraction rounds down);
// anything else is `dflt`.
int64_t Count(const nlohmann::json& j, const char* key, int64_t dflt = 0);
// `j` as JSON text with bytes that are not UTF-8 replaced (dump() would throw on them).
std::string Dump(const nlohmann::json& j);
// agentd's name of a tool the model called by its wire name (unchanged when no tool of
// the request has that wire name: the caller rejects it as unknown).
std::string ToolNameFromWire(const ChatRequest& req, absl::string_view wire);
// The request's tools as OpenAI's `tools` array of functions (Ollama takes the same).
nlohmann::json FunctionTools(const ChatRequest& req);
// Parses JSON, or INTERNAL quoting the text.
absl::StatusOr<nlohmann::json> ParseJson(absl::string_view text, absl::string_view what);
}  // namespace codec_internal

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_CODEC_H_
