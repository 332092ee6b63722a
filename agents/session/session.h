// SessionStore: an agent's memory of its tasks in sessions/<agent_id>/<agent_id>.db (SQLite, WAL,
// synchronous NORMAL: durable across a kill -9 of the agent, not a power cut), so
// that an agent killed at any point resumes where it stopped.
//
// Per task it keeps the conversation (each message appended once, in order) and a tool
// journal: the intent of a call with side effects is committed before the call runs, and
// its result after. On restart, a call with a result is not run again (its result is
// replayed to the model); a call with an intent and no result may or may not have taken
// effect, and the caller must check before retrying it.
//
// Thread-safety: one thread at a time (the agent loop's).
#ifndef AGENTD_AGENTS_SESSION_SESSION_H_
#define AGENTD_AGENTS_SESSION_SESSION_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agents/llm/types.h"
#include "common/sqlite.h"

namespace agentd::session {

enum class CallState { kIntent, kDone };

struct JournalEntry {
  std::string call_id;
  std::string tool;
  std::string arguments;  // JSON text
  CallState state = CallState::kIntent;
  std::string result;  // when done
  bool error = false;  // when done
};

class SessionStore {
 public:
  // Opens or creates the database at `path` (its directory must exist).
  static absl::StatusOr<std::unique_ptr<SessionStore>> Open(const std::string& path);

  // Appends `m` to the task's conversation.
  absl::Status Append(const std::string& task, const llm::Message& m);
  // Appends `ms`, in order, in one transaction: all of them or none.
  absl::Status AppendAll(const std::string& task, const std::vector<llm::Message>& ms);
  // Appends `m`, made of the inbox's message `inbox_id`, and drops that message from the
  // inbox, in one transaction: a message is in the inbox or in a conversation, never
  // both, never neither.
  absl::Status AppendFromInbox(const std::string& task, const llm::Message& m,
                               const std::string& inbox_id);

  // The inbox: messages delivered to the agent and acknowledged, not yet in a
  // conversation, kept across the agent's restarts. Keep stores one (false when that id
  // is there already); Drop removes one (a reply taken by the call that waited for it);
  // Kept lists them as (id, body), oldest first.
  absl::StatusOr<bool> Keep(const std::string& id, const std::string& body);
  absl::Status Drop(const std::string& id);
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> Kept();

  // The task's conversation, in order; empty for a task not seen before.
  absl::StatusOr<std::vector<llm::Message>> Conversation(const std::string& task);

  // Records that the call is about to run. Idempotent for the same call id.
  absl::Status RecordIntent(const std::string& task, const llm::ToolCall& call);
  // Records its result.
  absl::Status RecordResult(const std::string& task, const std::string& call_id,
                            const std::string& result, bool error);
  // The journal entry of a call, if there is one.
  absl::StatusOr<std::optional<JournalEntry>> Find(const std::string& task,
                                                   const std::string& call_id);

 private:
  explicit SessionStore(std::unique_ptr<sqlite::Db> db) : db_(std::move(db)) {}
  std::unique_ptr<sqlite::Db> db_;
};

}  // namespace agentd::session

#endif  // AGENTD_AGENTS_SESSION_SESSION_H_
