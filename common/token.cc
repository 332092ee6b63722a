#include "common/token.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace agentd {

bool FillRandom(void* buf, size_t n) {
  auto* out = static_cast<unsigned char*>(buf);
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

std::string NewToken() {
  unsigned char buf[32];
  // No entropy source: refuse to mint a guessable token.
  if (!FillRandom(buf, sizeof(buf))) std::abort();
  return absl::StrCat("agentd_", absl::BytesToHexString(
                                     absl::string_view(reinterpret_cast<char*>(buf), sizeof(buf))));
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    std::string msg = absl::StrCat(path, ": cannot open token file: ", std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg) : absl::PermissionDeniedError(msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, ": token file is not a regular file"));
  }
  if (st.st_uid != geteuid()) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrCat(path, ": token file belongs to uid ", st.st_uid,
                                                    ", not to this user (uid ", geteuid(), ")"));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": token file is accessible by group or others (mode ",
                     absl::Hex(st.st_mode & 0777), "); run: chmod 600 ", path));
  }
  std::string data(4096, '\0');
  ssize_t n = read(fd, data.data(), data.size());
  int err = errno;
  close(fd);
  if (n < 0) {
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot read: ", std::strerror(err)));
  }
  data.resize(static_cast<size_t>(n));
  std::string token(absl::StripAsciiWhitespace(data));
  if (token.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": token file is empty"));
  }
  return token;
}

absl::StatusOr<std::string> LoadOrCreateTokenFile(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return ReadTokenFile(path);
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot create token file: ", std::strerror(errno)));
  }
  std::string token = NewToken();
  std::string line = token + "\n";
  bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  int err = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": cannot write token file: ", std::strerror(err)));
  }
  return token;
}

bool TokenEquals(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace agentd
