#include "manager/core/scheduler.h"

#include <algorithm>

namespace agentd {

HandOut PlanHandOut(const std::vector<SchedTask>& ready, const std::vector<SchedAgent>& agents,
                    const std::map<std::string, SchedRole>& roles) {
  HandOut out;
  std::set<std::string> taken;     // agents given a task in this pass
  std::set<std::string> starting;  // roles considered for a start in this pass
  auto free = [&](const SchedAgent& a) { return a.connected && !a.busy && taken.count(a.id) == 0; };
  for (const SchedTask& t : ready) {
    if (t.paused) continue;
    const SchedAgent* pick = nullptr;
    if (!t.resume_on.empty()) {
      for (const SchedAgent& a : agents) {
        if (a.id == t.resume_on && free(a)) pick = &a;
      }
    }
    for (const SchedAgent& a : agents) {
      if (pick != nullptr) break;
      if (a.role == t.role && free(a)) pick = &a;
    }
    if (pick != nullptr) {
      taken.insert(pick->id);
      out.assign.emplace_back(t.id, pick->id);
      continue;
    }
    if (starting.count(t.role) != 0) continue;
    auto role = roles.find(t.role);
    if (role == roles.end()) {
      out.unknown_role.push_back(t.id);
      continue;
    }
    starting.insert(t.role);
    int64_t live = 0, coming = 0;
    for (const SchedAgent& a : agents) {
      if (a.role != t.role || !a.live) continue;
      ++live;
      if (!a.connected) ++coming;
    }
    if (coming > 0 || live >= role->second.max_instances) continue;
    out.start.emplace_back(t.role, t.id);
  }
  return out;
}

void TrackIdle(const std::vector<SchedAgent>& agents, absl::Time now,
               std::map<std::string, absl::Time>* idle_since) {
  std::map<std::string, absl::Time> next;
  for (const SchedAgent& a : agents) {
    if (!a.connected || a.busy) continue;
    auto it = idle_since->find(a.id);
    next[a.id] = it == idle_since->end() ? now : it->second;
  }
  *idle_since = std::move(next);
}

std::vector<std::string> IdleToStop(const std::vector<SchedAgent>& agents,
                                    const std::map<std::string, absl::Time>& idle_since,
                                    const std::set<std::string>& keep,
                                    const std::map<std::string, SchedRole>& roles, absl::Time now) {
  std::vector<std::string> stop;
  for (const SchedAgent& a : agents) {
    auto since = idle_since.find(a.id);
    if (since == idle_since.end() || keep.count(a.id) != 0) continue;
    auto role = roles.find(a.role);
    if (role == roles.end() || now - since->second < role->second.idle_timeout) continue;
    stop.push_back(a.id);
  }
  return stop;
}

absl::Duration IdleCheckInterval(const std::map<std::string, SchedRole>& roles) {
  absl::Duration next = absl::Seconds(30);
  for (const auto& [name, r] : roles) next = std::min(next, r.idle_timeout / 10);
  return std::max(next, absl::Milliseconds(100));
}

}  // namespace agentd
