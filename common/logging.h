// The process-wide log: spdlog to stderr, as plain text or one JSON object per line
// (for journald, a log shipper or `jq`), with secrets removed.
//
// Secrets (tokens, provider keys) are registered with AddLogSecret(); every later record
// has each occurrence replaced by "[REDACTED]" before it is written, whatever logger or
// format produced it. Thread-safe after SetupLogging().
#ifndef AGENTD_COMMON_LOGGING_H_
#define AGENTD_COMMON_LOGGING_H_

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"

namespace agentd {

// Installs the default logger. `format` is "text" or "json"; `level` an spdlog level
// name (trace, debug, info, warn, error, critical, off). InvalidArgument names a bad one.
absl::Status SetupLogging(absl::string_view format, absl::string_view level);

// Changes the level of the default logger (a config reload). InvalidArgument if unknown.
absl::Status SetLogLevel(absl::string_view level);

// From now on, `secret` (if at least 8 bytes long) never appears in a log record.
void AddLogSecret(std::string secret);

// Replaces every registered secret in `text` by "[REDACTED]".
std::string RedactSecrets(absl::string_view text);

}  // namespace agentd

// Debian's Abseil keeps absl::string_view a type of its own (not std::string_view), so
// fmt (and spdlog) are taught to print it.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  auto format(absl::string_view s, fmt::format_context& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

#endif  // AGENTD_COMMON_LOGGING_H_
