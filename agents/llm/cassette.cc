#include "agents/llm/cassette.h"

#include <fstream>

#include "absl/strings/str_cat.h"
#include "agents/llm/codec.h"
#include "nlohmann/json.hpp"

namespace agentd::llm {

using nlohmann::json;

absl::StatusOr<HttpResponse> RecordingTransport::Post(const HttpRequest& req,
                                                      const BodyCallback& on_body,
                                                      const CancelToken* cancel) {
  std::string body;
  absl::StatusOr<HttpResponse> r = inner_->Post(
      req,
      [&](std::string_view bytes) {
        body.append(bytes.data(), bytes.size());
        return on_body(bytes);
      },
      cancel);
  if (!r.ok()) return r;  // nothing came back to replay
  json line = {{"kind", kind_},
               {"request", req.body},
               {"status", r->status},
               {"retry_after", r->retry_after},
               {"response", r->status >= 200 && r->status < 300 ? body : r->body}};
  absl::MutexLock l(&mu_);
  std::ofstream out(path_, std::ios::app | std::ios::binary);
  // Replacement of invalid UTF-8: a response is JSON or SSE text, but a broken one is
  // recorded rather than crashing the call.
  out << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  if (!out) {
    return absl::InternalError(absl::StrCat("cassette ", path_, ": cannot append"));
  }
  return r;
}

absl::StatusOr<std::unique_ptr<CassetteTransport>> CassetteTransport::Load(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cassette ", path, ": cannot read it"));
  std::unique_ptr<CassetteTransport> c(new CassetteTransport);
  c->path_ = path;
  std::string line;
  absl::MutexLock l(&c->mu_);
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("request") || !j["request"].is_string() ||
        !j.contains("response") || !j["response"].is_string() || !j.contains("status") ||
        !j["status"].is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", n, ": not a recorded exchange (request, status, response)"));
    }
    if (c->kind_.empty()) c->kind_ = codec_internal::String(j, "kind");
    c->exchanges_.push_back({j["request"].get<std::string>(), j["response"].get<std::string>(),
                             codec_internal::String(j, "retry_after"), j["status"].get<long>(),
                             false});
  }
  if (c->exchanges_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cassette ", path, " holds no exchange"));
  }
  return c;
}

absl::StatusOr<HttpResponse> CassetteTransport::Post(const HttpRequest& req,
                                                     const BodyCallback& on_body,
                                                     const CancelToken* cancel) {
  Exchange* found = nullptr;
  {
    absl::MutexLock l(&mu_);
    for (Exchange& e : exchanges_) {
      if (!e.played && e.request == req.body) {
        e.played = true;
        found = &e;
        break;
      }
    }
  }
  if (found == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cassette ", path_,
        " has no recorded response for this request: the run has left the recording (a "
        "changed prompt, tool or model?); request: ",
        req.body.substr(0, 200)));
  }
  if (cancel != nullptr && cancel->cancelled()) return absl::CancelledError("cancelled");
  HttpResponse r;
  r.status = found->status;
  r.retry_after = found->retry_after;
  if (r.status < 200 || r.status >= 300) {
    r.body = found->response;
    return r;
  }
  // In pieces, as a network would deliver it, so the stream decoders run as they do live.
  constexpr size_t kPiece = 1024;
  for (size_t off = 0; off < found->response.size(); off += kPiece) {
    if (!on_body(std::string_view(found->response).substr(off, kPiece))) {
      return absl::AbortedError("the response was refused while it arrived");
    }
  }
  return r;
}

}  // namespace agentd::llm
