// WebServer: agentd's HTTP/1.1 listener (default 127.0.0.1:7878) for browsers and
// scrapers:
//   POST /agentd.v1.<Service>/<Method>   gRPC-web (binary and -text) bridged to the API
//   GET  /metrics                        Prometheus text format
//   GET  /livez                          "ok" while the process answers (no token needed)
//   GET  /readyz                         "ok" while it serves (draining or a failed store:
//                                        503); /healthz is the same (no token needed)
//   GET  /login?code=<one-time code>     login: redeems the code (web_sessions.h) for a
//                                        session cookie, redirects to /
//   GET  /, /assets/…                    the built web UI (ui/dist); the UI routes with
//                                        #fragments, so any other path is 404
//
// Authentication: the admin token as `authorization: Bearer <token>`, or the HttpOnly,
// SameSite=Strict session cookie the login link sets (a random session id that expires
// and can be revoked; nothing derived from the token). Without either, gRPC-web calls
// fail UNAUTHENTICATED and /metrics answers 401, with messages that name no file; the
// UI's static files (no data) are served to anyone, so the browser can show its login
// page. An old `/?token=` link is refused (410) and its token ignored.
//
// Every request, /healthz included, must name the listener in its Host header: a
// loopback address, `localhost`, the address the client connected to, or one of
// `hosts`; anything else is 403. That defeats DNS rebinding: a page whose name is made
// to resolve to 127.0.0.1 still sends its own name.
//
// Connections are bounded so that no client can lock others out: a new connection's
// request head must arrive within 10 s (and any request's head within 10 s of its first
// byte), at most 64 connections per peer address and a global cap (a quarter of the
// descriptors, at most 1024); at either cap the longest idle connection (one waiting
// for or still reading a request) is closed to make room, and only when none is idle is
// the new one refused. /healthz thus answers while a client holds hundreds of
// half-open requests.
//
// The bridge is generic: every method of the gRPC server is reachable with no per-method
// code, through the server's in-process channel and a generic bidi call (which serves
// unary and server-streaming methods alike). grpc-timeout becomes the call's deadline,
// and a client that disconnects cancels its call. The in-process channel carries no
// peer identity, so the bridge authenticates before forwarding and forwards the admin
// token. AgentHostService is for agents and is refused here (PERMISSION_DENIED).
//
// Why Boost.Beast (Debian's libboost-dev, header-only): it is asynchronous, so an open
// stream costs a socket and a few buffers, not a thread. A handful of browser tabs each
// holding event, log and consent streams would exhaust a thread-per-connection server
// (cpp-httplib, the other Debian option, spends a pool thread per open stream). Beast
// also gives chunked responses written as each gRPC message arrives, with backpressure:
// the next message is read from gRPC only once the previous chunk reached the socket.
//
// Threading: one I/O thread runs every connection; gRPC callbacks post onto it. Start()
// returns once the listener accepts. Shutdown() (idempotent, any thread but the I/O one)
// stops accepting, cancels open calls, waits for them to end, and joins the thread. Call
// it before the gRPC server shuts down.
#ifndef AGENTD_MANAGER_WEB_WEB_SERVER_H_
#define AGENTD_MANAGER_WEB_WEB_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "manager/core/metrics.h"
#include "manager/core/web_sessions.h"
#include "manager/web/a2a.h"

namespace agentd {

struct WebServerOptions {
  std::string address = "127.0.0.1:7878";  // "host:port"; port 0 picks a free one
  std::string ui_dir;                      // the built UI; missing: a page saying how to build it
  std::string admin_token;
  // Accepted by /metrics alone (STATE_DIR/metrics.token): what a scraper is given.
  std::string metrics_token;
  std::vector<std::string> cors_origins;
  // Host names accepted besides loopback addresses, localhost and the listener's own
  // address (server.http_hosts): lower case, no port.
  std::vector<std::string> hosts;
  // Login codes and sessions (not owned; must outlive the WebServer). Null: no browser
  // login, only the bearer token. Start() sets its base URL to the bound address.
  WebSessions* sessions = nullptr;
  // Called on the I/O thread for each /metrics scrape, before rendering, to refresh the
  // gauges that are snapshots (agents by state…); it must call `done` exactly once, from
  // any thread. May be empty.
  std::function<void(std::function<void()> done)> refresh_metrics;
  // Whether the daemon serves (for /healthz). May be empty: always healthy.
  std::function<bool()> healthy;
  // A2A (/.well-known/agent-card.json and /a2a), when set; the channel and admin token
  // are filled in by Start. `a2a_token` is accepted on /a2a alone (STATE_DIR/a2a.token).
  std::optional<web::A2aOptions> a2a;
  std::string a2a_token;
};

class WebServer {
 public:
  // `server` (for its in-process channel) and `metrics` must outlive the WebServer;
  // `metrics` may be null (then /metrics is 404). Errors: UNAVAILABLE when the address
  // cannot be bound (with the reason), INVALID_ARGUMENT for a malformed address.
  static absl::StatusOr<std::unique_ptr<WebServer>> Start(WebServerOptions options,
                                                          grpc::Server* server,
                                                          DaemonMetrics* metrics);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  // The address actually bound, "127.0.0.1:40123".
  const std::string& address() const;
  void Shutdown();

  class Impl;

 private:
  explicit WebServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_WEB_WEB_SERVER_H_
