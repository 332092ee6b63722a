// The lines tests/helpers/flooder writes, shared with the tests that check them.
#ifndef AGENTD_TESTS_HELPERS_FLOODER_H_
#define AGENTD_TESTS_HELPERS_FLOODER_H_

#include <cstdint>
#include <cstdio>
#include <string>

namespace agentd::testing {

// Line `i` (without its newline), `len` bytes long (at least 13): its number, then
// letters that depend on the number, so a line out of place or cut short shows.
// Fast enough (a copy, no per-byte work) that the writer is never what a benchmark of
// log capture measures.
inline void FlooderLine(uint64_t i, size_t len, std::string* out) {
  static const std::string alphabet = [] {
    std::string a;
    for (int k = 0; k < 4096 + 26; ++k) a.push_back(static_cast<char>('a' + k % 26));
    return a;
  }();
  char head[32];
  std::snprintf(head, sizeof(head), "%012llu ", static_cast<unsigned long long>(i));
  out->assign(head, 13);
  // Letter j is 'a' + (i + j) % 26.
  out->append(alphabet, (i + 13) % 26, len - 13);
}

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_HELPERS_FLOODER_H_
