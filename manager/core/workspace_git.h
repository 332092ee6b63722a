// WorkspaceGit: the checkpoints and rollbacks of a goal's workspace that agentd makes
// itself — a plan's checkpoint when it starts, and the rollback to it when the plan fails
// under policy.on_plan_failure rollback — off the core loop.
//
// They are the agents' own git.checkpoint and git.rollback (agents/tools/git_tools.cc):
// git in the shell sandbox with its config-driven execution neutralised, a checkpoint a
// commit under refs/agentd/checkpoints/ made with a private index (the branch and the
// staging area never move), a rollback that puts the files back and removes those made
// since, through the workspace (never outside it). One implementation for both.
//
// Thread-safety: Checkpoint() and Rollback() may be called from any thread; each runs on
// a thread of its own and `done` is posted to the loop. The destructor waits for them
// (their `done` is dropped); destroy it after the loop has stopped running closures.
#ifndef AGENTD_MANAGER_CORE_WORKSPACE_GIT_H_
#define AGENTD_MANAGER_CORE_WORKSPACE_GIT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "manager/core/event_loop.h"
#include "manager/core/off_loop.h"
#include "nlohmann/json.hpp"

namespace agentd {

class WorkspaceGit {
 public:
  struct Options {
    std::string sandbox = "auto";  // policy.shell.sandbox
    std::string bwrap = "bwrap";
    std::string sandbox_broken;  // as CheckRunner::Options
  };
  // What the tool answered (e.g. "checkpoint plan-p-1 saved (3f2a…)"), or why it could not.
  using Done = std::function<void(absl::StatusOr<std::string>)>;

  // `loop` is not owned and must outlive this object. The destructor waits for running
  // jobs (their answers are dropped).
  WorkspaceGit(EventLoop* loop, Options options);
  WorkspaceGit(const WorkspaceGit&) = delete;
  WorkspaceGit& operator=(const WorkspaceGit&) = delete;

  // Saves `workspace` as checkpoint `name` (letters, digits, '-', '_', '.').
  void Checkpoint(const std::string& workspace, const std::string& name, Done done);
  // Settings from a reload, for the jobs started from now on.
  void SetOptions(Options options);
  // Puts `workspace` back as it was at checkpoint `name`, saved as `commit` (what
  // Checkpoint answered: the name is a ref the agents' own git.checkpoint can move).
  void Rollback(const std::string& workspace, const std::string& name, const std::string& commit,
                Done done);

 private:
  void Run(const std::string& tool, const std::string& workspace, nlohmann::json args, Done done);

  absl::Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  OffLoop jobs_;  // last: its threads are joined first
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_WORKSPACE_GIT_H_
