#include "manager/core/cgroups.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

bool WriteString(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  int err = errno;
  close(fd);
  errno = err;
  return ok;
}

// This process's cgroup v2 path ("/system.slice/agentd.service"), from /proc/self/cgroup.
std::string OwnCgroup() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "0::")) return line.substr(3);
  }
  return "";
}

// Where the cgroup2 filesystem is mounted, from /proc/self/mountinfo; empty if nowhere.
std::string Cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "36 35 0:31 / /sys/fs/cgroup rw,… shared:9 - cgroup2 cgroup2 rw,…"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::vector<std::string> after = absl::StrSplit(line.substr(dash + 3), ' ');
    std::vector<std::string> before = absl::StrSplit(line.substr(0, dash), ' ');
    if (!after.empty() && after[0] == "cgroup2" && before.size() > 4) return before[4];
  }
  return "";
}

bool ReadFileIsEmpty(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  return !std::getline(in, line) || line.empty();
}

std::vector<std::string> SubDirs(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') out.push_back(e->d_name);
    }
    closedir(d);
  }
  return out;
}

// A short, stable name for an instance (FNV-1a of its state directory's path).
std::string InstanceKey(const std::string& instance) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : instance) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%08x", static_cast<uint32_t>(h ^ (h >> 32)));
}

// Kills what runs in the `prefix`<pid> folders of daemons that are gone, and removes them;
// also agentd.<pid>, the folders of agentd releases before instances.
void ClearStale(const std::string& own, const std::string& prefix) {
  for (const std::string& name : SubDirs(own)) {
    int64_t pid = 0;
    bool ours =
        absl::StartsWith(name, prefix) && absl::SimpleAtoi(name.substr(prefix.size()), &pid);
    bool legacy = !ours && absl::StartsWith(name, "agentd.") &&
                  absl::SimpleAtoi(absl::StripPrefix(name, "agentd."), &pid);
    if (!(ours || legacy) || pid == getpid() || kill(static_cast<pid_t>(pid), 0) == 0 ||
        errno != ESRCH) {
      continue;
    }
    std::string dir = absl::StrCat(own, "/", name);
    for (const std::string& agent : SubDirs(dir)) {
      std::string path = absl::StrCat(dir, "/", agent);
      if (!ReadFileIsEmpty(path + "/cgroup.procs")) {
        spdlog::warn("cgroup {}: processes of an agentd that is gone; killing them", path);
        AgentCgroups::Kill(path);
      }
      rmdir(path.c_str());  // EBUSY while the killed processes are still exiting
    }
    rmdir(dir.c_str());
  }
}

}  // namespace

std::unique_ptr<AgentCgroups> AgentCgroups::Detect(std::string* why, const std::string& instance,
                                                   const std::string& root) {
  std::string mount = root.empty() ? Cgroup2Mount() : root;
  if (mount.empty()) {
    *why = "no cgroup v2 hierarchy is mounted";
    return nullptr;
  }
  std::string rel = root.empty() ? OwnCgroup() : "/";
  std::string own = rel == "/" || rel.empty() ? mount : mount + rel;
  // The same state dir however it was spelled (./s, /abs/s/): its resolved path.
  char resolved[PATH_MAX];
  std::string canonical = realpath(instance.c_str(), resolved) != nullptr ? resolved : instance;
  std::string prefix = absl::StrCat("agentd.", InstanceKey(canonical), ".");
  std::string base = absl::StrCat(own, "/", prefix, getpid());
  if (mkdir(base.c_str(), 0755) != 0 && errno != EEXIST) {
    *why = absl::StrCat("cannot create ", base, ": ", std::strerror(errno));
    return nullptr;
  }
  if (access((base + "/cgroup.kill").c_str(), F_OK) != 0) {
    rmdir(base.c_str());
    *why = absl::StrCat(own, " has no cgroup.kill (Linux 5.14 or later has it)");
    return nullptr;
  }
  ClearStale(own, prefix);
  return std::unique_ptr<AgentCgroups>(new AgentCgroups(base));
}

AgentCgroups::~AgentCgroups() {
  for (const std::string& agent : SubDirs(base_)) rmdir(absl::StrCat(base_, "/", agent).c_str());
  rmdir(base_.c_str());
}

absl::StatusOr<std::string> AgentCgroups::Create(const std::string& agent) {
  absl::MutexLock l(&mu_);
  std::vector<std::string>& earlier = earlier_[agent];
  earlier.erase(std::remove_if(earlier.begin(), earlier.end(),
                               [](const std::string& p) { return rmdir(p.c_str()) == 0; }),
                earlier.end());
  // A folder left by an earlier agentd with this pid is not reused: the next number is.
  std::string path;
  int rc = -1;
  for (int tries = 0; tries < 1000 && rc != 0; ++tries) {
    path = absl::StrCat(base_, "/", agent, ".", next_++);
    rc = mkdir(path.c_str(), 0755);
    if (rc != 0 && errno != EEXIST) break;
  }
  if (rc == 0) earlier.push_back(path);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot create cgroup ", path, ": ", std::strerror(errno)));
  }
  return path;
}

void AgentCgroups::Kill(const std::string& path) {
  if (!WriteString(path + "/cgroup.kill", "1") && errno != ENOENT) {
    spdlog::warn("cgroup {}: cgroup.kill: {}", path, std::strerror(errno));
  }
}

}  // namespace agentd
