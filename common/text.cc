#include "common/text.h"

#include "absl/strings/str_format.h"

namespace agentd {
namespace {

// Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0 when there is none.
size_t Utf8Length(const unsigned char* p, size_t n) {
  unsigned char c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (n < len || p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < len; ++i) {
    if (p[i] < 0x80 || p[i] > 0xBF) return 0;
  }
  return len;
}

template <typename OnBad>
std::string Rewrite(absl::string_view bytes, OnBad on_bad) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    size_t len = Utf8Length(p + i, n - i);
    if (len == 0 || (len == 1 && !on_bad(p[i], nullptr))) {
      on_bad(p[i], &out);
      ++i;
      continue;
    }
    out.append(bytes.data() + i, len);
    i += len;
  }
  return out;
}

}  // namespace

std::string ValidUtf8(absl::string_view bytes) {
  // Every ASCII byte is fine; a bad byte becomes U+FFFD.
  return Rewrite(bytes, [](unsigned char, std::string* out) {
    if (out != nullptr) out->append("\xEF\xBF\xBD");
    return true;
  });
}

std::string EscapeForTerminal(absl::string_view bytes) {
  // ASCII control characters other than tab, and DEL, are escaped too.
  return Rewrite(bytes, [](unsigned char c, std::string* out) {
    if (out != nullptr) {
      absl::StrAppendFormat(out, "\\x%02x", c);
      return true;
    }
    return c == '\t' || (c >= 0x20 && c != 0x7f);
  });
}

}  // namespace agentd
