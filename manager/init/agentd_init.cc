// agentd-init: PID 1 of an isolated `command` agent's PID namespace.
//
// Every agent runs in a PID namespace of its own (manager/core/supervisor.cc says why).
// agentd-agent is written to be PID 1 there; a role's `command` is any program, and PID 1
// is a poor place for one: the kernel delivers it no signal it has no handler for (a
// plain `sleep` would never see the SIGTERM that stops it), and every orphan of the
// namespace becomes its child to reap. agentd starts such a program under this init:
//
//   agentd-init REPORT_FD STATUS_FD PROGRAM ARGV0 [ARG…]
//
// It runs PROGRAM (a path) with ARGV0 ARG… and the environment and descriptors it was
// given, in a process group of its own, minus REPORT_FD and STATUS_FD. STATUS_FD is the
// launcher's status pipe: it closes at the program's exec, or carries why the exec
// failed (three ints, as manager/core/launcher.cc's ChildFailure: step 3, errno, 0), so
// that a program that cannot run fails the agent's start as it would without the init.
// agentd starts it with every signal blocked; it forwards every signal it gets
// (agentd signals the init's process group) to the program's process group; reaps every
// child; and when the program ends, writes its wait status (an int) to REPORT_FD, from
// which agentd reports the program's own exit, code or signal, and exits with
// the same status as far as an exit code can say it (128 + the signal: a namespace's
// init cannot die of a signal it sends itself). Everything left in the namespace dies
// with it.
//
// A program of its own rather than a fork of agentd's: a forked copy would hold a
// snapshot of the daemon's memory for as long as the agent runs, and every page the
// daemon then wrote would be copied. This one is libc only and resident in a few hundred
// kilobytes.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: agentd-init REPORT_FD STATUS_FD PROGRAM ARGV0 [ARG…]\n");
    return 127;
  }
  int fds[2];
  for (int i = 0; i < 2; ++i) {
    char* end = nullptr;
    long fd = std::strtol(argv[1 + i], &end, 10);
    if (end == argv[1 + i] || *end != 0 || fd < 3 || fd > 1 << 20) {
      std::fprintf(stderr, "agentd-init: descriptors are numbers above 2, not %s\n", argv[1 + i]);
      return 127;
    }
    fds[i] = static_cast<int>(fd);
  }
  const int report = fds[0], status_fd = fds[1];
  fcntl(status_fd, F_SETFD, FD_CLOEXEC);  // closes at the program's exec
  const char* program = argv[3];
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  // Blocked from here on: a signal that arrives before the program runs waits for it.
  sigprocmask(SIG_SETMASK, &all, nullptr);
  pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "agentd-init: cannot start %s: fork: %s\n", program, std::strerror(errno));
    return 127;
  }
  if (child == 0) {
    close(report);
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(program, argv + 4);
    int failure[3] = {3, errno, 0};  // the launcher's ChildFailure{kStepExec, errno, 0}
    (void)!write(status_fd, failure, sizeof(failure));
    _exit(127);
  }
  close(status_fd);
  // Both sides put the program in its group, so that a signal forwarded at once finds it.
  setpgid(child, child);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;  // EINTR
    if (sig != SIGCHLD) {
      kill(-child, sig);
      continue;
    }
    int status = 0;
    pid_t reaped;
    while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
      if (reaped != child) continue;  // an orphan of the namespace
      (void)!write(report, &status, sizeof(status));
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}
