#include "manager/core/handbacks.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace agentd {

absl::Duration ProviderBackoff(const PolicyConfig& policy, int retry) {
  return std::min(policy.provider_backoff * std::ldexp(1.0, std::clamp(retry - 1, 0, 30)),
                  policy.provider_max_backoff);
}

FailedAttempt OnAttemptFailed(const v1::Task& t, const v1::TaskFailed& f, const std::string& agent,
                              const PolicyConfig& policy) {
  FailedAttempt out;
  v1::TaskFailureCode code = f.code() == v1::TASK_FAILURE_CODE_UNSPECIFIED
                                 ? v1::TASK_FAILURE_CODE_AGENT_REPORTED
                                 : f.code();
  if (code == v1::TASK_FAILURE_CODE_PROVIDER_ERROR &&
      t.provider_retries() < policy.provider_retries) {
    // The agent's own retries are spent: agentd waits, then hands the same attempt back,
    // so the session goes on and nothing it did is done again.
    out.next = FailedAttempt::Next::kProviderBackoff;
    out.provider_retry = t.provider_retries() + 1;
    out.wait = ProviderBackoff(policy, out.provider_retry);
    out.blocked_detail =
        absl::StrCat(f.reason(), "; agentd tries again in ", absl::FormatDuration(out.wait),
                     " (retry ", out.provider_retry, " of ", policy.provider_retries, ")");
    return out;
  }
  if (code == v1::TASK_FAILURE_CODE_BUDGET_EXCEEDED && policy.budget_on_exhausted == "pause") {
    out.next = FailedAttempt::Next::kHoldAtBudget;
    out.blocked_detail =
        absl::StrCat("BUDGET_REACHED: ", f.reason(), " (raise it: agentctl budget set ",
                     t.goal_id(), " --usd N or --tokens N)");
    return out;
  }
  bool retry = (f.retryable() || !t.plan_id().empty()) &&
               code != v1::TASK_FAILURE_CODE_PROVIDER_ERROR &&
               code != v1::TASK_FAILURE_CODE_BUDGET_EXCEEDED;
  if (retry && t.attempts() < t.max_attempts()) {
    out.next = FailedAttempt::Next::kRetry;
    return out;
  }
  out.next = FailedAttempt::Next::kFail;
  out.failure.set_code(code);
  out.failure.set_message(f.reason());
  out.failure.set_by(agent);
  out.fail_goal = code == v1::TASK_FAILURE_CODE_BUDGET_EXCEEDED && t.id() != t.goal_id();
  return out;
}

ChecksRound OnChecksRun(const v1::Task& goal, const std::vector<v1::GoalCheck>& results) {
  ChecksRound out;
  out.check_rounds = goal.check_rounds();
  for (const v1::GoalCheck& c : results) {
    out.failed += c.passed() ? 0 : 1;
    out.audit_details[absl::StrCat("check: ", c.command())] =
        c.passed() ? "passed" : absl::StrCat("failed (exit ", c.exit_code(), ")");
  }
  out.failure.set_code(v1::TASK_FAILURE_CODE_CHECKS_FAILED);
  out.failure.set_by("daemon");
  for (const v1::GoalCheck& c : results) {
    if (!c.not_run()) continue;
    // Nothing the agent changes in the workspace can fix this: the goal fails, saying why.
    out.next = ChecksRound::Next::kFail;
    out.failure.set_message(absl::StrCat("check `", c.command(), "` could not run: ", c.output()));
    return out;
  }
  if (out.failed == 0) {
    out.next = ChecksRound::Next::kComplete;
    out.failure.Clear();
    return out;
  }
  out.check_rounds = goal.check_rounds() + 1;
  if (out.check_rounds > goal.max_check_rounds()) {
    std::vector<std::string> names;
    for (const v1::GoalCheck& c : results) {
      if (!c.passed()) names.push_back(absl::StrCat("`", c.command(), "`"));
    }
    out.next = ChecksRound::Next::kFail;
    out.failure.set_message(absl::StrCat(absl::StrJoin(names, ", "), " still failed after ",
                                         goal.max_check_rounds(), " round(s) of fixes"));
    return out;
  }
  out.next = ChecksRound::Next::kHandBack;
  out.failure.Clear();
  return out;
}

}  // namespace agentd
