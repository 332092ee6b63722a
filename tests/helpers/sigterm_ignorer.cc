// Test helper: ignores SIGTERM and starts a grandchild that ignores it too; writes
// "PID GRANDCHILD_PID" to the file named by its argument, then waits forever. Only a
// SIGKILL of the whole process group ends both.
//   sigterm_ignorer PIDFILE
#include <signal.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  signal(SIGTERM, SIG_IGN);
  pid_t child = fork();
  if (child == 0) {
    for (;;) pause();
  }
  char tmp[4096];
  std::snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
  FILE* f = std::fopen(tmp, "w");
  if (f == nullptr) return 1;
  std::fprintf(f, "%d %d\n", getpid(), child);
  std::fclose(f);
  std::rename(tmp, argv[1]);  // the file appears whole
  for (;;) pause();
}
