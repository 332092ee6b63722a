// HttpConnection: an MCP server over Streamable HTTP — every message a POST to one
// endpoint, each answer either one JSON body or an SSE stream that carries it (perhaps
// after notifications and requests of the server's), the session id the server gives at
// initialize echoed on every later request, and DELETE at the end.
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agents/llm/http.h"
#include "agents/llm/sse.h"
#include "agents/mcp/connection.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "spdlog/spdlog.h"

namespace agentd::mcp {

namespace {

using internal::Incoming;
using nlohmann::json;

class HttpConnection final : public Connection {
 public:
  explicit HttpConnection(HttpOptions o) : o_(std::move(o)) {}
  ~HttpConnection() override { Close(); }

  absl::StatusOr<json> Request(const std::string& method, json params, absl::Duration timeout,
                               const llm::CancelToken* cancel) override {
    int64_t id;
    {
      absl::MutexLock l(&mu_);
      if (dead_) return absl::UnavailableError(why_);
      id = next_id_++;
    }
    json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
    std::optional<absl::StatusOr<json>> answer;
    absl::StatusOr<llm::HttpResponse> r = Post(m, method, params, timeout, cancel, id, &answer);
    SendReplies();
    if (answer.has_value()) return *std::move(answer);
    if (!r.ok()) {
      if (r.status().code() == absl::StatusCode::kDeadlineExceeded ||
          r.status().code() == absl::StatusCode::kCancelled) {
        std::string reason = r.status().code() == absl::StatusCode::kCancelled
                                 ? "the task was canceled"
                                 : absl::StrCat("no answer within ", absl::FormatDuration(timeout));
        (void)Notify("notifications/cancelled", {{"requestId", id}, {"reason", reason}});
        return absl::Status(r.status().code(), reason);
      }
      Die(absl::StrCat("MCP server ", o_.name, " at ", o_.url, ": ", r.status().message()));
      return absl::UnavailableError(why());
    }
    return ErrorFor(*r, /*request=*/true);
  }

  absl::Status Notify(const std::string& method, json params) override {
    {
      absl::MutexLock l(&mu_);
      if (dead_) return absl::UnavailableError(why_);
    }
    json m = {{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) m["params"] = params;
    std::optional<absl::StatusOr<json>> unused;
    absl::StatusOr<llm::HttpResponse> r =
        Post(m, method, params, absl::Seconds(10), nullptr, -1, &unused);
    if (!r.ok()) return r.status();
    if (r->status >= 200 && r->status < 300) return absl::OkStatus();
    return ErrorFor(*r, /*request=*/false).status();
  }

  bool alive() const override {
    absl::MutexLock l(&mu_);
    return !dead_;
  }
  std::string why() const override {
    absl::MutexLock l(&mu_);
    return why_;
  }
  void set_protocol_version(const std::string& version) override {
    absl::MutexLock l(&mu_);
    version_ = version;
  }

  void Close() override {
    std::string session;
    {
      absl::MutexLock l(&mu_);
      if (closed_) return;
      closed_ = true;
      if (!dead_) {
        dead_ = true;
        why_ = absl::StrCat("MCP server ", o_.name, " was disconnected");
      }
      session = session_;
    }
    if (session.empty()) return;
    // The session's end, as the transport asks (a server may refuse it: 405).
    llm::HttpRequest req;
    req.url = o_.url;
    req.method = "DELETE";
    req.no_content_type = true;
    req.headers = BaseHeaders(session);
    req.timeouts.connect = req.timeouts.first_byte = req.timeouts.idle = req.timeouts.total =
        absl::Seconds(2);
    llm::CurlTransport http;
    (void)http.Send(
        req, nullptr, [](std::string_view) { return true; }, nullptr);
  }

 private:
  std::vector<std::string> BaseHeaders(const std::string& session) const {
    std::vector<std::string> h = o_.headers;
    if (!session.empty()) h.push_back(absl::StrCat("Mcp-Session-Id: ", session));
    return h;
  }

  // POSTs `m`; the answer to request `id` (when id >= 0), found in a JSON body or an SSE
  // stream, goes to `*answer`, and the transfer is ended as soon as it is there.
  absl::StatusOr<llm::HttpResponse> Post(const json& m, const std::string& method,
                                         const json& params, absl::Duration timeout,
                                         const llm::CancelToken* cancel, int64_t id,
                                         std::optional<absl::StatusOr<json>>* answer) {
    llm::HttpRequest req;
    req.url = o_.url;
    req.body = DumpJson(m);
    std::string session, version;
    {
      absl::MutexLock l(&mu_);
      session = session_;
      version = version_;
    }
    req.headers = BaseHeaders(session);
    req.headers.push_back("Accept: application/json, text/event-stream");
    const json& meta = params.is_object() ? params.value("_meta", json::object()) : json();
    std::string modern =
        meta.is_object() ? meta.value("io.modelcontextprotocol/protocolVersion", "") : "";
    if (!modern.empty()) version = modern;
    if (!version.empty()) req.headers.push_back(absl::StrCat("MCP-Protocol-Version: ", version));
    if (!modern.empty()) {
      // The stateless revision routes on headers that mirror the body.
      req.headers.push_back(absl::StrCat("Mcp-Method: ", method));
      if (method == "tools/call" && params.contains("name") && params["name"].is_string()) {
        req.headers.push_back(absl::StrCat("Mcp-Name: ", params["name"].get<std::string>()));
      }
    }
    req.timeouts.connect = o_.connect_timeout;
    req.timeouts.first_byte = req.timeouts.idle = req.timeouts.total = timeout;
    bool sse = false;
    std::string body;
    llm::SseParser parser;
    auto on_headers = [&](const llm::HttpResponse& h) {
      sse = absl::StartsWithIgnoreCase(h.Header("content-type"), "text/event-stream");
      if (method == "initialize") {
        std::string s = h.Header("mcp-session-id");
        // Visible ASCII only, as the transport requires; anything else is not echoed.
        bool ok = !s.empty() && s.size() <= 1024 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
        if (ok) {
          absl::MutexLock l(&mu_);
          session_ = s;
        }
      }
    };
    size_t event_bytes = 0;  // of the SSE event being read
    auto on_body = [&](std::string_view bytes) -> bool {
      if (sse) {
        event_bytes += bytes.size();
        if (event_bytes > o_.max_message_bytes) {
          *answer = absl::DataLossError(
              absl::StrCat("the server sent an event over ", o_.max_message_bytes >> 20, " MiB"));
          return false;
        }
      }
      if (!sse) {
        body.append(bytes);
        return body.size() <= o_.max_message_bytes;
      }
      absl::Status s = parser.Feed(absl::string_view(bytes.data(), bytes.size()),
                                   [&](const llm::SseEvent& ev) -> absl::Status {
                                     event_bytes = 0;
                                     if (ev.data.empty())
                                       return absl::OkStatus();  // priming, keep-alive
                                     Dispatch(ev.data, id, answer);
                                     // Its answer is in: the rest of the stream is not waited for.
                                     return answer->has_value() ? absl::CancelledError("answered")
                                                                : absl::OkStatus();
                                   });
      return s.ok();
    };
    llm::CurlTransport http;
    absl::StatusOr<llm::HttpResponse> r = http.Send(req, on_headers, on_body, cancel);
    if (answer->has_value()) return r;
    if (r.ok() && r->status >= 200 && r->status < 300 && !sse && !body.empty()) {
      if (body.size() > o_.max_message_bytes) {
        *answer = absl::DataLossError(
            absl::StrCat("the server's answer is over ", o_.max_message_bytes >> 20, " MiB"));
        return r;
      }
      Dispatch(body, id, answer);
    }
    if (!r.ok() && r.status().code() == absl::StatusCode::kAborted &&
        body.size() > o_.max_message_bytes) {
      *answer = absl::DataLossError(
          absl::StrCat("the server's answer is over ", o_.max_message_bytes >> 20, " MiB"));
    }
    return r;
  }

  // One message (or a batch of them) from the server, for request `id`.
  void Dispatch(const std::string& raw, int64_t id, std::optional<absl::StatusOr<json>>* answer) {
    // Text in another encoding is shown as U+FFFD (JSON parsers refuse it).
    std::string text = IsValidUtf8(raw) ? raw : ValidUtf8(raw);
    if (!JsonNestingWithin(text, kMaxJsonNesting)) {
      if (id >= 0 && !answer->has_value()) {
        *answer = absl::DataLossError(absl::StrCat("the server sent a message nested over ",
                                                   kMaxJsonNesting, " levels deep"));
      }
      return;
    }
    json m = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) {
      if (id >= 0 && !answer->has_value()) {
        *answer = absl::DataLossError(absl::StrCat(
            "the server sent a malformed message (not JSON): ", Utf8Prefix(text, 200, "…")));
      }
      return;
    }
    std::vector<json> messages;
    if (m.is_array()) {
      for (json& e : m) messages.push_back(std::move(e));
    } else {
      messages.push_back(std::move(m));
    }
    for (const json& msg : messages) {
      Incoming in = internal::Classify(msg);
      switch (in.kind) {
        case Incoming::Kind::kResponse:
          if (in.id == id && !answer->has_value()) {
            *answer = in.error.ok() ? absl::StatusOr<json>(std::move(in.result))
                                    : absl::StatusOr<json>(in.error);
          } else {
            spdlog::warn("MCP server {} answered request {}, which is not waiting", o_.name, in.id);
          }
          break;
        case Incoming::Kind::kNotification:
          if (o_.on_notification) o_.on_notification(in.method, in.params);
          break;
        case Incoming::Kind::kRequest:
          AnswerLater(in);
          break;
        case Incoming::Kind::kInvalid:
          if (id >= 0 && !answer->has_value()) {
            *answer = absl::DataLossError(
                absl::StrCat("the server sent a message that is not JSON-RPC (", in.why, ")"));
          }
          break;
      }
    }
  }

  // A request of the server's (a ping; anything else is refused, as the client offers
  // no capabilities), answered once the transfer that carried it has ended: this thread's
  // HTTP handle is busy until then. A server that waits for the answer before it ends its
  // own response waits until the call's timeout.
  void AnswerLater(const Incoming& in) {
    json reply = {{"jsonrpc", "2.0"}, {"id", in.id_json}};
    if (in.method == "ping") {
      reply["result"] = json::object();
    } else {
      reply["error"] = {{"code", -32601},
                        {"message", absl::StrCat("agentd's MCP client does not offer ",
                                                 Utf8Prefix(in.method, 100, "…"))}};
    }
    std::vector<json>& replies = Replies();
    if (replies.size() < 8) replies.push_back(std::move(reply));  // a flood is not answered
  }

  // The server's requests waiting for an answer on this thread (each thread posts its own
  // transfers, one at a time).
  static std::vector<json>& Replies() {
    thread_local std::vector<json> replies;
    return replies;
  }

  // Sends the answers AnswerLater kept (the calling thread's).
  void SendReplies() {
    std::vector<json> replies;
    replies.swap(Replies());
    for (const json& r : replies) {
      std::optional<absl::StatusOr<json>> unused;
      (void)Post(r, "", json(), absl::Seconds(10), nullptr, -1, &unused);
    }
  }

  // What a response without the answer means.
  absl::StatusOr<json> ErrorFor(const llm::HttpResponse& r, bool request) {
    std::string excerpt = Utf8Prefix(absl::StripAsciiWhitespace(r.body), 300, "…");
    if (r.status == 404 && !session_copy().empty()) {
      // The server forgot the session: a new one starts with the next connection.
      Die(absl::StrCat("MCP server ", o_.name, " ended the session (HTTP 404)"));
      return absl::UnavailableError(why());
    }
    if (r.status >= 400) {
      // An error answer in the body (the new revision's, or a server's own).
      json m = json::parse(r.body, nullptr, false);
      if (!m.is_discarded()) {
        Incoming in = internal::Classify(m);
        if (in.kind == Incoming::Kind::kResponse && !in.error.ok()) return in.error;
      }
      return absl::UnavailableError(
          absl::StrCat("MCP server ", o_.name, " answered HTTP ", r.status,
                       excerpt.empty() ? "" : absl::StrCat(": ", excerpt)));
    }
    if (!request) return json();
    return absl::DataLossError(absl::StrCat("MCP server ", o_.name, " answered HTTP ", r.status,
                                            " without a response to the request"));
  }

  std::string session_copy() const {
    absl::MutexLock l(&mu_);
    return session_;
  }

  void Die(const std::string& why) {
    absl::MutexLock l(&mu_);
    if (dead_) return;
    dead_ = true;
    why_ = why;
    spdlog::warn("{}", why);
  }

  HttpOptions o_;
  mutable absl::Mutex mu_;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string why_ ABSL_GUARDED_BY(mu_);
  std::string session_ ABSL_GUARDED_BY(mu_);
  std::string version_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace

std::unique_ptr<Connection> NewHttpConnection(HttpOptions options) {
  return std::make_unique<HttpConnection>(std::move(options));
}

}  // namespace agentd::mcp
