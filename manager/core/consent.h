// ConsentBook: requests from agents for what only a person may grant (network for a tool,
// a path outside the workspace, a program off the allowlist), and the decisions.
//
// An agent asks (AgentHost.RequestConsent) and polls (GetConsentDecision); a person
// lists and decides (ConsentService, `agentctl consent`). A request nobody decides
// before its deadline expires, which counts as denied. Every request and decision is
// stored with its event, so pending requests and their deadlines survive a restart.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_CONSENT_H_
#define AGENTD_MANAGER_CORE_CONSENT_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentd/v1/agent_host.pb.h"
#include "agentd/v1/consent.pb.h"
#include "manager/core/audit.h"
#include "manager/core/event_loop.h"
#include "manager/store/store.h"

namespace agentd {

class ConsentBook {
 public:
  // Neither pointer is owned. `default_timeout` applies to requests that set none.
  ConsentBook(EventLoop* loop, Store* store, absl::Duration default_timeout)
      : loop_(loop), store_(store), default_timeout_(default_timeout) {}

  // Loads the stored requests; pending ones get their deadline timers back (one already
  // past expires now).
  absl::Status Recover();

  // A request by `agent`. The same request_id from the same agent returns the first
  // request. Errors: INVALID_ARGUMENT (no tool or summary).
  // `goal_id` is the goal of req.task_id as the daemon knows it (empty when none).
  absl::StatusOr<v1::RequestConsentResponse> Request(const std::string& agent,
                                                     const v1::RequestConsentRequest& req,
                                                     const std::string& goal_id = "");
  // The request `id` as `agent` may see it. Errors: NOT_FOUND, PERMISSION_DENIED (another
  // agent's request).
  absl::StatusOr<v1::ConsentRequest> Get(const std::string& agent, const std::string& id) const;
  // Errors: NOT_FOUND; FAILED_PRECONDITION (already decided or expired);
  // INVALID_ARGUMENT (no decision).
  absl::StatusOr<v1::ConsentRequest> Decide(const v1::DecideConsentRequestRequest& req,
                                            const std::string& decided_by);
  std::vector<v1::ConsentRequest> List(bool include_decided, const std::string& agent) const;
  // Where decisions are recorded; not owned, may be null.
  void SetAudit(AuditLog* audit) { audit_ = audit; }
  // Called after each decision by a person is stored (approved or denied).
  void AddDecisionObserver(std::function<void(const v1::ConsentRequest&)> fn) {
    decision_observers_.push_back(std::move(fn));
  }

 private:
  void Save(const v1::ConsentRequest& r, const std::string& key, const char* event);
  void Arm(const std::string& id, absl::Time deadline);
  void Expire(const std::string& id);

  EventLoop* loop_;
  Store* store_;
  absl::Duration default_timeout_;
  std::map<std::string, v1::ConsentRequest> requests_;  // by id, ids increase with time
  std::map<std::pair<std::string, std::string>, std::string> by_key_;  // (agent, key) → id
  int64_t next_ = 1;
  AuditLog* audit_ = nullptr;
  std::vector<std::function<void(const v1::ConsentRequest&)>> decision_observers_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_CONSENT_H_
