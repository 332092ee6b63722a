#include "ui/desktop/daemon_control.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace agentd::desktop {

struct DaemonControl::Call {
  std::function<void(bool, std::string, std::string)> done;
};

namespace {

// Runs in the child between fork and exec: a child agentd ends with the shell even when
// the shell is killed, also between the fork and this call (then the parent is already
// another process). Only async-signal-safe calls here.
pid_t shell_pid = 0;
void DieWithParent(gpointer) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != shell_pid) _exit(1);
}

// The process that listens on the unix socket `path`: its pid as this PID namespace
// numbers it (SO_PEERCRED), and a pidfd opened at once, so that a signal sent through it
// later reaches that process or none, never one that took its pid meanwhile. The connect
// does not block (a wedged agentd with a full backlog is "cannot tell"). nullptr when it
// cannot be told.
struct Peer {
  pid_t pid = 0;
  int pidfd = -1;
  ~Peer() {
    if (pidfd >= 0) close(pidfd);
  }
};
std::shared_ptr<Peer> PeerOf(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return nullptr;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return nullptr;
  auto peer = std::make_shared<Peer>();
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
      peer->pid = cred.pid;
      peer->pidfd = static_cast<int>(syscall(SYS_pidfd_open, cred.pid, 0));
    }
  }
  close(fd);
  return peer->pidfd >= 0 ? peer : nullptr;
}

// SIGTERM through the peer's pidfd.
absl::Status Terminate(const Peer& peer) {
  if (syscall(SYS_pidfd_send_signal, peer.pidfd, SIGTERM, nullptr, 0) != 0) {
    int err = errno;
    return absl::Status(
        absl::ErrnoToStatusCode(err),
        absl::StrCat("could not signal agentd (pid ", peer.pid, "): ", std::strerror(err)));
  }
  return absl::OkStatus();
}

std::string Trimmed(std::string s) {
  absl::StripAsciiWhitespace(&s);
  return s;
}

}  // namespace

DaemonControl::DaemonControl(ControlOptions options)
    : options_(std::move(options)), cancel_(g_cancellable_new()) {}

DaemonControl::~DaemonControl() {
  // Pending callbacks see G_IO_ERROR_CANCELLED and never touch this object.
  if (kill_timer_ != 0) g_source_remove(kill_timer_);
  g_cancellable_cancel(cancel_);
  g_object_unref(cancel_);
  if (child_ != nullptr) g_object_unref(child_);
}

std::string DaemonControl::AgentdBinary() const {
  if (!options_.agentd.empty()) return options_.agentd;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir.resize(dir.find_last_of('/'));
    std::string beside = absl::StrCat(dir, "/agentd");
    if (access(beside.c_str(), X_OK) == 0) return beside;
  }
  return "agentd";
}

void DaemonControl::Run(std::vector<std::string> argv,
                        std::function<void(bool, std::string, std::string)> done) {
  std::vector<const char*> args;
  for (const std::string& a : argv) args.push_back(a.c_str());
  args.push_back(nullptr);
  GError* error = nullptr;
  GSubprocess* proc =
      g_subprocess_newv(args.data(),
                        static_cast<GSubprocessFlags>(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                      G_SUBPROCESS_FLAGS_STDERR_PIPE),
                        &error);
  if (proc == nullptr) {
    std::string why = absl::StrCat(argv[0], ": ", error->message);
    g_error_free(error);
    done(false, "", why);
    return;
  }
  auto* call = new Call{std::move(done)};
  g_subprocess_communicate_utf8_async(
      proc, nullptr, cancel_,
      [](GObject* source, GAsyncResult* result, gpointer data) {
        std::unique_ptr<Call> c(static_cast<Call*>(data));
        auto* p = G_SUBPROCESS(source);
        char* out = nullptr;
        char* err = nullptr;
        GError* e = nullptr;
        bool finished = g_subprocess_communicate_utf8_finish(p, result, &out, &err, &e);
        if (!finished && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
          g_error_free(e);
          g_object_unref(p);
          return;  // the DaemonControl is gone
        }
        std::string out_s = out != nullptr ? out : "";
        std::string err_s = finished ? (err != nullptr ? err : "") : e->message;
        bool ok = finished && g_subprocess_get_successful(p);
        g_free(out);
        g_free(err);
        if (e != nullptr) g_error_free(e);
        g_object_unref(p);
        c->done(ok, std::move(out_s), Trimmed(std::move(err_s)));
      },
      call);
}

void DaemonControl::Start(Done done) {
  if (child_ != nullptr) return done(std::string("agentd already runs as the shell's child"));
  if (!options_.use_systemd) return StartChild(std::move(done));
  Run({options_.systemctl, "--user", "show", "--property=LoadState", "--value", options_.unit},
      [this, done = std::move(done)](bool ok, std::string out, std::string) mutable {
        if (!ok || Trimmed(out) != "loaded") return StartChild(std::move(done));
        Run({options_.systemctl, "--user", "start", options_.unit},
            [this, done = std::move(done)](bool started, std::string, std::string err) {
              if (started) return done(absl::StrCat("started ", options_.unit, " (systemd)"));
              done(absl::FailedPreconditionError(
                  absl::StrCat("systemctl --user start ", options_.unit,
                               " failed: ", err.empty() ? "no reason given" : err,
                               " (journalctl --user -u ", options_.unit, " says more)")));
            });
      });
}

void DaemonControl::StartChild(Done done) {
  std::string binary = AgentdBinary();
  std::vector<const char*> args{binary.c_str()};
  for (const std::string& a : options_.agentd_args) args.push_back(a.c_str());
  args.push_back(nullptr);
  GSubprocessLauncher* launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
  shell_pid = getpid();
  g_subprocess_launcher_set_child_setup(launcher, DieWithParent, nullptr, nullptr);
  GError* error = nullptr;
  child_ = g_subprocess_launcher_spawnv(launcher, args.data(), &error);
  g_object_unref(launcher);
  if (child_ == nullptr) {
    std::string why = error->message;
    g_error_free(error);
    return done(absl::FailedPreconditionError(absl::StrCat(
        "could not start ", binary, ": ", why, " (is agentd installed? --agentd PATH names it)")));
  }
  g_subprocess_wait_async(child_, cancel_, &DaemonControl::OnChildExit, this);
  done(absl::StrCat("started ", binary, " as the shell's child (pid ",
                    g_subprocess_get_identifier(child_), ")"));
}

void DaemonControl::OnChildExit(GObject* source, GAsyncResult* result, gpointer self) {
  GError* e = nullptr;
  if (!g_subprocess_wait_finish(G_SUBPROCESS(source), result, &e)) {
    bool cancelled = g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_error_free(e);
    if (cancelled) return;  // the DaemonControl is gone
  }
  auto* control = static_cast<DaemonControl*>(self);
  GSubprocess* child = control->child_;
  if (child != G_SUBPROCESS(source)) return;
  std::string how =
      g_subprocess_get_if_exited(child)
          ? absl::StrCat("agentd exited with status ", g_subprocess_get_exit_status(child))
          : absl::StrCat("agentd was killed by signal ", g_subprocess_get_term_sig(child));
  control->child_ = nullptr;
  g_object_unref(child);
  if (control->on_child_exit_) control->on_child_exit_(how);
  if (control->kill_timer_ != 0) {
    g_source_remove(control->kill_timer_);
    control->kill_timer_ = 0;
  }
  auto waiting = std::move(control->on_child_gone_);
  for (auto& f : waiting) f();
}

void DaemonControl::Stop(Done done) {
  if (child_ != nullptr) {
    g_subprocess_send_signal(child_, SIGTERM);
    return done(std::string("sent SIGTERM to the shell's agentd"));
  }
  std::shared_ptr<Peer> peer = PeerOf(options_.socket);
  if (peer == nullptr) {
    return done(absl::FailedPreconditionError(absl::StrCat(
        "cannot tell which process listens on ", options_.socket, ": nothing was stopped")));
  }
  Run({options_.systemctl, "--user", "show", "--property=MainPID", "--value", options_.unit},
      [this, peer, done = std::move(done)](bool ok, std::string out, std::string) {
        int64_t main_pid = 0;
        if (ok && absl::SimpleAtoi(Trimmed(out), &main_pid) && main_pid == peer->pid) {
          Run({options_.systemctl, "--user", "stop", options_.unit},
              [this, done](bool stopped, std::string, std::string err) {
                if (stopped) return done(absl::StrCat("stopped ", options_.unit, " (systemd)"));
                done(absl::FailedPreconditionError(
                    absl::StrCat("systemctl --user stop ", options_.unit, " failed: ", err)));
              });
          return;
        }
        if (absl::Status s = Terminate(*peer); !s.ok()) return done(s);
        done(absl::StrCat("sent SIGTERM to agentd (pid ", peer->pid, ")"));
      });
}

void DaemonControl::Release(std::function<void()> done, absl::Duration grace) {
  if (child_ == nullptr) return done();
  on_child_gone_.push_back(std::move(done));
  g_subprocess_send_signal(child_, SIGTERM);
  if (kill_timer_ == 0) {
    kill_timer_ = g_timeout_add(
        static_cast<guint>(absl::ToInt64Milliseconds(grace)),
        [](gpointer self) -> gboolean {
          auto* control = static_cast<DaemonControl*>(self);
          control->kill_timer_ = 0;
          if (control->child_ != nullptr) g_subprocess_force_exit(control->child_);
          return G_SOURCE_REMOVE;
        },
        this);
  }
}

}  // namespace agentd::desktop
