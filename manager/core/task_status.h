// A task's status machine, as pure functions: which statuses are final, which mean an
// agent holds the task, and which changes of status are allowed.
//
//   PENDING ──deps done──▶ READY ──handed out──▶ ASSIGNED ──started──▶ RUNNING
//                            ▲                     │  │                 │ │ │
//                            │ (attempt failed,    │  └──── waits ─────▶ BLOCKED (children, a
//                            │  agent gone,        │        ◀─ back ─── │   plan, checks, a
//                            │  hand-back)         ▼                    │   budget, a provider)
//                            └──────────────── ASSIGNED/RUNNING/BLOCKED │
//   every unfinished status ──▶ COMPLETED (ASSIGNED, RUNNING, BLOCKED: checks passed),
//                               FAILED, CANCELED;  FAILED/CANCELED ──a person's retry──▶ READY
//
// COMPLETED is final for good; nothing else leaves a final status but a retry.
#ifndef AGENTD_MANAGER_CORE_TASK_STATUS_H_
#define AGENTD_MANAGER_CORE_TASK_STATUS_H_

#include <string>

#include "agentd/v1/tasks.pb.h"

namespace agentd {

// COMPLETED, FAILED or CANCELED.
bool Final(v1::TaskStatus s);
// ASSIGNED or RUNNING: an agent is on it. A task blocked on its children is not held:
// its agent is free for other work until it is handed back.
bool Held(v1::TaskStatus s);
// "ready", "running", …
std::string StatusName(v1::TaskStatus s);
// Whether a task may go from `from` to `to` (a status kept as it is is always allowed).
bool TransitionAllowed(v1::TaskStatus from, v1::TaskStatus to);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_TASK_STATUS_H_
