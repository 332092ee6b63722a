// common/sqlite.h with a real database file: statements kept by the connection and
// taken again, and transactions through them.
#include "common/sqlite.h"

#include <sqlite3.h>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd::sqlite {
namespace {

// The statements the connection holds (kept or in use).
int CompiledStatements(Db* db) {
  int n = 0;
  for (sqlite3_stmt* s = sqlite3_next_stmt(db->raw(), nullptr); s != nullptr;
       s = sqlite3_next_stmt(db->raw(), s)) {
    ++n;
  }
  return n;
}

TEST(SqliteTest, AStatementIsKeptAndTakenAgainResetWithNoBindingsLeft) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(dir.Join("t.db"), /*create=*/true);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_TRUE((*db)->Exec("CREATE TABLE t (v INTEGER)").ok());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<Transaction> tx = Transaction::Begin(db->get());
    ASSERT_TRUE(tx.ok()) << tx.status();
    absl::StatusOr<Statement> insert = (*db)->Prepare("INSERT INTO t (v) VALUES (?1)");
    ASSERT_TRUE(insert.ok()) << insert.status();
    ASSERT_TRUE(insert->Bind(1, int64_t{i}).Run().ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  // One compiled program per text: the insert, BEGIN IMMEDIATE and COMMIT.
  EXPECT_EQ(CompiledStatements(db->get()), 3);
  // A query left mid-way is reset when given back: taken again, it starts over, and its
  // parameter is unbound (NULL) until bound again.
  {
    absl::StatusOr<Statement> q = (*db)->Prepare("SELECT v, ?1 FROM t ORDER BY v");
    ASSERT_TRUE(q.ok());
    q->Bind(1, int64_t{42});
    ASSERT_TRUE(*q->Step());
    ASSERT_TRUE(*q->Step());
    EXPECT_EQ(q->ColumnInt(0), 1);
    EXPECT_EQ(q->ColumnInt(1), 42);
  }
  {
    absl::StatusOr<Statement> q = (*db)->Prepare("SELECT v, ?1 FROM t ORDER BY v");
    ASSERT_TRUE(q.ok());
    ASSERT_TRUE(*q->Step());
    EXPECT_EQ(q->ColumnInt(0), 0);
    EXPECT_TRUE(q->ColumnIsNull(1));
    // The same text while it is in use: a second program, and both step on their own.
    absl::StatusOr<Statement> again = (*db)->Prepare("SELECT v, ?1 FROM t ORDER BY v");
    ASSERT_TRUE(again.ok());
    ASSERT_TRUE(*again->Step());
    EXPECT_EQ(again->ColumnInt(0), 0);
    ASSERT_TRUE(*q->Step());
    EXPECT_EQ(q->ColumnInt(0), 1);
  }
  EXPECT_EQ(CompiledStatements(db->get()), 5);
  // A query given back mid-way holds no read transaction: another connection can write
  // and checkpoint, and this one reads what it wrote.
  ASSERT_TRUE((*db)->Exec("PRAGMA journal_mode = WAL").ok());
  absl::StatusOr<std::unique_ptr<Db>> other = Db::Open(dir.Join("t.db"), /*create=*/false);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->Exec("INSERT INTO t (v) VALUES (100)").ok());
  absl::StatusOr<int64_t> truncated = (*other)->QueryInt("PRAGMA wal_checkpoint(TRUNCATE)");
  ASSERT_TRUE(truncated.ok());
  EXPECT_EQ(*truncated, 0) << "a checkpoint was blocked by a statement given back";
  EXPECT_EQ(*(*db)->QueryInt("SELECT max(v) FROM t"), 100);
}

TEST(SqliteTest, AFailedCommitLeavesTheTransactionToRollBackAndTheNextOneWorks) {
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(dir.Join("t.db"), /*create=*/true);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)
                  ->Exec("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER "
                         "REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")
                  .ok());
  {
    absl::StatusOr<Transaction> tx = Transaction::Begin(db->get());
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*db)->Exec("INSERT INTO c (p) VALUES (7)").ok());
    // The deferred foreign key fails at COMMIT; the transaction is rolled back when it goes.
    EXPECT_FALSE(tx->Commit().ok());
  }
  absl::StatusOr<Transaction> tx = Transaction::Begin(db->get());
  ASSERT_TRUE(tx.ok()) << tx.status();
  ASSERT_TRUE((*db)->Exec("INSERT INTO p (id) VALUES (7); INSERT INTO c (p) VALUES (7)").ok());
  ASSERT_TRUE(tx->Commit().ok());
  EXPECT_EQ(*(*db)->QueryInt("SELECT count(*) FROM c"), 1);
}

}  // namespace
}  // namespace agentd::sqlite
