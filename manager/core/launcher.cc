#include "manager/core/launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace agentd {

std::string ExitStatus::ToString() const {
  if (signal != 0) {
    const char* name = sigabbrev_np(signal);
    return absl::StrCat("killed by SIG", name ? name : absl::StrCat(signal));
  }
  return absl::StrCat("exit code ", exit_code);
}

namespace {
const char* RlimitName(int resource) {
  switch (resource) {
    case RLIMIT_NOFILE:
      return "nofile";
    case RLIMIT_NPROC:
      return "nproc";
    case RLIMIT_AS:
      return "memory";
    case RLIMIT_CORE:
      return "core";
    case RLIMIT_FSIZE:
      return "file_size";
    case RLIMIT_CPU:
      return "cpu";
    default:
      return "?";
  }
}
}  // namespace

int LocalLauncher::PidfdOpen(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

uint64_t LocalLauncher::StartTicks(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // Fields 3..21 precede starttime (22).
  for (int i = 3; i <= 21 && (rest >> field); ++i) {
  }
  uint64_t ticks = 0;
  rest >> ticks;
  return ticks;
}

LocalLauncher::LocalLauncher(ExitCallback on_exit) : on_exit_(std::move(on_exit)) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  thread_ = std::thread([this] { Run(); });
}

LocalLauncher::~LocalLauncher() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  absl::MutexLock l(&mu_);
  for (auto& [fd, id] : pidfds_) close(fd);
  close(epoll_fd_);
  close(wake_fd_);
}

absl::StatusOr<ProcessId> LocalLauncher::Start(const LaunchSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("no program to start");
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  // dup2 clears O_CLOEXEC on the copy; the originals (above 3) are closed below.
  if (spec.stdout_fd >= 0) posix_spawn_file_actions_adddup2(&fa, spec.stdout_fd, STDOUT_FILENO);
  if (spec.stderr_fd >= 0) posix_spawn_file_actions_adddup2(&fa, spec.stderr_fd, STDERR_FILENO);
  int secret[2] = {-1, -1};
  if (!spec.fd3_contents.empty()) {
    // A pipe small enough to fill before the child exists (64 KiB of buffer on Linux).
    if (spec.fd3_contents.size() > 4096 || pipe2(secret, O_CLOEXEC) != 0 ||
        write(secret[1], spec.fd3_contents.data(), spec.fd3_contents.size()) !=
            static_cast<ssize_t>(spec.fd3_contents.size())) {
      posix_spawn_file_actions_destroy(&fa);
      for (int fd : secret) {
        if (fd >= 0) close(fd);
      }
      return absl::InternalError(absl::StrCat("cannot pass fd 3 to ", spec.argv[0]));
    }
    close(secret[1]);
    secret[1] = -1;
    posix_spawn_file_actions_adddup2(&fa, secret[0], 3);  // dup2 clears O_CLOEXEC
  }
  // Everything else above stderr is closed: no daemon socket, database or lock leaks in.
  posix_spawn_file_actions_addclosefrom_np(&fa, spec.fd3_contents.empty() ? 3 : 4);
  if (!spec.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, spec.cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all_default;
  sigemptyset(&none);
  sigfillset(&all_default);
  posix_spawnattr_setsigmask(&attr, &none);  // the daemon blocks signals; children must not
  posix_spawnattr_setsigdefault(&attr, &all_default);  // SIGPIPE ignored here, default there
  posix_spawnattr_setpgroup(&attr, 0);                 // a process group of its own
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (secret[0] >= 0) close(secret[0]);
  if (rc != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", spec.argv[0], ": ", std::strerror(rc)));
  }
  for (auto [resource, soft, value] : spec.rlimits) {
    rlimit lim{soft, value};
    if (prlimit(pid, static_cast<__rlimit_resource>(resource), &lim, nullptr) != 0) {
      int err = errno;
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return absl::FailedPreconditionError(absl::StrCat("cannot set resource limit ",
                                                        RlimitName(resource), "=", value, " for ",
                                                        spec.argv[0], ": ", std::strerror(err)));
    }
  }
  ProcessId id{pid, StartTicks(pid)};
  int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    // Cannot happen for our own unreaped child; kill it rather than lose track of it.
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::InternalError(absl::StrCat("pidfd_open(", pid, "): ", std::strerror(errno)));
  }
  {
    absl::MutexLock l(&mu_);
    pidfds_[pidfd] = id;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pidfd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, pidfd, &ev);
  return id;
}

void LocalLauncher::SignalGroup(ProcessId id, int sig) {
  // The group may outlive its leader (a grandchild); kill(-pgid) reaches what is left.
  if (kill(-id.pid, sig) != 0 && errno != ESRCH) {
    spdlog::warn("kill(-{}, {}): {}", id.pid, sig, std::strerror(errno));
  }
}

void LocalLauncher::Run() {
  epoll_event events[32];
  for (;;) {
    int n = epoll_wait(epoll_fd_, events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("launcher: epoll_wait: {}", std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_fd_) return;
      siginfo_t info{};
      if (waitid(static_cast<idtype_t>(P_PIDFD), fd, &info, WEXITED | WNOHANG) != 0 ||
          info.si_pid == 0) {
        continue;  // not exited yet (spurious wake-up)
      }
      ExitStatus st;
      st.time = absl::Now();
      if (info.si_code == CLD_EXITED) {
        st.exit_code = info.si_status;
      } else {
        st.signal = info.si_status;
      }
      ProcessId id;
      {
        absl::MutexLock l(&mu_);
        id = pidfds_[fd];
        pidfds_.erase(fd);
      }
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
      on_exit_(id, st);
    }
  }
}

}  // namespace agentd
