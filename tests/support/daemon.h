// A real agentd for integration tests: its own temp state dir and socket, started as a
// child process, ready when GetInfo on its socket says SERVING.
#ifndef AGENTD_TESTS_SUPPORT_DAEMON_H_
#define AGENTD_TESTS_SUPPORT_DAEMON_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "tests/support/client.h"
#include "tests/support/process.h"

namespace agentd::testing {

// Paths of the binaries under test (set by CMake).
std::string AgentdBinary();
std::string AgentctlBinary();
std::string AgentBinary();  // agentd-agent
std::string BufBinary();
// A test helper program (tests/helpers/NAME.cc).
std::string HelperBinary(const std::string& name);

// The daemon a test started is checked when the Daemon is destroyed (at the end of the
// test): if it still runs it is stopped with SIGTERM, and then it must have exited 0 —
// whether it was stopped there, by Stop(), or exited by itself; a daemon the test
// killed with another signal is not held to that. Any sanitizer report written by it,
// its agents or anything else the test started fails the test, printed in full.
class Daemon {
 public:
  // Files live under `dir`: state/, run/agentd.sock, agentd.out, agentd.err.
  explicit Daemon(const TempDir& dir) : dir_(dir) {}
  ~Daemon();

  // Starts agentd with --state-dir, --socket and --http "" plus `extra_args`.
  void Spawn(const std::vector<std::string>& extra_args = {},
             const std::vector<std::string>& env = {});
  // Spawn() and wait until it serves; false (with the log in the failure) if it exits
  // or does not answer within the timeout.
  bool Start(const std::vector<std::string>& extra_args = {},
             const std::vector<std::string>& env = {});
  bool WaitReady(absl::Duration timeout = absl::Seconds(20));
  // SIGTERM and wait; returns the wait status, nullopt when it did not exit in time.
  std::optional<int> Stop(absl::Duration timeout = absl::Seconds(20));
  // For a test that means its daemon to fail: its exit status is not checked.
  void ExpectUncleanExit() { expect_unclean_exit_ = true; }

  std::shared_ptr<grpc::Channel> UnixChannel() const;
  // A client on UnixChannel() (see client.h): the admin's view.
  Client client() const { return Client(UnixChannel()); }
  std::string socket() const { return dir_.Join("run/agentd.sock"); }
  std::string state_dir() const { return dir_.Join("state"); }
  std::string log() const { return ReadFileOrEmpty(dir_.Join("agentd.err")); }
  std::string admin_token() const;
  Subprocess* process() { return process_.get(); }

 private:
  // The checks described above the class, on a process that has ended.
  void CheckExit(Subprocess& process);

  const TempDir& dir_;
  std::unique_ptr<Subprocess> process_;
  bool expect_unclean_exit_ = false;
};

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_SUPPORT_DAEMON_H_
