#include "manager/core/workspace_policy.h"

#include <limits.h>
#include <stdlib.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/paths.h"

namespace agentd {
namespace {

// `a` equals `b` or is one of its ancestors (both canonical).
bool Contains(const std::string& a, const std::string& b) {
  if (a == "/" || a == b) return true;
  return absl::StartsWith(b, a) && b.size() > a.size() && b[a.size()] == '/';
}

}  // namespace

absl::StatusOr<std::string> CanonicalPath(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" is not an absolute path"));
  }
  // Fold `.` and `..` lexically first, so that the existing prefix is found even under a
  // name that does not exist yet ("/srv/new/../x").
  std::vector<std::string> parts;
  for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(p);
  }
  // The longest prefix that exists is resolved by the kernel (symlinks included); the
  // rest, which does not exist yet, cannot hold a symlink.
  for (size_t n = parts.size() + 1; n-- > 0;) {
    std::string prefix = absl::StrCat("/", absl::StrJoin(parts.begin(), parts.begin() + n, "/"));
    char resolved[PATH_MAX];
    if (realpath(prefix.c_str(), resolved) == nullptr) continue;
    std::string out = resolved;
    for (size_t i = n; i < parts.size(); ++i) {
      if (out != "/") out += '/';
      out += parts[i];
    }
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", path, "\" cannot be resolved"));
}

absl::Status CheckWorkspacePath(const std::string& workspace,
                                const std::vector<ProtectedDir>& protected_dirs) {
  absl::StatusOr<std::string> ws = CanonicalPath(workspace);
  if (!ws.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("workspace.path: ", ws.status().message()));
  }
  for (const ProtectedDir& p : protected_dirs) {
    absl::StatusOr<std::string> dir = CanonicalPath(p.path);
    if (!dir.ok()) continue;
    std::string where = *ws == workspace ? *ws : absl::StrCat(workspace, " (", *ws, ")");
    if (p.refuse_inside && *ws != *dir && Contains(*dir, *ws)) {
      absl::StatusOr<std::string> allowed =
          p.allowed_inside.empty() ? absl::NotFoundError("") : CanonicalPath(p.allowed_inside);
      if (allowed.ok() && *ws != *allowed && Contains(*allowed, *ws)) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "workspace.path ", where, " is inside ", p.what, " ", *dir,
          ": agents cannot see into it, and what is beside it is agentd's alone. Choose a "
          "directory of its own for the goal (a project's folder, or none to let agentd make "
          "one)"));
    }
    if (!Contains(*ws, *dir)) continue;
    return absl::InvalidArgumentError(absl::StrCat(
        "workspace.path ", where, *ws == *dir ? " is " : " contains ", p.what, " ", *dir,
        ": every agent of the goal could read what is there. Choose a directory of its own "
        "for the goal (a project's folder, or none to let agentd make one)"));
  }
  return absl::OkStatus();
}

std::vector<ProtectedDir> ProtectedDirs(const std::string& state_dir,
                                        const std::string& socket_path,
                                        const std::string& workspaces_dir) {
  std::vector<ProtectedDir> dirs = {
      {state_dir, "agentd's state directory", true, ""},
      {DirName(socket_path), "the directory of agentd's socket", true, workspaces_dir},
      {workspaces_dir, "agentd's workspaces directory (every goal's workspace)", false, ""},
      {"/", "the root directory", false, ""}};
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
    dirs.push_back({home, "the home directory of the user agentd runs as", false, ""});
  }
  return dirs;
}

absl::Status CheckWorkspacesDir(const std::string& workspaces_dir, const std::string& state_dir,
                                const std::string& socket_path) {
  absl::StatusOr<std::string> ws = CanonicalPath(workspaces_dir);
  if (!ws.ok())
    return absl::InvalidArgumentError(absl::StrCat("workspaces_dir: ", ws.status().message()));
  struct {
    std::string path;
    const char* what;
    bool refuse_inside;
  } dirs[] = {{state_dir, "agentd's state directory", true},
              {DirName(socket_path), "the directory of agentd's socket", false},
              // Shown to agents read-only: workspaces under it could not be written.
              {DirName(AgentEndpointPath(socket_path)), "the agent endpoint's directory", true}};
  for (const auto& [path, what, refuse_inside] : dirs) {
    absl::StatusOr<std::string> dir = CanonicalPath(path);
    if (!dir.ok()) continue;
    if ((refuse_inside && Contains(*dir, *ws)) || Contains(*ws, *dir)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "workspaces_dir: ", workspaces_dir, " is ",
          *ws == *dir ? "" : (Contains(*ws, *dir) ? "above " : "inside "), what, " ", *dir,
          ": agents cannot see into it, yet must see their goals' workspaces. Choose a "
          "directory beside it (the default is <state_dir>-workspaces)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace agentd
