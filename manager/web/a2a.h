// A2aServer: agentd to other agent systems, as A2A v1.0 describes — the Agent Card, and the
// JSON-RPC 2.0 binding (SendMessage, SendStreamingMessage, GetTask, ListTasks, CancelTask,
// SubscribeToTask) that the HTTP listener serves at /a2a.
//
// It is a client of agentd's own API, over the server's in-process channel: an A2A task is
// a goal (its id is the goal's id, and so is its contextId); its history is the message
// that started it and the questions agentd put; its artifacts are the goal's result (its
// summary, and each artifact the agents reported, such as commits). States map as
//   goal pending or ready              → TASK_STATE_SUBMITTED
//   assigned, running, blocked         → TASK_STATE_WORKING
//   a plan awaits approval, or a       → TASK_STATE_INPUT_REQUIRED, the question in
//   consent request waits for a person   status.message
//   completed / failed / canceled      → TASK_STATE_COMPLETED / _FAILED / _CANCELED
// A message sent to a task that requires input answers the oldest question: a text that
// starts with "approve" (or "yes", "ok", "allow") approves the plan or grants the
// consent; anything else rejects the plan (the text is the reason) or denies the consent.
// A data part {"decision": "approve"|"reject", "reason": "…"} says the same for programs.
//
// Thread-safety: Handle blocks its caller until the answer (a blocking SendMessage waits
// for the goal to end or to need input) and may be called from many threads at once.
#ifndef AGENTD_MANAGER_WEB_A2A_H_
#define AGENTD_MANAGER_WEB_A2A_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "grpcpp/channel.h"
#include "nlohmann/json.hpp"

namespace agentd::web {

struct A2aOptions {
  std::shared_ptr<grpc::Channel> channel;  // agentd's in-process channel
  std::string admin_token;                 // sent on the in-process calls
  std::string name = "agentd";
  std::string description;
  std::string version;
  // The roles the team has, each with its description: the card's skills.
  std::function<std::vector<std::pair<std::string, std::string>>()> roles;
  // The TCP gRPC listener's address ("127.0.0.1:50051"), listed in the card as the GRPC
  // interface; empty: none.
  std::string grpc_address;
};

// Where an A2A response goes: one JSON body, or an SSE stream of events.
class A2aResponder {
 public:
  virtual ~A2aResponder() = default;
  // The whole answer (a JSON-RPC response), with its HTTP status.
  virtual void Json(int http_status, std::string body) = 0;
  // An event of a stream (a JSON-RPC response's text); the first one starts the stream;
  // `last` ends it.
  virtual void Event(std::string data, bool last) = 0;
  // True once the client has gone away (a stream stops then).
  virtual bool gone() const = 0;
};

class A2aServer {
 public:
  explicit A2aServer(A2aOptions options);

  // The Agent Card, with `base_url` ("http://127.0.0.1:7878") as the JSON-RPC interface's
  // root.
  std::string AgentCard(absl::string_view base_url) const;

  // Serves one JSON-RPC request (`body`). `authorized`: the caller presented the admin
  // token or the A2A token; otherwise the answer is HTTP 401 with a JSON-RPC error.
  void Handle(const std::string& body, bool authorized, A2aResponder* out);

 private:
  struct View;  // a goal as A2A shows it (a2a.cc)
  A2aOptions o_;
};

namespace a2a_internal {
// The A2A TaskState name for a goal's status and whether a person is asked something.
std::string StateOf(int task_status, bool input_required);
// Whether a reply text approves ("approve", "approved", "yes", "ok", "allow", "lgtm", any
// case, at its start).
bool Approves(absl::string_view text);
}  // namespace a2a_internal

}  // namespace agentd::web

#endif  // AGENTD_MANAGER_WEB_A2A_H_
