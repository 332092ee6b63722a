// The lines tests/helpers/flooder writes, shared with the tests that check them.
#ifndef AGENTD_TESTS_HELPERS_FLOODER_H_
#define AGENTD_TESTS_HELPERS_FLOODER_H_

#include <cstdint>
#include <cstdio>
#include <string>

namespace agentd::testing {

// Line `i` (without its newline), `len` bytes long (at least 13): its number, then
// letters that depend on the number, so a line out of place or cut short shows.
inline void FlooderLine(uint64_t i, size_t len, std::string* out) {
  char head[32];
  std::snprintf(head, sizeof(head), "%012llu ", static_cast<unsigned long long>(i));
  out->assign(head, 13);
  for (size_t j = 13; j < len; ++j) out->push_back(static_cast<char>('a' + (i + j) % 26));
}

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_HELPERS_FLOODER_H_
