// Test support: temporary directories, child processes, and polling with a deadline.
//
// Tests start the real binaries (agentd, agentctl, buf) as child processes and wait for
// observable conditions with WaitFor(), never with sleeps.
#ifndef AGENTD_TESTS_SUPPORT_PROCESS_H_
#define AGENTD_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <cstdint>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace agentd::testing {

// A fresh directory under /tmp (short, so unix socket paths fit), removed with its
// contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `cond` every few milliseconds until it holds (true) or `timeout` passes (false).
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout);

std::string ReadFileOrEmpty(const std::string& path);

// Whether process `pid` is gone: no such process, or a zombie waiting for its parent.
bool ProcessGone(int64_t pid);
void WriteFile(const std::string& path, const std::string& contents);

// A child process with stdout and stderr sent to files. Killed (SIGKILL) and reaped on
// destruction if still running.
class Subprocess {
 public:
  // `env` entries ("NAME=value") are added to (or replace in) this process's environment;
  // names listed in `unset_env` are removed.
  Subprocess(const std::vector<std::string>& argv, const std::string& stdout_file,
             const std::string& stderr_file, const std::vector<std::string>& env = {},
             const std::vector<std::string>& unset_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // The wait status once it has exited within `timeout`; nullopt if still running.
  std::optional<int> WaitExit(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out, err;
};

// Runs a command to completion (killed after `timeout`), capturing stdout and stderr.
RunResult RunCommand(const std::vector<std::string>& argv,
                     absl::Duration timeout = absl::Seconds(30),
                     const std::vector<std::string>& env = {});

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_SUPPORT_PROCESS_H_
