// ConsentBook: requests from agents for what only a person may grant (network for a tool,
// a path outside the workspace, a program off the allowlist), and the decisions.
//
// An agent asks (AgentHost.RequestConsent) and polls (GetConsentDecision); a person
// lists and decides (ConsentService, `agentctl consent`). A request nobody decides
// before its deadline expires, which counts as denied. Every request and decision is
// stored with its event, so pending requests and their deadlines survive a restart.
//
// A decision binds to exactly the request it was given. A request is identified by
// (agent, task, attempt, fingerprint), the fingerprint being a SHA-256 over the tool,
// the kind and the structured details; the agent's request_id plays no part in it.
// Provider tool-call ids repeat across responses (Ollama's codec numbers them call_1…
// afresh each time, local OpenAI-compatible servers do the same), so a request_id seen
// before with other details is an honest agent's new request, not an error: it gets a
// request of its own, and the earlier decision never covers it. Asking again with the
// same identity returns the earlier request while it is pending or approved (a retried
// call is not asked twice); after a denial or an expiry it is a new question for a
// person (who may have clicked "open" again, or changed their mind).
//
// What a person is shown (the summary) is built here from the kind and the details;
// an agent's own summary is ignored, so it cannot describe one thing and ask for another.
// An approval with remember_for_goal covers later requests of the same goal with the
// same fingerprint (same tool, kind and details), and only those.
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
#include "manager/core/transcripts.h"
#include "manager/store/store.h"

namespace agentd {

class ConsentBook {
 public:
  // Neither pointer is owned. `default_timeout` applies to requests that set none.
  // `transcripts` (may be null) gets each request of a task and its decision.
  ConsentBook(EventLoop* loop, Store* store, absl::Duration default_timeout,
              Transcripts* transcripts = nullptr)
      : loop_(loop), store_(store), default_timeout_(default_timeout), transcripts_(transcripts) {}

  // Loads the stored requests; pending ones get their deadline timers back (one already
  // past expires now).
  absl::Status Recover();

  // A request by `agent` for req.task_id, which the caller has checked the agent holds;
  // `goal_id` and `attempt` are that task's as the daemon knows them. req.summary is
  // ignored. The same (agent, task, attempt, fingerprint) returns the earlier request
  // while pending or approved; one a remembered grant of the goal covers is APPROVED at once
  // (decided_by "remembered"). Errors: INVALID_ARGUMENT (no tool, no kind, no details,
  // or details too many or too large).
  absl::StatusOr<v1::RequestConsentResponse> Request(const std::string& agent,
                                                     const v1::RequestConsentRequest& req,
                                                     const std::string& goal_id = "",
                                                     int32_t attempt = 0);
  // The request `id` as `agent` may see it. Errors: NOT_FOUND, PERMISSION_DENIED (another
  // agent's request).
  absl::StatusOr<v1::ConsentRequest> Get(const std::string& agent, const std::string& id) const;
  // The request `id` as a person sees it (any agent's). Errors: NOT_FOUND.
  absl::StatusOr<v1::ConsentRequest> Find(const std::string& id) const;
  // Errors: NOT_FOUND; FAILED_PRECONDITION (already decided or expired);
  // INVALID_ARGUMENT (no decision). An approval with remember_for_goal also covers the
  // goal's later requests with the same fingerprint.
  absl::StatusOr<v1::ConsentRequest> Decide(const v1::DecideConsentRequestRequest& req,
                                            const std::string& decided_by);
  std::vector<v1::ConsentRequest> List(bool include_decided, const std::string& agent) const;
  // Where decisions are recorded; not owned, may be null.
  void SetAudit(AuditLog* audit) { audit_ = audit; }
  // Called after each decision by a person is stored (approved or denied).
  void AddDecisionObserver(std::function<void(const v1::ConsentRequest&)> fn) {
    decision_observers_.push_back(std::move(fn));
  }

  // What a person is shown for a request: built from the kind, tool and details alone,
  // every detail included, argv (a JSON array of strings, or a plain command line) and
  // paths quoted as a shell would need them, control and bidi characters written as
  // escapes. Pure; any thread.
  static std::string Summary(const std::string& tool, v1::ConsentKind kind,
                             const std::map<std::string, std::string>& details);
  // SHA-256 (hex) over tool, kind and details, each length-prefixed so no two different
  // requests encode alike. Pure; any thread.
  static std::string Fingerprint(const std::string& tool, v1::ConsentKind kind,
                                 const std::map<std::string, std::string>& details);

 private:
  void Save(const v1::ConsentRequest& r, const std::string& key, const char* event);
  void Arm(const std::string& id, absl::Time deadline);
  void Expire(const std::string& id);

  EventLoop* loop_;
  Store* store_;
  absl::Duration default_timeout_;
  Transcripts* transcripts_;
  std::map<std::string, v1::ConsentRequest> requests_;  // by id, ids increase with time
  // (agent, "task@attempt#fingerprint") → id of the request with that identity.
  std::map<std::pair<std::string, std::string>, std::string> by_key_;
  // (goal, fingerprint) → id of the approval remembered for the rest of the goal.
  std::map<std::pair<std::string, std::string>, std::string> remembered_;
  int64_t next_ = 1;
  AuditLog* audit_ = nullptr;
  std::vector<std::function<void(const v1::ConsentRequest&)>> decision_observers_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_CONSENT_H_
