// Store: agentd.db, the daemon's single source of truth, and the only code that speaks
// SQL to it.
//
// Open() creates the file if needed, refuses a database whose schema is newer than this
// binary knows (leaving the file byte-for-byte untouched), applies the pending
// migrations, then sets WAL with synchronous=NORMAL. The pending migrations run in one
// BEGIN IMMEDIATE transaction together with the PRAGMA user_version bump: an upgrade is
// all or nothing, and one that fails leaves the file byte-for-byte as it was (still
// readable by the agentd that wrote it). Re-opening an up-to-date database changes
// nothing. tests/fixtures/schema/ holds a database of every past version;
// tests/unit/migration_test.cc upgrades each.
//
// Every state change commits together with its `events` row (monotonic `seq`), so the
// change feed and the state never disagree.
//
// Thread-safety: a Store is owned by the core loop thread; call it from that thread only.
#ifndef AGENTD_MANAGER_STORE_STORE_H_
#define AGENTD_MANAGER_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/sqlite.h"

namespace agentd {

// One supervised agent as stored: what the supervisor needs to survive a daemon restart.
struct AgentRow {
  std::string id, role;
  bool want_running = false;
  std::string state;  // AgentState name without the prefix, lower case ("running")
  std::string state_detail;
  int64_t pid = 0;
  uint64_t pid_start_ticks = 0;
  int64_t start_time_us = 0;
  int64_t restarts = 0;
  bool has_last_exit = false;
  int64_t last_exit_code = 0, last_exit_signal = 0, last_exit_time_us = 0;
  std::string last_exit_reason;
  int64_t created_time_us = 0;
};

// A consent request as stored: the request itself is opaque here (a serialized message).
struct ConsentRow {
  std::string id, agent_id, request_key;
  int64_t status = 0;
  std::string request;
  // The task and goal the request is for: named by its events (not kept in the row).
  std::string task_id, goal_id;
};

// A task as stored: the indexed fields, and the whole v1.Task serialized in `body`.
struct TaskRow {
  std::string id, goal_id, parent_id;
  int64_t status = 0;
  std::string assignee;
  int64_t create_us = 0;
  std::string body;
  // A goal's SubmitGoalRequest.request_id, when it had one: saved with the goal, in the
  // same transaction, for GoalOfRequest. Not read back into rows.
  std::string request_id = {};
};

// A delivery to an agent's Connect stream not yet acknowledged (a v1.ConnectResponse
// without its seq, serialized).
struct DeliveryRow {
  int64_t seq = 0;
  std::string agent_id, body;
};

// One LLM call as the ledger stores it.
struct UsageRow {
  std::string id;
  int64_t time_us = 0;
  std::string agent_id, task_id, goal_id, role, provider, model;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double cost_usd = 0;
  int64_t latency_us = 0;
  std::string reservation_id;
};

// Which usage rows a query covers: [start_us, end_us) and equality on non-empty fields.
struct UsageQuery {
  int64_t start_us = 0, end_us = INT64_MAX;
  std::string goal_id, task_id, agent_id, role, provider, model;
};

// A budget's limits (v1.BudgetScope number, scope id).
struct BudgetRow {
  int64_t scope = 0;
  std::string scope_id;
  int64_t max_tokens = 0;
  double max_cost_usd = 0;
  int64_t update_us = 0;
  std::string updated_by;
};

// A message on the bus: the v1.Envelope serialized in `body`.
struct MessageRow {
  int64_t seq = 0;
  std::string id, request_key, body;
};

// A plan: the indexed fields, and the whole v1.Plan serialized in `body`.
struct PlanRow {
  std::string id, goal_id, task_id;
  int64_t status = 0;
  int64_t create_us = 0;
  std::string body;
};

// Which plans LoadPlans reads: every condition given must hold (empty: any).
struct PlanQuery {
  std::string goal_id, task_id;
  std::vector<int64_t> statuses;
  bool newest_first = false;
  int64_t offset = 0;
  int64_t limit = -1;  // negative: no limit
};

// One audit entry as stored; details are a JSON object of strings.
struct AuditRow {
  int64_t seq = 0, time_us = 0, actor_kind = 0;
  std::string actor_id, action, target, goal_id, task_id, details_json, prev_hash, hash;
};

// An audit entry that goes with a change, in the change's transaction: its row (seq and
// hashes computed by AuditLog::Prepare) and the serialized v1.AuditEntry its
// "audit.appended" event carries.
struct AuditRecord {
  AuditRow row;
  std::string entry_proto;
};

// What an event row carries beside its ids: the changed resource, serialized, by the
// number of its field in v1.Event's payload.
constexpr int kEventAgent = 8, kEventTask = 9, kEventPlan = 10, kEventEnvelope = 11,
              kEventUsage = 12, kEventConsent = 13, kEventAudit = 14, kEventBudget = 15;

// One transcript entry as stored: `entry` is a serialized v1.TranscriptEntry (seq and
// time are the row's).
struct TranscriptRow {
  int64_t seq = 0, time_us = 0;
  std::string task_id, goal_id;
  std::string entry;
  bool pinned = false;  // never dropped by retention (agentd's own entries: outcomes, consents)
};

// What retention removed of one task's transcript.
struct TranscriptDropped {
  int64_t entries = 0, bytes = 0;
};

// One event as stored.
struct EventRow {
  int64_t seq = 0, time_us = 0;
  std::string kind, agent_id, task_id, goal_id;
  int64_t resource_type = 0;
  std::string resource;
};

class Store {
 public:
  // The schema version this binary writes.
  static int64_t LatestSchemaVersion();

  // Errors: FailedPrecondition for a newer schema (message says what to do);
  // Unavailable/DataLoss/Internal from SQLite, naming the file.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);

  int64_t schema_version() const { return schema_version_; }
  const std::string& path() const { return db_->path(); }

  // Appends an event of `kind` (e.g. "daemon.started") with a JSON `payload`; returns its seq.
  // With `audit`, its entry goes in the same transaction (synced, as AppendAudit).
  absl::StatusOr<int64_t> AppendEvent(absl::Time time, absl::string_view kind,
                                      absl::string_view payload_json,
                                      absl::string_view agent_id = "",
                                      absl::string_view task_id = "",
                                      absl::string_view goal_id = "",
                                      const AuditRecord* audit = nullptr);

  // Inserts or updates an agent and appends its event, in one transaction; returns the
  // event's seq. `agent_proto` (a serialized v1.Agent, as it is after the change) is the
  // event's resource.
  absl::StatusOr<int64_t> SaveAgent(const AgentRow& agent, absl::Time time,
                                    absl::string_view event_kind,
                                    absl::string_view event_payload_json,
                                    absl::string_view agent_proto = "");
  absl::StatusOr<std::vector<AgentRow>> LoadAgents();
  // Deletes an agent's row and appends its "agent.deleted" event, in one transaction;
  // returns the event's seq. NOT_FOUND when there is no such row.
  absl::StatusOr<int64_t> DeleteAgent(absl::string_view id, absl::Time time,
                                      absl::string_view event_payload_json,
                                      absl::string_view agent_proto = "");
  // Inserts or updates a consent request and appends its event, in one transaction.
  absl::StatusOr<int64_t> SaveConsent(const ConsentRow& consent, absl::Time time,
                                      absl::string_view event_kind,
                                      absl::string_view event_payload_json);
  absl::StatusOr<std::vector<ConsentRow>> LoadConsents();
  // Inserts or updates a task and appends its event (carrying the task and goal ids) and,
  // with `audit`, the audit entry that records it, in one transaction (synced when there
  // is an audit entry); returns the event's seq.
  absl::StatusOr<int64_t> SaveTask(const TaskRow& task, absl::Time time,
                                   absl::string_view event_kind,
                                   absl::string_view event_payload_json,
                                   absl::string_view agent_id = "",
                                   const AuditRecord* audit = nullptr);
  // The highest goal id number handed out (KeepGoalIdUsed), stored with a goal or not; 0
  // before any.
  absl::StatusOr<int64_t> LastGoalIdUsed();
  absl::Status KeepGoalIdUsed(int64_t n);
  // The goal first saved with `request_id` (TaskRow::request_id); empty when none was.
  absl::StatusOr<std::string> GoalOfRequest(absl::string_view request_id);
  // Every task, oldest first.
  absl::StatusOr<std::vector<TaskRow>> LoadTasks();
  // Calls `fn` with every task, oldest first, one row at a time (memory stays flat
  // however many there are). Rows whose status is one of `without_body` come with an
  // empty body: their columns are enough to index them, and LoadTask reads the rest.
  absl::Status ForEachTask(const std::vector<int64_t>& without_body,
                           const std::function<void(TaskRow)>& fn);
  // One task's row, or nullopt when there is none.
  absl::StatusOr<std::optional<TaskRow>> LoadTask(absl::string_view id);
  // One task's change: its row and its event.
  struct TaskChange {
    TaskRow row;
    std::string event_kind, event_payload_json, agent_id;
  };
  // Saves every change with its event, and `audit` when not null (synced, as SaveTask),
  // in one transaction: all of them or none. Returns the last event's seq.
  absl::StatusOr<int64_t> SaveTasks(const std::vector<TaskChange>& changes, absl::Time time,
                                    const AuditRecord* audit = nullptr);
  // Replaces the bodies of `tasks` and of the pending `deliveries` (by seq), in one
  // transaction with one "workspaces.moved" event carrying `event_payload_json`: the
  // records of workspaces that moved on disk. Rows not there are skipped.
  absl::StatusOr<int64_t> RewriteWorkspaceRecords(const std::vector<TaskRow>& tasks,
                                                  const std::vector<DeliveryRow>& deliveries,
                                                  absl::Time time,
                                                  absl::string_view event_payload_json);
  // Queues a delivery for `agent_id`; returns its seq (increasing, never reused).
  absl::StatusOr<int64_t> AddDelivery(absl::string_view agent_id, absl::string_view body);
  // Forgets the agent's deliveries up to and including `up_to_seq`.
  absl::Status AckDeliveries(absl::string_view agent_id, int64_t up_to_seq);
  absl::StatusOr<std::vector<DeliveryRow>> LoadDeliveries();
  // Records a call with its "usage.recorded" event; false (and nothing written) when a
  // record with the same id exists: a retried report counts once.
  // `record` (a serialized UsageRecord, may be empty) rides on the usage.recorded event.
  absl::StatusOr<bool> AddUsage(const UsageRow& usage, absl::string_view event_payload_json,
                                absl::string_view record = "");
  absl::StatusOr<std::vector<UsageRow>> QueryUsage(const UsageQuery& query);
  // Tokens and cost summed per role: one row each, role/prompt_tokens/cost_usd set
  // (prompt_tokens holds all tokens).
  absl::StatusOr<std::vector<UsageRow>> SumUsageByRole();
  // One goal's calls summed: tokens in prompt_tokens, cost in cost_usd (0 when none).
  absl::StatusOr<UsageRow> SumUsageOfGoal(absl::string_view goal_id);
  // The tokens (prompt and completion) of task `task_id`'s newest call; 0 when it made none.
  absl::StatusOr<int64_t> LastCallTokens(absl::string_view goal_id, absl::string_view task_id);
  // Inserts or updates a budget with its "budget.changed" event (carrying `budget`, the
  // serialized v1.Budget, and `goal_id` for a goal's), in one transaction.
  absl::Status SaveBudget(const BudgetRow& budget, absl::Time time, absl::string_view budget_proto,
                          absl::string_view goal_id);
  // Every stored budget but those of scope `except_scope` (-1: all).
  absl::StatusOr<std::vector<BudgetRow>> LoadBudgets(int64_t except_scope = -1);
  // One budget, or nullopt when none is stored for that scope and id.
  absl::StatusOr<std::optional<BudgetRow>> LoadBudget(int64_t scope, absl::string_view scope_id);
  // Stores a new message with its "message.sent" event; returns its bus seq.
  absl::StatusOr<int64_t> AddMessage(absl::string_view id, absl::string_view request_key,
                                     absl::string_view body, absl::Time time,
                                     absl::string_view event_payload_json,
                                     absl::string_view agent_id, absl::string_view task_id,
                                     absl::string_view goal_id);
  // Replaces a stored message's body (delivery and acknowledgement times).
  absl::Status UpdateMessage(int64_t seq, absl::string_view body);
  absl::StatusOr<std::vector<MessageRow>> LoadMessages();
  // Inserts or updates a plan and appends its event, in one transaction.
  absl::StatusOr<int64_t> SavePlan(const PlanRow& plan, absl::Time time,
                                   absl::string_view event_kind,
                                   absl::string_view event_payload_json,
                                   absl::string_view agent_id = "");
  // The stored plans that match `query`, in the order they were made (or newest first).
  absl::StatusOr<std::vector<PlanRow>> LoadPlans(const PlanQuery& query = {});
  // The largest number in a stored plan's id ("p-12" → 12), 0 when there is none.
  absl::StatusOr<int64_t> LargestPlanNumber();
  // One plan, or nullopt when there is none of that id.
  absl::StatusOr<std::optional<PlanRow>> LoadPlan(absl::string_view id);
  // An approved plan set going: its step tasks, each with its "task.created" event
  // (`tasks`: row and event payload), and the plan itself with its `plan_event_kind`
  // event, in one transaction, so that a crash leaves all of it or none of it. Returns the
  // plan event's seq.
  absl::StatusOr<int64_t> SavePlanWithTasks(
      const PlanRow& plan, absl::Time time, absl::string_view plan_event_kind,
      absl::string_view plan_payload_json,
      const std::vector<std::pair<TaskRow, std::string>>& tasks, absl::string_view agent_id);
  // Appends an audit entry (its seq and hashes computed by the caller) and syncs the
  // commit to disk before returning, whatever synchronous says for the rest: the chain's
  // head, kept outside the database, is written after it and must never be ahead of what
  // a power loss leaves here. AlreadyExists when the seq is taken.
  // With its "audit.appended" event (carrying `entry_proto`, the serialized
  // v1.AuditEntry), in the same transaction.
  absl::Status AppendAudit(const AuditRow& entry, absl::string_view entry_proto = "");
  // The newest audit entry, or nullopt when there is none.
  absl::StatusOr<std::optional<AuditRow>> LastAudit();
  // Entries with after_seq < seq <= to_seq (0: no upper bound), of one goal when
  // goal_id is set, in seq order, at most `limit`.
  absl::StatusOr<std::vector<AuditRow>> QueryAudit(int64_t after_seq, int64_t to_seq,
                                                   absl::string_view goal_id, int64_t limit);
  // Events after `after_seq`, oldest first, at most `limit`.
  absl::StatusOr<std::vector<EventRow>> QueryEvents(int64_t after_seq, int64_t limit);
  // Called with the seq of every event once it is committed (the change feed).
  void SetEventHook(std::function<void(int64_t seq)> hook) { event_hook_ = std::move(hook); }
  // The highest event seq (0 when there are none). Kept in memory: no query.
  int64_t LastEventSeq() const { return last_event_seq_; }

  // Appends transcript entries (their seq is set here, increasing) in one transaction,
  // and keeps each goal's transcripts within `goal_bytes`: the goal's oldest entries that
  // are not pinned are deleted until it fits, and counted per task (TranscriptDroppedOf). Then runs
  // the event hook, so that followers of the change feed look again. The SQL is in
  // store/transcripts.cc.
  absl::Status AppendTranscript(std::vector<TranscriptRow>* rows, int64_t goal_bytes);
  // A task's entries after `after_seq`, oldest first, at most `limit`, and no more after
  // their sizes reach `max_bytes` (at least one).
  absl::StatusOr<std::vector<TranscriptRow>> QueryTranscript(absl::string_view task_id,
                                                             int64_t after_seq, int64_t limit,
                                                             int64_t max_bytes);
  // What retention removed of a task's transcript.
  absl::StatusOr<TranscriptDropped> TranscriptDroppedOf(absl::string_view task_id);

  // The value of `key` in the meta table; when there is none, `value` is stored under it
  // and returned. Written at most once per key: the first value stays for good.
  absl::StatusOr<std::string> MetaOrInsert(absl::string_view key, absl::string_view value);

  // The number of usage records.
  absl::StatusOr<int64_t> CountUsage();
  // The connection itself, for tests that look at what was written (PRAGMAs, rows the API
  // has no reader for) or tamper with it. agentd's code goes through the methods above:
  // all of its SQL is in store.cc and transcripts.cc.
  sqlite::Db* DbForTests() { return db_.get(); }
  // The first error that made the database unfit for writes (disk full, I/O error,
  // corruption); OK when none. From then on every write is refused with it.
  const absl::Status& fatal() const { return db_->first_fatal(); }
  // Called once, on the thread of the failed write, with that first fatal error.
  void SetFatalHook(std::function<void(const absl::Status&)> hook) {
    db_->SetFatalHook(std::move(hook));
  }

 private:
  // Appends the event of the change made in `tx` and commits both; returns its seq.
  absl::StatusOr<int64_t> CommitWithEvent(sqlite::Transaction& tx, absl::Time time,
                                          absl::string_view event_kind,
                                          absl::string_view event_payload_json,
                                          absl::string_view agent_id,
                                          absl::string_view task_id = "",
                                          absl::string_view goal_id = "", int resource_type = 0,
                                          absl::string_view resource = "");
  // Inserts or updates a task's row, inside the caller's transaction.
  absl::Status UpsertTask(const TaskRow& task);
  // Inserts an audit entry's row and, with `event`, its "audit.appended" event, inside the
  // caller's transaction.
  absl::Status InsertAudit(const AuditRow& a, absl::string_view entry_proto, bool event);
  // Runs `change` (one transaction) with synchronous=FULL, so that its commit is on disk
  // when it returns: for changes that carry an audit entry, whose head is kept outside the
  // database and must never be ahead of it.
  template <typename Change>
  auto Durably(Change&& change) -> decltype(change());
  absl::StatusOr<int64_t> InsertEvent(absl::Time time, absl::string_view kind,
                                      absl::string_view payload_json, absl::string_view agent_id,
                                      absl::string_view task_id, absl::string_view goal_id,
                                      int resource_type, absl::string_view resource);
  Store(std::unique_ptr<sqlite::Db> db, int64_t version)
      : db_(std::move(db)), schema_version_(version) {}
  std::unique_ptr<sqlite::Db> db_;
  int64_t schema_version_;
  int64_t last_event_seq_ = 0;
  // Fault injection for crash tests (AGENTD_FAULT_DB_GROWTH_PAGES=<n> caps the file's
  // growth, for full-disk tests): with AGENTD_FAULT_EXIT_AFTER_EVENT=<kind>[#<n>] in its
  // environment, agentd exits (status 86) right after committing the first (the nth)
  // event of that kind, as if killed there. Empty: off.
  std::string exit_after_event_;
  int64_t exit_after_countdown_ = 1;
  // AGENTD_STRICT=1 (tests): an undeclared event kind fails its change.
  bool strict_event_kinds_ = false;
  // Prepared once: appending is on the hot path of every state change.
  std::optional<sqlite::Statement> insert_event_;
  std::optional<sqlite::Statement> upsert_agent_;
  std::optional<sqlite::Statement> upsert_task_;
  std::function<void(int64_t)> event_hook_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_STORE_STORE_H_
