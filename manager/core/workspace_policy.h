// Which directories a goal may use as its workspace.
//
// An agent's tools reach everything beneath its workspace, so a workspace must never be a
// directory that holds what agents must not read: agentd's state directory (the admin
// token, agentd.db, other agents' sessions), the directory of its admin socket, the home
// directory of the user agentd runs as (keys, shell history, other projects) or `/`.
// CheckWorkspacePath refuses a path that is equal to or above any of those, after
// resolving symlinks and `..` the way the kernel will when the tools open it. A workspace
// beneath the home directory is fine: the tools cannot climb out of it. One beneath the
// state or socket directory is refused too: isolated agents cannot see into them. agentd's
// own workspaces directory (<workspaces_dir>/<goal> for each goal) may not be a goal's
// workspace either, nor anything above it: one goal's agents would reach every goal's.
//
// Thread-safety: pure functions of the file system's state; safe from any thread.
#ifndef AGENTD_MANAGER_CORE_WORKSPACE_POLICY_H_
#define AGENTD_MANAGER_CORE_WORKSPACE_POLICY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace agentd {

// A directory a workspace must not contain, and what it is, for the message.
struct ProtectedDir {
  std::string path;
  std::string what;  // "agentd's state directory"
  // Whether a workspace inside it is refused too (the state and socket directories:
  // isolated agents cannot see into them), except under `allowed_inside` (agentd's
  // workspaces directory where it lies in the socket's directory: agents are shown it).
  bool refuse_inside = false;
  std::string allowed_inside;
};

// `path` made absolute and canonical: symlinks resolved for the part that exists, `.` and
// `..` folded lexically for the part that does not yet. Errors: INVALID_ARGUMENT when
// `path` is not absolute.
absl::StatusOr<std::string> CanonicalPath(const std::string& path);

// OK when `workspace` contains none of `protected_dirs` (nor is one). Otherwise
// INVALID_ARGUMENT naming the workspace, the directory it contains and why that matters.
absl::Status CheckWorkspacePath(const std::string& workspace,
                                const std::vector<ProtectedDir>& protected_dirs);

// The directories agentd protects: its state directory, its socket's directory, its
// workspaces directory, $HOME (when set) and `/`.
std::vector<ProtectedDir> ProtectedDirs(const std::string& state_dir,
                                        const std::string& socket_path,
                                        const std::string& workspaces_dir);

// OK when `workspaces_dir` is neither inside the state directory (agents, which cannot
// see into it, must see their goals' workspaces) nor equal to or above it or the socket's
// directory. Inside the socket's directory is fine: agents are shown it there.
// Otherwise INVALID_ARGUMENT saying which, for the config's workspaces_dir.
absl::Status CheckWorkspacesDir(const std::string& workspaces_dir, const std::string& state_dir,
                                const std::string& socket_path);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_WORKSPACE_POLICY_H_
