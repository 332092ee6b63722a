// Test helper: writes LINES lines of LEN bytes (newline included) to stdout as fast as
// the pipe takes them, then exits 0. Each line is FlooderLine(i) (tests/helpers/flooder.h).
//   flooder LINES LEN
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/helpers/flooder.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: flooder LINES LEN\n");
    return 2;
  }
  unsigned long long lines = std::strtoull(argv[1], nullptr, 10);
  size_t len = std::strtoul(argv[2], nullptr, 10);
  if (len < 14) {
    std::fprintf(stderr, "flooder: LEN must be at least 14\n");
    return 2;
  }
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
  return 0;
}
