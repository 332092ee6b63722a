// ApiServer: the gRPC server — every agentd.v1 service, grpc.health.v1, and server
// reflection — on the unix socket and, when configured, on a token-checked TCP port.
//
// Start() binds the unix socket (its directory created 0700 when missing, and refused
// unless it is agentd's own — private_dir.h; a stale socket file replaced — the caller
// holds the socket lock — and the socket pinned to 0600) and
// the TCP port (TLS when a cert and key are given; otherwise gRPC's local credentials,
// which accept loopback peers only), then marks health SERVING. When Start() returns,
// both listeners accept calls.
//
// With an `agent_socket_path`, a second server on that socket is the agent endpoint: it
// serves AgentHostService alone (plus gRPC's health and reflection, which every server in
// the process gets and which hold no state), every call authenticated by the calling
// agent's own token, so an agent told this path is not an admin. Its directory is made
// private like the admin socket's, and isolated agents see only that directory.
//
// Shutdown() marks health NOT_SERVING, lets in-flight calls finish until `deadline`,
// then stops listening, cancels what is left, and removes the socket file. It returns
// as soon as no call is in flight: idle client connections do not hold it up. Call it once, from
// any thread but a gRPC callback.
#ifndef AGENTD_MANAGER_API_SERVER_H_
#define AGENTD_MANAGER_API_SERVER_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "manager/core/bus.h"
#include "manager/core/consent.h"
#include "manager/core/event_loop.h"
#include "manager/core/events.h"
#include "manager/core/ledger.h"
#include "manager/core/logstore.h"
#include "manager/core/metrics.h"
#include "manager/core/plans.h"
#include "manager/core/supervisor.h"
#include "manager/core/system.h"
#include "manager/core/tasks.h"
#include "manager/core/web_sessions.h"
#include "manager/core/workspace_opener.h"
#include "manager/web/a2a.h"

namespace agentd {

// The core objects the services adapt; none is owned. All but `logs` and `system` are
// used on `loop` only.
struct ApiCores {
  SystemCore* system = nullptr;
  EventLoop* loop = nullptr;
  Supervisor* supervisor = nullptr;
  LogStore* logs = nullptr;
  ConsentBook* consents = nullptr;
  TaskBoard* tasks = nullptr;
  Ledger* ledger = nullptr;
  Bus* bus = nullptr;
  PlanBook* plans = nullptr;
  AuditLog* audit = nullptr;
  EventFeed* events = nullptr;
  Transcripts* transcripts = nullptr;
  WorkspaceOpener* opener = nullptr;
  DaemonMetrics* metrics = nullptr;     // may be null
  Tracing* tracing = nullptr;           // may be null (agentd does not trace)
  WebSessions* web_sessions = nullptr;  // may be null (no HTTP listener); thread-safe
};

struct ApiServerOptions {
  std::string socket_path;
  std::string grpc_tcp;  // "host:port" ("…:0" picks a free port); empty: no TCP listener
  std::string tls_cert_file, tls_key_file;
  std::string admin_token;
  std::string agent_socket_path;  // empty: no agent endpoint (agents use the admin socket)
  // server.socket_group: the socket's directory 0750 and the socket 0660 in this group, so
  // its members may use the admin API; none: both private (0700, 0600).
  std::optional<gid_t> socket_group;
  // A2A's gRPC binding (lf.a2a.v1.A2AService), when set; the channel and admin token are
  // filled in once the server is up. `a2a_token` is accepted by it alone.
  std::optional<web::A2aOptions> a2a;
  std::string a2a_token;
};

class ApiServer {
 public:
  // The cores must outlive the server.
  static absl::StatusOr<std::unique_ptr<ApiServer>> Start(const ApiServerOptions& options,
                                                          const ApiCores& cores);
  ~ApiServer();

  // The TCP address actually bound ("127.0.0.1:40123"), or empty without TCP.
  const std::string& tcp_address() const { return tcp_address_; }
  // The server itself, for its in-process channel (the web bridge). Owned by this.
  grpc::Server* grpc_server() const { return server_.get(); }
  void Shutdown(absl::Time deadline);
  // Health answers NOT_SERVING from now on (the store failed); thread-safe.
  void SetNotServing();

  // Fully qualified names of the services served, health and reflection excluded.
  static std::vector<std::string> ServiceNames();

 private:
  ApiServer() = default;
  absl::Status StartAgentEndpoint(const std::string& path, const ApiCores& cores);
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Service> agent_service_;
  std::unique_ptr<grpc::Server> agent_server_;
  class A2aService* a2a_ = nullptr;  // in services_, when A2A is served
  SystemCore* system_ = nullptr;
  std::string socket_path_, agent_socket_path_;
  std::string tcp_address_;
  bool shut_down_ = false;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_SERVER_H_
