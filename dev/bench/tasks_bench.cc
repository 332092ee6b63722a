// dev/bench/tasks_bench: durable task transitions per second — the Store writing a task
// and its event in one transaction, as the TaskBoard does for every transition — beside
// raw SQLite inserts of rows of the same size, one per transaction, with the same
// pragmas (WAL, synchronous=NORMAL), in the same run and the same directory.
//
// Then the same as the store grows: a store holding N finished tasks (goals of ten
// tasks) and 10·N events, at two or three sizes, reporting at each
//   transitions/s     SaveTask on the grown store (beside the empty store's rate)
//   start-up          agentd started on that state directory, to READY=1 (sd_notify)
//   recovery          the same after agentd was killed with SIGKILL
//   RSS               agentd's, once ready
//   catch-up          WatchEvents from seq 0 until every stored event has arrived, events/s
//
//   tasks_bench [--quick]       sizes 10,000 and 100,000 tasks (1,000 and 10,000 quick)
//   tasks_bench --fill DB N     only writes such a store of N tasks to DB, for profiling
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/tasks.pb.h"
#include "common/sqlite.h"
#include "dev/bench/bench_util.h"
#include "grpcpp/create_channel.h"
#include "manager/store/store.h"
#include "tests/support/daemon.h"
#include "tests/support/process.h"

namespace agentd::bench {
namespace {

using testing::Subprocess;
using testing::TempDir;

// A task as a transition stores it: a few hundred bytes.
v1::Task SampleTask(const std::string& id, const std::string& goal, const std::string& parent) {
  v1::Task task;
  task.set_id(id);
  task.set_goal_id(goal);
  task.set_parent_id(parent);
  task.set_title("Write the HTTP handler tests");
  task.set_role("coder");
  task.set_assignee("coder-1");
  task.mutable_input()->set_instructions(std::string(200, 'x'));
  task.mutable_workspace()->set_path("/var/lib/agentd-workspaces/" + goal);
  return task;
}

constexpr char kPayload[] = R"({"status":"running","role":"coder","assignee":"coder-1"})";

// SaveTask `n` times on `store`; transitions per second.
double Transitions(Store* store, int n, const std::string& id) {
  const std::string body = SampleTask(id, "g-bench", "").SerializeAsString();
  TaskRow row{id, "g-bench", "", 4, "coder-1", 0, body};
  absl::Time t0 = absl::Now();
  for (int i = 0; i < n; ++i) {
    row.status = 2 + i % 5;
    if (!store->SaveTask(row, absl::Now(), "task.running", kPayload).ok()) std::exit(1);
  }
  return n / absl::ToDoubleSeconds(absl::Now() - t0);
}

// Fills `path` with `tasks` completed tasks in goals of ten (the first of each the goal's
// root), each saved through ten transitions: 10·tasks events. Batches of 1,000 changes a
// transaction keep the fill fast; the rows are what a run of that length leaves behind.
void Fill(const std::string& path, int tasks) {
  auto store = *Store::Open(path);
  std::vector<Store::TaskChange> batch;
  static constexpr v1::TaskStatus kStatuses[] = {
      v1::TASK_STATUS_PENDING,  v1::TASK_STATUS_READY,   v1::TASK_STATUS_ASSIGNED,
      v1::TASK_STATUS_RUNNING,  v1::TASK_STATUS_BLOCKED, v1::TASK_STATUS_RUNNING,
      v1::TASK_STATUS_BLOCKED,  v1::TASK_STATUS_RUNNING, v1::TASK_STATUS_BLOCKED,
      v1::TASK_STATUS_COMPLETED};
  for (int t = 0; t < tasks; ++t) {
    std::string goal = absl::StrCat("g-", t / 10 + 1);
    std::string id = t % 10 == 0 ? goal : absl::StrCat("t-", t + 1);
    v1::Task task = SampleTask(id, goal, t % 10 == 0 ? "" : goal);
    for (v1::TaskStatus status : kStatuses) {
      task.set_status(status);
      batch.push_back(
          {TaskRow{id, goal, task.parent_id(), status, "coder-1", 0, task.SerializeAsString()},
           "task.running", kPayload, ""});
      if (batch.size() == 1000) {
        if (!store->SaveTasks(batch, absl::Now()).ok()) std::exit(1);
        batch.clear();
      }
    }
  }
  if (!batch.empty() && !store->SaveTasks(batch, absl::Now()).ok()) std::exit(1);
}

// agentd on `state`, started and timed to READY=1 over a NOTIFY_SOCKET the bench binds.
struct Started {
  std::unique_ptr<Subprocess> process;
  double ms = -1;
};
Started StartAgentd(const TempDir& dir, const std::string& state, const std::string& tag) {
  NotifySocket notify(dir.Join(tag + ".notify"));
  Started s;
  absl::Time t0 = absl::Now();
  s.process = std::make_unique<Subprocess>(
      std::vector<std::string>{testing::AgentdBinary(), "--state-dir", state, "--socket",
                               dir.Join("agentd.sock"), "--http", "", "--config",
                               dir.Join("agentd.yaml")},
      dir.Join(tag + ".out"), dir.Join(tag + ".err"), std::vector<std::string>{notify.Env()});
  s.ms = absl::ToDoubleMilliseconds(notify.ReadyAfter(t0, absl::Minutes(5)));
  if (s.ms < 0) {
    std::fprintf(stderr, "tasks_bench: agentd did not become ready:\n%s\n",
                 testing::ReadFileOrEmpty(dir.Join(tag + ".err")).c_str());
    std::exit(1);
  }
  return s;
}

// WatchEvents from seq 0 until `total` events have arrived; events per second.
double CatchUp(const std::string& socket, int64_t total) {
  auto stub = v1::EventService::NewStub(
      grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::WatchEventsRequest req;
  req.set_after_seq(0);
  absl::Time t0 = absl::Now();
  auto reader = stub->WatchEvents(&ctx, req);
  v1::WatchEventsResponse ev;
  int64_t seen = 0;
  while (seen < total && reader->Read(&ev)) ++seen;
  double rate = static_cast<double>(seen) / absl::ToDoubleSeconds(absl::Now() - t0);
  ctx.TryCancel();
  (void)reader->Finish();
  if (seen < total) {
    std::fprintf(stderr, "tasks_bench: WatchEvents ended after %lld of %lld events\n",
                 static_cast<long long>(seen), static_cast<long long>(total));
    std::exit(1);
  }
  return rate;
}

void Grown(int tasks, double empty_rate, int transitions) {
  TempDir dir;
  std::string state = dir.Join("state");
  mkdir(state.c_str(), 0700);
  std::string db = state + "/agentd.db";
  absl::Time f0 = absl::Now();
  Fill(db, tasks);
  double fill_s = absl::ToDoubleSeconds(absl::Now() - f0);
  int64_t events = 0;
  {
    auto store = *Store::Open(db);
    events = store->LastEventSeq();
    double rate = Transitions(store.get(), transitions, "t-new");
    std::printf("%7d tasks, %8lld events   transitions %8.0f /s (empty store %.0f /s, ratio %.2f)",
                tasks, static_cast<long long>(events), rate, empty_rate, rate / empty_rate);
    Report({.bench = "tasks_bench",
            .name = absl::StrCat("transitions, store of ", tasks, " tasks"),
            .value = rate,
            .unit = "/s",
            .baseline = "empty store",
            .baseline_value = empty_rate,
            .budget = Budget::ValueAtLeast(10000)});
    events = store->LastEventSeq();
  }
  testing::WriteFile(dir.Join("agentd.yaml"), "agents: []\n");
  Started first = StartAgentd(dir, state, "start");
  int64_t rss = RssKiB(first.process->pid());
  double catchup = CatchUp(dir.Join("agentd.sock"), events);
  first.process->Signal(SIGKILL);
  first.process->WaitExit(absl::Seconds(30));
  Started again = StartAgentd(dir, state, "recover");
  again.process->Signal(SIGTERM);
  again.process->WaitExit(absl::Seconds(60));
  std::printf(
      "\n                             start-up %.0f ms, after SIGKILL %.0f ms, RSS %.1f MB; "
      "WatchEvents from 0: %.0f events/s (filled in %.1f s)\n",
      first.ms, again.ms, rss / 1024.0, catchup, fill_s);
  std::string size = absl::StrCat(tasks, " tasks");
  Report({.bench = "tasks_bench",
          .name = absl::StrCat("agentd start to READY=1, ", size),
          .value = first.ms,
          .unit = "ms"});
  Report({.bench = "tasks_bench",
          .name = absl::StrCat("agentd recovery after SIGKILL, ", size),
          .value = again.ms,
          .unit = "ms"});
  Report({.bench = "tasks_bench",
          .name = absl::StrCat("agentd RSS once ready, ", size),
          .value = rss / 1024.0,
          .unit = "MB"});
  Report({.bench = "tasks_bench",
          .name = absl::StrCat("WatchEvents catch-up from 0, ", size),
          .value = catchup,
          .unit = "events/s",
          .note = absl::StrCat(events, " events")});
}

int Main(int argc, char** argv) {
  int n = 20000;
  std::vector<int> sizes = {10'000, 100'000};
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--fill" && i + 2 < argc) {
      // A grown store for profiling agentd by hand (heaptrack, perf); no measurement.
      Fill(argv[i + 1], std::atoi(argv[i + 2]));
      return 0;
    }
    if (std::string(argv[i]) == "--quick") {
      n = 3000;
      sizes = {1'000, 10'000};
    }
  }
  TempDir dir;
  const std::string body = SampleTask("t-123", "g-1", "t-100").SerializeAsString();

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
    ours_per_s = Transitions(store.get(), n, "t-123");
  }
  std::printf("tasks_bench (%d cores), %d transitions\n\n",
              static_cast<int>(std::thread::hardware_concurrency()), n);
  std::printf("raw SQLite insert, one per transaction   %8.0f /s\n", raw_per_s);
  std::printf(
      "durable task transition (row + event)    %8.0f /s   ratio %.2f   (budget >= 10,000 /s)\n\n",
      ours_per_s, ours_per_s / raw_per_s);
  Report({.bench = "tasks_bench",
          .name = "durable task transitions",
          .value = ours_per_s,
          .unit = "/s",
          .baseline = "raw SQLite insert",
          .baseline_value = raw_per_s,
          .budget = Budget::ValueAtLeast(10000)});
  std::printf("a grown store (goals of ten finished tasks, ten events each):\n");
  for (int size : sizes) Grown(size, ours_per_s, n / 4);
  return 0;
}

}  // namespace
}  // namespace agentd::bench

int main(int argc, char** argv) { return agentd::bench::Main(argc, argv); }
