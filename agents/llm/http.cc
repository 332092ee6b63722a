#include "agents/llm/http.h"

#include <curl/curl.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/curl_library.h"

namespace agentd::llm {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;

struct Transfer {
  const CurlLibrary* lib = nullptr;
  CURL* curl = nullptr;
  const Transport::BodyCallback* on_body = nullptr;
  const std::function<void(const HttpResponse&)>* on_headers = nullptr;
  bool headers_told = false;
  const CancelToken* cancel = nullptr;
  Timeouts timeouts;
  absl::Time start, last_data;
  bool got_data = false;
  HttpResponse response;
  // Why the transfer was aborted from a callback, if it was.
  absl::Status abort = absl::OkStatus();
};

size_t OnHeader(char* data, size_t size, size_t n, void* p) {
  auto* t = static_cast<Transfer*>(p);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) {
    t->response.retry_after.clear();  // a new response (after a 100 Continue, say)
    t->response.headers.clear();
  } else if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
    t->response.retry_after =
        std::string(absl::StripAsciiWhitespace(line.substr(sizeof("retry-after:") - 1)));
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos && colon > 0 && t->response.headers.size() < 100 &&
      line.size() <= (8 << 10)) {
    t->response.headers.emplace_back(
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* p) {
  auto* t = static_cast<Transfer*>(p);
  size_t len = size * n;
  t->got_data = true;
  t->last_data = absl::Now();
  long status = 0;
  t->lib->easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (!t->headers_told) {
    t->headers_told = true;
    if (t->on_headers != nullptr && *t->on_headers) {
      t->response.status = status;
      (*t->on_headers)(t->response);
    }
  }
  if (status < 200 || status >= 300) {
    size_t room = kMaxErrorBody - std::min(kMaxErrorBody, t->response.body.size());
    t->response.body.append(data, std::min(len, room));
    return len;
  }
  if (!(*t->on_body)(std::string_view(data, len))) {
    t->abort = absl::AbortedError("the response was refused while it arrived");
    return CURL_WRITEFUNC_ERROR;
  }
  return len;
}

// Called by libcurl often while a transfer runs (and at least once a second when idle):
// where cancellation and the first-byte and idle timeouts are checked.
int OnProgress(void* p, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(p);
  absl::Time now = absl::Now();
  if (t->cancel != nullptr && t->cancel->cancelled()) {
    t->abort = absl::CancelledError("cancelled");
  } else if (!t->got_data && now - t->start > t->timeouts.first_byte) {
    t->abort = absl::DeadlineExceededError(
        absl::StrCat("no response within ", absl::FormatDuration(t->timeouts.first_byte),
                     " (first-byte timeout)"));
  } else if (t->got_data && now - t->last_data > t->timeouts.idle) {
    t->abort = absl::DeadlineExceededError(absl::StrCat("the response stalled: nothing for ",
                                                        absl::FormatDuration(t->timeouts.idle),
                                                        " (idle timeout)"));
  }
  return t->abort.ok() ? 0 : 1;
}

}  // namespace

absl::StatusOr<HttpResponse> CurlTransport::Send(
    const HttpRequest& req, const std::function<void(const HttpResponse&)>& on_headers,
    const BodyCallback& on_body, const CancelToken* cancel) {
  absl::StatusOr<const CurlLibrary*> loaded = Curl();
  if (!loaded.ok()) return loaded.status();
  const CurlLibrary& curl = **loaded;
  // One handle per thread, reset between calls: its connection cache keeps the
  // provider's connection open from one call to the next (no TCP or TLS handshake per
  // model turn).
  struct Handle {
    const CurlLibrary* lib;
    CURL* curl = lib->easy_init();
    ~Handle() {
      if (curl != nullptr) lib->easy_cleanup(curl);
    }
  };
  thread_local Handle handle{&curl};
  if (handle.curl == nullptr) return absl::InternalError("curl_easy_init failed");
  curl.easy_reset(handle.curl);
  Transfer t;
  t.lib = &curl;
  t.curl = handle.curl;
  t.on_body = &on_body;
  t.on_headers = &on_headers;
  t.cancel = cancel;
  t.timeouts = req.timeouts;
  t.start = t.last_data = absl::Now();
  curl_slist* headers = nullptr;
  for (const std::string& h : req.headers) headers = curl.slist_append(headers, h.c_str());
  if (!req.no_content_type) headers = curl.slist_append(headers, "Content-Type: application/json");
  headers = curl.slist_append(headers, "Expect:");  // no 100-continue round trip
  CURL* c = t.curl;
  char error[CURL_ERROR_SIZE] = {0};
  curl.easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl.easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!req.method.empty()) {
    curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else if (req.get) {
    curl.easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl.easy_setopt(c, CURLOPT_POST, 1L);
    curl.easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl.easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(req.timeouts.connect)));
  curl.easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(req.timeouts.total)));
  curl.easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl.easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl.easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl.easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl.easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl.easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  CURLcode rc = curl.easy_perform(c);
  long status = 0;
  curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl.slist_free_all(headers);
  curl.easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);  // `error` goes out of scope
  if (!t.abort.ok()) return t.abort;
  switch (rc) {
    case CURLE_OK:
      t.response.status = status;
      return std::move(t.response);
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(
          status == 0 && !t.got_data
              ? absl::StrCat("could not connect within ",
                             absl::FormatDuration(req.timeouts.connect), " (connect timeout)")
              : absl::StrCat("the call took longer than ", absl::FormatDuration(req.timeouts.total),
                             " (total timeout)"));
    default:
      return absl::UnavailableError(
          absl::StrCat(curl.easy_strerror(rc), error[0] ? absl::StrCat(": ", error) : ""));
  }
}

}  // namespace agentd::llm
