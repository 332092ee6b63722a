// The process-wide log: spdlog to stderr, as plain text or one JSON object per line
// (for a log shipper or `jq`), or, under systemd (stderr is the journal: JOURNAL_STREAM),
// straight to journald with a priority per level and fields of its own; with secrets
// removed.
//
// Records carry the agent, task and goal they concern when the code that logs them says
// so with a LogScope: journald fields AGENT_ID=, TASK_ID=, GOAL_ID= (journalctl
// AGENT_ID=coder-1), JSON keys "agent_id", "task_id", "goal_id".
//
// Secrets (tokens, provider keys) are registered with AddLogSecret(); every later record
// has each occurrence replaced by "[REDACTED]" before it is written, whatever logger or
// format produced it. Thread-safe after SetupLogging().
#ifndef AGENTD_COMMON_LOGGING_H_
#define AGENTD_COMMON_LOGGING_H_

#include <sys/uio.h>

#include <functional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fmt/format.h"

namespace agentd {

// Installs the default logger. `format` is "text" or "json"; `level` an spdlog level
// name (trace, debug, info, warn, error, critical, off). InvalidArgument names a bad one.
// With "text" and stderr connected to the journal (JOURNAL_STREAM names its device and
// inode, as systemd sets it), records go to journald natively instead.
absl::Status SetupLogging(absl::string_view format, absl::string_view level);

// Whether SetupLogging chose journald (for agentd's start-up line).
bool LoggingToJournal();

// How records reach journald: sd_journal_sendv's signature. agentd sets it (libsystemd's)
// before SetupLogging; without it, records go to stderr whatever JOURNAL_STREAM says. So
// common/ does not link libsystemd, and neither does agentd-agent, whose stderr is a pipe
// to agentd and never the journal (libsystemd and its compression and crypto libraries
// were seven shared objects loaded at each agent's start for nothing).
using JournalSend = int (*)(const iovec* fields, int n);
void SetJournalSend(JournalSend send);

// The agent, task and goal the records logged on this thread concern, while it lives;
// nested scopes add to (or override) the outer one's, which comes back at the end. Empty
// arguments keep the outer value. Not copyable; thread-local, so it costs no lock.
class LogScope {
 public:
  explicit LogScope(absl::string_view agent_id, absl::string_view task_id = "",
                    absl::string_view goal_id = "");
  ~LogScope();
  LogScope(const LogScope&) = delete;
  LogScope& operator=(const LogScope&) = delete;

  struct Fields {
    std::string agent_id, task_id, goal_id;
  };
  // This thread's fields now.
  static const Fields& Current();

 private:
  Fields saved_;
};

// With tracing on, the trace context a record about `fields` belongs to: JSON records
// that name a goal carry "trace_id" and "span_id" (journald: TRACE_ID=, SPAN_ID=), so a
// log line leads to its trace. `ids` returns false for none; nullptr stops it.
// Thread-safe; `ids` is called on any thread that logs, and must not log.
using LogTraceIds = std::function<bool(const LogScope::Fields& fields, std::string* trace_id,
                                       std::string* span_id)>;
void SetLogTraceIds(LogTraceIds ids);

// From now on every record (redacted, "LEVEL message [agent=… task=…]", without its
// time) is also handed to `tap`, in order, on a thread of the tap's own (so a tap may take
// locks the logging code holds); nullptr stops it. Replacing or stopping a tap hands it
// what is queued first and returns once its thread has ended. What the tap itself logs is
// not handed back to it; when 10,000 records wait, more are counted and left out. agentd
// keeps its own log this way, so that `agentctl logs agentd` reads it like an agent's.
void SetLogTap(std::function<void(absl::string_view line)> tap);

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
