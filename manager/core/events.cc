#include "manager/core/events.h"

#include "absl/strings/match.h"
#include "manager/core/proto_time.h"

namespace agentd {
namespace {

bool Matches(const v1::EventFilter& f, const EventRow& r) {
  if (!f.goal_id().empty() && r.goal_id != f.goal_id()) return false;
  if (!f.agent_id().empty() && r.agent_id != f.agent_id()) return false;
  if (!f.task_id().empty() && r.task_id != f.task_id()) return false;
  if (f.kinds().empty()) return true;
  for (const std::string& k : f.kinds()) {
    if (absl::EndsWith(k, ".") ? absl::StartsWith(r.kind, k) : r.kind == k) return true;
  }
  return false;
}

}  // namespace

EventFeed::EventFeed(Store* store) : store_(store) {
  store_->SetEventHook([this](int64_t) {
    // A subscriber may unsubscribe from its wake-up: iterate over a copy.
    std::vector<std::function<void()>> wakes;
    for (const auto& [id, wake] : subscribers_) wakes.push_back(wake);
    for (const auto& wake : wakes) wake();
  });
}

absl::StatusOr<std::vector<v1::Event>> EventFeed::Read(int64_t after_seq,
                                                       const v1::EventFilter& filter, int limit,
                                                       int64_t* scanned_to) const {
  std::vector<v1::Event> out;
  *scanned_to = after_seq;
  // Filtered reads scan on in chunks; a watcher of one goal does not read the world at
  // once.
  for (int chunks = 0; chunks < 8 && static_cast<int>(out.size()) < limit; ++chunks) {
    absl::StatusOr<std::vector<EventRow>> rows = store_->QueryEvents(*scanned_to, 500);
    if (!rows.ok()) return rows.status();
    for (const EventRow& r : *rows) {
      *scanned_to = r.seq;
      if (!Matches(filter, r)) continue;
      v1::Event e;
      e.set_seq(r.seq);
      SetTime(absl::FromUnixMicros(r.time_us), e.mutable_time());
      e.set_kind(r.kind);
      e.set_agent_id(r.agent_id);
      e.set_task_id(r.task_id);
      e.set_goal_id(r.goal_id);
      switch (r.resource_type) {
        case kEventAgent:
          (void)e.mutable_agent()->ParseFromString(r.resource);
          break;
        case kEventTask:
          (void)e.mutable_task()->ParseFromString(r.resource);
          e.set_plan_id(e.task().plan_id());
          break;
        case kEventPlan:
          (void)e.mutable_plan()->ParseFromString(r.resource);
          e.set_plan_id(e.plan().id());
          break;
        case kEventEnvelope:
          (void)e.mutable_envelope()->ParseFromString(r.resource);
          break;
        case kEventConsent:
          (void)e.mutable_consent_request()->ParseFromString(r.resource);
          break;
        case kEventUsage:
          (void)e.mutable_usage_record()->ParseFromString(r.resource);
          break;
        case kEventAudit:
          (void)e.mutable_audit_entry()->ParseFromString(r.resource);
          break;
        case kEventBudget:
          (void)e.mutable_budget()->ParseFromString(r.resource);
          break;
        default:
          break;
      }
      out.push_back(std::move(e));
      if (static_cast<int>(out.size()) == limit) return out;
    }
    if (rows->size() < 500) break;
  }
  return out;
}

int EventFeed::Subscribe(std::function<void()> wake) {
  int id = next_++;
  subscribers_[id] = std::move(wake);
  return id;
}

void EventFeed::Unsubscribe(int id) { subscribers_.erase(id); }

}  // namespace agentd
