// agentctl logs: agents' output as agentd recorded it, the way journalctl and kubectl
// logs users read logs: -f, -n, --since/--until, several agents or a role at once with a
// prefix per line, --grep, --previous, -o json|yaml.
#ifndef AGENTD_MANAGER_CTL_LOGS_CMD_H_
#define AGENTD_MANAGER_CTL_LOGS_CMD_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds `logs` to the tree.
void AddLogCommands(const CommandTree& tree);

// A --since/--until value: a duration before `now` ("10m", "1h30m"), an RFC 3339 time
// ("2026-12-05T17:00:00Z", with an offset or fractional seconds), or a local date and
// time ("2026-12-05 17:00", "2026-12-05 17:00:05", "2026-12-05"). INVALID_ARGUMENT says
// which forms are taken.
absl::StatusOr<absl::Time> ParseLogTime(const std::string& text, absl::Time now);

// A log line as JSON text: valid UTF-8 kept, each byte that is not part of it written
// as the four characters \xHH, so the line reads as text (not base64) and loses nothing.
std::string LineAsText(absl::string_view bytes);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_LOGS_CMD_H_
