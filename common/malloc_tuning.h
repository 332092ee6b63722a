// How agentd and agentd-agent set glibc's allocator, once, first thing in main().
#ifndef AGENTD_COMMON_MALLOC_TUNING_H_
#define AGENTD_COMMON_MALLOC_TUNING_H_

#include <cstddef>

namespace agentd {

// Free memory at the top of a thread's heap is given back to the kernel only beyond
// this many bytes.
inline constexpr size_t kHeapTrimThreshold = size_t{1} << 20;

// Sets glibc's trim threshold to kHeapTrimThreshold (M_TRIM_THRESHOLD). Why: glibc's
// default (128 KiB, raised only by frees of mmap'd blocks) made the core loop's thread
// give its heap's top back with madvise(MADV_DONTNEED) after almost every SQLite
// statement, ~11 times per goal, each a TLB shootdown across CPUs and then page faults
// to touch the same memory again (agentd's profile: ~5 % of its CPU; 5,600 madvise
// calls and 5,700 page faults in 5 s of turn_bench, 410 and 500 with this). At most
// that much freed memory per heap stays resident. Safe to call once from any thread
// before others start; does nothing on another C library.
void TuneMalloc();

}  // namespace agentd

#endif  // AGENTD_COMMON_MALLOC_TUNING_H_
