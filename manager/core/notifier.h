// Notifier: the systemd service-manager protocol (sd_notify) for Type=notify units.
//
// Ready() sends READY=1, Stopping() STOPPING=1, Status() STATUS=…, Watchdog() WATCHDOG=1.
// Each is a no-op when NOTIFY_SOCKET is unset (started by hand, or by launchd) or when
// agentd was built without libsystemd. WatchdogInterval() is half of WATCHDOG_USEC when
// the watchdog is enabled for this process, as systemd recommends; zero otherwise.
// Thread-safe.
#ifndef AGENTD_MANAGER_CORE_NOTIFIER_H_
#define AGENTD_MANAGER_CORE_NOTIFIER_H_

#include "absl/strings/string_view.h"

#include "absl/time/time.h"
#include "common/logging.h"

namespace agentd {

class Notifier {
 public:
  void Ready();
  void Stopping();
  void Reloading();
  void Status(absl::string_view text);
  void Watchdog();
  static absl::Duration WatchdogInterval();
  // libsystemd's sd_journal_sendv, for the log's journald sink (common/logging.h
  // SetJournalSend); null when agentd was built without libsystemd.
  static JournalSend JournalSender();
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_NOTIFIER_H_
