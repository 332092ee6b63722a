// Process hardening shared by agentd and its agents: secrets stay out of core dumps and
// out of other processes' reach, and the programs they start for a person (an editor,
// a template's post-check) get an environment with nothing secret in it.
#ifndef AGENTD_COMMON_HARDENING_H_
#define AGENTD_COMMON_HARDENING_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace agentd {

// Makes this process non-dumpable (prctl PR_SET_DUMPABLE 0) and sets RLIMIT_CORE to 0,
// soft and hard. agentd holds the admin token and provider keys in memory, an agent its
// token and its provider's key: a core file would write them to disk, and a dumpable
// process lets any process of the same uid read its memory and /proc/<pid>/environ
// (non-dumpable, those /proc files belong to root). Both settings are inherited by
// children started with fork but PR_SET_DUMPABLE is reset by execve, so every program
// that holds secrets calls this early in main. Errors name the call that failed (the
// process goes on; the caller decides whether to log or stop). Thread-safe.
absl::Status ForbidCoreDumps();

// A copy of this process's environment with only PATH, HOME, LANG, LC_*, TZ, USER,
// LOGNAME and TERM ("NAME=value" entries, in environ's order): what a program started on
// a person's behalf needs to run, and none of the daemon's variables, tokens or keys.
// Thread-safe as long as no thread changes the environment (agentd never does).
std::vector<std::string> MinimalEnvironment();

}  // namespace agentd

#endif  // AGENTD_COMMON_HARDENING_H_
