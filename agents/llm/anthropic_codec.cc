// Anthropic Messages: POST {base}/messages (base defaults to https://api.anthropic.com/v1)
// with x-api-key and anthropic-version; the system prompt is a field of its own, tool
// results are user messages holding tool_result blocks; streamed as typed SSE events
// (message_start … content_block_* … message_delta, message_stop).
#include <map>

#include "absl/strings/str_cat.h"
#include "agents/llm/codec.h"
#include "agents/llm/sse.h"

namespace agentd::llm {
namespace {

using codec_internal::Count;
using codec_internal::Dump;
using codec_internal::Excerpt;
using codec_internal::Field;
using codec_internal::ParseJson;
using codec_internal::String;
using codec_internal::ToolNameFromWire;
using nlohmann::json;

constexpr int64_t kDefaultMaxTokens = 4096;  // required by this API; the role may set it

std::string FinishReason(const std::string& stop_reason, bool has_tool_calls) {
  if (has_tool_calls || stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "max_tokens") return "length";
  return "stop";
}

class AnthropicDecoder final : public StreamDecoder {
 public:
  explicit AnthropicDecoder(const ChatRequest& req) : req_(req) {}

  absl::Status Feed(absl::string_view bytes, const TextCallback& on_text) override {
    return sse_.Feed(bytes, [&](const SseEvent& e) { return Event(e, on_text); });
  }

  absl::StatusOr<ChatResult> Finish() override {
    if (!done_) {
      return absl::DataLossError("the stream ended before message_stop: the response was cut off");
    }
    for (auto& [index, block] : blocks_) {
      if (!block.is_tool) continue;
      block.call.name = ToolNameFromWire(req_, block.call.name);
      if (block.call.arguments.empty()) block.call.arguments = "{}";
      result_.tool_calls.push_back(std::move(block.call));
    }
    result_.finish_reason = FinishReason(stop_reason_, !result_.tool_calls.empty());
    return std::move(result_);
  }

 private:
  struct Block {
    bool is_tool = false;
    ToolCall call;  // a tool_use block's id, name and input JSON as it streams
  };

  absl::Status Event(const SseEvent& e, const TextCallback& on_text) {
    absl::StatusOr<json> j = ParseJson(e.data, "a stream event");
    if (!j.ok()) return j.status();
    std::string type = String(*j, "type", e.event);
    if (type == "message_start") {
      const json& usage = Field(Field(*j, "message"), "usage");
      result_.usage.prompt_tokens = Count(usage, "input_tokens");
      result_.usage.completion_tokens = Count(usage, "output_tokens");
    } else if (type == "content_block_start") {
      Block& b = blocks_[Count(*j, "index")];
      const json& cb = Field(*j, "content_block");
      if (String(cb, "type") == "tool_use") {
        b.is_tool = true;
        b.call.id = String(cb, "id");
        b.call.name = String(cb, "name");
      }
    } else if (type == "content_block_delta") {
      Block& b = blocks_[Count(*j, "index")];
      const json& d = Field(*j, "delta");
      std::string dtype = String(d, "type");
      if (dtype == "text_delta") {
        std::string piece = String(d, "text");
        result_.text += piece;
        if (on_text && !piece.empty()) on_text(piece);
      } else if (dtype == "input_json_delta") {
        b.call.arguments += String(d, "partial_json");
      } else if (dtype == "thinking_delta") {
        result_.reasoning += String(d, "thinking");  // extended thinking
      }
    } else if (type == "message_delta") {
      if (std::string stop = String(Field(*j, "delta"), "stop_reason"); !stop.empty()) {
        stop_reason_ = stop;
      }
      const json& usage = Field(*j, "usage");
      if (Field(usage, "output_tokens").is_number()) {
        result_.usage.completion_tokens = Count(usage, "output_tokens");
      }
    } else if (type == "message_stop") {
      done_ = true;
    } else if (type == "error") {
      const json& err = Field(*j, "error");
      return absl::UnavailableError(
          absl::StrCat("the provider reported an error mid-stream: ", String(err, "type"), ": ",
                       Excerpt(String(err, "message", Dump(err)))));
    }
    // ping and content_block_stop carry nothing to keep.
    return absl::OkStatus();
  }

  const ChatRequest& req_;
  SseParser sse_;
  ChatResult result_;
  std::map<int64_t, Block> blocks_;
  std::string stop_reason_;
  bool done_ = false;
};

class AnthropicCodec final : public Codec {
 public:
  std::string kind() const override { return "anthropic"; }
  std::string Url(const std::string& base_url) const override {
    return absl::StrCat(base_url.empty() ? "https://api.anthropic.com/v1" : base_url, "/messages");
  }
  std::vector<std::string> Headers(const std::string& api_key) const override {
    std::vector<std::string> h = {"anthropic-version: 2023-06-01",
                                  "Accept: application/json, text/event-stream"};
    if (!api_key.empty()) h.push_back(absl::StrCat("x-api-key: ", api_key));
    return h;
  }

  std::string Body(const ChatRequest& req) const override {
    std::string system;
    json messages = json::array();
    // Consecutive tool results travel together, as one user message of tool_result blocks.
    auto append = [&messages](const char* role, json block) {
      if (!messages.empty() && messages.back()["role"] == role &&
          messages.back()["content"].is_array()) {
        messages.back()["content"].push_back(std::move(block));
      } else {
        messages.push_back({{"role", role}, {"content", json::array({std::move(block)})}});
      }
    };
    for (const Message& m : req.messages) {
      switch (m.role) {
        case Role::kSystem:
          system += system.empty() ? m.content : "\n\n" + m.content;
          break;
        case Role::kUser:
          append("user", {{"type", "text"}, {"text", m.content}});
          break;
        case Role::kAssistant: {
          json content = json::array();
          if (!m.content.empty()) content.push_back({{"type", "text"}, {"text", m.content}});
          for (const ToolCall& c : m.tool_calls) {
            json input = json::parse(c.arguments, nullptr, false);
            if (!input.is_object()) input = json::object();
            content.push_back({{"type", "tool_use"},
                               {"id", c.id},
                               {"name", WireToolName(c.name)},
                               {"input", input}});
          }
          messages.push_back({{"role", "assistant"}, {"content", content}});
          break;
        }
        case Role::kTool: {
          json block = {
              {"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.content}};
          if (m.tool_error) block["is_error"] = true;
          append("user", std::move(block));
          break;
        }
      }
    }
    json body = {{"model", req.model},
                 {"messages", messages},
                 {"max_tokens", req.max_tokens.value_or(kDefaultMaxTokens)},
                 {"stream", req.stream}};
    if (!system.empty()) body["system"] = system;
    if (req.temperature) body["temperature"] = *req.temperature;
    if (!req.tools.empty()) {
      json tools = json::array();
      for (const ToolSpec& t : req.tools) {
        tools.push_back({{"name", WireToolName(t.name)},
                         {"description", t.description},
                         {"input_schema", t.parameters}});
      }
      body["tools"] = tools;
    }
    return Dump(body);
  }

  absl::StatusOr<ChatResult> Parse(absl::string_view body, const ChatRequest& req) const override {
    absl::StatusOr<json> j = ParseJson(body, "the response");
    if (!j.ok()) return j.status();
    const json& content = Field(*j, "content");
    if (!content.is_array()) {
      return absl::InternalError(absl::StrCat("the response has no content: ", Excerpt(body)));
    }
    ChatResult r;
    for (const json& block : content) {
      std::string type = String(block, "type");
      if (type == "text") {
        r.text += String(block, "text");
      } else if (type == "thinking") {
        r.reasoning += String(block, "thinking");
      } else if (type == "tool_use") {
        const json& input = Field(block, "input");
        r.tool_calls.push_back({String(block, "id"), ToolNameFromWire(req, String(block, "name")),
                                input.is_null() ? "{}" : Dump(input)});
      }
    }
    const json& usage = Field(*j, "usage");
    r.usage.prompt_tokens = Count(usage, "input_tokens");
    r.usage.completion_tokens = Count(usage, "output_tokens");
    r.finish_reason = FinishReason(String(*j, "stop_reason"), !r.tool_calls.empty());
    return r;
  }

  std::unique_ptr<StreamDecoder> NewDecoder(const ChatRequest& req) const override {
    return std::make_unique<AnthropicDecoder>(req);
  }

  std::string ErrorMessage(absl::string_view body) const override {
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      const json& e = j["error"];
      return absl::StrCat(String(e, "type", "error"), ": ", String(e, "message"));
    }
    return Excerpt(body);
  }
};

}  // namespace

std::unique_ptr<Codec> NewAnthropicCodec() { return std::make_unique<AnthropicCodec>(); }

}  // namespace agentd::llm
