// Plan validation (manager/core/plan_check.h) on any plan an agent can send: as proto
// JSON (what propose_plan's arguments become) or as protobuf bytes (what reaches agentd
// over gRPC). Violations or none, never a crash, overflow or runaway recursion.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/util/json_util.h"
#include "manager/core/plan_check.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  agentd::v1::Plan plan;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(input, &plan, options).ok() &&
      !plan.ParseFromString(input)) {
    return 0;
  }
  agentd::PlanLimits limits;
  limits.roles = {"coder", "tester"};
  limits.max_steps = 256;
  limits.tokens_left = 100000;
  limits.cost_left_usd = 1.0;
  for (const agentd::v1::PlanViolation& v : agentd::CheckPlanSteps(plan.steps(), limits)) {
    FUZZ_CHECK(!v.message().empty());
  }
  limits.tokens_left.reset();
  limits.cost_left_usd.reset();
  (void)agentd::CheckPlanSteps(plan.steps(), limits);
  return 0;
}
