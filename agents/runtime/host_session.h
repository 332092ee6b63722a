// HostSession: an agent's link to agentd — register, heartbeat under the lease, hold the
// Connect stream — and reconnecting when the daemon goes away.
//
// Run() blocks until Stop() or until the daemon has been unreachable for longer than
// `reconnect_grace`; it returns OK after Stop() and Unavailable after the grace ran out.
// Heartbeats say idle or busy (SetActivity), so a long LLM call is not mistaken for a
// hang. Stop() may be called from any thread (a signal handler thread).
#ifndef AGENTD_AGENTS_RUNTIME_HOST_SESSION_H_
#define AGENTD_AGENTS_RUNTIME_HOST_SESSION_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agentd/v1/agent_host.grpc.pb.h"

namespace agentd::agent {

struct HostSessionOptions {
  std::string agent_id;
  std::string socket;  // agentd's unix socket
  std::string token;   // this process's token, from fd 3
  absl::Duration reconnect_grace = absl::Seconds(30);
  // Why the tool sandbox does not work on this host (the probe at start); empty when it
  // works. Sent at Register, so that agentd can show the mode in force (status, metrics).
  std::string sandbox_problem;
  // Receives each delivery on the Connect thread; it is acknowledged once this returns,
  // so it must only take the delivery in (queue it), not work on it.
  std::function<void(const v1::ConnectResponse&)> on_delivery;
};

class HostSession {
 public:
  explicit HostSession(HostSessionOptions options);
  // Waits (briefly) for usage reports still in flight: their callbacks use the session.
  ~HostSession();
  absl::Status Run();
  void Stop();
  void SetActivity(v1::AgentActivity activity, std::string progress);
  // The definition agentd sent at the last registration.
  v1::AgentDefinition definition() const;
  // Whether agentd listed `feature` at the last registration (RegisterResponse.features).
  bool Supports(const std::string& feature) const;
  // Waits until registered (true) or until Stop() or `timeout` (false).
  bool WaitRegistered(absl::Duration timeout) const;

  // Sends a task event on the Connect stream. Writes are one at a time; what other
  // threads queue while one is written goes with the next write, in order (task events
  // together in one TaskEventBatch when agentd takes them). Completion and failure are
  // kept and sent again after every reconnect until a newer one replaces them (the daemon
  // drops repeats); other events are dropped while the stream is down.
  void SendTaskEvent(const v1::TaskEvent& event);
  // As SendTaskEvent, but not written now: it goes with the next write (the next event
  // sent, Flush, at the latest the next heartbeat), in one batch with it. For an event that
  // another follows at once: each message costs both processes far more than its bytes.
  void QueueTaskEvent(const v1::TaskEvent& event);
  // Writes whatever is queued now.
  void Flush();
  // Sends finished spans (an encoded OTLP ScopeSpans) on the Connect stream, as task
  // events go; while the stream is down they are dropped, and counted in the next batch
  // that goes.
  void SendSpans(std::string scope_spans);

  // AgentHost calls with this agent's token; errors are the daemon's status.
  absl::StatusOr<v1::BudgetReservation> ReserveBudget(const v1::ReserveBudgetRequest& req);
  // Sends the report without waiting for the answer (the call's reservation holds its
  // budget until the report settles it, so nothing is spent unaccounted meanwhile).
  void ReportUsageAsync(v1::ReportUsageRequest req, absl::Duration timeout = absl::Seconds(10));
  // ReserveBudget without waiting: `done` gets the outcome on a gRPC thread. Every such
  // request counts as a report for FlushReports until answered: one that settles a call
  // carries its usage, and one that only reserves ahead must reach agentd before the
  // task's outcome, or a guess granted after the task was held again would stay held.
  void ReserveBudgetAsync(v1::ReserveBudgetRequest req, absl::Duration timeout,
                          absl::AnyInvocable<void(absl::StatusOr<v1::BudgetReservation>) &&> done);
  // Waits until every report sent so far has been answered, up to `timeout`; an outcome
  // is sent only after its usage is in the ledger.
  void FlushReports(absl::Duration timeout);
  absl::StatusOr<v1::RequestConsentResponse> RequestConsent(const v1::RequestConsentRequest& req);
  absl::StatusOr<v1::ConsentRequest> GetConsentDecision(const std::string& id);
  absl::StatusOr<v1::Task> Delegate(const v1::DelegateRequest& req);
  absl::StatusOr<v1::ProposePlanResponse> ProposePlan(const v1::ProposePlanRequest& req);
  absl::StatusOr<v1::Envelope> Send(const v1::SendRequest& req);

 private:
  absl::Status RegisterOnce();
  void HoldConnect();
  // Queues a message for the stream and writes what is queued (DrainLocked).
  void Enqueue(v1::ConnectRequest msg);
  // Writes everything queued so far, in order, coalescing task events; drops it while
  // the stream is down. False when a write failed (the stream is ending).
  bool DrainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) const;

  HostSessionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentHostService::Stub> stub_;
  absl::Notification stop_;
  mutable absl::Mutex mu_;
  std::string lease_id_ ABSL_GUARDED_BY(mu_);
  // The Connect stream ended for a heartbeat's lease: heartbeats go as calls until the
  // agent has registered again.
  bool lease_refused_on_stream_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  v1::AgentDefinition definition_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> features_ ABSL_GUARDED_BY(mu_);  // agentd's, at registration
  // Whether agentd takes TaskEventBatch: read by whoever writes, under write_mu_.
  std::atomic<bool> batches_{false};
  v1::AgentActivity activity_ ABSL_GUARDED_BY(mu_) = v1::AGENT_ACTIVITY_IDLE;
  std::string progress_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* connect_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool registered_ ABSL_GUARDED_BY(mu_) = false;
  int reports_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_seq_ ABSL_GUARDED_BY(mu_) = 0;  // highest delivery taken in
  // Writes on the Connect stream, one at a time. Taken before out_mu_, never after.
  absl::Mutex write_mu_;
  grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>* stream_
      ABSL_GUARDED_BY(write_mu_) = nullptr;
  int64_t dropped_spans_ ABSL_GUARDED_BY(write_mu_) = 0;  // while the stream was down
  // What waits to be written; taken off only with write_mu_ held, so that whoever
  // writes next writes it first, in order.
  absl::Mutex out_mu_;
  std::deque<v1::ConnectRequest> out_ ABSL_GUARDED_BY(out_mu_);
  // The last outcome taken off the queue (written, or dropped while the stream was
  // down), resent after a reconnect: set only under write_mu_ too, so that it never
  // overtakes events queued before it.
  std::optional<v1::TaskEvent> last_final_ ABSL_GUARDED_BY(out_mu_);
};

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_HOST_SESSION_H_
