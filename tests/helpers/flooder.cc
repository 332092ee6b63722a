// Test helper: writes LINES lines of LEN bytes (newline included) to stdout as fast as
// the pipe takes them, then exits 0. Each line is FlooderLine(i) (tests/helpers/flooder.h).
// With --report it then says on stderr how long the writing took:
// "flooder: wrote B bytes in S s".
//   flooder LINES LEN [--report]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/helpers/flooder.h"

int main(int argc, char** argv) {
  bool report = argc == 4 && std::string(argv[3]) == "--report";
  if (argc != 3 && !report) {
    std::fprintf(stderr, "usage: flooder LINES LEN [--report]\n");
    return 2;
  }
  unsigned long long lines = std::strtoull(argv[1], nullptr, 10);
  size_t len = std::strtoul(argv[2], nullptr, 10);
  if (len < 14 || len > 4096) {
    std::fprintf(stderr, "flooder: LEN must be 14 to 4096\n");
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  std::string buf, line;
  buf.reserve((1 << 16) + len);
  for (unsigned long long i = 0; i < lines; ++i) {
    agentd::testing::FlooderLine(i, len - 1, &line);
    buf += line;
    buf += '\n';
    if (buf.size() >= (1 << 16) || i + 1 == lines) {
      for (size_t off = 0; off < buf.size();) {
        ssize_t w = write(STDOUT_FILENO, buf.data() + off, buf.size() - off);
        if (w < 0) return 1;
        off += static_cast<size_t>(w);
      }
      buf.clear();
    }
  }
  if (report) {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::fprintf(stderr, "flooder: wrote %llu bytes in %.6f s\n", lines * len, took.count());
  }
  return 0;
}
