// WorkspaceProvisioner: makes a goal's workspace ready before the goal is stored — a new
// git repository (under <state_dir>/workspaces/<goal>, or a folder a person named), or a
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

namespace agentd {

class WorkspaceProvisioner {
 public:
  struct Options {
    std::string state_dir;  // new workspaces go under <state_dir>/workspaces
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

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_WORKSPACES_H_
