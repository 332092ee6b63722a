#include "common/paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace agentd {
namespace {
std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}
}  // namespace

std::string DefaultSocketPath() {
  if (std::string run = Env("XDG_RUNTIME_DIR"); !run.empty()) {
    return absl::StrCat(run, "/agentd/agentd.sock");
  }
  if (geteuid() == 0) return "/run/agentd/agentd.sock";
  return absl::StrCat("/tmp/agentd-", geteuid(), "/agentd.sock");
}

std::string DefaultStateDir() {
  if (std::string state = Env("XDG_STATE_HOME"); !state.empty()) {
    return absl::StrCat(state, "/agentd");
  }
  if (geteuid() == 0) return "/var/lib/agentd";
  if (std::string home = Env("HOME"); !home.empty()) {
    return absl::StrCat(home, "/.local/state/agentd");
  }
  return absl::StrCat("/tmp/agentd-", geteuid(), "/state");
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

namespace {
// Creates missing ancestors with 0755; existing ones are left exactly as they are.
absl::Status MakeParents(const std::string& dir) {
  if (dir.empty() || dir == "/" || dir == ".") return absl::OkStatus();
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    return S_ISDIR(st.st_mode) ? absl::OkStatus()
                               : absl::FailedPreconditionError(
                                     absl::StrCat(dir, ": exists and is not a directory"));
  }
  if (absl::Status s = MakeParents(DirName(dir)); !s.ok()) return s;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": cannot create directory: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status MakeDirs(const std::string& dir, unsigned mode) {
  if (dir.empty() || dir == "/" || dir == ".") return absl::OkStatus();
  struct stat st;
  if (stat(dir.c_str(), &st) == 0) {
    // An existing directory is the user's: its mode is left as it is (it may be /tmp).
    return S_ISDIR(st.st_mode) ? absl::OkStatus()
                               : absl::FailedPreconditionError(
                                     absl::StrCat(dir, ": exists and is not a directory"));
  }
  if (absl::Status s = MakeParents(DirName(dir)); !s.ok()) return s;
  if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": cannot create directory: ", std::strerror(errno)));
  }
  // mkdir applies the umask; set the mode we were asked for.
  if (chmod(dir.c_str(), mode) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir, ": cannot set mode: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::string why = absl::StrCat(path, ": ", std::strerror(errno));
    if (errno == ENOENT) return absl::NotFoundError(why);
    if (errno == EACCES) return absl::PermissionDeniedError(why);
    return absl::InternalError(why);
  }
  std::string out;
  char buf[16 << 10];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string why = absl::StrCat(path, ": ", std::strerror(errno));
      close(fd);
      return absl::InternalError(why);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": larger than ", max_bytes, " bytes"));
    }
  }
  close(fd);
  return out;
}

std::string RealPathOr(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return path;
  return buf;
}

std::string AgentEndpointPath(const std::string& socket) { return socket + ".agent/agent.sock"; }

}  // namespace agentd
