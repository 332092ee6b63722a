// HostSession: an agent's link to agentd — register, heartbeat under the lease, hold the
// Connect stream — and reconnecting when the daemon goes away.
//
// Run() blocks until Stop() or until the daemon has been unreachable for longer than
// `reconnect_grace`; it returns OK after Stop() and Unavailable after the grace ran out.
// Heartbeats say idle or busy (SetActivity), so a long LLM call is not mistaken for a
// hang. Stop() may be called from any thread (a signal handler thread).
#ifndef AGENTD_AGENTS_RUNTIME_HOST_SESSION_H_
#define AGENTD_AGENTS_RUNTIME_HOST_SESSION_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
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
};

class HostSession {
 public:
  explicit HostSession(HostSessionOptions options);
  absl::Status Run();
  void Stop();
  void SetActivity(v1::AgentActivity activity, std::string progress);
  // The definition agentd sent at the last registration.
  v1::AgentDefinition definition() const;

 private:
  absl::Status RegisterOnce();
  void HoldConnect();
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) const;

  HostSessionOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentHostService::Stub> stub_;
  absl::Notification stop_;
  mutable absl::Mutex mu_;
  std::string lease_id_ ABSL_GUARDED_BY(mu_);
  absl::Duration interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(5);
  v1::AgentDefinition definition_ ABSL_GUARDED_BY(mu_);
  v1::AgentActivity activity_ ABSL_GUARDED_BY(mu_) = v1::AGENT_ACTIVITY_IDLE;
  std::string progress_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* connect_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_HOST_SESSION_H_
