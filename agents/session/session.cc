#include "agents/session/session.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"
#include "common/json_dump.h"
#include "nlohmann/json.hpp"

namespace agentd::session {
namespace {

using nlohmann::json;

const char* RoleName(llm::Role r) {
  switch (r) {
    case llm::Role::kSystem:
      return "system";
    case llm::Role::kUser:
      return "user";
    case llm::Role::kAssistant:
      return "assistant";
    case llm::Role::kTool:
      return "tool";
  }
  return "user";
}

json ToJson(const llm::Message& m) {
  json calls = json::array();
  for (const llm::ToolCall& c : m.tool_calls) {
    calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", c.arguments}});
  }
  return {{"role", RoleName(m.role)}, {"content", m.content},
          {"tool_calls", calls},      {"tool_call_id", m.tool_call_id},
          {"tool_name", m.tool_name}, {"tool_error", m.tool_error}};
}

llm::Message FromJson(const json& j) {
  llm::Message m;
  std::string role = j.value("role", "user");
  m.role = role == "system"      ? llm::Role::kSystem
           : role == "assistant" ? llm::Role::kAssistant
           : role == "tool"      ? llm::Role::kTool
                                 : llm::Role::kUser;
  m.content = j.value("content", "");
  for (const json& c : j.value("tool_calls", json::array())) {
    m.tool_calls.push_back({c.value("id", ""), c.value("name", ""), c.value("arguments", "")});
  }
  m.tool_call_id = j.value("tool_call_id", "");
  m.tool_name = j.value("tool_name", "");
  m.tool_error = j.value("tool_error", false);
  return m;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionStore>> SessionStore::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<sqlite::Db>> db = sqlite::Db::Open(path, /*create=*/true);
  if (!db.ok()) return db.status();
  // WAL with synchronous NORMAL: a committed entry survives the agent's kill -9 (the
  // case the journal is for) without an fsync per message; a power cut may lose the
  // last few, as it would the workspace's own unsynced writes.
  absl::Status s = (*db)->Exec(R"(
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS messages (
      task TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL,
      PRIMARY KEY (task, seq));
    CREATE TABLE IF NOT EXISTS journal (
      task TEXT NOT NULL, call_id TEXT NOT NULL, tool TEXT NOT NULL, arguments TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('intent', 'done')), result TEXT,
      error INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (task, call_id));
    CREATE TABLE IF NOT EXISTS inbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body BLOB NOT NULL);
  )");
  if (!s.ok()) return s;
  return std::unique_ptr<SessionStore>(new SessionStore(*std::move(db)));
}

absl::Status SessionStore::Append(const std::string& task, const llm::Message& m) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO messages (task, seq, message) VALUES "
      "(?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE task = ?1), ?2)");
  if (!st.ok()) return st.status();
  return st->Bind(1, task).Bind(2, DumpJson(ToJson(m))).Run();
}

absl::Status SessionStore::AppendAll(const std::string& task, const std::vector<llm::Message>& ms) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  for (const llm::Message& m : ms) {
    if (absl::Status s = Append(task, m); !s.ok()) return s;
  }
  return tx->Commit();
}

absl::Status SessionStore::AppendFromInbox(const std::string& task, const llm::Message& m,
                                           const std::string& inbox_id) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  if (absl::Status s = Append(task, m); !s.ok()) return s;
  absl::StatusOr<sqlite::Statement> st = db_->Prepare("DELETE FROM inbox WHERE id = ?1");
  if (!st.ok()) return st.status();
  if (absl::Status s = st->Bind(1, inbox_id).Run(); !s.ok()) return s;
  return tx->Commit();
}

absl::StatusOr<bool> SessionStore::Keep(const std::string& id, const std::string& body) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("INSERT INTO inbox (id, body) VALUES (?1, ?2) ON CONFLICT(id) DO NOTHING");
  if (!st.ok()) return st.status();
  if (absl::Status s = st->Bind(1, id).BindBlob(2, body).Run(); !s.ok()) return s;
  return sqlite3_changes(db_->raw()) > 0;
}

absl::Status SessionStore::Drop(const std::string& id) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare("DELETE FROM inbox WHERE id = ?1");
  if (!st.ok()) return st.status();
  return st->Bind(1, id).Run();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> SessionStore::Kept() {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare("SELECT id, body FROM inbox ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.emplace_back(st->ColumnText(0), st->ColumnText(1));
  }
  return out;
}

absl::StatusOr<std::vector<llm::Message>> SessionStore::Conversation(const std::string& task) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("SELECT message FROM messages WHERE task = ?1 ORDER BY seq");
  if (!st.ok()) return st.status();
  st->Bind(1, task);
  std::vector<llm::Message> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    json j = json::parse(st->ColumnText(0), nullptr, false);
    if (!j.is_object()) {
      return absl::DataLossError(absl::StrCat(db_->path(), ": message ", out.size() + 1,
                                              " of task ", task, " is not JSON"));
    }
    out.push_back(FromJson(j));
  }
  return out;
}

absl::Status SessionStore::RecordIntent(const std::string& task, const llm::ToolCall& call) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO journal (task, call_id, tool, arguments, state) VALUES (?1, ?2, ?3, ?4, "
      "'intent') ON CONFLICT (task, call_id) DO NOTHING");
  if (!st.ok()) return st.status();
  return st->Bind(1, task).Bind(2, call.id).Bind(3, call.name).Bind(4, call.arguments).Run();
}

absl::Status SessionStore::RecordResult(const std::string& task, const std::string& call_id,
                                        const std::string& result, bool error) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "UPDATE journal SET state = 'done', result = ?3, error = ?4 WHERE task = ?1 AND "
      "call_id = ?2");
  if (!st.ok()) return st.status();
  return st->Bind(1, task).Bind(2, call_id).Bind(3, result).Bind(4, int64_t{error}).Run();
}

absl::StatusOr<std::optional<JournalEntry>> SessionStore::Find(const std::string& task,
                                                               const std::string& call_id) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT tool, arguments, state, result, error FROM journal WHERE task = ?1 AND "
      "call_id = ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, task).Bind(2, call_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<JournalEntry>();
  JournalEntry e;
  e.call_id = call_id;
  e.tool = st->ColumnText(0);
  e.arguments = st->ColumnText(1);
  e.state = st->ColumnText(2) == "done" ? CallState::kDone : CallState::kIntent;
  e.result = st->ColumnIsNull(3) ? "" : st->ColumnText(3);
  e.error = st->ColumnInt(4) != 0;
  return std::optional<JournalEntry>(std::move(e));
}

}  // namespace agentd::session
