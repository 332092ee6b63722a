// LlmClient: one chat call to a configured provider — the request in the provider's wire
// format, the response streamed or whole, retries, timeouts, cancellation, usage and cost.
//
// Retried whole, with capped exponential backoff and jitter (or the provider's
// Retry-After): HTTP 408, 409, 429 and 5xx, a failed connection, a timeout, and a stream
// cut off at any point. A model call has no side effect until its response is complete,
// so repeating it is always safe; text already streamed to the caller is declared void
// (on_discard) before the retry streams the answer again. When retries run out the error
// says it all: provider, model, HTTP status and the provider's own message, and how many
// attempts were made. Malformed responses are not retried.
//
// Thread-safety: Chat() may be called from several threads at once. Cancel through the
// CancelToken from any thread: the call returns CANCELLED within ~100 ms.
#ifndef AGENTD_AGENTS_LLM_CLIENT_H_
#define AGENTD_AGENTS_LLM_CLIENT_H_

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agents/llm/codec.h"
#include "agents/llm/http.h"
#include "agents/llm/types.h"

namespace agentd::llm {

struct ProviderOptions {
  std::string name;      // the config's name for it ("local"), for messages
  std::string kind;      // openai | anthropic | ollama | replay
  std::string base_url;  // empty: the provider's public default
  std::string api_key;   // "" when the provider needs none
  Timeouts timeouts;
  int max_retries = 4;
  absl::Duration backoff_initial = absl::Milliseconds(500);
  absl::Duration backoff_max = absl::Seconds(30);
  // A Retry-After longer than this is not waited for: the call fails saying so.
  absl::Duration retry_after_max = absl::Minutes(2);
  double input_per_mtok_usd = 0, output_per_mtok_usd = 0;  // the model's price
  std::string cassette;     // kind replay: the cassette to play back (cassette.h)
  std::string record_path;  // when set, every exchange is appended to this cassette
};

class LlmClient {
 public:
  // Errors: INVALID_ARGUMENT for a provider kind agentd does not speak; a cassette that
  // cannot be loaded (kind replay). `transport` is not owned; null means a CurlTransport
  // of the client's own (or, for replay, the cassette).
  static absl::StatusOr<std::unique_ptr<LlmClient>> Create(ProviderOptions options,
                                                           Transport* transport = nullptr);

  // Sends `req`; streamed text goes to `on_text` as it arrives (when req.stream), and
  // `on_discard` is called before a retry when text of the failed attempt was streamed.
  // Errors: UNAVAILABLE (the provider failed and retries ran out, or it is unreachable),
  // RESOURCE_EXHAUSTED (429 to the end), DEADLINE_EXCEEDED (a timeout), CANCELLED,
  // INVALID_ARGUMENT / PERMISSION_DENIED / UNAUTHENTICATED / NOT_FOUND (4xx: not retried),
  // DATA_LOSS (every attempt's stream was cut off), INTERNAL (a response that is not the
  // provider's format). `stats`, when given, says how the call went, whatever the outcome.
  absl::StatusOr<ChatResult> Chat(const ChatRequest& req, const TextCallback& on_text = nullptr,
                                  const CancelToken* cancel = nullptr,
                                  const DiscardCallback& on_discard = nullptr,
                                  CallStats* stats = nullptr);

  const ProviderOptions& options() const { return options_; }

 private:
  LlmClient(ProviderOptions options, std::unique_ptr<Codec> codec)
      : options_(std::move(options)), codec_(std::move(codec)) {}
  // One HTTP attempt. `*delivered` is set once text went to on_text, and `*first_token`
  // to when the first streamed text arrived (a call not streamed, or answered with tool
  // calls alone, has none: its first byte says nothing of the model's first token).
  absl::StatusOr<ChatResult> Attempt(const ChatRequest& req, const std::string& body,
                                     const TextCallback& on_text, const CancelToken* cancel,
                                     bool* delivered, HttpResponse* response,
                                     absl::Time* first_token);
  absl::Duration Backoff(int attempt);

  ProviderOptions options_;
  std::unique_ptr<Codec> codec_;
  std::vector<std::unique_ptr<Transport>> owned_;
  Transport* transport_ = nullptr;
  absl::Mutex mu_;
  // The backoff's jitter, seeded at the first retry: an agent makes a client per task,
  // and most tasks never retry (seeding from std::random_device was half the cost of
  // making the client).
  std::optional<std::mt19937_64> rng_ ABSL_GUARDED_BY(mu_);
};

// A Retry-After header value (delta-seconds, or an HTTP date) as a wait from `now`;
// nullopt when it is neither.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now);

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_CLIENT_H_
