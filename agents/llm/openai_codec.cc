// OpenAI Chat Completions (also what Ollama's /v1, LM Studio, vLLM, llama.cpp's server and
// OpenRouter speak): POST {base}/chat/completions; streamed as SSE `data:` chunks ending
// with `data: [DONE]`, usage in a last chunk when stream_options.include_usage is set.
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

std::string FinishReason(const std::string& wire, bool has_tool_calls) {
  if (has_tool_calls || wire == "tool_calls" || wire == "function_call") return "tool_calls";
  if (wire == "length") return "length";
  return "stop";
}

Usage UsageFrom(const json& u) {
  return {Count(u, "prompt_tokens"), Count(u, "completion_tokens")};
}

// Arguments are a JSON string on this wire; some servers send an object.
std::string Arguments(const json& args) {
  if (args.is_string()) return args.get<std::string>();
  return args.is_null() ? "" : Dump(args);
}

// An `error` member's message: a string, or an object with a message.
std::string ErrorText(const json& err) {
  return Excerpt(err.is_string() ? err.get<std::string>() : String(err, "message", Dump(err)));
}

class OpenAiDecoder final : public StreamDecoder {
 public:
  explicit OpenAiDecoder(const ChatRequest& req) : req_(req) {}

  absl::Status Feed(absl::string_view bytes, const TextCallback& on_text) override {
    return sse_.Feed(bytes, [&](const SseEvent& e) { return Event(e, on_text); });
  }

  absl::StatusOr<ChatResult> Finish() override {
    if (!done_) {
      return absl::DataLossError(
          "the stream ended before its last event (no data: [DONE]): the response was cut off");
    }
    for (auto& [index, call] : calls_) {
      call.name = ToolNameFromWire(req_, call.name);
      result_.tool_calls.push_back(std::move(call));
    }
    result_.finish_reason = FinishReason(finish_, !result_.tool_calls.empty());
    return std::move(result_);
  }

 private:
  absl::Status Event(const SseEvent& e, const TextCallback& on_text) {
    if (e.data == "[DONE]") {
      done_ = true;
      return absl::OkStatus();
    }
    absl::StatusOr<json> chunk = ParseJson(e.data, "a stream chunk");
    if (!chunk.ok()) return chunk.status();
    if (const json& err = Field(*chunk, "error"); !err.is_null()) {
      return absl::UnavailableError(
          absl::StrCat("the provider reported an error mid-stream: ", ErrorText(err)));
    }
    if (const json& usage = Field(*chunk, "usage"); usage.is_object()) {
      result_.usage = UsageFrom(usage);
    }
    const json& choices = Field(*chunk, "choices");
    if (!choices.is_array() || choices.empty()) return absl::OkStatus();
    const json& choice = choices[0];
    if (std::string finish = String(choice, "finish_reason"); !finish.empty()) finish_ = finish;
    const json& delta = Field(choice, "delta");
    // The model's reasoning, apart from its answer: vLLM, LM Studio and DeepSeek send
    // reasoning_content, Ollama's OpenAI endpoint and OpenRouter reasoning.
    result_.reasoning += String(delta, "reasoning_content");
    result_.reasoning += String(delta, "reasoning");
    if (const json& content = Field(delta, "content"); content.is_string()) {
      const std::string& piece = content.get_ref<const std::string&>();
      result_.text += piece;
      if (on_text && !piece.empty()) on_text(piece);
    }
    if (const json& calls = Field(delta, "tool_calls"); calls.is_array()) {
      for (const json& tc : calls) {
        ToolCall& call = calls_[Count(tc, "index")];
        if (std::string id = String(tc, "id"); !id.empty()) call.id = id;
        const json& fn = Field(tc, "function");
        call.name += String(fn, "name");
        call.arguments += Arguments(Field(fn, "arguments"));
      }
    }
    return absl::OkStatus();
  }

  const ChatRequest& req_;
  SseParser sse_;
  ChatResult result_;
  std::map<int64_t, ToolCall> calls_;  // by index: pieces of each call arrive over many chunks
  std::string finish_;
  bool done_ = false;
};

class OpenAiCodec final : public Codec {
 public:
  std::string kind() const override { return "openai"; }
  std::string Url(const std::string& base_url) const override {
    return absl::StrCat(base_url, "/chat/completions");
  }
  std::vector<std::string> Headers(const std::string& api_key) const override {
    std::vector<std::string> h = {"Accept: application/json, text/event-stream"};
    if (!api_key.empty()) h.push_back(absl::StrCat("Authorization: Bearer ", api_key));
    return h;
  }

  std::string Body(const ChatRequest& req) const override {
    json messages = json::array();
    for (const Message& m : req.messages) {
      json out;
      switch (m.role) {
        case Role::kSystem:
          out = {{"role", "system"}, {"content", m.content}};
          break;
        case Role::kUser:
          out = {{"role", "user"}, {"content", m.content}};
          break;
        case Role::kAssistant: {
          out = {{"role", "assistant"}, {"content", m.content}};
          if (!m.tool_calls.empty()) {
            json calls = json::array();
            for (const ToolCall& c : m.tool_calls) {
              calls.push_back(
                  {{"id", c.id},
                   {"type", "function"},
                   {"function", {{"name", WireToolName(c.name)}, {"arguments", c.arguments}}}});
            }
            out["tool_calls"] = calls;
            if (m.content.empty()) out["content"] = nullptr;
          }
          break;
        }
        case Role::kTool:
          out = {{"role", "tool"}, {"tool_call_id", m.tool_call_id}, {"content", m.content}};
          break;
      }
      messages.push_back(std::move(out));
    }
    json body = {{"model", req.model}, {"messages", messages}, {"stream", req.stream}};
    if (req.stream) body["stream_options"] = {{"include_usage", true}};
    if (req.temperature) body["temperature"] = *req.temperature;
    if (req.max_tokens) body["max_tokens"] = *req.max_tokens;
    if (!req.tools.empty()) body["tools"] = codec_internal::FunctionTools(req);
    return Dump(body);
  }

  absl::StatusOr<ChatResult> Parse(absl::string_view body, const ChatRequest& req) const override {
    absl::StatusOr<json> j = ParseJson(body, "the response");
    if (!j.ok()) return j.status();
    const json& choices = Field(*j, "choices");
    if (!choices.is_array() || choices.empty() || !Field(choices[0], "message").is_object()) {
      return absl::InternalError(
          absl::StrCat("the response has no choices[0].message: ", Excerpt(body)));
    }
    const json& msg = Field(choices[0], "message");
    ChatResult r;
    r.text = String(msg, "content");
    r.reasoning = String(msg, "reasoning_content") + String(msg, "reasoning");
    if (const json& calls = Field(msg, "tool_calls"); calls.is_array()) {
      for (const json& tc : calls) {
        const json& fn = Field(tc, "function");
        ToolCall call;
        call.id = String(tc, "id");
        call.name = ToolNameFromWire(req, String(fn, "name"));
        call.arguments = Arguments(Field(fn, "arguments"));
        if (call.arguments.empty()) call.arguments = "{}";
        r.tool_calls.push_back(std::move(call));
      }
    }
    r.finish_reason =
        FinishReason(String(choices[0], "finish_reason", "stop"), !r.tool_calls.empty());
    r.usage = UsageFrom(Field(*j, "usage"));
    return r;
  }

  std::unique_ptr<StreamDecoder> NewDecoder(const ChatRequest& req) const override {
    return std::make_unique<OpenAiDecoder>(req);
  }

  std::string ErrorMessage(absl::string_view body) const override {
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_object() && j.contains("error")) {
      const json& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) {
        return e["message"].get<std::string>();
      }
      if (e.is_string()) return e.get<std::string>();
    }
    return Excerpt(body);
  }
};

}  // namespace

std::unique_ptr<Codec> NewOpenAiCodec() { return std::make_unique<OpenAiCodec>(); }

}  // namespace agentd::llm
