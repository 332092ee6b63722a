// Daemon: agentd assembled — configuration, instance locks, state directory, store,
// core loop, API server, HTTP listener (web UI, gRPC-web, /metrics), systemd
// notifications — and its lifecycle.
//
// Start() returns once the API accepts calls (and READY=1 has been sent). Reload() and
// Shutdown() may be called from the signal-handling thread. Shutdown() drains within
// server.shutdown_timeout, records daemon.stopped, stops the core loop, and releases the
// socket and locks; it is idempotent.
#ifndef AGENTD_MANAGER_DAEMON_H_
#define AGENTD_MANAGER_DAEMON_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "manager/api/server.h"
#include "manager/core/bus.h"
#include "manager/core/config_state.h"
#include "manager/core/consent.h"
#include "manager/core/event_loop.h"
#include "manager/core/instance_lock.h"
#include "manager/core/launcher.h"
#include "manager/core/ledger.h"
#include "manager/core/logstore.h"
#include "manager/core/metrics.h"
#include "manager/core/notifier.h"
#include "manager/core/plans.h"
#include "manager/core/supervisor.h"
#include "manager/core/system.h"
#include "manager/core/tasks.h"
#include "manager/core/transcripts.h"
#include "manager/core/web_sessions.h"
#include "manager/core/workspace_opener.h"
#include "manager/store/store.h"
#include "manager/web/web_server.h"

namespace agentd {

struct DaemonOptions {
  std::string config_file;  // empty: the embedded default
  ConfigOverrides overrides;
};

class Daemon {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(DaemonOptions options);
  ~Daemon();

  // Reloads the configuration (SIGHUP); errors are logged and change nothing.
  void Reload();
  void Shutdown();

 private:
  Daemon() = default;
  void ScheduleWatchdog(absl::Duration interval);
  // Sets the metrics that are snapshots (agents by state, restarts, log bytes); on the loop.
  void RefreshMetrics();
  // The isolation agents start with: "namespaces", "none" or "refused".
  std::string IsolationMode() const;
  // Tries the tools' sandbox under the agents' isolation, and tells the supervisor when it
  // works (Supervisor::SetToolSandboxTried). On sandbox_trial_.
  void TrySandboxForAgents(const std::string& bwrap, const LaunchSpec::Isolation& isolation);

  Notifier notifier_;
  std::unique_ptr<DaemonMetrics> metrics_ = DaemonMetrics::Create();
  absl::Time start_time_;
  std::unique_ptr<ConfigState> config_;
  std::unique_ptr<InstanceLock> socket_lock_, state_lock_;
  std::unique_ptr<Store> store_;
  EventLoop loop_;
  std::thread loop_thread_;
  std::thread sandbox_trial_;  // TrySandboxForAgents, at start
  std::unique_ptr<SystemCore> system_;
  std::unique_ptr<LogStore> logs_;
  std::unique_ptr<AgentCgroups> cgroups_;
  std::unique_ptr<LocalLauncher> launcher_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<Transcripts> transcripts_;  // before consents_ and tasks_, which record in it
  std::unique_ptr<ConsentBook> consents_;
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<CheckRunner> checks_;          // before tasks_, which uses it
  std::unique_ptr<WorkspaceGit> workspace_git_;  // before plans_, which uses it
  std::unique_ptr<Outbox> outbox_;               // before everything that sends through it
  std::unique_ptr<TaskBoard> tasks_;
  std::unique_ptr<Bus> bus_;
  std::unique_ptr<PlanBook> plans_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<EventFeed> events_;
  std::unique_ptr<otel::SpanExporter> exporter_;  // null: agentd does not trace
  std::unique_ptr<Tracing> tracing_;              // after exporter_ and events_, which it uses
  std::unique_ptr<WorkspaceOpener> opener_;
  std::unique_ptr<WebSessions> web_sessions_;  // before api_ and web_, which use it
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<WebServer> web_;
  // Why agent isolation does not work here (the trial at start), or empty.
  std::string isolation_problem_;
  std::string isolation_caveat_;  // GetInfo's counters.isolation_caveat
  bool shut_down_ = false;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_DAEMON_H_
