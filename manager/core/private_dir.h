// Directories only agentd may touch: the socket's directory and the state directory.
//
// Filesystem permissions are the authentication of the unix socket, and the state
// directory holds the admin token and the database. A directory someone else owns (or
// may write to) lets that someone swap the socket for their own, or read and replace
// what agentd keeps there. The default socket directory without XDG_RUNTIME_DIR is
// /tmp/agentd-$UID, which any local user can create first; so agentd trusts a directory
// only after lstat(2) says it is agentd's own: a real directory (not a symlink), owned by
// agentd's effective uid, with no group or other permission bits (0700).
//
// Pure functions of the filesystem; thread-safe.
#ifndef AGENTD_MANAGER_CORE_PRIVATE_DIR_H_
#define AGENTD_MANAGER_CORE_PRIVATE_DIR_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace agentd {

// Creates `dir` with mode 0700 when it is missing (its missing parents 0755), then checks
// it as above. A directory created by someone else between the two steps is checked like
// any other: mkdir's EEXIST is not trusted. `what` names the directory in messages
// ("socket directory", "state directory"). Errors: FAILED_PRECONDITION naming the path,
// its owner and mode and what to do; PERMISSION_DENIED when it cannot be created.
//
// With `group` (server.socket_group: operators in that group may use the admin socket),
// the directory, once checked as agentd's own, is given that group and mode 0750 through
// a descriptor of it (never by path); it may already have group read and search bits,
// never group write. PERMISSION_DENIED when agentd may not give it that group (agentd's
// user must be a member). With `take_back` and no `group`, a directory of agentd's own
// that its group may only read and search (the socket's, left so by a socket_group since
// turned off: it holds no secret) is taken back to 0700 instead of refused; a directory
// that may hold secrets (the state directory) is always refused.
absl::Status EnsurePrivateDir(const std::string& dir, absl::string_view what,
                              std::optional<gid_t> group = std::nullopt, bool take_back = false);

// The check alone, on an lstat(2) result (`is_symlink` from S_ISLNK): OK, or the
// FAILED_PRECONDITION EnsurePrivateDir returns. `uid` is the uid agentd runs as;
// `shared` allows group read and search bits (0750).
absl::Status CheckPrivateDir(const std::string& dir, absl::string_view what, mode_t mode,
                             uid_t owner, uid_t uid, bool shared = false);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_PRIVATE_DIR_H_
