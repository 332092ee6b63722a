// CheckPlanSteps: the checks a proposed plan must pass, as a pure function of its steps and
// of what the daemon allows (roles, step count, the goal's remaining budget).
//
// Kept apart from PlanBook (which looks the limits up and stores plans) so that it can be
// unit-tested and fuzzed without a store or a core loop: the steps come from a model, so
// any value of any field must give violations, never a crash, unbounded recursion or
// arithmetic overflow.
#ifndef AGENTD_MANAGER_CORE_PLAN_CHECK_H_
#define AGENTD_MANAGER_CORE_PLAN_CHECK_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agentd/v1/plans.pb.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace agentd {

// The most attempts a task may be given (a plan step's or a delegated task's
// max_attempts): a model asking for a million retries would otherwise spend the goal's
// budget on one failing step.
inline constexpr int kMaxTaskAttempts = 20;

struct PlanLimits {
  std::set<std::string> roles;  // the roles configured; a step's role must be one
  int max_steps = 256;
  // What is left of the goal's budget; unset: no limit of that kind.
  std::optional<double> cost_left_usd;
  std::optional<int64_t> tokens_left;
};

// Every problem of `steps` at once, each with the step and field at fault and a message
// written for the proposing model: no steps, too many, missing fields, duplicate ids, deps
// on unknown steps, cycles (named step by step), unknown roles, max_attempts out of
// 0..kMaxTaskAttempts, estimates that are not finite numbers or over the budget left. Empty when
// the plan is valid. A plan over `max_steps` is reported as that alone. Thread-safe (pure).
std::vector<v1::PlanViolation> CheckPlanSteps(
    const google::protobuf::RepeatedPtrField<v1::PlanStep>& steps, const PlanLimits& limits);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_PLAN_CHECK_H_
