#include "manager/core/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/paths.h"
#include "common/protocol_features.h"
#include "common/text.h"
#include "common/token.h"
#include "common/values.h"
#include "common/version.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

extern char** environ;

namespace agentd {
namespace {

// The MCP servers a role's tools grant ("mcp:<server>", "mcp:<server>/<tool>"), once each.
std::set<std::string> GrantedMcpServers(const RoleConfig& role) {
  std::set<std::string> out;
  for (const std::string& t : role.tools) {
    if (auto g = ParseMcpGrant(t); g.has_value() && g->ok()) out.insert((*g)->server);
  }
  return out;
}

std::string StateName(v1::AgentState s) {
  std::string n = v1::AgentState_Name(s);
  return absl::AsciiStrToLower(absl::StripPrefix(n, "AGENT_STATE_"));
}

v1::AgentState StateFromName(const std::string& name) {
  v1::AgentState s = v1::AGENT_STATE_UNSPECIFIED;
  v1::AgentState_Parse(absl::StrCat("AGENT_STATE_", absl::AsciiStrToUpper(name)), &s);
  return s;
}

// Lines of an agent's output kept with its last exit (AgentExit.last_log_lines).
constexpr int kLastLogLines = 10;

absl::Status NoSuchAgent(const std::string& id) {
  return absl::NotFoundError(
      absl::StrCat("agent \"", id, "\" does not exist (agentctl get agents lists them)"));
}

bool IsValidId(const std::string& id) {
  if (id.empty() || id.size() > 63 || !absl::ascii_isalnum(static_cast<unsigned char>(id[0]))) {
    return false;
  }
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

// What an agent's process inherits from the daemon: the basics a program needs, and not
// the daemon's secrets (provider keys are added per agent, for its own provider only).
bool InheritedVariable(absl::string_view kv) {
  static constexpr absl::string_view kKeep[] = {
      "PATH=", "HOME=", "USER=", "LOGNAME=", "LANG=", "TZ=", "TMPDIR=", "TERM=", "SHELL=",
      // A sanitizer build's options reach its agents, so their reports go where the
      // daemon's do (the test suite collects them from there).
      "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS="};
  for (absl::string_view k : kKeep) {
    if (absl::StartsWith(kv, k)) return true;
  }
  return absl::StartsWith(kv, "LC_") || absl::StartsWith(kv, "XDG_");
}

}  // namespace

Supervisor::Supervisor(EventLoop* loop, Store* store, Launcher* launcher, LogStore* logs,
                       const ConfigState* config, Options options)
    : loop_(loop),
      store_(store),
      launcher_(launcher),
      logs_(logs),
      config_(config),
      options_(std::move(options)),
      leases_(loop->clock()) {}

absl::Status Supervisor::Recover(const std::function<bool(const std::string&)>& holds_work) {
  absl::StatusOr<std::vector<AgentRow>> rows = store_->LoadAgents();
  if (!rows.ok()) return rows.status();
  for (const AgentRow& row : *rows) {
    Record r;
    r.id = row.id;
    r.role = row.role;
    r.want_running = row.want_running && holds_work && holds_work(row.id);
    r.state = StateFromName(row.state);
    r.detail = row.state_detail;
    r.restarts = row.restarts;
    r.created = absl::FromUnixMicros(row.created_time_us);
    if (row.has_last_exit) {
      ExitStatus st;
      st.exit_code = static_cast<int>(row.last_exit_code);
      st.signal = static_cast<int>(row.last_exit_signal);
      st.time = absl::FromUnixMicros(row.last_exit_time_us);
      r.last_exit = st;
      r.last_exit_reason = row.last_exit_reason;
    }
    // A process of the previous run that still lives (same pid, same start time) is not
    // ours to reap: stop its whole group so the agent never runs twice.
    if (row.pid > 0 && row.pid_start_ticks != 0 &&
        LocalLauncher::StartTicks(static_cast<pid_t>(row.pid)) == row.pid_start_ticks) {
      spdlog::warn("agent {}: pid {} from the previous run is still alive; stopping it", row.id,
                   row.pid);
      ProcessId old{static_cast<pid_t>(row.pid), row.pid_start_ticks};
      int pidfd = LocalLauncher::PidfdOpen(old.pid);
      launcher_->SignalGroup(old, SIGKILL);
      // Wait (bounded) until it is gone, so the new copy never overlaps the old one.
      if (pidfd >= 0) {
        pollfd p{pidfd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) {
          spdlog::error("agent {}: pid {} did not die within 5s of SIGKILL", row.id, row.pid);
        }
        close(pidfd);
      }
    }
    agents_[r.id] = std::move(r);
  }
  // The config's always-on agents, plus every agent that was running.
  for (const AgentConfig& ac : config_->config().agents) {
    auto it = agents_.find(ac.id);
    if (it == agents_.end()) {
      Record r;
      r.id = ac.id;
      r.role = ac.role;
      r.created = loop_->clock()->Now();
      r.want_running = true;
      agents_[ac.id] = std::move(r);
    } else {
      it->second.want_running = true;
    }
  }
  for (auto& [id, r] : agents_) {
    if (!r.want_running) {
      if (r.state != v1::AGENT_STATE_FAILED) r.state = v1::AGENT_STATE_STOPPED;
    } else {
      // Until StartWanted() runs: starting, so nothing takes it for gone meanwhile.
      r.state = v1::AGENT_STATE_STARTING;
    }
  }
  return absl::OkStatus();
}

void Supervisor::StartWanted() {
  for (auto& [id, r] : agents_) {
    if (!r.want_running || r.proc.pid > 0) continue;
    if (absl::Status s = Spawn(r); !s.ok()) spdlog::error("agent {}: {}", id, s.message());
  }
}

std::string Supervisor::NewId(const std::string& role) const {
  for (int n = 1;; ++n) {
    std::string id = absl::StrCat(role, "-", n);
    if (agents_.count(id) == 0) return id;
  }
}

absl::Status Supervisor::CheckInstanceLimit(const std::string& role,
                                            const std::string& except_id) const {
  auto role_it = config_->config().roles.find(role);
  if (role_it == config_->config().roles.end()) return absl::OkStatus();
  std::vector<std::string> live;
  for (const auto& [id, r] : agents_) {
    if (r.role == role && id != except_id && r.want_running) live.push_back(id);
  }
  if (static_cast<int64_t>(live.size()) >= role_it->second.max_instances) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "role \"", role, "\" allows ", role_it->second.max_instances, " instance(s) (roles.", role,
        ".max_instances) and these run: ", absl::StrJoin(live, ", "),
        "; stop one or raise the limit"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Agent> Supervisor::Start(const v1::StartAgentRequest& req) {
  const Config& cfg = config_->config();
  std::string id = req.agent_id();
  std::string role = req.role();
  if (!id.empty() && !IsValidId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent id \"", id, "\" is not valid (letters, digits, '-' and '_', at most 63)"));
  }
  if (id == kDaemonLogId) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent id \"", id, "\" is reserved: `agentctl logs ", id, "` reads the daemon's own log"));
  }
  auto existing = agents_.find(id);
  if (existing != agents_.end()) {
    Record& r = existing->second;
    if (!role.empty() && role != r.role) {
      return absl::AlreadyExistsError(
          absl::StrCat("agent \"", id, "\" exists with role \"", r.role, "\", not \"", role, "\""));
    }
    if (r.want_running) {
      return absl::AlreadyExistsError(absl::StrCat("agent \"", id, "\" is already ",
                                                   StateName(r.state), " (agentctl restart ", id,
                                                   " restarts it)"));
    }
    role = r.role;
  }
  if (role.empty()) return absl::InvalidArgumentError("a role is needed to start an agent");
  if (cfg.roles.count(role) == 0) {
    std::vector<std::string> roles;
    for (const auto& [name, rc] : cfg.roles) roles.push_back(name);
    return absl::NotFoundError(absl::StrCat(
        "no role named \"", role, "\" (configured roles: ", absl::StrJoin(roles, ", "), ")"));
  }
  if (id.empty()) id = NewId(role);
  if (absl::Status s = CheckInstanceLimit(role, id); !s.ok()) return s;
  Record& r = agents_[id];
  if (r.id.empty()) {
    r.id = id;
    r.role = role;
    r.created = loop_->clock()->Now();
  }
  r.want_running = true;
  r.consecutive_failures = 0;
  r.recent_exits.clear();
  if (absl::Status s = Spawn(r); !s.ok()) return s;
  return ToProto(r);
}

absl::Status Supervisor::Spawn(Record& r) {
  LogScope log_scope(r.id);
  const Config& cfg = config_->config();
  auto role_it = cfg.roles.find(r.role);
  if (role_it == cfg.roles.end()) {
    SetState(r, v1::AGENT_STATE_FAILED,
             absl::StrCat("role \"", r.role, "\" is no longer in the configuration"),
             "agent.failed");
    return absl::FailedPreconditionError(r.detail);
  }
  const RoleConfig& role = role_it->second;
  LaunchSpec spec;
  if (!role.command.empty()) {
    spec.argv = role.command;
  } else {
    spec.argv = {options_.agent_binary, "--role", r.role, "--id", r.id};
  }
  for (char** e = environ; *e != nullptr; ++e) {
    if (InheritedVariable(*e)) spec.env.push_back(*e);
  }
  absl::StatusOr<std::string> session_dir = SessionDir(r.id);
  if (!session_dir.ok()) {
    r.want_running = false;
    SetState(r, v1::AGENT_STATE_FAILED, std::string(session_dir.status().message()),
             "agent.failed");
    return session_dir.status();
  }
  // Isolation (supervision.isolation): auto uses it where the daemon's trial found that it
  // works, required refuses to start an agent without it, off never uses it.
  const std::string& isolation = cfg.supervision.isolation;
  if (isolation != "off") {
    if (options_.isolation_problem.empty()) {
      // agentd-agent is written to be PID 1 of its namespace; a `command` may not be, and
      // runs under the launcher's init.
      spec.isolation = IsolationFor(r.id, /*under_init=*/!role.command.empty());
      // Not agentd's working directory, which may lie in a directory it hides.
      spec.cwd = *session_dir;
    } else if (isolation == "required") {
      r.want_running = false;
      SetState(r, v1::AGENT_STATE_FAILED,
               absl::StrCat("supervision.isolation is required, and agent isolation does not "
                            "work here: ",
                            options_.isolation_problem),
               "agent.failed");
      return absl::FailedPreconditionError(r.detail);
    }
  }
  spec.env.push_back(absl::StrCat("AGENTD_SOCKET=", options_.socket_path));
  spec.env.push_back(absl::StrCat("AGENTD_AGENT_ID=", r.id));
  spec.env.push_back(absl::StrCat("AGENTD_ROLE=", r.role));
  spec.env.push_back(absl::StrCat("AGENTD_SESSION_DIR=", *session_dir));
  spec.env.push_back(absl::StrCat("AGENTD_TEMPLATES=", options_.templates_dir));
  // The provider key of the role's model, read here from the daemon's environment
  // (api_key_env names the daemon's variable), goes to the agent on a descriptor of its
  // own, "NAME=key\n": never into its environment, which /proc/<pid>/environ shows to
  // every process of the uid and every program the agent starts inherits.
  std::string keys;
  if (auto m = cfg.models.find(role.model); m != cfg.models.end()) {
    if (auto p = cfg.providers.find(m->second.provider); p != cfg.providers.end()) {
      const std::string& key_env = p->second.api_key_env;
      if (const char* key = key_env.empty() ? nullptr : std::getenv(key_env.c_str())) {
        keys = absl::StrCat(key_env, "=", key, "\n");
      }
    }
  }
  // The secrets of the MCP servers the role grants (their env and headers name agentd's
  // variables), on the same descriptor.
  std::set<std::string> passed;  // names already on the descriptor
  if (!keys.empty()) passed.insert(keys.substr(0, keys.find('=')));
  for (const std::string& server : GrantedMcpServers(role)) {
    auto m = cfg.mcp_servers.find(server);
    if (m == cfg.mcp_servers.end()) continue;
    for (const auto* names : {&m->second.env, &m->second.headers}) {
      for (const auto& [unused, var] : *names) {
        const char* value = std::getenv(var.c_str());
        // A value with a line break would end its line early: such a secret is not passed.
        if (value == nullptr || std::strchr(value, '\n') != nullptr) continue;
        if (passed.insert(var).second) absl::StrAppend(&keys, var, "=", value, "\n");
      }
    }
  }
  LimitsConfig limits = cfg.supervision.limits.OverriddenBy(role.limits);
  if (!sandbox_tried_.empty() && role.command.empty() &&
      spec.isolation.enabled == sandbox_tried_isolated_ && !limits.nproc && !limits.memory) {
    spec.env.push_back(absl::StrCat("AGENTD_SANDBOX_TRIED=", sandbox_tried_));
  }
  for (const std::string& kv : role.env) {
    // agentd's word alone: a role cannot claim the trial for limits it does not cover.
    if (!absl::StartsWith(kv, "AGENTD_SANDBOX_TRIED=")) spec.env.push_back(kv);
  }
  auto limit = [&spec](int resource, const auto& v) {
    if (v) spec.rlimits.push_back({resource, static_cast<uint64_t>(*v), static_cast<uint64_t>(*v)});
  };
  if (limits.nofile) {
    limit(RLIMIT_NOFILE, limits.nofile);
  } else if (options_.agent_nofile.rlim_cur != 0) {
    // agentd raised its own soft limit for its many pipes; agents get the one it was given.
    spec.rlimits.push_back(
        {RLIMIT_NOFILE, options_.agent_nofile.rlim_cur, options_.agent_nofile.rlim_max});
  }
  limit(RLIMIT_NPROC, limits.nproc);
  limit(RLIMIT_AS, limits.memory);
  limit(RLIMIT_CORE, limits.core);
  limit(RLIMIT_FSIZE, limits.file_size);
  if (limits.cpu) limit(RLIMIT_CPU, std::optional<int64_t>(absl::ToInt64Seconds(*limits.cpu)));
  absl::StatusOr<OutputPipes> pipes = logs_->Capture(r.id);
  if (!pipes.ok()) {
    r.want_running = false;
    SetState(r, v1::AGENT_STATE_FAILED, std::string(pipes.status().message()), "agent.failed");
    return pipes.status();
  }
  r.log_seq_at_start = logs_->LastSeq(r.id);
  spec.stdout_fd = pipes->out();
  spec.stderr_fd = pipes->err();

  if (!r.token.empty()) by_token_.erase(r.token);
  r.last_heartbeat = LastHeartbeat(r);  // the board forgets a lease's renewals with it
  r.token.clear();
  r.lease_id.clear();
  PublishLease(r);
  r.registered.reset();  // the new process says what it takes when it registers
  // Every agent gets a token of its own on fd 3, to present on AgentHost calls;
  // agentd-agent must register with it, a `command` agent may.
  r.registers = role.registers.value_or(role.command.empty());
  r.token = NewToken();
  spec.inherited_secrets = {r.token, keys};
  spec.env.push_back("AGENTD_TOKEN_FD=3");
  spec.env.push_back("AGENTD_KEYS_FD=4");
  spec.cgroup = r.id;
  // Written before the process can write anything: every run's output follows its own
  // "launching" note (agentctl logs --previous cuts runs there).
  logs_->AppendSystem(r.id, "launching");
  absl::StatusOr<ProcessId> proc = launcher_->Start(spec);
  if (!proc.ok()) {
    // Not retried: a program that cannot be executed will not become executable by
    // waiting, and the reason is in the state.
    r.want_running = false;
    SetState(r, v1::AGENT_STATE_FAILED, std::string(proc.status().message()), "agent.failed");
    return proc.status();
  }
  r.proc = *proc;
  r.start_time = loop_->clock()->Now();
  by_pid_[proc->pid] = r.id;
  by_token_[r.token] = r.id;
  if (r.registers) {
    // It must register within one lease, or it is treated as unresponsive.
    ArmLease(r, r.start_time + cfg.supervision.heartbeat_ttl);
    SetState(r, v1::AGENT_STATE_STARTING, "waiting for the agent to register", "agent.started");
  } else {
    SetState(r, v1::AGENT_STATE_RUNNING, "", "agent.started");
  }
  spdlog::info("agent {} ({}) started, pid {}", r.id, r.role, proc->pid);
  return absl::OkStatus();
}

LaunchSpec::Isolation Supervisor::IsolationFor(const std::string& id, bool under_init) const {
  return IsolationOf(options_, absl::StrCat(options_.state_dir, "/sessions/", id), under_init);
}

LaunchSpec::Isolation Supervisor::IsolationOf(const Options& options,
                                              const std::string& session_dir, bool under_init) {
  LaunchSpec::Isolation iso;
  iso.enabled = true;
  // Every agent gets a PID namespace and a /proc of its own. With the machine's PIDs an
  // agent could signal every process of agentd's uid, agentd and the other agents
  // included (kill(2) checks the uid alone, whatever the user namespace), and read every
  // process's command line.
  iso.own_pids = true;
  if (under_init) iso.init = options.init_binary;
  iso.hide = {RealPathOr(options.state_dir), RealPathOr(DirName(options.admin_socket_path))};
  // Nothing of the state directory but the agent's own session: goals' workspaces live
  // beside it (workspaces_dir), where agents see them as they see a person's folders —
  // shown again should it lie in the socket's directory (the launcher binds only what a
  // hidden directory covers).
  if (!session_dir.empty()) iso.expose.push_back(RealPathOr(session_dir));
  if (!options.workspaces_dir.empty()) iso.expose.push_back(RealPathOr(options.workspaces_dir));
  // Read-only: an agent connects to the endpoint but must not replace it with a socket of
  // its own, to which other agents would present their tokens.
  iso.expose_read_only = {RealPathOr(DirName(options.socket_path))};
  for (const std::string& f : options.secret_files) {
    struct stat st;
    if (!f.empty() && stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      iso.mask.push_back(RealPathOr(f));
    }
  }
  return iso;
}

absl::StatusOr<std::string> Supervisor::SessionDir(const std::string& id) const {
  std::string sessions = absl::StrCat(options_.state_dir, "/sessions");
  std::string dir = absl::StrCat(sessions, "/", id);
  if (absl::Status s = MakeDirs(dir, 0700); !s.ok()) return s;
  // Before the per-agent directories, a session was STATE/sessions/ID.db (+ -wal, -shm).
  for (const char* suffix : {".db", ".db-wal", ".db-shm"}) {
    std::string old_path = absl::StrCat(sessions, "/", id, suffix);
    std::string new_path = absl::StrCat(dir, "/", id, suffix);
    if (access(old_path.c_str(), F_OK) == 0 && access(new_path.c_str(), F_OK) != 0 &&
        rename(old_path.c_str(), new_path.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("cannot move the session ", old_path, " to ", dir,
                                              ": ", std::strerror(errno)));
    }
  }
  return dir;
}

void Supervisor::SetState(Record& r, v1::AgentState state, std::string detail, const char* event) {
  LogScope log_scope(r.id);
  r.state = state;
  r.detail = std::move(detail);
  PublishLease(r);
  AgentRow row;
  row.id = r.id;
  row.role = r.role;
  row.want_running = r.want_running;
  row.state = StateName(state);
  row.state_detail = r.detail;
  bool live = state == v1::AGENT_STATE_RUNNING || state == v1::AGENT_STATE_STARTING ||
              state == v1::AGENT_STATE_STOPPING || state == v1::AGENT_STATE_IDLE ||
              state == v1::AGENT_STATE_BUSY || state == v1::AGENT_STATE_UNRESPONSIVE;
  row.pid = live ? r.proc.pid : 0;
  row.pid_start_ticks = live ? r.proc.start_ticks : 0;
  row.start_time_us = live ? absl::ToUnixMicros(r.start_time) : 0;
  row.restarts = r.restarts;
  if (r.last_exit) {
    row.has_last_exit = true;
    row.last_exit_code = r.last_exit->exit_code;
    row.last_exit_signal = r.last_exit->signal;
    row.last_exit_time_us = absl::ToUnixMicros(r.last_exit->time);
    row.last_exit_reason = r.last_exit_reason;
  }
  row.created_time_us = absl::ToUnixMicros(r.created);
  nlohmann::json payload = {
      {"state", row.state}, {"detail", r.detail}, {"pid", row.pid}, {"restarts", r.restarts}};
  if (auto s = store_->SaveAgent(row, loop_->clock()->Now(), event, DumpJson(payload),
                                 ToProto(r).SerializeAsString());
      !s.ok()) {
    spdlog::error("agent {}: recording state {}: {}", r.id, row.state, s.status().message());
  }
  if (observer_) observer_(r.id, state);
  logs_->AppendSystem(
      r.id, absl::StrCat(row.state, row.pid > 0 ? absl::StrCat(" (pid ", row.pid, ")") : "",
                         r.detail.empty() ? "" : ": ", r.detail));
}

void Supervisor::OnExit(ProcessId proc, ExitStatus st) {
  auto pid_it = by_pid_.find(proc.pid);
  if (pid_it == by_pid_.end()) return;
  std::string id = pid_it->second;
  by_pid_.erase(pid_it);
  auto it = agents_.find(id);
  if (it == agents_.end() || it->second.proc.pid != proc.pid) return;
  Record& r = it->second;
  if (r.lease_timer != 0) loop_->Cancel(r.lease_timer);
  r.lease_timer = 0;
  if (!r.token.empty()) by_token_.erase(r.token);
  r.last_heartbeat = LastHeartbeat(r);  // the board forgets a lease's renewals with it
  r.token.clear();
  r.lease_id.clear();
  PublishLease(r);
  // What the leader left behind in its group (and cgroup) was killed by the launcher.
  r.last_exit = st;
  r.last_exit_reason = st.ToString();
  // Its last words reach the log before its exit is reported.
  logs_->Drain(r.id);
  r.last_log_lines = logs_->LastLines(r.id, kLastLogLines, r.log_seq_at_start);
  spdlog::info("agent {} (pid {}) {}", r.id, proc.pid, st.ToString());
  if (r.state == v1::AGENT_STATE_STOPPING) {
    FinishStop(r);
    return;
  }
  HandleUnexpectedExit(r, st);
}

void Supervisor::HandleUnexpectedExit(Record& r, const ExitStatus& st) {
  LogScope log_scope(r.id);
  const SupervisionConfig& sup = config_->config().supervision;
  absl::Time now = loop_->clock()->Now();
  for (int64_t code : sup.no_restart_exit_codes) {
    if (st.signal == 0 && st.exit_code == code) {
      r.want_running = false;
      SetState(r, v1::AGENT_STATE_STOPPED,
               absl::StrCat("exited with code ", code,
                            ", listed in supervision.no_restart_exit_codes: not restarted"),
               "agent.stopped");
      return;
    }
  }
  bool restart = sup.restart == "always" || (sup.restart == "on-failure" && st.failed());
  if (!restart) {
    r.want_running = false;
    SetState(r, st.failed() ? v1::AGENT_STATE_FAILED : v1::AGENT_STATE_STOPPED,
             absl::StrCat(st.ToString(), "; supervision.restart is ", sup.restart),
             st.failed() ? "agent.failed" : "agent.stopped");
    return;
  }
  r.recent_exits.push_back(now);
  while (!r.recent_exits.empty() && r.recent_exits.front() < now - sup.crash_loop_window) {
    r.recent_exits.pop_front();
  }
  if (static_cast<int64_t>(r.recent_exits.size()) > sup.crash_loop_max) {
    r.want_running = false;
    SetState(r, v1::AGENT_STATE_FAILED,
             absl::StrCat("crash loop: ", r.recent_exits.size(), " exits within ",
                          agentd::FormatDuration(sup.crash_loop_window),
                          " (supervision.crash_loop allows ", sup.crash_loop_max, "); last: ",
                          st.ToString(), ". agentctl start ", r.id, " starts it again"),
             "agent.failed");
    return;
  }
  if (sup.global_breaker_max > 0 && st.failed()) {
    global_failures_.push_back(now);
    while (!global_failures_.empty() &&
           global_failures_.front() < now - sup.global_breaker_window) {
      global_failures_.pop_front();
    }
    if (static_cast<int64_t>(global_failures_.size()) > sup.global_breaker_max &&
        now >= breaker_open_until_) {
      breaker_open_until_ = now + sup.global_breaker_cooldown;
      spdlog::error(
          "global breaker open: {} agent failures within {} (supervision.global_breaker allows "
          "{}); automatic restarts held for {}",
          global_failures_.size(), agentd::FormatDuration(sup.global_breaker_window),
          sup.global_breaker_max, agentd::FormatDuration(sup.global_breaker_cooldown));
    }
  }
  if (now - r.start_time >= sup.reset_after) r.consecutive_failures = 0;
  ++r.consecutive_failures;
  double factor = std::ldexp(1.0, std::min(r.consecutive_failures - 1, 30));
  absl::Duration delay = std::min(sup.restart_sec * factor, sup.restart_max_sec);
  // ±10% jitter, so agents that failed together do not restart in lockstep.
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  delay = delay * jitter(rng_);
  r.next_restart = now + delay;
  SetState(r, v1::AGENT_STATE_BACKOFF,
           absl::StrCat(st.ToString(), "; restarting in ", agentd::FormatDuration(delay)),
           "agent.backoff");
  ScheduleRestart(r, r.next_restart);
}

void Supervisor::ScheduleRestart(Record& r, absl::Time when) {
  LogScope log_scope(r.id);
  std::string id = r.id;
  r.restart_timer = loop_->RunAt(when, [this, id] {
    auto it = agents_.find(id);
    if (it == agents_.end() || it->second.state != v1::AGENT_STATE_BACKOFF) return;
    Record& rec = it->second;
    rec.restart_timer = 0;
    absl::Time now = loop_->clock()->Now();
    if (now < breaker_open_until_) {
      rec.next_restart = breaker_open_until_;
      SetState(rec, v1::AGENT_STATE_BACKOFF,
               absl::StrCat("held by the global breaker (too many agent failures at once, "
                            "supervision.global_breaker); restarts resume in ",
                            agentd::FormatDuration(breaker_open_until_ - now),
                            ", or now with agentctl restart ", rec.id),
               "agent.held");
      ScheduleRestart(rec, breaker_open_until_);
      return;
    }
    if (breaker_open_until_ != absl::InfinitePast()) {
      spdlog::info("global breaker closed: automatic restarts resume");
      breaker_open_until_ = absl::InfinitePast();
      global_failures_.clear();
    }
    ++rec.restarts;
    ++total_restarts_;
    if (metrics_ != nullptr) metrics_->restarts->Add({rec.role});
    (void)Spawn(rec);
  });
}

void Supervisor::Terminate(Record& r, absl::Duration timeout) {
  LogScope log_scope(r.id);
  if (r.proc.pid <= 0) {  // nothing runs (never started): stopped at once
    FinishStop(r);
    return;
  }
  SetState(r, v1::AGENT_STATE_STOPPING, "", "agent.stopping");
  launcher_->SignalGroup(r.proc, SIGTERM);
  std::string id = r.id;
  ProcessId proc = r.proc;
  r.kill_timer = loop_->RunAfter(timeout, [this, id, proc, timeout] {
    auto it = agents_.find(id);
    if (it == agents_.end() || it->second.proc.pid != proc.pid ||
        it->second.state != v1::AGENT_STATE_STOPPING) {
      return;
    }
    it->second.kill_timer = 0;
    spdlog::warn("agent {} (pid {}) still running {} after SIGTERM: SIGKILL to its group", id,
                 proc.pid, agentd::FormatDuration(timeout));
    launcher_->SignalGroup(proc, SIGKILL);
  });
}

void Supervisor::FinishStop(Record& r) {
  LogScope log_scope(r.id);
  if (r.kill_timer != 0) loop_->Cancel(r.kill_timer);
  r.kill_timer = 0;
  if (r.restart_after_stop) {
    r.restart_after_stop = false;
    r.want_running = true;
    ++r.restarts;
    ++total_restarts_;
    (void)Spawn(r);
  } else {
    SetState(r, v1::AGENT_STATE_STOPPED, absl::StrCat("stopped; ", r.last_exit_reason),
             "agent.stopped");
  }
  std::vector<AgentCallback> waiters = std::move(r.waiters);
  r.waiters.clear();
  // One snapshot for all: a waiter may change the record (StopAll's) or, later on the
  // loop, remove it (Delete's).
  const v1::Agent stopped = ToProto(r);
  for (auto& w : waiters) std::move(w)(stopped);
}

Supervisor::Record* Supervisor::Lookup(const std::string& id, AgentCallback& done) {
  auto it = agents_.find(id);
  if (it != agents_.end()) return &it->second;
  std::move(done)(NoSuchAgent(id));
  return nullptr;
}

absl::Duration Supervisor::StopTimeout(absl::Duration requested) const {
  return requested > absl::ZeroDuration() ? requested : config_->config().supervision.stop_timeout;
}

void Supervisor::Stop(const std::string& id, absl::Duration timeout, bool wait,
                      AgentCallback done) {
  LogScope log_scope(id);
  Record* found = Lookup(id, done);
  if (found == nullptr) return;
  Record& r = *found;
  timeout = StopTimeout(timeout);
  bool was_wanted = r.want_running;
  r.want_running = false;
  r.restart_after_stop = false;
  switch (r.state) {
    case v1::AGENT_STATE_BACKOFF:
      loop_->Cancel(r.restart_timer);
      r.restart_timer = 0;
      SetState(r, v1::AGENT_STATE_STOPPED, "stopped during backoff", "agent.stopped");
      std::move(done)(ToProto(r));
      return;
    case v1::AGENT_STATE_STOPPED:
    case v1::AGENT_STATE_FAILED:
      if (was_wanted) SetState(r, r.state, r.detail, "agent.stopped");  // records the wish
      std::move(done)(ToProto(r));
      return;
    case v1::AGENT_STATE_STOPPING:
      break;
    case v1::AGENT_STATE_STARTING:
      if (r.proc.pid <= 0) {  // wanted at recovery, not started yet: nothing runs
        SetState(r, v1::AGENT_STATE_STOPPED, "stopped before it started", "agent.stopped");
        std::move(done)(ToProto(r));
        return;
      }
      Terminate(r, timeout);
      break;
    default:
      Terminate(r, timeout);
  }
  if (wait && r.state == v1::AGENT_STATE_STOPPING) {
    r.waiters.push_back(std::move(done));
  } else {
    std::move(done)(ToProto(r));
  }
}

void Supervisor::Delete(const std::string& id, bool force, AgentCallback done) {
  LogScope log_scope(id);
  Record* found = Lookup(id, done);
  if (found == nullptr) return;
  for (const AgentConfig& ac : config_->config().agents) {
    if (ac.id == id) {
      return std::move(done)(absl::FailedPreconditionError(absl::StrCat(
          "agent \"", id,
          "\" is listed in the configuration's agents: (remove it there and run agentctl "
          "config reload, then delete it)")));
    }
  }
  bool stopped = found->state == v1::AGENT_STATE_STOPPED || found->state == v1::AGENT_STATE_FAILED;
  if (!stopped && !force) {
    return std::move(done)(absl::FailedPreconditionError(
        absl::StrCat("agent \"", id, "\" is ", StateName(found->state),
                     "; stop it first (agentctl stop ", id, "), or delete it with --force")));
  }
  auto remove = [this, id](absl::StatusOr<v1::Agent> agent) -> absl::StatusOr<v1::Agent> {
    if (!agent.ok()) return agent;
    auto it = agents_.find(id);
    if (it == agents_.end()) return NoSuchAgent(id);
    if (it->second.state != v1::AGENT_STATE_STOPPED && it->second.state != v1::AGENT_STATE_FAILED) {
      // Started again while it stopped (a person, or the scheduler): it stays.
      return absl::FailedPreconditionError(
          absl::StrCat("agent \"", id, "\" was started again while it stopped; not deleted"));
    }
    nlohmann::json payload = {{"role", it->second.role}};
    absl::StatusOr<int64_t> seq = store_->DeleteAgent(id, loop_->clock()->Now(), DumpJson(payload),
                                                      agent->SerializeAsString());
    if (!seq.ok()) return seq.status();
    by_token_.erase(it->second.token);
    leases_.Remove(id);
    agents_.erase(it);
    // Its files go too: a new agent given the same id (the scheduler picks the lowest
    // free one) must not resume a stranger's sessions or show its log as its own.
    logs_->Remove(id);
    std::error_code ec;
    std::filesystem::remove_all(absl::StrCat(options_.state_dir, "/sessions/", id), ec);
    if (ec) spdlog::warn("agent {}: removing its sessions: {}", id, ec.message());
    return agent;
  };
  if (stopped) return std::move(done)(remove(ToProto(*found)));
  // The record goes on the loop's next turn, not inside the stop's callback: whoever
  // finished the stop may still hold it (other waiters, the exit handler).
  Stop(id, absl::ZeroDuration(), /*wait=*/true,
       [this, remove, done = std::move(done)](absl::StatusOr<v1::Agent> agent) mutable {
         loop_->Post([remove, done = std::move(done), agent = std::move(agent)]() mutable {
           std::move(done)(remove(std::move(agent)));
         });
       });
}

void Supervisor::Restart(const std::string& id, absl::Duration timeout, AgentCallback done) {
  LogScope log_scope(id);
  Record* found = Lookup(id, done);
  if (found == nullptr) return;
  Record& r = *found;
  timeout = StopTimeout(timeout);
  if (r.state == v1::AGENT_STATE_STARTING && r.proc.pid <= 0) {
    // Wanted at recovery and about to start (StartWanted): that start is the restart.
    std::move(done)(ToProto(r));
    return;
  }
  switch (r.state) {
    case v1::AGENT_STATE_STOPPED:
    case v1::AGENT_STATE_FAILED:
    case v1::AGENT_STATE_BACKOFF: {
      if (r.restart_timer != 0) loop_->Cancel(r.restart_timer);
      r.restart_timer = 0;
      if (absl::Status s = CheckInstanceLimit(r.role, r.id); !s.ok()) {
        std::move(done)(s);
        return;
      }
      r.want_running = true;
      r.consecutive_failures = 0;
      r.recent_exits.clear();
      ++r.restarts;
      ++total_restarts_;
      if (absl::Status s = Spawn(r); !s.ok()) {
        std::move(done)(s);
        return;
      }
      std::move(done)(ToProto(r));
      return;
    }
    case v1::AGENT_STATE_STOPPING:
      break;
    default:
      Terminate(r, timeout);
  }
  r.restart_after_stop = true;
  r.waiters.push_back(std::move(done));
}

void Supervisor::StopAll(absl::Time deadline, absl::AnyInvocable<void() &&> done) {
  auto remaining = std::make_shared<int>(0);
  auto finish = std::make_shared<absl::AnyInvocable<void() &&>>(std::move(done));
  for (auto& [id, r] : agents_) {
    if (r.restart_timer != 0) {
      loop_->Cancel(r.restart_timer);
      r.restart_timer = 0;
      SetState(r, v1::AGENT_STATE_STOPPED, "daemon shutting down", "agent.stopped");
      continue;
    }
    if (r.state == v1::AGENT_STATE_STOPPED || r.state == v1::AGENT_STATE_FAILED) continue;
    if (r.state == v1::AGENT_STATE_STARTING && r.proc.pid <= 0) {
      // Wanted but never started (agentd stops before StartWanted): nothing to stop.
      SetState(r, v1::AGENT_STATE_STOPPED, "daemon shutting down", "agent.stopped");
      r.want_running = true;
      continue;
    }
    ++*remaining;
    // want_running stays as it was: the next start of the daemon starts it again.
    bool keep = r.want_running;
    r.restart_after_stop = false;
    if (r.state != v1::AGENT_STATE_STOPPING) {
      Terminate(r, std::max(absl::ZeroDuration(), deadline - loop_->clock()->Now()));
    }
    r.waiters.push_back([this, id = id, keep, remaining, finish](absl::StatusOr<v1::Agent>) {
      if (keep) {
        auto it = agents_.find(id);
        if (it != agents_.end()) {
          it->second.want_running = true;
          SetState(it->second, it->second.state, "stopped with the daemon", "agent.stopped");
        }
      }
      if (--*remaining == 0 && *finish) std::move (*finish)();
    });
  }
  if (*remaining == 0) {
    std::move (*finish)();
    *finish = nullptr;
  }
}

absl::StatusOr<v1::Agent> Supervisor::Get(const std::string& id) const {
  auto it = agents_.find(id);
  if (it == agents_.end()) {
    return NoSuchAgent(id);
  }
  return ToProto(it->second);
}

std::vector<v1::Agent> Supervisor::List(const std::string& role,
                                        const std::vector<v1::AgentState>& states) const {
  std::vector<v1::Agent> out;
  for (const auto& [id, r] : agents_) {
    if (!role.empty() && r.role != role) continue;
    if (!states.empty() && std::find(states.begin(), states.end(), r.state) == states.end()) {
      continue;
    }
    out.push_back(ToProto(r));
  }
  return out;
}

std::map<v1::AgentState, int64_t> Supervisor::CountByState() const {
  std::map<v1::AgentState, int64_t> out;
  for (const auto& [id, r] : agents_) ++out[r.state];
  return out;
}

Supervisor::SandboxCensus Supervisor::CountBySandbox() const {
  SandboxCensus c;
  const std::string& policy = config_->config().policy.shell_sandbox;
  std::map<std::string, std::vector<std::string>> by_reason;
  for (const auto& [id, r] : agents_) {
    if (r.lease_id.empty()) continue;  // not registered (or no longer)
    if (policy == "off") {
      ++c.by_mode["off"];
    } else if (r.sandbox_problem.empty()) {
      ++c.by_mode["bwrap"];
    } else {
      ++c.by_mode[policy == "required" ? "refused" : "unconfined"];
      by_reason[r.sandbox_problem].push_back(id);
    }
  }
  for (const auto& [why, ids] : by_reason) {
    c.problems.push_back(absl::StrCat(absl::StrJoin(ids, ", "), ": ", why));
  }
  return c;
}

v1::Agent Supervisor::ToProto(const Record& r) const {
  v1::Agent a;
  a.set_id(r.id);
  a.set_role(r.role);
  a.set_state(r.state);
  a.set_state_detail(r.detail);
  a.set_restarts(static_cast<int32_t>(r.restarts));
  absl::Time now = loop_->clock()->Now();
  bool live = r.state != v1::AGENT_STATE_STOPPED && r.state != v1::AGENT_STATE_FAILED &&
              r.state != v1::AGENT_STATE_BACKOFF;
  if (live && r.proc.pid > 0) {
    a.set_pid(r.proc.pid);
    SetTime(r.start_time, a.mutable_start_time());
    SetDuration(now - r.start_time, a.mutable_uptime());
  }
  if (r.state == v1::AGENT_STATE_BACKOFF) SetTime(r.next_restart, a.mutable_next_restart_time());
  if (absl::Time last = LastHeartbeat(r); live && last != absl::InfinitePast()) {
    SetDuration(now - last, a.mutable_heartbeat_age());
    a.set_progress(r.progress);
    a.set_runtime_version(r.runtime_version);
  }
  if (r.last_exit) {
    v1::AgentExit* e = a.mutable_last_exit();
    if (r.last_exit->signal != 0) {
      e->set_signal(r.last_exit->signal);
    } else {
      e->set_exit_code(r.last_exit->exit_code);
    }
    SetTime(r.last_exit->time, e->mutable_time());
    e->set_reason(r.last_exit_reason);
    for (const std::string& line : r.last_log_lines) e->add_last_log_lines(ValidUtf8(line));
  }
  const Config& cfg = config_->config();
  if (auto role = cfg.roles.find(r.role); role != cfg.roles.end()) a.set_model(role->second.model);
  return a;
}

void Supervisor::ArmLease(Record& r, absl::Time expiry) {
  r.lease_expiry = expiry;
  // A renewal leaves a pending timer alone: when it fires it sees the later expiry and
  // re-arms (one timer per ttl, not one cancel and insert per heartbeat).
  if (r.lease_timer != 0 && r.lease_timer_at <= expiry) return;
  if (r.lease_timer != 0) loop_->Cancel(r.lease_timer);
  std::string id = r.id;
  r.lease_timer_at = expiry;
  r.lease_timer = loop_->RunAt(expiry, [this, id, expiry] { LeaseExpired(id, expiry); });
}

void Supervisor::LeaseExpired(const std::string& id, absl::Time timer_at) {
  LogScope log_scope(id);
  auto it = agents_.find(id);
  if (it == agents_.end() || it->second.lease_timer == 0 || it->second.lease_timer_at != timer_at) {
    return;
  }
  Record& r = it->second;
  r.lease_timer = 0;
  // Heartbeats taken off the loop since (LeaseBoard) renewed it as HeartbeatOf would have.
  // Held while this is decided: one the board took after this look would count for nothing
  // (the agent killed all the same); held, it comes to the loop after this, as it did
  // before the board.
  if (absl::Time renewed = leases_.Hold(r.id, r.lease_id); renewed > r.last_heartbeat) {
    r.last_heartbeat = renewed;
    r.lease_expiry =
        std::max(r.lease_expiry, renewed + config_->config().supervision.heartbeat_ttl);
  }
  if (loop_->clock()->Now() < r.lease_expiry) {
    PublishLease(r);              // taken off the loop again
    ArmLease(r, r.lease_expiry);  // renewed since the timer was set
    return;
  }
  if (r.state == v1::AGENT_STATE_STOPPING || r.proc.pid == 0) {
    PublishLease(r);
    return;
  }
  absl::Duration ttl = config_->config().supervision.heartbeat_ttl;
  std::string why = r.state == v1::AGENT_STATE_STARTING
                        ? absl::StrCat("did not register within ", agentd::FormatDuration(ttl))
                        : absl::StrCat("no heartbeat for ", agentd::FormatDuration(ttl),
                                       " (supervision.heartbeat.ttl)");
  spdlog::warn("agent {} (pid {}) is unresponsive: {}; killing it", r.id, r.proc.pid, why);
  SetState(r, v1::AGENT_STATE_UNRESPONSIVE, why, "agent.unresponsive");
  // Its exit then goes through the restart policy like any other failure.
  launcher_->SignalGroup(r.proc, SIGKILL);
}

absl::StatusOr<std::string> Supervisor::AgentForToken(const std::string& token) const {
  auto it = token.empty() ? by_token_.end() : by_token_.find(token);
  if (it == by_token_.end()) {
    return absl::UnauthenticatedError(
        "AgentHost calls need the agent's own token (authorization: Bearer <token>), which "
        "agentd hands to the agent process it starts; this one is missing or not current");
  }
  return it->second;
}

absl::StatusOr<v1::RegisterResponse> Supervisor::Register(const std::string& token,
                                                          const v1::RegisterRequest& req) {
  absl::StatusOr<std::string> id = AgentForToken(token);
  if (!id.ok()) return id.status();
  if (req.agent_id() != *id) {
    return absl::PermissionDeniedError(
        absl::StrCat("this token belongs to agent \"", *id, "\", not to \"", req.agent_id(), "\""));
  }
  Record& r = agents_.at(*id);
  const Config& cfg = config_->config();
  r.lease_id = NewToken().substr(7, 16);
  r.runtime_version = req.runtime_version();
  r.sandbox_problem = Utf8Prefix(req.sandbox_problem(), 1000, "...");
  if (!r.sandbox_problem.empty() && cfg.policy.shell_sandbox != "off") {
    spdlog::warn(
        "agent {}: the tool sandbox does not work on its host ({}); policy.shell.sandbox "
        "is {}: {}",
        r.id, r.sandbox_problem, cfg.policy.shell_sandbox,
        cfg.policy.shell_sandbox == "required" ? "its tasks that run programs will fail"
                                               : "its programs run UNCONFINED");
  }
  absl::Time now = loop_->clock()->Now();
  r.last_heartbeat = now;
  if (metrics_ != nullptr) metrics_->heartbeats->Add({r.role});
  ArmLease(r, now + cfg.supervision.heartbeat_ttl);
  SetState(r, v1::AGENT_STATE_IDLE, "", "agent.registered");
  // (The pid it reports is the one it sees: 1 when it is isolated in a PID namespace.)
  spdlog::info("agent {} registered (pid {}, runtime {})", r.id, r.proc.pid, req.runtime_version());

  v1::RegisterResponse resp;
  resp.set_lease_id(r.lease_id);
  resp.add_features(kFeatureTaskEventBatch);
  resp.add_features(kFeatureCallSummary);
  SetDuration(cfg.supervision.heartbeat_ttl, resp.mutable_lease_ttl());
  SetDuration(cfg.supervision.heartbeat_interval, resp.mutable_heartbeat_interval());
  v1::AgentDefinition* def = resp.mutable_definition();
  def->set_id(r.id);
  def->set_role(r.role);
  if (auto role = cfg.roles.find(r.role); role != cfg.roles.end()) {
    AddRoleFiles(role->second, def);
    for (const std::string& t : role->second.tools) def->add_allowed_tools(t);
    for (const std::string& a : cfg.policy.shell_allow) def->add_shell_allow(a);
    def->set_shell_sandbox(cfg.policy.shell_sandbox);
    def->set_ends_on_text(role->second.ends_on_text);
    if (options_.telemetry.has_value()) *def->mutable_telemetry() = *options_.telemetry;
    for (const std::string& server : GrantedMcpServers(role->second)) {
      auto m = cfg.mcp_servers.find(server);
      if (m == cfg.mcp_servers.end()) continue;
      const McpServerConfig& mc = m->second;
      v1::McpServerDefinition* d = def->add_mcp_servers();
      d->set_name(server);
      d->set_command(mc.command);
      for (const std::string& arg : mc.args) d->add_args(arg);
      d->set_url(mc.url);
      d->mutable_env()->insert(mc.env.begin(), mc.env.end());
      d->mutable_headers()->insert(mc.headers.begin(), mc.headers.end());
      for (const std::string& p : mc.read_only_paths) d->add_read_only_paths(p);
      d->set_network(mc.network);
      SetDuration(mc.timeout, d->mutable_call_timeout());
    }
    def->mutable_limits()->set_max_nudges(static_cast<int32_t>(role->second.max_nudges));
    if (auto m = cfg.models.find(role->second.model); m != cfg.models.end()) {
      v1::ModelRef* mr = def->mutable_model();
      mr->set_name(role->second.model);
      mr->set_provider(m->second.provider);
      mr->set_model(m->second.model);
      if (m->second.temperature) mr->set_temperature(*m->second.temperature);
      if (m->second.max_tokens) mr->set_max_tokens(static_cast<int32_t>(*m->second.max_tokens));
      mr->set_input_per_mtok_usd(m->second.price.input_per_mtok);
      mr->set_output_per_mtok_usd(m->second.price.output_per_mtok);
      if (auto p = cfg.providers.find(m->second.provider); p != cfg.providers.end()) {
        mr->set_provider_kind(p->second.kind);
        mr->set_base_url(p->second.base_url);
        mr->set_api_key_env(p->second.api_key_env);
        mr->set_cassette(ResolvePath(p->second.cassette));
        const ProviderConfig::Timeouts& t = p->second.timeouts;
        SetDuration(t.connect, mr->mutable_connect_timeout());
        SetDuration(t.first_byte, mr->mutable_first_byte_timeout());
        SetDuration(t.idle, mr->mutable_idle_timeout());
        SetDuration(t.total, mr->mutable_total_timeout());
      }
    }
  }
  Registered& given = r.registered.emplace();
  given.definition_bytes = def->ByteSizeLong();
  given.model = def->model();
  given.takes_reservations =
      std::find(req.capabilities().begin(), req.capabilities().end(),
                kCapabilityAssignmentReservations) != req.capabilities().end();
  return resp;
}

const Supervisor::Registered* Supervisor::RegisteredAs(const std::string& id) const {
  auto it = agents_.find(id);
  if (it == agents_.end() || !it->second.registered.has_value()) return nullptr;
  return &*it->second.registered;
}

absl::StatusOr<v1::HeartbeatResponse> Supervisor::Heartbeat(const std::string& token,
                                                            const v1::HeartbeatRequest& req) {
  absl::StatusOr<std::string> id = AgentForToken(token);
  if (!id.ok()) return id.status();
  return HeartbeatOf(*id, req);
}

absl::StatusOr<v1::HeartbeatResponse> Supervisor::HeartbeatOf(const std::string& id,
                                                              const v1::HeartbeatRequest& req) {
  auto it = agents_.find(id);
  if (it == agents_.end()) return absl::NotFoundError(absl::StrCat("no agent \"", id, "\""));
  Record& r = it->second;
  if (r.lease_id.empty() || req.lease_id() != r.lease_id) {
    return absl::FailedPreconditionError(absl::StrCat("lease \"", req.lease_id(),
                                                      "\" is not agent \"", r.id,
                                                      "\"'s current lease; register again"));
  }
  absl::Time now = loop_->clock()->Now();
  r.last_heartbeat = now;
  ArmLease(r, now + config_->config().supervision.heartbeat_ttl);
  SetActivity(r.id, req.activity(), req.progress());
  v1::HeartbeatResponse resp;
  SetTime(r.lease_expiry, resp.mutable_lease_expire_time());
  return resp;
}

std::string Supervisor::ResolvePath(const std::string& path) const {
  if (path.empty() || path[0] == '/') return path;
  if (!options_.config_dir.empty()) {
    std::string beside = absl::StrCat(options_.config_dir, "/", path);
    if (access(beside.c_str(), F_OK) == 0) return beside;
  }
  return absl::StrCat(options_.templates_dir, "/", path);
}

void Supervisor::AddRoleFiles(const RoleConfig& role, v1::AgentDefinition* def) const {
  // Bounds on what travels in a Register answer: prompts are small; knowledge beyond
  // the bound is offered by name and uri only.
  constexpr size_t kMaxPrompt = 256 << 10, kMaxKnowledgeEach = 64 << 10,
                   kMaxKnowledgeTotal = 256 << 10;
  if (!role.prompt.empty()) {
    std::string path = ResolvePath(role.prompt);
    absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxPrompt);
    if (text.ok()) {
      def->set_system_prompt_template(*std::move(text));
    } else {
      spdlog::warn("role prompt {}: {}; the agent gets a generic prompt", path,
                   text.status().message());
    }
  }
  size_t total = 0;
  for (const std::string& k : role.knowledge) {
    std::string path = ResolvePath(k);
    std::vector<std::string> files;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
           !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back(it->path().string());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(path);
    }
    for (const std::string& f : files) {
      v1::KnowledgeRef* ref = def->add_knowledge();
      ref->set_name(f.size() > path.size() && f.compare(0, path.size(), path) == 0
                        ? absl::StrCat(k, f.substr(path.size()))
                        : k);
      ref->set_uri(f);
      if (total >= kMaxKnowledgeTotal) continue;
      absl::StatusOr<std::string> text =
          ReadSmallFile(f, std::min(kMaxKnowledgeEach, kMaxKnowledgeTotal - total));
      // Binary files are offered by name only; text goes as UTF-8 (a proto string).
      if (text.ok() && text->find('\0') == std::string::npos) {
        total += text->size();
        ref->set_content(ValidUtf8(*text));
      }
    }
  }
}

void Supervisor::SetActivity(const std::string& id, v1::AgentActivity activity,
                             const std::string& progress) {
  auto it = agents_.find(id);
  if (it == agents_.end()) return;
  Record& r = it->second;
  // Only a registered, live agent's activity means anything (not one being stopped).
  if (r.state != v1::AGENT_STATE_IDLE && r.state != v1::AGENT_STATE_BUSY &&
      r.state != v1::AGENT_STATE_UNRESPONSIVE) {
    return;
  }
  r.progress = progress;
  v1::AgentState next =
      activity == v1::AGENT_ACTIVITY_BUSY ? v1::AGENT_STATE_BUSY : v1::AGENT_STATE_IDLE;
  if (next != r.state) {
    SetState(r, next, "", "agent.activity");
  } else {
    PublishLease(r);  // the progress
  }
}

void Supervisor::PublishLease(const Record& r) {
  LeaseBoard::Lease l;
  l.token = r.token;
  l.lease_id = r.lease_id;
  // What SetActivity would leave as it is: the activity and progress of an idle or busy
  // agent. In any other state a heartbeat means more (an unresponsive agent's comes
  // back) or nothing, and goes to the loop.
  l.renewable = !r.token.empty() && !r.lease_id.empty() &&
                (r.state == v1::AGENT_STATE_IDLE || r.state == v1::AGENT_STATE_BUSY);
  l.busy = r.state == v1::AGENT_STATE_BUSY;
  l.progress = r.progress;
  l.ttl = config_->config().supervision.heartbeat_ttl;
  leases_.Set(r.id, std::move(l));
}

absl::Time Supervisor::LastHeartbeat(const Record& r) const {
  return std::max(r.last_heartbeat, leases_.RenewedAt(r.id, r.lease_id));
}

}  // namespace agentd
