// Outbox: what agentd sends each agent over its Connect stream (task assignments,
// messages, plan decisions), numbered (seq, increasing, never reused), stored until the
// agent acknowledges it, and sent again, in order, when the agent connects again after
// the last seq it saw. TaskBoard, Bus and PlanBook all send through it.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_OUTBOX_H_
#define AGENTD_MANAGER_CORE_OUTBOX_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agentd/v1/agent_host.pb.h"
#include "manager/store/store.h"

namespace agentd {

// An agent's open Connect stream, as the core sees it.
class ConnectSink {
 public:
  virtual ~ConnectSink() = default;
  // Queues one delivery to be written; never blocks.
  virtual void Deliver(const v1::ConnectResponse& delivery) = 0;
};

class Outbox {
 public:
  // `store` is not owned.
  explicit Outbox(Store* store) : store_(store) {}

  // Loads what agents had not acknowledged when agentd stopped.
  absl::Status Recover();

  // Stores `delivery` for `agent` and sends it now if its stream is open; its seq, or 0
  // when the store refused it (logged; nothing is sent then). A task assignment's
  // reservations go with this send only, never with one sent again.
  int64_t Deliver(const std::string& agent, v1::ConnectResponse delivery);
  // `agent`'s stream opened: everything stored for it after `after_seq` is sent, oldest
  // first; returns what was sent.
  std::vector<v1::ConnectResponse> Attach(const std::string& agent, ConnectSink* sink,
                                          int64_t after_seq);
  // The stream closed; `sink` is not used again (a newer stream of the agent stays).
  void Detach(const std::string& agent, ConnectSink* sink);
  // The agent has everything up to `seq`: forgotten, here and in the store. False when
  // nothing was waiting up to it (a repeated or stale acknowledgement).
  bool Ack(const std::string& agent, int64_t seq);
  // The seq up to which `agent` has acknowledged everything (0: nothing waits, or none).
  int64_t AckedSeq(const std::string& agent) const;
  // Agents whose stream is open.
  const std::map<std::string, ConnectSink*>& attached() const { return streams_; }
  bool Attached(const std::string& agent) const { return streams_.count(agent) != 0; }

 private:
  Store* store_;
  std::map<std::string, ConnectSink*> streams_;
  std::map<std::string, std::map<int64_t, v1::ConnectResponse>> pending_;  // by agent, seq
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_OUTBOX_H_
