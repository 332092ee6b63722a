// agentctl: the command-line client for agentd. See `agentctl --help`.
#include <string>
#include <vector>

#include "common/lock_checks.h"
#include "manager/ctl/app.h"

int main(int argc, char** argv) {
  agentd::ConfigureLockChecks();
  return agentd::ctl::RunAgentctl(std::vector<std::string>(argv + 1, argv + argc));
}
