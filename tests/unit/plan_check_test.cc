#include "manager/core/plan_check.h"

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace agentd {
namespace {

v1::PlanStep Step(const std::string& id, std::vector<std::string> deps = {}) {
  v1::PlanStep s;
  s.set_id(id);
  s.set_role("coder");
  s.set_instructions("do " + id);
  for (std::string& d : deps) s.add_deps(std::move(d));
  return s;
}

PlanLimits Limits() {
  PlanLimits l;
  l.roles = {"coder"};
  return l;
}

TEST(PlanCheckTest, AValidPlanHasNoViolationsAndACycleIsNamed) {
  v1::Plan plan;
  *plan.add_steps() = Step("a");
  *plan.add_steps() = Step("b", {"a"});
  EXPECT_TRUE(CheckPlanSteps(plan.steps(), Limits()).empty());
  *plan.mutable_steps(0) = Step("a", {"b"});
  std::vector<v1::PlanViolation> v = CheckPlanSteps(plan.steps(), Limits());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].code(), v1::PLAN_VIOLATION_CODE_CYCLE);
}

// A model may send estimates that overflow a sum, and a chain of steps far longer than
// the limit (the cycle search once recursed once per step): violations, never UB.
TEST(PlanCheckTest, HostileEstimatesAndLongChainsAreViolationsNotOverflows) {
  v1::Plan plan;
  for (int i = 0; i < 2; ++i) {  // two: a wrapped sum is -2, under any budget
    v1::PlanStep* s = plan.add_steps();
    *s = Step(absl::StrCat("s", i));
    s->mutable_estimate()->set_tokens(std::numeric_limits<int64_t>::max());
  }
  PlanLimits limits = Limits();
  limits.tokens_left = 1000;
  std::vector<v1::PlanViolation> v = CheckPlanSteps(plan.steps(), limits);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].code(), v1::PLAN_VIOLATION_CODE_OVER_BUDGET);

  v1::Plan chain;
  for (int i = 0; i < 200000; ++i) {
    *chain.add_steps() = Step(absl::StrCat("s", i), {absl::StrCat("s", i + 1)});
  }
  v = CheckPlanSteps(chain.steps(), Limits());
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].code(), v1::PLAN_VIOLATION_CODE_TOO_MANY_STEPS);
}

// A person's YAML can say `.nan` and a model can ask for a million retries: each is a
// violation naming its step and field, and a NaN does not slip under the budget.
TEST(PlanCheckTest, NonFiniteEstimatesAndAttemptsOutOfRangeAreViolations) {
  v1::Plan plan;
  *plan.add_steps() = Step("nan");
  plan.mutable_steps(0)->mutable_estimate()->set_cost_usd(std::nan(""));
  *plan.add_steps() = Step("inf");
  plan.mutable_steps(1)->mutable_estimate()->set_cost_usd(std::numeric_limits<double>::infinity());
  *plan.add_steps() = Step("many");
  plan.mutable_steps(2)->set_max_attempts(1000000);
  *plan.add_steps() = Step("negative");
  plan.mutable_steps(3)->set_max_attempts(-1);
  *plan.add_steps() = Step("fine");
  plan.mutable_steps(4)->set_max_attempts(kMaxTaskAttempts);
  plan.mutable_steps(4)->mutable_estimate()->set_cost_usd(0.5);
  PlanLimits limits = Limits();
  limits.cost_left_usd = 1.0;
  std::vector<v1::PlanViolation> v = CheckPlanSteps(plan.steps(), limits);
  std::set<std::pair<std::string, std::string>> seen;
  for (const v1::PlanViolation& x : v) {
    EXPECT_EQ(x.code(), v1::PLAN_VIOLATION_CODE_INVALID_VALUE) << x.ShortDebugString();
    seen.insert({x.step_id(), x.field()});
  }
  EXPECT_EQ(seen, (std::set<std::pair<std::string, std::string>>{{"nan", "estimate"},
                                                                 {"inf", "estimate"},
                                                                 {"many", "max_attempts"},
                                                                 {"negative", "max_attempts"}}));
  // Only finite, positive estimates count toward the budget: 0.5 of 1.0 is fine.
  EXPECT_EQ(v.size(), 4u);
}

}  // namespace
}  // namespace agentd
