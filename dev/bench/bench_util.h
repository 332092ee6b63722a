// What the benchmarks share: medians, and a process's memory and CPU from /proc.
#ifndef AGENTD_DEV_BENCH_BENCH_UTIL_H_
#define AGENTD_DEV_BENCH_BENCH_UTIL_H_

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

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

// A NOTIFY_SOCKET for one agentd start: bound at construction; ReadyAfter() waits for
// READY=1 and returns the time since `t0`, or -1 after `timeout` without it.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;
  // "NOTIFY_SOCKET=PATH", for the started process's environment.
  std::string Env() const { return "NOTIFY_SOCKET=" + path_; }
  absl::Duration ReadyAfter(absl::Time t0, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    for (absl::Time now = absl::Now(); now < deadline; now = absl::Now()) {
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, static_cast<int>(absl::ToInt64Milliseconds(deadline - now)) + 1) <= 0) break;
      char buf[512];
      ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).find("READY=1") != std::string::npos)
        return absl::Now() - t0;
    }
    return absl::Milliseconds(-1);
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// A budget on a figure: on its value or on its ratio to the baseline, an upper or a lower
// bound. kNone: reported, with no budget.
struct Budget {
  enum class On { kNone, kValue, kRatio };
  On on = On::kNone;
  bool at_most = true;  // value (or ratio) <= limit; false: >= limit
  double limit = 0;
  static Budget ValueAtMost(double l) { return {On::kValue, true, l}; }
  static Budget ValueAtLeast(double l) { return {On::kValue, false, l}; }
  static Budget RatioAtMost(double l) { return {On::kRatio, true, l}; }
  static Budget RatioAtLeast(double l) { return {On::kRatio, false, l}; }
};

// One figure of a benchmark, beside the baseline measured in the same run. `ratio` is
// value ÷ baseline unless the benchmark states another (say, throughput where > 1 is
// faster); NaN where there is no baseline.
struct Figure {
  std::string bench;  // "daemon_bench"
  std::string name;   // "GetInfo, 1 thread"
  double value = NAN;
  std::string unit;      // "calls/s", "ms", "MB", "% of a core"
  std::string baseline;  // what the baseline is: "raw gRPC callback server"
  double baseline_value = NAN;
  double ratio = NAN;
  Budget budget;
  std::string note;  // anything the number needs to be read right
};

// Whether `f` meets its budget (true when it has none; false when the figure is missing).
inline bool Met(const Figure& f) {
  if (f.budget.on == Budget::On::kNone) return true;
  double x = f.budget.on == Budget::On::kValue ? f.value : f.ratio;
  if (std::isnan(x)) return false;
  return f.budget.at_most ? x <= f.budget.limit : x >= f.budget.limit;
}

// Appends `f` as one JSON line to the file named by $AGENTD_BENCH_JSONL (dev/bench/run
// --json sets it, and dev/bench/report turns the lines into its table and JSON file).
// Without the variable, nothing: the benchmark's own text is its output.
inline void Report(Figure f) {
  if (std::isnan(f.ratio) && !std::isnan(f.baseline_value) && f.baseline_value != 0)
    f.ratio = f.value / f.baseline_value;
  const char* path = std::getenv("AGENTD_BENCH_JSONL");
  if (path == nullptr || *path == '\0') return;
  auto num = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
  nlohmann::json j = {{"bench", f.bench},       {"name", f.name},
                      {"value", num(f.value)},  {"unit", f.unit},
                      {"baseline", f.baseline}, {"baseline_value", num(f.baseline_value)},
                      {"ratio", num(f.ratio)},  {"note", f.note}};
  if (f.budget.on != Budget::On::kNone) {
    j["budget"] = {{"on", f.budget.on == Budget::On::kValue ? "value" : "ratio"},
                   {"op", f.budget.at_most ? "<=" : ">="},
                   {"limit", f.budget.limit}};
    j["met"] = Met(f);
  }
  std::ofstream(path, std::ios::app)
      << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace agentd::bench

#endif  // AGENTD_DEV_BENCH_BENCH_UTIL_H_
