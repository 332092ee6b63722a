// HTTP for the LLM client: one POST at a time over libcurl, the response body delivered
// as it arrives, with the timeouts a streaming call needs and cancellation.
//
// A Transport is what the client sends requests through: CurlTransport speaks HTTP; a
// cassette (cassette.h) answers from a recording.
#ifndef AGENTD_AGENTS_LLM_HTTP_H_
#define AGENTD_AGENTS_LLM_HTTP_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace agentd::llm {

// Cancels a call from another thread: the call in flight ends within ~100 ms with
// CANCELLED, and a client waiting to retry stops waiting.
class CancelToken {
 public:
  void Cancel() {
    if (!n_.HasBeenNotified()) n_.Notify();
  }
  bool cancelled() const { return n_.HasBeenNotified(); }
  // Waits up to `d`; true when cancelled meanwhile.
  bool WaitFor(absl::Duration d) const { return n_.WaitForNotificationWithTimeout(d); }

 private:
  absl::Notification n_;
};

struct Timeouts {
  absl::Duration connect = absl::Seconds(10);
  absl::Duration first_byte = absl::Seconds(120);  // until the response starts
  absl::Duration idle = absl::Seconds(60);         // between two pieces of the body
  absl::Duration total = absl::Minutes(10);
};

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // JSON
  Timeouts timeouts;
  bool get = false;  // a GET with no body (listing models) instead of the POST of a call
  // Another method than GET or POST (an MCP session's DELETE); sent with no body.
  std::string method;
  // Sent with no Content-Type header (a request with no body).
  bool no_content_type = false;
};

struct HttpResponse {
  long status = 0;
  std::string retry_after;  // the Retry-After header, when there is one
  std::string body;         // an error response's body (2xx bodies go to on_body)
  // Every response header, names in lower case (at most 100 of them, 8 KiB each).
  std::vector<std::pair<std::string, std::string>> headers;
  // The value of header `name` (lower case), or "".
  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

class Transport {
 public:
  // Receives a 2xx response's body as it arrives; returning false aborts the transfer.
  using BodyCallback = std::function<bool(std::string_view bytes)>;
  virtual ~Transport() = default;
  // Errors: UNAVAILABLE (could not connect, connection lost), DEADLINE_EXCEEDED (a
  // timeout: the message says which), CANCELLED, ABORTED (on_body returned false). An
  // HTTP error status is not an error here: it is in the response.
  virtual absl::StatusOr<HttpResponse> Post(const HttpRequest& req, const BodyCallback& on_body,
                                            const CancelToken* cancel) = 0;
  // As Post; `on_headers` is called once the status and headers are in, before the body.
  virtual absl::StatusOr<HttpResponse> Send(
      const HttpRequest& req, const std::function<void(const HttpResponse&)>& on_headers,
      const BodyCallback& on_body, const CancelToken* cancel) {
    (void)on_headers;
    return Post(req, on_body, cancel);
  }
};

// libcurl: an easy handle per call (calls may run on several threads at once).
// curl_global_init runs once, before the first call.
class CurlTransport final : public Transport {
 public:
  absl::StatusOr<HttpResponse> Post(const HttpRequest& req, const BodyCallback& on_body,
                                    const CancelToken* cancel) override {
    return Send(req, nullptr, on_body, cancel);
  }
  absl::StatusOr<HttpResponse> Send(const HttpRequest& req,
                                    const std::function<void(const HttpResponse&)>& on_headers,
                                    const BodyCallback& on_body,
                                    const CancelToken* cancel) override;
};

}  // namespace agentd::llm

#endif  // AGENTD_AGENTS_LLM_HTTP_H_
