// Test helper: an agent (a role's `command`) that tries, from inside its own process, to
// reach what an agent must not: agentd's admin token and database, another agent's
// session, the admin socket, agentd's environment, and admin calls on the endpoint it was
// given, and anything else in the state directory; and, as controls, what it must reach: its own
// session directory, and AgentHost with the token agentd handed it on fd 3. One line per attempt
// goes to FILE,
//   <check> reached|refused <detail>
// (for the calls, the gRPC status code's name instead of reached/refused); then it runs
// until SIGTERM.
//   isolation_probe FILE STATE_DIR ADMIN_SOCKET OTHER_SESSION_FILE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agentd/v1/agent_host.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace {

std::string report;

void Line(const std::string& check, bool reached, const std::string& detail) {
  report += check + (reached ? " reached " : " refused ") + detail + "\n";
}

// Opens `path` for reading and reads a byte: reached when that works.
void TryRead(const std::string& check, const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Line(check, false, std::strerror(errno));
    return;
  }
  char c;
  ssize_t n = read(fd, &c, 1);
  int err = errno;
  close(fd);
  Line(check, n >= 0, n >= 0 ? path : std::strerror(err));
}

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    default:
      return "CODE_" + std::to_string(static_cast<int>(code));
  }
}

std::unique_ptr<grpc::ClientContext> Context(const std::string& token) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) return 2;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::string out = argv[1], state = argv[2], admin_socket = argv[3], other_session = argv[4];
  std::string token;
  char buf[256];
  ssize_t n;
  while ((n = read(3, buf, sizeof(buf))) > 0) token.append(buf, static_cast<size_t>(n));
  const char* endpoint = std::getenv("AGENTD_SOCKET");
  const char* session_dir = std::getenv("AGENTD_SESSION_DIR");
  const char* id = std::getenv("AGENTD_AGENT_ID");
  if (endpoint == nullptr || session_dir == nullptr || id == nullptr) return 2;

  // agentd starts its agents before it listens: wait (10 s at most) for the endpoint, as
  // agentd-agent's reconnecting does, so that every check below meets a serving daemon.
  for (int i = 0; i < 1000 && access(endpoint, F_OK) != 0; ++i) usleep(10000);
  TryRead("admin-token", state + "/admin.token");
  TryRead("database", state + "/agentd.db");
  TryRead("other-session", other_session);
  {
    // agentd is the parent, or the parent of agentd-init when that is the parent; in a
    // PID namespace of the agent's own, outside it (pid 0 here).
    pid_t agentd = getppid();
    char comm[64] = {0};
    if (FILE* f = std::fopen(("/proc/" + std::to_string(agentd) + "/comm").c_str(), "r")) {
      if (std::fgets(comm, sizeof(comm), f) == nullptr) comm[0] = 0;
      std::fclose(f);
    }
    if (std::strcmp(comm, "agentd-init\n") == 0) {
      agentd = 0;
      if (FILE* f = std::fopen(("/proc/" + std::to_string(getppid()) + "/stat").c_str(), "r")) {
        char line[512] = {0};
        if (std::fgets(line, sizeof(line), f) != nullptr) {
          if (const char* close = std::strrchr(line, ')'))
            std::sscanf(close + 2, "%*c %d", &agentd);
        }
        std::fclose(f);
      }
    }
    if (agentd == 0) {
      Line("agentd-environ", false, "agentd is outside this PID namespace");
    } else {
      TryRead("agentd-environ", "/proc/" + std::to_string(agentd) + "/environ");
    }
  }
  {
    // Other processes: kill(2) checks only the uid, so a process of agentd's uid in sight
    // could be signalled (agentd itself, other agents); their command lines show; and
    // their /proc/<pid>/root would show the machine's whole file system.
    int others = 0, signalled = 0;
    std::string through;
    if (DIR* d = opendir("/proc")) {
      while (dirent* e = readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != 0 || pid == getpid() || pid == 1) continue;
        ++others;
        if (kill(static_cast<pid_t>(pid), 0) == 0) ++signalled;
        std::string path = "/proc/" + std::string(e->d_name) + "/root" + state + "/admin.token";
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
          through = path;
          close(fd);
        }
      }
      closedir(d);
    }
    Line("proc-root", !through.empty(), through.empty() ? "no /proc/<pid>/root" : through);
    Line("signal-processes", signalled > 0, std::to_string(signalled) + " could be signalled");
    Line("other-processes", others > 0, std::to_string(others) + " in /proc");
  }
  {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", admin_socket.c_str());
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    Line("admin-socket", ok, ok ? admin_socket : std::strerror(errno));
    close(fd);
  }
  {
    // Replacing the endpoint would have other agents hand this one their tokens.
    bool ok = unlink(endpoint) == 0;
    Line("replace-endpoint", ok, ok ? endpoint : std::strerror(errno));
  }
  {
    // The cgroup file system: its directories are the daemon's (leave one's cgroup, kill
    // another agent's).
    int entries = 0;
    if (DIR* d = opendir("/sys/fs/cgroup")) {
      while (dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) ++entries;
      }
      closedir(d);
    }
    Line("cgroup-fs", entries > 0, std::to_string(entries) + " entries");
  }
  {
    // Everything of the state directory in sight, bar the way to the agent's own session:
    // another goal's workspace, logs, the audit head — none of it is the agent's.
    std::string own = std::string(session_dir);
    std::string seen;
    std::vector<std::string> todo = {state};
    while (!todo.empty()) {
      std::string dir = todo.back();
      todo.pop_back();
      DIR* d = opendir(dir.c_str());
      if (d == nullptr) continue;
      while (dirent* e = readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        std::string path = dir + "/" + e->d_name;
        bool on_the_way = own.compare(0, path.size() + 1, path + "/") == 0;
        bool inside_own = path.compare(0, own.size() + 1, own + "/") == 0 || path == own;
        if (on_the_way) {
          todo.push_back(path);
        } else if (!inside_own) {
          seen += (seen.empty() ? "" : ",") + path.substr(state.size() + 1);
        }
      }
      closedir(d);
    }
    Line("state-dir", !seen.empty(), seen.empty() ? "only the own session" : seen);
  }
  {
    std::string path = std::string(session_dir) + "/probe";
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    Line("own-session", fd >= 0, fd >= 0 ? path : std::strerror(errno));
    if (fd >= 0) close(fd);
  }

  auto channel =
      grpc::CreateChannel(std::string("unix:") + endpoint, grpc::InsecureChannelCredentials());
  auto host = agentd::v1::AgentHostService::NewStub(channel);
  {
    agentd::v1::HeartbeatRequest req;
    req.set_lease_id("made-up");
    agentd::v1::HeartbeatResponse resp;
    grpc::Status s = host->Heartbeat(Context("").get(), req, &resp);
    report += "tokenless-heartbeat " + CodeName(s.error_code()) + "\n";
  }
  {
    auto system = agentd::v1::SystemService::NewStub(channel);
    agentd::v1::GetInfoResponse resp;
    grpc::Status s = system->GetInfo(Context("").get(), agentd::v1::GetInfoRequest(), &resp);
    report += "admin-call-on-endpoint " + CodeName(s.error_code()) + "\n";
  }
  {
    agentd::v1::RegisterRequest req;
    req.set_agent_id(id);
    req.set_pid(getpid());
    req.set_runtime_version("probe");
    agentd::v1::RegisterResponse resp;
    grpc::Status s = host->Register(Context(token).get(), req, &resp);
    report += "register-with-token " + CodeName(s.error_code()) + "\n";
  }

  std::string tmp = out + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return 1;
  std::fputs(report.c_str(), f);
  std::fclose(f);
  std::rename(tmp.c_str(), out.c_str());
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
