#include "common/malloc_tuning.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace agentd {

void TuneMalloc() {
#if defined(__GLIBC__)
  // Setting it fixes the mmap threshold at its default (128 KiB) as well: blocks that
  // large are mapped and unmapped on their own, as before.
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHeapTrimThreshold));
#endif
}

}  // namespace agentd
