// The shared fixture of the goal tests (tests/e2e/goal_*_test.cc): a real agentd, real
// agentd-agent processes and dev/fakellm playing the models — one model name per role
// (ceo-m, coder-m, manager-m, tester-m, other-m), so that a scenario can tell the roles
// apart — driven with agentctl as a person or a CI job would.
//
// The scenarios fakellm plays are YAML files under tests/e2e/scenarios/ (their format is
// in dev/fakellm/README.md), read with Scenario().
//
// Every helper here that says "records no failure" may be polled by WaitFor; the others
// record a failure when what they run fails, and must not be.
#ifndef AGENTD_TESTS_E2E_GOAL_FIXTURE_H_
#define AGENTD_TESTS_E2E_GOAL_FIXTURE_H_

#include <cstddef>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agentd/v1/agents.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"
#include "tests/support/process.h"

namespace agentd::testing {

// The text of the scenario tests/e2e/scenarios/NAME.yaml, with each "${KEY}" in it
// replaced by vars[KEY]. Empty, with a failure recorded, when the file cannot be read or
// a "${" is left without a value (fakellm would refuse the file, less clearly).
std::string Scenario(const std::string& name, const std::map<std::string, std::string>& vars = {});

// Scaled(d) written as agentd's config and agentctl's flags read a duration ("1m30s",
// "7.5s"): a window in the daemon's config, or a wait agentctl does for the test, then
// stretches with AGENTD_TEST_TIME_SCALE as the test's own waits do.
std::string ScaledText(absl::Duration d);

// The chat requests `fake` has received, oldest first, as it logs them (objects with
// model, body, has_authorization, …); an empty array when it cannot be asked. Records no
// failure.
nlohmann::json LoggedRequests(const FakeLlm& fake);

// How many of `requests` (as LoggedRequests returns them) were for `model`.
int CountRequests(const nlohmann::json& requests, const std::string& model);

// What the tool calls of `model`'s agents returned, oldest first: the content of the last
// message of each request for `model` that ends with a tool result. Only the last message
// counts, because each request repeats the whole conversation before it.
std::vector<std::string> ToolResults(const nlohmann::json& requests, const std::string& model);

// The string `j` holds; its JSON text when it holds something else, so that a check on it
// fails with what was there instead of throwing.
std::string Text(const nlohmann::json& j);

// The size of the array `key` of `object`; 0 when `object` is not an object or `key` is
// not an array in it (protobuf's JSON leaves an empty repeated field out).
size_t ArraySize(const nlohmann::json& object, const std::string& key);

class GoalTest : public ::testing::Test {
 protected:
  static constexpr char kCeoTools[] = "[delegate, complete_task, fail_task]";

  // Starts fakellm on `scenario` (YAML text, see Scenario()) and agentd with the roles
  // ceo (model ceo-m, tools `ceo_tools`, one instance) and coder (coder-m, two
  // instances), plus `extra_roles` (YAML lines under roles:). Records a fatal failure when
  // either does not come up: call it inside ASSERT_NO_FATAL_FAILURE.
  // After Start with AGENTD_FAULT_EXIT_AFTER_EVENT in daemon_env_: waits for that
  // injected exit (status 86) and starts agentd again without the fault. Records a fatal
  // failure otherwise: call it inside ASSERT_NO_FATAL_FAILURE.
  void RestartAfterInjectedExit();
  void Start(const std::string& scenario, const std::string& extra_roles = "",
             const std::string& ceo_tools = kCeoTools);

  // A user's git repository: calc.py with add(), its pytest test, one commit on main.
  // Empty when it could not be made (the recorded failure says why).
  std::string CalcRepo();

  // agentctl on this test's daemon, killed after Scaled(timeout).
  RunResult Ctl(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60));
  // `agentctl goal ARGS --wait`: submits a goal and waits for its end, for up to
  // Scaled(timeout) (agentctl's --timeout; agentctl itself is given longer).
  RunResult CtlGoalAndWait(std::vector<std::string> args,
                           absl::Duration timeout = absl::Seconds(60));
  // `agentctl -o json ARGS`, parsed. Records a failure when agentctl fails, and returns
  // an empty object when it prints no JSON object.
  nlohmann::json CtlJson(std::vector<std::string> args);
  // As CtlJson, for polling: records no failure; null when agentctl fails or prints no
  // JSON object.
  nlohmann::json PollCtlJson(std::vector<std::string> args);
  // `git -C REPO ARGS` (ARGS as a shell would split them); its stdout. Records a failure
  // when git fails.
  std::string Git(const std::string& repo, const std::string& args);
  // LoggedRequests() of this test's fakellm. Records no failure.
  nlohmann::json FakeRequests() const { return LoggedRequests(*fake_); }

  // The status of task (or goal) `id` as GetTask answers, e.g. "TASK_STATUS_COMPLETED";
  // empty when the call fails. Records no failure.
  std::string TaskStatus(const std::string& id);
  // Waits until task `id` has `status`; when it does not within Scaled(timeout), the
  // result names the last status seen. Use as ASSERT_TRUE(TaskReaches(…)).
  ::testing::AssertionResult TaskReaches(const std::string& id, const std::string& status,
                                         absl::Duration timeout = absl::Seconds(30));
  // Waits until agent `id` is in `state` (GetAgent); on time-out the result shows the
  // agent as last seen.
  ::testing::AssertionResult AgentReaches(const std::string& id, v1::AgentState state,
                                          absl::Duration timeout);
  // Waits until agentd keeps no plan in memory (GetInfo's plans_in_memory is 0): every
  // plan it knows is settled and read from the store. The failure shows the last status.
  ::testing::AssertionResult NoPlansInMemory(absl::Duration timeout = absl::Seconds(10));
  // Waits until `agentctl get plans` lists `count` plans, and gives that list; on time-out
  // the result shows the last list seen and agentd's log.
  ::testing::AssertionResult PlansReach(size_t count, nlohmann::json* plans,
                                        absl::Duration timeout = absl::Seconds(30));
  // The path of goal `goal_id`'s workspace as agentctl describes it; empty, with a failure
  // recorded, when it has none.
  std::string Workspace(const std::string& goal_id);

  // policy.shell.sandbox in the config Start writes, and NAME=value given to agentd (and
  // so to its agents) besides its own environment: set them before Start.
  std::string sandbox_policy_ = "auto";
  // policy.budget.on_exhausted in the config Start writes: pause | fail.
  std::string budget_on_exhausted_ = "pause";
  // More lines under policy: in the config Start writes (each indented two spaces).
  std::string extra_policy_;
  // More top-level sections of the config Start writes (e.g. "mcp_servers: …").
  std::string extra_config_;
  // The fake provider's `timeouts:` (e.g. "{idle: 2s}"); empty keeps the defaults.
  std::string provider_timeouts_;
  std::vector<std::string> daemon_env_;
  std::vector<std::string> daemon_args_;  // more of agentd's flags (after --config)

  TempDir dir_;
  std::unique_ptr<FakeLlm> fake_;
  Daemon daemon_{dir_};
};

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_E2E_GOAL_FIXTURE_H_
