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

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace agentd::tools {
namespace {

constexpr int kWriteFlags = O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND;

absl::Status Errno(int err, const std::string& path, const char* what, bool write = false) {
  if (write && err == ELOOP) {
    // RESOLVE_NO_SYMLINKS: the path goes through a symlink somewhere.
    return absl::PermissionDeniedError(absl::StrCat(
        "\"", path,
        "\" goes through a symlink, and writes never follow symlinks (one could lead into "
        ".git or out of the workspace): write the file by its own path"));
  }
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

// Writes never reach the repository's files: git runs programs they name.
absl::Status CheckWritable(const std::string& path) {
  if (!HasGitComponent(path)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "\"", path,
      "\" is inside .git, which tools do not write (git runs programs that its files name): "
      "use the git tools (git.commit, git.checkpoint, …) to change the repository"));
}

int OpenBeneath(int dirfd, const std::string& path, int flags, unsigned mode, bool write) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (write ? RESOLVE_NO_SYMLINKS : 0);
  return static_cast<int>(
      syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof(how)));
}

// The last component of `path`; an error for "", "." and "..", which name no entry.
absl::StatusOr<std::string> BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
  if (name.empty() || name == "." || name == "..") return Errno(EXDEV, path, "");
  return name;
}

}  // namespace

std::string ParentOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

bool HasGitComponent(absl::string_view path) {
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (absl::EqualsIgnoreCase(part, ".git")) return true;
  }
  return false;
}

std::string FileKind(unsigned st_mode) {
  if (S_ISREG(st_mode)) return "a regular file";
  if (S_ISDIR(st_mode)) return "a directory";
  if (S_ISFIFO(st_mode)) return "a FIFO";
  if (S_ISSOCK(st_mode)) return "a socket";
  if (S_ISLNK(st_mode)) return "a symlink";
  if (S_ISCHR(st_mode) || S_ISBLK(st_mode)) return "a device";
  return "not a regular file";
}

absl::StatusOr<FileData> ReadRegularFile(int fd, const std::string& path, size_t cap) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Errno(errno, path, "cannot stat");
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" is ", FileKind(st.st_mode), ", not a regular file",
                     S_ISDIR(st.st_mode) ? " (fs.list lists it)" : ""));
  }
  FileData out;
  char buf[64 << 10];
  for (;;) {
    // One byte past the cap tells a file of exactly `cap` bytes from a longer one.
    size_t want = std::min(sizeof(buf), cap + 1 - out.bytes.size());
    ssize_t n = read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(absl::StrCat("reading \"", path, "\": ", std::strerror(errno)));
    }
    if (n == 0) break;
    out.bytes.append(buf, static_cast<size_t>(n));
    if (out.bytes.size() > cap) {
      out.bytes.resize(cap);
      out.truncated = true;
      break;
    }
  }
  return out;
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
  bool write = (flags & kWriteFlags) != 0;
  if (write) {
    if (absl::Status s = CheckWritable(path); !s.ok()) return s;
  }
  int fd = OpenBeneath(fd_, path, flags, mode, write);
  if (fd < 0) return Errno(errno, path, "cannot open", write);
  return fd;
}

absl::StatusOr<FileData> Workspace::ReadFile(const std::string& path, size_t cap) const {
  // First a look without opening (O_PATH): opening a device can have effects of its own,
  // and a FIFO's open could wait for a writer.
  int look = OpenBeneath(fd_, path, O_PATH, 0, false);
  if (look < 0) return Errno(errno, path, "cannot open");
  struct stat seen {};
  int rc = fstat(look, &seen);
  int err = errno;
  close(look);
  if (rc != 0) return Errno(err, path, "cannot stat");
  if (!S_ISREG(seen.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", path, "\" is ", FileKind(seen.st_mode), ", not a regular file",
                     S_ISDIR(seen.st_mode) ? " (fs.list lists it)" : ""));
  }
  // Then the open itself, without blocking should the name have been swapped for a FIFO
  // meanwhile; ReadRegularFile checks again what was opened, and the same inode it must be.
  int fd = OpenBeneath(fd_, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, false);
  if (fd < 0) return Errno(errno, path, "cannot open");
  struct stat st {};
  if (fstat(fd, &st) == 0 && (st.st_dev != seen.st_dev || st.st_ino != seen.st_ino)) {
    close(fd);
    return absl::AbortedError(absl::StrCat("\"", path, "\" changed while it was opened"));
  }
  absl::StatusOr<FileData> data = ReadRegularFile(fd, path, cap);
  close(fd);
  return data;
}

bool Workspace::IsRegularFile(const std::string& path) const {
  int look = OpenBeneath(fd_, path, O_PATH, 0, false);
  if (look < 0) return false;
  struct stat st {};
  bool regular = fstat(look, &st) == 0 && S_ISREG(st.st_mode);
  close(look);
  return regular;
}

std::string Workspace::KindOf(const std::string& path) const {
  int look = OpenBeneath(fd_, path, O_PATH, 0, false);
  if (look < 0) return "missing";
  struct stat st {};
  std::string kind = fstat(look, &st) == 0 ? FileKind(st.st_mode) : "missing";
  close(look);
  return kind;
}

absl::Status Workspace::MakeDirs(const std::string& path) const {
  if (absl::Status s = CheckWritable(path); !s.ok()) return s;
  std::string sofar;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    std::string parent = sofar;
    sofar = sofar.empty() ? std::string(part) : absl::StrCat(sofar, "/", part);
    // A name without slashes, made in a directory already proven to be inside.
    if (part == ".." || part == ".") return Errno(EXDEV, path, "");
    int dir = OpenBeneath(fd_, parent, O_RDONLY | O_DIRECTORY, 0, true);
    if (dir < 0) return Errno(errno, parent, "cannot open", true);
    int rc = mkdirat(dir, std::string(part).c_str(), 0755);
    int err = errno;
    close(dir);
    if (rc != 0 && err != EEXIST) return Errno(err, sofar, "cannot create directory");
  }
  return absl::OkStatus();
}

absl::Status Workspace::Remove(const std::string& path) const {
  if (absl::Status s = CheckWritable(path); !s.ok()) return s;
  absl::StatusOr<std::string> name = BaseName(path);
  if (!name.ok()) return name.status();
  int dir = OpenBeneath(fd_, ParentOf(path), O_RDONLY | O_DIRECTORY, 0, true);
  if (dir < 0) return Errno(errno, ParentOf(path), "cannot open", true);
  int rc = unlinkat(dir, name->c_str(), 0);
  int err = errno;
  close(dir);
  return rc == 0 ? absl::OkStatus() : Errno(err, path, "cannot remove");
}

absl::Status Workspace::Rename(const std::string& from, const std::string& to) const {
  if (absl::Status s = CheckWritable(from); !s.ok()) return s;
  if (absl::Status s = CheckWritable(to); !s.ok()) return s;
  auto split = [&](const std::string& p, int* dir, std::string* name) -> absl::Status {
    absl::StatusOr<std::string> base = BaseName(p);
    if (!base.ok()) return base.status();
    *name = *base;
    *dir = OpenBeneath(fd_, ParentOf(p), O_RDONLY | O_DIRECTORY, 0, true);
    return *dir < 0 ? Errno(errno, ParentOf(p), "cannot open", true) : absl::OkStatus();
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
