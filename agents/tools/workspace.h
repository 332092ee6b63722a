// Workspace: the one directory an agent's tools may touch, enforced by the kernel.
//
// Every path a tool is given is resolved with openat2(RESOLVE_BENEATH) against the
// workspace's directory descriptor: an absolute path, a `..` that climbs out, or a
// symlink (anywhere in the path) that points outside is refused by the kernel itself, with
// no window between a check and the use. Paths are relative to the workspace root.
//
// Thread-safety: all methods are thread-safe (they only use descriptors).
#ifndef AGENTD_AGENTS_TOOLS_WORKSPACE_H_
#define AGENTD_AGENTS_TOOLS_WORKSPACE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace agentd::tools {

class Workspace {
 public:
  // Errors: `root` is not a directory that can be opened.
  static absl::StatusOr<std::unique_ptr<Workspace>> Open(const std::string& root);
  ~Workspace();

  const std::string& root() const { return root_; }

  // Opens `path` beneath the root with open(2) `flags` (O_CLOEXEC is added; O_CREAT uses
  // `mode`). Errors: PERMISSION_DENIED when the path leaves the workspace (saying so),
  // NOT_FOUND, or the system's reason — each naming the path.
  absl::StatusOr<int> OpenAt(const std::string& path, int flags, unsigned mode = 0644) const;
  // Creates the directories of `path` that are missing (like mkdir -p), beneath the root.
  absl::Status MakeDirs(const std::string& path) const;
  // Renames `from` to `to`, both beneath the root (their parent directories must exist).
  absl::Status Rename(const std::string& from, const std::string& to) const;
  // Removes the file `path` beneath the root.
  absl::Status Remove(const std::string& path) const;

 private:
  Workspace(std::string root, int fd) : root_(std::move(root)), fd_(fd) {}
  std::string root_;
  int fd_;
};

// The directory part of a workspace path ("" for a top-level name).
std::string ParentOf(const std::string& path);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_WORKSPACE_H_
