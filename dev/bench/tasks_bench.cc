// dev/bench/tasks_bench: durable task transitions per second — the Store writing a task
// and its event in one transaction, as the TaskBoard does for every transition — beside
// raw SQLite inserts of rows of the same size, one per transaction, with the same
// pragmas (WAL, synchronous=NORMAL), in the same run and the same directory.
//
//   tasks_bench [--quick]
#include <cstdio>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/tasks.pb.h"
#include "common/sqlite.h"
#include "manager/store/store.h"
#include "tests/support/process.h"

namespace agentd::bench {
namespace {

int Main(int argc, char** argv) {
  int n = 20000;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick") n = 3000;
  }
  testing::TempDir dir;
  // A task as a transition stores it: a few hundred bytes.
  v1::Task task;
  task.set_id("t-123");
  task.set_goal_id("g-1");
  task.set_parent_id("t-100");
  task.set_title("Write the HTTP handler tests");
  task.set_role("coder");
  task.set_assignee("coder-1");
  task.mutable_input()->set_instructions(std::string(200, 'x'));
  task.mutable_workspace()->set_path("/var/lib/agentd-workspaces/g-1");
  const std::string body = task.SerializeAsString();
  const std::string payload = R"({"status":"running","role":"coder","assignee":"coder-1"})";

  // Baseline: raw SQLite, one insert per transaction.
  double raw_per_s = 0;
  {
    auto db = *sqlite::Db::Open(dir.Join("raw.db"), true);
    (void)db->Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    (void)db->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    auto st = *db->Prepare("INSERT INTO t(body) VALUES (?1)");
    absl::Time t0 = absl::Now();
    for (int i = 0; i < n; ++i) {
      auto tx = *sqlite::Transaction::Begin(db.get());
      st.Reset();
      st.BindBlob(1, body);
      if (!st.Run().ok() || !tx.Commit().ok()) return 1;
    }
    raw_per_s = n / absl::ToDoubleSeconds(absl::Now() - t0);
  }
  // agentd: Store::SaveTask — the task row upserted and its event appended, one
  // transaction, as every transition.
  double ours_per_s = 0;
  {
    auto store = *Store::Open(dir.Join("agentd.db"));
    TaskRow row{"t-123", "g-1", "t-100", 4, "coder-1", 0, body};
    absl::Time t0 = absl::Now();
    for (int i = 0; i < n; ++i) {
      row.status = 2 + i % 5;
      if (!store->SaveTask(row, absl::Now(), "task.running", payload).ok()) return 1;
    }
    ours_per_s = n / absl::ToDoubleSeconds(absl::Now() - t0);
  }
  std::printf("tasks_bench (%d cores), %d transitions\n\n",
              static_cast<int>(std::thread::hardware_concurrency()), n);
  std::printf("raw SQLite insert, one per transaction   %8.0f /s\n", raw_per_s);
  std::printf(
      "durable task transition (row + event)    %8.0f /s   ratio %.2f   (budget >= 10,000 /s)\n",
      ours_per_s, ours_per_s / raw_per_s);
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) { return agentd::bench::Main(argc, argv); }
