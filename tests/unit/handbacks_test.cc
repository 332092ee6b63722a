// What follows an attempt that stopped short, and a round of a goal's checks
// (manager/core/handbacks.h): every branch, without processes.
#include "manager/core/handbacks.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;
using Next = FailedAttempt::Next;

PolicyConfig Policy() {
  PolicyConfig p;
  p.provider_retries = 3;
  p.provider_backoff = absl::Seconds(10);
  p.provider_max_backoff = absl::Seconds(25);
  p.budget_on_exhausted = "pause";
  return p;
}

v1::Task Task(int attempts = 1, int max_attempts = 3) {
  v1::Task t;
  t.set_id("t-2");
  t.set_goal_id("g-1");
  t.set_attempts(attempts);
  t.set_max_attempts(max_attempts);
  return t;
}

v1::TaskFailed Failed(v1::TaskFailureCode code, bool retryable = false) {
  v1::TaskFailed f;
  f.set_code(code);
  f.set_reason("it broke");
  f.set_retryable(retryable);
  return f;
}

TEST(HandbacksTest, ProviderBackoffDoublesUpToItsMaximum) {
  EXPECT_EQ(ProviderBackoff(Policy(), 1), absl::Seconds(10));
  EXPECT_EQ(ProviderBackoff(Policy(), 2), absl::Seconds(20));
  EXPECT_EQ(ProviderBackoff(Policy(), 3), absl::Seconds(25));
  EXPECT_EQ(ProviderBackoff(Policy(), 1000), absl::Seconds(25));
}

// A provider down past the agent's retries: the same attempt waits, each wait longer,
// until the policy's count of waits in a row is spent; then the task fails.
TEST(HandbacksTest, AProviderErrorWaitsInTheSameAttemptThenFails) {
  v1::Task t = Task();
  v1::TaskFailed f = Failed(v1::TASK_FAILURE_CODE_PROVIDER_ERROR, true);
  FailedAttempt a = OnAttemptFailed(t, f, "coder-1", Policy());
  EXPECT_EQ(a.next, Next::kProviderBackoff);
  EXPECT_EQ(a.provider_retry, 1);
  EXPECT_EQ(a.wait, absl::Seconds(10));
  EXPECT_THAT(a.blocked_detail, HasSubstr("it broke; agentd tries again in 10s (retry 1 of 3)"));
  t.set_provider_retries(2);
  a = OnAttemptFailed(t, f, "coder-1", Policy());
  EXPECT_EQ(a.provider_retry, 3);
  EXPECT_EQ(a.wait, absl::Seconds(25));
  t.set_provider_retries(3);
  a = OnAttemptFailed(t, f, "coder-1", Policy());
  EXPECT_EQ(a.next, Next::kFail) << "never a fresh attempt that starts over";
  EXPECT_EQ(a.failure.code(), v1::TASK_FAILURE_CODE_PROVIDER_ERROR);
  EXPECT_EQ(a.failure.by(), "coder-1");
}

TEST(HandbacksTest, AtItsBudgetATaskIsHeldOrItsGoalFailsAsThePolicySays) {
  v1::TaskFailed f = Failed(v1::TASK_FAILURE_CODE_BUDGET_EXCEEDED, true);
  FailedAttempt a = OnAttemptFailed(Task(), f, "coder-1", Policy());
  EXPECT_EQ(a.next, Next::kHoldAtBudget);
  EXPECT_THAT(a.blocked_detail, HasSubstr("BUDGET_REACHED: it broke (raise it: agentctl budget "
                                          "set g-1 --usd N or --tokens N)"));
  PolicyConfig fail = Policy();
  fail.budget_on_exhausted = "fail";
  a = OnAttemptFailed(Task(), f, "coder-1", fail);
  EXPECT_EQ(a.next, Next::kFail) << "not retried, retryable or not";
  EXPECT_TRUE(a.fail_goal);
  v1::Task goal = Task();
  goal.set_id("g-1");
  EXPECT_FALSE(OnAttemptFailed(goal, f, "ceo-1", fail).fail_goal) << "it is the goal";
}

TEST(HandbacksTest, OtherFailuresAreRetriedWhileAttemptsRemainWhenRetryableOrAPlanStep) {
  v1::TaskFailed retryable = Failed(v1::TASK_FAILURE_CODE_TIMEOUT, true);
  v1::TaskFailed final_one = Failed(v1::TASK_FAILURE_CODE_TIMEOUT, false);
  EXPECT_EQ(OnAttemptFailed(Task(1, 3), retryable, "a", Policy()).next, Next::kRetry);
  EXPECT_EQ(OnAttemptFailed(Task(3, 3), retryable, "a", Policy()).next, Next::kFail);
  EXPECT_EQ(OnAttemptFailed(Task(1, 3), final_one, "a", Policy()).next, Next::kFail);
  v1::Task step = Task(1, 3);
  step.set_plan_id("p-1");
  EXPECT_EQ(OnAttemptFailed(step, final_one, "a", Policy()).next, Next::kRetry);
  // No code given: the agent reported it.
  FailedAttempt a =
      OnAttemptFailed(Task(3, 3), Failed(v1::TASK_FAILURE_CODE_UNSPECIFIED), "a", Policy());
  EXPECT_EQ(a.failure.code(), v1::TASK_FAILURE_CODE_AGENT_REPORTED);
  EXPECT_EQ(a.failure.message(), "it broke");
}

v1::GoalCheck Check(const std::string& command, bool passed, bool not_run = false) {
  v1::GoalCheck c;
  c.set_command(command);
  c.set_passed(passed);
  c.set_not_run(not_run);
  c.set_exit_code(passed ? 0 : 1);
  c.set_output("no such program");
  return c;
}

TEST(HandbacksTest, ChecksCompleteHandBackOrFailTheGoal) {
  v1::Task goal = Task();
  goal.set_id("g-1");
  goal.set_max_check_rounds(2);
  ChecksRound r = OnChecksRun(goal, {Check("make", true), Check("pytest -q", true)});
  EXPECT_EQ(r.next, ChecksRound::Next::kComplete);
  EXPECT_EQ(r.check_rounds, 0);
  EXPECT_EQ(r.audit_details.at("check: pytest -q"), "passed");

  r = OnChecksRun(goal, {Check("make", true), Check("pytest -q", false)});
  EXPECT_EQ(r.next, ChecksRound::Next::kHandBack);
  EXPECT_EQ(r.check_rounds, 1);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.audit_details.at("check: pytest -q"), "failed (exit 1)");
  goal.set_check_rounds(1);
  EXPECT_EQ(OnChecksRun(goal, {Check("pytest -q", false)}).next, ChecksRound::Next::kHandBack);
  goal.set_check_rounds(2);
  r = OnChecksRun(goal, {Check("make", true), Check("pytest -q", false)});
  EXPECT_EQ(r.next, ChecksRound::Next::kFail);
  EXPECT_EQ(r.failure.code(), v1::TASK_FAILURE_CODE_CHECKS_FAILED);
  EXPECT_EQ(r.failure.message(), "`pytest -q` still failed after 2 round(s) of fixes");

  // A check that could not run fails the goal at once, whatever the rounds left.
  goal.set_check_rounds(0);
  r = OnChecksRun(goal, {Check("pytest -q", false), Check("nope", false, true)});
  EXPECT_EQ(r.next, ChecksRound::Next::kFail);
  EXPECT_EQ(r.failure.message(), "check `nope` could not run: no such program");
  EXPECT_EQ(r.failure.by(), "daemon");
}

}  // namespace
}  // namespace agentd
