#include "manager/core/notifier.h"

#include <string>

#include "absl/strings/str_cat.h"

#ifdef AGENTD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#endif

namespace agentd {
namespace {
void Send(const std::string& state) {
#ifdef AGENTD_HAVE_SYSTEMD
  sd_notify(0, state.c_str());
#else
  (void)state;
#endif
}
}  // namespace

void Notifier::Ready() { Send("READY=1\nSTATUS=serving"); }
void Notifier::Stopping() { Send("STOPPING=1\nSTATUS=draining"); }
void Notifier::Reloading() { Send("RELOADING=1"); }
void Notifier::Status(absl::string_view text) { Send(absl::StrCat("STATUS=", text)); }
void Notifier::Watchdog() { Send("WATCHDOG=1"); }

absl::Duration Notifier::WatchdogInterval() {
#ifdef AGENTD_HAVE_SYSTEMD
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) return absl::Microseconds(usec) / 2;
#endif
  return absl::ZeroDuration();
}

JournalSend Notifier::JournalSender() {
#ifdef AGENTD_HAVE_SYSTEMD
  return &sd_journal_sendv;
#else
  return nullptr;
#endif
}

}  // namespace agentd
