// The scheduler's decisions, as pure functions of a snapshot: which ready task goes to
// which agent, for which roles another agent is started, and which agents have been idle
// long enough to stop. No I/O and no clock of its own (the time comes in), so every rule
// is unit-tested without processes; TaskBoard gathers the snapshot on the core loop and
// carries the decisions out.
//
// The rules:
//  - A task resuming a session (handed back after its children, checks, a budget or a
//    provider's backoff) goes to the agent that holds that session when it is connected
//    and free; otherwise, like any ready task, to the first connected, free agent of its
//    role, in the order the agents are given.
//  - A task of a paused goal is not handed out, and starts no agent.
//  - When no agent is free, one more agent of the role is started, unless one is already
//    on its way up (started, not yet connected) or the role has max_instances live
//    agents; at most one start per role per pass.
//  - A task whose role is not configured is reported, to be failed.
//  - An agent is stopped once it has been connected and free for its role's idle_timeout,
//    unless config starts it at boot or it holds the session of a task that waits.
//
// Thread-safety: pure functions; safe from any thread.
#ifndef AGENTD_MANAGER_CORE_SCHEDULER_H_
#define AGENTD_MANAGER_CORE_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace agentd {

// An agent as the scheduler sees it.
struct SchedAgent {
  std::string id, role;
  bool connected = false;  // its Connect stream is attached: it can take a task now
  bool busy = false;       // it holds a task
  bool live = false;       // running or on its way up (not stopping, stopped or failed)
};

// A ready task.
struct SchedTask {
  std::string id, role;
  // The agent holding the task's session when the task resumes it; empty otherwise.
  std::string resume_on;
  bool paused = false;  // its goal is paused
};

// What config says of a role.
struct SchedRole {
  int64_t max_instances = 1;
  absl::Duration idle_timeout = absl::InfiniteDuration();
};

struct HandOut {
  std::vector<std::pair<std::string, std::string>> assign;  // (task, agent), in task order
  std::vector<std::pair<std::string, std::string>> start;   // (role, for task): one agent each
  std::vector<std::string> unknown_role;                    // tasks whose role is not configured
};

// The decisions for `ready` (in the order they should be served) given `agents` (in the
// order they are preferred) and the configured `roles`.
HandOut PlanHandOut(const std::vector<SchedTask>& ready, const std::vector<SchedAgent>& agents,
                    const std::map<std::string, SchedRole>& roles);

// Brings `idle_since` up to date at `now`: a connected, free agent is idle since it was
// first seen so (kept), any other agent is not idle (removed).
void TrackIdle(const std::vector<SchedAgent>& agents, absl::Time now,
               std::map<std::string, absl::Time>* idle_since);

// The agents to stop at `now`: idle (per `idle_since`) for at least their role's
// idle_timeout, and not in `keep` (started at boot, or holding a waiting task's session).
std::vector<std::string> IdleToStop(const std::vector<SchedAgent>& agents,
                                    const std::map<std::string, absl::Time>& idle_since,
                                    const std::set<std::string>& keep,
                                    const std::map<std::string, SchedRole>& roles, absl::Time now);

// How soon to look for idle agents again: a tenth of the shortest idle_timeout, between
// 100 ms and 30 s.
absl::Duration IdleCheckInterval(const std::map<std::string, SchedRole>& roles);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_SCHEDULER_H_
