// StdioConnection: an MCP server as a child process, newline-delimited JSON-RPC on its
// stdin and stdout (the MCP stdio transport), its stderr relayed to this agent's log.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "agents/mcp/connection.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "spdlog/spdlog.h"

namespace agentd::mcp {

namespace {

using internal::Incoming;
using nlohmann::json;

// How long a write to the server's stdin may wait for room (a server that stops reading).
constexpr absl::Duration kWriteTimeout = absl::Seconds(10);
// How long Close waits after closing stdin, and again after SIGTERM.
constexpr absl::Duration kStopGrace = absl::Seconds(2);
// Bytes of one stderr line relayed to the log at most, and of them all in a minute.
constexpr size_t kStderrLine = 4096;
constexpr size_t kLogBytesPerMinute = 256 << 10;

// A debris line of a server's stdout, for a log line or an error.
std::string Excerpt(absl::string_view s) { return Utf8Prefix(s, 200, "…"); }

// Waits until `fd` is readable or `d` passes; true when readable.
bool WaitFd(int fd, absl::Duration d) {
  pollfd p{fd, POLLIN, 0};
  int ms = static_cast<int>(absl::ToInt64Milliseconds(d));
  for (;;) {
    int n = poll(&p, 1, ms);
    if (n < 0 && errno == EINTR) continue;
    return n > 0;
  }
}

class StdioConnection final : public Connection {
 public:
  explicit StdioConnection(StdioOptions o) : o_(std::move(o)) {}
  ~StdioConnection() override { Close(); }

  absl::Status Start() {
    static std::once_flag sigpipe;
    // A server that exits leaves a pipe without a reader: its write must fail (EPIPE),
    // not kill the agent.
    std::call_once(sigpipe, [] { signal(SIGPIPE, SIG_IGN); });
    if (o_.argv.empty()) return absl::InvalidArgumentError("no command");
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return Errno("pipe");
    if (pipe2(out, O_CLOEXEC) != 0) {
      CloseAll({in[0], in[1]});
      return Errno("pipe");
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
      CloseAll({in[0], in[1], out[0], out[1]});
      return Errno("pipe");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    if (!o_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o_.cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(
        &attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    std::vector<char*> argv, envp;
    for (std::string& a : o_.argv) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (std::string& e : o_.env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    CloseAll({in[0], out[1], err[1]});
    if (rc != 0) {
      CloseAll({in[1], out[0], err[0]});
      return absl::UnavailableError(
          absl::StrCat("cannot start ", EscapeForTerminal(o_.argv[0]), ": ", std::strerror(rc)));
    }
    pid_ = pid;
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    in_ = in[1];
    fcntl(in_, F_SETFL, fcntl(in_, F_GETFL) | O_NONBLOCK);
    wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    reader_ = std::thread([this, o = out[0], e = err[0]] { Read(o, e); });
    return absl::OkStatus();
  }

  absl::StatusOr<json> Request(const std::string& method, json params, absl::Duration timeout,
                               const llm::CancelToken* cancel) override {
    int64_t id;
    {
      absl::MutexLock l(&mu_);
      if (dead_) return absl::UnavailableError(why_);
      id = next_id_++;
      pending_[id];
    }
    json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
    if (absl::Status s = Write(m); !s.ok()) {
      absl::MutexLock l(&mu_);
      pending_.erase(id);
      return s;
    }
    absl::Time deadline = absl::Now() + timeout;
    absl::MutexLock l(&mu_);
    for (;;) {
      auto it = pending_.find(id);
      if (it->second.has_value() && !dead_) {
        absl::StatusOr<json> r = std::move(*it->second);
        pending_.erase(it);
        return r;
      }
      if (dead_) {
        pending_.erase(it);
        return absl::UnavailableError(why_);
      }
      bool cancelled = cancel != nullptr && cancel->cancelled();
      if (cancelled || absl::Now() >= deadline) {
        pending_.erase(it);
        mu_.Unlock();
        std::string reason = cancelled
                                 ? "the task was canceled"
                                 : absl::StrCat("no answer within ", absl::FormatDuration(timeout));
        (void)Notify("notifications/cancelled", {{"requestId", id}, {"reason", reason}});
        mu_.Lock();
        return cancelled ? absl::CancelledError(reason) : absl::DeadlineExceededError(reason);
      }
      // Woken by an answer or death; the cancel token is looked at every 100 ms.
      cv_.WaitWithDeadline(&mu_, std::min(deadline, absl::Now() + absl::Milliseconds(100)));
    }
  }

  absl::Status Notify(const std::string& method, json params) override {
    json m = {{"jsonrpc", "2.0"}, {"method", method}};
    if (!params.is_null()) m["params"] = std::move(params);
    return Write(m);
  }

  bool alive() const override {
    absl::MutexLock l(&mu_);
    return !dead_;
  }
  std::string why() const override {
    absl::MutexLock l(&mu_);
    return why_;
  }
  void set_protocol_version(const std::string&) override {}

  void Close() override {
    {
      absl::MutexLock l(&mu_);
      if (closed_) return;
      closed_ = true;
      if (!dead_) {
        dead_ = true;
        why_ = absl::StrCat("MCP server ", o_.name, " was stopped");
      }
      cv_.SignalAll();
    }
    if (pid_ <= 0) return;
    {
      absl::MutexLock l(&write_mu_);
      if (in_ >= 0) close(in_);  // the stdio transport's orderly end: EOF on its stdin
      in_ = -1;
    }
    bool exited = pidfd_ >= 0 && WaitFd(pidfd_, kStopGrace);
    if (!exited) {
      kill(-pid_, SIGTERM);
      exited = pidfd_ >= 0 && WaitFd(pidfd_, kStopGrace);
    }
    // Whatever it left in its process group goes too. The leader is not reaped before
    // (it is a zombie at worst), so the group id cannot belong to anyone else yet; the
    // leader itself is signalled through its pidfd, in case it left its group.
    kill(-pid_, SIGKILL);
    if (pidfd_ >= 0) syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    Reap(/*block=*/true);
    uint64_t one = 1;
    if (wake_ >= 0) (void)!write(wake_, &one, sizeof(one));
    if (reader_.joinable()) reader_.join();
    CloseAll({pidfd_, wake_});
    pidfd_ = wake_ = -1;
  }

 private:
  static absl::Status Errno(const char* what) {
    return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
  }
  static void CloseAll(std::initializer_list<int> fds) {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }

  // How it ended, without reaping it (so that its process group id stays its own);
  // "" while it runs.
  std::string ExitStatus() const {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
        info.si_pid != pid_) {
      return "";
    }
    if (info.si_code == CLD_EXITED) return absl::StrCat("exit status ", info.si_status);
    return absl::StrCat("killed by signal ", info.si_status);
  }

  // Reaps it (Close only, after its group was killed); its exit status, once.
  std::string Reap(bool block) {
    absl::MutexLock l(&reap_mu_);
    if (!exit_.empty() || pid_ <= 0) return exit_;
    int status = 0;
    pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r != pid_) return "";
    if (WIFEXITED(status)) {
      exit_ = absl::StrCat("exit status ", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
      exit_ = absl::StrCat("killed by signal ", WTERMSIG(status));
    } else {
      exit_ = "ended";
    }
    return exit_;
  }

  absl::Status Write(const json& m) {
    std::string line = DumpJson(m);
    line.push_back('\n');
    absl::MutexLock l(&write_mu_);
    absl::Time deadline = absl::Now() + kWriteTimeout;
    size_t done = 0;
    while (done < line.size()) {
      if (in_ < 0) return absl::UnavailableError(why());
      ssize_t n = write(in_, line.data() + done, line.size() - done);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        pollfd p{in_, POLLOUT, 0};
        absl::Duration left = deadline - absl::Now();
        if (left <= absl::ZeroDuration() ||
            poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) == 0) {
          Die(absl::StrCat("MCP server ", o_.name, " stopped reading its input (nothing taken for ",
                           absl::FormatDuration(kWriteTimeout), ")"));
          return absl::UnavailableError(why());
        }
        continue;
      }
      Die(absl::StrCat("MCP server ", o_.name, " cannot be written to: ", std::strerror(errno)));
      return absl::UnavailableError(why());
    }
    return absl::OkStatus();
  }

  // Marks the connection dead (first reason wins), fails every waiting request, and
  // stops the process so that nothing it sends later is mistaken for an answer.
  void Die(const std::string& why) {
    {
      absl::MutexLock l(&mu_);
      if (dead_) return;
      dead_ = true;
      why_ = why;
      cv_.SignalAll();
    }
    spdlog::warn("{}", why);
    if (pid_ > 0) kill(-pid_, SIGKILL);
  }

  // Whether `bytes` more of the server's chatter may go to the agent's log: at most
  // kLogBytesPerMinute a minute (a server must not flood its agent's log); what is
  // dropped is counted and said once the minute is over.
  bool LogBudget(size_t bytes) {
    absl::Time now = absl::Now();
    if (now - log_window_start_ >= absl::Minutes(1)) {
      if (log_dropped_ > 0) {
        spdlog::warn(
            "MCP server {}: {} lines of its output left out of this log (over {} "
            "bytes a minute)",
            o_.name, log_dropped_, kLogBytesPerMinute);
      }
      log_window_start_ = now;
      log_bytes_ = 0;
      log_dropped_ = 0;
    }
    if (log_bytes_ + bytes > kLogBytesPerMinute) {
      ++log_dropped_;
      return false;
    }
    log_bytes_ += bytes;
    return true;
  }

  void Answer(const json& id, json result_or_error, bool error) {
    json m = {{"jsonrpc", "2.0"}, {"id", id}};
    m[error ? "error" : "result"] = std::move(result_or_error);
    (void)Write(m);
  }

  void Handle(absl::string_view line) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty()) return;
    // Text a server sends in another encoding is shown as U+FFFD rather than taken for a
    // broken stream (JSON parsers refuse bytes that are not UTF-8).
    std::string valid;
    if (!IsValidUtf8(trimmed)) {
      valid = ValidUtf8(trimmed);
      trimmed = valid;
    }
    if (!JsonNestingWithin(std::string_view(trimmed.data(), trimmed.size()), kMaxJsonNesting)) {
      Die(absl::StrCat("MCP server ", o_.name, " sent a message nested over ", kMaxJsonNesting,
                       " levels deep"));
      return;
    }
    json m = json::parse(trimmed.begin(), trimmed.end(), nullptr, /*allow_exceptions=*/false);
    if (m.is_discarded()) {
      if (trimmed.front() == '{' || trimmed.front() == '[') {
        // Meant as a message and broken: what follows cannot be trusted either.
        Die(absl::StrCat("MCP server ", o_.name,
                         " sent a malformed message (not JSON): ", Excerpt(trimmed)));
      } else {
        // The stdio transport forbids anything but messages on stdout; a stray log line
        // is reported and skipped rather than taken for a broken protocol.
        if (LogBudget(trimmed.size())) {
          spdlog::warn("MCP server {} wrote a line that is not a message to its stdout: {}",
                       o_.name, Excerpt(trimmed));
        }
      }
      return;
    }
    Incoming in = internal::Classify(m);
    switch (in.kind) {
      case Incoming::Kind::kResponse: {
        absl::MutexLock l(&mu_);
        if (dead_) return;  // the stream broke before it: nothing after is trusted
        auto it = pending_.find(in.id);
        if (it == pending_.end() || it->second.has_value()) {
          spdlog::warn("MCP server {} answered request {}, which is not waiting", o_.name, in.id);
          return;
        }
        it->second = in.error.ok() ? absl::StatusOr<json>(std::move(in.result))
                                   : absl::StatusOr<json>(in.error);
        cv_.SignalAll();
        return;
      }
      case Incoming::Kind::kNotification:
        if (o_.on_notification) o_.on_notification(in.method, in.params);
        return;
      case Incoming::Kind::kRequest:
        if (in.method == "ping") {
          Answer(in.id_json, json::object(), false);
        } else {
          // The client declares no capabilities (sampling, roots, elicitation): a server
          // that asks anyway is told so, as the protocol says.
          Answer(in.id_json,
                 {{"code", -32601},
                  {"message", absl::StrCat("agentd's MCP client does not offer ",
                                           Utf8Prefix(in.method, 100, "…"))}},
                 true);
        }
        return;
      case Incoming::Kind::kInvalid:
        Die(absl::StrCat("MCP server ", o_.name, " sent a message that is not JSON-RPC (", in.why,
                         "): ", Excerpt(trimmed)));
        return;
    }
  }

  void Read(int out, int err) {
    std::string buf, errbuf;
    bool out_open = true, err_open = true;
    char chunk[64 << 10];
    while (out_open || err_open) {
      pollfd p[3] = {
          {out_open ? out : -1, POLLIN, 0}, {err_open ? err : -1, POLLIN, 0}, {wake_, POLLIN, 0}};
      if (poll(p, 3, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (p[2].revents != 0) break;  // Close: whatever is left goes unread
      if (p[0].revents != 0) {
        ssize_t n = read(out, chunk, sizeof(chunk));
        if (n <= 0) {
          out_open = false;
        } else {
          buf.append(chunk, static_cast<size_t>(n));
          size_t start = 0;
          for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
            Handle(absl::string_view(buf).substr(start, nl - start));
          }
          buf.erase(0, start);
          if (buf.size() > o_.max_message_bytes) {
            Die(absl::StrCat("MCP server ", o_.name, " sent a message over ",
                             o_.max_message_bytes >> 20, " MiB"));
            buf.clear();
          }
        }
      }
      if (p[1].revents != 0) {
        ssize_t n = read(err, chunk, sizeof(chunk));
        if (n <= 0) {
          err_open = false;
        } else {
          errbuf.append(chunk, static_cast<size_t>(n));
          size_t start = 0;
          for (size_t nl; (nl = errbuf.find('\n', start)) != std::string::npos; start = nl + 1) {
            if (LogBudget(nl - start)) {
              spdlog::info("mcp {}: {}", o_.name,
                           Utf8Prefix(absl::string_view(errbuf).substr(start, nl - start),
                                      kStderrLine, "…"));
            }
          }
          errbuf.erase(0, start);
          if (errbuf.size() > kStderrLine) {
            if (LogBudget(kStderrLine)) {
              spdlog::info("mcp {}: {}", o_.name, Utf8Prefix(errbuf, kStderrLine, "…"));
            }
            errbuf.clear();
          }
        }
      }
      if (!out_open) {
        // Its stdout is closed: it ended, or will not answer again either way.
        std::string status;
        if (pidfd_ >= 0 && WaitFd(pidfd_, absl::Milliseconds(500))) status = ExitStatus();
        Die(absl::StrCat(
            "MCP server ", o_.name, " ",
            status.empty() ? "closed its output" : absl::StrCat("exited (", status, ")")));
        break;
      }
    }
    close(out);
    close(err);
  }

  StdioOptions o_;
  pid_t pid_ = -1;
  int pidfd_ = -1, in_ = -1, wake_ = -1;
  std::thread reader_;
  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  bool dead_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string why_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Requests sent and not answered yet; the answer, once it came.
  std::map<int64_t, std::optional<absl::StatusOr<json>>> pending_ ABSL_GUARDED_BY(mu_);
  absl::Mutex write_mu_;
  absl::Mutex reap_mu_;
  std::string exit_ ABSL_GUARDED_BY(reap_mu_);
  // The log budget (the reader thread's).
  absl::Time log_window_start_ = absl::InfinitePast();
  size_t log_bytes_ = 0;
  int64_t log_dropped_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> StartStdio(StdioOptions options) {
  auto c = std::make_unique<StdioConnection>(std::move(options));
  if (absl::Status s = c->Start(); !s.ok()) return s;
  return std::unique_ptr<Connection>(std::move(c));
}

}  // namespace agentd::mcp
