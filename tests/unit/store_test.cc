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

// Plans are found by goal, task and status, in the order they were made or newest first,
// a page at a time; a plan updated later keeps its place.
TEST(StoreTest, LoadPlansFiltersAndPagesInTheOrderPlansWereMade) {
  testing::TempDir dir;
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  Store& s = **store;
  EXPECT_EQ(*s.LargestPlanNumber(), 0);
  auto save = [&](const std::string& id, const std::string& goal, const std::string& task,
                  int64_t status) {
    absl::StatusOr<int64_t> seq = s.SavePlan(PlanRow{id, goal, task, status, 1, "body of " + id},
                                             absl::Now(), "plan.proposed", "{}");
    ASSERT_TRUE(seq.ok()) << seq.status();
  };
  save("p-1", "g-1", "t-1", 3);
  save("p-2", "g-2", "t-5", 1);
  save("p-10", "g-1", "t-1", 1);
  save("p-11", "g-1", "t-2", 6);
  save("p-1", "g-1", "t-1", 4);  // updated: stays first
  auto ids = [&](const PlanQuery& q) {
    std::vector<std::string> out;
    absl::StatusOr<std::vector<PlanRow>> rows = s.LoadPlans(q);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (rows.ok()) {
      for (const PlanRow& r : *rows) out.push_back(r.id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids({}), (V{"p-1", "p-2", "p-10", "p-11"}));
  PlanQuery q;
  q.goal_id = "g-1";
  EXPECT_EQ(ids(q), (V{"p-1", "p-10", "p-11"}));
  q.newest_first = true;
  EXPECT_EQ(ids(q), (V{"p-11", "p-10", "p-1"}));
  q.limit = 1;
  q.offset = 1;
  EXPECT_EQ(ids(q), (V{"p-10"}));
  q = PlanQuery();
  q.task_id = "t-1";
  EXPECT_EQ(ids(q), (V{"p-1", "p-10"}));
  q.statuses = {4, 6};
  EXPECT_EQ(ids(q), (V{"p-1"}));
  q.task_id.clear();
  EXPECT_EQ(ids(q), (V{"p-1", "p-11"}));
  absl::StatusOr<std::optional<PlanRow>> one = s.LoadPlan("p-1");
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(one->has_value());
  EXPECT_EQ((*one)->status, 4);
  EXPECT_EQ((*one)->body, "body of p-1");
  EXPECT_FALSE(s.LoadPlan("p-3")->has_value());
  EXPECT_EQ(*s.LargestPlanNumber(), 11) << "by number, not by text or by when stored";
}

// Several tasks' changes in one transaction: all of them with their events, or, when one
// fails (here an undeclared event kind, refused under AGENTD_STRICT), none.
TEST(StoreTest, SaveTasksStoresEveryChangeOrNone) {
  // Unset again at the end, for the tests run after this one in the same process (a
  // run of the binary itself; ctest gives each test a process of its own).
  ASSERT_EQ(setenv("AGENTD_STRICT", "1", 1), 0);
  struct Unset {
    ~Unset() { unsetenv("AGENTD_STRICT"); }
  } unset;
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

// A goal saved with its request id is found by it, after reopening too; the id stays
// with the first goal saved under it; a save that fails takes its id with it.
TEST(StoreTest, AGoalIsFoundByItsRequestIdOnlyOnceItIsSaved) {
  // Strict: an undeclared event kind fails the save (unset at the end, as above).
  ASSERT_EQ(setenv("AGENTD_STRICT", "1", 1), 0);
  struct Unset {
    ~Unset() { unsetenv("AGENTD_STRICT"); }
  } unset;
  testing::TempDir dir;
  auto goal_of = [](Store* store, const std::string& request_id) {
    absl::StatusOr<std::string> goal = store->GoalOfRequest(request_id);
    EXPECT_TRUE(goal.ok()) << goal.status();
    return goal.value_or("(lookup failed)");
  };
  {
    auto store = Store::Open(dir.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(goal_of(store->get(), "req-1"), "");
    TaskRow goal{"g-1", "g-1", "", 2, "", 1, "body", "req-1"};
    ASSERT_TRUE((*store)->SaveTask(goal, absl::Now(), "goal.submitted", "{}").ok());
    EXPECT_EQ(goal_of(store->get(), "req-1"), "g-1");
    // Its later changes carry no request id and leave the mapping as it is.
    TaskRow running{"g-1", "g-1", "", 4, "ceo-1", 1, "body"};
    ASSERT_TRUE((*store)->SaveTask(running, absl::Now(), "task.running", "{}").ok());
    // A second goal under a taken id is refused, and is not saved at all.
    TaskRow later{"g-2", "g-2", "", 2, "", 2, "body", "req-1"};
    EXPECT_FALSE((*store)->SaveTask(later, absl::Now(), "goal.submitted", "{}").ok());
    absl::StatusOr<std::optional<TaskRow>> g2 = (*store)->LoadTask("g-2");
    ASSERT_TRUE(g2.ok()) << g2.status();
    EXPECT_FALSE(g2->has_value());
    // A save that fails (its event is refused) takes its request id with it.
    TaskRow refused{"g-3", "g-3", "", 2, "", 3, "body", "req-3"};
    EXPECT_FALSE((*store)->SaveTask(refused, absl::Now(), "task.not_a_kind", "{}").ok());
    EXPECT_EQ(goal_of(store->get(), "req-3"), "");
  }
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(goal_of(store->get(), "req-1"), "g-1");
  EXPECT_EQ(goal_of(store->get(), "req-3"), "");
}

// The last goal id handed out is kept across reopening, whether a goal was stored with
// it or not.
TEST(StoreTest, TheLastGoalIdUsedIsKept) {
  testing::TempDir dir;
  {
    auto store = Store::Open(dir.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<int64_t> none = (*store)->LastGoalIdUsed();
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_EQ(*none, 0);
    ASSERT_TRUE((*store)->KeepGoalIdUsed(7).ok());
    ASSERT_TRUE((*store)->KeepGoalIdUsed(12).ok());
  }
  auto store = Store::Open(dir.Join("agentd.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<int64_t> used = (*store)->LastGoalIdUsed();
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(*used, 12);
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
