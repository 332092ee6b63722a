// SystemCore: the daemon's view of itself — identity, paths, counters, lifecycle state —
// and configuration reloads, for the System service and for signals (SIGHUP).
//
// Every public method may be called from any thread: it posts to the core loop, reads or
// changes state there, and calls `done` on the loop thread. `done` must not block.
// GetInfo alone may answer on the calling thread (see there).
#ifndef AGENTD_MANAGER_CORE_SYSTEM_H_
#define AGENTD_MANAGER_CORE_SYSTEM_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentd/v1/system.pb.h"
#include "manager/core/audit.h"
#include "manager/core/config_state.h"
#include "manager/core/doctor.h"
#include "manager/core/event_loop.h"
#include "manager/core/off_loop.h"
#include "manager/store/store.h"

namespace agentd {

class SystemCore {
 public:
  // None of the pointers is owned; all must outlive this object.
  SystemCore(EventLoop* loop, Store* store, ConfigState* config, absl::Time start_time);

  // Records the paths as bound (the TCP port once known) and then, in the same step on
  // the loop, the SERVING state: whoever sees SERVING sees the paths too.
  void Serve(v1::DaemonPaths paths);
  void SetState(v1::DaemonState state) { state_.store(state); }
  // The store failed (Store::fatal): FAILED from now on, with `why`; thread-safe.
  void Fail(std::string why) {
    {
      absl::MutexLock l(&failure_mu_);
      failure_ = std::move(why);
    }
    state_.store(v1::DAEMON_STATE_FAILED);
  }
  v1::DaemonState state() const { return state_.load(); }
  // Called by the API layer when an RPC starts and when it ends (in any way).
  void RpcStarted() {
    rpcs_served_.fetch_add(1, std::memory_order_relaxed);
    rpcs_in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  void RpcEnded() { rpcs_in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  int64_t rpcs_in_flight() const { return rpcs_in_flight_.load(std::memory_order_relaxed); }

  // Fills the counters that other core components own; called on the loop thread.
  void SetCountersSource(absl::AnyInvocable<void(v1::DaemonCounters*)> fill) {
    counters_source_ = std::move(fill);
  }
  // Fills the counters that change off the loop (atomics, such as the log bytes); called
  // on any thread, so it must be thread-safe. Set before the daemon serves.
  void SetLiveCountersSource(std::function<void(v1::DaemonCounters*)> fill) {
    live_counters_source_ = std::move(fill);
  }

  static v1::GetVersionResponse Version();
  // The daemon's identity, paths, state and counters. Answered at once, on the calling
  // thread, from the copy the loop last made, when no loop step has run since it was
  // made (EventLoop::steps()): then nothing it holds can have changed. Otherwise the loop
  // makes a new copy and answers from it. Either way the answer reflects every change
  // committed before the call, and the live parts (state, uptime, RPC and log counters)
  // are read at answer time.
  void GetInfo(absl::AnyInvocable<void(v1::GetInfoResponse) &&> done);
  // What the daemon knows about itself for Diagnose(); called on the loop thread.
  void SetDoctorSource(std::function<DoctorInputs()> source) { doctor_source_ = std::move(source); }
  // Runs the doctor's checks (doctor.h) off the loop; `done` runs on the loop.
  void Diagnose(absl::AnyInvocable<void(v1::DiagnoseResponse) &&> done);
  // The configuration in force, rendered (common/config_view.h); answered on the loop.
  void GetConfig(bool with_origins, absl::AnyInvocable<void(v1::GetConfigResponse) &&> done);
  // Reloads; the error is InvalidArgument with every problem at file:line:col.
  // `by` is who asked, for the audit log ("daemon" for SIGHUP, "human:local"…).
  void ReloadConfig(absl::AnyInvocable<void(absl::StatusOr<v1::ReloadConfigResponse>) &&> done,
                    std::string by = "daemon");
  // Where administrative actions are recorded; not owned, may be null.
  void SetAudit(AuditLog* audit) { audit_ = audit; }
  // Called on the loop thread after a reload took effect, with what it applied: the
  // components that copied settings at start take the new ones.
  void SetOnReloaded(std::function<void(const ReloadResult&)> reloaded) {
    on_reloaded_ = std::move(reloaded);
  }

 private:
  EventLoop* loop_;
  Store* store_;
  ConfigState* config_;
  absl::Time start_time_;
  v1::DaemonPaths paths_;  // loop thread after SetPaths
  std::atomic<v1::DaemonState> state_{v1::DAEMON_STATE_STARTING};
  mutable absl::Mutex failure_mu_;
  std::string failure_ ABSL_GUARDED_BY(failure_mu_);
  std::atomic<int64_t> rpcs_served_{0};
  std::atomic<int64_t> rpcs_in_flight_{0};
  absl::AnyInvocable<void(v1::DaemonCounters*)> counters_source_;
  std::function<void(v1::DaemonCounters*)> live_counters_source_;
  // What GetInfo answers with, as the loop step `step` saw it; the live parts are not in it.
  struct InfoSnapshot {
    uint64_t step = 0;
    v1::GetInfoResponse info;
  };
  // Adds the parts read at answer time to a copy of the snapshot.
  void FillLive(v1::GetInfoResponse* r) const;
  absl::Mutex snapshot_mu_;
  std::shared_ptr<const InfoSnapshot> snapshot_ ABSL_GUARDED_BY(snapshot_mu_);
  std::function<void(const ReloadResult&)> on_reloaded_;
  std::function<DoctorInputs()> doctor_source_;
  OffLoop off_loop_{loop_};  // last: joined (and its results dropped) first
  AuditLog* audit_ = nullptr;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_SYSTEM_H_
