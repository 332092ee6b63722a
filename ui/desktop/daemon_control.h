// DaemonControl: starts and stops the user's agentd the way it is installed.
//
// Start: when the shell looks for the user's own agentd (the default socket, no
// --config or --agentd of its own) and `systemctl --user` knows agentd's unit (LoadState
// "loaded"), the shell asks systemd to start it, and the agentd belongs to systemd: it
// outlives the shell. Else agentd runs as the shell's child (with the options given to
// the shell), and ends with it (Release(), and PR_SET_PDEATHSIG should the shell die).
//
// Stop: the shell's own child is sent SIGTERM (agentd drains and exits 0). Otherwise the
// process to stop is the one at the other end of the socket (SO_PEERCRED, as the kernel
// sees it: not a pid an agentd in another PID namespace reports, nor one reused since the
// last poll): when it is the unit's MainPID, `systemctl --user stop`; else SIGTERM
// through a pidfd, which the kernel allows only for the user's own processes.
//
// Every operation is asynchronous on GLib's main context (GSubprocess): `done` runs
// there later with OK and what was done ("started by systemd", …), or an error saying
// what failed, with systemctl's own words. Not thread-safe: use it from the main
// context's thread.
#ifndef AGENTD_UI_DESKTOP_DAEMON_CONTROL_H_
#define AGENTD_UI_DESKTOP_DAEMON_CONTROL_H_

#include <gio/gio.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace agentd::desktop {

struct ControlOptions {
  // The agentd binary for a child: empty means the one installed beside this program,
  // else `agentd` on PATH.
  std::string agentd;
  // Flags for a child agentd (--config FILE, --socket PATH…).
  std::vector<std::string> agentd_args;
  std::string systemctl = "systemctl";
  std::string unit = "agentd.service";
  // Whether Start may use systemd's unit (see above); false: always a child.
  bool use_systemd = true;
  // agentd's socket, for Stop to find the process behind it.
  std::string socket;
};

class DaemonControl {
 public:
  using Done = std::function<void(absl::StatusOr<std::string>)>;

  explicit DaemonControl(ControlOptions options);
  ~DaemonControl();
  DaemonControl(const DaemonControl&) = delete;
  DaemonControl& operator=(const DaemonControl&) = delete;

  void Start(Done done);
  void Stop(Done done);
  // For the shell's exit: stops a child agentd and calls `done` once it has exited (or
  // at once when there is none; an agentd systemd started is left running). A child
  // still there after `grace` is killed (SIGKILL), and `done` runs then.
  void Release(std::function<void()> done, absl::Duration grace);

  // Whether agentd runs as this shell's child now.
  bool has_child() const { return child_ != nullptr; }
  // Called (on the main context) when a child agentd exits, with a description.
  void set_on_child_exit(std::function<void(const std::string&)> f) {
    on_child_exit_ = std::move(f);
  }

 private:
  struct Call;
  // Runs argv, collecting its output; `done(exit_ok, stdout, stderr or spawn error)`.
  void Run(std::vector<std::string> argv, std::function<void(bool, std::string, std::string)> done);
  void StartChild(Done done);
  std::string AgentdBinary() const;
  static void OnChildExit(GObject* source, GAsyncResult* result, gpointer self);

  const ControlOptions options_;
  GSubprocess* child_ = nullptr;
  GCancellable* cancel_ = nullptr;
  std::vector<std::function<void()>> on_child_gone_;
  guint kill_timer_ = 0;
  std::function<void(const std::string&)> on_child_exit_;
};

}  // namespace agentd::desktop

#endif  // AGENTD_UI_DESKTOP_DAEMON_CONTROL_H_
