#include "common/sha256.h"

#include <nettle/hmac.h>
#include <nettle/sha2.h>

#include "absl/strings/escaping.h"

namespace agentd {
namespace {

const uint8_t* Bytes(absl::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

}  // namespace

static_assert(SHA256_DIGEST_SIZE == std::tuple_size<Sha256Digest>::value);

Sha256Digest Sha256(absl::string_view data) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), Bytes(data));
  Sha256Digest out;
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

Sha256Digest HmacSha256(absl::string_view key, absl::string_view data) {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key.size(), Bytes(key));
  hmac_sha256_update(&ctx, data.size(), Bytes(data));
  Sha256Digest out;
  hmac_sha256_digest(&ctx, out.size(), out.data());
  return out;
}

std::string DigestHex(const Sha256Digest& digest) {
  return absl::BytesToHexString(DigestBytes(digest));
}

std::string DigestBytes(const Sha256Digest& digest) {
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

}  // namespace agentd
