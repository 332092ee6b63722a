// Doctor: the checks behind `agentctl doctor` (SystemService.Diagnose) — whether a goal
// given now could run, and what to do where it could not.
//
// Diagnose() asks every provider a role uses for its model listing (in parallel, each
// within `timeout`), checks each used provider's key variable and that each used model
// is served, and grades what the daemon found at start: the shell sandbox, agent
// isolation, cgroups, the listeners, the state directory's free space. A check that keeps
// goals from running is FAILED; one that only weakens them (no sandbox under "auto", no
// cgroups) is a WARNING. Remedies name the command or the setting to change.
//
// Thread-safety: Diagnose() is a pure function of its inputs and the network; it blocks
// for up to `timeout` and so runs off the core loop.
#ifndef AGENTD_MANAGER_CORE_DOCTOR_H_
#define AGENTD_MANAGER_CORE_DOCTOR_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "agentd/v1/system.pb.h"
#include "agents/llm/http.h"
#include "common/config.h"

namespace agentd {

// What the daemon knows about itself, copied for a run of the checks.
struct DoctorInputs {
  Config config;
  EnvLookup env;                  // agentd's environment (the provider keys)
  std::string sandbox_broken;     // why the shell sandbox does not work; empty: it does
  std::string isolation_problem;  // why agents cannot be isolated; empty: they are
  std::string cgroup_base;        // where agents' cgroups are made; empty: none
  std::string no_cgroups_reason;  // why not, when cgroup_base is empty
  // Listener name ("socket", "http", "tcp") → address, for those that are on.
  std::vector<std::pair<std::string, std::string>> listeners;
  absl::Duration timeout = absl::Seconds(5);  // per provider
};

// Runs every check. `transport` carries the providers' model listings (CurlTransport in
// agentd; a test may pass another), and must allow calls from several threads at once.
v1::DiagnoseResponse Diagnose(const DoctorInputs& in, llm::Transport& transport);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_DOCTOR_H_
