// Test helper: exits with a chosen code after a chosen time.
//   crasher EXIT_CODE AFTER_MS [STAMPS]
// With STAMPS it appends "start NS" when it starts and "exit NS" just before it exits,
// NS being CLOCK_MONOTONIC in nanoseconds (one clock for every process on the machine),
// so that a test measures the supervisor's restart delays itself rather than trusting
// what the supervisor says about them.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

void Stamp(const char* path, const char* what) {
  if (path == nullptr) return;
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  char line[64];
  int n = std::snprintf(line, sizeof(line), "%s %lld\n", what,
                        static_cast<long long>(now.tv_sec) * 1000000000LL + now.tv_nsec);
  // One write(2) with O_APPEND: a line is never torn or interleaved.
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!write(fd, line, static_cast<size_t>(n));
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: crasher EXIT_CODE AFTER_MS [STAMPS]\n");
    return 2;
  }
  const char* stamps = argc == 4 ? argv[3] : nullptr;
  Stamp(stamps, "start");
  std::printf("crasher: exiting with %s in %s ms\n", argv[1], argv[2]);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[2])));
  Stamp(stamps, "exit");
  return std::atoi(argv[1]);
}
