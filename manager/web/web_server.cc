#include "manager/web/web_server.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/paths.h"
#include "common/text.h"
#include "common/token.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/support/byte_buffer.h"
#include "manager/web/a2a.h"
#include "manager/web/grpc_web.h"
#include "manager/web/http_checks.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr char kCookieName[] = "agentd_session";
constexpr size_t kMaxRequestBody = 4 << 20;  // gRPC's default maximum message size
// At most a quarter of the file descriptors agentd may open go to HTTP connections, and
// never more than this: the rest are for agents' pipes, logs and the database.
constexpr int kMaxConnectionsCap = 1024;
// A2A requests served at once (each waits on a thread of its own).
constexpr int kMaxA2aCalls = 64;
// A connection this many connections from one peer address evicts that peer's oldest idle
// one, or is refused when none is idle: one client (or one attacker) cannot take the
// whole listener. A browser opens at most six per host; UI tabs share them.
constexpr int kMaxConnectionsPerPeer = 64;
constexpr auto kWriteTimeout = std::chrono::seconds(60);
// A connection waits this long between requests (keep-alive), evictable all the while.
constexpr auto kIdleTimeout = std::chrono::seconds(120);
// From its first byte (or from the accept, for a new connection), a request's head must be
// complete within this: a client that opens connections and sends a few bytes each, or
// nothing, holds each for seconds, not minutes.
constexpr auto kHeaderTimeout = std::chrono::seconds(10);
// A request body (4 MiB at most) must be complete within this after its head.
constexpr auto kBodyTimeout = std::chrono::seconds(30);
constexpr size_t kMaxStaticFile = 64 << 20;  // the UI's largest bundle is well under 1 MiB

const char* ContentType(absl::string_view path) {
  static const std::pair<const char*, const char*> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".map", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".woff2", "font/woff2"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (absl::EndsWith(path, ext)) return type;
  }
  return "application/octet-stream";
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

constexpr char kNotBuiltPage[] = R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>agentd</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>agentd</h1>
<p>agentd is running, but its web UI is not built or not found. Build it with
<code>dev/setup</code> and <code>cmake --build build/release --target ui</code>
(or <code>npm run build</code> in <code>ui/</code>), or point <code>ui.dir</code> in the
configuration at a built <code>ui/dist</code>.</p>
<p>The gRPC-web API, <code>/metrics</code> and <code>/healthz</code> work without it.</p>
</body></html>
)html";

constexpr char kBadCodePage[] = R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>agentd: login failed</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>This login link is used up</h1>
<p>A login link works once, for a few minutes, and not after agentd restarts or its
sessions are revoked. Run <code>agentctl ui</code> for a new one.</p>
<p><a href="/">Back</a></p>
</body></html>
)html";

constexpr char kTokenLinkPage[] = R"html(<!doctype html>
<html><head><meta charset="utf-8"><title>agentd: login</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Login links no longer carry the admin token</h1>
<p>Run <code>agentctl ui</code>: it prints a link with a one-time code. The token in
this address is not accepted here (remove it from your browser's history).</p>
</body></html>
)html";

class Session;
class GrpcWebCall;

}  // namespace

class WebServer::Impl {
 public:
  explicit Impl(WebServerOptions o) : options(std::move(o)) {}

  void Accept();
  // Admits a new connection from `peer` (an address) unless it would exceed the per-peer
  // or global cap with nothing to evict; under pressure, evicts the oldest idle
  // connection (the peer's own first). I/O thread.
  bool Admit(const std::string& peer);
  // Sessions register at construction and unregister at destruction (any thread).
  void AddSession(Session* s, std::weak_ptr<Session> weak, const std::string& peer);
  void RemoveSession(Session* s);
  // An eviction found `s` busy: it counts again.
  void KeepSession(Session* s);
  // Whether the Host header value `host` names this listener (see Session::HostAllowed).
  bool HostAllowed(absl::string_view host, const net::ip::address& local) const;
  void Register(GrpcWebCall* call);
  void Unregister(GrpcWebCall* call);
  bool Authorized(const http::request<http::string_body>& req) const;
  // The read-only scrape token, presented as a bearer token: /metrics only.
  bool ScrapeAuthorized(const http::request<http::string_body>& req) const;
  // The A2A token (or the admin token), presented as a bearer token: /a2a.
  bool A2aAuthorized(const http::request<http::string_body>& req) const;
  void Count(const char* route, const std::string& code) {
    if (metrics != nullptr) metrics->http_requests->Add({route, code});
  }

  // Declared first so they outlive the io_context, whose destruction may destroy
  // sessions still queued in it.
  std::atomic<int> connections{0};
  struct Conn {
    std::weak_ptr<Session> session;
    std::string peer;
    bool evicting = false;  // chosen for eviction: counts no more
  };
  std::mutex conns_mu;
  std::map<Session*, Conn> conns;  // guarded by conns_mu
  std::mutex mu;
  std::condition_variable calls_done;
  std::set<GrpcWebCall*> calls;  // guarded by mu
  int a2a_calls = 0;             // A2A requests being served on threads of their own; mu
  std::atomic<bool> stopping{false};
  std::unique_ptr<web::A2aServer> a2a;

  WebServerOptions options;
  DaemonMetrics* metrics = nullptr;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  std::string address;
  net::ip::address bound_ip;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::steady_timer retry{ioc};
  bool accept_failing = false;  // I/O thread only
  int max_connections = kMaxConnectionsCap;
  std::thread thread;
  bool shut_down = false;
};

namespace {

// One HTTP/1.1 connection: reads requests one at a time (keep-alive) and answers each,
// a gRPC-web call with a chunked response streamed as the call produces messages.
// Every member is used on the connection's strand only.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, WebServer::Impl* impl, std::string peer)
      : stream_(std::move(socket)), impl_(impl), peer_(std::move(peer)) {
    impl_->connections.fetch_add(1);
    beast::error_code ec;
    local_ip_ = stream_.socket().local_endpoint(ec).address();
  }
  ~Session() {
    impl_->RemoveSession(this);
    impl_->connections.fetch_sub(1);
  }
  // After the server's thread has stopped (Shutdown): lets go of the call and of the
  // frames waiting to be written. The handlers that would have done it (a call's last
  // FinishCall, say) never run in a stopped io_context, and the session and its call
  // would keep each other alive.
  void DropAtShutdown() {
    call_.reset();
    out_.clear();
    batch_written_.clear();
  }

  void Start() {
    impl_->AddSession(this, weak_from_this(), peer_);
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadRequest(); });
  }
  net::any_io_executor executor() { return stream_.get_executor(); }

  // Whether the connection waits for a request or is still reading one (not yet served):
  // such a connection may be closed to make room without losing any answer.
  bool idle() const { return !busy_.load(); }
  // When it last became idle (steady clock, ns), to evict the longest idle first.
  int64_t idle_since() const { return idle_since_.load(); }
  // Closes the connection if it is still idle (on its strand); otherwise it stays.
  void Evict() {
    if (busy_.load()) return impl_->KeepSession(this);
    spdlog::debug("web: evicting an idle connection from {} to make room", peer_);
    Close();
  }

  // From the call (on the strand): one response message, already framed (and base64'd
  // in text mode). `written` runs once it reached the socket.
  void SendFrame(std::string frame, std::function<void()> written) {
    if (broken_) {
      // The connection failed while this message was on its way: give the call up (its
      // read is now between reads, so this releases it).
      AbandonCall();
      return;
    }
    out_.push_back({std::move(frame), false, std::move(written)});
    Pump();
  }
  // From the call (on the strand): the call ended; the trailer ends the response.
  void FinishCall(const grpc::Status& status) {
    impl_->Count("grpc-web", GrpcCodeName(status.error_code()));
    call_done_ = true;
    if (broken_) {
      call_.reset();
      return;
    }
    QueueTrailer(status.error_code(), status.error_message());
  }

  // From a unary call (on the strand): its status and its one message (framed; empty when
  // it failed), sent as one response with a length: the head, the message and the trailer
  // in one write, where a stream takes a head, then a chunk per message, then the trailer.
  void FinishUnary(const grpc::Status& status, std::string frame) {
    impl_->Count("grpc-web", GrpcCodeName(status.error_code()));
    call_done_ = true;
    call_.reset();
    if (broken_) return;
    StopWatching();
    std::string trailer = grpc_web::TrailerFrame(status.error_code(), status.error_message());
    if (text_) trailer = absl::Base64Escape(trailer);
    auto res =
        std::make_shared<http::response<http::string_body>>(http::status::ok, request_.version());
    SetGrpcWebHeaders(*res, text_);
    res->body() = std::move(frame);
    res->body() += trailer;
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    stream_.expires_after(kWriteTimeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        self->stream_.expires_never();
                        self->AfterResponse(ec);
                      });
  }

  // From an A2A call's thread, posted here: its one JSON answer, or an event of its SSE
  // stream (the first starts the response; `last` ends it).
  void A2aJson(int status, std::string body) {
    StopWatching();
    a2a_.reset();
    stream_.expires_after(kWriteTimeout);  // the read's deadline passed long ago
    SendSimple(static_cast<http::status>(status), "application/json", std::move(body), "a2a",
               status == 401 ? std::vector<std::pair<std::string, std::string>>{{"WWW-Authenticate",
                                                                                 "Bearer"}}
                             : std::vector<std::pair<std::string, std::string>>{});
  }
  void A2aEvent(std::string data, bool last) {
    if (broken_) return;
    if (!a2a_streaming_) {
      a2a_streaming_ = true;
      SendHead("text/event-stream");
    }
    out_.push_back({absl::StrCat("data: ", data, "\n\n"), last, nullptr});
    if (last) a2a_.reset();
    Pump();
  }

 private:
  struct Out {
    std::string data;
    bool last = false;  // the trailer: the final chunk follows it
    std::function<void()> written;
  };

  // A request in three timed steps: its first byte (kIdleTimeout between requests,
  // kHeaderTimeout on a new connection), the rest of its head (kHeaderTimeout), its body
  // (kBodyTimeout). The connection is idle, and evictable, until the request is whole.
  void ReadRequest() {
    SetBusy(false);
    parser_.emplace();
    parser_->body_limit(kMaxRequestBody);
    parser_->header_limit(64 << 10);
    if (buffer_.size() > 0) return ReadHead();  // pipelined: the next request is here
    stream_.expires_after(served_ == 0 ? kHeaderTimeout : kIdleTimeout);
    stream_.async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
          if (ec) return self->Close();  // closed, timed out or evicted between requests
          self->buffer_.commit(n);
          self->ReadHead();
        });
  }

  void ReadHead() {
    stream_.expires_after(kHeaderTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->OnRequest(ec);
          if (self->parser_->is_done()) return self->OnRequest(ec);
          self->stream_.expires_after(kBodyTimeout);
          http::async_read(self->stream_, self->buffer_, *self->parser_,
                           [self](beast::error_code body_ec, size_t) { self->OnRequest(body_ec); });
        });
  }

  void SetBusy(bool busy) {
    if (!busy) {
      idle_since_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count());
    }
    busy_.store(busy);
  }

  void OnRequest(beast::error_code ec) {
    if (!ec) SetBusy(true);
    if (ec == http::error::body_limit) {
      SetBusy(true);
      keep_alive_ = false;
      linger_ = true;  // the body is still coming: read it away after answering
      return SendSimple(http::status::payload_too_large, "text/plain; charset=utf-8",
                        absl::StrCat("request body over ", kMaxRequestBody, " bytes\n"), "other");
    }
    if (ec) return Close();  // end of stream, timeout, eviction, or a malformed request
    request_ = parser_->release();
    keep_alive_ = request_.keep_alive();
    ++served_;
    Handle();
  }

  void Handle() {
    absl::string_view target(request_.target().data(), request_.target().size());
    std::pair<absl::string_view, absl::string_view> pq =
        absl::StrSplit(target, absl::MaxSplits('?', 1));
    absl::string_view path = pq.first, query = pq.second;
    origin_ = std::string(request_[http::field::origin]);

    // Before anything else, /healthz included: a page whose DNS name was rebound to this
    // address reaches it with its own name in Host, and must learn nothing here.
    if (!HostAllowed()) {
      keep_alive_ = false;
      return SendSimple(http::status::forbidden, "text/plain; charset=utf-8",
                        "agentd answers only to loopback addresses, localhost, its own address "
                        "and the names in server.http_hosts of its config; this request's Host "
                        "header is none of them\n",
                        "host");
    }
    if (request_.method() == http::verb::options) return Preflight();
    if (request_.method() == http::verb::post && path == "/a2a") return A2a();
    if (request_.method() == http::verb::post) {
      absl::string_view ct(request_[http::field::content_type].data(),
                           request_[http::field::content_type].size());
      if (!absl::StartsWith(ct, "application/grpc-web") ||
          absl::StartsWith(ct, "application/grpc-web+json")) {
        return SendSimple(http::status::unsupported_media_type, "text/plain; charset=utf-8",
                          "POST takes gRPC-web only: content-type application/grpc-web+proto "
                          "or application/grpc-web-text\n",
                          "other");
      }
      return Bridge(path, absl::StartsWith(ct, "application/grpc-web-text"));
    }
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      return SendSimple(http::status::method_not_allowed, "text/plain; charset=utf-8",
                        "GET, HEAD, POST (gRPC-web) and OPTIONS only\n", "other",
                        {{"Allow", "GET, HEAD, POST, OPTIONS"}});
    }
    if (path == "/livez") {
      // The process answers: what a liveness probe asks. A daemon whose store failed is
      // alive (restarting it is the operator's call, and /readyz says why).
      return SendSimple(http::status::ok, "text/plain; charset=utf-8", "ok\n", "healthz");
    }
    if (path == "/readyz" || path == "/healthz") {
      // Serving: not draining, the store taking writes (as gRPC health's SERVING).
      bool ok = !impl_->stopping.load() && (!impl_->options.healthy || impl_->options.healthy());
      return SendSimple(ok ? http::status::ok : http::status::service_unavailable,
                        "text/plain; charset=utf-8", ok ? "ok\n" : "not serving\n", "healthz");
    }
    if (path == "/metrics") return Metrics();
    if (path == "/.well-known/agent-card.json" && impl_->a2a != nullptr) {
      // Public, as A2A's discovery expects: it names the team's skills and how to
      // authenticate, nothing more.
      std::string host(request_[http::field::host]);
      if (host.empty()) host = impl_->address;
      return SendSimple(http::status::ok, "application/json",
                        impl_->a2a->AgentCard(absl::StrCat("http://", host)), "a2a",
                        {{"Cache-Control", "no-cache"}});
    }
    if (path == "/login") return Login(web::QueryParam(query, "code").value_or(""));
    if (web::QueryParam(query, "token")) {
      // An old login link: its token is refused, and not echoed or logged.
      return SendSimple(http::status::gone, "text/html; charset=utf-8", kTokenLinkPage, "login",
                        {{"Cache-Control", "no-store"}, {"Referrer-Policy", "no-referrer"}});
    }
    return Static(path);
  }

  bool HostAllowed() const {
    auto h = request_.find(http::field::host);
    // No Host at all: not a browser (every browser sends one), so no rebinding either.
    if (h == request_.end()) return true;
    return impl_->HostAllowed(absl::string_view(h->value().data(), h->value().size()), local_ip_);
  }

  // Whether `origin_` may call: no Origin (not a browser, or a same-origin GET), the
  // listener's own origin, or a configured one.
  bool OriginAllowed() const {
    if (origin_.empty()) return true;
    absl::string_view host(request_[http::field::host].data(), request_[http::field::host].size());
    if (origin_ == absl::StrCat("http://", host)) return true;
    return CrossOriginAllowed();
  }
  bool CrossOriginAllowed() const {
    for (const std::string& o : impl_->options.cors_origins) {
      if (o == origin_) return true;
    }
    return false;
  }

  void Preflight() {
    if (origin_.empty() || !CrossOriginAllowed()) {
      return SendSimple(http::status::forbidden, "text/plain; charset=utf-8",
                        absl::StrCat("origin \"", origin_,
                                     "\" is not in server.cors_origins of agentd's config\n"),
                        "preflight");
    }
    std::string requested(request_[http::field::access_control_request_headers]);
    SendSimple(http::status::no_content, "", "", "preflight",
               {{"Access-Control-Allow-Origin", origin_},
                {"Access-Control-Allow-Methods", "POST, OPTIONS"},
                {"Access-Control-Allow-Headers", requested},
                {"Access-Control-Max-Age", "600"},
                {"Vary", "Origin"}});
  }

  void Login(const std::string& code) {
    std::optional<WebSessions::Grant> session;
    if (impl_->options.sessions != nullptr && !code.empty()) {
      session = impl_->options.sessions->Redeem(code);
    }
    if (!session) {
      return SendSimple(http::status::unauthorized, "text/html; charset=utf-8", kBadCodePage,
                        "login",
                        {{"Cache-Control", "no-store"}, {"Referrer-Policy", "no-referrer"}});
    }
    // The spent code leaves the address bar at once: a redirect to the UI without it.
    // The cookie holds a random session id, nothing derived from the admin token; it is
    // HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it),
    // and the browser drops it when the session expires (the daemon checks that too).
    // Cross-origin gRPC-web also needs a CORS preflight agentd refuses for origins not
    // configured.
    int64_t max_age = absl::ToInt64Seconds(impl_->options.sessions->session_ttl());
    SendSimple(http::status::see_other, "text/plain; charset=utf-8", "logged in\n", "login",
               {{"Location", "/"},
                {"Set-Cookie", absl::StrCat(kCookieName, "=", session->secret, "; Path=/; Max-Age=",
                                            max_age, "; HttpOnly; SameSite=Strict")},
                {"Cache-Control", "no-store"},
                {"Referrer-Policy", "no-referrer"}});
  }

  void Metrics() {
    if (impl_->metrics == nullptr) {
      return SendSimple(http::status::not_found, "text/plain; charset=utf-8", "no metrics\n",
                        "metrics");
    }
    if (!impl_->Authorized(request_) && !impl_->ScrapeAuthorized(request_)) {
      // Says what to send, not where agentd keeps it: whoever asks is not known yet.
      return SendSimple(http::status::unauthorized, "text/plain; charset=utf-8",
                        "/metrics needs agentd's scrape token (STATE_DIR/metrics.token) or "
                        "admin token as `authorization: Bearer <token>`\n",
                        "metrics", {{"WWW-Authenticate", "Bearer"}});
    }
    auto render = [self = shared_from_this()] {
      net::post(self->executor(), [self] {
        self->SendSimple(http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                         self->impl_->metrics->registry.Render(), "metrics");
      });
    };
    if (impl_->options.refresh_metrics) {
      impl_->options.refresh_metrics(render);
    } else {
      render();
    }
  }

  void Static(absl::string_view path) {
    const std::string& dir = impl_->options.ui_dir;
    if (dir.empty() || !IsRegularFile(absl::StrCat(dir, "/index.html"))) {
      if (path != "/") {
        return SendSimple(http::status::not_found, "text/plain; charset=utf-8", "not found\n",
                          "static");
      }
      return SendSimple(http::status::ok, "text/html; charset=utf-8", kNotBuiltPage, "static");
    }
    std::optional<std::string> served = web::StaticFileOf(path);
    if (!served) {
      return SendSimple(http::status::bad_request, "text/plain; charset=utf-8", "bad path\n",
                        "static");
    }
    std::string rel = *std::move(served);
    std::string file = absl::StrCat(dir, rel);
    if (!IsRegularFile(file)) {
      // The UI routes with the URL's #fragment, so every other path is simply not there
      // (a typo such as /metric or /readz must not answer 200 with the app).
      return SendSimple(http::status::not_found, "text/plain; charset=utf-8",
                        "not found (agentd serves the UI at /, and /metrics, /livez, "
                        "/readyz, gRPC-web)\n",
                        "static");
    }
    absl::StatusOr<std::string> body = ReadSmallFile(file, kMaxStaticFile);
    if (!body.ok()) {
      // The reason names files on agentd's host: for its log, not for whoever asked.
      spdlog::warn("web: serving {}: {}", rel, body.status().message());
      return SendSimple(http::status::internal_server_error, "text/plain; charset=utf-8",
                        "the UI's files cannot be read (agentd's log says why)\n", "static");
    }
    // Vite names assets by content hash: cache them forever, the page never.
    bool hashed = absl::StartsWith(rel, "/assets/");
    SendSimple(http::status::ok, ContentType(rel), *std::move(body), "static",
               {{"Cache-Control", hashed ? "public, max-age=31536000, immutable" : "no-cache"},
                {"X-Content-Type-Options", "nosniff"},
                {"X-Frame-Options", "DENY"},
                {"Referrer-Policy", "no-referrer"},
                {"Content-Security-Policy",
                 "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                 "frame-ancestors 'none'"}});
  }

  void Bridge(absl::string_view path, bool text);
  void A2a();
  void SendSimple(http::status status, absl::string_view content_type, std::string body,
                  const char* route,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    impl_->Count(route, std::to_string(static_cast<int>(status)));
    auto res = std::make_shared<http::response<http::string_body>>(status, request_.version());
    res->set(http::field::server, "agentd");
    if (!content_type.empty()) res->set(http::field::content_type, std::string(content_type));
    for (auto& [k, v] : headers) res->set(k, v);
    bool head = request_.method() == http::verb::head;
    res->body() = std::move(body);
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    if (head) {
      // HEAD: the headers GET would send, Content-Length included, and no body.
      auto sr = std::make_shared<http::response_serializer<http::string_body>>(*res);
      http::async_write_header(stream_, *sr,
                               [self = shared_from_this(), res, sr](beast::error_code ec, size_t) {
                                 self->AfterResponse(ec);
                               });
      return;
    }
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        self->AfterResponse(ec);
                      });
  }

  void AfterResponse(beast::error_code ec) {
    if (ec || !keep_alive_ || impl_->stopping.load()) return Close();
    ReadRequest();
  }

  void Close() {
    beast::error_code ignored;
    if (linger_) {
      // Closing with the client's bytes unread would reset the connection, and the
      // client might lose the answer before reading it: stop sending, read what is
      // still coming (for two seconds at most), then close.
      linger_ = false;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      stream_.expires_after(std::chrono::seconds(2));
      return Drain();
    }
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->Drain();
                            });
  }

  // --- the streamed gRPC-web response ---

  void SendHead(bool text) {
    SendHead(text ? "application/grpc-web-text+proto" : "application/grpc-web+proto");
  }
  // A gRPC-web response's headers (of a stream, or of a unary call's whole response).
  template <typename Message>
  void SetGrpcWebHeaders(Message& m, const char* content_type) {
    m.set(http::field::server, "agentd");
    m.set(http::field::content_type, content_type);
    m.set(http::field::cache_control, "no-cache, no-store");
    if (!origin_.empty() && CrossOriginAllowed()) {
      m.set(http::field::access_control_allow_origin, origin_);
      m.set(http::field::access_control_expose_headers,
            "grpc-status, grpc-message, grpc-status-details-bin");
      m.set(http::field::vary, "Origin");
    }
  }
  template <typename Message>
  void SetGrpcWebHeaders(Message& m, bool text) {
    SetGrpcWebHeaders(m, text ? "application/grpc-web-text+proto" : "application/grpc-web+proto");
  }
  void SendHead(const char* content_type) {
    head_ = {};
    head_.version(request_.version());
    head_.result(http::status::ok);
    SetGrpcWebHeaders(head_, content_type);
    head_.keep_alive(keep_alive_);
    head_.chunked(true);
    head_sr_ = std::make_unique<http::response_serializer<http::empty_body>>(head_);
    stream_.expires_never();
    http::async_write_header(stream_, *head_sr_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Broken();
                               self->head_sent_ = true;
                               self->Pump();
                             });
  }

  void QueueTrailer(int code, const std::string& message) {
    std::string frame = grpc_web::TrailerFrame(code, message);
    if (text_) frame = absl::Base64Escape(frame);
    out_.push_back({std::move(frame), true, nullptr});
    Pump();
  }

  // A call refused before it reached gRPC: headers and trailer only.
  void Refuse(int code, const std::string& message) {
    impl_->Count("grpc-web", GrpcCodeName(code));
    SendHead(text_);
    QueueTrailer(code, message);
  }

  // Writes everything queued as one batch of chunks (the last chunk too, after the
  // trailer): a unary call's message and trailer often leave in one write.
  void Pump() {
    if (writing_ || !head_sent_ || out_.empty() || broken_) return;
    writing_ = true;
    batch_.clear();
    batch_last_ = false;
    while (!out_.empty() && !batch_last_) {
      Out& o = out_.front();
      // Chunked encoding by hand (size in hex, CRLF, data, CRLF), so one buffer carries
      // several chunks; a frame is never empty, so no data chunk reads as the last one.
      absl::StrAppend(&batch_, absl::Hex(o.data.size()), "\r\n", o.data, "\r\n");
      if (o.written) batch_written_.push_back(std::move(o.written));
      if (o.last) {
        batch_ += "0\r\n\r\n";
        batch_last_ = true;
      }
      out_.pop_front();
    }
    // A browser that stops reading would hold its call forever through backpressure.
    stream_.expires_after(kWriteTimeout);
    net::async_write(
        stream_, net::buffer(batch_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnBatchWritten(ec); });
  }

  void OnBatchWritten(beast::error_code ec) {
    stream_.expires_never();  // an idle stream waits for events as long as it takes
    writing_ = false;
    std::vector<std::function<void()>> written = std::move(batch_written_);
    batch_written_.clear();
    if (ec) return Broken();
    for (const auto& w : written) w();
    if (!batch_last_) return Pump();
    EndCall();
    AfterResponse(ec);
  }

  void EndCall() {
    StopWatching();
    a2a_streaming_ = false;
    a2a_.reset();
    call_.reset();
    out_.clear();
    head_sent_ = false;
  }

  void StopWatching() {
    ++watch_generation_;  // the disconnect watcher of this response stands down
    if (watching_) {
      watching_ = false;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    }
  }

  // The client went away (a failed write, or EOF seen by the watcher): cancel the call;
  // its OnDone still comes, and finds the connection closed.
  void Broken();
  void AbandonCall();

  // An idle stream writes nothing, so a closed tab would go unnoticed: wait for the
  // socket to turn readable; a client sends nothing while its response is open, so
  // readable means EOF (or a reset) unless it pipelines, which browsers do not.
  void WatchPeer() {
    watching_ = true;
    uint64_t gen = watch_generation_;
    stream_.socket().async_wait(
        tcp::socket::wait_read, [self = shared_from_this(), gen](beast::error_code ec) {
          if (gen != self->watch_generation_ || !self->watching_) return;
          if (ec) return;  // cancelled with the response
          char c;
          ssize_t n = recv(self->stream_.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
          if (n > 0) {
            self->watching_ = false;  // pipelined bytes: stop watching, leave them be
            return;
          }
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return self->WatchPeer();
          self->watching_ = false;
          self->Broken();
        });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  WebServer::Impl* impl_;
  std::string peer_;           // the client's address, for the per-peer cap
  net::ip::address local_ip_;  // the address the client reached (a Host it may name)
  int64_t served_ = 0;         // requests read on this connection
  std::atomic<bool> busy_{false};
  std::atomic<int64_t> idle_since_{0};
  bool keep_alive_ = false;
  bool linger_ = false;
  char drain_[4096];
  std::string origin_;

  bool text_ = false;
  http::response<http::empty_body> head_;
  std::unique_ptr<http::response_serializer<http::empty_body>> head_sr_;
  bool head_sent_ = false;
  std::deque<Out> out_;
  std::string batch_;                                 // being written
  std::vector<std::function<void()>> batch_written_;  // to run once it is
  bool batch_last_ = false;
  bool writing_ = false;
  bool broken_ = false;
  bool watching_ = false;
  uint64_t watch_generation_ = 0;
  std::shared_ptr<GrpcWebCall> call_;
  bool call_done_ = false;
  // The A2A request being served: told when the client goes away.
  std::shared_ptr<std::atomic<bool>> a2a_;
  bool a2a_streaming_ = false;
};

// One bridged call on the in-process channel. A unary method's is a generic unary call:
// one request, one answer, handed to the session whole (Session::FinishUnary). Any other
// is a generic bidi call: it writes the request messages, then reads responses one at a
// time, each read started only when the previous message reached the browser's socket. A
// hold keeps gRPC from finishing the call between two reads (when no read is outstanding);
// it is released by the last read or by Abandon(). Lives until gRPC's OnDone or the unary
// call's completion (self_), and as long as the session needs it.
class GrpcWebCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `unary`: the method takes one message and answers one, and `messages` holds one.
  GrpcWebCall(WebServer::Impl* impl, std::shared_ptr<Session> session, std::string method,
              std::vector<std::string> messages, bool text, bool unary)
      : impl_(impl),
        session_(std::move(session)),
        method_(std::move(method)),
        text_(text),
        unary_(unary),
        holding_(!unary) {
    for (std::string& m : messages) {
      grpc::Slice slice(m);
      requests_.emplace_back(&slice, 1);
    }
  }

  void Start(std::shared_ptr<GrpcWebCall> self, std::optional<absl::Duration> timeout) {
    self_ = std::move(self);
    ctx_.AddMetadata("authorization", absl::StrCat("Bearer ", impl_->options.admin_token));
    if (timeout) ctx_.set_deadline(absl::ToChronoTime(absl::Now() + *timeout));
    impl_->Register(this);
    if (unary_) {
      // One batch of operations and one completion, where a bidi call takes six: the
      // bridge's unary calls cost about as much as native ones.
      impl_->stub->UnaryCall(&ctx_, method_, grpc::StubOptions(), &requests_[0], &response_,
                             [this](grpc::Status status) { OnUnaryDone(status); });
      return;
    }
    // method_ outlives the call: gRPC keeps a pointer to its characters.
    impl_->stub->PrepareBidiStreamingCall(&ctx_, method_, grpc::StubOptions(), this);
    AddHold();
    WriteNext();
    StartRead(&response_);
    StartCall();
  }

  // Any thread, any time: the call ends CANCELLED (OnDone still comes), and a read that
  // waits for the browser's socket is given up.
  void Abandon() {
    ctx_.TryCancel();
    std::unique_lock lock(mu_);
    abandoned_ = true;
    if (between_reads_) {
      between_reads_ = false;
      ReleaseHoldLocked(lock);
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;  // the call is over; OnDone says how
    ++next_;
    WriteNext();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // no more messages; OnDone follows
      std::unique_lock lock(mu_);
      ReleaseHoldLocked(lock);
      return;
    }
    std::string frame = grpc_web::Frame(grpc_web::kDataFrame, Payload());
    if (text_) frame = absl::Base64Escape(frame);
    {
      std::unique_lock lock(mu_);
      if (abandoned_) {  // the browser is gone: no one to deliver to, and no next read
        ReleaseHoldLocked(lock);
        return;
      }
      between_reads_ = true;
    }
    net::post(session_->executor(), [self = self_, frame = std::move(frame)]() mutable {
      self->session_->SendFrame(std::move(frame), [self] { self->ReadNext(); });
    });
  }

  void OnDone(const grpc::Status& status) override {
    std::shared_ptr<GrpcWebCall> self = std::move(self_);
    net::post(session_->executor(), [self, status] { self->session_->FinishCall(status); });
    impl_->Unregister(this);
  }

 private:
  void OnUnaryDone(const grpc::Status& status) {
    std::string frame;
    if (status.ok()) {
      frame = grpc_web::Frame(grpc_web::kDataFrame, Payload());
      if (text_) frame = absl::Base64Escape(frame);
    }
    std::shared_ptr<GrpcWebCall> self = std::move(self_);
    net::post(session_->executor(), [self, status, frame = std::move(frame)]() mutable {
      self->session_->FinishUnary(status, std::move(frame));
    });
    impl_->Unregister(this);
  }

  // The response message's bytes.
  std::string Payload() {
    std::vector<grpc::Slice> slices;
    std::string payload;
    if (response_.Dump(&slices).ok()) {
      for (const grpc::Slice& s : slices) {
        payload.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return payload;
  }

  // The previous message reached the socket: read the next one (unless abandoned).
  void ReadNext() {
    {
      std::lock_guard lock(mu_);
      if (!between_reads_) return;
      between_reads_ = false;
    }
    StartRead(&response_);
  }

  void ReleaseHoldLocked(std::unique_lock<std::mutex>& lock) {
    if (!holding_) return;
    holding_ = false;
    lock.unlock();
    RemoveHold();
  }

  void WriteNext() {
    if (requests_.empty()) {
      StartWritesDone();
    } else if (next_ + 1 == requests_.size()) {
      StartWriteLast(&requests_[next_], grpc::WriteOptions());
    } else if (next_ < requests_.size()) {
      StartWrite(&requests_[next_]);
    }
  }

  WebServer::Impl* impl_;
  std::shared_ptr<Session> session_;
  std::string method_;
  bool text_;
  bool unary_;
  grpc::ClientContext ctx_;
  std::vector<grpc::ByteBuffer> requests_;
  size_t next_ = 0;
  grpc::ByteBuffer response_;
  std::shared_ptr<GrpcWebCall> self_;
  std::mutex mu_;
  bool holding_;                // guarded by mu_ (a unary call holds nothing)
  bool between_reads_ = false;  // guarded by mu_
  bool abandoned_ = false;      // guarded by mu_
};

void Session::AbandonCall() {
  if (call_ != nullptr && !call_done_) call_->Abandon();
}

void Session::Broken() {
  broken_ = true;
  out_.clear();
  if (a2a_ != nullptr) a2a_->store(true);
  if (call_ != nullptr) {
    if (call_done_) {
      call_.reset();
    } else {
      call_->Abandon();
    }
  }
  Close();
}

void Session::Bridge(absl::string_view path, bool text) {
  text_ = text;
  if (!OriginAllowed()) {
    keep_alive_ = false;
    return SendSimple(
        http::status::forbidden, "text/plain; charset=utf-8",
        absl::StrCat("origin \"", origin_, "\" is not in server.cors_origins of agentd's config\n"),
        "grpc-web");
  }
  if (!impl_->Authorized(request_)) {
    // Says what to do, not where agentd keeps its files: the caller is not known yet.
    return Refuse(grpc::StatusCode::UNAUTHENTICATED,
                  "agentd's HTTP listener needs a login or the admin token: open the login "
                  "link `agentctl ui` prints, or send `authorization: Bearer <admin token>`");
  }
  if (impl_->stopping.load()) {
    return Refuse(grpc::StatusCode::UNAVAILABLE, "agentd is shutting down");
  }
  // "/pkg.Service/Method": anything else cannot name a method.
  std::optional<std::pair<std::string, std::string>> method = web::MethodOfPath(path);
  if (!method) {
    return Refuse(grpc::StatusCode::UNIMPLEMENTED,
                  absl::StrCat("\"", path, "\" names no method: POST /<package.Service>/<Method>"));
  }
  if (method->first == "agentd.v1.AgentHostService") {
    return Refuse(grpc::StatusCode::PERMISSION_DENIED,
                  "agentd.v1.AgentHostService is for agents; the web bridge serves the client "
                  "services");
  }
  absl::StatusOr<std::vector<std::string>> messages =
      grpc_web::DecodeRequest(request_.body(), text);
  if (!messages.ok()) {
    return Refuse(static_cast<int>(messages.status().code()),
                  std::string(messages.status().message()));
  }
  std::optional<absl::Duration> timeout;
  if (auto t = request_.find("grpc-timeout"); t != request_.end()) {
    absl::StatusOr<absl::Duration> d =
        grpc_web::ParseTimeout(absl::string_view(t->value().data(), t->value().size()));
    if (!d.ok())
      return Refuse(grpc::StatusCode::INVALID_ARGUMENT, std::string(d.status().message()));
    timeout = *d;
  }
  // A unary method's response is sent whole when its call ends; a stream's head now.
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          absl::StrCat(method->first, ".", method->second));
  bool unary = descriptor != nullptr && !descriptor->client_streaming() &&
               !descriptor->server_streaming() && messages->size() == 1;
  if (!unary) SendHead(text);
  call_done_ = false;
  call_ = std::make_shared<GrpcWebCall>(impl_, shared_from_this(), std::string(path),
                                        *std::move(messages), text, unary);
  WatchPeer();
  call_->Start(call_, timeout);
}

// Where an A2A request's thread sends its answer: posted to the session's strand.
class A2aReply final : public web::A2aResponder {
 public:
  A2aReply(WebServer::Impl* impl, std::shared_ptr<Session> session,
           std::shared_ptr<std::atomic<bool>> gone)
      : impl_(impl), session_(std::move(session)), gone_(std::move(gone)) {}
  void Json(int status, std::string body) override {
    net::post(session_->executor(), [s = session_, status, body = std::move(body)]() mutable {
      s->A2aJson(status, std::move(body));
    });
  }
  void Event(std::string data, bool last) override {
    net::post(session_->executor(), [s = session_, data = std::move(data), last]() mutable {
      s->A2aEvent(std::move(data), last);
    });
  }
  bool gone() const override { return gone_->load() || impl_->stopping.load(); }

 private:
  WebServer::Impl* impl_;
  std::shared_ptr<Session> session_;
  std::shared_ptr<std::atomic<bool>> gone_;
};

void Session::A2a() {
  if (impl_->a2a == nullptr) {
    return SendSimple(http::status::not_found, "text/plain; charset=utf-8", "A2A is off\n", "a2a");
  }
  absl::string_view ct(request_[http::field::content_type].data(),
                       request_[http::field::content_type].size());
  if (!absl::StartsWith(ct, "application/json")) {
    return SendSimple(http::status::unsupported_media_type, "text/plain; charset=utf-8",
                      "/a2a takes JSON-RPC: content-type application/json\n", "a2a");
  }
  // A2A-Version: what the client speaks (none means 0.3, which agentd does not).
  std::string version(request_["A2A-Version"]);
  if (!version.empty() && version != "1.0" && version != "1") {
    return SendSimple(
        http::status::ok, "application/json",
        DumpJson({{"jsonrpc", "2.0"},
                  {"id", nullptr},
                  {"error",
                   {{"code", -32009},
                    {"message", absl::StrCat("A2A version \"", Utf8Prefix(version, 40, "…"),
                                             "\" is not supported: agentd speaks 1.0")}}}}),
        "a2a");
  }
  if (!OriginAllowed()) {
    keep_alive_ = false;
    return SendSimple(
        http::status::forbidden, "text/plain; charset=utf-8",
        absl::StrCat("origin \"", origin_, "\" is not in server.cors_origins of agentd's config\n"),
        "a2a");
  }
  if (!impl_->A2aAuthorized(request_)) {
    // Answered here: only a caller with a token gets a thread.
    return SendSimple(
        http::status::unauthorized, "application/json",
        DumpJson({{"jsonrpc", "2.0"},
                  {"id", nullptr},
                  {"error",
                   {{"code", -32600},
                    {"message",
                     "unauthenticated: send `Authorization: Bearer <token>` with agentd's A2A "
                     "token (STATE_DIR/a2a.token) or its admin token"}}}}),
        "a2a", {{"WWW-Authenticate", "Bearer"}});
  }
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping.load()) {
      return SendSimple(http::status::service_unavailable, "text/plain; charset=utf-8",
                        "agentd is shutting down\n", "a2a");
    }
    if (impl_->a2a_calls >= kMaxA2aCalls) {
      // Each waits on a thread of its own: past this many, callers wait their turn.
      return SendSimple(http::status::service_unavailable, "text/plain; charset=utf-8",
                        absl::StrCat("too many A2A calls at once (", kMaxA2aCalls,
                                     "); try again when one has ended\n"),
                        "a2a", {{"Retry-After", "1"}});
    }
    ++impl_->a2a_calls;
  }
  a2a_ = std::make_shared<std::atomic<bool>>(false);
  a2a_streaming_ = false;
  WatchPeer();  // a client that leaves a long wait is noticed
  // A thread of its own: a blocking SendMessage waits for the goal, and the I/O thread
  // must not. Shutdown waits for these threads (they notice it within a second).
  auto reply = std::make_shared<A2aReply>(impl_, shared_from_this(), a2a_);
  try {
    std::thread([impl = impl_, reply, body = request_.body()]() mutable {
      impl->a2a->Handle(body, true, reply.get());
      // Let go of the session before counting out: once the count is zero the server
      // may be gone, and the session's last reference must not outlive it.
      reply.reset();
      std::lock_guard lock(impl->mu);
      --impl->a2a_calls;
      impl->calls_done.notify_all();
    }).detach();
  } catch (const std::system_error& e) {
    {
      std::lock_guard lock(impl_->mu);
      --impl_->a2a_calls;
    }
    a2a_.reset();
    StopWatching();
    SendSimple(http::status::service_unavailable, "text/plain; charset=utf-8",
               "agentd cannot start a thread for this call now; try again\n", "a2a");
  }
}

}  // namespace

void WebServer::Impl::Accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != net::error::operation_aborted && !stopping.load()) {
        // EMFILE and friends: back off instead of spinning on a listener that stays
        // readable, and log once per episode.
        if (!accept_failing) spdlog::warn("web: accept: {}; retrying", ec.message());
        accept_failing = true;
        retry.expires_after(std::chrono::milliseconds(200));
        retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
      }
      return;
    }
    accept_failing = false;
    beast::error_code peer_ec;
    std::string peer = socket.remote_endpoint(peer_ec).address().to_string();
    if (!peer_ec && Admit(peer)) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket), this, peer)->Start();
    }
    Accept();
  });
}

bool WebServer::Impl::Admit(const std::string& peer) {
  std::shared_ptr<Session> victim;
  {
    std::lock_guard lock(conns_mu);
    int total = 0, from_peer = 0;
    Session* oldest = nullptr;       // the longest idle connection
    Session* oldest_peer = nullptr;  // the longest idle of this peer's
    for (auto& [s, c] : conns) {
      if (c.evicting) continue;
      ++total;
      bool mine = c.peer == peer;
      if (mine) ++from_peer;
      if (!s->idle()) continue;
      if (oldest == nullptr || s->idle_since() < oldest->idle_since()) oldest = s;
      if (mine && (oldest_peer == nullptr || s->idle_since() < oldest_peer->idle_since())) {
        oldest_peer = s;
      }
    }
    Session* evict = nullptr;
    if (from_peer >= kMaxConnectionsPerPeer) {
      evict = oldest_peer;
    } else if (total >= max_connections) {
      evict = oldest_peer != nullptr ? oldest_peer : oldest;
    } else {
      return true;
    }
    if (evict == nullptr) {
      spdlog::warn("web: {} connections open ({} from {}), none idle; refusing another", total,
                   from_peer, peer);
      return false;
    }
    conns[evict].evicting = true;
    victim = conns[evict].session.lock();
  }
  // Closed on its own strand; if it has just become busy it stays (and counts again).
  if (victim != nullptr) {
    net::post(victim->executor(), [victim] { victim->Evict(); });
  }
  return true;
}

void WebServer::Impl::AddSession(Session* s, std::weak_ptr<Session> weak, const std::string& peer) {
  std::lock_guard lock(conns_mu);
  conns[s] = Conn{std::move(weak), peer, false};
}

void WebServer::Impl::RemoveSession(Session* s) {
  std::lock_guard lock(conns_mu);
  conns.erase(s);
}

void WebServer::Impl::KeepSession(Session* s) {
  std::lock_guard lock(conns_mu);
  if (auto it = conns.find(s); it != conns.end()) it->second.evicting = false;
}

bool WebServer::Impl::HostAllowed(absl::string_view host, const net::ip::address& local) const {
  return web::HostAllowed(host, local, bound_ip, options.hosts);
}

void WebServer::Impl::Register(GrpcWebCall* call) {
  std::lock_guard lock(mu);
  // Shutdown() may have abandoned every call between Bridge's check and now.
  if (stopping.load()) call->Abandon();
  calls.insert(call);
  if (metrics != nullptr) metrics->http_streams->Set({}, static_cast<double>(calls.size()));
}

void WebServer::Impl::Unregister(GrpcWebCall* call) {
  std::lock_guard lock(mu);
  calls.erase(call);
  if (metrics != nullptr) metrics->http_streams->Set({}, static_cast<double>(calls.size()));
  if (calls.empty()) calls_done.notify_all();
}

bool WebServer::Impl::Authorized(const http::request<http::string_body>& req) const {
  // A presented token decides alone: a wrong one is refused even when a good session
  // cookie rides along (a script cannot act with another identity than it claims).
  if (auto auth = req.find(http::field::authorization); auth != req.end()) {
    std::optional<absl::string_view> token =
        web::BearerToken(absl::string_view(auth->value().data(), auth->value().size()));
    return token && TokenEquals(*token, options.admin_token);
  }
  std::optional<std::string> cookie = web::CookieValue(
      absl::string_view(req[http::field::cookie].data(), req[http::field::cookie].size()),
      kCookieName);
  return cookie && options.sessions != nullptr && options.sessions->Valid(*cookie);
}

bool WebServer::Impl::A2aAuthorized(const http::request<http::string_body>& req) const {
  if (Authorized(req)) return true;
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || options.a2a_token.empty()) return false;
  std::optional<absl::string_view> token =
      web::BearerToken(absl::string_view(auth->value().data(), auth->value().size()));
  return token && TokenEquals(*token, options.a2a_token);
}

bool WebServer::Impl::ScrapeAuthorized(const http::request<http::string_body>& req) const {
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || options.metrics_token.empty()) return false;
  std::optional<absl::string_view> token =
      web::BearerToken(absl::string_view(auth->value().data(), auth->value().size()));
  return token && TokenEquals(*token, options.metrics_token);
}

WebServer::WebServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WebServer::~WebServer() {
  Shutdown();
  // A call's OnDone touches the registry: wait for the last (the gRPC server's shutdown,
  // which comes before this destructor in the daemon, ends any still running).
  std::unique_lock lock(impl_->mu);
  impl_->calls_done.wait(lock, [this] { return impl_->calls.empty() && impl_->a2a_calls == 0; });
}

const std::string& WebServer::address() const { return impl_->address; }

absl::StatusOr<std::unique_ptr<WebServer>> WebServer::Start(WebServerOptions options,
                                                            grpc::Server* server,
                                                            DaemonMetrics* metrics) {
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->metrics = metrics;
  if (rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    impl->max_connections =
        std::max(16, std::min(kMaxConnectionsCap, static_cast<int>(rl.rlim_cur / 4)));
  }

  const std::string& addr = impl->options.address;
  size_t colon = addr.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.http \"", addr, "\": expected host:port, e.g. 127.0.0.1:7878"));
  }
  std::string host = addr.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  net::ip::address ip = net::ip::make_address(host, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat("server.http \"", addr, "\": \"", host,
                                                   "\" is not an IP address (", ec.message(), ")"));
  }
  if (!ip.is_loopback()) {
    spdlog::warn(
        "server.http {}: not a loopback address; the admin token and session cookie cross the "
        "network in clear text (put a TLS proxy in front, or bind 127.0.0.1)",
        addr);
  }
  tcp::endpoint endpoint(ip, static_cast<uint16_t>(port));
  auto fail = [&](const char* what) {
    return absl::UnavailableError(
        absl::StrCat("server.http ", addr, ": cannot ", what, ": ", ec.message()));
  };
  impl->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket");
  impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  impl->acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  tcp::endpoint bound = impl->acceptor.local_endpoint();
  impl->bound_ip = bound.address();
  impl->address = bound.address().is_v6()
                      ? absl::StrCat("[", bound.address().to_string(), "]:", bound.port())
                      : absl::StrCat(bound.address().to_string(), ":", bound.port());

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  impl->channel = server->InProcessChannel(args);
  impl->stub = std::make_unique<grpc::GenericStub>(impl->channel);
  if (impl->options.a2a) {
    web::A2aOptions a2a = *impl->options.a2a;
    a2a.channel = impl->channel;
    a2a.admin_token = impl->options.admin_token;
    impl->a2a = std::make_unique<web::A2aServer>(std::move(a2a));
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->ioc.run(); });
  if (impl->options.sessions != nullptr) {
    impl->options.sessions->SetBaseUrl(absl::StrCat("http://", impl->address));
  }
  return std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
}

void WebServer::Shutdown() {
  Impl& i = *impl_;
  if (i.shut_down) return;
  i.shut_down = true;
  net::post(i.ioc, [&i] {
    beast::error_code ignored;
    i.acceptor.close(ignored);
  });
  std::unique_lock lock(i.mu);
  i.stopping.store(true);  // under mu: a call that registers later abandons itself
  // Calls stay registered until their OnDone, so these pointers are alive while mu is
  // held. Abandon() only schedules OnDone (gRPC runs it on its own executor).
  for (GrpcWebCall* call : i.calls) call->Abandon();
  // A cancelled call ends promptly (CANCELLED). The bound only guards against a server
  // that will not answer; the destructor waits for the rest.
  i.calls_done.wait_for(lock, std::chrono::seconds(5),
                        [&i] { return i.calls.empty() && i.a2a_calls == 0; });
  lock.unlock();
  i.ioc.stop();
  if (i.thread.joinable()) i.thread.join();
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard conns_lock(i.conns_mu);
    for (auto& [raw, conn] : i.conns) {
      if (std::shared_ptr<Session> s = conn.session.lock()) open.push_back(std::move(s));
    }
  }
  for (const std::shared_ptr<Session>& s : open) s->DropAtShutdown();
}

}  // namespace agentd
