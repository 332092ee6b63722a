// What agentd does when an attempt stops short of completing, as pure functions of the
// task, what happened and the policy: whether a failed attempt waits out its provider,
// is held at its goal's budget, is tried again or fails (and with it the goal); and what a
// round of a goal's checks leads to. TaskBoard carries the decisions out (status, timers,
// hand-backs); the rules live here, unit-tested without processes.
//
// The rules:
//  - PROVIDER_ERROR (the agent's own retries spent): blocked, and handed back in the same
//    attempt after ProviderBackoff, up to policy.provider_retry.max waits in a row; then
//    it fails.
//  - BUDGET_EXCEEDED under policy.budget.on_exhausted: pause: held where it stopped until
//    a budget changes. Under fail it fails, and so does its goal.
//  - Anything else: tried again in a new attempt when the agent says another may succeed,
//    or the task is a plan's step (a flaky test, a bad turn), while attempts remain;
//    otherwise it fails.
//  - Checks: one that could not run fails the goal (nothing the agent changes fixes it);
//    all passed completes it; some failed hands it back to its agent in the same attempt,
//    until max_check_rounds rounds of fixes have failed, and then it fails.
//
// Thread-safety: pure functions; safe from any thread.
#ifndef AGENTD_MANAGER_CORE_HANDBACKS_H_
#define AGENTD_MANAGER_CORE_HANDBACKS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agentd/v1/agent_host.pb.h"
#include "agentd/v1/tasks.pb.h"
#include "common/config.h"

namespace agentd {

// The wait before provider retry `retry` (1, 2, …): provider_backoff doubling each time,
// at most provider_max_backoff.
absl::Duration ProviderBackoff(const PolicyConfig& policy, int retry);

struct FailedAttempt {
  enum class Next {
    kProviderBackoff,  // blocked (BLOCK_REASON_PROVIDER), handed back after `wait`
    kHoldAtBudget,     // blocked (BLOCK_REASON_BUDGET) until a budget changes
    kRetry,            // ready again, for a new attempt
    kFail,             // failed with `failure`, its subtree with it
  };
  Next next = Next::kFail;
  absl::Duration wait;         // kProviderBackoff
  int provider_retry = 0;      // kProviderBackoff: which wait in a row this is (1, 2, …)
  std::string blocked_detail;  // kProviderBackoff, kHoldAtBudget
  v1::TaskFailure failure;     // kFail
  bool fail_goal = false;      // kFail: the goal's money is gone; nothing under it goes on
};

// What follows `t`'s attempt failing with `f`, as `agent` reported it.
FailedAttempt OnAttemptFailed(const v1::Task& t, const v1::TaskFailed& f, const std::string& agent,
                              const PolicyConfig& policy);

struct ChecksRound {
  enum class Next {
    kComplete,  // every check passed
    kHandBack,  // some failed: back to the goal's agent, same attempt
    kFail,      // failed with `failure`
  };
  Next next = Next::kFail;
  int check_rounds = 0;  // the goal's failed rounds after this one
  int failed = 0;        // checks that failed in this round
  v1::TaskFailure failure;
  // For the round's audit entry: "check: <command>" → "passed" | "failed (exit N)".
  std::map<std::string, std::string> audit_details;
};

// What a round of `goal`'s checks with `results` leads to (goal.check_rounds() and
// max_check_rounds() as before the round).
ChecksRound OnChecksRun(const v1::Task& goal, const std::vector<v1::GoalCheck>& results);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_HANDBACKS_H_
