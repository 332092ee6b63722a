// agentd-agent: one agent of agentd, started and supervised by it.
//
//   agentd-agent --role ROLE --id ID [--socket PATH] [--reconnect-grace 30s]
// ($AGENTD_ROLE, $AGENTD_AGENT_ID, $AGENTD_SOCKET and $AGENTD_RECONNECT_GRACE are read
// too; flags win.)
//
// The daemon passes the agent's token on file descriptor 3 (AGENTD_TOKEN_FD) and its
// provider's key on 4 (AGENTD_KEYS_FD, "NAME=key" lines, NAME the daemon's variable the
// key came from), never in argv or the environment. The agent is not dumpable and has
// RLIMIT_CORE 0 (common/hardening.h): neither the token nor the key reaches a core file
// or another process of the same uid. The agent registers, heartbeats and holds its Connect
// stream, and works the tasks delivered on it (task_runner.h); its session database is
// $AGENTD_SESSION_DIR/<id>.db (agentd sets it to STATE/sessions/<id>). $AGENTD_LLM_RECORD,
// when set, names a cassette every provider exchange is recorded to. SIGTERM ends it
// cleanly (exit 0). If agentd stays unreachable for longer than the reconnect grace it
// exits 75 (EX_TEMPFAIL).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agents/runtime/host_session.h"
#include "agents/runtime/task_runner.h"
#include "agents/tools/shell.h"
#include "common/hardening.h"
#include "common/lock_checks.h"
#include "common/logging.h"
#include "common/malloc_tuning.h"
#include "common/paths.h"
#include "common/values.h"
#include "common/version.h"
#include "spdlog/spdlog.h"

namespace {

int Usage(const std::string& msg) {
  std::fprintf(stderr,
               "agentd-agent: %s\nusage: agentd-agent --role ROLE --id ID [--socket PATH] "
               "[--reconnect-grace DURATION]\n(agentd starts agents itself: agentctl start ROLE)\n",
               msg.c_str());
  return 2;
}

// Reads everything from `fd` and closes it.
std::string ReadAll(int fd) {
  std::string token;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    token.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return token;
}

// The descriptor named by environment variable `name`, or -1.
int FdFromEnv(const char* name) {
  int fd = -1;
  const char* v = std::getenv(name);
  if (v == nullptr || !absl::SimpleAtoi(v, &fd) || fd < 0) return -1;
  return fd;
}

// "NAME=key" lines, as the supervisor writes them.
std::map<std::string, std::string> ParseKeys(const std::string& text) {
  std::map<std::string, std::string> keys;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    keys[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  }
  return keys;
}

#ifdef AGENTD_TEST_FAULTS
// Sanitizer builds only (AGENTD_TEST_FAULTS): the fault $AGENTD_AGENT_FAULT names, so that
// the test suite can show that a report from inside an agent fails the test that started
// it (tests/integration/sanitizer_test.cc). "heap-overflow" reads past a heap block
// (ASan aborts the agent); "leak" loses a block (LSan reports it at exit).
void InjectTestFault() {
  const char* fault = std::getenv("AGENTD_AGENT_FAULT");
  if (fault == nullptr) return;
  static char* volatile sink = nullptr;
  if (std::string(fault) == "heap-overflow") {
    sink = new char[16]();
    std::printf("%d\n", sink[16]);  // one past the end: in ASan's redzone
    delete[] sink;
  } else if (std::string(fault) == "leak") {
    sink = new char[64];
    sink = nullptr;
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  agentd::TuneMalloc();  // before any thread starts
  agentd::ConfigureLockChecks();
  // First: before the token and the key are read, nothing may dump them.
  if (absl::Status s = agentd::ForbidCoreDumps(); !s.ok()) {
    std::fprintf(stderr, "agentd-agent: %s\n", std::string(s.message()).c_str());
  }
#ifdef AGENTD_TEST_FAULTS
  InjectTestFault();
#endif
  agentd::agent::HostSessionOptions o;
  std::string role;
  if (const char* s = std::getenv("AGENTD_SOCKET")) o.socket = s;
  // agentd sets these too, so that a wrapper in a role's `command` need not pass them on.
  if (const char* r = std::getenv("AGENTD_ROLE")) role = r;
  if (const char* id = std::getenv("AGENTD_AGENT_ID")) o.agent_id = id;
  if (const char* g = std::getenv("AGENTD_RECONNECT_GRACE")) {
    absl::StatusOr<absl::Duration> d = agentd::ParseDuration(g);
    if (!d.ok()) return Usage(absl::StrCat("AGENTD_RECONNECT_GRACE: ", d.status().message()));
    o.reconnect_grace = *d;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--version") {
      std::printf("agentd-agent %s\n", agentd::kVersion);
      return 0;
    }
    if (i + 1 >= argc) return Usage(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--role") {
      role = v;
    } else if (a == "--id") {
      o.agent_id = v;
    } else if (a == "--socket") {
      o.socket = v;
    } else if (a == "--reconnect-grace") {
      absl::StatusOr<absl::Duration> d = agentd::ParseDuration(v);
      if (!d.ok()) return Usage(std::string(d.status().message()));
      o.reconnect_grace = *d;
    } else {
      return Usage("unknown flag \"" + a + "\"");
    }
  }
  if (role.empty() || o.agent_id.empty() || o.socket.empty()) {
    return Usage("--role, --id and a socket (--socket or $AGENTD_SOCKET) are required");
  }
  int token_fd = FdFromEnv("AGENTD_TOKEN_FD");
  if (token_fd < 0) {
    return Usage("no token: agentd passes it on the descriptor named by AGENTD_TOKEN_FD");
  }
  o.token = std::string(absl::StripAsciiWhitespace(ReadAll(token_fd)));
  if (o.token.empty()) return Usage("the token descriptor was empty");
  // No keys descriptor: a role whose provider needs none (or an older agentd).
  std::map<std::string, std::string> keys;
  if (int keys_fd = FdFromEnv("AGENTD_KEYS_FD"); keys_fd >= 0) keys = ParseKeys(ReadAll(keys_fd));

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  (void)agentd::SetupLogging("text", "info");
  agentd::AddLogSecret(o.token);
  for (const auto& [name, key] : keys) agentd::AddLogSecret(key);

  // The tool sandbox is tried once, at start: bwrap's presence proves nothing (it fails
  // in a chroot or without user namespaces). What it found goes to agentd at Register and
  // into every task's shell options.
  // agentd may have tried it already as this agent runs it (its isolation, its user):
  // then that trial stands, for the bwrap this agent would run.
  agentd::tools::SandboxProbe probe;
  const char* tried = std::getenv("AGENTD_SANDBOX_TRIED");
  if (tried != nullptr && *tried != 0 && agentd::tools::FindProgram("bwrap") == tried) {
    probe.works = true;
    probe.bwrap = tried;
    spdlog::info("tool sandbox: {} works (tried by agentd as this agent runs)", probe.bwrap);
  } else if (probe = agentd::tools::ProbeSandbox(); probe.works) {
    spdlog::info("tool sandbox: {} works", probe.bwrap);
  } else {
    spdlog::warn("tool sandbox: does not work here: {}", probe.why);
    o.sandbox_problem = probe.why;
  }
  agentd::agent::TaskRunnerOptions ro;
  ro.agent_id = o.agent_id;
  ro.sandbox_problem = o.sandbox_problem;
  ro.provider_keys = std::move(keys);
  const char* session_dir = std::getenv("AGENTD_SESSION_DIR");
  std::string sessions = session_dir != nullptr && *session_dir != 0
                             ? session_dir
                             : agentd::DefaultStateDir() + "/sessions";
  if (absl::Status s = agentd::MakeDirs(sessions, 0700); !s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  ro.session_path = absl::StrCat(sessions, "/", o.agent_id, ".db");
  if (const char* rec = std::getenv("AGENTD_LLM_RECORD")) ro.record_path = rec;

  agentd::agent::TaskRunner* runner = nullptr;
  o.on_delivery = [&runner](const agentd::v1::ConnectResponse& d) { runner->OnDelivery(d); };
  agentd::agent::HostSession session(o);
  agentd::agent::TaskRunner task_runner(&session, ro);
  runner = &task_runner;
  std::thread worker([&] { task_runner.Run(); });
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    task_runner.Stop();
    session.Stop();
  });
  signals.detach();
  absl::Status s = session.Run();
  task_runner.Stop();
  worker.join();
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return s.code() == absl::StatusCode::kUnavailable ? 75 : 1;
  }
  return 0;
}
