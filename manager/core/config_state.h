// ConfigState: the configuration in force — the file (or the embedded default) with the
// command-line overrides on top — and reloading it.
//
// Reload() re-reads the same file, validates all of it, and only then swaps it in; a bad
// file leaves the configuration in force untouched. It reports which settings took
// effect and which need a restart (listeners and the state directory are bound once, at
// start). Flags keep winning over the file across reloads.
//
// Thread-safety: owned by the core loop thread.
#ifndef AGENTD_MANAGER_CORE_CONFIG_STATE_H_
#define AGENTD_MANAGER_CORE_CONFIG_STATE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"

namespace agentd {

// Values given on the command line; each set one wins over the file.
struct ConfigOverrides {
  std::optional<std::string> state_dir, socket, http, grpc_tcp, log_format, log_level;
};

struct ReloadResult {
  std::vector<std::string> applied;           // dotted setting paths now in force
  std::vector<std::string> restart_required;  // changed, but bound at start
};

class ConfigState {
 public:
  // Loads `file` (empty: the embedded default), applies `overrides`, and resolves empty
  // socket/state_dir to their defaults. Errors as LoadLayeredConfig().
  static absl::StatusOr<ConfigState> Load(std::string file, ConfigOverrides overrides);

  const Config& config() const { return config_; }
  const std::string& file() const { return file_; }
  absl::Time loaded_time() const { return loaded_time_; }

  // Re-reads and swaps in the configuration; on error nothing changes.
  absl::StatusOr<ReloadResult> Reload();

 private:
  static absl::StatusOr<Config> Read(const std::string& file, const ConfigOverrides& overrides);

  std::string file_;
  ConfigOverrides overrides_;
  Config config_;
  absl::Time loaded_time_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_CONFIG_STATE_H_
