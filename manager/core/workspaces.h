// WorkspaceProvisioner: makes a goal's workspace ready before the goal is stored — a new
// git repository (under <workspaces_dir>/<goal>, or a folder a person named), or a
// worktree and branch of a person's repository — off the core loop: git runs as a child
// process, and the loop never waits for it.
//
// Thread-safety: Prepare() is called on the core loop and answers there; each job runs
// on a thread of its own (goals are submitted by people: a few at a time at most).
#ifndef AGENTD_MANAGER_CORE_WORKSPACES_H_
#define AGENTD_MANAGER_CORE_WORKSPACES_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agentd/v1/tasks.pb.h"
#include "manager/core/event_loop.h"
#include "manager/core/off_loop.h"
#include "manager/core/workspace_policy.h"
#include "manager/store/store.h"

namespace agentd {

class WorkspaceProvisioner {
 public:
  struct Options {
    std::string workspaces_dir;  // new workspaces go under <workspaces_dir>/<goal>
    // Directories a goal's workspace must not contain (workspace_policy.h).
    std::vector<ProtectedDir> protected_dirs;
  };
  using Done = absl::AnyInvocable<void(absl::StatusOr<v1::Workspace>) &&>;

  // `loop` is not owned. The destructor waits for running jobs (their answers are
  // dropped).
  WorkspaceProvisioner(EventLoop* loop, Options options);

  // Makes `requested` ready for goal `goal_id` on a thread of its own and answers on the
  // loop: the workspace as the goal will use it (kind, path, branch), or why it cannot
  // be used (INVALID_ARGUMENT, FAILED_PRECONDITION: a folder with files that is not a
  // repository, unless init_existing).
  void Prepare(v1::Workspace requested, std::string goal_id, Done done);

  // The same, here and now (what each job runs).
  static absl::StatusOr<v1::Workspace> PrepareNow(const Options& options,
                                                  const v1::Workspace& requested,
                                                  const std::string& goal_id);

 private:
  const Options options_;
  OffLoop jobs_;
};

// Moves the workspaces that versions before workspaces_dir made under `legacy_dir`
// (<state_dir>/workspaces, which agents no longer see) to `workspaces_dir`, and the
// records that name them with them: tasks' workspace paths and pending assignments, in
// one transaction with a "workspaces.moved" event. A moved worktree is reconnected to its
// repository (git worktree repair). Then `legacy_dir` is removed. Run at start, before
// tasks and deliveries are loaded; safe to run again after a crash part-way (what moved
// stays moved; the records are rewritten whenever `legacy_dir` is still there).
// Errors: FAILED_PRECONDITION naming the workspace that cannot be moved (another file
// system, a name already taken) and what to do; the store's error.
absl::Status MoveLegacyWorkspaces(Store* store, const std::string& legacy_dir,
                                  const std::string& workspaces_dir, absl::Time now);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_WORKSPACES_H_
