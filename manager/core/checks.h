// CheckRunner: runs a goal's checks — its done-criteria, commands a person gave with the
// goal (`agentctl goal --check "pytest -q"`) — off the core loop.
//
// A check runs with `sh -c` in the goal's workspace under the same sandbox as the agents'
// shell.run (tools::RunProgram: the system read-only, the workspace writable but its .git
// read-only, no network, its own pid namespace, no capabilities), with a minimal
// environment and policy.check_timeout; never unconfined unless policy.shell.sandbox is
// "off" ("auto" means "required" here: the programs are the agents' and run as agentd).
// agentd runs them itself rather than asking an
// agent, so that a model cannot report a check as passed: the outcome is the exit code.
// Every check of a round runs, in order, so the goal's agent sees every failure at once.
//
// Thread-safety: Run() and Cancel() may be called from any thread; each round runs on a
// thread of its own, and `done` is posted to the loop given at construction. The
// destructor cancels every round still running and waits for its thread.
#ifndef AGENTD_MANAGER_CORE_CHECKS_H_
#define AGENTD_MANAGER_CORE_CHECKS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentd/v1/tasks.pb.h"
#include "manager/core/event_loop.h"

namespace agentd {

class CheckRunner {
 public:
  struct Options {
    std::string sandbox = "auto";  // policy.shell.sandbox: auto | required | off
    absl::Duration timeout = absl::Minutes(10);
    std::string bwrap = "bwrap";
    // Why the sandbox does not work here (tools::ProbeSandbox at agentd's start); empty
    // when it works. Checks then do not run (unless the policy is "off").
    std::string sandbox_broken;
  };
  // The round's checks with passed, exit_code, output and run_time set, in the order given.
  using Done = std::function<void(std::vector<v1::GoalCheck>)>;

  // `loop` is not owned and must outlive the runner.
  CheckRunner(EventLoop* loop, Options options);
  ~CheckRunner();
  CheckRunner(const CheckRunner&) = delete;
  CheckRunner& operator=(const CheckRunner&) = delete;

  void SetOptions(Options options);

  // Runs `checks` (their commands) in `workspace` for `key` (a goal id); `done` runs on
  // the loop when all have run, unless Cancel(key) came first. A round already running
  // for `key` is canceled first.
  void Run(const std::string& key, const std::string& workspace, std::vector<v1::GoalCheck> checks,
           Done done);
  // Stops `key`'s round (its programs are killed) and drops its `done`.
  void Cancel(const std::string& key);

 private:
  struct Round;
  EventLoop* loop_;
  absl::Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Round>> rounds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::shared_ptr<Round>, std::thread>> threads_ ABSL_GUARDED_BY(mu_);
};

// What the goal's agent is told when a round failed: each failed check with its exit code
// and the end of its output, and what to do.
std::string ChecksFailedText(const std::vector<v1::GoalCheck>& checks, int round, int max_rounds);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_CHECKS_H_
