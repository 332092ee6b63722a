#include "manager/core/lease_board.h"

#include <utility>

namespace agentd {

void LeaseBoard::Set(const std::string& id, Lease lease) {
  absl::MutexLock l(&mu_);
  Entry& e = entries_[id];
  if (e.lease.lease_id != lease.lease_id || e.lease.token != lease.token) {
    e.renewed = absl::InfinitePast();
  }
  if (e.lease.token != lease.token) {
    if (!e.lease.token.empty()) by_token_.erase(e.lease.token);
    if (!lease.token.empty()) by_token_[lease.token] = id;
  }
  e.lease = std::move(lease);
}

void LeaseBoard::Remove(const std::string& id) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (!it->second.lease.token.empty()) by_token_.erase(it->second.lease.token);
  entries_.erase(it);
}

bool LeaseBoard::TryRenew(const std::string& id, const std::string& token,
                          const v1::HeartbeatRequest& req) {
  // Read before the lock: a clock that takes a lock of its own never nests in this one.
  absl::Time now = clock_->Now();
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  return it != entries_.end() && Renew(it->second, token, req, now);
}

std::optional<absl::Time> LeaseBoard::TryRenewCall(const std::string& token,
                                                   const v1::HeartbeatRequest& req) {
  absl::Time now = clock_->Now();
  absl::MutexLock l(&mu_);
  auto id = by_token_.find(token);
  if (id == by_token_.end()) return std::nullopt;
  auto it = entries_.find(id->second);
  if (it == entries_.end() || !Renew(it->second, token, req, now)) return std::nullopt;
  return it->second.renewed + it->second.lease.ttl;
}

bool LeaseBoard::Renew(Entry& e, const std::string& token, const v1::HeartbeatRequest& req,
                       absl::Time now) {
  const Lease& lease = e.lease;
  // As Supervisor::SetActivity reads it: busy is busy, anything else idle.
  bool busy = req.activity() == v1::AGENT_ACTIVITY_BUSY;
  if (!lease.renewable || token.empty() || lease.lease_id.empty() || token != lease.token ||
      req.lease_id() != lease.lease_id || busy != lease.busy || req.progress() != lease.progress) {
    return false;
  }
  if (now > e.renewed) e.renewed = now;
  return true;
}

absl::Time LeaseBoard::Hold(const std::string& id, const std::string& lease_id) {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || lease_id.empty() || it->second.lease.lease_id != lease_id) {
    return absl::InfinitePast();
  }
  it->second.lease.renewable = false;
  return it->second.renewed;
}

absl::Time LeaseBoard::RenewedAt(const std::string& id, const std::string& lease_id) const {
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end() || lease_id.empty() || it->second.lease.lease_id != lease_id) {
    return absl::InfinitePast();
  }
  return it->second.renewed;
}

}  // namespace agentd
