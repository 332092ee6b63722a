// Test helper: an agent that writes the token agentd passed it (fd 3) to the file named
// by its argument, then runs until SIGTERM — so a test can act with an agent's token.
// A FILE ending in '/' is a directory: the token goes to FILE/$AGENTD_AGENT_ID.
//   token_leaker FILE
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::string token;
  char buf[256];
  ssize_t n;
  while ((n = read(3, buf, sizeof(buf))) > 0) token.append(buf, static_cast<size_t>(n));
  std::string path = argv[1];
  if (!path.empty() && path.back() == '/') {
    const char* id = std::getenv("AGENTD_AGENT_ID");
    if (id == nullptr) return 2;
    path += id;
  }
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return 1;
  std::fputs(token.c_str(), f);
  std::fclose(f);
  std::rename(tmp.c_str(), path.c_str());
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
