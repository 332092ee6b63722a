// Launcher: how agent processes are started, signalled and observed — the seam between
// the supervisor and the machine. LocalLauncher runs them as local processes; a cluster
// backend (a Pod per agent) would implement the same interface.
//
// Start() returns once the process exists. Its exit is reported exactly once through
// the ExitCallback given at construction, from the launcher's own thread; the receiver
// must not block (the supervisor posts it to the core loop).
#ifndef AGENTD_MANAGER_CORE_LAUNCHER_H_
#define AGENTD_MANAGER_CORE_LAUNCHER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "manager/core/cgroups.h"

namespace agentd {

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is the program (a path, or looked up in PATH)
  std::vector<std::string> env;   // the whole environment, "NAME=value"
  std::string cwd;                // empty: the daemon's
  // Secrets for the child, one inherited descriptor each: inherited_secrets[i] is readable
  // on file descriptor 3 + i (a pipe holding exactly those bytes, then EOF), so secrets
  // such as the agent's token and its provider's key never appear in argv or the
  // environment (/proc/<pid>/environ, ps e). At most 4 KiB each, at most 8 of them.
  std::vector<std::string> inherited_secrets;
  // When set (>= 0), the child's stdout and stderr (the write ends of the log store's
  // pipes); otherwise the daemon's. The caller keeps ownership and closes them after Start.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Resource limits, set in the child before exec. One that cannot be set fails the
  // start.
  struct Limit {
    int resource;  // RLIMIT_*
    uint64_t soft, hard;
  };
  std::vector<Limit> rlimits;
  // The name of the process's own cgroup (the agent id), when the launcher has cgroups.
  std::string cgroup;

  // A private view of the machine for the child, set up between clone and exec: its own
  // user and mount namespaces (and, with `own_pids`, its own PID namespace and /proc).
  // Each `hide` directory is covered by an empty read-only tmpfs; each `expose` directory
  // inside one of them is bound back at its own path, read-write (`expose_read_only`:
  // read-only, e.g. the directory of a socket the agent connects to but must not replace);
  // each `mask` file outside them is covered by /dev/null; the cgroup file system is
  // covered too (its directories are the daemon's: an agent could move itself out of its
  // cgroup or kill another's). The child starts in `cwd` (set it inside an exposure, or
  // it could stay in a hidden directory). The child keeps the daemon's uid and gid on every file
  // (mapped 1:1; uid 0 shows as 1 inside, so that it execs without capabilities) and has no
  // capability outside its namespaces: it cannot undo the mounts, read a non-dumpable
  // process's /proc entries (agentd's environ), or see the hidden paths by another route
  // (/proc/<pid>/root of other processes is out of sight with `own_pids`).
  // With `own_pids` the program is PID 1 of its namespace: signals it has no handler for
  // (or does not block) are not delivered to it, orphans are its to reap, and everything
  // left in the namespace dies with it. It starts with SIGTERM and SIGINT blocked, so that
  // a stop sent while it loads stays pending: it must wait for them (sigwait, signalfd)
  // or unblock them once it handles them. With `init` as well (the path of agentd-init, for a
  // program not written to be PID 1: a role's `command`), agentd-init is PID 1 instead and
  // runs the program as its child, forwards it every signal, reaps orphans, and reports
  // the program's exit (code or signal) as the process's own. Paths must be absolute and
  // canonical.
  struct Isolation {
    bool enabled = false;
    bool own_pids = false;
    std::string init;  // with own_pids
    std::vector<std::string> hide, expose, expose_read_only, mask;
  };
  Isolation isolation;
};

struct ProcessId {
  pid_t pid = 0;
  // The kernel's start time of the process (clock ticks after boot, /proc/PID/stat field
  // 22): with the pid it names one process for good, even after the pid is reused.
  uint64_t start_ticks = 0;
};

struct ExitStatus {
  int exit_code = -1;  // set when the process exited
  int signal = 0;      // set when a signal killed it
  absl::Time time;
  bool failed() const { return signal != 0 || exit_code != 0; }
  std::string ToString() const;  // "exit code 3", "killed by SIGKILL"
};

class Launcher {
 public:
  using ExitCallback = std::function<void(ProcessId, ExitStatus)>;
  virtual ~Launcher() = default;
  // Errors name the program and the reason (not found, not executable, …).
  virtual absl::StatusOr<ProcessId> Start(const LaunchSpec& spec) = 0;
  // Sends `sig` to the process's whole process group (it leads its own). When a process
  // exits, what is left of its group is killed before its exit is reported; after that,
  // signalling it does nothing (its pid may belong to another process by then).
  virtual void SignalGroup(ProcessId id, int sig) = 0;
};

// Local processes, started with clone3 (fork semantics) and execve: each in a process
// group of its own and, with `cgroups`, born in a cgroup of its own (CLONE_INTO_CGROUP),
// which SIGKILL clears with cgroup.kill; signal mask and dispositions reset, stdin from
// /dev/null, every descriptor above stderr (and the secrets' 3, 4, …) closed, rlimits
// applied before exec.
// Exits are observed through pidfds (CLONE_PIDFD) on an epoll thread, never a blocking
// waitpid on a thread that matters. posix_spawn would be lighter, but it can neither
// start a process in a cgroup nor set its rlimits, and doing either after the fact races
// with what the process does first.
class LocalLauncher final : public Launcher {
 public:
  // `cgroups` (not owned; may be null) must outlive the launcher.
  explicit LocalLauncher(ExitCallback on_exit, AgentCgroups* cgroups = nullptr);
  ~LocalLauncher() override;
  absl::StatusOr<ProcessId> Start(const LaunchSpec& spec) override;
  void SignalGroup(ProcessId id, int sig) override;

  // pidfd_open(2): a descriptor that becomes readable when `pid` exits; -1 on error.
  // (Called through syscall(2): glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.)
  static int PidfdOpen(pid_t pid);

  // The start time of `pid` now (0 when it does not exist): compare with a recorded
  // ProcessId to tell whether that process still lives.
  static uint64_t StartTicks(pid_t pid);

  // Tries `isolation` in a short-lived child that sets it up and exits: OK when it works
  // here, else the step that failed and why ("mount tmpfs on /var/lib/agentd: Operation
  // not permitted"). User namespaces may be switched off (sysctl, AppArmor) or /proc
  // over-mounted (some containers), so it is probed, not assumed.
  static absl::Status ProbeIsolation(const LaunchSpec::Isolation& isolation);

  // Runs `argv` (argv[0] an absolute path; environment `env`; stdin, stdout and stderr on
  // /dev/null; no other descriptor) under `isolation`, as a program started with it would
  // run, and waits for it: OK when it exits 0, else what failed (the set-up step, or the
  // exit code or signal). For trials of what an isolated agent will do (its tool sandbox)
  // made once by agentd instead of by each agent. Blocks for as long as the program runs.
  static absl::Status TryIsolated(const LaunchSpec::Isolation& isolation,
                                  const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env);

 private:
  void Run();

  ExitCallback on_exit_;
  AgentCgroups* cgroups_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop
  absl::Mutex mu_;
  std::map<int, ProcessId> pidfds_ ABSL_GUARDED_BY(mu_);
  // For a process started under agentd-init (Isolation::init), by pidfd: the read
  // end of the pipe on which the init reports its program's wait status before it exits.
  std::map<int, int> init_reports_ ABSL_GUARDED_BY(mu_);
  // The cgroup of each process started, by pid; an entry goes when the next process of
  // the same cgroup starts (a SIGKILL may come after the exit, for leftovers).
  std::map<pid_t, std::string> cgroup_of_ ABSL_GUARDED_BY(mu_);
  // Processes it started and has reaped (until their pid is used again by one it starts):
  // SignalGroup sends them nothing.
  std::set<pid_t> reaped_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_LAUNCHER_H_
