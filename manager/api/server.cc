#include "manager/api/server.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/agent_host.grpc.pb.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/audit.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "common/paths.h"
#include "grpc/health/v1/health.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "manager/api/a2a_service.h"
#include "manager/api/agent_host_service.h"
#include "manager/api/agent_service.h"
#include "manager/api/consent_service.h"
#include "manager/api/event_service.h"
#include "manager/api/interceptors.h"
#include "manager/api/log_service.h"
#include "manager/api/system_service.h"
#include "manager/api/task_service.h"
#include "manager/api/token_auth.h"
#include "manager/core/private_dir.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, ": cannot read: ", std::strerror(errno)));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// chmod 0600 on the socket file `path` in `dir` (0660 and `group`'s, with one), through a
// descriptor of the directory and without following a symlink; refuses anything but a
// socket owned by agentd.
absl::Status PinSocketMode(const std::string& dir, const std::string& path,
                           std::optional<gid_t> group) {
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    return absl::PermissionDeniedError(absl::StrCat(dir, ": cannot open: ", std::strerror(errno)));
  }
  std::string name = path.substr(path.rfind('/') + 1);
  struct stat st;
  absl::Status result;
  if (fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    result = absl::PermissionDeniedError(absl::StrCat(path, ": ", std::strerror(errno)));
  } else if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid()) {
    result = absl::FailedPreconditionError(
        absl::StrCat(path, " is not the socket agentd just bound (replaced by another file?)"));
  } else if (group && fchownat(dfd, name.c_str(), static_cast<uid_t>(-1), *group,
                               AT_SYMLINK_NOFOLLOW) != 0) {
    result = absl::PermissionDeniedError(absl::StrCat(
        path, ": cannot give it group ", *group, " (server.socket_group): ", std::strerror(errno)));
  } else if (fchmodat(dfd, name.c_str(), group ? 0660 : 0600, 0) != 0) {
    // (A socket is not a symlink, as just checked, so following is moot; Linux's
    // fchmodat cannot take AT_SYMLINK_NOFOLLOW without /proc.)
    result =
        absl::PermissionDeniedError(absl::StrCat(path, ": cannot chmod: ", std::strerror(errno)));
  }
  close(dfd);
  return result;
}

}  // namespace

std::vector<std::string> ApiServer::ServiceNames() {
  return {v1::SystemService::service_full_name(),    v1::AgentService::service_full_name(),
          v1::LogService::service_full_name(),       v1::TaskService::service_full_name(),
          v1::PlanService::service_full_name(),      v1::MessageService::service_full_name(),
          v1::EventService::service_full_name(),     v1::UsageService::service_full_name(),
          v1::AuditService::service_full_name(),     v1::ConsentService::service_full_name(),
          v1::AgentHostService::service_full_name(), lf::a2a::v1::A2AService::service_full_name()};
}

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::Start(const ApiServerOptions& options,
                                                            const ApiCores& c) {
  SystemCore* system = c.system;
  std::unique_ptr<ApiServer> api(new ApiServer);
  api->socket_path_ = options.socket_path;
  api->system_ = system;

  std::string socket_dir = DirName(options.socket_path);
  if (absl::Status s = EnsurePrivateDir(socket_dir, "socket directory", options.socket_group,
                                        /*take_back=*/true);
      !s.ok()) {
    return s;
  }
  // The caller holds the socket's instance lock: a socket file here is a dead daemon's.
  if (unlink(options.socket_path.c_str()) != 0 && errno != ENOENT) {
    return absl::PermissionDeniedError(absl::StrCat(
        options.socket_path, ": cannot remove the stale socket: ", std::strerror(errno)));
  }

  // Link-time registration of the reflection service, and health, before any builder.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::EnableDefaultHealthCheckService(true);
  // Pull health.proto's descriptor into the pool so reflection clients can describe it.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", options.socket_path),
                           grpc::InsecureServerCredentials());
  int tcp_port = 0;
  if (!options.grpc_tcp.empty()) {
    std::shared_ptr<grpc::ServerCredentials> creds;
    if (!options.tls_cert_file.empty()) {
      auto cert = ReadFile(options.tls_cert_file, "server.tls_cert_file");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(options.tls_key_file, "server.tls_key_file");
      if (!key.ok()) return key.status();
      grpc::SslServerCredentialsOptions ssl;
      ssl.pem_key_cert_pairs.push_back({*key, *cert});
      creds = grpc::SslServerCredentials(ssl);
    } else {
      // Plain HTTP/2 on the wire (buf curl --http2-prior-knowledge works), loopback peers
      // only, and — unlike InsecureServerCredentials — it runs the token processor.
      creds = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    }
    creds->SetAuthMetadataProcessor(
        std::make_shared<TokenAuthProcessor>(options.admin_token, options.a2a_token));
    builder.AddListeningPort(options.grpc_tcp, creds, &tcp_port);
  }

  ClientAuth client_auth{options.admin_token};
  api->services_.push_back(
      std::make_unique<SystemService>(system, client_auth, c.web_sessions, c.loop, c.audit));
  api->services_.push_back(
      std::make_unique<AgentService>(c.loop, c.supervisor, client_auth, c.audit));
  api->services_.push_back(std::make_unique<AgentHostService>(
      c.loop, c.supervisor, c.consents, c.tasks, c.ledger, c.bus, c.plans, c.tracing));
  api->services_.push_back(
      std::make_unique<ConsentService>(c.loop, c.consents, c.events, client_auth));
  api->services_.push_back(std::make_unique<LogService>(c.loop, c.supervisor, c.logs, client_auth));
  api->services_.push_back(std::make_unique<TaskService>(c.loop, c.tasks, c.transcripts, c.events,
                                                         c.opener, client_auth));
  api->services_.push_back(std::make_unique<UsageService>(c.loop, c.ledger, client_auth));
  api->services_.push_back(std::make_unique<MessageService>(c.loop, c.bus, c.events, client_auth));
  api->services_.push_back(std::make_unique<PlanService>(c.loop, c.plans, client_auth));
  api->services_.push_back(std::make_unique<AuditService>(c.loop, c.audit, client_auth));
  api->services_.push_back(std::make_unique<EventService>(c.loop, c.events, client_auth));
  if (options.a2a) {
    auto a2a = std::make_unique<A2aService>(options.admin_token, options.a2a_token);
    api->a2a_ = a2a.get();
    api->services_.push_back(std::move(a2a));
  }
  for (auto& s : api->services_) builder.RegisterService(s.get());

  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> ic;
  ic.push_back(std::make_unique<ApiInterceptorFactory>(system, c.metrics));
  builder.experimental().SetInterceptorCreators(std::move(ic));

  api->server_ = builder.BuildAndStart();
  if (api->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on unix:", options.socket_path,
        options.grpc_tcp.empty() ? "" : absl::StrCat(" and ", options.grpc_tcp),
        " (gRPC's log above says why: address in use, permission, or a bad TLS key/cert)"));
  }
  if (!options.grpc_tcp.empty()) {
    if (tcp_port == 0) {
      api->server_->Shutdown();
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.grpc_tcp));
    }
    std::string host = options.grpc_tcp.substr(0, options.grpc_tcp.rfind(':'));
    api->tcp_address_ = absl::StrCat(host, ":", tcp_port);
  }
  // gRPC binds the socket itself, so its descriptor is out of reach for fchmod; the mode
  // is set through the checked directory instead, without following a symlink (a socket
  // replaced by a link to some other file is refused, not chmod'ed). The daemon's umask
  // (077, main.cc) already made it private when it was bound; this pins it to 0600.
  if (absl::Status s = PinSocketMode(socket_dir, options.socket_path, options.socket_group);
      !s.ok()) {
    api->server_->Shutdown();
    return s;
  }
  if (!options.agent_socket_path.empty()) {
    if (absl::Status s = api->StartAgentEndpoint(options.agent_socket_path, c); !s.ok()) {
      api->server_->Shutdown();
      return s;
    }
  }
  if (api->a2a_ != nullptr) {
    // A2A is served by agentd's own API, called through the in-process channel.
    web::A2aOptions a2a = *options.a2a;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    a2a.channel = api->server_->InProcessChannel(args);
    a2a.admin_token = options.admin_token;
    api->a2a_->Attach(std::make_unique<web::A2aServer>(std::move(a2a)));
  }
  grpc::HealthCheckServiceInterface* health = api->server_->GetHealthCheckService();
  health->SetServingStatus(true);
  for (const std::string& name : ServiceNames()) health->SetServingStatus(name, true);
  return api;
}

absl::Status ApiServer::StartAgentEndpoint(const std::string& path, const ApiCores& c) {
  std::string dir = DirName(path);
  if (absl::Status s = EnsurePrivateDir(dir, "agent endpoint directory"); !s.ok()) return s;
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot remove the stale socket: ", std::strerror(errno)));
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", path), grpc::InsecureServerCredentials());
  agent_service_ = std::make_unique<AgentHostService>(c.loop, c.supervisor, c.consents, c.tasks,
                                                      c.ledger, c.bus, c.plans, c.tracing);
  builder.RegisterService(agent_service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> ic;
  ic.push_back(std::make_unique<ApiInterceptorFactory>(c.system, c.metrics));
  builder.experimental().SetInterceptorCreators(std::move(ic));
  agent_server_ = builder.BuildAndStart();
  if (agent_server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on unix:", path, " (gRPC's log above says why)"));
  }
  agent_socket_path_ = path;
  if (absl::Status s = PinSocketMode(dir, path, std::nullopt); !s.ok()) {  // agents alone
    agent_server_->Shutdown();
    return s;
  }
  return absl::OkStatus();
}

void ApiServer::SetNotServing() {
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
    for (const std::string& name : ServiceNames()) health->SetServingStatus(name, false);
  }
}

void ApiServer::Shutdown(absl::Time deadline) {
  if (shut_down_) return;
  shut_down_ = true;
  // A2A's waits end first (within a second): they are calls in flight, and call agentd.
  if (a2a_ != nullptr) a2a_->Shutdown();
  if (auto* health = server_->GetHealthCheckService()) {
    health->SetServingStatus(false);
    for (const std::string& name : ServiceNames()) health->SetServingStatus(name, false);
  }
  // Health watchers are streams that never end by themselves; give the NOT_SERVING
  // update a moment to reach them before their connections close (as a load balancer's
  // drain delay does). Bounded by the deadline.
  absl::SleepFor(std::min(absl::Milliseconds(100), deadline - absl::Now()));
  // gRPC's own Shutdown(deadline) also waits for every client connection to go away, so
  // one idle client (a UI tab, a long-lived stub) would hold the daemon for the whole
  // deadline. Wait for the calls instead: once none is in flight, or the deadline has
  // passed, shut down at once (remaining calls are cancelled, connections closed).
  // Meanwhile health says NOT_SERVING and services refuse new work (SystemCore state).
  while (system_->rpcs_in_flight() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now()));
  if (agent_server_ != nullptr) agent_server_->Shutdown(absl::ToChronoTime(absl::Now()));
  server_->Wait();
  if (agent_server_ != nullptr) {
    agent_server_->Wait();
    if (unlink(agent_socket_path_.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("{}: cannot remove socket: {}", agent_socket_path_, std::strerror(errno));
    }
  }
  if (unlink(socket_path_.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("{}: cannot remove socket: {}", socket_path_, std::strerror(errno));
  }
}

ApiServer::~ApiServer() {
  if (server_ != nullptr) Shutdown(absl::Now());
}

}  // namespace agentd
