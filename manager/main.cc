// agentd: the agentd daemon. See README.md and `agentd --help`.
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/hardening.h"
#include "common/lock_checks.h"
#include "common/logging.h"
#include "common/malloc_tuning.h"
#include "common/version.h"
#include "manager/core/notifier.h"
#include "manager/daemon.h"
#include "spdlog/spdlog.h"

namespace {

constexpr char kUsage[] = R"(usage: agentd [flags]

agentd orchestrates teams of LLM agents: it serves the agentd.v1 gRPC API on a unix
socket, supervises one process per agent, and keeps all state in SQLite.

Flags (they win over the configuration file):
  --config FILE          configuration file (default: the embedded defaults;
                         `agentctl config validate FILE` checks one)
  --state-dir DIR        where agentd.db, the admin token, sessions and logs live
  --socket PATH          unix socket for the gRPC API
  --http ADDR|""         HTTP listener for the web UI, gRPC-web, /metrics ("" = off)
  --grpc-tcp ADDR|""     token-checked TCP gRPC listener ("" = off)
  --log-format text|json
  --log-level trace|debug|info|warn|error|critical|off
  --print-paths          print the socket, state dir and listeners this configuration
                         resolves to, and exit
  --version              print the version and exit
  --help                 print this help and exit

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the configuration.
)";

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "agentd: %s\n(agentd --help lists the flags)\n", msg.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  agentd::TuneMalloc();  // before any thread starts
  agentd::ConfigureLockChecks();
  // First: agentd will hold the admin token and provider keys; no core file or other
  // process of its uid may read its memory (common/hardening.h).
  if (absl::Status s = agentd::ForbidCoreDumps(); !s.ok()) {
    std::fprintf(stderr, "agentd: %s\n", std::string(s.message()).c_str());
  }
  agentd::DaemonOptions options;
  agentd::ConfigOverrides& o = options.overrides;
  bool print_paths = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "--version") {
      std::printf("agentd %s (%s, %s)\n", agentd::kVersion, agentd::kGitRevision,
                  agentd::kBuildType);
      return 0;
    }
    if (arg == "--print-paths") {
      print_paths = true;
      continue;
    }
    std::string name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    std::optional<std::string>* target = nullptr;
    std::optional<std::string> config;
    if (name == "--config")
      target = &config;
    else if (name == "--state-dir")
      target = &o.state_dir;
    else if (name == "--socket")
      target = &o.socket;
    else if (name == "--http")
      target = &o.http;
    else if (name == "--grpc-tcp")
      target = &o.grpc_tcp;
    else if (name == "--log-format")
      target = &o.log_format;
    else if (name == "--log-level")
      target = &o.log_level;
    else
      return UsageError(absl::StrCat("unknown flag \"", arg, "\""));
    if (!has_value) {
      if (i + 1 >= argc) return UsageError(absl::StrCat(name, " needs a value"));
      value = argv[++i];
    }
    if (target == &config) {
      if (value.empty()) return UsageError("--config needs a file name");
      options.config_file = value;
    } else {
      *target = value;
    }
  }

  if (print_paths) {
    absl::StatusOr<agentd::ConfigState> cfg =
        agentd::ConfigState::Load(options.config_file, options.overrides);
    if (!cfg.ok()) {
      std::fprintf(stderr, "agentd: %s\n", std::string(cfg.status().message()).c_str());
      return 1;
    }
    const agentd::Config& c = cfg->config();
    std::printf(
        "config     %s\nsocket     %s\nstate_dir  %s\nworkspaces %s\ngrpc_tcp   %s\nhttp       "
        "%s\n",
        options.config_file.empty() ? "<embedded default>" : options.config_file.c_str(),
        c.server.socket.c_str(), c.state_dir.c_str(), c.workspaces_dir.c_str(),
        c.server.grpc_tcp.empty() ? "off" : c.server.grpc_tcp.c_str(),
        c.server.http.empty() ? "off" : c.server.http.c_str());
    return 0;
  }

  // Signals are taken synchronously by this thread; every thread started after this
  // inherits the mask, so none of them is interrupted by them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // Everything agentd creates (database, logs, sessions, tokens) is private to its user.
  umask(077);

  // Until the configured logger is set up, errors go to stderr as plain text.
  agentd::SetJournalSend(agentd::Notifier::JournalSender());
  (void)agentd::SetupLogging("text", "info");
  absl::StatusOr<std::unique_ptr<agentd::Daemon>> daemon =
      agentd::Daemon::Start(std::move(options));
  if (!daemon.ok()) {
    std::fprintf(stderr, "agentd: %s\n", std::string(daemon.status().message()).c_str());
    return 1;
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&sigs, &sig) != 0) continue;
    if (sig == SIGHUP) {
      spdlog::info("SIGHUP: reloading the configuration");
      (*daemon)->Reload();
      continue;
    }
    spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  (*daemon)->Shutdown();
  daemon->reset();
  return 0;
}
