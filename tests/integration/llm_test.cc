// agentd's LLM client against dev/fakellm: a real HTTP server speaking the OpenAI,
// Anthropic and Ollama wire formats from a scenario, with its faults.
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agents/llm/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::testing {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
namespace llm = ::agentd::llm;

constexpr char kScenario[] = R"(
rules:
  - name: slow
    match: {contains: "take your time"}
    reply: {text: "late", delay_ms: 20000}
  - name: retry-after
    match: {contains: "busy"}
    times: 1
    fault: {kind: status, status: 429, retry_after: 1}
  - name: flaky
    match: {contains: "flaky"}
    times: 2
    fault: {kind: status, status: 500}
  - name: dropped
    match: {contains: "dropped"}
    times: 1
    fault: {kind: drop, after_chunks: 0}
  - name: stall
    match: {contains: "stall"}
    reply: {text: "one two three four five six"}
    fault: {kind: stall, after_chunks: 2}
  - name: cut-once
    match: {contains: "cut once"}
    times: 1
    reply: {text: "one two three four five six"}
    fault: {kind: truncate, after_chunks: 5}
  - name: dropped-mid-text-once
    match: {contains: "drop once"}
    times: 1
    reply: {text: "one two three four five six"}
    fault: {kind: drop, after_chunks: 3}
  - name: whole-after-a-cut
    match: {contains: "once"}
    reply: {text: "one two three four five six"}
  - name: cut
    match: {contains: "cut"}
    reply: {text: "one two three four five six"}
    fault: {kind: truncate, after_chunks: 5}
  - name: garbage
    match: {contains: "garbage"}
    fault: {kind: malformed}
  - name: read
    match: {contains: "read"}
    reply:
      text: "Reading it now."
      tool_calls: [{name: fs_read, arguments: {path: "README.md"}}]
      usage: {prompt_tokens: 12, completion_tokens: 7}
  - name: plain
    match: {contains: "hello"}
    reply: {text: "Hi there, how can I help?", usage: {prompt_tokens: 5, completion_tokens: 8}}
)";

class LlmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeLlm>(dir_, kScenario);
    ASSERT_FALSE(fake_->url().empty()) << fake_->log();
  }
  std::unique_ptr<llm::LlmClient> Client(
      const std::string& kind, const std::function<void(llm::ProviderOptions&)>& tweak = nullptr) {
    llm::ProviderOptions o;
    o.name = "fake";
    o.kind = kind;
    o.base_url = kind == "ollama" ? fake_->url() : fake_->url() + "/v1";
    o.backoff_initial = absl::Milliseconds(20);
    o.input_per_mtok_usd = 2.0;
    o.output_per_mtok_usd = 10.0;
    if (tweak) tweak(o);
    absl::StatusOr<std::unique_ptr<llm::LlmClient>> c = llm::LlmClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  static llm::ChatRequest Request(const std::string& text, bool stream = true) {
    llm::ChatRequest req;
    req.model = "test-model";
    req.stream = stream;
    req.messages = {llm::SystemMessage("You are terse."), llm::UserMessage(text)};
    req.tools = {{"fs.read", "Reads a file in the workspace",
                  json{{"type", "object"}, {"properties", {{"path", {{"type", "string"}}}}}}}};
    return req;
  }

  TempDir dir_;
  std::unique_ptr<FakeLlm> fake_;
};

TEST_F(LlmTest, EachProviderGivesTextToolCallsAndUsageStreamedOrNot) {
  for (const char* kind : {"openai", "anthropic", "ollama"}) {
    for (bool stream : {true, false}) {
      SCOPED_TRACE(absl::StrCat(kind, stream ? " streamed" : " whole"));
      auto client = Client(kind);
      std::string streamed;
      absl::StatusOr<llm::ChatResult> r =
          client->Chat(Request("please read the readme", stream),
                       [&](absl::string_view t) { streamed.append(t.data(), t.size()); });
      ASSERT_TRUE(r.ok()) << r.status() << fake_->log();
      EXPECT_EQ(r->text, "Reading it now.");
      EXPECT_EQ(streamed, stream ? "Reading it now." : "");
      ASSERT_EQ(r->tool_calls.size(), 1u);
      EXPECT_EQ(r->tool_calls[0].name, "fs.read") << "mapped back from fs_read";
      EXPECT_EQ(json::parse(r->tool_calls[0].arguments), (json{{"path", "README.md"}}));
      EXPECT_FALSE(r->tool_calls[0].id.empty());
      EXPECT_EQ(r->finish_reason, "tool_calls");
      EXPECT_EQ(r->usage.prompt_tokens, 12);
      EXPECT_EQ(r->usage.completion_tokens, 7);
      EXPECT_DOUBLE_EQ(r->cost_usd, (12 * 2.0 + 7 * 10.0) / 1e6);
      EXPECT_EQ(r->attempts, 1);
    }
  }
}

TEST_F(LlmTest, A429WithRetryAfterIsHonouredThenTheCallSucceeds) {
  auto client = Client("openai");
  absl::Time start = absl::Now();
  absl::StatusOr<llm::ChatResult> r = client->Chat(Request("are you busy? hello"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->attempts, 2);
  EXPECT_EQ(r->text, "Hi there, how can I help?");
  // The provider said 1s; the client's own backoff would have been 20ms.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(950));
}

TEST_F(LlmTest, ServerErrorsAndADroppedConnectionAreRetried) {
  auto client = Client("anthropic");
  absl::StatusOr<llm::ChatResult> r = client->Chat(Request("flaky hello"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->attempts, 3);
  auto ollama = Client("ollama");
  r = ollama->Chat(Request("dropped hello"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->attempts, 2);
  // Out of retries: the error names the provider, the model, the status and the message.
  TempDir other_dir;
  FakeLlm other(other_dir, kScenario);  // fresh `times` counters
  auto strict = Client("openai", [&](llm::ProviderOptions& o) {
    o.max_retries = 1;
    o.base_url = other.url() + "/v1";
  });
  r = strict->Chat(Request("flaky hello"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("openai provider \"fake\" (model test-model)"));
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 500"));
  EXPECT_THAT(r.status().message(), HasSubstr("(after 2 attempts)"));
}

// A timing window: the idle timeout must not pass before the first chunks arrive.
TEST_F(LlmTest, AStallHitsTheIdleTimeout) {
  auto client = Client("openai", [](llm::ProviderOptions& o) {
    o.timeouts.idle = Scaled(absl::Milliseconds(300));
    o.max_retries = 0;
  });
  std::string streamed;
  absl::StatusOr<llm::ChatResult> r = client->Chat(
      Request("stall please"), [&](absl::string_view t) { streamed.append(t.data(), t.size()); });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(r.status().message(), HasSubstr("idle timeout"));
  EXPECT_FALSE(streamed.empty()) << "the chunks before the stall arrived";
}

// A model call has no side effect until its response is complete: a stream cut off or
// dropped after text was streamed is made again whole, and the caller is told to discard
// what it was shown first, so what it keeps is exactly the answer, once.
TEST_F(LlmTest, AStreamCutAfterTextIsRetriedWholeAndItsTextDiscarded) {
  for (const char* kind : {"openai", "anthropic", "ollama"}) {
    for (const char* prompt : {"cut once", "drop once"}) {
      SCOPED_TRACE(absl::StrCat(kind, ": ", prompt));
      TempDir fresh_dir;
      FakeLlm fresh(fresh_dir, kScenario);  // fresh `times` counters
      auto client = Client(kind, [&](llm::ProviderOptions& o) {
        o.base_url = std::string(kind) == "ollama" ? fresh.url() : fresh.url() + "/v1";
      });
      std::string shown;  // what a watcher keeps: the text since the last discard
      int discards = 0;
      absl::StatusOr<llm::ChatResult> r = client->Chat(
          Request(prompt), [&](absl::string_view t) { shown.append(t.data(), t.size()); }, nullptr,
          [&] {
            ++discards;
            EXPECT_FALSE(shown.empty()) << "a discard with nothing streamed";
            shown.clear();
          });
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->attempts, 2);
      // Cut after five chunks, every provider has streamed text; dropped after three, an
      // Anthropic stream has sent only its preamble, and there is nothing to discard.
      if (std::string(prompt) == "cut once") {
        EXPECT_EQ(discards, 1);
      } else {
        EXPECT_LE(discards, 1);
      }
      EXPECT_EQ(r->text, "one two three four five six");
      EXPECT_EQ(shown, r->text);
    }
  }
}

// A stream cut on every attempt fails once the retries run out, saying so.
TEST_F(LlmTest, AStreamCutOnEveryAttemptFailsAfterTheRetries) {
  for (const char* kind : {"openai", "anthropic", "ollama"}) {
    SCOPED_TRACE(kind);
    auto client = Client(kind, [](llm::ProviderOptions& o) { o.max_retries = 1; });
    int discards = 0;
    absl::StatusOr<llm::ChatResult> r = client->Chat(
        Request("cut me off"), [](absl::string_view) {}, nullptr, [&] { ++discards; });
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
    EXPECT_THAT(r.status().message(), HasSubstr("cut off"));
    EXPECT_THAT(r.status().message(), HasSubstr("(after 2 attempts)"));
    EXPECT_EQ(discards, 1) << "before the one retry";
  }
}

TEST_F(LlmTest, MalformedJsonIsAClearErrorNotACrash) {
  for (const char* kind : {"openai", "anthropic", "ollama"}) {
    for (bool stream : {true, false}) {
      SCOPED_TRACE(absl::StrCat(kind, stream ? " streamed" : " whole"));
      absl::StatusOr<llm::ChatResult> r = Client(kind)->Chat(Request("garbage", stream));
      EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal) << r.status();
      EXPECT_THAT(r.status().message(), HasSubstr("not valid JSON"));
    }
  }
}

TEST_F(LlmTest, AnUnmatchedRequestShowsTheProvidersOwnMessage) {
  absl::StatusOr<llm::ChatResult> r = Client("anthropic")->Chat(Request("something else"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("HTTP 400"));
  EXPECT_THAT(r.status().message(), HasSubstr("no rule matched"));
  EXPECT_EQ(r.status().message().find("attempts"), absl::string_view::npos) << "not retried";
}

TEST_F(LlmTest, CancelEndsACallThatIsWaitingForTheProvider) {
  auto client = Client("openai");
  llm::CancelToken cancel;
  absl::Notification done;
  absl::StatusOr<llm::ChatResult> r;
  std::thread call([&] {
    r = client->Chat(Request("take your time"), nullptr, &cancel);
    done.Notify();
  });
  bool asked = WaitFor([&] { return fake_->Requests() == 1; }, absl::Seconds(10));
  cancel.Cancel();
  // The provider would answer after 20s; the call ends long before. A timing window,
  // scaled with the machine's speed.
  bool ended = done.WaitForNotificationWithTimeout(Scaled(absl::Seconds(5)));
  call.join();  // before any ASSERT returns: a joinable thread's destructor aborts
  ASSERT_TRUE(asked) << "the provider was not asked: " << fake_->Requests() << " requests\n"
                     << fake_->log();
  EXPECT_TRUE(ended) << "still waiting for the provider after the cancel";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
}

TEST_F(LlmTest, AnUnreachableProviderIsUnavailableAfterRetries) {
  auto client = Client("ollama", [](llm::ProviderOptions& o) {
    o.base_url = "http://127.0.0.1:1";
    o.max_retries = 1;
  });
  absl::StatusOr<llm::ChatResult> r = client->Chat(Request("hello"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("ollama provider \"fake\""));
  EXPECT_THAT(r.status().message(), HasSubstr("(after 2 attempts)"));
}

TEST_F(LlmTest, ARecordedSessionReplaysOfflineWithTheSameResultAndNoKey) {
  const std::string cassette = dir_.Join("session.jsonl");
  const std::string key = "sk-test-DO-NOT-LEAK-1234567890";
  std::vector<llm::ChatResult> live;
  {
    auto client = Client("anthropic", [&](llm::ProviderOptions& o) {
      o.api_key = key;
      o.record_path = cassette;
    });
    for (const char* text : {"please read the readme", "hello"}) {
      absl::StatusOr<llm::ChatResult> r = client->Chat(Request(text));
      ASSERT_TRUE(r.ok()) << r.status();
      live.push_back(*r);
    }
  }
  fake_->process()->Signal(SIGKILL);  // offline from here on
  fake_->process()->WaitExit(absl::Seconds(10));
  auto replay = Client("replay", [&](llm::ProviderOptions& o) { o.cassette = cassette; });
  for (size_t i = 0; i < live.size(); ++i) {
    std::string streamed;
    absl::StatusOr<llm::ChatResult> r =
        replay->Chat(Request(i == 0 ? "please read the readme" : "hello"),
                     [&](absl::string_view t) { streamed.append(t.data(), t.size()); });
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text, live[i].text);
    EXPECT_EQ(streamed, live[i].text);
    EXPECT_EQ(r->tool_calls, live[i].tool_calls);
    EXPECT_EQ(r->usage.completion_tokens, live[i].usage.completion_tokens);
  }
  // A request the recording never saw is refused, saying so.
  absl::StatusOr<llm::ChatResult> off = replay->Chat(Request("something new"));
  EXPECT_EQ(off.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(off.status().message(), HasSubstr("has no recorded response"));
  EXPECT_EQ(ReadFileOrEmpty(cassette).find(key), std::string::npos) << "the key leaked";
  EXPECT_NE(ReadFileOrEmpty(cassette).find("fs_read"), std::string::npos);
}

}  // namespace
}  // namespace agentd::testing
