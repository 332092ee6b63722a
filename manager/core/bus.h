// Bus: durable messages between people and agents.
//
// A message is stored (with its event) before anything else happens, then delivered:
// to an agent over its Connect stream, as a delivery the agent acknowledges and is sent
// again after a reconnect until it does (at-least-once; agents drop repeats by message
// id); to "role:<name>", to one agent of the role — a connected idle one if any, else a
// connected busy one, else the first of the role to connect; to "human", to nobody: people
// read the bus (List, agentctl messages, the UI).
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_BUS_H_
#define AGENTD_MANAGER_CORE_BUS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agentd/v1/messages.pb.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/core/supervisor.h"
#include "manager/core/tasks.h"
#include "manager/store/store.h"

namespace agentd {

class Bus {
 public:
  // None of the pointers is owned.
  Bus(EventLoop* loop, Store* store, Outbox* outbox, Supervisor* supervisor, TaskBoard* tasks,
      const ConfigState* config)
      : loop_(loop),
        store_(store),
        outbox_(outbox),
        supervisor_(supervisor),
        tasks_(tasks),
        config_(config) {}

  // Loads the stored messages; role messages not yet delivered wait for an agent again.
  absl::Status Recover();

  // Sends `msg` (to, body, type, task_id, reply_to_id) from `from` ("human:<name>" or an
  // agent id). `request_key` (with `from`) makes a retried send return the first message.
  // Errors: INVALID_ARGUMENT (no body; a recipient that is not an agent, a configured
  // role or "human", saying which exist), NOT_FOUND (an unknown task or reply_to).
  absl::StatusOr<v1::Envelope> Send(const std::string& from, v1::Envelope msg,
                                    const std::string& request_key = "");
  // Messages in seq order after `after_seq`, about a goal or task, or from or to an agent.
  v1::ListMessagesResponse List(const v1::ListMessagesRequest& req) const;
  // Whether `m` is about `goal_id` and `task_id` and from or to `agent_id` (or "human"),
  // each empty matching all: ListMessages' and WatchMessages' selection.
  static bool Matches(const v1::Envelope& m, const std::string& goal_id, const std::string& task_id,
                      const std::string& agent_id);
  // Message `id` as the bus holds it now (numbered, with its delivery), or null: a
  // "message.sent" event carries the envelope as it was before the bus numbered it. On
  // the loop.
  const v1::Envelope* Find(const std::string& id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return nullptr;
    auto m = messages_.find(it->second);
    return m == messages_.end() ? nullptr : &m->second;
  }
  // The seq of the newest message (0 when there is none). On the loop.
  int64_t LastSeq() const { return messages_.empty() ? 0 : messages_.rbegin()->first; }

  // An agent's stream opened: role messages waiting for an agent of its role go to it.
  void OnAttach(const std::string& agent);
  // The agent acknowledged a delivery that carried a message.
  void OnAck(const std::string& agent, int64_t delivery_seq);

 private:
  void DeliverTo(v1::Envelope& msg, const std::string& agent);
  void Save(const v1::Envelope& msg);

  EventLoop* loop_;
  Store* store_;
  Outbox* outbox_;
  Supervisor* supervisor_;
  TaskBoard* tasks_;
  const ConfigState* config_;
  std::map<int64_t, v1::Envelope> messages_;                       // by bus seq
  std::map<std::pair<std::string, std::string>, int64_t> by_key_;  // (from, key) → seq
  std::map<std::string, int64_t> by_id_;
  std::map<std::pair<std::string, int64_t>, int64_t> pending_ack_;  // (agent, delivery) → seq
  int64_t next_id_ = 1;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_BUS_H_
