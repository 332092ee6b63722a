// dev/fakellm for tests: the scripted provider, started on a free port with a scenario.
#ifndef AGENTD_TESTS_SUPPORT_FAKELLM_H_
#define AGENTD_TESTS_SUPPORT_FAKELLM_H_

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace agentd::testing {

class FakeLlm {
 public:
  // Writes `scenario` (YAML) into `dir` and starts fakellm on it; url() is empty when it
  // did not come up (log() says why).
  FakeLlm(const TempDir& dir, const std::string& scenario);
  // "http://127.0.0.1:PORT"; OpenAI and Anthropic clients add "/v1".
  const std::string& url() const { return url_; }
  std::string log() const;
  // How many chat requests it has received (from its /_fakellm/requests endpoint).
  int Requests() const;
  Subprocess* process() { return process_.get(); }

 private:
  const TempDir& dir_;
  std::unique_ptr<Subprocess> process_;
  std::string url_;
};

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_SUPPORT_FAKELLM_H_
