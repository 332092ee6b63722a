#include "manager/core/launcher.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
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
  for (auto& [fd, report] : init_reports_) close(report);
  close(epoll_fd_);
  close(wake_fd_);
}

namespace {

// What the child reports through the status pipe when a step before exec fails.
// agentd-init writes the same three ints when its program's exec fails
// (manager/init/agentd_init.cc): keep the two in step.
struct ChildFailure {
  int step;  // kStep*
  int err;   // errno
  int resource;
};
constexpr int kStepChdir = 1, kStepLimit = 2, kStepExec = 3, kStepFds = 4, kStepIsolate = 5;

// What the child does to isolate itself, worked out before the clone (nothing in the child
// may allocate): for a failure, `op` and `index` say which step and which path.
struct PreparedIsolation {
  enum Op { kMaps = 1, kSlave, kOpen, kTmpfs, kMkdir, kBind, kMask, kReadOnly, kProc };
  std::string uid_map, gid_map;  // "inside outside 1"
  std::vector<std::string> hide;
  struct Expose {
    std::string path;
    std::vector<std::string> mkdirs;  // inside its hidden directory, parents first
    bool read_only = false;
  };
  std::vector<Expose> expose;
  std::vector<std::string> mask;
  bool own_pids = false;
  bool root = false;  // agentd runs as uid 0 (in the child, before the map, it is 65534)

  std::string Describe(int op, int index) const {
    auto at = [](const std::vector<std::string>& v, int i) {
      return i >= 0 && i < static_cast<int>(v.size()) ? v[i] : std::string("?");
    };
    auto exposed = [this](int i) {
      return i >= 0 && i < static_cast<int>(expose.size()) ? expose[i].path : std::string("?");
    };
    switch (op) {
      case kMaps:
        return "write the user namespace's uid/gid map";
      case kSlave:
        return "make / a slave mount";
      case kOpen:
        return absl::StrCat("open ", exposed(index));
      case kTmpfs:
        return absl::StrCat("mount a tmpfs on ", at(hide, index));
      case kMkdir:
        return absl::StrCat("make a mount point for ", exposed(index));
      case kBind:
        return absl::StrCat("bind ", exposed(index));
      case kMask:
        return absl::StrCat("cover ", at(mask, index));
      case kReadOnly:
        return absl::StrCat("make the tmpfs on ", at(hide, index), " read-only");
      case kProc:
        return "mount /proc for the PID namespace";
      default:
        return "set up namespaces";
    }
  }
};

// Canonical, minimal: directories under another hidden one are left out; exposures
// outside every hidden directory need nothing.
PreparedIsolation PrepareIsolation(const LaunchSpec::Isolation& in) {
  PreparedIsolation p;
  uid_t uid = geteuid();
  gid_t gid = getegid();
  // Inside, uid 0 would get every capability of the namespace back at exec (and could
  // unmount what hides the state); any other uid execs with none.
  p.uid_map = absl::StrCat(uid == 0 ? 1 : uid, " ", uid, " 1");
  p.gid_map = absl::StrCat(gid == 0 ? 1 : gid, " ", gid, " 1");
  p.own_pids = in.own_pids;
  p.root = uid == 0;
  auto under = [](const std::string& path, const std::string& dir) {
    return path == dir || (absl::StartsWith(path, dir) && path.size() > dir.size() &&
                           (dir == "/" || path[dir.size()] == '/'));
  };
  std::vector<std::string> hide = in.hide;
  struct stat st;
  if (stat("/sys/fs/cgroup", &st) == 0 && S_ISDIR(st.st_mode)) hide.push_back("/sys/fs/cgroup");
  for (const std::string& h : hide) {
    // Covering / would hide everything, and no path is "inside" it the way the mount
    // points below are worked out.
    if (h.empty() || h == "/" || h[0] != '/') continue;
    bool covered = false;
    for (const std::string& other : hide) {
      if (other != h && other != "/" && under(h, other)) covered = true;
    }
    if (!covered && std::find(p.hide.begin(), p.hide.end(), h) == p.hide.end()) {
      p.hide.push_back(h);
    }
  }
  std::vector<std::pair<std::string, bool>> exposures;
  for (const std::string& e : in.expose) exposures.emplace_back(e, false);
  for (const std::string& e : in.expose_read_only) exposures.emplace_back(e, true);
  for (const auto& [e, read_only] : exposures) {
    for (const std::string& h : p.hide) {
      if (e == h || !under(e, h)) continue;
      PreparedIsolation::Expose x{e, {}, read_only};
      std::string dir = h;
      for (absl::string_view part : absl::StrSplit(e.substr(h.size() + 1), '/')) {
        absl::StrAppend(&dir, "/", part);
        x.mkdirs.push_back(dir);
      }
      p.expose.push_back(std::move(x));
      break;
    }
  }
  // A file under a hidden directory is hidden already (and its mount point is gone).
  for (const std::string& m : in.mask) {
    bool hidden = false;
    for (const std::string& h : p.hide) hidden = hidden || under(m, h);
    if (!hidden) p.mask.push_back(m);
  }
  return p;
}

// Writes `text` to `path` with one write(2), as /proc's map files require.
bool WriteProcFile(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// Child side of the isolation, in the new user, mount (and PID) namespaces the clone made:
// only system calls. On failure returns false with errno set and *op, *index saying where.
bool IsolateChild(const PreparedIsolation& p, int* op, int* index) {
  *index = -1;
  *op = PreparedIsolation::kMaps;
  // The child inherits agentd's PR_SET_DUMPABLE(0), which gives its /proc files to root:
  // a daemon that is not root could not open its own uid_map. It is dumpable for the three
  // writes below and not again until exec (where the agent makes itself non-dumpable at
  // once). Who could use that window: only processes of agentd's uid in the initial user
  // namespace, i.e. the daemon user's own (its person, or agents run unisolated, which can
  // read the state dir anyway). Meanwhile the child holds every capability of its new
  // user namespace, so the kernel refuses its /proc entries (mem, environ, fd, root) to
  // every process in another user namespace: isolated agents, command agents included.
  bool toggle_dumpable = !p.root;
  if (toggle_dumpable) prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
  // setgroups must be denied before an unprivileged gid_map; ENOENT: a kernel before 3.19.
  bool mapped = (WriteProcFile("/proc/self/setgroups", "deny") || errno == ENOENT) &&
                WriteProcFile("/proc/self/gid_map", p.gid_map) &&
                WriteProcFile("/proc/self/uid_map", p.uid_map);
  int map_errno = errno;
  if (toggle_dumpable) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (!mapped) {
    errno = map_errno;
    return false;
  }
  *op = PreparedIsolation::kSlave;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) return false;
  // The exposed directories are opened before anything covers them, and bound back from
  // those descriptors (/proc/self/fd/N) once their hidden parent is covered.
  constexpr int kMaxExposed = 16;
  int fds[kMaxExposed];
  int n = static_cast<int>(p.expose.size());
  if (n > kMaxExposed) n = kMaxExposed;
  for (int i = 0; i < n; ++i) {
    *op = PreparedIsolation::kOpen;
    *index = i;
    fds[i] = open(p.expose[i].path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fds[i] < 0) return false;
  }
  for (int i = 0; i < static_cast<int>(p.hide.size()); ++i) {
    *op = PreparedIsolation::kTmpfs;
    *index = i;
    if (mount("tmpfs", p.hide[i].c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k") != 0) {
      return false;
    }
  }
  for (int i = 0; i < n; ++i) {
    *index = i;
    *op = PreparedIsolation::kMkdir;
    for (const std::string& d : p.expose[i].mkdirs) {
      if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
    // "/proc/self/fd/" and the number, without allocating.
    char source[32] = "/proc/self/fd/";
    char digits[12];
    int len = 0;
    for (int v = fds[i]; len == 0 || v > 0; v /= 10)
      digits[len++] = static_cast<char>('0' + v % 10);
    char* out = source + 14;
    while (len > 0) *out++ = digits[--len];
    *out = 0;
    *op = PreparedIsolation::kBind;
    if (mount(source, p.expose[i].path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return false;
    }
    close(fds[i]);
    if (p.expose[i].read_only) {
      // A remount must keep the flags the kernel locked on the source mount (nosuid,
      // nodev, noexec, atime), which statfs(2) reports as ST_* bits.
      struct statfs fs;
      if (statfs(p.expose[i].path.c_str(), &fs) != 0) return false;
      const unsigned long f = static_cast<unsigned long>(fs.f_flags);
      unsigned long keep = ((f & ST_NOSUID) ? MS_NOSUID : 0) | ((f & ST_NODEV) ? MS_NODEV : 0) |
                           ((f & ST_NOEXEC) ? MS_NOEXEC : 0) | ((f & ST_NOATIME) ? MS_NOATIME : 0) |
                           ((f & ST_NODIRATIME) ? MS_NODIRATIME : 0) |
                           ((f & ST_RELATIME) ? MS_RELATIME : 0);
      if (mount(nullptr, p.expose[i].path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | keep,
                nullptr) != 0) {
        return false;
      }
    }
  }
  for (int i = 0; i < static_cast<int>(p.hide.size()); ++i) {
    *op = PreparedIsolation::kReadOnly;
    *index = i;
    if (mount(nullptr, p.hide[i].c_str(), nullptr,
              MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      return false;
    }
  }
  for (int i = 0; i < static_cast<int>(p.mask.size()); ++i) {
    *op = PreparedIsolation::kMask;
    *index = i;
    if (mount("/dev/null", p.mask[i].c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
  }
  if (p.own_pids) {
    *op = PreparedIsolation::kProc;
    *index = -1;
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      return false;
    }
  }
  return true;
}

uint64_t IsolationCloneFlags(const LaunchSpec::Isolation& isolation) {
  if (!isolation.enabled) return 0;
  return CLONE_NEWUSER | CLONE_NEWNS | (isolation.own_pids ? CLONE_NEWPID : 0);
}

// Between clone and exec: only system calls (the parent's other threads are gone, their
// locks may be held), nothing that allocates.
[[noreturn]] void ChildExec(const LaunchSpec& spec, const PreparedIsolation* isolation,
                            const char* program, char* const* argv, char* const* envp, int devnull,
                            const int* secrets, int n_secrets, int status, int init_report) {
  auto fail = [status](int step, int resource) {
    ChildFailure f{step, errno, resource};
    (void)!write(status, &f, sizeof(f));
    _exit(127);
  };
  if (isolation != nullptr) {
    int op = 0, index = 0;
    if (!IsolateChild(*isolation, &op, &index)) fail(kStepIsolate, op * 1000 + index + 1);
  }
  // The daemon blocks signals and ignores SIGPIPE; an agent starts with neither. A
  // namespace's PID 1 discards a signal it has no handler for, so one sent before it has
  // set itself up (a stop right after a start: its loader and static initialisers take
  // a while, under the sanitizers most of a second) would be lost, and the stop would
  // wait out stop_timeout for the SIGKILL. So under agentd-init every signal stays
  // blocked across its exec (it unblocks them for its program), and a program that is
  // PID 1 itself keeps SIGTERM and SIGINT blocked, pending, until it waits for them.
  sigset_t mask;
  if (init_report >= 0) {
    sigfillset(&mask);
  } else {
    sigemptyset(&mask);
    if (isolation != nullptr && isolation->own_pids) {
      sigaddset(&mask, SIGTERM);
      sigaddset(&mask, SIGINT);
    }
  }
  sigprocmask(SIG_SETMASK, &mask, nullptr);
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
  // Under agentd-init, its report pipe and the status pipe follow the secrets: the init
  // keeps the first, and hands the second (close-on-exec) to its program, whose exec
  // closes it, or whose failed exec is written to it.
  int open_fds = 3 + n_secrets;
  if (init_report >= 0) {
    if (dup2(init_report, open_fds) < 0 || dup2(status, open_fds + 1) < 0) fail(kStepFds, 0);
    open_fds += 2;
  }
  // Everything else closes at exec: no daemon socket, database or lock leaks in (the
  // status pipe stays open until then).
  syscall(SYS_close_range, open_fds, ~0U, CLOSE_RANGE_CLOEXEC);
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

// The secrets' descriptors are 3 … 3 + kMaxSecrets - 1 in the child, and agentd-init's two
// pipes the next two; every descriptor the child dup2s from must lie above them, or a
// dup2 would overwrite a source not yet copied.
constexpr int kMaxSecrets = 8;
constexpr int kFirstFreeFd = 3 + kMaxSecrets + 2;

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
  // Under agentd-init: `agentd-init REPORT_FD STATUS_FD PROGRAM ARGV…`, its two pipes on
  // the descriptors after the secrets.
  const bool under_init =
      spec.isolation.enabled && spec.isolation.own_pids && !spec.isolation.init.empty();
  std::vector<std::string> init_args;
  if (under_init) {
    init_args = {spec.isolation.init, absl::StrCat(3 + spec.inherited_secrets.size()),
                 absl::StrCat(4 + spec.inherited_secrets.size()), program};
    program = spec.isolation.init;
  }
  std::vector<char*> argv, envp;
  for (const auto& a : init_args) argv.push_back(const_cast<char*>(a.c_str()));
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
  // Under agentd-init, the pipe on which it reports the program's wait status.
  int report[2] = {-1, -1};
  if (under_init) {
    if (pipe2(report, O_CLOEXEC | O_NONBLOCK) != 0) {
      close(status[1]);
      close_all();
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    report[1] = MoveAboveSecrets(report[1]);
  }
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
  std::optional<PreparedIsolation> isolation;
  if (spec.isolation.enabled) isolation = PrepareIsolation(spec.isolation);
  int pidfd = -1;
  clone_args args{};
  args.flags =
      CLONE_PIDFD | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0) | IsolationCloneFlags(spec.isolation);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cgroup_fd >= 0 ? cgroup_fd : 0);
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0)
    ChildExec(spec, isolation ? &*isolation : nullptr, program.c_str(), argv.data(), envp.data(),
              devnull, secrets.data(), static_cast<int>(secrets.size()), status[1], report[1]);
  int clone_err = errno;
  close(status[1]);
  if (report[1] >= 0) close(report[1]);
  if (pid < 0) {
    close_all();
    if (report[0] >= 0) close(report[0]);
    if (spec.isolation.enabled) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot start ", name,
                       " isolated: new user and mount namespaces: ", std::strerror(clone_err)));
    }
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
    if (report[0] >= 0) close(report[0]);
    std::string why = std::strerror(f.err);
    switch (f.step) {
      case kStepChdir:
        return absl::FailedPreconditionError(
            absl::StrCat("cannot start ", name, ": working directory ", spec.cwd, ": ", why));
      case kStepLimit:
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot start ", name, ": resource limit ", RlimitName(f.resource), ": ", why));
      case kStepIsolate:
        return absl::FailedPreconditionError(
            absl::StrCat("cannot start ", name, " isolated: ",
                         isolation->Describe(f.resource / 1000, f.resource % 1000 - 1), ": ", why));
      default:
        return absl::FailedPreconditionError(absl::StrCat("cannot start ", name, ": ", why));
    }
  }
  ProcessId id{static_cast<pid_t>(pid), StartTicks(static_cast<pid_t>(pid))};
  {
    absl::MutexLock l(&mu_);
    pidfds_[pidfd] = id;
    if (report[0] >= 0) init_reports_[pidfd] = report[0];
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

absl::Status LocalLauncher::ProbeIsolation(const LaunchSpec::Isolation& spec) {
  if (!spec.enabled) return absl::OkStatus();
  return TryIsolated(spec, {}, {});
}

absl::Status LocalLauncher::TryIsolated(const LaunchSpec::Isolation& spec,
                                        const std::vector<std::string>& program,
                                        const std::vector<std::string>& env) {
  if (!program.empty() && (program[0].empty() || program[0][0] != '/')) {
    return absl::InvalidArgumentError("the program must be an absolute path");
  }
  // Everything the child needs, made before clone: after it, only system calls.
  std::vector<char*> argv, envp;
  for (const std::string& a : program) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int devnull = -1;
  if (!program.empty()) {
    devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) return absl::InternalError(absl::StrCat("/dev/null: ", std::strerror(errno)));
  }
  PreparedIsolation isolation = PrepareIsolation(spec);
  int status[2];
  if (pipe2(status, O_CLOEXEC) != 0) {
    int err = errno;
    if (devnull >= 0) close(devnull);
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(err)));
  }
  int pidfd = -1;
  clone_args args{};
  args.flags = CLONE_PIDFD | IsolationCloneFlags(spec);
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  long pid = syscall(SYS_clone3, &args, sizeof(args));
  if (pid == 0) {
    int op = 0, index = 0;
    if (spec.enabled && !IsolateChild(isolation, &op, &index)) {
      ChildFailure f{kStepIsolate, errno, op * 1000 + index + 1};
      (void)!write(status[1], &f, sizeof(f));
      _exit(1);
    }
    if (program.empty()) _exit(0);
    // Signals as a started program has them: default dispositions, none blocked.
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(devnull, STDIN_FILENO) < 0 || dup2(devnull, STDOUT_FILENO) < 0 ||
        dup2(devnull, STDERR_FILENO) < 0) {
      ChildFailure f{kStepFds, errno, 0};
      (void)!write(status[1], &f, sizeof(f));
      _exit(1);
    }
    // The status pipe stays open until the exec succeeds; every other descriptor of
    // agentd's goes at exec.
    syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    execve(argv[0], argv.data(), envp.data());
    ChildFailure f{kStepExec, errno, 0};
    (void)!write(status[1], &f, sizeof(f));
    _exit(127);
  }
  int clone_err = errno;
  if (devnull >= 0) close(devnull);
  close(status[1]);
  if (pid < 0) {
    close(status[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("new user and mount namespaces: ", std::strerror(clone_err)));
  }
  // A trial that hangs, in its set-up or its program, is ended after 10 s (it is PID 1 of
  // its namespace when it has one: what it started goes with it).
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto wait_readable = [&](int fd) {
    pollfd p{fd, POLLIN, 0};
    for (;;) {
      int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
      int ready = poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 0)));
      if (ready > 0) return true;
      if (ready == 0 || (ready < 0 && errno != EINTR)) return false;
    }
  };
  bool timed_out = !wait_readable(status[0]);
  ChildFailure f{};
  ssize_t n = 0;
  if (!timed_out) {
    do {
      n = read(status[0], &f, sizeof(f));
    } while (n < 0 && errno == EINTR);
  }
  close(status[0]);
  if (!timed_out && n != static_cast<ssize_t>(sizeof(f)) && !program.empty()) {
    timed_out = !wait_readable(pidfd);
  }
  if (timed_out) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  siginfo_t info{};
  waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED);
  close(pidfd);
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        program.empty() ? "the trial child" : program[0], " did not exit within 10 s"));
  }
  if (n == static_cast<ssize_t>(sizeof(f))) {
    if (f.step == kStepExec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot execute ", program[0], ": ", std::strerror(f.err)));
    }
    if (f.step == kStepFds) {
      return absl::FailedPreconditionError(
          absl::StrCat("standard descriptors: ", std::strerror(f.err)));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        isolation.Describe(f.resource / 1000, f.resource % 1000 - 1), ": ", std::strerror(f.err)));
  }
  if (program.empty()) {
    if (info.si_code != CLD_EXITED || info.si_status != 0) {
      return absl::FailedPreconditionError("the trial child did not finish its set-up");
    }
    return absl::OkStatus();
  }
  if (info.si_code != CLD_EXITED) {
    return absl::FailedPreconditionError(
        absl::StrCat(program[0], " was killed by signal ", info.si_status));
  }
  if (info.si_status != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(program[0], " exited with code ", info.si_status));
  }
  return absl::OkStatus();
}

void LocalLauncher::SignalGroup(ProcessId id, int sig) {
  // kill(-0) is agentd's own group and kill(-1) every process it may signal: never.
  if (id.pid <= 1) {
    spdlog::error("refusing to signal process group {} (no such agent process)", id.pid);
    return;
  }
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
      int report = -1;
      {
        absl::MutexLock l(&mu_);
        id = pidfds_[fd];
        pidfds_.erase(fd);
        if (auto it = init_reports_.find(fd); it != init_reports_.end()) {
          report = it->second;
          init_reports_.erase(it);
        }
      }
      if (report >= 0) {
        // The program's own exit, as its init saw it (nothing there when the init itself
        // was killed: then the init's status is the agent's).
        int status = 0;
        if (info.si_code == CLD_EXITED &&
            read(report, &status, sizeof(status)) == static_cast<ssize_t>(sizeof(status))) {
          st.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : ExitStatus{}.exit_code;
          st.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        }
        close(report);
      }
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
      close(fd);
      on_exit_(id, st);
    }
  }
}

}  // namespace agentd
