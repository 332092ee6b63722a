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

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

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

bool IsValidUtf8(absl::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  for (size_t i = 0; i < n;) {
    // ASCII runs are the common case: skip them a byte at a time without the table.
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    size_t len = Utf8Length(p + i, n - i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string ValidUtf8(absl::string_view bytes, size_t* replaced) {
  size_t bad = 0;
  std::string out;
  if (IsValidUtf8(bytes)) {
    out.assign(bytes.data(), bytes.size());  // the common case: one copy, no rewrite
  } else {
    // Every ASCII byte is fine; a bad byte becomes U+FFFD.
    out = Rewrite(bytes, [&bad](unsigned char, std::string* o) {
      if (o != nullptr) {
        o->append("\xEF\xBF\xBD");
        ++bad;
      }
      return true;
    });
  }
  if (replaced != nullptr) *replaced = bad;
  return out;
}

size_t Utf8CutPoint(absl::string_view bytes, size_t max_bytes) {
  if (max_bytes >= bytes.size()) return bytes.size();
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = max_bytes;
  if (!IsContinuation(p[n])) return n;  // the cut falls between characters
  // Back to the lead byte of the character that p[n] continues, when it is one whose
  // well-formed sequence reaches past the cut; a stray continuation byte is cut anywhere.
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    size_t start = n - k;
    if (IsContinuation(p[start])) continue;
    return Utf8Length(p + start, bytes.size() - start) > k ? start : n;
  }
  return n;
}

std::string Utf8Prefix(absl::string_view bytes, size_t max_bytes, absl::string_view marker) {
  std::string valid = ValidUtf8(bytes);
  if (valid.size() <= max_bytes) return valid;
  if (marker.size() > max_bytes) {
    valid.resize(Utf8CutPoint(valid, max_bytes));
    return valid;
  }
  valid.resize(Utf8CutPoint(valid, max_bytes - marker.size()));
  valid.append(marker.data(), marker.size());
  return valid;
}

size_t Utf8SuffixStart(absl::string_view bytes, size_t max_bytes) {
  if (bytes.size() <= max_bytes) return 0;
  size_t start = bytes.size() - max_bytes;
  // At most three continuation bytes belong to a character whose lead byte was cut.
  for (int k = 0;
       k < 3 && start < bytes.size() && IsContinuation(static_cast<unsigned char>(bytes[start]));
       ++k) {
    ++start;
  }
  return start;
}

std::string Utf8Suffix(absl::string_view bytes, size_t max_bytes) {
  return ValidUtf8(bytes.substr(Utf8SuffixStart(bytes, max_bytes)));
}

namespace {

// The code point at text[*i], advancing *i past it; -1 (advancing one byte) for a byte
// that does not start a well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF).
int32_t NextCodePoint(absl::string_view text, size_t* i) {
  unsigned char c = static_cast<unsigned char>(text[*i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || *i + len > text.size()) {
    ++*i;
    return -1;
  }
  int32_t cp = len == 1 ? c : c & (0x7f >> len);
  for (int k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(text[*i + k]);
    if ((cc & 0xc0) != 0x80) {
      ++*i;
      return -1;
    }
    cp = (cp << 6) | (cc & 0x3f);
  }
  static constexpr int32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
    ++*i;
    return -1;
  }
  *i += len;
  return cp;
}

// What reorders the text shown, or ends a line without a newline.
bool Reorders(int32_t cp) {
  return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

}  // namespace

std::string EscapeForTerminal(absl::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t start = i;
    int32_t cp = NextCodePoint(text, &i);
    if (cp < 0) {
      absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(text[start]));
    } else if (cp == '\n' || cp == '\t') {
      if (keep_newlines) {
        out += static_cast<char>(cp);
      } else {
        out += cp == '\n' ? "\\n" : "\\t";
      }
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7f) {
      absl::StrAppendFormat(&out, "\\x%02x", cp);
    } else if ((cp >= 0x80 && cp <= 0x9f) || Reorders(cp)) {
      absl::StrAppendFormat(&out, "\\u%04x", cp);
    } else {
      out.append(text.data() + start, i - start);
    }
  }
  return out;
}

}  // namespace agentd
