// Parsing of the scalar values configuration and flags use: durations ("500ms", "5m"),
// byte sizes ("64MiB"), and ${VAR} expansion.
//
// All functions are pure and thread-safe. Errors are InvalidArgument with a message that
// quotes the offending text and says what was expected; callers add the location.
#ifndef AGENTD_COMMON_VALUES_H_
#define AGENTD_COMMON_VALUES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentd {

// "500ms", "10s", "5m", "1h30m", "250us". A unit is required; the value is >= 0.
absl::StatusOr<absl::Duration> ParseDuration(absl::string_view text);

// Formats a duration the way ParseDuration reads it ("1m30s", "500ms").
std::string FormatDuration(absl::Duration d);

// "64MiB", "4KiB", "1GiB", "10MB", "512B" or a plain number of bytes. Result >= 0.
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// A byte count for people, in binary units with one decimal: "512B", "1.5KiB", "3.2GiB".
std::string FormatByteSize(int64_t bytes);

// Expands ${NAME} and ${NAME:-fallback} from `lookup`; "$$" is a literal "$". A "$" not
// followed by "{" or "$" is kept as it is. An unset NAME without fallback is an error
// naming it.
absl::StatusOr<std::string> ExpandEnv(
    absl::string_view text,
    const std::function<std::optional<std::string>(absl::string_view)>& lookup);

}  // namespace agentd

#endif  // AGENTD_COMMON_VALUES_H_
