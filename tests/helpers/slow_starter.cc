// Test helper: starts PROGRAM only after MS milliseconds, as a slow-starting agent would
// (a large model to load, a cold cache). The program inherits everything, fd 3 included.
//   slow_starter MS PROGRAM [ARGS…]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: slow_starter MS PROGRAM [ARGS...]\n");
    return 2;
  }
  std::printf("slow_starter: starting %s in %s ms\n", argv[2], argv[1]);
  std::fflush(stdout);
  std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(argv[1])));
  execv(argv[2], argv + 2);
  std::perror("slow_starter: exec");
  return 127;
}
