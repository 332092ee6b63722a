#include "manager/core/outbox.h"

#include <optional>

#include "common/logging.h"
#include "spdlog/spdlog.h"

namespace agentd {

absl::Status Outbox::Recover() {
  absl::StatusOr<std::vector<DeliveryRow>> deliveries = store_->LoadDeliveries();
  if (!deliveries.ok()) return deliveries.status();
  for (const DeliveryRow& d : *deliveries) {
    v1::ConnectResponse r;
    if (!r.ParseFromString(d.body)) continue;
    r.set_seq(d.seq);
    pending_[d.agent_id][d.seq] = std::move(r);
  }
  return absl::OkStatus();
}

int64_t Outbox::Deliver(const std::string& agent, v1::ConnectResponse d) {
  d.clear_seq();
  // A task assignment's reservations go with this send only: one sent again (after a
  // reconnect, or a restart of agentd) might name some the ledger no longer holds.
  std::optional<v1::ConnectResponse> live;
  if (d.has_task_assignment() && d.task_assignment().reservations_size() > 0) {
    live = d;
    d.mutable_task_assignment()->clear_reservations();
  }
  absl::StatusOr<int64_t> seq = store_->AddDelivery(agent, d.SerializeAsString());
  if (!seq.ok()) {
    spdlog::error("delivery to {}: storing it: {}", agent, seq.status().message());
    return 0;
  }
  d.set_seq(*seq);
  if (auto s = streams_.find(agent); s != streams_.end()) {
    if (live.has_value()) {
      live->set_seq(*seq);
      s->second->Deliver(*live);
    } else {
      s->second->Deliver(d);
    }
  }
  pending_[agent][*seq] = std::move(d);
  return *seq;
}

std::vector<v1::ConnectResponse> Outbox::Attach(const std::string& agent, ConnectSink* sink,
                                                int64_t after_seq) {
  streams_[agent] = sink;
  std::vector<v1::ConnectResponse> sent;
  auto& box = pending_[agent];
  for (auto it = box.upper_bound(after_seq); it != box.end(); ++it) {
    sink->Deliver(it->second);
    sent.push_back(it->second);
  }
  return sent;
}

void Outbox::Detach(const std::string& agent, ConnectSink* sink) {
  if (auto it = streams_.find(agent); it != streams_.end() && it->second == sink) {
    streams_.erase(it);
  }
}

bool Outbox::Ack(const std::string& agent, int64_t seq) {
  auto it = pending_.find(agent);
  if (it == pending_.end() || it->second.empty() || it->second.begin()->first > seq) return false;
  it->second.erase(it->second.begin(), it->second.upper_bound(seq));
  if (absl::Status s = store_->AckDeliveries(agent, seq); !s.ok()) {
    spdlog::error("agent {}: recording acknowledged deliveries: {}", agent, s.message());
  }
  return true;
}

int64_t Outbox::AckedSeq(const std::string& agent) const {
  auto box = pending_.find(agent);
  return box == pending_.end() || box->second.empty() ? 0 : box->second.begin()->first - 1;
}

}  // namespace agentd
