#include "agents/tools/workspace.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace agentd::tools {
namespace {

absl::Status Errno(int err, const std::string& path, const char* what) {
  if (err == EXDEV || err == ELOOP) {
    return absl::PermissionDeniedError(
        absl::StrCat("\"", path,
                     "\" is outside the workspace (paths are relative to it; no absolute "
                     "paths, no .. or symlinks that lead out)"));
  }
  if (err == ENOENT) return absl::NotFoundError(absl::StrCat("\"", path, "\" does not exist"));
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, " \"", path, "\": ", std::strerror(err)));
}

int OpenBeneath(int dirfd, const std::string& path, int flags, unsigned mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(
      syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof(how)));
}

}  // namespace

std::string ParentOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

absl::StatusOr<std::unique_ptr<Workspace>> Workspace::Open(const std::string& root) {
  char real[PATH_MAX];
  if (realpath(root.c_str(), real) == nullptr) {
    return absl::NotFoundError(absl::StrCat("workspace ", root, ": ", std::strerror(errno)));
  }
  int fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("workspace ", real, ": ", std::strerror(errno)));
  }
  return std::unique_ptr<Workspace>(new Workspace(real, fd));
}

Workspace::~Workspace() { close(fd_); }

absl::StatusOr<int> Workspace::OpenAt(const std::string& path, int flags, unsigned mode) const {
  int fd = OpenBeneath(fd_, path, flags, mode);
  if (fd < 0) return Errno(errno, path, "cannot open");
  return fd;
}

absl::Status Workspace::MakeDirs(const std::string& path) const {
  std::string sofar;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    std::string parent = sofar;
    sofar = sofar.empty() ? std::string(part) : absl::StrCat(sofar, "/", part);
    int dir = OpenBeneath(fd_, parent, O_RDONLY | O_DIRECTORY, 0);
    if (dir < 0) return Errno(errno, parent, "cannot open");
    // A name without slashes, made in a directory already proven to be inside.
    if (part == ".." || part == ".") {
      close(dir);
      return Errno(EXDEV, path, "");
    }
    int rc = mkdirat(dir, std::string(part).c_str(), 0755);
    int err = errno;
    close(dir);
    if (rc != 0 && err != EEXIST) return Errno(err, sofar, "cannot create directory");
  }
  return absl::OkStatus();
}

absl::Status Workspace::Remove(const std::string& path) const {
  std::string name =
      path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  if (name.empty() || name == "." || name == "..") return Errno(EXDEV, path, "");
  int dir = OpenBeneath(fd_, ParentOf(path), O_RDONLY | O_DIRECTORY, 0);
  if (dir < 0) return Errno(errno, ParentOf(path), "cannot open");
  int rc = unlinkat(dir, name.c_str(), 0);
  int err = errno;
  close(dir);
  return rc == 0 ? absl::OkStatus() : Errno(err, path, "cannot remove");
}

absl::Status Workspace::Rename(const std::string& from, const std::string& to) const {
  auto split = [&](const std::string& p, int* dir, std::string* name) -> absl::Status {
    *name = p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1);
    if (name->empty() || *name == "." || *name == "..") return Errno(EXDEV, p, "");
    *dir = OpenBeneath(fd_, ParentOf(p), O_RDONLY | O_DIRECTORY, 0);
    return *dir < 0 ? Errno(errno, ParentOf(p), "cannot open") : absl::OkStatus();
  };
  int from_dir = -1, to_dir = -1;
  std::string from_name, to_name;
  absl::Status s = split(from, &from_dir, &from_name);
  if (s.ok()) s = split(to, &to_dir, &to_name);
  if (s.ok() && renameat(from_dir, from_name.c_str(), to_dir, to_name.c_str()) != 0) {
    s = Errno(errno, to, "cannot rename to");
  }
  if (from_dir >= 0) close(from_dir);
  if (to_dir >= 0) close(to_dir);
  return s;
}

}  // namespace agentd::tools
