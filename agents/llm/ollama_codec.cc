// Ollama's native chat API: POST {base}/api/chat (base defaults to http://localhost:11434);
// streamed as NDJSON, one JSON object a line, the last with "done": true and the counts.
// Tool call arguments are objects on this wire, and calls carry no id: one is made up.
#include "absl/strings/str_cat.h"
#include "agents/llm/codec.h"

namespace agentd::llm {
namespace {

using codec_internal::Bool;
using codec_internal::Count;
using codec_internal::Dump;
using codec_internal::Excerpt;
using codec_internal::Field;
using codec_internal::ParseJson;
using codec_internal::String;
using codec_internal::ToolNameFromWire;
using nlohmann::json;

constexpr size_t kMaxLine = 8 << 20;

// Reads one response object (a stream line, or the whole body) into `r`.
absl::Status Accumulate(const json& j, const ChatRequest& req, ChatResult* r, bool* done,
                        const TextCallback& on_text) {
  if (const json& err = Field(j, "error"); !err.is_null()) {
    return absl::UnavailableError(
        absl::StrCat("the provider reported an error: ",
                     Excerpt(err.is_string() ? err.get<std::string>() : Dump(err))));
  }
  const json& msg = Field(j, "message");
  r->reasoning += String(msg, "thinking");  // models that think, with "think": true
  if (const json& content = Field(msg, "content"); content.is_string()) {
    const std::string& piece = content.get_ref<const std::string&>();
    r->text += piece;
    if (on_text && !piece.empty()) on_text(piece);
  }
  if (const json& calls = Field(msg, "tool_calls"); calls.is_array()) {
    for (const json& tc : calls) {
      const json& fn = Field(tc, "function");
      const json& args = Field(fn, "arguments");
      r->tool_calls.push_back({absl::StrCat("call_", r->tool_calls.size() + 1),
                               ToolNameFromWire(req, String(fn, "name")),
                               args.is_string() ? args.get<std::string>()
                               : args.is_null() ? "{}"
                                                : Dump(args)});
    }
  }
  if (Bool(j, "done")) {
    *done = true;
    r->usage.prompt_tokens = Count(j, "prompt_eval_count");
    r->usage.completion_tokens = Count(j, "eval_count");
    std::string reason = String(j, "done_reason", "stop");
    r->finish_reason = !r->tool_calls.empty() ? "tool_calls"
                       : reason == "length"   ? "length"
                                              : "stop";
  }
  return absl::OkStatus();
}

class OllamaDecoder final : public StreamDecoder {
 public:
  explicit OllamaDecoder(const ChatRequest& req) : req_(req) {}

  absl::Status Feed(absl::string_view bytes, const TextCallback& on_text) override {
    for (;;) {
      size_t nl = bytes.find('\n');
      if (nl == absl::string_view::npos) break;
      line_.append(bytes.data(), nl);
      bytes.remove_prefix(nl + 1);
      if (absl::Status s = Line(on_text); !s.ok()) return s;
    }
    line_.append(bytes.data(), bytes.size());
    if (line_.size() > kMaxLine) {
      return absl::ResourceExhaustedError(
          absl::StrCat("a stream line longer than ", kMaxLine, " bytes"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ChatResult> Finish() override {
    if (!line_.empty()) {
      if (absl::Status s = Line(nullptr); !s.ok()) return s;
    }
    if (!done_) {
      return absl::DataLossError(
          "the stream ended before its last line (\"done\": true): the response was cut off");
    }
    return std::move(result_);
  }

 private:
  absl::Status Line(const TextCallback& on_text) {
    std::string line = std::move(line_);
    line_.clear();
    if (line.find_first_not_of(" \t\r") == std::string::npos) return absl::OkStatus();
    absl::StatusOr<json> j = ParseJson(line, "a stream line");
    if (!j.ok()) return j.status();
    return Accumulate(*j, req_, &result_, &done_, on_text);
  }

  const ChatRequest& req_;
  std::string line_;
  ChatResult result_;
  bool done_ = false;
};

class OllamaCodec final : public Codec {
 public:
  std::string kind() const override { return "ollama"; }
  std::string Url(const std::string& base_url) const override {
    return absl::StrCat(base_url.empty() ? "http://localhost:11434" : base_url, "/api/chat");
  }
  std::vector<std::string> Headers(const std::string& api_key) const override {
    std::vector<std::string> h;
    if (!api_key.empty()) h.push_back(absl::StrCat("Authorization: Bearer ", api_key));
    return h;
  }

  std::string Body(const ChatRequest& req) const override {
    json messages = json::array();
    for (const Message& m : req.messages) {
      switch (m.role) {
        case Role::kSystem:
          messages.push_back({{"role", "system"}, {"content", m.content}});
          break;
        case Role::kUser:
          messages.push_back({{"role", "user"}, {"content", m.content}});
          break;
        case Role::kAssistant: {
          json out = {{"role", "assistant"}, {"content", m.content}};
          if (!m.tool_calls.empty()) {
            json calls = json::array();
            for (const ToolCall& c : m.tool_calls) {
              json args = json::parse(c.arguments, nullptr, false);
              if (!args.is_object()) args = json::object();
              calls.push_back(
                  {{"function", {{"name", WireToolName(c.name)}, {"arguments", args}}}});
            }
            out["tool_calls"] = calls;
          }
          messages.push_back(std::move(out));
          break;
        }
        case Role::kTool:
          messages.push_back(
              {{"role", "tool"}, {"content", m.content}, {"tool_name", WireToolName(m.tool_name)}});
          break;
      }
    }
    json body = {{"model", req.model}, {"messages", messages}, {"stream", req.stream}};
    json options = json::object();
    if (req.temperature) options["temperature"] = *req.temperature;
    if (req.max_tokens) options["num_predict"] = *req.max_tokens;
    if (!options.empty()) body["options"] = options;
    if (!req.tools.empty()) body["tools"] = codec_internal::FunctionTools(req);
    return Dump(body);
  }

  absl::StatusOr<ChatResult> Parse(absl::string_view body, const ChatRequest& req) const override {
    absl::StatusOr<json> j = ParseJson(body, "the response");
    if (!j.ok()) return j.status();
    ChatResult r;
    bool done = false;
    if (absl::Status s = Accumulate(*j, req, &r, &done, nullptr); !s.ok()) return s;
    if (!done) {
      return absl::InternalError(absl::StrCat("the response is not done: ", Excerpt(body)));
    }
    return r;
  }

  std::unique_ptr<StreamDecoder> NewDecoder(const ChatRequest& req) const override {
    return std::make_unique<OllamaDecoder>(req);
  }

  std::string ErrorMessage(absl::string_view body) const override {
    json j = json::parse(body.begin(), body.end(), nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) {
      return j["error"].get<std::string>();
    }
    return Excerpt(body);
  }
};

}  // namespace

std::unique_ptr<Codec> NewOllamaCodec() { return std::make_unique<OllamaCodec>(); }

}  // namespace agentd::llm
