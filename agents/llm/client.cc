#include "agents/llm/client.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agents/llm/cassette.h"
#include "common/text.h"

namespace agentd::llm {
namespace {

bool RetryableStatus(long status) {
  return status == 408 || status == 409 || status == 429 || status >= 500;
}

absl::StatusCode CodeForHttp(long status) {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
      return absl::StatusCode::kDeadlineExceeded;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
}

// Retried: what may go better next time and has not been shown to anyone yet.
bool RetryableError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable ||
         s.code() == absl::StatusCode::kDeadlineExceeded || s.code() == absl::StatusCode::kDataLoss;
}

// The codecs read every JSON value type-checked and never throw by design; this is the
// backstop at their boundary, so that a codec bug fails the call (INTERNAL, not retried)
// instead of ending the agent's turn or unwinding through libcurl.
absl::Status CodecException(const std::exception& e) {
  return absl::InternalError(
      absl::StrCat("the provider's response could not be decoded: ", ValidUtf8(e.what())));
}

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  double secs = 0;
  if (absl::SimpleAtod(value, &secs) && secs >= 0) return absl::Seconds(secs);
  absl::Time when;
  std::string err;
  // RFC 9110 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", value, absl::UTCTimeZone(), &when, &err)) {
    return std::max(absl::ZeroDuration(), when - now);
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<LlmClient>> LlmClient::Create(ProviderOptions options,
                                                             Transport* transport) {
  std::unique_ptr<Transport> cassette;
  std::string kind = options.kind;
  if (kind == "replay") {
    absl::StatusOr<std::unique_ptr<CassetteTransport>> c =
        CassetteTransport::Load(options.cassette);
    if (!c.ok()) {
      return absl::Status(c.status().code(),
                          absl::StrCat("provider \"", options.name, "\": ", c.status().message()));
    }
    kind = (*c)->kind();
    if (transport == nullptr) transport = c->get();
    cassette = *std::move(c);
  }
  std::unique_ptr<Codec> codec = NewCodec(kind);
  if (codec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("provider \"", options.name, "\": kind \"", kind,
                     "\" is not one agentd speaks (openai, anthropic, ollama, replay)"));
  }
  std::unique_ptr<LlmClient> client(new LlmClient(std::move(options), std::move(codec)));
  if (cassette) client->owned_.push_back(std::move(cassette));
  if (transport == nullptr) {
    client->owned_.push_back(std::make_unique<CurlTransport>());
    transport = client->owned_.back().get();
  }
  if (!client->options_.record_path.empty()) {
    client->owned_.push_back(std::make_unique<RecordingTransport>(transport, client->codec_->kind(),
                                                                  client->options_.record_path));
    transport = client->owned_.back().get();
  }
  client->transport_ = transport;
  return client;
}

absl::Duration LlmClient::Backoff(int attempt) {
  absl::Duration d = std::min(options_.backoff_initial * std::ldexp(1.0, std::min(attempt, 30)),
                              options_.backoff_max);
  absl::MutexLock l(&mu_);
  if (!rng_.has_value()) rng_.emplace(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return d * jitter(*rng_);
}

absl::StatusOr<ChatResult> LlmClient::Attempt(const ChatRequest& req, const std::string& body,
                                              const TextCallback& on_text,
                                              const CancelToken* cancel, bool* delivered,
                                              HttpResponse* response, absl::Time* first_token) {
  HttpRequest http;
  http.url = codec_->Url(options_.base_url);
  http.headers = codec_->Headers(options_.api_key);
  if (!req.traceparent.empty()) http.headers.push_back("traceparent: " + req.traceparent);
  http.body = body;
  http.timeouts = options_.timeouts;
  std::unique_ptr<StreamDecoder> decoder = req.stream ? codec_->NewDecoder(req) : nullptr;
  std::string whole;
  absl::Status decode_error = absl::OkStatus();
  auto on_body = [&](std::string_view bytes) {
    if (!req.stream) {
      whole.append(bytes.data(), bytes.size());
      return true;
    }
    // This runs inside libcurl's write callback: nothing may unwind through C code.
    try {
      decode_error =
          decoder->Feed(absl::string_view(bytes.data(), bytes.size()), [&](absl::string_view text) {
            if (!*delivered) *first_token = absl::Now();
            *delivered = true;
            if (on_text) on_text(text);
          });
    } catch (const std::exception& e) {
      decode_error = CodecException(e);
    }
    return decode_error.ok();
  };
  absl::StatusOr<HttpResponse> r = transport_->Post(http, on_body, cancel);
  if (!decode_error.ok()) return decode_error;
  if (!r.ok()) return r.status();
  *response = *r;
  try {
    if (r->status < 200 || r->status >= 300) {
      return absl::Status(CodeForHttp(r->status),
                          absl::StrCat("HTTP ", r->status, ": ", codec_->ErrorMessage(r->body)));
    }
    return req.stream ? decoder->Finish() : codec_->Parse(whole, req);
  } catch (const std::exception& e) {
    return CodecException(e);
  }
}

absl::StatusOr<ChatResult> LlmClient::Chat(const ChatRequest& req, const TextCallback& on_text,
                                           const CancelToken* cancel,
                                           const DiscardCallback& on_discard, CallStats* stats) {
  const std::string body = codec_->Body(req);
  const absl::Time start = absl::Now();
  CallStats ignored;
  if (stats == nullptr) stats = &ignored;
  *stats = CallStats();
  auto fail = [&](const absl::Status& s, int attempts) {
    return absl::Status(
        s.code(),
        absl::StrCat(options_.kind, " provider \"", options_.name, "\" (model ", req.model,
                     "): ", s.message(),
                     attempts > 1 ? absl::StrCat(" (after ", attempts, " attempts)") : ""));
  };
  for (int attempt = 0;; ++attempt) {
    bool delivered = false;
    HttpResponse response;
    const absl::Time attempt_start = absl::Now();
    absl::Time first_token = absl::InfiniteFuture();
    absl::StatusOr<ChatResult> r =
        Attempt(req, body, on_text, cancel, &delivered, &response, &first_token);
    stats->attempts = attempt + 1;
    stats->latency = absl::Now() - start;
    stats->first_token = first_token == absl::InfiniteFuture() ? absl::InfiniteDuration()
                                                               : first_token - attempt_start;
    if (r.ok()) {
      r->attempts = attempt + 1;
      r->cost_usd =
          (static_cast<double>(r->usage.prompt_tokens) * options_.input_per_mtok_usd +
           static_cast<double>(r->usage.completion_tokens) * options_.output_per_mtok_usd) /
          1e6;
      return r;
    }
    absl::Status s = r.status();
    // An HTTP error is judged by its status; a failure within a 200 response (a stream cut
    // off, a stall) or before any response (no connection) by what went wrong.
    bool http_error = response.status != 0 && (response.status < 200 || response.status >= 300);
    bool retry = http_error ? RetryableStatus(response.status) : RetryableError(s);
    if (!retry || attempt >= options_.max_retries) return fail(s, attempt + 1);
    stats->retry_reasons.push_back(Utf8Prefix(s.message(), 300, "..."));
    absl::Duration wait = Backoff(attempt);
    if (!response.retry_after.empty()) {
      std::optional<absl::Duration> ra = ParseRetryAfter(response.retry_after, absl::Now());
      if (ra && *ra > options_.retry_after_max) {
        return fail(
            absl::Status(s.code(),
                         absl::StrCat(s.message(), "; the provider asks to retry after ",
                                      absl::FormatDuration(*ra), ", longer than agentd waits (",
                                      absl::FormatDuration(options_.retry_after_max), ")")),
            attempt + 1);
      }
      if (ra) wait = *ra;
    }
    if (cancel != nullptr ? cancel->WaitFor(wait) : (absl::SleepFor(wait), false)) {
      return fail(absl::CancelledError("cancelled while waiting to retry"), attempt + 1);
    }
    // Nothing of a cut response has taken effect; what watchers were shown of it is void.
    if (delivered && on_discard) on_discard();
  }
}

}  // namespace agentd::llm
