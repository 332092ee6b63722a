#include "manager/daemon.h"

#include "agents/tools/shell.h"

#include <grp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/notification.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/paths.h"
#include "common/token.h"
#include "common/version.h"
#include "manager/core/private_dir.h"
#include "manager/core/workspace_policy.h"
#include "manager/core/workspaces.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {

namespace {

// A2A's options: the team's roles, as configured at start, are the Agent Card's skills.
web::A2aOptions A2aOptionsOf(const Config& c) {
  web::A2aOptions a2a;
  a2a.version = kVersion;
  auto roles = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  for (const auto& [name, role] : c.roles) {
    roles->emplace_back(name, absl::StrCat("agentd's ", name,
                                           " role; its tools: ", absl::StrJoin(role.tools, ", ")));
  }
  a2a.roles = [roles] { return *roles; };
  return a2a;
}

// The gid of group `name` (server.socket_group), or a FAILED_PRECONDITION saying so.
absl::StatusOr<gid_t> GroupNamed(const std::string& name) {
  struct group gr;
  struct group* found = nullptr;
  std::vector<char> buf(16384);
  int err;
  // A group with many members (LDAP) needs a bigger buffer: ERANGE says so.
  while ((err = getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (size_t{16} << 20)) {
    buf.resize(buf.size() * 4);
  }
  if (err != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("server.socket_group: looking up group \"", name, "\": ", std::strerror(err)));
  }
  if (found == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "server.socket_group: there is no group named \"", name, "\" (create it, e.g. `groupadd ",
        name, "`, and add agentd's user and the operators)"));
  }
  return gr.gr_gid;
}

// The directory of the running agentd binary.
std::string ExeDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? DirName(std::string(buf, static_cast<size_t>(n))) : ".";
}

// agentd-agent sits beside agentd when installed, and in agents/ of the build tree.
std::string AgentBinary() {
  std::string beside = ExeDir() + "/agentd-agent";
  if (access(beside.c_str(), X_OK) == 0) return beside;
  return ExeDir() + "/../agents/agentd-agent";
}

// PID 1 for isolated `command` agents: beside agentd, installed or built.
std::string InitBinary() { return ExeDir() + "/agentd-init"; }

// Role prompts and project templates: $AGENTD_TEMPLATES, else the installed share folder
// beside the binary, else the source tree this binary was built from.
std::string TemplatesDir() {
  if (const char* env = std::getenv("AGENTD_TEMPLATES"); env != nullptr && *env != 0) return env;
  std::string installed = ExeDir() + "/../share/agentd/templates";
  if (access(installed.c_str(), F_OK) == 0) return installed;
  return AGENTD_SOURCE_TEMPLATES;
}

// The built web UI: ui.dir from the config, else the installed share folder beside the
// binary, else the source tree's ui/dist (where the build puts it).
std::string UiDir(const std::string& configured) {
  if (!configured.empty()) return configured;
  std::string installed = ExeDir() + "/../share/agentd/ui";
  if (access((installed + "/index.html").c_str(), F_OK) == 0) return installed;
  return AGENTD_SOURCE_UI;
}
}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonOptions options) {
  std::unique_ptr<Daemon> d(new Daemon);
  d->start_time_ = absl::Now();
  absl::StatusOr<ConfigState> cfg =
      ConfigState::Load(options.config_file, std::move(options.overrides));
  if (!cfg.ok()) return cfg.status();
  d->config_ = std::make_unique<ConfigState>(*std::move(cfg));
  const Config& c = d->config_->config();
  if (absl::Status s = SetupLogging(c.logging.format, c.logging.level); !s.ok()) return s;
  for (const auto& [name, p] : c.providers) {
    if (p.api_key_env.empty()) continue;
    if (const char* key = std::getenv(p.api_key_env.c_str())) AddLogSecret(key);
  }

  // Locks first: a second agentd must fail before it touches anything of the first's.
  // Both directories must be agentd's alone (private_dir.h), checked before anything is
  // created in them: the lock files are the first.
  std::optional<gid_t> socket_group;
  if (!c.server.socket_group.empty()) {
    absl::StatusOr<gid_t> g = GroupNamed(c.server.socket_group);
    if (!g.ok()) return g.status();
    socket_group = *g;
  }
  if (absl::Status s = EnsurePrivateDir(DirName(c.server.socket), "socket directory", socket_group,
                                        /*take_back=*/true);
      !s.ok()) {
    return s;
  }
  auto socket_lock =
      InstanceLock::Acquire(c.server.socket + ".lock", absl::StrCat("socket ", c.server.socket));
  if (!socket_lock.ok()) return socket_lock.status();
  d->socket_lock_ = *std::move(socket_lock);
  if (absl::Status s = EnsurePrivateDir(c.state_dir, "state directory"); !s.ok()) return s;
  auto state_lock = InstanceLock::Acquire(c.state_dir + "/agentd.lock",
                                          absl::StrCat("state directory ", c.state_dir));
  if (!state_lock.ok()) return state_lock.status();
  d->state_lock_ = *std::move(state_lock);

  std::string token_file = c.state_dir + "/admin.token";
  absl::StatusOr<std::string> token = LoadOrCreateTokenFile(token_file);
  if (!token.ok()) return token.status();
  AddLogSecret(*token);
  // A read-only token for scrapers: /metrics accepts it, every other call refuses it, so
  // Prometheus need not hold full control of agentd.
  std::string metrics_token_file = c.state_dir + "/metrics.token";
  absl::StatusOr<std::string> metrics_token = LoadOrCreateTokenFile(metrics_token_file);
  if (!metrics_token.ok()) return metrics_token.status();
  AddLogSecret(*metrics_token);
  // A token for other agent systems (A2A): /a2a accepts it — submit goals, follow them,
  // answer what they ask, cancel them — and every other call refuses it.
  absl::StatusOr<std::string> a2a_token = LoadOrCreateTokenFile(c.state_dir + "/a2a.token");
  if (!a2a_token.ok()) return a2a_token.status();
  AddLogSecret(*a2a_token);

  std::string db_path = c.state_dir + "/agentd.db";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(db_path);
  if (!store.ok()) return store.status();
  d->store_ = *std::move(store);
  nlohmann::json started = {{"version", kVersion}, {"pid", getpid()}};
  if (auto seq = d->store_->AppendEvent(d->start_time_, "daemon.started", DumpJson(started));
      !seq.ok()) {
    return seq.status();
  }

  // Goals' workspaces live outside the state directory, which agents cannot see.
  if (absl::Status s = CheckWorkspacesDir(c.workspaces_dir, c.state_dir, c.server.socket);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = MakeDirs(c.workspaces_dir, 0700); !s.ok()) return s;
  if (absl::Status s = MoveLegacyWorkspaces(d->store_.get(), c.state_dir + "/workspaces",
                                            c.workspaces_dir, d->start_time_);
      !s.ok()) {
    return s;
  }

  LogStoreOptions log_options;
  log_options.dir = c.state_dir + "/logs";
  log_options.segment_bytes = c.logs.segment_bytes;
  log_options.keep_segments = c.logs.keep_segments;
  log_options.ring_bytes = c.logs.ring_bytes;
  absl::StatusOr<std::unique_ptr<LogStore>> logs = LogStore::Open(std::move(log_options));
  if (!logs.ok()) return logs.status();
  d->logs_ = *std::move(logs);
  // From here on agentd's own records are also kept as the log of kDaemonLogId, read with
  // `agentctl logs agentd` like an agent's (the journal or stderr still get them too).
  // Each run starts with the note an agent's does, so `--previous` finds the last run.
  d->logs_->AppendSystem(kDaemonLogId, "launching");
  SetLogTap([logs = d->logs_.get()](absl::string_view line) {
    logs->Append(kDaemonLogId, v1::LOG_STREAM_STDERR, line);
  });

  d->system_ =
      std::make_unique<SystemCore>(&d->loop_, d->store_.get(), d->config_.get(), d->start_time_);
  Daemon* self = d.get();
  std::string no_cgroups;
  d->cgroups_ = AgentCgroups::Detect(&no_cgroups, c.state_dir);
  if (d->cgroups_) {
    spdlog::info("each agent runs in a cgroup of its own under {}", d->cgroups_->base());
  } else {
    spdlog::info("agents run without cgroups ({}); process groups hold them together", no_cgroups);
  }
  d->launcher_ = std::make_unique<LocalLauncher>(
      [self](ProcessId proc, ExitStatus st) {
        self->loop_.Post([self, proc, st] { self->supervisor_->OnExit(proc, st); });
      },
      d->cgroups_.get());
  // The agent endpoint (AgentHost only, agent tokens only) and agent isolation: both must
  // be in place before the first agent starts.
  std::string agent_socket = AgentEndpointPath(c.server.socket);
  if (absl::Status s = EnsurePrivateDir(DirName(agent_socket), "agent endpoint directory");
      !s.ok()) {
    return s;
  }
  // OpenTelemetry: on when an endpoint is configured (here or in OTEL_EXPORTER_OTLP_*).
  absl::StatusOr<otel::ExporterOptions> otlp = otel::ExporterOptionsFrom(
      c.telemetry.otlp_endpoint, "agentd",
      [](const char* name) { return static_cast<const char*>(std::getenv(name)); });
  if (!otlp.ok())
    return absl::InvalidArgumentError(absl::StrCat("telemetry: ", otlp.status().message()));
  const otel::Conventions conventions = otel::ConventionsFromEnv();
  if (!otlp->endpoint.empty()) {
    otlp->schema_url = conventions.schema_url();
    otlp->scope_version = kVersion;
    d->exporter_ = std::make_unique<otel::SpanExporter>(*otlp);
    spdlog::info("tracing: spans go to {} (GenAI conventions {})", otlp->endpoint,
                 conventions.latest ? "latest experimental" : "v1.36");
  }

  Supervisor::Options sup;
  sup.socket_path = agent_socket;
  sup.admin_socket_path = c.server.socket;
  sup.secret_files = {c.server.tls_key_file};
  sup.agent_binary = AgentBinary();
  sup.init_binary = InitBinary();
  sup.state_dir = c.state_dir;
  sup.workspaces_dir = c.workspaces_dir;
  if (d->exporter_ != nullptr) {
    v1::AgentTelemetry t;
    t.set_gen_ai_latest_conventions(conventions.latest);
    t.set_traceparent_to_providers(c.telemetry.traceparent_to_providers);
    sup.telemetry = t;
  }
  if (c.supervision.isolation != "off") {
    // What every agent gets, less a session of its own.
    if (absl::Status s = LocalLauncher::ProbeIsolation(Supervisor::IsolationOf(sup, "", false));
        !s.ok()) {
      d->isolation_problem_ = std::string(s.message());
    }
  }
  if (c.supervision.isolation == "off") {
    spdlog::info("agents run without isolation (supervision.isolation: off)");
  } else if (d->isolation_problem_.empty()) {
    spdlog::info("agents run isolated: user, mount and PID namespaces of their own");
  } else if (c.supervision.isolation == "required") {
    spdlog::error(
        "agent isolation does not work here ({}), and supervision.isolation is "
        "required: agents will not start",
        d->isolation_problem_);
  } else {
    spdlog::warn(
        "agent isolation does not work here ({}): agents run without it, as the same "
        "user as agentd (supervision.isolation: required refuses this)",
        d->isolation_problem_);
  }
  sup.isolation_problem = d->isolation_problem_;
  // Namespaces map agentd's uid 1:1 to the file system, so a root agentd's agents own what
  // root owns. Mapping them to another uid would leave them unable to write the people's
  // workspaces they work in; the packaged service runs agentd as a user of its own.
  if (geteuid() == 0) {
    d->isolation_caveat_ =
        "agentd runs as root: agents and their tools have no capabilities but are still uid 0 "
        "to file permissions (they can read what only root may read); run agentd as a user of "
        "its own, as the packaged service does (User=agentd)";
    spdlog::warn("{}", d->isolation_caveat_);
  }
  if (!d->config_->file().empty()) sup.config_dir = DirName(d->config_->file());
  sup.templates_dir = TemplatesDir();
  // Each agent costs agentd three descriptors (two pipes and a pidfd) and a connection:
  // the soft limit goes up to the hard one, as many daemons do; agents get the original.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    sup.agent_nofile = nofile;
    rlimit raised{nofile.rlim_max, nofile.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) sup.agent_nofile = {0, 0};
  }
  d->supervisor_ = std::make_unique<Supervisor>(&d->loop_, d->store_.get(), d->launcher_.get(),
                                                d->logs_.get(), d->config_.get(), sup);
  d->system_->SetCountersSource([self](v1::DaemonCounters* counters) {
    int64_t n = 0;
    for (const auto& [state, count] : self->supervisor_->CountByState()) {
      n += count;
      std::string name = absl::AsciiStrToLower(v1::AgentState_Name(state));
      (*counters->mutable_agents_by_state())[name.substr(name.rfind('_') + 1)] = count;
    }
    counters->set_agents(n);
    counters->set_agent_restarts(self->supervisor_->total_restarts());
    if (self->tasks_ != nullptr) {
      counters->set_tasks(static_cast<int64_t>(self->tasks_->task_count()));
      counters->set_active_goals(static_cast<int64_t>(self->tasks_->open_goals()));
      counters->set_tasks_in_memory(static_cast<int64_t>(self->tasks_->tasks_in_memory()));
    }
    if (self->plans_ != nullptr) {
      counters->set_plans_in_memory(static_cast<int64_t>(self->plans_->plans_in_memory()));
    }
    Supervisor::SandboxCensus sandbox = self->supervisor_->CountBySandbox();
    counters->set_sandbox_policy(self->config_->config().policy.shell_sandbox);
    counters->mutable_agents_by_sandbox()->insert(sandbox.by_mode.begin(), sandbox.by_mode.end());
    for (std::string& p : sandbox.problems) counters->add_sandbox_problems(std::move(p));
    const std::string& isolation = self->config_->config().supervision.isolation;
    counters->set_isolation_policy(isolation);
    counters->set_agent_isolation(self->IsolationMode());
    counters->set_isolation_problem(self->isolation_problem_);
    counters->set_isolation_caveat(self->isolation_caveat_);
  });
  d->system_->SetLiveCountersSource([self](v1::DaemonCounters* counters) {
    counters->set_log_bytes(self->logs_->bytes_written());
    counters->set_log_dropped_bytes(self->logs_->dropped_bytes());
  });
  d->transcripts_ = std::make_unique<Transcripts>(&d->loop_, d->store_.get(), d->config_.get());
  d->consents_ = std::make_unique<ConsentBook>(&d->loop_, d->store_.get(), c.policy.consent_timeout,
                                               d->transcripts_.get());
  d->events_ = std::make_unique<EventFeed>(d->store_.get());
  if (d->exporter_ != nullptr) {
    absl::StatusOr<std::unique_ptr<Tracing>> tracing =
        Tracing::Start(d->store_.get(), d->events_.get(), d->exporter_.get(), conventions);
    if (!tracing.ok()) return tracing.status();
    d->tracing_ = *std::move(tracing);
    SetLogTraceIds([salt = d->tracing_->salt()](const LogScope::Fields& f, std::string* trace,
                                                std::string* span) {
      otel::TraceContext context = Tracing::Derive(salt, f.goal_id, f.task_id);
      *trace = otel::Hex(context.trace_id);
      *span = otel::Hex(context.span_id);
      return true;
    });
  }
  d->audit_ =
      std::make_unique<AuditLog>(&d->loop_, d->store_.get(), AuditLog::FilesIn(c.state_dir));
  d->system_->SetAudit(d->audit_.get());
  d->consents_->SetAudit(d->audit_.get());
  d->ledger_ = std::make_unique<Ledger>(&d->loop_, d->store_.get(), d->config_.get());
  TaskBoard::Options task_options;
  task_options.workspaces_dir = c.workspaces_dir;
  task_options.templates_dir = sup.templates_dir;
  task_options.protected_dirs = ProtectedDirs(c.state_dir, c.server.socket, c.workspaces_dir);
  // Tests set it to 0 so that every finished task is read back from the store.
  if (const char* n = std::getenv("AGENTD_TEST_RESIDENT_FINISHED_TASKS"); n != nullptr) {
    size_t resident = 0;
    if (absl::SimpleAtoi(n, &resident)) task_options.resident_finished_tasks = resident;
  }
  // The checks and plan checkpoints agentd runs itself need the sandbox: tried once here,
  // as agents do at their start (bwrap's presence proves nothing).
  // Probed whatever the policy, so that a reload that turns the sandbox on knows too.
  std::string sandbox_broken;
  tools::SandboxProbe sandbox_probe = tools::ProbeSandbox();
  if (!sandbox_probe.works) {
    sandbox_broken = sandbox_probe.why;
    if (c.policy.shell_sandbox != "off") {
      spdlog::warn("sandbox: {}; goals' checks and plan checkpoints will not run",
                   sandbox_probe.why);
    }
  }
  // Agents run the tools' sandbox too, and used to try it each at its start. Where they
  // run as agentd does (no isolation), agentd's trial above is theirs; where they run
  // isolated, it is tried once more under their isolation, off the start path
  // (TrySandboxForAgents). Agents started before that ends try for themselves.
  bool agents_isolated = c.supervision.isolation != "off" && d->isolation_problem_.empty();
  if (sandbox_probe.works && !agents_isolated) {
    d->supervisor_->SetToolSandboxTried(sandbox_probe.bwrap, /*isolated=*/false);
  }
  CheckRunner::Options check_options;
  check_options.sandbox = c.policy.shell_sandbox;
  check_options.sandbox_broken = sandbox_broken;
  check_options.timeout = c.policy.check_timeout;
  d->checks_ = std::make_unique<CheckRunner>(&d->loop_, check_options);
  d->outbox_ = std::make_unique<Outbox>(d->store_.get());
  d->tasks_ = std::make_unique<TaskBoard>(
      &d->loop_, d->store_.get(), d->outbox_.get(), d->supervisor_.get(), d->ledger_.get(),
      d->config_.get(),
      TaskBoard::Services{d->audit_.get(), d->checks_.get(), d->metrics_.get(), d->tracing_.get(),
                          d->transcripts_.get()},
      task_options);
  d->ledger_->AddBudgetObserver([self] { self->tasks_->OnBudgetChanged(); });
  d->bus_ = std::make_unique<Bus>(&d->loop_, d->store_.get(), d->outbox_.get(),
                                  d->supervisor_.get(), d->tasks_.get(), d->config_.get());
  d->tasks_->SetStreamObservers(
      [self](const std::string& agent) { self->bus_->OnAttach(agent); },
      [self](const std::string& agent, int64_t seq) { self->bus_->OnAck(agent, seq); });
  d->ledger_->SetMetrics(d->metrics_.get());
  d->supervisor_->SetMetrics(d->metrics_.get());
  d->opener_ = std::make_unique<WorkspaceOpener>(d->consents_.get(), d->tasks_.get(),
                                                 d->config_.get(), d->audit_.get());
  d->consents_->AddDecisionObserver(
      [self](const v1::ConsentRequest& r) { self->opener_->OnDecided(r); });
  WorkspaceGit::Options git_options;
  git_options.sandbox = c.policy.shell_sandbox;
  git_options.sandbox_broken = sandbox_broken;
  d->workspace_git_ = std::make_unique<WorkspaceGit>(&d->loop_, git_options);
  PlanBook::Services plan_services;
  plan_services.audit = d->audit_.get();
  plan_services.git = d->workspace_git_.get();
  plan_services.tell = [self](const std::string& task_id, const std::string& text) {
    absl::StatusOr<v1::Task> t = self->tasks_->Get(task_id);
    if (!t.ok() || t->assignee().empty()) return;
    v1::Envelope m;
    m.set_to(t->assignee());
    m.set_task_id(task_id);
    m.set_body(text);
    absl::StatusOr<v1::Envelope> sent = self->bus_->Send(
        "agentd", m, absl::StrCat("tell:", task_id, ":", std::hash<std::string>()(text)));
    if (!sent.ok()) spdlog::warn("telling task {}: {}", task_id, sent.status().message());
  };
  d->plans_ =
      std::make_unique<PlanBook>(&d->loop_, d->store_.get(), d->outbox_.get(), d->tasks_.get(),
                                 d->ledger_.get(), d->config_.get(), std::move(plan_services));
  // What CheckRunner and WorkspaceGit copied at start follows a reload. (A goal's budget
  // is fixed when it is submitted, policy.budget's defaults included: a reload holds or
  // releases no task; `agentctl budget set` does.)
  d->system_->SetOnReloaded([self, sandbox_broken](const ReloadResult& r) {
    if (std::find(r.applied.begin(), r.applied.end(), "policy") == r.applied.end()) return;
    const Config& now = self->config_->config();
    CheckRunner::Options checks;
    checks.sandbox = now.policy.shell_sandbox;
    checks.sandbox_broken = sandbox_broken;
    checks.timeout = now.policy.check_timeout;
    self->checks_->SetOptions(checks);
    WorkspaceGit::Options git;
    git.sandbox = now.policy.shell_sandbox;
    git.sandbox_broken = sandbox_broken;
    self->workspace_git_->SetOptions(git);
  });
  d->tasks_->SetPlanPending(
      [self](const std::string& task) { return self->plans_->Pending(task); });
  d->tasks_->AddObserver([self](const v1::Task& t) { self->plans_->OnTask(t); });
  // A goal that ended calls no more: its budget and totals are read from the store.
  d->tasks_->AddObserver([self](const v1::Task& t) {
    if (t.parent_id().empty() &&
        (t.status() == v1::TASK_STATUS_COMPLETED || t.status() == v1::TASK_STATUS_FAILED ||
         t.status() == v1::TASK_STATUS_CANCELED)) {
      self->ledger_->ForgetGoal(t.id());
    }
  });
  // The loop thread is not running yet: Recover runs here, alone, as if on it.
  if (absl::Status s = d->audit_->Recover(); !s.ok()) return s;
  if (absl::Status s = d->consents_->Recover(); !s.ok()) return s;
  if (absl::Status s = d->ledger_->Recover(); !s.ok()) return s;
  if (absl::Status s = d->tasks_->Recover(); !s.ok()) return s;
  if (absl::Status s = d->bus_->Recover(); !s.ok()) return s;
  if (absl::Status s = d->plans_->Recover(); !s.ok()) return s;
  if (absl::Status s = d->supervisor_->Recover(
          [tasks = d->tasks_.get()](const std::string& id) { return tasks->HoldsWork(id); });
      !s.ok()) {
    return s;
  }
  // Followed only from here: the previous run's agents stopped by Recover keep their
  // tasks, to resume them once started again.
  d->supervisor_->SetStateObserver([self](const std::string& id, v1::AgentState state) {
    self->tasks_->OnAgentState(id, state);
  });
  d->tasks_->ReconcileAgents();
  d->loop_thread_ = std::thread([loop = &d->loop_] { loop->Run(); });
  if (sandbox_probe.works && agents_isolated && absl::StartsWith(sandbox_probe.bwrap, "/")) {
    d->sandbox_trial_ = std::thread(
        [self, bwrap = sandbox_probe.bwrap, isolation = Supervisor::IsolationOf(sup, "", false)] {
          self->TrySandboxForAgents(bwrap, isolation);
        });
  }

  ApiServerOptions api;
  api.socket_path = c.server.socket;
  api.grpc_tcp = c.server.grpc_tcp;
  api.tls_cert_file = c.server.tls_cert_file;
  api.tls_key_file = c.server.tls_key_file;
  api.admin_token = *token;
  api.a2a_token = *a2a_token;
  api.a2a = A2aOptionsOf(c);
  api.agent_socket_path = agent_socket;
  api.socket_group = socket_group;
  ApiCores cores;
  cores.system = d->system_.get();
  cores.tracing = d->tracing_.get();
  cores.loop = &d->loop_;
  cores.supervisor = d->supervisor_.get();
  cores.logs = d->logs_.get();
  cores.consents = d->consents_.get();
  cores.tasks = d->tasks_.get();
  cores.ledger = d->ledger_.get();
  cores.bus = d->bus_.get();
  cores.plans = d->plans_.get();
  cores.audit = d->audit_.get();
  cores.events = d->events_.get();
  cores.transcripts = d->transcripts_.get();
  cores.metrics = d->metrics_.get();
  cores.opener = d->opener_.get();
  // Login codes and web sessions: created before the API (SystemService hands out codes)
  // and used by the HTTP listener. Sessions (digests only) survive restarts in the state
  // dir, so an open UI tab carries on after one; revoking them ends them for good.
  WebSessions::Options session_options;
  session_options.session_ttl = c.server.http_session_ttl;
  session_options.file = c.state_dir + "/web_sessions";
  d->web_sessions_ = std::make_unique<WebSessions>(session_options);
  cores.web_sessions = d->web_sessions_.get();
  absl::StatusOr<std::unique_ptr<ApiServer>> server = ApiServer::Start(api, cores);
  if (!server.ok()) return server.status();
  d->api_ = *std::move(server);
  // A failed write leaves agentd FAILED (refusing every change, health NOT_SERVING) rather
  // than going on with memory the disk did not take. Set on the loop, the thread of every
  // write; a failure during recovery is caught by the check that follows.
  d->loop_.Post([self] {
    auto failed = [self](const absl::Status& s) {
      spdlog::critical(
          "agentd.db failed: {}; agentd refuses every change until it is "
          "restarted (health: NOT_SERVING)",
          s.message());
      self->system_->Fail(std::string(s.message()));
      self->api_->SetNotServing();
    };
    self->store_->SetFatalHook(failed);
    if (!self->store_->fatal().ok()) failed(self->store_->fatal());
  });

  v1::DaemonPaths paths;
  paths.set_config_file(d->config_->file());
  paths.set_state_dir(c.state_dir);
  paths.set_workspaces_dir(c.workspaces_dir);
  paths.set_database(db_path);
  paths.set_socket(c.server.socket);
  paths.set_grpc_tcp(d->api_->tcp_address());
  if (!c.server.http.empty()) {
    WebServerOptions web;
    web.address = c.server.http;
    web.ui_dir = UiDir(c.ui.dir);
    web.admin_token = *token;
    web.metrics_token = *metrics_token;
    web.a2a_token = *a2a_token;
    web.a2a = A2aOptionsOf(c);
    // Other systems may reach A2A's gRPC binding on the TCP listener too: the card says so.
    web.a2a->grpc_address = d->api_->tcp_address();
    web.cors_origins = c.server.cors_origins;
    web.hosts = c.server.http_hosts;
    web.sessions = d->web_sessions_.get();
    web.healthy = [system = d->system_.get()] {
      return system->state() == v1::DAEMON_STATE_SERVING;
    };
    web.refresh_metrics = [self](std::function<void()> done) {
      self->loop_.Post([self, done = std::move(done)] {
        self->RefreshMetrics();
        done();
      });
    };
    absl::StatusOr<std::unique_ptr<WebServer>> ws =
        WebServer::Start(std::move(web), d->api_->grpc_server(), d->metrics_.get());
    if (!ws.ok()) return ws.status();
    d->web_ = *std::move(ws);
    paths.set_http(d->web_->address());
  }
  paths.set_admin_token_file(token_file);
  if (d->cgroups_) paths.set_agent_cgroup(d->cgroups_->base());
  // Set on the loop, which reads it: the API already serves.
  d->loop_.Post([self, paths, no_cgroups, sandbox_broken] {
    self->system_->SetDoctorSource([self, paths, no_cgroups, sandbox_broken] {
      DoctorInputs in;
      in.sandbox_broken = sandbox_broken;
      in.isolation_problem = self->isolation_problem_;
      in.cgroup_base = paths.agent_cgroup();
      in.no_cgroups_reason = no_cgroups;
      in.listeners.emplace_back("socket", "unix:" + paths.socket());
      if (!paths.grpc_tcp().empty()) in.listeners.emplace_back("tcp", paths.grpc_tcp());
      if (!paths.http().empty()) in.listeners.emplace_back("http", "http://" + paths.http());
      return in;
    });
  });
  // Every listener is bound: now the agents start (a taken port has failed the start
  // above with none of them running).
  d->loop_.Post([self] { self->supervisor_->StartWanted(); });
  d->system_->Serve(std::move(paths));
  absl::Duration wd = Notifier::WatchdogInterval();
  if (wd > absl::ZeroDuration()) d->ScheduleWatchdog(wd);
  d->notifier_.Ready();
  spdlog::info(
      "agentd {} serving on unix:{}{}{} (state {}, pid {}, ready in {})", kVersion, c.server.socket,
      d->api_->tcp_address().empty() ? "" : absl::StrCat(" and tcp:", d->api_->tcp_address()),
      d->web_ ? absl::StrCat(" and http://", d->web_->address(), " (web UI: agentctl ui)") : "",
      c.state_dir, getpid(), absl::FormatDuration(absl::Now() - d->start_time_));
  return d;
}

// The ping is sent from the core loop, so a wedged loop stops it and systemd restarts
// agentd: the watchdog proves the daemon works, not merely that a timer thread lives.
void Daemon::ScheduleWatchdog(absl::Duration interval) {
  loop_.RunAfter(interval, [this, interval] {
    notifier_.Watchdog();
    ScheduleWatchdog(interval);
  });
  notifier_.Watchdog();
}

std::string Daemon::IsolationMode() const {
  const std::string& policy = config_->config().supervision.isolation;
  if (policy == "off") return "none";
  if (isolation_problem_.empty()) return "namespaces";
  return policy == "required" ? "refused" : "none";
}

void Daemon::RefreshMetrics() {
  // Every state is a series, 0 when no agent is in it, named as agentctl prints it.
  std::map<LabelValues, double> by_state;
  auto state_name = [](int s) {
    return absl::AsciiStrToLower(
        absl::StripPrefix(v1::AgentState_Name(static_cast<v1::AgentState>(s)), "AGENT_STATE_"));
  };
  for (int s = v1::AgentState_MIN + 1; s <= v1::AgentState_MAX; ++s) {
    if (v1::AgentState_IsValid(s)) by_state[{state_name(s)}] = 0;
  }
  for (const auto& [state, n] : supervisor_->CountByState()) {
    by_state[{state_name(state)}] = static_cast<double>(n);
  }
  metrics_->agents->Replace(std::move(by_state));
  metrics_->build_info->Set({kVersion, kGitRevision}, 1);
  RefreshProcessMetrics(metrics_.get());
  // Every mode is a series, 0 when no agent is in it: an alert on "unconfined" > 0 works.
  std::map<LabelValues, double> by_sandbox;
  const std::string& policy = config_->config().policy.shell_sandbox;
  for (const char* mode : {"bwrap", "unconfined", "refused", "off"}) by_sandbox[{mode, policy}] = 0;
  for (const auto& [mode, n] : supervisor_->CountBySandbox().by_mode) {
    by_sandbox[{mode, policy}] = static_cast<double>(n);
  }
  metrics_->agents_sandbox->Replace(std::move(by_sandbox));
  std::map<LabelValues, double> isolation;
  const std::string& isolation_policy = config_->config().supervision.isolation;
  for (const char* mode : {"namespaces", "none", "refused"}) {
    isolation[{mode, isolation_policy}] = mode == IsolationMode() ? 1 : 0;
  }
  metrics_->agent_isolation->Replace(std::move(isolation));
  // What is left of each open goal's budget (a finished goal's series goes).
  std::map<LabelValues, double> usd_left, tokens_left;
  for (const std::string& goal : tasks_->OpenGoals()) {
    absl::StatusOr<v1::Budget> b = ledger_->GetBudget(v1::BUDGET_SCOPE_GOAL, goal);
    if (!b.ok()) continue;
    if (b->max_cost_usd() > 0) {
      usd_left[{goal}] = std::max(0.0, b->max_cost_usd() - b->used_cost_usd());
    }
    if (b->max_tokens() > 0) {
      tokens_left[{goal}] =
          static_cast<double>(std::max<int64_t>(0, b->max_tokens() - b->used_tokens()));
    }
  }
  metrics_->goal_budget_remaining_usd->Replace(std::move(usd_left));
  metrics_->goal_budget_remaining_tokens->Replace(std::move(tokens_left));
  std::map<LabelValues, double> restarts;
  for (const v1::Agent& a : supervisor_->List("", {})) {
    restarts[{a.id(), a.role()}] = static_cast<double>(a.restarts());
  }
  metrics_->agent_restarts->ReplaceTotals(std::move(restarts));
  metrics_->log_bytes->SetTotal({}, static_cast<double>(logs_->bytes_written()));
  metrics_->log_dropped_bytes->SetTotal({}, static_cast<double>(logs_->dropped_bytes()));
  metrics_->trace_spans_exported->SetTotal(
      {}, exporter_ != nullptr ? static_cast<double>(exporter_->exported()) : 0);
  metrics_->trace_spans_dropped->SetTotal(
      {}, exporter_ != nullptr ? static_cast<double>(exporter_->dropped()) : 0);
}

void Daemon::Reload() {
  notifier_.Reloading();
  system_->ReloadConfig([this](absl::StatusOr<v1::ReloadConfigResponse>) {
    // The outcome is logged by SystemCore; systemd only needs to know we are done.
    notifier_.Ready();
  });
}

void Daemon::TrySandboxForAgents(const std::string& bwrap, const LaunchSpec::Isolation& isolation) {
  // An agent's own trial (tools::ProbeSandbox), its command run under the agents' isolation.
  tools::SandboxProbe probe =
      tools::ProbeSandbox(bwrap, [&isolation](const tools::SandboxedCommand& command) {
        return LocalLauncher::TryIsolated(isolation, command.argv, command.env);
      });
  if (!probe.works || probe.bwrap != bwrap) {
    spdlog::info("tool sandbox: agents will try it themselves ({} under their isolation: {})",
                 bwrap, probe.why);
    return;
  }
  loop_.Post([this, bwrap] { supervisor_->SetToolSandboxTried(bwrap, /*isolated=*/true); });
}

void Daemon::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // It posts to the loop: done before the loop stops.
  if (sandbox_trial_.joinable()) sandbox_trial_.join();
  if (tracing_ != nullptr) SetLogTraceIds(nullptr);  // its salt is this daemon's
  // Start() may have failed part-way: undo only what it did. The log tap goes before the
  // LogStore it writes to.
  if (api_ == nullptr && !loop_thread_.joinable()) {
    if (logs_ != nullptr) SetLogTap(nullptr);
    return;
  }
  notifier_.Stopping();
  absl::Duration drain = config_->config().server.shutdown_timeout;
  spdlog::info("shutting down: draining calls for up to {}", absl::FormatDuration(drain));
  system_->SetState(v1::DAEMON_STATE_DRAINING);
  // The web bridge's calls go through the API server's in-process channel: end them first.
  if (web_) web_->Shutdown();
  if (api_) api_->Shutdown(absl::Now() + drain);
  if (loop_thread_.joinable() && supervisor_) {
    // Agents get stop_timeout to exit after SIGTERM, then their groups are killed.
    absl::Duration stop = config_->config().supervision.stop_timeout;
    absl::Notification stopped;
    loop_.Post([this, stop, &stopped] {
      // Agents stopped by a daemon shutdown keep their tasks: they resume after the restart.
      supervisor_->SetStateObserver(nullptr);
      supervisor_->StopAll(absl::Now() + stop, [&stopped] { stopped.Notify(); });
    });
    if (!stopped.WaitForNotificationWithTimeout(stop + absl::Seconds(5))) {
      spdlog::error("agents did not all exit within {}", absl::FormatDuration(stop));
    }
  }
  if (loop_thread_.joinable()) {
    loop_.Post([this] {
      if (auto s = store_->AppendEvent(absl::Now(), "daemon.stopped", "{}"); !s.ok()) {
        spdlog::warn("recording daemon.stopped: {}", s.status().ToString());
      }
    });
    loop_.Stop();
    loop_thread_.join();
  }
  web_.reset();
  api_.reset();
  launcher_.reset();
  cgroups_.reset();
  SetLogTap(nullptr);  // waits for a record being appended to the daemon's own log
  logs_.reset();       // after the agents: their last output is written before it closes
  store_.reset();
  spdlog::info("agentd stopped");
}

Daemon::~Daemon() { Shutdown(); }

}  // namespace agentd
