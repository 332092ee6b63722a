// Where agentd's files live when the configuration does not say: the XDG base directory
// rules for a user, the FHS ones for root (a system service).
//
//   socket     $XDG_RUNTIME_DIR/agentd/agentd.sock | /run/agentd/agentd.sock (root)
//              | /tmp/agentd-$UID/agentd.sock
//   state dir  $XDG_STATE_HOME/agentd | /var/lib/agentd (root) | $HOME/.local/state/agentd
//
// Both agentd and agentctl resolve the socket this way, so they meet without flags.
// Pure functions of the environment; thread-safe.
#ifndef AGENTD_COMMON_PATHS_H_
#define AGENTD_COMMON_PATHS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace agentd {

std::string DefaultSocketPath();
std::string DefaultStateDir();

// Creates `dir` with `mode` (umask notwithstanding) and its missing parents with 0755.
// A directory that already exists is left exactly as it is. Errors name the path.
absl::Status MakeDirs(const std::string& dir, unsigned mode);

// The contents of the file at `path`. Errors: NOT_FOUND / PERMISSION_DENIED naming the
// path; FAILED_PRECONDITION when it is larger than `max_bytes`.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes);

// The directory part of `path` ("." when there is none).
std::string DirName(const std::string& path);

// realpath(3) of `path`, or `path` itself when it does not resolve.
std::string RealPathOr(const std::string& path);

// The agent endpoint of the daemon whose admin socket is `socket`: a socket in a private
// directory of its own beside it, "<socket>.agent/agent.sock", so that an isolated agent
// can be shown that directory alone.
std::string AgentEndpointPath(const std::string& socket);

}  // namespace agentd

#endif  // AGENTD_COMMON_PATHS_H_
