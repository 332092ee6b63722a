// Bearer tokens: generation, the 0600 token file, and comparison.
//
// A token is "agentd_" followed by 64 hex digits (256 random bits from getrandom(2)).
// Token files are refused when group- or world-accessible or not owned by this user, as
// ssh refuses a private key: a token others can read is a token others can use.
// All functions are thread-safe.
#ifndef AGENTD_COMMON_TOKEN_H_
#define AGENTD_COMMON_TOKEN_H_

#include <cstddef>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace agentd {

std::string NewToken();

// Fills `buf` with `n` bytes from getrandom(2), the kernel's CSPRNG (blocking only until
// it is first seeded). False when it cannot, which a caller must treat as an error.
bool FillRandom(void* buf, size_t n);

// Reads the token in `path` (surrounding whitespace dropped). Errors name the path and
// say how to fix it (e.g. "chmod 600").
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Reads `path`, or when it does not exist creates it (0600, O_EXCL) holding NewToken().
absl::StatusOr<std::string> LoadOrCreateTokenFile(const std::string& path);

// Compares in time independent of where the inputs differ.
bool TokenEquals(absl::string_view a, absl::string_view b);

}  // namespace agentd

#endif  // AGENTD_COMMON_TOKEN_H_
