// Test helper: an agent that registers with agentd and then, for as long as it runs,
// heartbeats BUSY as if it were inside one long LLM call. It does nothing else.
// It reads what agentd-agent reads: AGENTD_AGENT_ID, AGENTD_SOCKET, the token on fd 3.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/ascii.h"
#include "agents/runtime/host_session.h"

int main() {
  agentd::agent::HostSessionOptions o;
  const char* id = std::getenv("AGENTD_AGENT_ID");
  const char* socket = std::getenv("AGENTD_SOCKET");
  if (id == nullptr || socket == nullptr) {
    std::fprintf(stderr, "busy_agent: run me as an agentd agent\n");
    return 2;
  }
  o.agent_id = id;
  o.socket = socket;
  char buf[512];
  for (ssize_t n; (n = read(3, buf, sizeof(buf))) > 0;) o.token.append(buf, static_cast<size_t>(n));
  o.token = std::string(absl::StripAsciiWhitespace(o.token));
  agentd::agent::HostSession session(o);
  session.SetActivity(agentd::v1::AGENT_ACTIVITY_BUSY, "in a long LLM call");
  std::printf("busy_agent: busy until stopped\n");
  std::fflush(stdout);
  return session.Run().ok() ? 0 : 1;
}
