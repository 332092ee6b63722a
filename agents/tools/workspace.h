// Workspace: the one directory an agent's tools may touch, enforced by the kernel.
//
// Every path a tool is given is resolved with openat2(RESOLVE_BENEATH) against the
// workspace's directory descriptor: an absolute path, a `..` that climbs out, or a
// symlink (anywhere in the path) that points outside is refused by the kernel itself, with
// no window between a check and the use. Paths are relative to the workspace root.
//
// Writes are held tighter than reads, because git runs programs that its repository's
// files name (core.fsmonitor, hooks, filters…): every write-like operation (an open for
// writing or creating, MakeDirs, Rename, Remove) refuses a path with a `.git` component,
// compared case-insensitively (a case-insensitive filesystem maps `.GIT` onto `.git`), and
// resolves its path with RESOLVE_NO_SYMLINKS as well, so that a symlink `foo -> .git` made
// by a program cannot carry a write into the repository's files either.
//
// Reads go through ReadFile: regular files only, opened without blocking, at most a cap
// of bytes — a FIFO or a device planted in the workspace cannot hang or flood an agent.
//
// Thread-safety: all methods are thread-safe (they only use descriptors).
#ifndef AGENTD_AGENTS_TOOLS_WORKSPACE_H_
#define AGENTD_AGENTS_TOOLS_WORKSPACE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace agentd::tools {

// What ReadFile read.
struct FileData {
  std::string bytes;       // at most the cap
  bool truncated = false;  // the file holds more than the cap
};

class Workspace {
 public:
  // Errors: `root` is not a directory that can be opened.
  static absl::StatusOr<std::unique_ptr<Workspace>> Open(const std::string& root);
  ~Workspace();

  const std::string& root() const { return root_; }

  // Opens `path` beneath the root with open(2) `flags` (O_CLOEXEC is added; O_CREAT uses
  // `mode`). Flags that write (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND) make it a
  // write: see the class comment. Errors: PERMISSION_DENIED when the path leaves the
  // workspace, names `.git`, or (a write) goes through a symlink — each saying so;
  // NOT_FOUND, or the system's reason — each naming the path.
  absl::StatusOr<int> OpenAt(const std::string& path, int flags, unsigned mode = 0644) const;
  // Creates the directories of `path` that are missing (like mkdir -p), beneath the root.
  // A write: see the class comment.
  absl::Status MakeDirs(const std::string& path) const;
  // Renames `from` to `to`, both beneath the root (their parent directories must exist).
  // A write for both paths.
  absl::Status Rename(const std::string& from, const std::string& to) const;
  // Removes the file `path` beneath the root. A write.
  absl::Status Remove(const std::string& path) const;

  // Reads the regular file `path` beneath the root: at most `cap` bytes, never blocking
  // on the open (O_NONBLOCK) and never reading what is not a regular file (a FIFO, a
  // socket, a device, a directory — checked with fstat on the descriptor that is read).
  // Errors: as OpenAt; FAILED_PRECONDITION for what is not a regular file, saying what it
  // is; INTERNAL for a failed read.
  absl::StatusOr<FileData> ReadFile(const std::string& path, size_t cap) const;
  // Whether `path` beneath the root is a regular file (found without opening it, so a
  // FIFO's open cannot block). False for anything else or when it cannot be seen.
  bool IsRegularFile(const std::string& path) const;
  // What `path` beneath the root is, in words ("a FIFO", "a directory"…), found without
  // opening it; "missing" when it is not there (or cannot be seen).
  std::string KindOf(const std::string& path) const;

 private:
  Workspace(std::string root, int fd) : root_(std::move(root)), fd_(fd) {}
  std::string root_;
  int fd_;
};

// The directory part of a workspace path ("" for a top-level name).
std::string ParentOf(const std::string& path);

// Whether `path` has a component `.git`, in any letter case.
bool HasGitComponent(absl::string_view path);

// Reads at most `cap` bytes from the open descriptor `fd` of a file named `path` (for
// messages) after checking with fstat that it is a regular file; `fd` stays open (the
// caller's). For descriptors opened elsewhere, with O_NONBLOCK. Errors as ReadFile's.
absl::StatusOr<FileData> ReadRegularFile(int fd, const std::string& path, size_t cap);

// "a FIFO", "a directory", "a socket", "a device", "a symlink", "a regular file".
std::string FileKind(unsigned st_mode);

}  // namespace agentd::tools

#endif  // AGENTD_AGENTS_TOOLS_WORKSPACE_H_
