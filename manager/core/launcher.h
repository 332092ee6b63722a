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
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace agentd {

struct LaunchSpec {
  std::vector<std::string> argv;  // argv[0] is the program (a path, or looked up in PATH)
  std::vector<std::string> env;   // the whole environment, "NAME=value"
  std::string cwd;                // empty: the daemon's
  // When set, readable by the child on file descriptor 3 (a pipe holding exactly these
  // bytes), so secrets such as the agent's token never appear in argv or the environment.
  std::string fd3_contents;
  // When set (>= 0), the child's stdout and stderr (the write ends of the log store's
  // pipes); otherwise the daemon's. The caller keeps ownership and closes them after Start.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Resource limits. posix_spawn cannot set them, so they are applied with prlimit(2)
  // the moment the process exists: they bind from its first microseconds on. One that
  // cannot be set fails the start (the process is killed).
  struct Limit {
    int resource;  // RLIMIT_*
    uint64_t soft, hard;
  };
  std::vector<Limit> rlimits;
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
  // Sends `sig` to the process's whole process group (it leads its own).
  virtual void SignalGroup(ProcessId id, int sig) = 0;
};

// Local processes: posix_spawn, each in a process group of its own, stdin from
// /dev/null, every descriptor above stderr closed; exits observed through pidfds on an
// epoll thread (never a blocking waitpid on a thread that matters).
class LocalLauncher final : public Launcher {
 public:
  explicit LocalLauncher(ExitCallback on_exit);
  ~LocalLauncher() override;
  absl::StatusOr<ProcessId> Start(const LaunchSpec& spec) override;
  void SignalGroup(ProcessId id, int sig) override;

  // pidfd_open(2): a descriptor that becomes readable when `pid` exits; -1 on error.
  // (Called through syscall(2): glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.)
  static int PidfdOpen(pid_t pid);

  // The start time of `pid` now (0 when it does not exist): compare with a recorded
  // ProcessId to tell whether that process still lives.
  static uint64_t StartTicks(pid_t pid);

 private:
  void Run();

  ExitCallback on_exit_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: stop
  absl::Mutex mu_;
  std::map<int, ProcessId> pidfds_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_LAUNCHER_H_
