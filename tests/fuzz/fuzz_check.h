// FUZZ_CHECK: a property every input must keep; a violation aborts, which libFuzzer
// reports (with the input saved) like any crash.
#ifndef AGENTD_TESTS_FUZZ_FUZZ_CHECK_H_
#define AGENTD_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // AGENTD_TESTS_FUZZ_FUZZ_CHECK_H_
