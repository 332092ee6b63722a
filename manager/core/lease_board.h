// LeaseBoard: the heartbeat leases that may be renewed without the core loop.
//
// An agent heartbeats on its open Connect stream every interval. Most heartbeats change
// nothing but the time of the lease: the token and the lease are still current, and the
// activity and progress they carry are what agentd already shows. Handing each of them
// to the core loop cost a wake-up of that thread and two of gRPC's (about a fifth of
// agentd's CPU with 1,000 agents at 1 Hz); the gRPC thread that read one renews it here
// instead, under this board's lock. The same goes for a Heartbeat call (agentd-agent makes one
// every third of its reconnect grace, to hear agentd answer), found by its token.
//
// The Supervisor owns the board and keeps it in step with its records on the core loop
// (Set, Remove): for each agent, its current token and lease, and — only while the agent
// is idle or busy — the activity and progress it shows. A heartbeat that would change
// anything else (another activity or progress, a stale lease or token, an agent in any
// other state) is not taken here, and goes to the loop as before, where the Supervisor
// applies or refuses it. Renewals taken here are folded in by the Supervisor when a
// lease's timer fires and when it shows an agent (RenewedAt), so lease timers stay one
// per lease interval, not one per heartbeat.
//
// Thread-safe: every method may be called from any thread.
#ifndef AGENTD_MANAGER_CORE_LEASE_BOARD_H_
#define AGENTD_MANAGER_CORE_LEASE_BOARD_H_

#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agentd/v1/agent_host.pb.h"
#include "manager/core/clock.h"

namespace agentd {

class LeaseBoard {
 public:
  // `clock` (not owned) times the renewals; it must be thread-safe, as Clock's are.
  explicit LeaseBoard(Clock* clock) : clock_(clock) {}

  struct Lease {
    std::string token;     // the agent process's current token
    std::string lease_id;  // its current lease; empty: not registered
    // Whether a heartbeat may be taken off the loop at all: the agent is idle or busy.
    bool renewable = false;
    bool busy = false;     // what agentd shows: busy, else idle
    std::string progress;  // and the progress it shows
    // supervision.heartbeat.ttl when it was set: a renewal's expiry, as the answer to a
    // Heartbeat call says it.
    absl::Duration ttl = absl::ZeroDuration();
  };

  // Core loop: what agentd holds for agent `id` now. Renewals taken for the same lease
  // are kept; a new lease (or none) starts with none.
  void Set(const std::string& id, Lease lease);
  // Core loop: agent `id` is gone (deleted).
  void Remove(const std::string& id);
  // Core loop: the timer of agent `id`'s lease `lease_id` is due. From now until the next
  // Set, no heartbeat of it is taken here (each goes to the loop, behind the decision this
  // is for); returns the last renewal taken, or InfinitePast.
  absl::Time Hold(const std::string& id, const std::string& lease_id);

  // Any thread: takes the heartbeat `req`, sent with `token` on agent `id`'s stream, and
  // returns true when it only renews the lease (recorded as renewed now); false when it is
  // anything else — the caller hands it to the Supervisor on the core loop, which applies
  // or refuses it.
  bool TryRenew(const std::string& id, const std::string& token, const v1::HeartbeatRequest& req);
  // Any thread: the same for a Heartbeat call, which names no agent: the agent whose
  // current token `token` is. The new expiry when taken; nullopt: the caller hands it to
  // the Supervisor on the core loop.
  std::optional<absl::Time> TryRenewCall(const std::string& token, const v1::HeartbeatRequest& req);

  // The last renewal taken here for agent `id` under `lease_id`, or InfinitePast.
  absl::Time RenewedAt(const std::string& id, const std::string& lease_id) const;

 private:
  struct Entry {
    Lease lease;
    absl::Time renewed = absl::InfinitePast();
  };
  // Takes `req` for `e` when it only renews it, at `now`.
  static bool Renew(Entry& e, const std::string& token, const v1::HeartbeatRequest& req,
                    absl::Time now);
  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string, std::less<>> by_token_ ABSL_GUARDED_BY(mu_);  // → id
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_LEASE_BOARD_H_
