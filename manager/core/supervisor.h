// Supervisor: agents as supervised processes, the way systemd supervises services.
//
// It starts an agent's process through a Launcher, watches it exit, and applies the
// restart policy (supervision.restart: always | on-failure | never) with capped
// exponential backoff and jitter, reset after a stable uptime (reset_after). Exit codes
// listed in no_restart_exit_codes mean "done": the agent is stopped, not restarted. More
// than crash_loop.max exits within crash_loop.window trip the crash-loop breaker: the
// agent goes to `failed` with the recorded reason. Many failures of any agents within a
// window (global_breaker) hold all automatic restarts for a cool-down; a person's start
// or restart still goes through. Stop sends SIGTERM to the agent's
// process group and SIGKILL to the group after stop_timeout; leftovers of a group whose
// leader exited are killed too, so no grandchild outlives its agent.
//
// Every state change is written to the store, with its event, before it is reported.
// On start, agents recorded by a previous run whose process (pid and start time) still
// lives are stopped, so no agent ever runs twice, and those that should run are started.
//
// Agents' stdout and stderr go to the LogStore, with a SYSTEM note for every state
// change; an exit reports the last lines the agent wrote.
//
// It knows nothing of tasks or gRPC. Thread-safety: every method runs on the core
// loop thread, but leases(), whose board is thread-safe; exits arrive from the launcher
// and are posted to the loop.
#ifndef AGENTD_MANAGER_CORE_SUPERVISOR_H_
#define AGENTD_MANAGER_CORE_SUPERVISOR_H_

#include <sys/resource.h>

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "agentd/v1/agent_host.pb.h"
#include "agentd/v1/agents.pb.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/core/launcher.h"
#include "manager/core/lease_board.h"
#include "manager/core/logstore.h"
#include "manager/core/metrics.h"
#include "manager/store/store.h"

namespace agentd {

class Supervisor {
 public:
  struct Options {
    // The agent endpoint (AgentHost only, each agent's own token), handed to agents as
    // AGENTD_SOCKET; the admin socket's directory is hidden from isolated agents.
    std::string socket_path;
    std::string admin_socket_path;
    std::string agent_binary;  // agentd-agent, for roles without a `command`
    std::string init_binary;   // agentd-init, PID 1 of an isolated `command` agent
    std::string state_dir;
    // Goals' default workspaces (config workspaces_dir): never inside state_dir.
    std::string workspaces_dir;
    // RLIMIT_NOFILE for agents without a configured nofile limit (agentd's own at start,
    // before it raised it); rlim_cur 0: inherited as it is.
    rlimit agent_nofile{0, 0};
    // Where a role's relative `prompt` and `knowledge` paths are looked up: beside the
    // config file first (config_dir, empty without one), then in the templates folder.
    std::string config_dir, templates_dir;
    // Why agent isolation (supervision.isolation) does not work here, as the daemon's
    // trial at start found it; empty when it works. Then `auto` starts agents without it
    // (said in status and metrics) and `required` refuses to start them.
    std::string isolation_problem;
    // Files outside the state dir an agent must not read (the TLS key): covered.
    std::vector<std::string> secret_files;
    // How agents record spans, when agentd traces (set at start); unset: it does not.
    std::optional<v1::AgentTelemetry> telemetry;
  };

  // The isolation an agent with this id gets (paths canonical): the state directory and
  // the admin socket's directory hidden; its own session directory exposed, the agent
  // endpoint's directory exposed read-only; `secret_files` masked.
  // Every agent is in a PID namespace of its own; `under_init` for a program that is not
  // written to be PID 1 there (a role's `command`): the launcher's init is, and runs it.
  LaunchSpec::Isolation IsolationFor(const std::string& id, bool under_init) const;
  // The same from `options`, with `session_dir` exposed when not empty: what the daemon
  // tries at start (ProbeIsolation) before any agent has a session.
  static LaunchSpec::Isolation IsolationOf(const Options& options, const std::string& session_dir,
                                           bool under_init);
  // The agent's session directory, STATE/sessions/ID (made 0700; a session file of the
  // older layout, STATE/sessions/ID.db, is moved into it).
  absl::StatusOr<std::string> SessionDir(const std::string& id) const;
  using AgentCallback = absl::AnyInvocable<void(absl::StatusOr<v1::Agent>) &&>;

  // None of the pointers is owned. `launcher` must report exits through
  // Supervisor::OnExit posted to `loop`.
  Supervisor(EventLoop* loop, Store* store, Launcher* launcher, LogStore* logs,
             const ConfigState* config, Options options);

  // Loads the previous run's agents and stops leftovers still running; marks as wanted
  // the config's `agents:` and the agents recorded as wanted running that hold work.
  // Does not start them: StartWanted() does, once agentd's listeners are bound, so a
  // listener that cannot be bound fails the start before any agent runs. `holds_work`
  // says whether an agent holds a task: an agent the config does not list comes back
  // after a restart only when it does (one a person started by hand and left idle does
  // not).
  absl::Status Recover(const std::function<bool(const std::string& id)>& holds_work);
  // Starts every agent Recover() marked as wanted. On the loop.
  void StartWanted();

  // Starts a new agent of `role` (id generated when empty), or starts a stopped or failed
  // one again. Errors: NOT_FOUND (no such role), ALREADY_EXISTS (running),
  // RESOURCE_EXHAUSTED (max_instances), INVALID_ARGUMENT (bad id).
  absl::StatusOr<v1::Agent> Start(const v1::StartAgentRequest& req);
  // SIGTERM, then SIGKILL after `timeout` (zero: supervision.stop_timeout). With `wait`,
  // `done` runs once the agent is stopped; otherwise at once with state `stopping`.
  void Stop(const std::string& id, absl::Duration timeout, bool wait, AgentCallback done);
  // Stops (if running) and starts again; `done` runs once it has been started again.
  void Restart(const std::string& id, absl::Duration timeout, AgentCallback done);
  // Removes a stopped or failed agent's record (row and "agent.deleted" event in one
  // transaction); with `force` a running one is stopped first (stop timeout). `done` gets
  // the agent as it was. Errors: NOT_FOUND; FAILED_PRECONDITION when it runs (without
  // force) or the configuration's `agents:` lists it. Its log and sessions are deleted.
  void Delete(const std::string& id, bool force, AgentCallback done);
  absl::StatusOr<v1::Agent> Get(const std::string& id) const;
  // What agent `id` was given when it last registered, as far as the reservations made
  // with its task assignments need it.
  struct Registered {
    size_t definition_bytes = 0;      // its definition's size: prompt, knowledge, tools
    v1::ModelRef model;               // the model its calls use (none: no model)
    bool takes_reservations = false;  // capability kCapabilityAssignmentReservations
  };
  // Null for an agent that is not known or has not registered. Valid until the next call.
  const Registered* RegisteredAs(const std::string& id) const;
  std::vector<v1::Agent> List(const std::string& role,
                              const std::vector<v1::AgentState>& states) const;

  // Stops every agent (daemon shutdown); `done` runs when all have exited or at `deadline`.
  void StopAll(absl::Time deadline, absl::AnyInvocable<void() &&> done);

  // A process exited (posted by the launcher's callback).
  void OnExit(ProcessId proc, ExitStatus status);

  // AgentHost, for agents running agentd-agent. `token` is the bearer token the call
  // carried. Errors: UNAUTHENTICATED (no or unknown token), PERMISSION_DENIED (a token
  // acting for another agent), FAILED_PRECONDITION (a lease that is no longer current:
  // register again).
  absl::StatusOr<v1::RegisterResponse> Register(const std::string& token,
                                                const v1::RegisterRequest& req);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const std::string& token,
                                                  const v1::HeartbeatRequest& req);
  // The same for agent `id`, known already (its Connect stream's). Errors: NOT_FOUND,
  // FAILED_PRECONDITION (as above).
  absl::StatusOr<v1::HeartbeatResponse> HeartbeatOf(const std::string& id,
                                                    const v1::HeartbeatRequest& req);
  // A registered agent says it is idle or busy (heartbeats, and at once on its Connect
  // stream); ignored for an agent that is not up.
  void SetActivity(const std::string& id, v1::AgentActivity activity, const std::string& progress);
  // The agent id a token belongs to, or UNAUTHENTICATED.
  absl::StatusOr<std::string> AgentForToken(const std::string& token) const;
  // The board on which a heartbeat that changes nothing but its lease's time is taken by
  // the thread that read it (LeaseBoard::TryRenew); one it does not take goes to
  // HeartbeatOf on the loop. Any thread; kept in step with every agent's record here.
  LeaseBoard* leases() { return &leases_; }

  // Called after every state change is stored (the task board follows agents with it).
  void SetStateObserver(std::function<void(const std::string& id, v1::AgentState state)> fn) {
    observer_ = std::move(fn);
  }

  // agentd tried the tools' sandbox (bwrap at `bwrap`, an absolute path) as agentd-agents
  // will run it: `isolated` under their isolation, else as agentd's own user. Agents started
  // so from now on are told (AGENTD_SANDBOX_TRIED) and skip their own trial at start, a
  // bwrap run that was about a quarter of an agent's start-up CPU. Not for a `command`, or
  // a role with process or memory limits, under which bwrap may fail where the trial did
  // not: those agents try for themselves, as every agent did before. On the loop.
  void SetToolSandboxTried(std::string bwrap, bool isolated) {
    sandbox_tried_ = std::move(bwrap);
    sandbox_tried_isolated_ = isolated;
  }

  // Where restarts and heartbeats are counted; not owned, may be null.
  void SetMetrics(DaemonMetrics* metrics) { metrics_ = metrics; }

  int64_t total_restarts() const { return total_restarts_; }
  std::map<v1::AgentState, int64_t> CountByState() const;
  // The sandbox in force for the tools of each registered agent, as the agent's own trial
  // run at start found it (reported at Register): the daemon does not probe for itself,
  // because tools run where the agent runs — its host, its namespaces, its PATH — which
  // need not be the daemon's. `by_mode` counts "bwrap", "unconfined" (auto fell back),
  // "refused" (required, not working) and "off"; `problems` holds each distinct reason
  // with the agents that gave it. Loop thread.
  struct SandboxCensus {
    std::map<std::string, int64_t> by_mode;
    std::vector<std::string> problems;
  };
  SandboxCensus CountBySandbox() const;

 private:
  struct Record {
    std::string id, role;
    v1::AgentState state = v1::AGENT_STATE_STOPPED;
    std::string detail;
    bool want_running = false;
    ProcessId proc;
    absl::Time start_time = absl::InfinitePast();
    int64_t restarts = 0;
    int consecutive_failures = 0;
    std::deque<absl::Time> recent_exits;
    std::optional<ExitStatus> last_exit;
    std::string last_exit_reason;
    std::vector<std::string> last_log_lines;  // of the last exit, from the log store
    int64_t log_seq_at_start = 0;             // the log's last seq when the process started
    absl::Time next_restart = absl::InfinitePast();
    EventLoop::TimerId restart_timer = 0;
    EventLoop::TimerId kill_timer = 0;
    bool restart_after_stop = false;
    std::vector<AgentCallback> waiters;  // run when stopped (or restarted)
    absl::Time created;
    // Agents that run agentd-agent register and then heartbeat under a lease.
    bool registers = false;
    std::string token;  // this process's; a new one for every start
    std::string lease_id;
    absl::Time lease_expiry = absl::InfiniteFuture();
    absl::Time last_heartbeat = absl::InfinitePast();
    EventLoop::TimerId lease_timer = 0;
    absl::Time lease_timer_at;  // when lease_timer fires (<= lease_expiry)
    std::string progress;
    std::string runtime_version;
    std::optional<Registered> registered;  // what its last Register answer gave it
    std::string sandbox_problem;           // as reported at Register; empty: bwrap works
  };

  absl::Status Spawn(Record& r);
  void SetState(Record& r, v1::AgentState state, std::string detail, const char* event);
  void HandleUnexpectedExit(Record& r, const ExitStatus& st);
  // Restarts `r` at `when`, or later while the global breaker is open.
  void ScheduleRestart(Record& r, absl::Time when);
  void FinishStop(Record& r);
  void Terminate(Record& r, absl::Duration timeout);
  v1::Agent ToProto(const Record& r) const;
  std::string NewId(const std::string& role) const;
  // The record of `id`, or nullptr after answering `done` with NOT_FOUND.
  Record* Lookup(const std::string& id, AgentCallback& done);
  // `requested` when positive, else supervision.stop_timeout.
  absl::Duration StopTimeout(absl::Duration requested) const;
  void ArmLease(Record& r, absl::Time expiry);
  // Puts what heartbeats off the loop are checked against on the lease board: after any
  // change of the agent's token, lease, state or progress.
  void PublishLease(const Record& r);
  // The agent's last heartbeat, those the lease board took included.
  absl::Time LastHeartbeat(const Record& r) const;
  void LeaseExpired(const std::string& id, absl::Time timer_at);
  absl::Status CheckInstanceLimit(const std::string& role, const std::string& except_id) const;
  // A role's relative path resolved as Options says.
  std::string ResolvePath(const std::string& path) const;
  // The prompt template and knowledge of `role`, read for its definition.
  void AddRoleFiles(const RoleConfig& role, v1::AgentDefinition* def) const;

  EventLoop* loop_;
  Store* store_;
  Launcher* launcher_;
  LogStore* logs_;
  const ConfigState* config_;
  Options options_;
  std::string sandbox_tried_;  // SetToolSandboxTried
  bool sandbox_tried_isolated_ = false;
  std::map<std::string, Record> agents_;
  std::map<pid_t, std::string> by_pid_;
  std::map<std::string, std::string> by_token_;
  LeaseBoard leases_;
  // The global breaker: recent failures of any agent, and until when restarts are held.
  std::deque<absl::Time> global_failures_;
  absl::Time breaker_open_until_ = absl::InfinitePast();
  DaemonMetrics* metrics_ = nullptr;
  int64_t total_restarts_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
  std::function<void(const std::string&, v1::AgentState)> observer_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_SUPERVISOR_H_
