#include "manager/core/consent.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
absl::Status ConsentBook::Recover() {
  absl::StatusOr<std::vector<ConsentRow>> rows = store_->LoadConsents();
  if (!rows.ok()) return rows.status();
  for (const ConsentRow& row : *rows) {
    v1::ConsentRequest r;
    if (!r.ParseFromString(row.request)) {
      spdlog::warn("consent request {}: stored record unreadable; skipped", row.id);
      continue;
    }
    int64_t n = 0;
    if (absl::SimpleAtoi(absl::string_view(row.id).substr(row.id.rfind('-') + 1), &n)) {
      next_ = std::max(next_, n + 1);
    }
    if (!row.request_key.empty()) by_key_[{row.agent_id, row.request_key}] = row.id;
    requests_[row.id] = r;
    if (r.status() == v1::CONSENT_STATUS_PENDING && r.has_deadline()) {
      Arm(row.id, FromProto(r.deadline()));
    }
  }
  return absl::OkStatus();
}

void ConsentBook::Save(const v1::ConsentRequest& r, const std::string& key, const char* event) {
  nlohmann::json payload = {{"id", r.id()},
                            {"tool", r.tool()},
                            {"status", v1::ConsentStatus_Name(r.status())},
                            {"decided_by", r.decided_by()},
                            {"reason", r.decision_reason()}};
  ConsentRow row{r.id(), r.agent_id(), key, r.status(), r.SerializeAsString()};
  if (auto s = store_->SaveConsent(row, loop_->clock()->Now(), event, payload.dump()); !s.ok()) {
    spdlog::error("consent request {}: recording it: {}", r.id(), s.status().message());
  }
}

void ConsentBook::Arm(const std::string& id, absl::Time deadline) {
  loop_->RunAt(deadline, [this, id] { Expire(id); });
}

void ConsentBook::Expire(const std::string& id) {
  auto it = requests_.find(id);
  if (it == requests_.end() || it->second.status() != v1::CONSENT_STATUS_PENDING) return;
  v1::ConsentRequest& r = it->second;
  r.set_status(v1::CONSENT_STATUS_EXPIRED);
  r.set_decision_reason("nobody decided before the deadline: treated as denied");
  SetTime(loop_->clock()->Now(), r.mutable_decide_time());
  Save(r, "", "consent.expired");
  if (audit_ != nullptr) {
    audit_->AppendBy("daemon", "consent.expire", r.summary(), "", r.task_id(),
                     {{"request", r.id()}, {"agent", r.agent_id()}, {"tool", r.tool()}});
  }
  spdlog::info("consent request {} ({} for {}) expired", id, r.tool(), r.agent_id());
}

absl::StatusOr<v1::RequestConsentResponse> ConsentBook::Request(
    const std::string& agent, const v1::RequestConsentRequest& req, const std::string& goal_id) {
  v1::RequestConsentResponse resp;
  if (!req.request_id().empty()) {
    if (auto k = by_key_.find({agent, req.request_id()}); k != by_key_.end()) {
      const v1::ConsentRequest& first = requests_.at(k->second);
      resp.set_consent_request_id(first.id());
      resp.set_status(first.status());
      return resp;
    }
  }
  if (req.tool().empty() || req.summary().empty()) {
    return absl::InvalidArgumentError(
        "a consent request needs the tool and a summary a person can decide on");
  }
  absl::Time now = loop_->clock()->Now();
  absl::Duration timeout = req.has_timeout() ? absl::Seconds(req.timeout().seconds()) +
                                                   absl::Nanoseconds(req.timeout().nanos())
                                             : default_timeout_;
  v1::ConsentRequest r;
  r.set_id(absl::StrFormat("consent-%d", next_++));
  r.set_agent_id(agent);
  r.set_task_id(req.task_id());
  r.set_goal_id(goal_id);
  r.set_tool(req.tool());
  r.set_kind(req.kind());
  r.set_summary(req.summary());
  for (const auto& [k, v] : req.details()) (*r.mutable_details())[k] = v;
  r.set_status(v1::CONSENT_STATUS_PENDING);
  SetTime(now, r.mutable_create_time());
  if (timeout > absl::ZeroDuration()) SetTime(now + timeout, r.mutable_deadline());
  Save(r, req.request_id(), "consent.requested");
  if (!req.request_id().empty()) by_key_[{agent, req.request_id()}] = r.id();
  if (r.has_deadline()) Arm(r.id(), now + timeout);
  spdlog::info("consent request {} from {}: {}", r.id(), agent, r.summary());
  requests_[r.id()] = r;
  resp.set_consent_request_id(r.id());
  resp.set_status(r.status());
  return resp;
}

absl::StatusOr<v1::ConsentRequest> ConsentBook::Get(const std::string& agent,
                                                    const std::string& id) const {
  auto it = requests_.find(id);
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("consent request \"", id, "\" does not exist"));
  }
  if (it->second.agent_id() != agent) {
    return absl::PermissionDeniedError(
        absl::StrCat("consent request \"", id, "\" belongs to another agent"));
  }
  return it->second;
}

absl::StatusOr<v1::ConsentRequest> ConsentBook::Decide(const v1::DecideConsentRequestRequest& req,
                                                       const std::string& decided_by) {
  auto it = requests_.find(req.consent_request_id());
  if (it == requests_.end()) {
    return absl::NotFoundError(absl::StrCat("consent request \"", req.consent_request_id(),
                                            "\" does not exist (agentctl get consents lists "
                                            "them)"));
  }
  v1::ConsentRequest& r = it->second;
  if (r.status() != v1::CONSENT_STATUS_PENDING) {
    return absl::FailedPreconditionError(
        absl::StrCat("consent request \"", r.id(), "\" is already ",
                     v1::ConsentStatus_Name(r.status()).substr(15), "; it cannot be decided now"));
  }
  if (req.decision() != v1::CONSENT_DECISION_APPROVE &&
      req.decision() != v1::CONSENT_DECISION_DENY) {
    return absl::InvalidArgumentError("decision must be APPROVE or DENY");
  }
  r.set_status(req.decision() == v1::CONSENT_DECISION_APPROVE ? v1::CONSENT_STATUS_APPROVED
                                                              : v1::CONSENT_STATUS_DENIED);
  r.set_decided_by(decided_by);
  r.set_decision_reason(req.reason());
  r.set_remember_for_goal(req.remember_for_goal());
  SetTime(loop_->clock()->Now(), r.mutable_decide_time());
  Save(r, "", r.status() == v1::CONSENT_STATUS_APPROVED ? "consent.approved" : "consent.denied");
  if (audit_ != nullptr) {
    audit_->AppendBy(decided_by,
                     r.status() == v1::CONSENT_STATUS_APPROVED ? "consent.approve" : "consent.deny",
                     r.summary(), "", r.task_id(),
                     {{"request", r.id()}, {"agent", r.agent_id()}, {"tool", r.tool()}});
  }
  v1::ConsentRequest decided = r;
  for (const auto& fn : decision_observers_) fn(decided);
  return decided;
}

std::vector<v1::ConsentRequest> ConsentBook::List(bool include_decided,
                                                  const std::string& agent) const {
  std::vector<v1::ConsentRequest> out;
  for (const auto& [id, r] : requests_) {
    if (!include_decided && r.status() != v1::CONSENT_STATUS_PENDING) continue;
    if (!agent.empty() && r.agent_id() != agent) continue;
    out.push_back(r);
  }
  return out;
}

}  // namespace agentd
