// The providers' wire formats: request bodies, and responses fed the way libcurl hands
// them over — in pieces cut anywhere.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agents/llm/client.h"
#include "agents/llm/codec.h"
#include "agents/llm/sse.h"
#include "common/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentd::llm {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

ChatRequest RequestWithTools() {
  ChatRequest req;
  req.model = "m";
  req.messages = {SystemMessage("be brief"), UserMessage("read it")};
  req.tools = {{"fs.read", "Reads a file", json{{"type", "object"}}},
               {"shell.run", "Runs a program", json{{"type", "object"}}}};
  return req;
}

// Feeds `stream` to a new decoder in pieces of `piece` bytes.
absl::StatusOr<ChatResult> Decode(const Codec& codec, const ChatRequest& req,
                                  const std::string& stream, size_t piece,
                                  std::string* streamed = nullptr) {
  std::unique_ptr<StreamDecoder> d = codec.NewDecoder(req);
  for (size_t off = 0; off < stream.size(); off += piece) {
    absl::Status s =
        d->Feed(absl::string_view(stream).substr(off, piece), [&](absl::string_view t) {
          if (streamed != nullptr) streamed->append(t.data(), t.size());
        });
    if (!s.ok()) return s;
  }
  return d->Finish();
}

TEST(SseParserTest, SameEventsWhereverTheChunksAreCut) {
  const std::string stream =
      ": keep-alive\r\n"
      "event: first\r\ndata: one\r\n\r\n"
      "data: two\ndata: lines\n\n"
      "data:no space\r\r"
      "id: 7\nretry: 10\n\n";  // no data: no event
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    SseParser p;
    std::vector<std::pair<std::string, std::string>> got;
    for (size_t off = 0; off < stream.size(); off += piece) {
      ASSERT_TRUE(p.Feed(absl::string_view(stream).substr(off, piece), [&](const SseEvent& e) {
                     got.emplace_back(e.event, e.data);
                     return absl::OkStatus();
                   }).ok());
    }
    EXPECT_THAT(got, ElementsAre(std::pair{"first", "one"}, std::pair{"", "two\nlines"},
                                 std::pair{"", "no space"}))
        << "pieces of " << piece;
    EXPECT_FALSE(p.pending());
  }
}

TEST(OpenAiCodecTest, StreamedTextToolCallsAndUsageAddUp) {
  std::unique_ptr<Codec> codec = NewCodec("openai");
  ChatRequest req = RequestWithTools();
  auto chunk = [](const json& j) { return absl::StrCat("data: ", j.dump(), "\n\n"); };
  std::string stream =
      chunk({{"choices", {{{"delta", {{"role", "assistant"}, {"content", ""}}}}}}}) +
      chunk({{"choices", {{{"delta", {{"content", "Let me "}}}}}}}) +
      chunk({{"choices", {{{"delta", {{"content", "look."}}}}}}}) +
      chunk({{"choices",
              {{{"delta",
                 {{"tool_calls",
                   {{{"index", 0},
                     {"id", "call_1"},
                     {"type", "function"},
                     {"function", {{"name", "fs_read"}, {"arguments", "{\"pa"}}}}}}}}}}}}) +
      chunk({{"choices",
              {{{"delta",
                 {{"tool_calls",
                   {{{"index", 0}, {"function", {{"arguments", "th\":\"a.txt\"}"}}}}}}}}}}}}) +
      chunk({{"choices", {{{"delta", json::object()}, {"finish_reason", "tool_calls"}}}}}) +
      chunk({{"choices", json::array()},
             {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 4}}}}) +
      "data: [DONE]\n\n";
  for (size_t piece : {size_t{1}, size_t{7}, stream.size()}) {
    std::string streamed;
    absl::StatusOr<ChatResult> r = Decode(*codec, req, stream, piece, &streamed);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text, "Let me look.");
    EXPECT_EQ(streamed, "Let me look.");
    ASSERT_EQ(r->tool_calls.size(), 1u);
    EXPECT_EQ(r->tool_calls[0], (ToolCall{"call_1", "fs.read", "{\"path\":\"a.txt\"}"}));
    EXPECT_EQ(r->finish_reason, "tool_calls");
    EXPECT_EQ(r->usage.prompt_tokens, 11);
    EXPECT_EQ(r->usage.completion_tokens, 4);
  }
  // Cut before [DONE]: reported as such, not taken for a whole answer.
  absl::StatusOr<ChatResult> cut =
      Decode(*codec, req, stream.substr(0, stream.find("data: [DONE]")), 64);
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss);
  // Not JSON: an error that quotes it, never a crash.
  absl::StatusOr<ChatResult> bad = Decode(*codec, req, "data: {not json\n\n", 5);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(bad.status().message(), HasSubstr("{not json"));
}

TEST(OpenAiCodecTest, BodyUsesWireToolNamesAndToolMessages) {
  std::unique_ptr<Codec> codec = NewCodec("openai");
  ChatRequest req = RequestWithTools();
  req.messages.push_back(AssistantMessage("", {{"c1", "fs.read", "{\"path\":\"x\"}"}}));
  req.messages.push_back(ToolResultMessage("c1", "fs.read", "contents"));
  req.temperature = 0.2;
  json body = json::parse(codec->Body(req));
  EXPECT_EQ(body["tools"][0]["function"]["name"], "fs_read");
  EXPECT_EQ(body["tools"][1]["function"]["name"], "shell_run");
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][2]["tool_calls"][0]["function"]["name"], "fs_read");
  EXPECT_EQ(body["messages"][2]["tool_calls"][0]["function"]["arguments"], "{\"path\":\"x\"}");
  EXPECT_EQ(body["messages"][3]["role"], "tool");
  EXPECT_EQ(body["messages"][3]["tool_call_id"], "c1");
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["temperature"], 0.2);
  // A whole response, with a tool the request never offered: kept as named, for the
  // caller to refuse.
  absl::StatusOr<ChatResult> r = codec->Parse(
      R"({"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[
          {"id":"c9","type":"function","function":{"name":"rm_rf","arguments":"{}"}}]},
          "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":3,"completion_tokens":2}})",
      req);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->tool_calls.size(), 1u);
  EXPECT_EQ(r->tool_calls[0].name, "rm_rf");
  EXPECT_EQ(r->usage.prompt_tokens, 3);
  EXPECT_EQ(codec->ErrorMessage(R"({"error":{"message":"model not found","type":"x"}})"),
            "model not found");
}

TEST(AnthropicCodecTest, StreamedBlocksAndBodyShape) {
  std::unique_ptr<Codec> codec = NewCodec("anthropic");
  ChatRequest req = RequestWithTools();
  auto ev = [](const char* name, const json& j) {
    return absl::StrCat("event: ", name, "\ndata: ", j.dump(), "\n\n");
  };
  std::string stream =
      ev("message_start",
         {{"type", "message_start"},
          {"message", {{"usage", {{"input_tokens", 20}, {"output_tokens", 1}}}}}}) +
      ev("content_block_start", {{"type", "content_block_start"},
                                 {"index", 0},
                                 {"content_block", {{"type", "text"}, {"text", ""}}}}) +
      ev("ping", {{"type", "ping"}}) +
      ev("content_block_delta", {{"type", "content_block_delta"},
                                 {"index", 0},
                                 {"delta", {{"type", "text_delta"}, {"text", "Reading."}}}}) +
      ev("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}) +
      ev("content_block_start", {{"type", "content_block_start"},
                                 {"index", 1},
                                 {"content_block",
                                  {{"type", "tool_use"},
                                   {"id", "tu_1"},
                                   {"name", "fs_read"},
                                   {"input", json::object()}}}}) +
      ev("content_block_delta",
         {{"type", "content_block_delta"},
          {"index", 1},
          {"delta", {{"type", "input_json_delta"}, {"partial_json", "{\"path\": "}}}}) +
      ev("content_block_delta",
         {{"type", "content_block_delta"},
          {"index", 1},
          {"delta", {{"type", "input_json_delta"}, {"partial_json", "\"b.txt\"}"}}}}) +
      ev("content_block_stop", {{"type", "content_block_stop"}, {"index", 1}}) +
      ev("message_delta", {{"type", "message_delta"},
                           {"delta", {{"stop_reason", "tool_use"}}},
                           {"usage", {{"output_tokens", 9}}}}) +
      ev("message_stop", {{"type", "message_stop"}});
  for (size_t piece : {size_t{1}, size_t{13}, stream.size()}) {
    absl::StatusOr<ChatResult> r = Decode(*codec, req, stream, piece);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text, "Reading.");
    ASSERT_EQ(r->tool_calls.size(), 1u);
    EXPECT_EQ(r->tool_calls[0].name, "fs.read");
    EXPECT_EQ(json::parse(r->tool_calls[0].arguments), (json{{"path", "b.txt"}}));
    EXPECT_EQ(r->finish_reason, "tool_calls");
    EXPECT_EQ(r->usage.prompt_tokens, 20);
    EXPECT_EQ(r->usage.completion_tokens, 9);
  }
  EXPECT_EQ(
      Decode(*codec, req, stream.substr(0, stream.find("event: message_stop")), 50).status().code(),
      absl::StatusCode::kDataLoss);

  req.messages.push_back(AssistantMessage("", {{"tu_1", "fs.read", "{\"path\":\"b.txt\"}"}}));
  req.messages.push_back(ToolResultMessage("tu_1", "fs.read", "one"));
  req.messages.push_back(ToolResultMessage("tu_2", "fs.read", "no such file", true));
  json body = json::parse(codec->Body(req));
  EXPECT_EQ(body["system"], "be brief");
  EXPECT_EQ(body["max_tokens"], 4096);
  EXPECT_EQ(body["tools"][0]["name"], "fs_read");
  ASSERT_EQ(body["messages"].size(), 3u);  // user, assistant, one user of two results
  EXPECT_EQ(body["messages"][1]["content"][0]["type"], "tool_use");
  EXPECT_EQ(body["messages"][1]["content"][0]["input"]["path"], "b.txt");
  EXPECT_EQ(body["messages"][2]["content"][1]["tool_use_id"], "tu_2");
  EXPECT_EQ(body["messages"][2]["content"][1]["is_error"], true);
}

TEST(OllamaCodecTest, NdjsonStreamWithToolCalls) {
  std::unique_ptr<Codec> codec = NewCodec("ollama");
  ChatRequest req = RequestWithTools();
  std::string stream =
      json{{"message", {{"role", "assistant"}, {"content", "Hel"}}}, {"done", false}}.dump() +
      "\n" + json{{"message", {{"role", "assistant"}, {"content", "lo"}}}, {"done", false}}.dump() +
      "\n" +
      json{{"message",
            {{"role", "assistant"},
             {"content", ""},
             {"tool_calls",
              {{{"function", {{"name", "shell_run"}, {"arguments", {{"argv", {"ls"}}}}}}}}}}},
           {"done", true},
           {"done_reason", "stop"},
           {"prompt_eval_count", 30},
           {"eval_count", 5}}
          .dump() +
      "\n";
  for (size_t piece : {size_t{1}, size_t{9}, stream.size()}) {
    absl::StatusOr<ChatResult> r = Decode(*codec, req, stream, piece);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text, "Hello");
    ASSERT_EQ(r->tool_calls.size(), 1u);
    EXPECT_EQ(r->tool_calls[0].name, "shell.run");
    EXPECT_EQ(json::parse(r->tool_calls[0].arguments), (json{{"argv", {"ls"}}}));
    EXPECT_EQ(r->finish_reason, "tool_calls");
    EXPECT_EQ(r->usage.prompt_tokens, 30);
    EXPECT_EQ(r->usage.completion_tokens, 5);
  }
  EXPECT_EQ(Decode(*codec, req, stream.substr(0, stream.find("\n") + 1), 4).status().code(),
            absl::StatusCode::kDataLoss);
  req.max_tokens = 100;
  json body = json::parse(codec->Body(req));
  EXPECT_EQ(body["options"]["num_predict"], 100);
  EXPECT_EQ(body["tools"][1]["function"]["name"], "shell_run");
  EXPECT_EQ(codec->ErrorMessage(R"({"error":"model \"x\" not found"})"), "model \"x\" not found");
}

// The model's reasoning, where each provider sends it apart from the answer: kept in the
// result, never in the answer's text (nor streamed as it).
TEST(CodecReasoningTest, EachProvidersReasoningIsKeptApartFromTheAnswer) {
  ChatRequest req = RequestWithTools();
  {
    std::unique_ptr<Codec> codec = NewCodec("openai");
    auto chunk = [](const json& delta) {
      return absl::StrCat("data: ", json{{"choices", {{{"index", 0}, {"delta", delta}}}}}.dump(),
                          "\n\n");
    };
    std::string stream = chunk({{"role", "assistant"}, {"content", ""}}) +
                         chunk({{"reasoning_content", "First, "}}) +
                         chunk({{"reasoning", "think."}}) + chunk({{"content", "Answer."}}) +
                         "data: [DONE]\n\n";
    std::string streamed;
    absl::StatusOr<ChatResult> r = Decode(*codec, req, stream, 7, &streamed);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->reasoning, "First, think.");
    EXPECT_EQ(r->text, "Answer.");
    EXPECT_EQ(streamed, "Answer.");
    absl::StatusOr<ChatResult> whole = codec->Parse(
        json{{"choices", {{{"message", {{"content", "A."}, {"reasoning_content", "Because."}}}}}}}
            .dump(),
        req);
    ASSERT_TRUE(whole.ok()) << whole.status();
    EXPECT_EQ(whole->reasoning, "Because.");
    EXPECT_EQ(whole->text, "A.");
  }
  {
    std::unique_ptr<Codec> codec = NewCodec("ollama");
    std::string stream =
        json{{"message", {{"role", "assistant"}, {"thinking", "Hm"}, {"content", ""}}},
             {"done", false}}
            .dump() +
        "\n" +
        json{{"message", {{"role", "assistant"}, {"content", "Yes."}}}, {"done", true}}.dump() +
        "\n";
    absl::StatusOr<ChatResult> r = Decode(*codec, req, stream, 5);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->reasoning, "Hm");
    EXPECT_EQ(r->text, "Yes.");
  }
  {
    std::unique_ptr<Codec> codec = NewCodec("anthropic");
    auto ev = [](const char* name, const json& j) {
      return absl::StrCat("event: ", name, "\ndata: ", j.dump(), "\n\n");
    };
    std::string stream =
        ev("message_start",
           {{"type", "message_start"},
            {"message", {{"usage", {{"input_tokens", 5}, {"output_tokens", 1}}}}}}) +
        ev("content_block_start", {{"type", "content_block_start"},
                                   {"index", 0},
                                   {"content_block", {{"type", "thinking"}, {"thinking", ""}}}}) +
        ev("content_block_delta",
           {{"type", "content_block_delta"},
            {"index", 0},
            {"delta", {{"type", "thinking_delta"}, {"thinking", "Let me see."}}}}) +
        ev("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}}) +
        ev("content_block_start", {{"type", "content_block_start"},
                                   {"index", 1},
                                   {"content_block", {{"type", "text"}, {"text", ""}}}}) +
        ev("content_block_delta", {{"type", "content_block_delta"},
                                   {"index", 1},
                                   {"delta", {{"type", "text_delta"}, {"text", "Done."}}}}) +
        ev("content_block_stop", {{"type", "content_block_stop"}, {"index", 1}}) +
        ev("message_delta", {{"type", "message_delta"},
                             {"delta", {{"stop_reason", "end_turn"}}},
                             {"usage", {{"output_tokens", 3}}}}) +
        ev("message_stop", {{"type", "message_stop"}});
    absl::StatusOr<ChatResult> r = Decode(*codec, req, stream, 11);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->reasoning, "Let me see.");
    EXPECT_EQ(r->text, "Done.");
    absl::StatusOr<ChatResult> whole = codec->Parse(
        json{{"content",
              {{{"type", "thinking"}, {"thinking", "Why."}}, {{"type", "text"}, {"text", "So."}}}},
             {"stop_reason", "end_turn"}}
            .dump(),
        req);
    ASSERT_TRUE(whole.ok()) << whole.status();
    EXPECT_EQ(whole->reasoning, "Why.");
    EXPECT_EQ(whole->text, "So.");
  }
}

// Wrong JSON types where a provider (or a proxy in front of it) sends them: each codec
// reads them as absent, and never throws.
TEST(CodecWrongTypesTest, NullPromptTokensReadAsZeroInEveryCodec) {
  ChatRequest req = RequestWithTools();
  req.stream = false;
  absl::StatusOr<ChatResult> openai = NewCodec("openai")->Parse(
      R"({"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":null,"completion_tokens":"7"}})",
      req);
  ASSERT_TRUE(openai.ok()) << openai.status();
  EXPECT_EQ(openai->text, "hi");
  EXPECT_EQ(openai->usage.prompt_tokens, 0);
  EXPECT_EQ(openai->usage.completion_tokens, 0);

  absl::StatusOr<ChatResult> anthropic =
      NewCodec("anthropic")
          ->Parse(R"({"content":[{"type":"text","text":"hi"}],"stop_reason":null,)"
                  R"("usage":{"input_tokens":null,"output_tokens":-5}})",
                  req);
  ASSERT_TRUE(anthropic.ok()) << anthropic.status();
  EXPECT_EQ(anthropic->text, "hi");
  EXPECT_EQ(anthropic->usage.prompt_tokens, 0);
  EXPECT_EQ(anthropic->usage.completion_tokens, 0);

  absl::StatusOr<ChatResult> ollama = NewCodec("ollama")->Parse(
      R"({"message":{"content":"hi"},"done":true,"prompt_eval_count":null,"eval_count":1e300})",
      req);
  ASSERT_TRUE(ollama.ok()) << ollama.status();
  EXPECT_EQ(ollama->usage.prompt_tokens, 0);
  EXPECT_EQ(ollama->usage.completion_tokens, int64_t{1} << 40);  // clamped, not overflowed
}

TEST(CodecWrongTypesTest, StreamsWithWrongTypesDecodeOrFailWithoutThrowing) {
  ChatRequest req = RequestWithTools();
  const std::string openai_stream =
      "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":\"0\",\"id\":5,"
      "\"function\":{\"name\":null,\"arguments\":{\"x\":1}}}]}}]}\n\n"
      "data: {\"choices\":{}}\n\n"
      "data: [1,2,3]\n\n"
      "data: \"just a string\"\n\n"
      "data: {\"choices\":[null,7]}\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":7,\"tool_calls\":{}}}]}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":null,\"completion_tokens\":3.9}}\n\n"
      "data: [DONE]\n\n";
  absl::StatusOr<ChatResult> r;
  ASSERT_NO_THROW(r = Decode(*NewCodec("openai"), req, openai_stream, 7));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->text, "a");
  EXPECT_EQ(r->usage.prompt_tokens, 0);
  EXPECT_EQ(r->usage.completion_tokens, 3);

  const std::string anthropic_stream =
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":[]}\n\n"
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":"
      "{\"input_tokens\":null}}}\n\n"
      "data: {\"type\":\"content_block_start\",\"index\":null,\"content_block\":7}\n\n"
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
      "\"text\":[1]}}\n\n"
      "data: {\"type\":\"message_delta\",\"delta\":null,\"usage\":{\"output_tokens\":null}}\n\n"
      "data: [\"not an object\"]\n\n"
      "data: {\"type\":7}\n\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  ASSERT_NO_THROW(r = Decode(*NewCodec("anthropic"), req, anthropic_stream, 5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->usage.prompt_tokens, 0);

  const std::string ollama_stream =
      "[1]\n\"text\"\n{\"message\":[],\"done\":\"yes\"}\n"
      "{\"message\":{\"tool_calls\":{\"a\":1},\"content\":null},\"done\":false}\n"
      "{\"message\":{\"tool_calls\":[null,{\"function\":[]}]},\"done\":true,"
      "\"done_reason\":5,\"eval_count\":null}\n";
  ASSERT_NO_THROW(r = Decode(*NewCodec("ollama"), req, ollama_stream, 3));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tool_calls.size(), 2u);

  // An error member of any shape is an error, not an exception.
  for (const char* err : {R"({"error":{"message":7}})", R"({"error":[1]})", R"({"error":"x"})"}) {
    absl::StatusOr<ChatResult> e;
    ASSERT_NO_THROW(e = Decode(*NewCodec("openai"), req, absl::StrCat("data: ", err, "\n\n"), 4));
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnavailable) << err;
    ASSERT_NO_THROW(e = Decode(*NewCodec("ollama"), req, absl::StrCat(err, "\n"), 4));
    EXPECT_EQ(e.status().code(), absl::StatusCode::kUnavailable) << err;
  }
  absl::StatusOr<ChatResult> e;
  ASSERT_NO_THROW(
      e = Decode(*NewCodec("anthropic"), req,
                 "data: {\"type\":\"error\",\"error\":{\"type\":5,\"message\":null}}\n\n", 4));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnavailable);
  ASSERT_NO_THROW(NewCodec("anthropic")->ErrorMessage(R"({"error":{"type":1,"message":[]}})"));
}

TEST(CodecTextTest, ErrorBodiesAndRequestsWithBytesThatAreNotUtf8) {
  // An error page in Latin-1, longer than the excerpt: valid UTF-8, cut on a boundary.
  std::string page = "<html>erreur: acc\xe8s refus\xe9 " + std::string(300, '\xe9');
  for (const char* kind : {"openai", "anthropic", "ollama"}) {
    std::string msg = NewCodec(kind)->ErrorMessage(page);
    EXPECT_TRUE(IsValidUtf8(msg)) << kind;
    EXPECT_LE(msg.size(), 210u) << kind;
  }
  std::string cjk;
  for (int i = 0; i < 100; ++i) cjk += "\xe4\xb8\xad";
  EXPECT_TRUE(IsValidUtf8(codec_internal::Excerpt(cjk)));
  // A tool result that is not UTF-8 (a Latin-1 file) still makes a request body.
  ChatRequest req = RequestWithTools();
  req.messages.push_back(AssistantMessage("", {{"c1", "fs.read", R"({"path":"l.txt"})"}}));
  req.messages.push_back(ToolResultMessage("c1", "fs.read", "caf\xe9"));
  for (const char* kind : {"openai", "anthropic", "ollama"}) {
    std::string body;
    ASSERT_NO_THROW(body = NewCodec(kind)->Body(req)) << kind;
    EXPECT_NE(body.find("caf\xef\xbf\xbd"), std::string::npos) << kind;
  }
}

TEST(RetryAfterTest, SecondsOrAnHttpDate) {
  absl::Time now = absl::FromUnixSeconds(1700000000);
  EXPECT_EQ(ParseRetryAfter("3", now), absl::Seconds(3));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter(absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", now + absl::Seconds(90),
                                             absl::UTCTimeZone()),
                            now),
            absl::Seconds(90));
  EXPECT_EQ(ParseRetryAfter("soon", now), std::nullopt);
}

TEST(WireToolNameTest, OnlyLettersDigitsUnderscoreAndDash) {
  EXPECT_EQ(WireToolName("fs.read"), "fs_read");
  EXPECT_EQ(WireToolName("git.commit"), "git_commit");
  EXPECT_EQ(WireToolName("complete_task"), "complete_task");
  EXPECT_EQ(WireToolName(std::string(80, 'a')).size(), 64u);
}

}  // namespace
}  // namespace agentd::llm
