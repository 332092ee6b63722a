// What the benchmarks share: medians, and a process's memory and CPU from /proc.
#ifndef AGENTD_DEV_BENCH_BENCH_UTIL_H_
#define AGENTD_DEV_BENCH_BENCH_UTIL_H_

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace agentd::bench {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A "Field:   123 kB" line of /proc/PID/status or smaps_rollup, in KiB (-1 if absent).
inline int64_t ProcKiB(pid_t pid, const char* file, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/", file));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}
inline int64_t RssKiB(pid_t pid) { return ProcKiB(pid, "status", "VmRSS"); }
inline int64_t PeakRssKiB(pid_t pid) { return ProcKiB(pid, "status", "VmHWM"); }

// CPU time (user + system) the process has used, in seconds; -1 if it is gone.
inline double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  if (!std::getline(in, stat)) return -1;
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 13 && (rest >> field); ++i) {
  }
  double utime = 0, stime = 0;
  rest >> utime >> stime;  // fields 14 and 15, in clock ticks
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace agentd::bench

#endif  // AGENTD_DEV_BENCH_BENCH_UTIL_H_
