// Test helper: runs until a signal ends it; on SIGTERM it exits 0, as a well-behaved
// agent does.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

int main() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::printf("sleeper: pid %d\n", getpid());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
