#include "common/hardening.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace agentd {

absl::Status ForbidCoreDumps() {
  rlimit none{0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_CORE, 0): ", std::strerror(errno)));
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return absl::InternalError(absl::StrCat("prctl(PR_SET_DUMPABLE, 0): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::vector<std::string> MinimalEnvironment() {
  static constexpr absl::string_view kKeep[] = {
      "PATH=", "HOME=", "LANG=", "TZ=", "USER=", "LOGNAME=", "TERM=", "LC_"};
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    absl::string_view kv(*e);
    for (absl::string_view k : kKeep) {
      if (absl::StartsWith(kv, k)) {
        env.emplace_back(kv);
        break;
      }
    }
  }
  return env;
}

}  // namespace agentd
