// The config loader (common/config.h) on any text: a Config or an INVALID_ARGUMENT that
// says where, never a crash or an exception (yaml-cpp throws; the loader must catch).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/config.h"
#include "common/text.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // A fixed environment: ${VAR} expansion is exercised without depending on the host's.
  agentd::EnvLookup env = [](absl::string_view name) -> std::optional<std::string> {
    if (name == "HOME") return "/home/fuzz";
    if (name == "XDG_RUNTIME_DIR") return "/run/user/1000";
    return std::nullopt;
  };
  absl::StatusOr<agentd::Config> c = agentd::LoadConfigText(text, "fuzz.yaml", env);
  if (!c.ok()) {
    // The message goes into protos and terminals: it must not break them.
    (void)agentd::EscapeForTerminal(c.status().message());
  }
  return 0;
}
