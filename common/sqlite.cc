#include "common/sqlite.h"

#include <sqlite3.h>

#include "absl/strings/str_cat.h"

namespace agentd::sqlite {

absl::StatusOr<std::unique_ptr<Db>> Db::Open(const std::string& path, bool create) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = absl::StrCat(
        path, ": cannot open database: ", raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
    sqlite3_close(raw);
    return absl::UnavailableError(msg);
  }
  std::unique_ptr<Db> db(new Db(raw, path));
  sqlite3_extended_result_codes(raw, 1);
  if (absl::Status s = db->Exec("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;"); !s.ok()) {
    return s;
  }
  return db;
}

Db::~Db() {
  for (auto& [sql, stmts] : idle_) {
    for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
  }
  sqlite3_close_v2(db_);
}

void Db::Release(const std::string* key, sqlite3_stmt* stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (idle_count_ >= kMaxIdleStatements) {
    sqlite3_finalize(stmt);
    return;
  }
  idle_[*key].push_back(stmt);
  ++idle_count_;
}

absl::Status Db::Error(absl::string_view what) const {
  int code = sqlite3_extended_errcode(db_);
  std::string msg = absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_));
  absl::Status status;
  bool fatal = false;
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      return absl::AlreadyExistsError(msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
      status = absl::ResourceExhaustedError(msg);
      fatal = true;
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      status = absl::DataLossError(msg);
      fatal = true;
      break;
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
      status = absl::InternalError(msg);
      fatal = true;
      break;
    default:
      return absl::InternalError(msg);
  }
  if (fatal && latch_fatal_ && first_fatal_.ok()) {
    first_fatal_ = status;
    if (fatal_hook_) fatal_hook_(status);
  }
  return status;
}

absl::Status Db::Exec(absl::string_view sql) {
  std::string s(sql);
  if (sqlite3_exec(db_, s.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error(absl::StrCat("executing \"", sql.substr(0, 80), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Db::Prepare(absl::string_view sql) {
  auto it = idle_.try_emplace(std::string(sql)).first;
  if (!it->second.empty()) {
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    --idle_count_;
    return Statement(this, stmt, &it->first);
  }
  sqlite3_stmt* stmt = nullptr;
  // PERSISTENT: it is likely kept, so SQLite need not take its memory from the lookaside.
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return Error(absl::StrCat("preparing \"", sql.substr(0, 80), "\""));
  }
  return Statement(this, stmt, &it->first);
}

absl::StatusOr<int64_t> Db::QueryInt(absl::string_view sql) {
  absl::StatusOr<Statement> st = Prepare(sql);
  if (!st.ok()) return st.status();
  absl::StatusOr<bool> row = st->Step();
  if (!row.ok()) return row.status();
  return *row ? st->ColumnInt(0) : 0;
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(other.stmt_), key_(other.key_), bind_error_(other.bind_error_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    db_ = other.db_;
    stmt_ = other.stmt_;
    key_ = other.key_;
    bind_error_ = other.bind_error_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { Release(); }

void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (db_ != nullptr && key_ != nullptr) {
    db_->Release(key_, stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
}

Statement& Statement::Bind(int index, int64_t value) {
  if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}
Statement& Statement::Bind(int index, absl::string_view text) {
  if (int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                   SQLITE_UTF8);
      rc != SQLITE_OK) {
    bind_error_ = rc;
  }
  return *this;
}
Statement& Statement::BindBlob(int index, absl::string_view bytes) {
  if (int rc = sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
      rc != SQLITE_OK) {
    bind_error_ = rc;
  }
  return *this;
}
Statement& Statement::BindNull(int index) {
  if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) bind_error_ = rc;
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_ != SQLITE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(db_->path(), ": binding a parameter: ", sqlite3_errstr(bind_error_)));
  }
  if (!db_->first_fatal().ok() && !sqlite3_stmt_readonly(stmt_)) return db_->first_fatal();
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return db_->Error(
      absl::StrCat("running \"", absl::string_view(sqlite3_sql(stmt_)).substr(0, 80), "\""));
}

absl::Status Statement::Run() {
  for (;;) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = 0;
}

int64_t Statement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
double Statement::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Statement::ColumnText(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(n)) : std::string();
}
bool Statement::ColumnIsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

namespace {
// A transaction statement, through the connection's kept statements.
absl::Status RunStatement(Db* db, absl::string_view sql) {
  absl::StatusOr<Statement> st = db->Prepare(sql);
  if (!st.ok()) return st.status();
  return st->Run();
}
}  // namespace

absl::StatusOr<Transaction> Transaction::Begin(Db* db) {
  if (!db->first_fatal().ok()) return db->first_fatal();
  if (absl::Status s = RunStatement(db, "BEGIN IMMEDIATE"); !s.ok()) return s;
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)RunStatement(db_, "ROLLBACK");
}

absl::Status Transaction::Commit() {
  absl::Status s = RunStatement(db_, "COMMIT");
  if (s.ok()) db_ = nullptr;
  return s;
}

}  // namespace agentd::sqlite
