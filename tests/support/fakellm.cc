#include "tests/support/fakellm.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace agentd::testing {

FakeLlm::FakeLlm(const TempDir& dir, const std::string& scenario) : dir_(dir) {
  WriteFile(dir.Join("scenario.yaml"), scenario);
  process_ = std::make_unique<Subprocess>(
      std::vector<std::string>{"node", FAKELLM_SCRIPT, "--scenario", dir.Join("scenario.yaml"),
                               "--port", "0"},
      dir.Join("fakellm.out"), dir.Join("fakellm.err"));
  const std::string prefix = "fakellm listening on ";
  WaitFor(
      [&] {
        std::string out = ReadFileOrEmpty(dir.Join("fakellm.out"));
        size_t at = out.find(prefix), nl = out.find('\n');
        if (at == std::string::npos || nl == std::string::npos) return false;
        url_ = out.substr(at + prefix.size(), nl - at - prefix.size());
        return true;
      },
      absl::Seconds(30));
}

std::string FakeLlm::log() const { return ReadFileOrEmpty(dir_.Join("fakellm.err")); }

int FakeLlm::Requests() const {
  RunResult r = RunCommand({"curl", "-sf", url_ + "/_fakellm/requests"});
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_array() ? static_cast<int>(j.size()) : -1;
}

}  // namespace agentd::testing
