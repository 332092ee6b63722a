// Abseil's lock-order checking, on in debug and sanitizer builds, off in release builds.
#ifndef AGENTD_COMMON_LOCK_CHECKS_H_
#define AGENTD_COMMON_LOCK_CHECKS_H_

#include "absl/synchronization/mutex.h"

namespace agentd {

// Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on in
// every program linked with it: each Lock() (gRPC's own mutexes included) looks the mutex
// up in one process-wide graph under one process-wide spinlock, records an edge for every
// lock already held, and aborts the process when the edges make a cycle. That check is
// worth its cost where the test suites run: the Debug (sanitizer) build keeps it, so a
// lock-order inversion anywhere fails a test. A release build (NDEBUG) turns it off; it
// served no one there but cost every lock. Call first thing in main, before threads start.
inline void ConfigureLockChecks() {
#ifdef NDEBUG
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
}

}  // namespace agentd

#endif  // AGENTD_COMMON_LOCK_CHECKS_H_
