#include "manager/store/store.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;

std::vector<std::string> TableNames(sqlite::Db* db) {
  std::vector<std::string> out;
  auto st = db->Prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name");
  EXPECT_TRUE(st.ok());
  while (*st->Step()) out.push_back(st->ColumnText(0));
  return out;
}

TEST(StoreTest, MigratesAnEmptyDatabaseToTheLatestSchemaWithThePragmas) {
  testing::TempDir dir;
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->schema_version(), Store::LatestSchemaVersion());
  sqlite::Db* db = (*store)->DbForTests();
  EXPECT_EQ(*db->QueryInt("PRAGMA user_version"), Store::LatestSchemaVersion());
  auto mode = db->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(*mode->Step());
  EXPECT_EQ(mode->ColumnText(0), "wal");
  EXPECT_EQ(*db->QueryInt("PRAGMA synchronous"), 1);  // NORMAL
  EXPECT_EQ(*db->QueryInt("PRAGMA foreign_keys"), 1);
  EXPECT_THAT(TableNames(db), ::testing::IsSupersetOf({"events", "meta"}));
}

// Several tasks' changes in one transaction: all of them with their events, or, when one
// fails (here an undeclared event kind, refused under AGENTD_STRICT), none.
TEST(StoreTest, SaveTasksStoresEveryChangeOrNone) {
  // Each test runs in a process of its own (ctest): the variable stays here.
  ASSERT_EQ(setenv("AGENTD_STRICT", "1", 1), 0);
  testing::TempDir dir;
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  auto change = [](const std::string& id, const std::string& kind) {
    return Store::TaskChange{TaskRow{id, "g-1", id == "g-1" ? "" : "g-1", 6, "", 1, id}, kind, "{}",
                             ""};
  };
  absl::StatusOr<int64_t> refused = (*store)->SaveTasks(
      {change("t-2", "task.canceled"), change("g-1", "task.not_a_kind")}, absl::Now());
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE((*store)->LoadTasks()->empty()) << "t-2 went with the failed change";
  EXPECT_EQ((*store)->LastEventSeq(), 0);
  auto events = (*store)->QueryEvents(0, 10);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(events->empty());

  absl::StatusOr<int64_t> saved = (*store)->SaveTasks(
      {change("t-2", "task.canceled"), change("g-1", "task.canceled")}, absl::Now());
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(*saved, 2);
  EXPECT_EQ((*store)->LoadTasks()->size(), 2u);
  events = (*store)->QueryEvents(0, 10);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].task_id, "t-2");
  EXPECT_EQ((*events)[1].task_id, "g-1");
}

TEST(StoreTest, ReopeningIsIdempotentAndKeepsData) {
  testing::TempDir dir;
  std::vector<std::string> tables;
  {
    auto store = Store::Open(dir.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ(*(*store)->AppendEvent(absl::Now(), "test.event", "{}"), 1);
    tables = TableNames((*store)->DbForTests());
  }
  for (int i = 0; i < 2; ++i) {
    auto again = Store::Open(dir.Join("agentd.db"));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ((*again)->schema_version(), Store::LatestSchemaVersion());
    EXPECT_EQ(TableNames((*again)->DbForTests()), tables);
    EXPECT_EQ((*again)->LastEventSeq(), 1);
    EXPECT_EQ(*(*again)->DbForTests()->QueryInt("SELECT COUNT(*) FROM meta"), 1);
  }
}

TEST(StoreTest, EventSeqIsMonotonic) {
  testing::TempDir dir;
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok());
  int64_t prev = 0;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<int64_t> seq = (*store)->AppendEvent(absl::Now(), "k", "{}");
    ASSERT_TRUE(seq.ok());
    EXPECT_GT(*seq, prev);
    prev = *seq;
  }
}

TEST(StoreTest, NewerSchemaIsRefusedAndTheFileLeftUntouched) {
  testing::TempDir dir;
  std::string path = dir.Join("agentd.db");
  {
    auto db = sqlite::Db::Open(path, true);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("CREATE TABLE future(x); PRAGMA user_version = 999;").ok());
  }
  std::string before = testing::ReadFileOrEmpty(path);
  ASSERT_FALSE(before.empty());
  auto store = Store::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("schema version 999 is newer than this agentd"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("The database was not changed"));
  EXPECT_EQ(testing::ReadFileOrEmpty(path), before);
  EXPECT_TRUE(testing::ReadFileOrEmpty(path + "-wal").empty());
}

TEST(StoreTest, NotADatabaseIsAClearError) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("agentd.db"), std::string(8192, 'x'));
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(dir.Join("agentd.db")));
}

}  // namespace
}  // namespace agentd
