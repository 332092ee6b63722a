// The audit log's chain and head: Verify names an entry deleted from the middle, an
// inserted one, a truncated tail and an edited entry, in real agentd.db files tampered with
// while agentd is down; a crash between an entry's commit and the head's write is not
// tampering; a log written before the chain was keyed still verifies.
#include "manager/core/audit.h"

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/clock.h"
#include "manager/core/event_loop.h"
#include "manager/store/store.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::string SchemaFixturePath(int64_t version) {
  std::string here = __FILE__;
  return absl::StrCat(here.substr(0, here.rfind("/unit/")), "/fixtures/schema/v", version, ".sql");
}

int FileMode(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Start()); }

  // Opens agentd.db and recovers the log, as agentd does at start.
  void Start() {
    Stop();
    auto store = Store::Open(db_path());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    audit_ = std::make_unique<AuditLog>(&loop_, store_.get(), AuditLog::FilesIn(dir_.path()));
    absl::Status recovered = audit_->Recover();
    ASSERT_TRUE(recovered.ok()) << recovered;
  }
  void Stop() {
    audit_.reset();
    store_.reset();
  }

  // Appends `n` entries of an agent writing files, a second apart.
  void AppendFileWrites(int n) {
    for (int i = 0; i < n; ++i) {
      clock_.Advance(absl::Seconds(1));
      ++writes_;
      audit_->Append(v1::ACTOR_KIND_AGENT, "coder-1", "fs.write", absl::StrCat("file-", writes_),
                     "g-1", "t-1", {{"bytes", absl::StrCat(100 * writes_)}});
    }
  }

  v1::VerifyAuditChainResponse Verify() {
    absl::StatusOr<v1::VerifyAuditChainResponse> resp =
        audit_->Verify(v1::VerifyAuditChainRequest());
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : v1::VerifyAuditChainResponse();
  }

  std::vector<AuditRow> Rows() {
    absl::StatusOr<std::vector<AuditRow>> rows = store_->QueryAudit(0, 0, "", 10000);
    EXPECT_TRUE(rows.ok()) << rows.status();
    return rows.ok() ? *rows : std::vector<AuditRow>();
  }

  // Runs `sql` on agentd.db while agentd is down, as someone who can write the database
  // but not read audit.key (a copy restored from elsewhere, a tool that speaks SQL).
  void Tamper(const std::string& sql) {
    Stop();
    auto db = sqlite::Db::Open(db_path(), /*create=*/false);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::Status s = (*db)->Exec(sql);
    ASSERT_TRUE(s.ok()) << s;
  }

  // The best that someone without the key can do after editing rows: recompute the plain
  // SHA-256 chain from `from_seq` on, so that every entry links to the one before again.
  void RelinkWithoutTheKey(int64_t from_seq) {
    Stop();
    auto store = Store::Open(db_path());
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::vector<AuditRow>> rows = (*store)->QueryAudit(0, 0, "", 10000);
    ASSERT_TRUE(rows.ok()) << rows.status();
    std::string prev;
    for (AuditRow& r : *rows) {
      if (r.seq >= from_seq) {
        r.prev_hash = prev;
        r.hash = AuditLog::Hash(r, "");
        auto st = (*store)->DbForTests()->Prepare(
            "UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1");
        ASSERT_TRUE(st.ok()) << st.status();
        st->Bind(1, r.seq).Bind(2, r.prev_hash).Bind(3, r.hash);
        ASSERT_TRUE(st->Run().ok());
      }
      prev = r.hash;
    }
  }

  std::string db_path() const { return dir_.Join("agentd.db"); }
  std::string key_path() const { return dir_.Join("audit.key"); }
  std::string head_path() const { return dir_.Join("audit.head"); }

  testing::TempDir dir_;
  FakeClock clock_;
  EventLoop loop_{&clock_};
  std::unique_ptr<Store> store_;
  std::unique_ptr<AuditLog> audit_;
  int writes_ = 0;
};

TEST_F(AuditTest, AnUntouchedChainVerifiesAcrossRestarts) {
  AppendFileWrites(5);
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_TRUE(resp.ok()) << resp.reason();
  EXPECT_EQ(resp.entries_checked(), 5);
  std::vector<AuditRow> rows = Rows();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(resp.last_hash(), rows.back().hash);

  ASSERT_NO_FATAL_FAILURE(Start());
  AppendFileWrites(1);
  resp = Verify();
  EXPECT_TRUE(resp.ok()) << resp.reason();
  EXPECT_EQ(resp.entries_checked(), 6);
}

TEST_F(AuditTest, EntriesAreKeyedAndTheKeyAndHeadAreFilesOnlyAgentdReads) {
  AppendFileWrites(2);
  for (const AuditRow& r : Rows()) {
    // Not the plain SHA-256 that anyone could recompute.
    EXPECT_NE(r.hash, AuditLog::Hash(r, "")) << "entry " << r.seq;
    EXPECT_THAT(r.hash, MatchesRegex("[0-9a-f]{64}"));
  }
  EXPECT_EQ(FileMode(key_path()), 0600);
  EXPECT_EQ(FileMode(head_path()), 0600);
  // One line each, as the header documents.
  std::string key_file = testing::ReadFileOrEmpty(key_path());
  absl::string_view key = key_file;
  ASSERT_TRUE(absl::ConsumeSuffix(&key, "\n"));
  EXPECT_THAT(std::string(key), MatchesRegex("agentd-audit-key 1 keyed_from=1 key=[0-9a-f]{64}"));
  std::string head_file = testing::ReadFileOrEmpty(head_path());
  absl::string_view head = head_file;
  ASSERT_TRUE(absl::ConsumeSuffix(&head, "\n"));
  EXPECT_THAT(std::string(head),
              MatchesRegex(absl::StrCat("agentd-audit-head 1 seq=2 hash=", Rows().back().hash,
                                        " mac=[0-9a-f]{64}")));
  // The key is made once and kept.
  ASSERT_NO_FATAL_FAILURE(Start());
  EXPECT_EQ(testing::ReadFileOrEmpty(key_path()), key_file);
}

TEST_F(AuditTest, AKeyFileOthersCanReadIsRefused) {
  Stop();
  ASSERT_EQ(chmod(key_path().c_str(), 0640), 0);
  auto store = Store::Open(db_path());
  ASSERT_TRUE(store.ok()) << store.status();
  AuditLog audit(&loop_, store->get(), AuditLog::FilesIn(dir_.path()));
  absl::Status s = audit.Recover();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("chmod 600 " + key_path()));
}

// (1) An entry deleted from the middle.
TEST_F(AuditTest, VerifyNamesAnEntryDeletedFromTheMiddle) {
  AppendFileWrites(5);
  ASSERT_NO_FATAL_FAILURE(Tamper("DELETE FROM audit WHERE seq = 3"));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 3);
  EXPECT_EQ(resp.reason(), "entry 3 is missing");
}

// (2) An entry inserted in the middle: the ones after it renumbered, and the whole chain
// recomputed, as well as it can be without the key.
TEST_F(AuditTest, VerifyNamesAnInsertedEntry) {
  AppendFileWrites(5);
  std::vector<AuditRow> rows = Rows();
  ASSERT_NO_FATAL_FAILURE(Tamper(
      "UPDATE audit SET seq = -seq WHERE seq >= 3; UPDATE audit SET seq = 1 - seq WHERE seq < 0; "
      "INSERT INTO audit SELECT 3, time_us, 1, 'human:local', 'consent.approve', 'net', goal_id, "
      "task_id, '{}', '', '' FROM audit WHERE seq = 2"));
  ASSERT_NO_FATAL_FAILURE(RelinkWithoutTheKey(3));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 3);
  EXPECT_THAT(resp.reason(), HasSubstr("hash mismatch"));
  EXPECT_EQ(resp.last_hash(), rows[1].hash);  // the last entry that holds
}

// (3) The newest entries deleted: the chain that is left is whole, and only the head
// outside the database shows what is gone. The gap stays after restarts and appends.
TEST_F(AuditTest, VerifyNamesATruncatedTail) {
  AppendFileWrites(5);
  ASSERT_NO_FATAL_FAILURE(Tamper("DELETE FROM audit WHERE seq >= 4"));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 4);
  EXPECT_EQ(resp.entries_checked(), 3);
  EXPECT_EQ(resp.reason(),
            absl::StrCat("entries 4 to 5 are missing from the end of the log: ", head_path(),
                         " records entry 5 but agentd.db ends at entry 3"));

  AppendFileWrites(1);
  EXPECT_EQ(Rows().back().seq, 6);  // after the head, not after what is left
  ASSERT_NO_FATAL_FAILURE(Start());
  resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 4);
  EXPECT_EQ(resp.reason(), "entries 4 to 5 are missing");
}

// One entry behind the head is not the crash window: that is the head behind the database.
TEST_F(AuditTest, VerifyNamesTheNewestEntryDeleted) {
  AppendFileWrites(3);
  ASSERT_NO_FATAL_FAILURE(Tamper("DELETE FROM audit WHERE seq = 3"));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 3);
  EXPECT_THAT(resp.reason(), HasSubstr("entry 3 is missing from the end of the log"));
}

// Nor can the head be moved back to hide a truncation without the key.
TEST_F(AuditTest, AHeadRewrittenWithoutTheKeyIsRecordedAndReported) {
  AppendFileWrites(5);
  std::string h4 = Rows()[3].hash;
  ASSERT_NO_FATAL_FAILURE(Tamper("DELETE FROM audit WHERE seq = 5"));
  testing::WriteFile(head_path(), absl::StrCat("agentd-audit-head 1 seq=4 hash=", h4,
                                               " mac=", std::string(64, '0'), "\n"));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 5);  // the entry agentd wrote about it at start
  EXPECT_THAT(resp.reason(), HasSubstr("agentd found at start: " + head_path() +
                                       "'s mac does not match audit.key"));
  std::vector<AuditRow> rows = Rows();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows.back().action, AuditLog::kHeadMismatchAction);
  // It stays reported: restarting does not wash it out.
  ASSERT_NO_FATAL_FAILURE(Start());
  AppendFileWrites(1);
  EXPECT_EQ(Verify().first_broken_seq(), 5);
}

TEST_F(AuditTest, AMissingHeadIsRecordedAndReported) {
  AppendFileWrites(2);
  Stop();
  ASSERT_EQ(unlink(head_path().c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 3);
  EXPECT_THAT(resp.reason(), HasSubstr(head_path() + " is missing"));
}

// (4) An entry edited; then also with the chain recomputed without the key.
TEST_F(AuditTest, VerifyNamesAnEditedEntry) {
  AppendFileWrites(5);
  ASSERT_NO_FATAL_FAILURE(Tamper("UPDATE audit SET target = 'innocent.txt' WHERE seq = 2"));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 2);
  EXPECT_THAT(resp.reason(), HasSubstr("hash mismatch"));

  ASSERT_NO_FATAL_FAILURE(RelinkWithoutTheKey(2));
  ASSERT_NO_FATAL_FAILURE(Start());
  resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 2);
  EXPECT_THAT(resp.reason(), HasSubstr("hash mismatch"));
}

// agentd stopped after an entry committed and before the head named it.
TEST_F(AuditTest, AHeadOneEntryBehindAfterACrashIsNotTampering) {
  AppendFileWrites(2);
  std::string head_at_2 = testing::ReadFileOrEmpty(head_path());
  AppendFileWrites(1);
  testing::WriteFile(head_path(), head_at_2);
  // While agentd runs (a head write that failed) ...
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_TRUE(resp.ok()) << resp.reason();
  // ... and after a restart, which moves the head on.
  ASSERT_NO_FATAL_FAILURE(Start());
  resp = Verify();
  EXPECT_TRUE(resp.ok()) << resp.reason();
  EXPECT_EQ(resp.entries_checked(), 3);
  EXPECT_THAT(testing::ReadFileOrEmpty(head_path()), HasSubstr(" seq=3 "));
  EXPECT_EQ(Rows().size(), 3u);  // nothing recorded about it
}

// The crash window does not let an entry in that agentd did not write.
TEST_F(AuditTest, AnEntryAppendedWithoutTheKeyIsCaughtInTheCrashWindow) {
  AppendFileWrites(3);
  ASSERT_NO_FATAL_FAILURE(
      Tamper("INSERT INTO audit SELECT 4, time_us + 1, 2, actor_id, 'shell.run', 'true', "
             "goal_id, task_id, '{}', '', '' FROM audit WHERE seq = 3"));
  ASSERT_NO_FATAL_FAILURE(RelinkWithoutTheKey(4));
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 4);
  EXPECT_THAT(resp.reason(), HasSubstr("hash mismatch"));
}

// More than one entry behind is not what a crash leaves.
TEST_F(AuditTest, AHeadTwoEntriesBehindIsRecordedAndReported) {
  AppendFileWrites(1);
  std::string head_at_1 = testing::ReadFileOrEmpty(head_path());
  AppendFileWrites(2);
  Stop();
  testing::WriteFile(head_path(), head_at_1);
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::VerifyAuditChainResponse resp = Verify();
  EXPECT_FALSE(resp.ok());
  EXPECT_EQ(resp.first_broken_seq(), 4);
  EXPECT_THAT(resp.reason(), HasSubstr("is 2 entries behind agentd.db"));
}

// A log written by an agentd before audit.key existed (tests/fixtures/schema/v7.sql holds
// three such entries) still verifies; the chain is keyed from the next entry on.
TEST(AuditUpgradeTest, ALogWrittenBeforeTheKeyStillVerifiesAndIsKeyedFromTheNextEntry) {
  testing::TempDir dir;
  {
    std::string sql = testing::ReadFileOrEmpty(SchemaFixturePath(7));
    ASSERT_FALSE(sql.empty()) << SchemaFixturePath(7);
    auto db = sqlite::Db::Open(dir.Join("agentd.db"), /*create=*/true);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::Status s = (*db)->Exec(sql);
    ASSERT_TRUE(s.ok()) << s;
  }
  FakeClock clock;
  EventLoop loop(&clock);
  std::vector<AuditRow> rows;
  for (int start = 0; start < 2; ++start) {
    auto store = Store::Open(dir.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    AuditLog audit(&loop, store->get(), AuditLog::FilesIn(dir.path()));
    absl::Status recovered = audit.Recover();
    ASSERT_TRUE(recovered.ok()) << recovered;
    if (start == 0) {
      EXPECT_THAT(testing::ReadFileOrEmpty(dir.Join("audit.key")),
                  HasSubstr("agentd-audit-key 1 keyed_from=4 key="));
      absl::StatusOr<v1::VerifyAuditChainResponse> resp = audit.Verify({});
      ASSERT_TRUE(resp.ok()) << resp.status();
      EXPECT_TRUE(resp->ok()) << resp->reason();
      EXPECT_EQ(resp->entries_checked(), 3);
      EXPECT_EQ(resp->last_hash(),
                "76573ac778417c0208d4ff49260034fb983d679edef26960470c49935ebfbaac");
      audit.Append(v1::ACTOR_KIND_HUMAN, "human:local", "agent.stop", "coder-1");
    }
    absl::StatusOr<v1::VerifyAuditChainResponse> resp = audit.Verify({});
    ASSERT_TRUE(resp.ok()) << resp.status();
    EXPECT_TRUE(resp->ok()) << resp->reason();
    EXPECT_EQ(resp->entries_checked(), 4);
    absl::StatusOr<std::vector<AuditRow>> all = (*store)->QueryAudit(0, 0, "", 100);
    ASSERT_TRUE(all.ok());
    rows = *all;
  }
  ASSERT_EQ(rows.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(rows[i].hash, AuditLog::Hash(rows[i], ""));
  EXPECT_EQ(rows[3].prev_hash, rows[2].hash);
  EXPECT_NE(rows[3].hash, AuditLog::Hash(rows[3], ""));  // keyed

  // An edit to an entry from before the key is still caught.
  {
    auto db = sqlite::Db::Open(dir.Join("agentd.db"), /*create=*/false);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("UPDATE audit SET target = 'elsewhere.txt' WHERE seq = 2").ok());
  }
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  AuditLog audit(&loop, store->get(), AuditLog::FilesIn(dir.path()));
  ASSERT_TRUE(audit.Recover().ok());
  absl::StatusOr<v1::VerifyAuditChainResponse> resp = audit.Verify({});
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_FALSE(resp->ok());
  EXPECT_EQ(resp->first_broken_seq(), 2);
  EXPECT_THAT(resp->reason(), HasSubstr("hash mismatch"));
}

}  // namespace
}  // namespace agentd
