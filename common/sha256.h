// SHA-256 and HMAC-SHA256 (RFC 2104) of byte strings, through GNU Nettle.
//
// Why not OpenSSL's EVP, which agentd links anyway (gRPC's TLS): OpenSSL 3 answers the
// first digest of a process by loading its configuration and its default provider, and
// that touches about 2 MB of libcrypto that then stays resident for the daemon's whole
// life — a fifth of what an idle agentd holds. Nettle's functions are plain code over a
// context on the stack: nothing is loaded or initialised, and libcrypto stays untouched
// until a TLS listener or client needs it.
//
// All functions are thread-safe (no shared state).
#ifndef AGENTD_COMMON_SHA256_H_
#define AGENTD_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace agentd {

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 of `data`.
Sha256Digest Sha256(absl::string_view data);

// HMAC-SHA256 of `data` under `key` (any length; RFC 2104 hashes a key over 64 bytes).
Sha256Digest HmacSha256(absl::string_view key, absl::string_view data);

// The digest as 64 lower-case hex digits.
std::string DigestHex(const Sha256Digest& digest);

// The digest's 32 bytes as a string.
std::string DigestBytes(const Sha256Digest& digest);

}  // namespace agentd

#endif  // AGENTD_COMMON_SHA256_H_
