// A thin RAII layer over SQLite 3: a connection, prepared statements, and write
// transactions that start with BEGIN IMMEDIATE (a deferred transaction that reads and
// then writes gets SQLITE_BUSY at once, ignoring busy_timeout).
//
// Errors are absl::Status carrying SQLite's message and the file name. A Db and its
// Statements belong to one thread at a time (SQLite's "multi-thread" mode); never use
// one across fork().
#ifndef AGENTD_COMMON_SQLITE_H_
#define AGENTD_COMMON_SQLITE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace agentd::sqlite {

class Statement;

class Db {
 public:
  // Opens (or, with `create`, creates) the database at `path` with busy_timeout set and
  // foreign keys on. Journal mode and synchronous are left to the caller (they change
  // the file; a caller may want to inspect it first).
  static absl::StatusOr<std::unique_ptr<Db>> Open(const std::string& path, bool create);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Runs one or more statements that return no rows needed by the caller.
  absl::Status Exec(absl::string_view sql);
  // One statement. Statements are kept once used: a Statement gives its compiled program
  // back to the connection when it goes (reset, bindings cleared), and the next Prepare of
  // the same text takes it instead of compiling it again (parsing and planning were the
  // largest part of a small write's CPU). At most kMaxIdleStatements are kept; a text
  // in use is compiled afresh for a second user.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  static constexpr size_t kMaxIdleStatements = 256;
  // The first column of the first row of `sql`, as an integer (0 when no row).
  absl::StatusOr<int64_t> QueryInt(absl::string_view sql);

  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }
  // The status of SQLite's last error on this connection, with `what` and the file.
  // An error that means the file can no longer be trusted to take writes (full, I/O
  // error, corruption, read-only, out of memory) is also kept as the first fatal error.
  absl::Status Error(absl::string_view what) const;
  // The first fatal error (OK when none). Once there is one, every write is refused
  // with it — Transaction::Begin and any statement that is not read-only — while reads
  // go on: as LevelDB's bg_error_, memory must not go on from a store that failed.
  const absl::Status& first_fatal() const { return first_fatal_; }
  // Whether a fatal error latches (first_fatal, refused writes): on for agentd's store,
  // off by default (an agent's session store lets its supervisor restart it instead).
  void SetLatchFatal(bool latch) { latch_fatal_ = latch; }
  // Called once, with the first fatal error, when it happens.
  void SetFatalHook(std::function<void(const absl::Status&)> hook) {
    fatal_hook_ = std::move(hook);
  }

 private:
  friend class Statement;
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  // From a Statement that goes: keeps `stmt` (prepared from `*key`) for reuse, or
  // finalizes it when enough are kept.
  void Release(const std::string* key, sqlite3_stmt* stmt);
  sqlite3* db_;
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle_;
  size_t idle_count_ = 0;
  std::string path_;
  mutable absl::Status first_fatal_;
  bool latch_fatal_ = false;
  std::function<void(const absl::Status&)> fatal_hook_;
};

class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  // Binds are 1-based, as in SQLite.
  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, absl::string_view text);
  Statement& BindBlob(int index, absl::string_view bytes);
  Statement& BindNull(int index);

  // Advances: true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, for statements without result rows.
  absl::Status Run();
  void Reset();

  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;
  bool ColumnIsNull(int col) const;

 private:
  friend class Db;
  Statement(Db* db, sqlite3_stmt* stmt, const std::string* key) : db_(db), stmt_(stmt), key_(key) {}
  void Release();
  Db* db_;
  sqlite3_stmt* stmt_;
  const std::string* key_;  // its text, a key of db_->idle_ (whose keys never move)
  int bind_error_ = 0;
};

// BEGIN IMMEDIATE on construction; ROLLBACK on destruction unless Commit() succeeded.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Db* db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
};

}  // namespace agentd::sqlite

#endif  // AGENTD_COMMON_SQLITE_H_
