// Test helper: an agent whose child leaves its process group (setsid), as a daemonizing
// program does, so that a kill of the group does not reach it. Writes the child's pid to
// FILE, then waits for SIGTERM (and exits 0); the child sleeps until killed.
//   escaper FILE
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  // The child says when it has left the group; only then is its pid written, so that
  // whoever reads the file sees it outside.
  int ready[2];
  if (pipe(ready) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
    setsid();
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  char c;
  if (read(ready[0], &c, 1) != 1) return 1;
  std::string tmp = std::string(argv[1]) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return 1;
  std::fprintf(f, "%d", static_cast<int>(child));
  std::fclose(f);
  std::rename(tmp.c_str(), argv[1]);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
