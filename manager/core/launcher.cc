#include "manager/core/launcher.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <signal.h>
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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/logging.h"
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

LocalLauncher::LocalLauncher(ExitCallback on_exit, AgentCgroups* cgroups)
    : on_exit_(std::move(on_exit)), cgroups_(cgroups) {
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

namespace {

// What the child reports through the status pipe when a step before exec fails.
struct ChildFailure {
  int step;  // kStep*
  int err;   // errno
  int resource;
};
constexpr int kStepChdir = 1, kStepLimit = 2, kStepExec = 3, kStepFds = 4;

// Between clone and exec: only system calls (the parent's other threads are gone, their
// locks may be held), nothing that allocates.
[[noreturn]] void ChildExec(const LaunchSpec& spec, const char* program, char* const* argv,
                            char* const* envp, int devnull, const int* secrets, int n_secrets,
                            int status) {
  auto fail = [status](int step, int resource) {
    ChildFailure f{step, errno, resource};
    (void)!write(status, &f, sizeof(f));
    _exit(127);
  };
  // The daemon blocks signals and ignores SIGPIPE; an agent starts with neither.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
  setpgid(0, 0);  // a process group of its own
  // dup2 clears O_CLOEXEC on the copies; the sources are all above 2 (the daemon keeps
  // 0-2 open) and above the secrets' numbers, which are written last.
  if (dup2(devnull, STDIN_FILENO) < 0) fail(kStepFds, 0);
  if (spec.stdout_fd >= 0 && dup2(spec.stdout_fd, STDOUT_FILENO) < 0) fail(kStepFds, 0);
  if (spec.stderr_fd >= 0 && dup2(spec.stderr_fd, STDERR_FILENO) < 0) fail(kStepFds, 0);
  for (int i = 0; i < n_secrets; ++i) {
    if (dup2(secrets[i], 3 + i) < 0) fail(kStepFds, 0);
  }
  // Everything else closes at exec: no daemon socket, database or lock leaks in (the
  // status pipe stays open until then).
  syscall(SYS_close_range, 3 + n_secrets, ~0U, CLOSE_RANGE_CLOEXEC);
  if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) fail(kStepChdir, 0);
  for (const LaunchSpec::Limit& l : spec.rlimits) {
    rlimit lim{l.soft, l.hard};
    if (setrlimit(static_cast<__rlimit_resource>(l.resource), &lim) != 0) {
      fail(kStepLimit, l.resource);
    }
  }
  execve(program, argv, envp);
  fail(kStepExec, 0);
  _exit(127);  // not reached
}

// The secrets' descriptors are 3 … 3 + kMaxSecrets - 1 in the child; every descriptor the
// child dup2s from must lie above them, or a dup2 would overwrite a source not yet copied.
constexpr int kMaxSecrets = 8;
constexpr int kFirstFreeFd = 3 + kMaxSecrets;

// `fd` renumbered to kFirstFreeFd or more (close-on-exec), the old number closed.
int MoveAboveSecrets(int fd) {
  if (fd >= kFirstFreeFd) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, kFirstFreeFd);
  close(fd);
  return moved;
}

// argv[0] as execve needs it: a path, looked up in the PATH of `env` when it has no '/'.
std::string ResolveProgram(const std::string& name, const std::vector<std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& e : env) {
    if (absl::StartsWith(e, "PATH=")) path = e.substr(5);
  }
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    // Only absolute entries: the child runs in another directory than this check.
    if (dir.empty() || dir[0] != '/') continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

absl::StatusOr<ProcessId> LocalLauncher::Start(const LaunchSpec& spec) {
  if (spec.argv.empty()) return absl::InvalidArgumentError("no program to start");
  const std::string& name = spec.argv[0];
  // Everything the child needs is made here, before the clone.
  std::string program = ResolveProgram(name, spec.env);
  if (program.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", name, ": not found in PATH"));
  }
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  std::vector<int> to_close;
  auto close_all = [&to_close] {
    for (int fd : to_close) close(fd);
    to_close.clear();
  };
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return absl::InternalError(absl::StrCat("/dev/null: ", std::strerror(errno)));
  to_close.push_back(devnull);
  if (spec.inherited_secrets.size() > static_cast<size_t>(kMaxSecrets)) {
    close_all();
    return absl::InvalidArgumentError(absl::StrCat("cannot pass ", spec.inherited_secrets.size(),
                                                   " secrets to ", name, " (at most ", kMaxSecrets,
                                                   ")"));
  }
  std::vector<int> secrets;
  for (const std::string& contents : spec.inherited_secrets) {
    // A pipe small enough to fill before the child exists (64 KiB of buffer on Linux).
    int p[2];
    if (contents.size() > 4096 || pipe2(p, O_CLOEXEC) != 0) {
      close_all();
      return absl::InternalError(absl::StrCat("cannot pass a secret descriptor to ", name));
    }
    ssize_t w = contents.empty() ? 0 : write(p[1], contents.data(), contents.size());
    close(p[1]);
    int fd = MoveAboveSecrets(p[0]);  // dup2(fd, 3 + i) must clear CLOEXEC
    to_close.push_back(fd);
    secrets.push_back(fd);
    if (fd < 0 || w != static_cast<ssize_t>(contents.size())) {
      close_all();
      return absl::InternalError(absl::StrCat("cannot pass a secret descriptor to ", name));
    }
  }
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) {
    close_all();
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  to_close.push_back(status[0]);
  // Above the secrets: the child puts those on 3, 4, … and needs the status pipe until exec.
  status[1] = MoveAboveSecrets(status[1]);
  // Born in its cgroup (CLONE_INTO_CGROUP), so that nothing it starts, however early,
  // is outside it.
  std::string cgroup;
  int cgroup_fd = -1;
  if (cgroups_ != nullptr && !spec.cgroup.empty()) {
    absl::StatusOr<std::string> path = cgroups_->Create(spec.cgroup);
    if (path.ok()) cgroup_fd = open(path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd >= 0) {
      cgroup = *path;
      to_close.push_back(cgroup_fd);
    } else {
      // The process group still holds it together; say why the cgroup does not.
      spdlog::warn("agent {}: no cgroup: {}", spec.cgroup,
                   path.ok() ? std::strerror(errno) : path.status().message());
    }
  }
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd >= 0 ? cgroup_fd : 0);
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0)
    ChildExec(spec, program.c_str(), argv.data(), envp.data(), devnull, secrets.data(),
              static_cast<int>(secrets.size()), status[1]);
  int clone_err = errno;
  close(status[1]);
  if (pid < 0) {
    close_all();
    return absl::InternalError(
        absl::StrCat("cannot start ", name, ": clone3: ", std::strerror(clone_err)));
  }
  // The status pipe closes at exec (success) or carries what failed before it.
  ChildFailure f{};
  ssize_t n;
  do {
    n = read(status[0], &f, sizeof(f));
  } while (n < 0 && errno == EINTR);
  close_all();
  if (n == static_cast<ssize_t>(sizeof(f))) {
    siginfo_t info;
    waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED);
    close(pidfd);
    std::string why = std::strerror(f.err);
    switch (f.step) {
      case kStepChdir:
        return absl::FailedPreconditionError(
            absl::StrCat("cannot start ", name, ": working directory ", spec.cwd, ": ", why));
      case kStepLimit:
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot start ", name, ": resource limit ", RlimitName(f.resource), ": ", why));
      default:
        return absl::FailedPreconditionError(absl::StrCat("cannot start ", name, ": ", why));
    }
  }
  ProcessId id{static_cast<pid_t>(pid), StartTicks(static_cast<pid_t>(pid))};
  {
    absl::MutexLock l(&mu_);
    pidfds_[pidfd] = id;
    reaped_.erase(id.pid);  // the pid is this process's now
    if (!cgroup.empty()) {
      for (auto it = cgroup_of_.begin(); it != cgroup_of_.end();) {
        it = it->second == cgroup ? cgroup_of_.erase(it) : std::next(it);
      }
      cgroup_of_[id.pid] = cgroup;
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = pidfd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, pidfd, &ev);
  return id;
}

void LocalLauncher::SignalGroup(ProcessId id, int sig) {
  {
    // Reaped: its group's leftovers were killed before, and the pid may be another's now.
    absl::MutexLock l(&mu_);
    if (reaped_.count(id.pid) != 0) return;
  }
  // The group may outlive its leader (a grandchild); kill(-pgid) reaches what is left.
  if (kill(-id.pid, sig) != 0 && errno != ESRCH) {
    spdlog::warn("kill(-{}, {}): {}", id.pid, sig, std::strerror(errno));
  }
  if (sig != SIGKILL) return;
  // And whatever left the group (setsid) but not the cgroup.
  std::string cgroup;
  {
    absl::MutexLock l(&mu_);
    if (auto it = cgroup_of_.find(id.pid); it != cgroup_of_.end()) cgroup = it->second;
  }
  if (!cgroup.empty()) AgentCgroups::Kill(cgroup);
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
      // Looked at, not reaped yet: while the leader is a zombie its pid (and so its group
      // id) cannot be reused, so what is left of its group can be killed safely.
      if (waitid(static_cast<idtype_t>(P_PIDFD), fd, &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
          info.si_pid == 0) {
        continue;  // not exited yet (spurious wake-up)
      }
      std::string cgroup;
      {
        absl::MutexLock l(&mu_);
        if (auto it = cgroup_of_.find(info.si_pid); it != cgroup_of_.end()) cgroup = it->second;
      }
      kill(-info.si_pid, SIGKILL);
      if (!cgroup.empty()) AgentCgroups::Kill(cgroup);
      {
        absl::MutexLock l(&mu_);
        reaped_.insert(info.si_pid);
      }
      siginfo_t reaped{};
      waitid(static_cast<idtype_t>(P_PIDFD), fd, &reaped, WEXITED | WNOHANG);
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
