#include "manager/core/private_dir.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/paths.h"

namespace agentd {
namespace {

// "65534 (nobody)", or the bare number for a uid with no passwd entry.
std::string UidName(uid_t uid) {
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found != nullptr) {
    return absl::StrCat(uid, " (", found->pw_name, ")");
  }
  return absl::StrCat(uid);
}

}  // namespace

absl::Status CheckPrivateDir(const std::string& dir, absl::string_view what, mode_t mode,
                             uid_t owner, uid_t uid, bool shared) {
  if (S_ISLNK(mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " ", dir,
        " is a symbolic link; agentd does not follow one there (whoever can change the link "
        "can redirect agentd). Remove the link, or give agentd the real directory's path."));
  }
  if (!S_ISDIR(mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", dir,
                     " exists and is not a directory; remove it or choose "
                     "another path."));
  }
  unsigned perms = mode & 07777;
  if (owner != uid || (perms & (shared ? 027u : 077u)) != 0) {
    std::string mode_text = absl::StrFormat("%04o", perms);
    std::string fix =
        owner != uid
            ? absl::StrCat(
                  "another user may have created it to take over agentd's files. "
                  "Remove it (as its owner or root) and start agentd again, or choose "
                  "another path")
            : absl::StrCat("other users could replace what agentd keeps there. Run `chmod 700 ",
                           dir, "` if it holds only agentd's files, or choose another path");
    return absl::FailedPreconditionError(
        absl::StrCat(what, " ", dir, " is owned by uid ", UidName(owner), " with mode ", mode_text,
                     "; agentd (uid ", UidName(uid), ") needs it owned by itself with mode ",
                     shared ? "0750 or stricter (no group write)" : "0700", ": ", fix, "."));
  }
  return absl::OkStatus();
}

absl::Status EnsurePrivateDir(const std::string& dir, absl::string_view what,
                              std::optional<gid_t> group, bool take_back) {
  if (dir.empty() || dir == "/" || dir == ".") {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " \"", dir,
                     "\" cannot be made private to agentd; choose a directory "
                     "of its own"));
  }
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return absl::PermissionDeniedError(
          absl::StrCat(what, " ", dir, ": cannot inspect: ", std::strerror(errno)));
    }
    if (absl::Status s = MakeDirs(DirName(dir), 0755); !s.ok()) return s;
    // The umask may only take bits away from 0700; nothing is chmod'ed by path afterwards,
    // so nothing can be redirected between the mkdir and the check below.
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(
          absl::StrCat(what, " ", dir, ": cannot create: ", std::strerror(errno)));
    }
    // EEXIST: someone made it first; it is checked like any existing one.
    if (lstat(dir.c_str(), &st) != 0) {
      return absl::PermissionDeniedError(
          absl::StrCat(what, " ", dir, ": cannot inspect: ", std::strerror(errno)));
    }
  }
  // A directory of agentd's own that only its group may read (left by a socket_group now
  // turned off) is taken back to 0700 below rather than refused; group write never passes.
  const bool group_readable =
      take_back && st.st_uid == geteuid() && (st.st_mode & 077) != 0 && (st.st_mode & 027) == 0;
  if (absl::Status s = CheckPrivateDir(dir, what, st.st_mode, st.st_uid, geteuid(),
                                       group.has_value() || group_readable);
      !s.ok() || (!group && !group_readable)) {
    return s;
  }
  // Shared with `group` (or taken back to 0700): changed through a descriptor of the
  // directory just checked (the same inode, not a symlink), so nothing slips in between.
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(what, " ", dir, ": cannot open: ", std::strerror(errno)));
  }
  struct stat now;
  absl::Status result;
  if (fstat(fd, &now) != 0 || now.st_ino != st.st_ino || now.st_dev != st.st_dev) {
    result = absl::FailedPreconditionError(
        absl::StrCat(what, " ", dir, " changed while agentd checked it; start agentd again"));
  } else if (!group) {
    if (fchmod(fd, 0700) != 0) {
      result = absl::PermissionDeniedError(
          absl::StrCat(what, " ", dir, ": cannot chmod 0700: ", std::strerror(errno)));
    }
  } else if (fchown(fd, static_cast<uid_t>(-1), *group) != 0) {
    result =
        absl::PermissionDeniedError(absl::StrCat(what, " ", dir, ": cannot give it group ", *group,
                                                 " (server.socket_group): ", std::strerror(errno),
                                                 "; agentd's user must be a member of that group"));
  } else if (fchmod(fd, 0750) != 0) {
    result = absl::PermissionDeniedError(
        absl::StrCat(what, " ", dir, ": cannot chmod 0750: ", std::strerror(errno)));
  }
  close(fd);
  return result;
}

}  // namespace agentd
