// The UTF-8 helpers (common/text.h) on any bytes: results are valid UTF-8, within their
// limits, and valid input passes through unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/text.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t limit = data[0];  // the first byte picks the limit
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  bool valid = agentd::IsValidUtf8(bytes);
  size_t replaced = 0;
  std::string v = agentd::ValidUtf8(bytes, &replaced);
  FUZZ_CHECK(agentd::IsValidUtf8(v));
  FUZZ_CHECK(valid == (replaced == 0));
  if (valid) FUZZ_CHECK(v == bytes);
  std::string prefix = agentd::Utf8Prefix(bytes, limit, "...");
  FUZZ_CHECK(agentd::IsValidUtf8(prefix));
  FUZZ_CHECK(prefix.size() <= limit);
  size_t cut = agentd::Utf8CutPoint(bytes, limit);
  FUZZ_CHECK(cut <= limit && cut <= bytes.size());
  if (valid) FUZZ_CHECK(agentd::IsValidUtf8(bytes.substr(0, cut)));
  if (valid && limit >= 3) FUZZ_CHECK(cut + 3 >= std::min(limit, bytes.size()));
  FUZZ_CHECK(agentd::IsValidUtf8(agentd::Utf8Suffix(bytes, limit)));
  size_t start = agentd::Utf8SuffixStart(bytes, limit);
  if (valid) FUZZ_CHECK(agentd::IsValidUtf8(bytes.substr(start)));
  std::string esc = agentd::EscapeForTerminal(bytes);
  FUZZ_CHECK(agentd::IsValidUtf8(esc));
  for (char c : esc) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  FUZZ_CHECK(agentd::EscapeForTerminal(esc) == esc);
  for (char c : agentd::EscapeForTerminal(bytes, /*keep_newlines=*/true)) {
    FUZZ_CHECK(c == '\n' || c == '\t' || (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f));
  }
  return 0;
}
