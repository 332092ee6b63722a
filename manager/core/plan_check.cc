#include "manager/core/plan_check.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace agentd {
namespace {

v1::PlanViolation Violation(v1::PlanViolationCode code, std::string step, std::string field,
                            std::string message) {
  v1::PlanViolation v;
  v.set_code(code);
  v.set_step_id(std::move(step));
  v.set_field(std::move(field));
  v.set_message(std::move(message));
  return v;
}

}  // namespace

std::vector<v1::PlanViolation> CheckPlanSteps(
    const google::protobuf::RepeatedPtrField<v1::PlanStep>& steps, const PlanLimits& limits) {
  std::vector<v1::PlanViolation> out;
  if (steps.empty()) {
    out.push_back(Violation(v1::PLAN_VIOLATION_CODE_EMPTY, "", "steps",
                            "the plan has no steps; give at least one"));
    return out;
  }
  if (steps.size() > limits.max_steps) {
    out.push_back(Violation(v1::PLAN_VIOLATION_CODE_TOO_MANY_STEPS, "", "steps",
                            absl::StrCat("the plan has ", steps.size(), " steps; at most ",
                                         limits.max_steps, " are allowed")));
    // Alone: the rest is checked once the plan is short enough (this also bounds the
    // cycle search's depth, which a plan of a million chained steps would overflow).
    return out;
  }
  std::map<std::string, const v1::PlanStep*> ids;
  for (const v1::PlanStep& s : steps) {
    if (s.id().empty()) {
      out.push_back(Violation(v1::PLAN_VIOLATION_CODE_MISSING_FIELD, "", "id",
                              absl::StrCat("a step (\"", s.title(), "\") has no id")));
      continue;
    }
    if (!ids.emplace(s.id(), &s).second) {
      out.push_back(Violation(v1::PLAN_VIOLATION_CODE_DUPLICATE_STEP_ID, s.id(), "id",
                              absl::StrCat("two steps have the id \"", s.id(), "\"")));
    }
    if (absl::StripAsciiWhitespace(s.instructions()).empty()) {
      out.push_back(Violation(v1::PLAN_VIOLATION_CODE_MISSING_FIELD, s.id(), "instructions",
                              absl::StrCat("step ", s.id(), " has no instructions")));
    }
    if (s.max_attempts() < 0 || s.max_attempts() > kMaxTaskAttempts) {
      out.push_back(Violation(
          v1::PLAN_VIOLATION_CODE_INVALID_VALUE, s.id(), "max_attempts",
          absl::StrCat("step ", s.id(), " asks for ", s.max_attempts(), " attempts; give 1 to ",
                       kMaxTaskAttempts, ", or 0 for the configured default")));
    }
    if (!std::isfinite(s.estimate().cost_usd())) {
      out.push_back(Violation(v1::PLAN_VIOLATION_CODE_INVALID_VALUE, s.id(), "estimate",
                              absl::StrCat("step ", s.id(),
                                           "'s estimated cost is not a number; give dollars, "
                                           "e.g. 0.05, or leave it out")));
    }
    if (s.role().empty()) {
      out.push_back(Violation(v1::PLAN_VIOLATION_CODE_MISSING_FIELD, s.id(), "role",
                              absl::StrCat("step ", s.id(), " names no role")));
    } else if (limits.roles.count(s.role()) == 0) {
      std::vector<std::string> roles;
      for (const std::string& name : limits.roles) roles.push_back(name);
      out.push_back(
          Violation(v1::PLAN_VIOLATION_CODE_UNKNOWN_ROLE, s.id(), "role",
                    absl::StrCat("step ", s.id(), ": role \"", s.role(),
                                 "\" is not configured; roles are: ", absl::StrJoin(roles, ", "))));
    }
  }
  for (const v1::PlanStep& s : steps) {
    for (const std::string& d : s.deps()) {
      if (ids.count(d) == 0) {
        out.push_back(Violation(v1::PLAN_VIOLATION_CODE_UNKNOWN_DEP, s.id(), "deps",
                                absl::StrCat("step ", s.id(), " depends on \"", d,
                                             "\", which is not a step of this plan")));
      }
    }
  }
  // Cycles: a depth-first walk; a step met again on the current path closes one.
  std::map<std::string, int> color;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> path;
  std::set<std::string> reported;
  std::function<void(const std::string&)> visit = [&](const std::string& id) {
    color[id] = 1;
    path.push_back(id);
    for (const std::string& d : ids.at(id)->deps()) {
      if (ids.count(d) == 0) continue;
      if (color[d] == 1) {
        auto from = std::find(path.begin(), path.end(), d);
        std::vector<std::string> cycle(from, path.end());
        cycle.push_back(d);
        if (reported.insert(d).second) {
          out.push_back(Violation(v1::PLAN_VIOLATION_CODE_CYCLE, id, "deps",
                                  absl::StrCat("steps ", absl::StrJoin(cycle, " → "),
                                               " form a cycle; a step cannot wait for itself")));
        }
      } else if (color[d] == 0) {
        visit(d);
      }
    }
    path.pop_back();
    color[id] = 2;
  };
  for (const auto& [id, step] : ids) {
    if (color[id] == 0) visit(id);
  }
  // Estimates against what is left of the goal's budget. A model may estimate anything:
  // negative estimates count as 0 and the sum saturates instead of overflowing.
  int64_t tokens = 0;
  double cost = 0;
  for (const v1::PlanStep& s : steps) {
    int64_t t = std::max<int64_t>(s.estimate().tokens(), 0);
    tokens = t > std::numeric_limits<int64_t>::max() - tokens ? std::numeric_limits<int64_t>::max()
                                                              : tokens + t;
    double c = s.estimate().cost_usd();
    if (std::isfinite(c) && c > 0) cost += c;
  }
  if (limits.cost_left_usd && cost > *limits.cost_left_usd) {
    out.push_back(Violation(v1::PLAN_VIOLATION_CODE_OVER_BUDGET, "", "estimate",
                            absl::StrFormat("the steps are estimated at $%.4f but the goal has "
                                            "$%.4f of its budget left; plan less or cheaper",
                                            cost, *limits.cost_left_usd)));
  } else if (limits.tokens_left && tokens > *limits.tokens_left) {
    out.push_back(Violation(v1::PLAN_VIOLATION_CODE_OVER_BUDGET, "", "estimate",
                            absl::StrFormat("the steps are estimated at %d tokens but the goal "
                                            "has %d tokens of its budget left",
                                            tokens, *limits.tokens_left)));
  }
  return out;
}

}  // namespace agentd
