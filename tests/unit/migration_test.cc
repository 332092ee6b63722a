// Schema upgrades: a database of every past schema version (tests/fixtures/schema/v<N>.sql)
// opens through Store::Open, is upgraded to the latest schema, and gives back every row it
// held through the Store's API; an upgrade that fails changes nothing.
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/audit.h"
#include "manager/store/store.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;

// The fixtures' times (tests/fixtures/schema/*.sql): 2024-12-05T00:00:00Z, and a second.
constexpr int64_t kT0 = 1733356800000000;
constexpr int64_t kSecond = 1000000;

// tests/fixtures/schema/v<version>.sql, found from this file's path so that the test runs
// from any directory.
std::string FixturePath(int64_t version) {
  std::string here = __FILE__;
  return absl::StrCat(here.substr(0, here.rfind("/unit/")), "/fixtures/schema/v", version, ".sql");
}

// Makes `path` the database v<version>.sql describes: in WAL mode, as every agentd left its
// database, or with `wal` false in the rollback journal mode SQLite starts in.
void BuildFixture(int64_t version, const std::string& path, bool wal = true) {
  std::string sql = testing::ReadFileOrEmpty(FixturePath(version));
  ASSERT_FALSE(sql.empty()) << FixturePath(version)
                            << " is missing: every schema version before the latest needs one "
                               "(tests/fixtures/schema/README.md says how to make it)";
  auto db = sqlite::Db::Open(path, /*create=*/true);
  ASSERT_TRUE(db.ok()) << db.status();
  absl::Status built = (*db)->Exec(sql);
  ASSERT_TRUE(built.ok()) << FixturePath(version) << ": " << built;
  if (wal) {
    ASSERT_TRUE((*db)->Exec("PRAGMA journal_mode = WAL").ok());
  }
}

// Every object in sqlite_master as (type, name, table, sql), by name: what SQLite compares
// when it checks a schema, and what a later migration's ALTER TABLE rewrites.
std::vector<std::string> Schema(sqlite::Db* db) {
  std::vector<std::string> out;
  auto st = db->Prepare(
      "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY name");
  EXPECT_TRUE(st.ok()) << st.status();
  if (!st.ok()) return out;
  while (*st->Step()) {
    out.push_back(absl::StrCat(st->ColumnText(0), " ", st->ColumnText(1), " on ", st->ColumnText(2),
                               ": ", st->ColumnText(3)));
  }
  return out;
}

// The bytes of SQL's X'<hex>' literal, as the fixtures write blobs.
std::string X(absl::string_view hex) { return absl::HexStringToBytes(hex); }

std::vector<std::string> Tables(sqlite::Db* db) {
  std::vector<std::string> out;
  auto st = db->Prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
  EXPECT_TRUE(st.ok()) << st.status();
  if (!st.ok()) return out;
  while (*st->Step()) out.push_back(st->ColumnText(0));
  return out;
}

// The rows of each table, as the fixtures hold them, read back through the Store.

void ExpectEvents(Store& s, int64_t version) {
  absl::StatusOr<std::vector<EventRow>> events = s.QueryEvents(0, 100);
  ASSERT_TRUE(events.ok()) << events.status();
  auto tie = [](const EventRow& e) {
    return std::make_tuple(e.seq, e.time_us, e.kind, e.agent_id, e.task_id, e.goal_id,
                           e.resource_type, e.resource);
  };
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ(tie((*events)[0]), std::make_tuple(1, kT0, "daemon.started", "", "", "", 0, ""));
  EXPECT_EQ(tie((*events)[1]),
            std::make_tuple(2, kT0 + kSecond, "agent.started", "coder-1", "", "", 0, ""));
  // From version 8 on, an event carries its resource (here the task, serialized).
  EXPECT_EQ(tie((*events)[2]),
            std::make_tuple(3, kT0 + 2 * kSecond, "task.created", "manager", "t-1", "g-1",
                            version >= 8 ? kEventTask : 0,
                            version >= 8 ? std::string("\x0a\x03t-1", 5) : std::string()));
  // The payload has no reader in the Store's API yet.
  auto payload = s.DbForTests()->Prepare("SELECT payload FROM events WHERE seq = 1");
  ASSERT_TRUE(payload.ok() && *payload->Step());
  EXPECT_EQ(payload->ColumnText(0), R"({"pid":4242,"version":"0.1.0"})");
  EXPECT_EQ(s.LastEventSeq(), 3);
}

void ExpectAgents(Store& s) {
  absl::StatusOr<std::vector<AgentRow>> agents = s.LoadAgents();
  ASSERT_TRUE(agents.ok()) << agents.status();
  auto tie = [](const AgentRow& a) {
    return std::make_tuple(a.id, a.role, a.want_running, a.state, a.state_detail, a.pid,
                           a.pid_start_ticks, a.start_time_us, a.restarts, a.has_last_exit,
                           a.last_exit_code, a.last_exit_signal, a.last_exit_time_us,
                           a.last_exit_reason, a.created_time_us);
  };
  ASSERT_EQ(agents->size(), 2u);
  EXPECT_EQ(tie((*agents)[0]),
            std::make_tuple("ceo", "ceo", true, "idle", "", 4243, uint64_t{987654321},
                            kT0 + kSecond, 0, false, 0, 0, 0, "", kT0));
  EXPECT_EQ(tie((*agents)[1]),
            std::make_tuple("coder-1", "coder", false, "failed", "crash loop: 5 exits in 1m", 0,
                            uint64_t{0}, 0, 5, true, 0, 9, kT0 + 3 * kSecond,
                            "killed by signal 9 (Killed)", kT0 + kSecond));
}

void ExpectConsents(Store& s) {
  absl::StatusOr<std::vector<ConsentRow>> consents = s.LoadConsents();
  ASSERT_TRUE(consents.ok()) << consents.status();
  auto tie = [](const ConsentRow& c) {
    return std::make_tuple(c.id, c.agent_id, c.request_key, c.status, c.request);
  };
  ASSERT_EQ(consents->size(), 2u);
  EXPECT_EQ(tie((*consents)[0]),
            std::make_tuple("consent-1", "coder-1", "k-net", 1, X("0a09636f6e73656e742d3100ff")));
  EXPECT_EQ(tie((*consents)[1]),
            std::make_tuple("consent-2", "coder-1", "", 2, X("0a09636f6e73656e742d32")));
}

void ExpectTasksDeliveriesUsageAndBudgets(Store& s) {
  absl::StatusOr<std::vector<TaskRow>> tasks = s.LoadTasks();
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  auto tie_task = [](const TaskRow& t) {
    return std::make_tuple(t.id, t.goal_id, t.parent_id, t.status, t.assignee, t.create_us, t.body);
  };
  ASSERT_EQ(tasks->size(), 2u);
  EXPECT_EQ(tie_task((*tasks)[0]),
            std::make_tuple("t-1", "g-1", "", 2, "coder-1", kT0, X("0a03742d311203672d31")));
  EXPECT_EQ(tie_task((*tasks)[1]),
            std::make_tuple("t-2", "g-1", "t-1", 1, "", kT0 + 1, X("00ff00")));

  absl::StatusOr<std::vector<DeliveryRow>> deliveries = s.LoadDeliveries();
  ASSERT_TRUE(deliveries.ok()) << deliveries.status();
  ASSERT_EQ(deliveries->size(), 2u);
  EXPECT_EQ(std::make_tuple((*deliveries)[0].seq, (*deliveries)[0].agent_id, (*deliveries)[0].body),
            std::make_tuple(5, "coder-1", X("0801")));
  EXPECT_EQ(std::make_tuple((*deliveries)[1].seq, (*deliveries)[1].agent_id, (*deliveries)[1].body),
            std::make_tuple(7, "manager", X("080200")));

  absl::StatusOr<std::vector<UsageRow>> usage = s.QueryUsage(UsageQuery());
  ASSERT_TRUE(usage.ok()) << usage.status();
  auto tie_usage = [](const UsageRow& u) {
    return std::make_tuple(u.id, u.time_us, u.agent_id, u.task_id, u.goal_id, u.role, u.provider,
                           u.model, u.prompt_tokens, u.completion_tokens, u.cost_usd, u.latency_us,
                           u.reservation_id);
  };
  ASSERT_EQ(usage->size(), 2u);
  EXPECT_EQ(tie_usage((*usage)[0]),
            std::make_tuple("u-1", kT0, "coder-1", "t-1", "g-1", "coder", "openai", "gpt-4o", 1200,
                            300, 0.0125, 850000, "r-1"));
  EXPECT_EQ(tie_usage((*usage)[1]),
            std::make_tuple("u-2", kT0 + 5, "manager", "", "g-1", "manager", "anthropic",
                            "claude-sonnet", 100, 50, 0.5, 0, ""));
  absl::StatusOr<std::vector<UsageRow>> sums = s.SumUsageByRole();
  ASSERT_TRUE(sums.ok()) << sums.status();
  std::map<std::string, std::pair<int64_t, double>> by_role;
  for (const UsageRow& u : *sums) by_role[u.role] = {u.prompt_tokens, u.cost_usd};
  EXPECT_EQ(by_role, (std::map<std::string, std::pair<int64_t, double>>{{"coder", {1500, 0.0125}},
                                                                        {"manager", {150, 0.5}}}));
  absl::StatusOr<UsageRow> goal = s.SumUsageOfGoal("g-1");
  ASSERT_TRUE(goal.ok()) << goal.status();
  EXPECT_EQ(goal->prompt_tokens, 1650);
  EXPECT_DOUBLE_EQ(goal->cost_usd, 0.5125);
  EXPECT_EQ(s.SumUsageOfGoal("g-2")->prompt_tokens, 0);

  absl::StatusOr<std::vector<BudgetRow>> budgets = s.LoadBudgets();
  ASSERT_TRUE(budgets.ok()) << budgets.status();
  ASSERT_EQ(budgets->size(), 1u);
  const BudgetRow& b = (*budgets)[0];
  EXPECT_EQ(
      std::make_tuple(b.scope, b.scope_id, b.max_tokens, b.max_cost_usd, b.update_us, b.updated_by),
      std::make_tuple(2, "g-1", 100000, 5.0, kT0, "human:local"));
  EXPECT_TRUE(s.LoadBudgets(/*except_scope=*/2)->empty());
  absl::StatusOr<std::optional<BudgetRow>> one = s.LoadBudget(2, "g-1");
  ASSERT_TRUE(one.ok() && one->has_value()) << one.status();
  EXPECT_EQ((*one)->max_tokens, 100000);
  EXPECT_FALSE(s.LoadBudget(1, "g-1")->has_value());
}

void ExpectMessages(Store& s) {
  absl::StatusOr<std::vector<MessageRow>> messages = s.LoadMessages();
  ASSERT_TRUE(messages.ok()) << messages.status();
  auto tie = [](const MessageRow& m) {
    return std::make_tuple(m.seq, m.id, m.request_key, m.body);
  };
  ASSERT_EQ(messages->size(), 2u);
  EXPECT_EQ(tie((*messages)[0]), std::make_tuple(1, "m-1", "rk-1", X("0a036d2d31")));
  EXPECT_EQ(tie((*messages)[1]), std::make_tuple(2, "m-2", "", X("0a036d2d32ff")));
}

void ExpectPlans(Store& s) {
  absl::StatusOr<std::vector<PlanRow>> plans = s.LoadPlans();
  ASSERT_TRUE(plans.ok()) << plans.status();
  ASSERT_EQ(plans->size(), 1u);
  const PlanRow& p = (*plans)[0];
  EXPECT_EQ(std::make_tuple(p.id, p.goal_id, p.task_id, p.status, p.create_us, p.body),
            std::make_tuple("p-1", "g-1", "t-1", 2, kT0, X("0a03702d31")));
}

void ExpectAudit(Store& s) {
  absl::StatusOr<std::vector<AuditRow>> audit = s.QueryAudit(0, 0, "", 100);
  ASSERT_TRUE(audit.ok()) << audit.status();
  ASSERT_EQ(audit->size(), 3u);
  auto tie = [](const AuditRow& a) {
    return std::make_tuple(a.seq, a.time_us, a.actor_kind, a.actor_id, a.action, a.target,
                           a.goal_id, a.task_id, a.details_json);
  };
  EXPECT_EQ(tie((*audit)[0]),
            std::make_tuple(1, kT0, 1, "human:local", "goal.submit", "g-1", "g-1", "", "{}"));
  EXPECT_EQ(tie((*audit)[1]), std::make_tuple(2, kT0 + kSecond, 2, "coder-1", "fs.write",
                                              "hello.txt", "g-1", "t-1", R"({"bytes":"12"})"));
  EXPECT_EQ(tie((*audit)[2]),
            std::make_tuple(3, kT0 + 2 * kSecond, 1, "human:local", "consent.approve", "consent-1",
                            "g-1", "t-1", R"({"kind":"network","reason":"once"})"));
  // Written before the chain was keyed: plain SHA-256, each linked to the one before.
  std::string prev;
  for (const AuditRow& a : *audit) {
    EXPECT_EQ(a.prev_hash, prev) << "entry " << a.seq;
    EXPECT_EQ(a.hash, AuditLog::Hash(a, "")) << "entry " << a.seq;
    prev = a.hash;
  }
}

void ExpectTranscripts(Store& s) {
  absl::StatusOr<std::vector<TranscriptRow>> rows = s.QueryTranscript("t-1", 0, 100, 1 << 20);
  ASSERT_TRUE(rows.ok()) << rows.status();
  auto tie = [](const TranscriptRow& r) {
    return std::make_tuple(r.seq, r.time_us, r.task_id, r.goal_id, r.entry);
  };
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ(tie((*rows)[0]),
            std::make_tuple(1, kT0 + kSecond, "t-1", "g-1", X("120768656c6c6f2031")));
  EXPECT_EQ(tie((*rows)[1]),
            std::make_tuple(2, kT0 + 2 * kSecond, "t-1", "g-1", X("1a0908031205646f6e6521ff")));
  EXPECT_EQ(*s.DbForTests()->QueryInt("SELECT pinned FROM transcript WHERE seq = 2"), 1);
  absl::StatusOr<TranscriptDropped> dropped = s.TranscriptDroppedOf("t-1");
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(std::make_pair(dropped->entries, dropped->bytes),
            std::make_pair(int64_t{3}, int64_t{120}));
}

class MigrationTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(MigrationTest, UpgradesToTheLatestSchemaAndKeepsEveryRow) {
  const int64_t version = GetParam();
  testing::TempDir dir;
  std::string path = dir.Join("agentd.db");
  ASSERT_NO_FATAL_FAILURE(BuildFixture(version, path));
  {
    auto db = sqlite::Db::Open(path, /*create=*/false);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_EQ(*(*db)->QueryInt("PRAGMA user_version"), version) << FixturePath(version);
  }

  auto store = Store::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  Store& s = **store;
  EXPECT_EQ(s.schema_version(), Store::LatestSchemaVersion());
  EXPECT_EQ(*s.DbForTests()->QueryInt("PRAGMA user_version"), Store::LatestSchemaVersion());
  // Exactly the schema of a database made at the latest version, to the text SQLite keeps.
  testing::TempDir fresh_dir;
  auto fresh = Store::Open(fresh_dir.Join("agentd.db"));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(Schema(s.DbForTests()), Schema((*fresh)->DbForTests()));
  // Migration 1 did not run again.
  EXPECT_EQ(*s.DbForTests()->QueryInt("SELECT COUNT(*) FROM meta"), 1);

  ExpectEvents(s, version);
  if (version >= 2) {
    ExpectAgents(s);
  } else {
    EXPECT_TRUE(s.LoadAgents()->empty());
  }
  if (version >= 3) {
    ExpectConsents(s);
  } else {
    EXPECT_TRUE(s.LoadConsents()->empty());
  }
  if (version >= 4) {
    ExpectTasksDeliveriesUsageAndBudgets(s);
  } else {
    EXPECT_TRUE(s.LoadTasks()->empty());
    EXPECT_TRUE(s.LoadDeliveries()->empty());
    EXPECT_TRUE(s.QueryUsage(UsageQuery())->empty());
    EXPECT_TRUE(s.LoadBudgets()->empty());
  }
  if (version >= 5) {
    ExpectMessages(s);
  } else {
    EXPECT_TRUE(s.LoadMessages()->empty());
  }
  if (version >= 6) {
    ExpectPlans(s);
  } else {
    EXPECT_TRUE(s.LoadPlans()->empty());
  }
  if (version >= 7) {
    ExpectAudit(s);
  } else {
    EXPECT_TRUE(s.QueryAudit(0, 0, "", 100)->empty());
  }
  if (version >= 9) {
    ExpectTranscripts(s);
  } else {
    EXPECT_TRUE(s.QueryTranscript("t-1", 0, 100, 1 << 20)->empty());
  }

  // The upgraded database takes writes, and its sequences go on where they were.
  absl::Time now = absl::FromUnixMicros(kT0 + 10 * kSecond);
  EXPECT_EQ(*s.AppendEvent(now, "daemon.started", "{}"), 4);
  absl::StatusOr<int64_t> delivery = s.AddDelivery("coder-1", "x");
  ASSERT_TRUE(delivery.ok()) << delivery.status();
  // Deliveries 8 and 9 of the fixtures were acknowledged: their seqs are not reused.
  EXPECT_EQ(*delivery, version >= 4 ? 10 : 1);
  absl::StatusOr<int64_t> message = s.AddMessage("m-3", "", "body", now, "{}", "", "", "");
  ASSERT_TRUE(message.ok()) << message.status();
  EXPECT_EQ(*message, version >= 5 ? 3 : 1);
  TaskRow task{"t-3", "g-2", "", 1, "", kT0 + 10 * kSecond, "task"};
  absl::StatusOr<int64_t> seq = s.SaveTask(task, now, "task.created", "{}");
  ASSERT_TRUE(seq.ok()) << seq.status();
  absl::StatusOr<std::vector<EventRow>> last = s.QueryEvents(*seq - 1, 1);
  ASSERT_TRUE(last.ok() && last->size() == 1u);
  EXPECT_EQ((*last)[0].resource_type, kEventTask);
  EXPECT_EQ((*last)[0].resource, "task");
  // Goals are found by their submission's request id from migration 11 on: one saved
  // now is.
  absl::StatusOr<std::string> none = s.GoalOfRequest("retry-1");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, "");
  TaskRow goal{"g-3", "g-3", "", 2, "", kT0 + 11 * kSecond, "goal", "retry-1"};
  ASSERT_TRUE(s.SaveTask(goal, now, "goal.submitted", "{}").ok());
  absl::StatusOr<std::string> found = s.GoalOfRequest("retry-1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, "g-3");
}

INSTANTIATE_TEST_SUITE_P(EveryPastVersion, MigrationTest,
                         ::testing::Range<int64_t>(1, Store::LatestSchemaVersion()),
                         [](const ::testing::TestParamInfo<int64_t>& param) {
                           return absl::StrCat("v", param.param);
                         });

// No migration today can fail on the rows of a database (they create tables and add a
// column with a default), but one fails on an object that is in the way: here a table of
// someone's own named like one that migration 4 creates. The upgrade from version 1 then
// fails in migration 4, after migrations 2 and 3 and half of 4 have run; all of it must
// be undone, so that the agentd that wrote the file still opens it.
TEST(MigrationFailureTest, AFailedUpgradeUndoesEveryMigrationAndLeavesTheFileUntouched) {
  for (bool wal : {true, false}) {
    SCOPED_TRACE(wal ? "WAL" : "rollback journal");
    testing::TempDir dir;
    std::string path = dir.Join("agentd.db");
    ASSERT_NO_FATAL_FAILURE(BuildFixture(1, path, wal));
    {
      auto db = sqlite::Db::Open(path, /*create=*/false);
      ASSERT_TRUE(db.ok()) << db.status();
      ASSERT_TRUE(
          (*db)->Exec("CREATE TABLE usage (note TEXT); INSERT INTO usage VALUES ('mine');").ok());
    }
    std::string before = testing::ReadFileOrEmpty(path);
    ASSERT_FALSE(before.empty());

    auto store = Store::Open(path);
    ASSERT_FALSE(store.ok());
    std::string message(store.status().message());
    EXPECT_THAT(message,
                HasSubstr("upgrading the schema from version 1 to " +
                          std::to_string(Store::LatestSchemaVersion()) +
                          " failed in migration 4 (tasks, deliveries, usage and budgets)"));
    EXPECT_THAT(message, HasSubstr("table usage already exists"));
    EXPECT_THAT(message, HasSubstr("the database is still at version 1"));
    EXPECT_THAT(message, HasSubstr(path));
    // Byte for byte, header included; and no journal is left to replay.
    EXPECT_TRUE(testing::ReadFileOrEmpty(path) == before) << "agentd.db was changed";
    EXPECT_TRUE(testing::ReadFileOrEmpty(path + "-wal").empty());
    EXPECT_TRUE(testing::ReadFileOrEmpty(path + "-journal").empty());
    {
      auto db = sqlite::Db::Open(path, /*create=*/false);
      ASSERT_TRUE(db.ok()) << db.status();
      EXPECT_EQ(*(*db)->QueryInt("PRAGMA user_version"), 1);
      EXPECT_EQ(Tables(db->get()),
                (std::vector<std::string>{"events", "meta", "sqlite_sequence", "usage"}));
      // Its owner moves the table aside; the upgrade then goes through.
      ASSERT_TRUE((*db)->Exec("ALTER TABLE usage RENAME TO my_usage").ok());
    }
    auto again = Store::Open(path);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ((*again)->schema_version(), Store::LatestSchemaVersion());
    EXPECT_EQ(*(*again)->DbForTests()->QueryInt("SELECT COUNT(*) FROM my_usage"), 1);
    ExpectEvents(**again, 1);  // built from v1.sql
  }
}

}  // namespace
}  // namespace agentd
