#include "manager/store/store.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <sqlite3.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/version.h"
#include "manager/store/event_kinds.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

struct Migration {
  int64_t version;
  const char* name;
  const char* sql;
};

// Append only: a released migration is never edited; a change is a new entry.
constexpr Migration kMigrations[] = {
    {1, "meta and events",
     R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE events (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us  INTEGER NOT NULL,
  kind     TEXT    NOT NULL,
  agent_id TEXT,
  task_id  TEXT,
  goal_id  TEXT,
  payload  TEXT    NOT NULL DEFAULT '{}'
) STRICT;
CREATE INDEX events_by_kind ON events(kind, seq);
)sql"},
    {2, "agents",
     R"sql(
CREATE TABLE agents (
  id                TEXT PRIMARY KEY,
  role              TEXT    NOT NULL,
  want_running      INTEGER NOT NULL,
  state             TEXT    NOT NULL,
  state_detail      TEXT    NOT NULL DEFAULT '',
  pid               INTEGER NOT NULL DEFAULT 0,
  pid_start_ticks   INTEGER NOT NULL DEFAULT 0,
  start_time_us     INTEGER NOT NULL DEFAULT 0,
  restarts          INTEGER NOT NULL DEFAULT 0,
  last_exit_code    INTEGER,
  last_exit_signal  INTEGER,
  last_exit_time_us INTEGER,
  last_exit_reason  TEXT    NOT NULL DEFAULT '',
  created_time_us   INTEGER NOT NULL
) STRICT;
)sql"},
    {3, "consent requests",
     R"sql(
CREATE TABLE consents (
  id          TEXT PRIMARY KEY,
  agent_id    TEXT    NOT NULL,
  request_key TEXT    NOT NULL DEFAULT '',
  status      INTEGER NOT NULL,
  request     BLOB    NOT NULL
) STRICT;
CREATE INDEX consents_by_status ON consents(status);
)sql"},
    {4, "tasks, deliveries, usage and budgets",
     R"sql(
CREATE TABLE tasks (
  id          TEXT PRIMARY KEY,
  goal_id     TEXT    NOT NULL,
  parent_id   TEXT    NOT NULL DEFAULT '',
  status      INTEGER NOT NULL,
  assignee    TEXT    NOT NULL DEFAULT '',
  create_us   INTEGER NOT NULL,
  body        BLOB    NOT NULL
) STRICT;
CREATE INDEX tasks_by_goal ON tasks(goal_id);
CREATE TABLE deliveries (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_id TEXT NOT NULL,
  body     BLOB NOT NULL
) STRICT;
CREATE INDEX deliveries_by_agent ON deliveries(agent_id, seq);
CREATE TABLE usage (
  id                TEXT PRIMARY KEY,
  time_us           INTEGER NOT NULL,
  agent_id          TEXT    NOT NULL,
  task_id           TEXT    NOT NULL DEFAULT '',
  goal_id           TEXT    NOT NULL DEFAULT '',
  role              TEXT    NOT NULL DEFAULT '',
  provider          TEXT    NOT NULL DEFAULT '',
  model             TEXT    NOT NULL DEFAULT '',
  prompt_tokens     INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_usd          REAL    NOT NULL,
  latency_us        INTEGER NOT NULL DEFAULT 0,
  reservation_id    TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX usage_by_goal ON usage(goal_id);
CREATE INDEX usage_by_time ON usage(time_us);
CREATE TABLE budgets (
  scope        INTEGER NOT NULL,
  scope_id     TEXT    NOT NULL,
  max_tokens   INTEGER NOT NULL,
  max_cost_usd REAL    NOT NULL,
  update_us    INTEGER NOT NULL,
  updated_by   TEXT    NOT NULL,
  PRIMARY KEY (scope, scope_id)
) STRICT;
)sql"},
    {5, "messages",
     R"sql(
CREATE TABLE messages (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT    NOT NULL UNIQUE,
  request_key TEXT   NOT NULL DEFAULT '',
  body       BLOB    NOT NULL
) STRICT;
)sql"},
    {6, "plans",
     R"sql(
CREATE TABLE plans (
  id        TEXT PRIMARY KEY,
  goal_id   TEXT    NOT NULL,
  task_id   TEXT    NOT NULL,
  status    INTEGER NOT NULL,
  create_us INTEGER NOT NULL,
  body      BLOB    NOT NULL
) STRICT;
)sql"},
    {7, "audit log",
     R"sql(
CREATE TABLE audit (
  seq        INTEGER PRIMARY KEY,
  time_us    INTEGER NOT NULL,
  actor_kind INTEGER NOT NULL,
  actor_id   TEXT    NOT NULL,
  action     TEXT    NOT NULL,
  target     TEXT    NOT NULL,
  goal_id    TEXT    NOT NULL,
  task_id    TEXT    NOT NULL,
  details    TEXT    NOT NULL,
  prev_hash  TEXT    NOT NULL,
  hash       TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_by_goal ON audit(goal_id, seq);
)sql"},
    {8, "events carry the changed resource",
     R"sql(
ALTER TABLE events ADD COLUMN resource_type INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN resource BLOB;
)sql"},
    {9, "task transcripts",
     R"sql(
CREATE TABLE transcript (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id  TEXT    NOT NULL,
  goal_id  TEXT    NOT NULL,
  time_us  INTEGER NOT NULL,
  bytes    INTEGER NOT NULL,
  pinned   INTEGER NOT NULL,
  entry    BLOB    NOT NULL
) STRICT;
CREATE INDEX transcript_by_task ON transcript(task_id, seq);
CREATE INDEX transcript_by_goal ON transcript(goal_id, pinned, seq);
CREATE TABLE transcript_goals (
  goal_id  TEXT PRIMARY KEY,
  bytes    INTEGER NOT NULL
) STRICT;
CREATE TABLE transcript_dropped (
  task_id  TEXT PRIMARY KEY,
  entries  INTEGER NOT NULL,
  bytes    INTEGER NOT NULL
) STRICT;
)sql"},
    {10, "plans found by goal, task and status",
     R"sql(
CREATE INDEX plans_by_goal ON plans(goal_id);
CREATE INDEX plans_by_task ON plans(task_id);
CREATE INDEX plans_by_status ON plans(status);
)sql"},
    {11, "goals found by their submission's request id",
     R"sql(
CREATE TABLE goal_requests (
  request_id TEXT PRIMARY KEY,
  goal_id    TEXT NOT NULL
) STRICT;
)sql"},
};

// The audit row at `st`'s current result row, selected in AuditRow's field order.
AuditRow ReadAuditRow(const sqlite::Statement& st) {
  return {st.ColumnInt(0),  st.ColumnInt(1),  st.ColumnInt(2),  st.ColumnText(3),
          st.ColumnText(4), st.ColumnText(5), st.ColumnText(6), st.ColumnText(7),
          st.ColumnText(8), st.ColumnText(9), st.ColumnText(10)};
}

absl::Status NewerSchemaError(const std::string& path, int64_t version) {
  return absl::FailedPreconditionError(
      absl::StrCat(path, ": database schema version ", version, " is newer than this agentd ",
                   kVersion, " understands (", Store::LatestSchemaVersion(),
                   "); it was written by a newer agentd. Run that version, or point --state-dir at "
                   "another directory. The database was not changed."));
}

// Applies every migration after the database's version in one BEGIN IMMEDIATE
// transaction, with the user_version bump: an upgrade is all or nothing, so a failed one
// leaves a database that the agentd which wrote it still opens. Sets *version on success.
absl::Status Migrate(sqlite::Db* db, const std::string& path, int64_t* version) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db);
  if (!tx.ok()) return tx.status();
  // Another process may have migrated between the caller's read and BEGIN IMMEDIATE.
  absl::StatusOr<int64_t> from = db->QueryInt("PRAGMA user_version");
  if (!from.ok()) return from.status();
  if (*from > Store::LatestSchemaVersion()) return NewerSchemaError(path, *from);
  for (const Migration& m : kMigrations) {
    if (m.version <= *from) continue;
    absl::Status s = db->Exec(m.sql);
    if (s.ok() && m.version == 1) {
      absl::StatusOr<sqlite::Statement> st =
          db->Prepare("INSERT INTO meta(key, value) VALUES ('created_by_version', ?1)");
      s = st.ok() ? st->Bind(1, absl::string_view(kVersion)).Run() : st.status();
    }
    if (!s.ok()) {
      return absl::Status(
          s.code(),
          absl::StrCat("upgrading the schema from version ", *from, " to ",
                       Store::LatestSchemaVersion(), " failed in migration ", m.version, " (",
                       m.name, "): ", s.message(),
                       ". Nothing was changed: the database is still at version ", *from, "."));
    }
  }
  if (absl::Status s =
          db->Exec(absl::StrCat("PRAGMA user_version = ", Store::LatestSchemaVersion()));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = tx->Commit(); !s.ok()) return s;
  *version = Store::LatestSchemaVersion();
  return absl::OkStatus();
}

}  // namespace

int64_t Store::LatestSchemaVersion() { return std::size(kMigrations); }

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<sqlite::Db>> db = sqlite::Db::Open(path, /*create=*/true);
  if (!db.ok()) return db.status();
  // Look before touching: a database from a newer agentd is refused before anything is
  // set (journal_mode=WAL rewrites the header).
  absl::StatusOr<int64_t> version = (*db)->QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > LatestSchemaVersion()) return NewerSchemaError(path, *version);
  if (*version < LatestSchemaVersion()) {
    if (absl::Status s = Migrate(db->get(), path, &*version); !s.ok()) return s;
  }
  // WAL only once the schema is current, so that a failed upgrade leaves the file as it
  // found it, header included.
  if (absl::Status s = (*db)->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<int64_t> last = (*db)->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM events");
  if (!last.ok()) return last.status();
  (*db)->SetLatchFatal(true);  // after a failed write, agentd refuses changes
  auto store = std::unique_ptr<Store>(new Store(*std::move(db), *version));
  store->last_event_seq_ = *last;
  if (const char* strict = std::getenv("AGENTD_STRICT");
      strict != nullptr && std::string_view(strict) == "1") {
    store->strict_event_kinds_ = true;
  }
  if (const char* kind = std::getenv("AGENTD_FAULT_EXIT_AFTER_EVENT"); kind != nullptr) {
    // "KIND" or "KIND#N": the first, or the Nth, event of that kind.
    std::pair<std::string, std::string> spec = absl::StrSplit(kind, absl::MaxSplits('#', 1));
    store->exit_after_event_ = spec.first;
    int64_t nth = 1;
    if (!spec.second.empty() && absl::SimpleAtoi(spec.second, &nth) && nth > 1) {
      store->exit_after_countdown_ = nth;
    }
  }
  if (const char* pages = std::getenv("AGENTD_FAULT_DB_GROWTH_PAGES"); pages != nullptr) {
    // Fault injection for tests: the file may grow by this many pages and no more, so
    // that a write fails as on a full disk (SQLITE_FULL).
    absl::StatusOr<int64_t> count = store->db_->QueryInt("PRAGMA page_count");
    int64_t growth = 0;
    if (count.ok() && absl::SimpleAtoi(pages, &growth) && growth >= 0) {
      (void)store->db_->QueryInt(absl::StrCat("PRAGMA max_page_count = ", *count + growth));
    }
  }
  return store;
}

absl::StatusOr<int64_t> Store::CommitWithEvent(sqlite::Transaction& tx, absl::Time time,
                                               absl::string_view event_kind,
                                               absl::string_view event_payload_json,
                                               absl::string_view agent_id,
                                               absl::string_view task_id, absl::string_view goal_id,
                                               int resource_type, absl::string_view resource) {
  absl::StatusOr<int64_t> seq = InsertEvent(time, event_kind, event_payload_json, agent_id, task_id,
                                            goal_id, resource_type, resource);
  if (!seq.ok()) {
    last_event_seq_ = *db_->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM events");
    return seq.status();
  }
  if (absl::Status s = tx.Commit(); !s.ok()) {
    // The change was rolled back: the seq it returned was never committed.
    last_event_seq_ = *seq - 1;
    return s;
  }
  if (!exit_after_event_.empty() && event_kind == exit_after_event_ &&
      --exit_after_countdown_ <= 0) {
    // Fault injection for tests: as kill -9 right after this commit, before any of what
    // follows it in memory or on other files.
    _exit(86);
  }
  if (event_hook_) event_hook_(*seq);
  return seq;
}

absl::StatusOr<int64_t> Store::SaveConsent(const ConsentRow& c, absl::Time time,
                                           absl::string_view event_kind,
                                           absl::string_view event_payload_json) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO consents(id, agent_id, request_key, status, request) VALUES (?1, ?2, ?3, ?4, "
      "?5) ON CONFLICT(id) DO UPDATE SET status = excluded.status, request = excluded.request");
  if (!st.ok()) return st.status();
  st->Bind(1, c.id).Bind(2, c.agent_id).Bind(3, c.request_key).Bind(4, c.status);
  st->BindBlob(5, c.request);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  return CommitWithEvent(*tx, time, event_kind, event_payload_json, c.agent_id, c.task_id,
                         c.goal_id, kEventConsent, c.request);
}

absl::StatusOr<std::vector<ConsentRow>> Store::LoadConsents() {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT id, agent_id, request_key, status, request FROM consents ORDER BY rowid");
  if (!st.ok()) return st.status();
  std::vector<ConsentRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    ConsentRow c;
    c.id = st->ColumnText(0);
    c.agent_id = st->ColumnText(1);
    c.request_key = st->ColumnText(2);
    c.status = st->ColumnInt(3);
    c.request = st->ColumnText(4);
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<int64_t> Store::SaveAgent(const AgentRow& a, absl::Time time,
                                         absl::string_view event_kind,
                                         absl::string_view event_payload_json,
                                         absl::string_view agent_proto) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  if (!upsert_agent_.has_value()) {
    absl::StatusOr<sqlite::Statement> st = db_->Prepare(R"sql(
INSERT INTO agents(id, role, want_running, state, state_detail, pid, pid_start_ticks,
                   start_time_us, restarts, last_exit_code, last_exit_signal,
                   last_exit_time_us, last_exit_reason, created_time_us)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
ON CONFLICT(id) DO UPDATE SET
  role = excluded.role, want_running = excluded.want_running, state = excluded.state,
  state_detail = excluded.state_detail, pid = excluded.pid,
  pid_start_ticks = excluded.pid_start_ticks, start_time_us = excluded.start_time_us,
  restarts = excluded.restarts, last_exit_code = excluded.last_exit_code,
  last_exit_signal = excluded.last_exit_signal, last_exit_time_us = excluded.last_exit_time_us,
  last_exit_reason = excluded.last_exit_reason)sql");
    if (!st.ok()) return st.status();
    upsert_agent_.emplace(*std::move(st));
  }
  sqlite::Statement& st = *upsert_agent_;
  st.Reset();
  st.Bind(1, a.id).Bind(2, a.role).Bind(3, int64_t{a.want_running}).Bind(4, a.state);
  st.Bind(5, a.state_detail).Bind(6, a.pid).Bind(7, static_cast<int64_t>(a.pid_start_ticks));
  st.Bind(8, a.start_time_us).Bind(9, a.restarts);
  if (a.has_last_exit) {
    st.Bind(10, a.last_exit_code).Bind(11, a.last_exit_signal).Bind(12, a.last_exit_time_us);
  } else {
    st.BindNull(10).BindNull(11).BindNull(12);
  }
  st.Bind(13, a.last_exit_reason).Bind(14, a.created_time_us);
  if (absl::Status s = st.Run(); !s.ok()) return s;
  return CommitWithEvent(*tx, time, event_kind, event_payload_json, a.id, "", "",
                         agent_proto.empty() ? 0 : kEventAgent, agent_proto);
}

absl::StatusOr<int64_t> Store::DeleteAgent(absl::string_view id, absl::Time time,
                                           absl::string_view event_payload_json,
                                           absl::string_view agent_proto) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> st = db_->Prepare("DELETE FROM agents WHERE id = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  absl::StatusOr<int64_t> deleted = db_->QueryInt("SELECT changes()");
  if (!deleted.ok()) return deleted.status();
  if (*deleted == 0) return absl::NotFoundError(absl::StrCat("no agent \"", id, "\""));
  return CommitWithEvent(*tx, time, "agent.deleted", event_payload_json, id, "", "",
                         agent_proto.empty() ? 0 : kEventAgent, agent_proto);
}

absl::StatusOr<std::vector<AgentRow>> Store::LoadAgents() {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(R"sql(
SELECT id, role, want_running, state, state_detail, pid, pid_start_ticks, start_time_us,
       restarts, last_exit_code IS NOT NULL, COALESCE(last_exit_code, 0),
       COALESCE(last_exit_signal, 0), COALESCE(last_exit_time_us, 0), last_exit_reason,
       created_time_us
FROM agents ORDER BY id)sql");
  if (!st.ok()) return st.status();
  std::vector<AgentRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    AgentRow a;
    a.id = st->ColumnText(0);
    a.role = st->ColumnText(1);
    a.want_running = st->ColumnInt(2) != 0;
    a.state = st->ColumnText(3);
    a.state_detail = st->ColumnText(4);
    a.pid = st->ColumnInt(5);
    a.pid_start_ticks = static_cast<uint64_t>(st->ColumnInt(6));
    a.start_time_us = st->ColumnInt(7);
    a.restarts = st->ColumnInt(8);
    a.has_last_exit = st->ColumnInt(9) != 0;
    a.last_exit_code = st->ColumnInt(10);
    a.last_exit_signal = st->ColumnInt(11);
    a.last_exit_time_us = st->ColumnInt(12);
    a.last_exit_reason = st->ColumnText(13);
    a.created_time_us = st->ColumnInt(14);
    out.push_back(std::move(a));
  }
  return out;
}

template <typename Change>
auto Store::Durably(Change&& change) -> decltype(change()) {
  // With synchronous=FULL a WAL commit is synced before it returns; NORMAL (kept for
  // everything else) may lose the last commits to a power cut.
  if (absl::Status s = db_->Exec("PRAGMA synchronous = FULL"); !s.ok()) return s;
  auto result = change();
  // The change stands (committed, or not) whatever happens to the setting: a failure here
  // is said, not returned, or a committed change would be taken for a failed one.
  if (absl::Status restored = db_->Exec("PRAGMA synchronous = NORMAL"); !restored.ok()) {
    spdlog::error("agentd.db: restoring synchronous=NORMAL: {}", restored.message());
  }
  return result;
}

absl::StatusOr<int64_t> Store::AppendEvent(absl::Time time, absl::string_view kind,
                                           absl::string_view payload_json,
                                           absl::string_view agent_id, absl::string_view task_id,
                                           absl::string_view goal_id, const AuditRecord* audit) {
  if (audit != nullptr) {
    return Durably([&]() -> absl::StatusOr<int64_t> {
      int64_t before = last_event_seq_;
      absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
      if (!tx.ok()) return tx.status();
      absl::StatusOr<int64_t> seq = [&]() -> absl::StatusOr<int64_t> {
        if (absl::Status s = InsertAudit(audit->row, audit->entry_proto, true); !s.ok()) return s;
        return CommitWithEvent(*tx, time, kind, payload_json, agent_id, task_id, goal_id);
      }();
      if (!seq.ok()) last_event_seq_ = before;
      return seq;
    });
  }
  absl::StatusOr<int64_t> seq =
      InsertEvent(time, kind, payload_json, agent_id, task_id, goal_id, 0, "");
  if (seq.ok() && event_hook_) event_hook_(*seq);
  return seq;
}

absl::StatusOr<int64_t> Store::InsertEvent(absl::Time time, absl::string_view kind,
                                           absl::string_view payload_json,
                                           absl::string_view agent_id, absl::string_view task_id,
                                           absl::string_view goal_id, int resource_type,
                                           absl::string_view resource) {
  if (!IsEventKind(std::string_view(kind.data(), kind.size()))) {
    // A kind missing from the declared list: recorded all the same (nothing is lost), and
    // said; tests make it an error.
    std::string what =
        absl::StrCat("event kind \"", kind, "\" is not declared in manager/store/event_kinds.h");
    if (strict_event_kinds_) return absl::InternalError(what);
    spdlog::error("{}", what);
  }
  if (!insert_event_.has_value()) {
    absl::StatusOr<sqlite::Statement> st = db_->Prepare(
        "INSERT INTO events(time_us, kind, payload, agent_id, task_id, goal_id, resource_type, "
        "resource) VALUES (?1, ?2, ?3, NULLIF(?4, ''), NULLIF(?5, ''), NULLIF(?6, ''), ?7, ?8) "
        "RETURNING seq");
    if (!st.ok()) return st.status();
    insert_event_.emplace(*std::move(st));
  }
  sqlite::Statement& st = *insert_event_;
  st.Reset();
  st.Bind(1, absl::ToUnixMicros(time)).Bind(2, kind).Bind(3, payload_json).Bind(4, agent_id);
  st.Bind(5, task_id).Bind(6, goal_id).Bind(7, int64_t{resource_type});
  if (resource_type == 0) {
    st.BindNull(8);
  } else {
    st.BindBlob(8, resource);
  }
  absl::StatusOr<bool> row = st.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting an event returned no seq");
  int64_t seq = st.ColumnInt(0);
  if (absl::Status s = st.Run(); !s.ok()) return s;
  last_event_seq_ = seq;
  return seq;
}

absl::Status Store::UpsertTask(const TaskRow& t) {
  if (!upsert_task_.has_value()) {
    absl::StatusOr<sqlite::Statement> st = db_->Prepare(
        "INSERT INTO tasks(id, goal_id, parent_id, status, assignee, create_us, body) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET status = excluded.status, "
        "assignee = excluded.assignee, body = excluded.body");
    if (!st.ok()) return st.status();
    upsert_task_.emplace(*std::move(st));
  }
  sqlite::Statement& st = *upsert_task_;
  st.Reset();
  st.Bind(1, t.id).Bind(2, t.goal_id).Bind(3, t.parent_id).Bind(4, t.status);
  st.Bind(5, t.assignee).Bind(6, t.create_us).BindBlob(7, t.body);
  if (absl::Status s = st.Run(); !s.ok() || t.request_id.empty()) return s;
  // A request id names one goal: a second under it fails the save (TaskBoard looks the
  // id up before it makes a goal, so that would be a bug said loudly, not a quiet switch).
  absl::StatusOr<sqlite::Statement> req =
      db_->Prepare("INSERT INTO goal_requests(request_id, goal_id) VALUES (?1, ?2)");
  if (!req.ok()) return req.status();
  return req->Bind(1, t.request_id).Bind(2, t.id).Run();
}

absl::StatusOr<int64_t> Store::LastGoalIdUsed() {
  return db_->QueryInt(
      "SELECT COALESCE(MAX(CAST(value AS INTEGER)), 0) FROM meta "
      "WHERE key = 'last_goal_id'");
}

absl::Status Store::KeepGoalIdUsed(int64_t n) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO meta(key, value) VALUES ('last_goal_id', ?1) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!st.ok()) return st.status();
  return st->Bind(1, absl::StrCat(n)).Run();
}

absl::StatusOr<std::string> Store::GoalOfRequest(absl::string_view request_id) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("SELECT goal_id FROM goal_requests WHERE request_id = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, request_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  return *row ? st->ColumnText(0) : std::string();
}

absl::StatusOr<int64_t> Store::SaveTask(const TaskRow& t, absl::Time time,
                                        absl::string_view event_kind,
                                        absl::string_view event_payload_json,
                                        absl::string_view agent_id, const AuditRecord* audit) {
  auto save = [&]() -> absl::StatusOr<int64_t> {
    int64_t before = last_event_seq_;
    absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
    if (!tx.ok()) return tx.status();
    absl::StatusOr<int64_t> seq = [&]() -> absl::StatusOr<int64_t> {
      if (absl::Status s = UpsertTask(t); !s.ok()) return s;
      if (audit != nullptr) {
        if (absl::Status s = InsertAudit(audit->row, audit->entry_proto, true); !s.ok()) return s;
      }
      return CommitWithEvent(*tx, time, event_kind, event_payload_json, agent_id, t.id, t.goal_id,
                             kEventTask, t.body);
    }();
    if (!seq.ok()) last_event_seq_ = before;  // the audit entry's event went with it
    return seq;
  };
  return audit == nullptr ? save() : Durably(save);
}

absl::StatusOr<int64_t> Store::SaveTasks(const std::vector<TaskChange>& changes, absl::Time time,
                                         const AuditRecord* audit) {
  if (changes.empty()) return absl::InvalidArgumentError("SaveTasks: no changes");
  auto save = [&]() -> absl::StatusOr<int64_t> {
    const int64_t before = last_event_seq_;
    absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
    if (!tx.ok()) return tx.status();
    // Any failure below returns with `tx` not committed: its destructor rolls all of it
    // back, and the seqs handed out go with it.
    absl::StatusOr<int64_t> seq = [&]() -> absl::StatusOr<int64_t> {
      for (size_t i = 0; i + 1 < changes.size(); ++i) {
        const TaskChange& c = changes[i];
        if (absl::Status s = UpsertTask(c.row); !s.ok()) return s;
        absl::StatusOr<int64_t> event =
            InsertEvent(time, c.event_kind, c.event_payload_json, c.agent_id, c.row.id,
                        c.row.goal_id, kEventTask, c.row.body);
        if (!event.ok()) return event.status();
      }
      const TaskChange& last = changes.back();
      if (absl::Status s = UpsertTask(last.row); !s.ok()) return s;
      if (audit != nullptr) {
        if (absl::Status s = InsertAudit(audit->row, audit->entry_proto, true); !s.ok()) return s;
      }
      return CommitWithEvent(*tx, time, last.event_kind, last.event_payload_json, last.agent_id,
                             last.row.id, last.row.goal_id, kEventTask, last.row.body);
    }();
    if (!seq.ok()) last_event_seq_ = before;
    return seq;
  };
  return audit == nullptr ? save() : Durably(save);
}

absl::StatusOr<int64_t> Store::RewriteWorkspaceRecords(const std::vector<TaskRow>& tasks,
                                                       const std::vector<DeliveryRow>& deliveries,
                                                       absl::Time time,
                                                       absl::string_view event_payload_json) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  for (const TaskRow& t : tasks) {
    absl::StatusOr<sqlite::Statement> st = db_->Prepare("UPDATE tasks SET body = ?2 WHERE id = ?1");
    if (!st.ok()) return st.status();
    st->Bind(1, t.id).BindBlob(2, t.body);
    if (absl::Status s = st->Run(); !s.ok()) return s;
  }
  for (const DeliveryRow& d : deliveries) {
    absl::StatusOr<sqlite::Statement> st =
        db_->Prepare("UPDATE deliveries SET body = ?2 WHERE seq = ?1");
    if (!st.ok()) return st.status();
    st->Bind(1, d.seq).BindBlob(2, d.body);
    if (absl::Status s = st->Run(); !s.ok()) return s;
  }
  return CommitWithEvent(*tx, time, "workspaces.moved", event_payload_json, "");
}

absl::Status Store::ForEachTask(const std::vector<int64_t>& without_body,
                                const std::function<void(TaskRow)>& fn) {
  std::string body = "body";
  if (!without_body.empty()) {
    body = absl::StrCat("CASE WHEN status IN (", absl::StrJoin(without_body, ","),
                        ") THEN X'' ELSE body END");
  }
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare(absl::StrCat("SELECT id, goal_id, parent_id, status, assignee, create_us, ",
                                body, " FROM tasks ORDER BY create_us, id"));
  if (!st.ok()) return st.status();
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    fn({st->ColumnText(0), st->ColumnText(1), st->ColumnText(2), st->ColumnInt(3),
        st->ColumnText(4), st->ColumnInt(5), st->ColumnText(6)});
  }
}

absl::StatusOr<std::vector<TaskRow>> Store::LoadTasks() {
  std::vector<TaskRow> out;
  absl::Status s = ForEachTask({}, [&out](TaskRow row) { out.push_back(std::move(row)); });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::optional<TaskRow>> Store::LoadTask(absl::string_view id) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT id, goal_id, parent_id, status, assignee, create_us, body FROM tasks WHERE id = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<TaskRow>();
  return std::optional<TaskRow>(TaskRow{st->ColumnText(0), st->ColumnText(1), st->ColumnText(2),
                                        st->ColumnInt(3), st->ColumnText(4), st->ColumnInt(5),
                                        st->ColumnText(6)});
}

absl::StatusOr<int64_t> Store::AddDelivery(absl::string_view agent_id, absl::string_view body) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("INSERT INTO deliveries(agent_id, body) VALUES (?1, ?2) RETURNING seq");
  if (!st.ok()) return st.status();
  st->Bind(1, agent_id).BindBlob(2, body);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting a delivery returned no seq");
  int64_t seq = st->ColumnInt(0);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  return seq;
}

absl::Status Store::AckDeliveries(absl::string_view agent_id, int64_t up_to_seq) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("DELETE FROM deliveries WHERE agent_id = ?1 AND seq <= ?2");
  if (!st.ok()) return st.status();
  return st->Bind(1, agent_id).Bind(2, up_to_seq).Run();
}

absl::StatusOr<std::vector<DeliveryRow>> Store::LoadDeliveries() {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("SELECT seq, agent_id, body FROM deliveries ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<DeliveryRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st->ColumnInt(0), st->ColumnText(1), st->ColumnText(2)});
  }
  return out;
}

absl::StatusOr<bool> Store::AddUsage(const UsageRow& u, absl::string_view event_payload_json,
                                     absl::string_view record) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(R"sql(
INSERT INTO usage(id, time_us, agent_id, task_id, goal_id, role, provider, model, prompt_tokens,
                  completion_tokens, cost_usd, latency_us, reservation_id)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT(id) DO NOTHING)sql");
  if (!st.ok()) return st.status();
  st->Bind(1, u.id).Bind(2, u.time_us).Bind(3, u.agent_id).Bind(4, u.task_id).Bind(5, u.goal_id);
  st->Bind(6, u.role).Bind(7, u.provider).Bind(8, u.model).Bind(9, u.prompt_tokens);
  st->Bind(10, u.completion_tokens).Bind(11, u.cost_usd).Bind(12, u.latency_us);
  st->Bind(13, u.reservation_id);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  if (sqlite3_changes(db_->raw()) == 0) return false;  // a retried report: counted once
  absl::StatusOr<int64_t> seq =
      CommitWithEvent(*tx, absl::FromUnixMicros(u.time_us), "usage.recorded", event_payload_json,
                      u.agent_id, u.task_id, u.goal_id, record.empty() ? 0 : kEventUsage, record);
  if (!seq.ok()) return seq.status();
  return true;
}

absl::StatusOr<std::string> Store::MetaOrInsert(absl::string_view key, absl::string_view value) {
  absl::StatusOr<sqlite::Statement> ins =
      db_->Prepare("INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO NOTHING");
  if (!ins.ok()) return ins.status();
  if (absl::Status s = ins->Bind(1, key).Bind(2, value).Run(); !s.ok()) return s;
  absl::StatusOr<sqlite::Statement> st = db_->Prepare("SELECT value FROM meta WHERE key = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, key);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError(absl::StrCat("meta key ", key, " was not kept"));
  return st->ColumnText(0);
}

absl::StatusOr<int64_t> Store::CountUsage() { return db_->QueryInt("SELECT COUNT(*) FROM usage"); }

absl::StatusOr<std::vector<UsageRow>> Store::QueryUsage(const UsageQuery& q) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(R"sql(
SELECT id, time_us, agent_id, task_id, goal_id, role, provider, model, prompt_tokens,
       completion_tokens, cost_usd, latency_us, reservation_id
FROM usage
WHERE time_us >= ?1 AND time_us < ?2 AND (?3 = '' OR goal_id = ?3) AND (?4 = '' OR task_id = ?4)
  AND (?5 = '' OR agent_id = ?5) AND (?6 = '' OR role = ?6) AND (?7 = '' OR provider = ?7)
  AND (?8 = '' OR model = ?8)
ORDER BY time_us, id)sql");
  if (!st.ok()) return st.status();
  st->Bind(1, q.start_us).Bind(2, q.end_us).Bind(3, q.goal_id).Bind(4, q.task_id);
  st->Bind(5, q.agent_id).Bind(6, q.role).Bind(7, q.provider).Bind(8, q.model);
  std::vector<UsageRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    UsageRow u;
    u.id = st->ColumnText(0);
    u.time_us = st->ColumnInt(1);
    u.agent_id = st->ColumnText(2);
    u.task_id = st->ColumnText(3);
    u.goal_id = st->ColumnText(4);
    u.role = st->ColumnText(5);
    u.provider = st->ColumnText(6);
    u.model = st->ColumnText(7);
    u.prompt_tokens = st->ColumnInt(8);
    u.completion_tokens = st->ColumnInt(9);
    u.cost_usd = st->ColumnDouble(10);
    u.latency_us = st->ColumnInt(11);
    u.reservation_id = st->ColumnText(12);
    out.push_back(std::move(u));
  }
  return out;
}

absl::Status Store::SaveBudget(const BudgetRow& b, absl::Time time, absl::string_view budget,
                               absl::string_view goal_id) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO budgets(scope, scope_id, max_tokens, max_cost_usd, update_us, updated_by) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(scope, scope_id) DO UPDATE SET "
      "max_tokens = excluded.max_tokens, max_cost_usd = excluded.max_cost_usd, "
      "update_us = excluded.update_us, updated_by = excluded.updated_by");
  if (!st.ok()) return st.status();
  st->Bind(1, b.scope).Bind(2, b.scope_id).Bind(3, b.max_tokens).Bind(4, b.max_cost_usd);
  st->Bind(5, b.update_us).Bind(6, b.updated_by);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  nlohmann::json payload = {{"scope", b.scope},
                            {"scope_id", b.scope_id},
                            {"max_tokens", b.max_tokens},
                            {"max_cost_usd", b.max_cost_usd},
                            {"by", b.updated_by}};
  absl::StatusOr<int64_t> seq = CommitWithEvent(*tx, time, "budget.changed", DumpJson(payload), "",
                                                "", goal_id, kEventBudget, budget);
  return seq.status();
}

absl::StatusOr<std::vector<BudgetRow>> Store::LoadBudgets(int64_t except_scope) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT scope, scope_id, max_tokens, max_cost_usd, update_us, updated_by FROM budgets "
      "WHERE scope != ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, except_scope);
  std::vector<BudgetRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st->ColumnInt(0), st->ColumnText(1), st->ColumnInt(2), st->ColumnDouble(3),
                   st->ColumnInt(4), st->ColumnText(5)});
  }
  return out;
}

absl::StatusOr<int64_t> Store::AddMessage(absl::string_view id, absl::string_view request_key,
                                          absl::string_view body, absl::Time time,
                                          absl::string_view event_payload_json,
                                          absl::string_view agent_id, absl::string_view task_id,
                                          absl::string_view goal_id) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("INSERT INTO messages(id, request_key, body) VALUES (?1, ?2, ?3) RETURNING seq");
  if (!st.ok()) return st.status();
  st->Bind(1, id).Bind(2, request_key).BindBlob(3, body);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting a message returned no seq");
  int64_t seq = st->ColumnInt(0);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  absl::StatusOr<int64_t> ev = CommitWithEvent(*tx, time, "message.sent", event_payload_json,
                                               agent_id, task_id, goal_id, kEventEnvelope, body);
  if (!ev.ok()) return ev.status();
  return seq;
}

absl::Status Store::UpdateMessage(int64_t seq, absl::string_view body) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("UPDATE messages SET body = ?2 WHERE seq = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, seq).BindBlob(2, body);
  return st->Run();
}

absl::StatusOr<std::vector<MessageRow>> Store::LoadMessages() {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("SELECT seq, id, request_key, body FROM messages ORDER BY seq");
  if (!st.ok()) return st.status();
  std::vector<MessageRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st->ColumnInt(0), st->ColumnText(1), st->ColumnText(2), st->ColumnText(3)});
  }
  return out;
}

absl::StatusOr<int64_t> Store::SavePlan(const PlanRow& p, absl::Time time,
                                        absl::string_view event_kind,
                                        absl::string_view event_payload_json,
                                        absl::string_view agent_id) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO plans(id, goal_id, task_id, status, create_us, body) VALUES (?1, ?2, ?3, ?4, "
      "?5, ?6) ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body");
  if (!st.ok()) return st.status();
  st->Bind(1, p.id).Bind(2, p.goal_id).Bind(3, p.task_id).Bind(4, p.status).Bind(5, p.create_us);
  st->BindBlob(6, p.body);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  return CommitWithEvent(*tx, time, event_kind, event_payload_json, agent_id, p.task_id, p.goal_id,
                         kEventPlan, p.body);
}

absl::StatusOr<int64_t> Store::SavePlanWithTasks(
    const PlanRow& p, absl::Time time, absl::string_view plan_event_kind,
    absl::string_view plan_payload_json, const std::vector<std::pair<TaskRow, std::string>>& tasks,
    absl::string_view agent_id) {
  absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
  if (!tx.ok()) return tx.status();
  const int64_t seq_before = last_event_seq_;
  // Any failure below returns with `tx` not committed: its destructor rolls all of it back.
  auto failed = [&](absl::Status s) {
    last_event_seq_ = seq_before;
    return s;
  };
  for (const auto& [t, payload] : tasks) {
    if (absl::Status s = UpsertTask(t); !s.ok()) return failed(s);
    absl::StatusOr<int64_t> seq =
        InsertEvent(time, "task.created", payload, agent_id, t.id, t.goal_id, kEventTask, t.body);
    if (!seq.ok()) return failed(seq.status());
  }
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO plans(id, goal_id, task_id, status, create_us, body) VALUES (?1, ?2, ?3, ?4, "
      "?5, ?6) ON CONFLICT(id) DO UPDATE SET status = excluded.status, body = excluded.body");
  if (!st.ok()) return failed(st.status());
  st->Bind(1, p.id).Bind(2, p.goal_id).Bind(3, p.task_id).Bind(4, p.status).Bind(5, p.create_us);
  st->BindBlob(6, p.body);
  if (absl::Status s = st->Run(); !s.ok()) return failed(s);
  absl::StatusOr<int64_t> seq = CommitWithEvent(*tx, time, plan_event_kind, plan_payload_json,
                                                agent_id, p.task_id, p.goal_id, kEventPlan, p.body);
  if (!seq.ok()) last_event_seq_ = seq_before;
  return seq;
}

absl::StatusOr<std::vector<PlanRow>> Store::LoadPlans(const PlanQuery& q) {
  // Plans are inserted once and updated in place (ON CONFLICT DO UPDATE keeps the rowid),
  // and never deleted: rowid order is the order they were first stored in, which is the
  // order they were made in unless a plan's first save failed.
  std::vector<std::string> where;
  if (!q.goal_id.empty()) where.push_back("goal_id = ?1");
  if (!q.task_id.empty()) where.push_back("task_id = ?2");
  if (!q.statuses.empty()) {
    std::vector<std::string> in;
    for (int64_t status : q.statuses) in.push_back(absl::StrCat(status));
    where.push_back(absl::StrCat("status IN (", absl::StrJoin(in, ","), ")"));
  }
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      absl::StrCat("SELECT id, goal_id, task_id, status, create_us, body FROM plans",
                   where.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(where, " AND ")),
                   " ORDER BY rowid ", q.newest_first ? "DESC" : "ASC", " LIMIT ?3 OFFSET ?4"));
  if (!st.ok()) return st.status();
  if (!q.goal_id.empty()) st->Bind(1, q.goal_id);
  if (!q.task_id.empty()) st->Bind(2, q.task_id);
  st->Bind(3, q.limit < 0 ? int64_t{-1} : q.limit).Bind(4, std::max<int64_t>(q.offset, 0));
  std::vector<PlanRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st->ColumnText(0), st->ColumnText(1), st->ColumnText(2), st->ColumnInt(3),
                   st->ColumnInt(4), st->ColumnText(5)});
  }
  return out;
}

absl::StatusOr<int64_t> Store::LargestPlanNumber() {
  // Read from the primary key's index alone (the ids), not the plans' rows.
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT COALESCE(MAX(CAST(substr(id, instr(id, '-') + 1) AS INTEGER)), 0) FROM plans");
  if (!st.ok()) return st.status();
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  return *row ? st->ColumnInt(0) : 0;
}

absl::StatusOr<std::optional<PlanRow>> Store::LoadPlan(absl::string_view id) {
  absl::StatusOr<sqlite::Statement> st =
      db_->Prepare("SELECT id, goal_id, task_id, status, create_us, body FROM plans WHERE id = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<PlanRow>();
  return std::optional<PlanRow>(PlanRow{st->ColumnText(0), st->ColumnText(1), st->ColumnText(2),
                                        st->ColumnInt(3), st->ColumnInt(4), st->ColumnText(5)});
}

namespace {
std::string AuditEventPayload(const AuditRow& a) {
  return DumpJson(nlohmann::json{{"seq", a.seq}, {"action", a.action}, {"actor", a.actor_id}});
}
}  // namespace

absl::Status Store::InsertAudit(const AuditRow& a, absl::string_view entry_proto, bool event) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "INSERT INTO audit(seq, time_us, actor_kind, actor_id, action, target, goal_id, task_id, "
      "details, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
  if (!st.ok()) return st.status();
  st->Bind(1, a.seq).Bind(2, a.time_us).Bind(3, a.actor_kind).Bind(4, a.actor_id);
  st->Bind(5, a.action).Bind(6, a.target).Bind(7, a.goal_id).Bind(8, a.task_id);
  st->Bind(9, a.details_json).Bind(10, a.prev_hash).Bind(11, a.hash);
  if (absl::Status s = st->Run(); !s.ok()) return s;
  if (!event) return absl::OkStatus();
  return InsertEvent(absl::FromUnixMicros(a.time_us), "audit.appended", AuditEventPayload(a),
                     a.actor_kind == 2 ? a.actor_id : "", a.task_id, a.goal_id, kEventAudit,
                     entry_proto)
      .status();
}

absl::Status Store::AppendAudit(const AuditRow& a, absl::string_view entry_proto) {
  return Durably([&]() -> absl::Status {
    absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_.get());
    if (!tx.ok()) return tx.status();
    if (absl::Status r = InsertAudit(a, entry_proto, false); !r.ok()) return r;
    absl::StatusOr<int64_t> seq = CommitWithEvent(
        *tx, absl::FromUnixMicros(a.time_us), "audit.appended", AuditEventPayload(a),
        a.actor_kind == 2 ? a.actor_id : "", a.task_id, a.goal_id, kEventAudit, entry_proto);
    return seq.status();
  });
}

absl::StatusOr<std::optional<AuditRow>> Store::LastAudit() {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT seq, time_us, actor_kind, actor_id, action, target, goal_id, task_id, details, "
      "prev_hash, hash FROM audit ORDER BY seq DESC LIMIT 1");
  if (!st.ok()) return st.status();
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return ReadAuditRow(*st);
}

absl::StatusOr<std::vector<AuditRow>> Store::QueryAudit(int64_t after_seq, int64_t to_seq,
                                                        absl::string_view goal_id, int64_t limit) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT seq, time_us, actor_kind, actor_id, action, target, goal_id, task_id, details, "
      "prev_hash, hash FROM audit WHERE seq > ?1 AND (?2 = 0 OR seq <= ?2) AND (?3 = '' OR "
      "goal_id = ?3) ORDER BY seq LIMIT ?4");
  if (!st.ok()) return st.status();
  st->Bind(1, after_seq).Bind(2, to_seq).Bind(3, goal_id).Bind(4, limit);
  std::vector<AuditRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back(ReadAuditRow(*st));
  }
  return out;
}

absl::StatusOr<std::vector<EventRow>> Store::QueryEvents(int64_t after_seq, int64_t limit) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT seq, time_us, kind, COALESCE(agent_id, ''), COALESCE(task_id, ''), "
      "COALESCE(goal_id, ''), resource_type, resource FROM events WHERE seq > ?1 ORDER BY seq "
      "LIMIT ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, after_seq).Bind(2, limit);
  std::vector<EventRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st->ColumnInt(0), st->ColumnInt(1), st->ColumnText(2), st->ColumnText(3),
                   st->ColumnText(4), st->ColumnText(5), st->ColumnInt(6), st->ColumnText(7)});
  }
  return out;
}

absl::StatusOr<std::optional<BudgetRow>> Store::LoadBudget(int64_t scope,
                                                           absl::string_view scope_id) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT scope, scope_id, max_tokens, max_cost_usd, update_us, updated_by FROM budgets "
      "WHERE scope = ?1 AND scope_id = ?2");
  if (!st.ok()) return st.status();
  st->Bind(1, scope).Bind(2, scope_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<BudgetRow>();
  return std::optional<BudgetRow>(BudgetRow{st->ColumnInt(0), st->ColumnText(1), st->ColumnInt(2),
                                            st->ColumnDouble(3), st->ColumnInt(4),
                                            st->ColumnText(5)});
}

absl::StatusOr<std::vector<UsageRow>> Store::SumUsageByRole() {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT role, SUM(prompt_tokens + completion_tokens), SUM(cost_usd) FROM usage "
      "GROUP BY role");
  if (!st.ok()) return st.status();
  std::vector<UsageRow> out;
  for (;;) {
    absl::StatusOr<bool> row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    UsageRow u;
    u.role = st->ColumnText(0);
    u.prompt_tokens = st->ColumnInt(1);
    u.cost_usd = st->ColumnDouble(2);
    out.push_back(std::move(u));
  }
  return out;
}

absl::StatusOr<UsageRow> Store::SumUsageOfGoal(absl::string_view goal_id) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0) "
      "FROM usage WHERE goal_id = ?1");
  if (!st.ok()) return st.status();
  st->Bind(1, goal_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  UsageRow u;
  u.goal_id = std::string(goal_id);
  if (*row) {
    u.prompt_tokens = st->ColumnInt(0);
    u.cost_usd = st->ColumnDouble(1);
  }
  return u;
}

absl::StatusOr<int64_t> Store::LastCallTokens(absl::string_view goal_id,
                                              absl::string_view task_id) {
  absl::StatusOr<sqlite::Statement> st = db_->Prepare(
      "SELECT prompt_tokens + completion_tokens FROM usage WHERE goal_id = ?1 AND task_id = ?2 "
      "ORDER BY time_us DESC, id DESC LIMIT 1");
  if (!st.ok()) return st.status();
  st->Bind(1, goal_id).Bind(2, task_id);
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  return *row ? st->ColumnInt(0) : 0;
}

}  // namespace agentd
