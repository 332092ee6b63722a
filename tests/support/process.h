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
#include "gtest/gtest.h"

namespace agentd::testing {

// The factor every timing window and every wait's deadline in the tests is multiplied by:
// AGENTD_TEST_TIME_SCALE (a positive number; 1 when unset). dev/test raises it for the
// sanitizer build, where everything runs several times slower.
double TimeScale();
// `d` multiplied by TimeScale().
absl::Duration Scaled(absl::Duration d);

// A fresh directory under /tmp (short, so unix socket paths fit). On destruction it is
// removed with its contents, unless the current test has failed: then it is kept and its
// path printed, so what the daemon and its agents left there can be read.
class TempDir {
 public:
  // `keep_on_failure` false: removed even when the test has failed (a scratch folder
  // whose contents the test has already read).
  explicit TempDir(bool keep_on_failure = true);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
  bool keep_on_failure_;
};

// Polls `cond` every few milliseconds until it holds (true) or Scaled(timeout) passes
// (false). `cond` must not use EXPECT_* or ASSERT_*: a poll that fails its first tries is
// not a failure. To see what was last seen when it times out, use WaitForValue.
bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout);

// Polls `get` until `done(value)` holds or Scaled(timeout) passes. Succeeds when it held;
// otherwise the failure message prints the last value seen. The last value is stored in
// `*last` when given. Use as ASSERT_TRUE(WaitForValue(...)) << context.
template <typename Get, typename Done>
::testing::AssertionResult WaitForValue(Get get, Done done, absl::Duration timeout,
                                        decltype(get())* last = nullptr) {
  decltype(get()) value{};
  bool held = WaitFor(
      [&] {
        value = get();
        return static_cast<bool>(done(value));
      },
      timeout);
  std::string printed = ::testing::PrintToString(value);
  if (last != nullptr) *last = std::move(value);
  if (held) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "not reached within " << absl::FormatDuration(Scaled(timeout))
         << "; the last value seen was: " << printed;
}

std::string ReadFileOrEmpty(const std::string& path);

// Whether process `pid` is gone: no such process, or a zombie waiting for its parent.
bool ProcessGone(int64_t pid);
void WriteFile(const std::string& path, const std::string& contents);

// A child process with stdout and stderr sent to files. Killed (SIGKILL) and reaped on
// destruction if still running; then any sanitizer report fails the test
// (FailOnSanitizerReports).
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
  // Sends `sig` while it runs.
  void Signal(int sig);
  // Whether Signal(sig) has sent `sig` to it.
  bool sent(int sig) const { return (sent_ & (uint64_t{1} << sig)) != 0; }
  // The wait status once it has exited within `timeout`; nullopt if still running.
  std::optional<int> WaitExit(absl::Duration timeout);

 private:
  pid_t pid_ = -1;
  uint64_t sent_ = 0;  // bit n: signal n was sent
  std::optional<int> status_;
};

// "exited with 3", "killed by signal 9 (Killed)": a wait status for failure messages.
std::string DescribeWaitStatus(const std::optional<int>& status);

struct RunResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  std::string out, err;
};

// Sanitizer reports. Every process the test support starts (and everything those start,
// agents included: agentd passes the sanitizers' variables on) writes its ASan, LSan and
// UBSan reports as files into one directory per test program, through the sanitizers'
// log_path option. TakeSanitizerReports() returns the reports written so far, each
// headed by its file name, and removes them; the test support fails the test with
// every report it finds (see Daemon and the test main).
std::vector<std::string> TakeSanitizerReports();
// The directory those reports go to (made on first use).
const std::string& SanitizerReportDir();
// Fails the current test with every report TakeSanitizerReports() returns. Called when
// a Subprocess or Daemon is destroyed, and by the test main after the last test.
void FailOnSanitizerReports();

// Runs a command to completion (killed after `timeout`), capturing stdout and stderr.
RunResult RunCommand(const std::vector<std::string>& argv,
                     absl::Duration timeout = absl::Seconds(30),
                     const std::vector<std::string>& env = {});

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_SUPPORT_PROCESS_H_
