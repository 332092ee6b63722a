// Test helper: exits with a chosen code after a chosen time.
//   crasher EXIT_CODE AFTER_MS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: crasher EXIT_CODE AFTER_MS\n");
    return 2;
  }
  std::printf("crasher: exiting with %s in %s ms\n", argv[1], argv[2]);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[2])));
  return std::atoi(argv[1]);
}
