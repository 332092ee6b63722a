#include "manager/store/store.h"

#include "absl/strings/str_cat.h"
#include "common/version.h"

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
};

}  // namespace

int64_t Store::LatestSchemaVersion() { return std::size(kMigrations); }

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<sqlite::Db>> db = sqlite::Db::Open(path, /*create=*/true);
  if (!db.ok()) return db.status();
  // Look before touching: journal_mode=WAL rewrites the header, so a database from a
  // newer agentd is refused before anything is set.
  absl::StatusOr<int64_t> version = (*db)->QueryInt("PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (*version > LatestSchemaVersion()) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": database schema version ", *version, " is newer than this agentd ", kVersion,
        " understands (", LatestSchemaVersion(),
        "); it was written by a newer agentd. Run that version, or point --state-dir at "
        "another directory. The database was not changed."));
  }
  if (absl::Status s = (*db)->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
      !s.ok()) {
    return s;
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= *version) continue;
    absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db->get());
    if (!tx.ok()) return tx.status();
    // Another process may have migrated between our read and BEGIN IMMEDIATE.
    absl::StatusOr<int64_t> now = (*db)->QueryInt("PRAGMA user_version");
    if (!now.ok()) return now.status();
    if (*now >= m.version) continue;
    if (absl::Status s = (*db)->Exec(m.sql); !s.ok()) {
      return absl::InternalError(
          absl::StrCat("migration ", m.version, " (", m.name, ") failed: ", s.message()));
    }
    if (absl::Status s = (*db)->Exec(absl::StrCat("PRAGMA user_version = ", m.version)); !s.ok()) {
      return s;
    }
    if (m.version == 1) {
      absl::StatusOr<sqlite::Statement> st =
          (*db)->Prepare("INSERT INTO meta(key, value) VALUES ('created_by_version', ?1)");
      if (!st.ok()) return st.status();
      if (absl::Status s = st->Bind(1, absl::string_view(kVersion)).Run(); !s.ok()) return s;
    }
    if (absl::Status s = tx->Commit(); !s.ok()) return s;
    *version = m.version;
  }
  absl::StatusOr<int64_t> last = (*db)->QueryInt("SELECT COALESCE(MAX(seq), 0) FROM events");
  if (!last.ok()) return last.status();
  auto store = std::unique_ptr<Store>(new Store(*std::move(db), *version));
  store->last_event_seq_ = *last;
  return store;
}

absl::StatusOr<int64_t> Store::AppendEvent(absl::Time time, absl::string_view kind,
                                           absl::string_view payload_json) {
  if (!insert_event_.has_value()) {
    absl::StatusOr<sqlite::Statement> st = db_->Prepare(
        "INSERT INTO events(time_us, kind, payload) VALUES (?1, ?2, ?3) RETURNING seq");
    if (!st.ok()) return st.status();
    insert_event_.emplace(*std::move(st));
  }
  sqlite::Statement& st = *insert_event_;
  st.Reset();
  st.Bind(1, absl::ToUnixMicros(time)).Bind(2, kind).Bind(3, payload_json);
  absl::StatusOr<bool> row = st.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inserting an event returned no seq");
  int64_t seq = st.ColumnInt(0);
  if (absl::Status s = st.Run(); !s.ok()) return s;
  last_event_seq_ = seq;
  return seq;
}

}  // namespace agentd
