// Cassettes: provider exchanges recorded to a file and played back, so that a run against
// a real provider can be replayed offline, bit for bit (CI smoke runs, bug reports).
//
// A cassette is JSON Lines, one exchange a line: {"kind", "request" (the body sent, as
// text), "status", "retry_after", "response" (the body received, as text)}. Headers are
// never recorded, so an API key never lands in a cassette.
#ifndef AGENTD_AGENTS_LLM_CASSETTE_H_
#define AGENTD_AGENTS_LLM_CASSETTE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agents/llm/http.h"

namespace agentd::llm {

// Passes calls to `inner` and appends each exchange to the cassette at `path`.
// Thread-safe; `inner` is not owned.
class RecordingTransport final : public Transport {
 public:
  RecordingTransport(Transport* inner, std::string kind, std::string path)
      : inner_(inner), kind_(std::move(kind)), path_(std::move(path)) {}
  absl::StatusOr<HttpResponse> Post(const HttpRequest& req, const BodyCallback& on_body,
                                    const CancelToken* cancel) override;

 private:
  Transport* inner_;
  std::string kind_, path_;
  absl::Mutex mu_;  // one line at a time
};

// Answers each request with the recorded response to the same request body (the first
// such exchange not played yet), delivering it as the provider did: a 2xx body through
// on_body, in pieces. A request the cassette has no answer for is FAILED_PRECONDITION.
class CassetteTransport final : public Transport {
 public:
  // Errors: the file cannot be read, or a line is not an exchange (file:line).
  static absl::StatusOr<std::unique_ptr<CassetteTransport>> Load(const std::string& path);
  // The provider kind the cassette was recorded with (from its first exchange).
  const std::string& kind() const { return kind_; }
  absl::StatusOr<HttpResponse> Post(const HttpRequest& req, const BodyCallback& on_body,
                                    const CancelToken* cancel) override;

 private:
  struct Exchange {
    std::string request, response, retry_after;
    long status = 0;
    bool played = false;
  };
  CassetteTransport() = default;
  std::string path_, kind_;
  absl::Mutex mu_;
  std::vector<Exchange> exchanges_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_CASSETTE_H_
