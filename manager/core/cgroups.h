// AgentCgroups: a cgroup (v2) per agent, when the machine offers one, so that stopping an
// agent ends everything it started — even a process that left its process group (setsid,
// a daemonizing grandchild) — through cgroup.kill.
//
// Layout: under agentd's own cgroup (a systemd service's, or the root of a container),
// agentd.<instance>.<pid>/<agent id>.<n>/, a new one for every process started: a cgroup
// that has been through cgroup.kill may go on killing what is later started in it (seen
// on this project's machines), so none is reused; the empty ones are removed. <instance>
// names the state directory (a hash of its path). Detect() also clears the folders of
// this instance's daemons that no longer run (a kill -9'd agentd), killing whatever still
// runs in them — and only this instance's: other agentd instances sharing the parent
// cgroup (other users' state dirs, tests running side by side) keep their agents.
//
// The launcher starts each process inside its cgroup (clone3 with CLONE_INTO_CGROUP), so
// nothing it forks, however early, is outside. No controllers are enabled: the cgroups
// group processes, they do not limit them (rlimits do).
//
// Thread-safety: every method is thread-safe (it only touches files).
#ifndef AGENTD_MANAGER_CORE_CGROUPS_H_
#define AGENTD_MANAGER_CORE_CGROUPS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace agentd {

class AgentCgroups {
 public:
  // The cgroups of this daemon, or nullptr with the reason in `*why` when the machine
  // offers none that agentd may use (no cgroup v2, no cgroup.kill, not writable).
  // `instance` identifies this daemon's state (its state directory's path); `root`
  // overrides where cgroup2 is mounted (tests); empty: from /proc/self/mountinfo.
  static std::unique_ptr<AgentCgroups> Detect(std::string* why, const std::string& instance,
                                              const std::string& root = "");
  // Removes this daemon's folder (best effort: cgroups of agents still running stay).
  ~AgentCgroups();

  // agentd.<pid> under agentd's own cgroup.
  const std::string& base() const { return base_; }

  // A new cgroup for a process of `agent`; returns its path. Removes the agent's earlier
  // ones that are empty by now.
  absl::StatusOr<std::string> Create(const std::string& agent);
  // Kills every process in the cgroup at `path` (SIGKILL, through cgroup.kill).
  static void Kill(const std::string& path);

 private:
  explicit AgentCgroups(std::string base) : base_(std::move(base)) {}
  std::string base_;
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, std::vector<std::string>> earlier_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_CGROUPS_H_
