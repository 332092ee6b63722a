// The tools an agent's model calls that are carried out by the daemon rather than in the
// workspace: delegate (a child task for a role) and propose_plan (a DAG of steps for
// approval), plus message and ask_human, which reach people and other agents.
//
// message sends on the bus; ask_human sends a question to people and waits for the answer.
//
// Each call goes to agentd over AgentHost with the call's id as its request key, so a
// call repeated after a restart creates nothing twice. A daemon that does not serve a
// call yet (UNIMPLEMENTED) or refuses it comes back to the model as a tool error naming
// the reason; the model can correct its arguments and try again.
//
// Delegation tracks which of the tasks delegated during the current Run have not
// ended, which is what the agent loop waits for.
//
// Thread-safety: Run may be called from several threads; Delegations is guarded.
#ifndef AGENTD_AGENTS_RUNTIME_DAEMON_TOOLS_H_
#define AGENTD_AGENTS_RUNTIME_DAEMON_TOOLS_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "agents/runtime/host_session.h"
#include "agents/session/session.h"
#include "agents/tools/tool.h"

namespace agentd::agent {

// The tasks delegated in the current Run and not ended.
class Delegations {
 public:
  void Opened(const std::string& task_id) {
    absl::MutexLock l(&mu_);
    open_.insert(task_id);
  }
  void Reset() {
    absl::MutexLock l(&mu_);
    open_.clear();
  }
  int open() const {
    absl::MutexLock l(&mu_);
    return static_cast<int>(open_.size());
  }

 private:
  mutable absl::Mutex mu_;
  std::set<std::string> open_ ABSL_GUARDED_BY(mu_);
};

// Messages delivered to the agent: answers to its questions go to the ask_human call
// waiting for them; the rest wait in the inbox for the model's next turn. A message seen
// before (a redelivery after a reconnect) is dropped.
class Mailbox {
 public:
  // Keeps the inbox in the agent's session database at `session_path` (through a
  // connection of its own), and takes back what an earlier run of the agent kept there:
  // a message agentd was told had arrived is not lost when the agent is killed before it
  // reached a conversation. Without it, the inbox is in memory only (tests).
  absl::Status Persist(const std::string& session_path);

  // False when the message was seen before. Kept in the session before it returns, so
  // that the acknowledgement sent after it never runs ahead of the message.
  bool Put(const v1::Envelope& m);
  // The inbox's messages for the conversation of task `task_id`, oldest first; they are
  // removed from memory, and from the session when appended to the conversation
  // (SessionStore::AppendFromInbox). agentd's own notes about a task (from "agentd", with a task
  // id: a plan of that task rolled back) belong to that task's conversation alone and wait for it,
  // whatever task the agent is on meanwhile; every other message goes to the task at hand
  // (a peer's message names the sender's task, not this agent's).
  std::vector<v1::Envelope> TakeInbox(const std::string& task_id);
  // Waits for the answer to message `query_id`; nullopt when `cancel` fires first.
  std::optional<v1::Envelope> WaitReply(const std::string& query_id,
                                        const llm::CancelToken* cancel);

 private:
  absl::Mutex mu_;
  std::unique_ptr<session::SessionStore> store_ ABSL_GUARDED_BY(mu_);  // null: memory only
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Envelope> inbox_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Envelope> replies_ ABSL_GUARDED_BY(mu_);  // by reply_to_id
  std::set<std::string> waiting_ ABSL_GUARDED_BY(mu_);                // query ids asked
};

// The daemon tools named in `names` (a role's tools:), calling through `host`. Neither
// pointer is owned; both must outlive the tools.
std::vector<std::unique_ptr<tools::Tool>> DaemonTools(const std::vector<std::string>& names,
                                                      HostSession* host, Delegations* delegations,
                                                      Mailbox* mailbox);

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_DAEMON_TOOLS_H_
