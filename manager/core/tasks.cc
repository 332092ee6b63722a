#include "manager/core/tasks.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/malloc_tuning.h"
#include "common/paths.h"
#include "common/text.h"
#include "manager/core/plan_check.h"
#include "manager/core/proto_time.h"
#include "manager/core/task_status.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

extern char** environ;

namespace agentd {
namespace {

// How long an agent has to stop working on a canceled task.
constexpr absl::Duration kCancelGrace = absl::Seconds(2);

}  // namespace

TaskBoard::TaskBoard(EventLoop* loop, Store* store, Outbox* outbox, Supervisor* supervisor,
                     Ledger* ledger, const ConfigState* config, Services services, Options options)
    : loop_(loop),
      store_(store),
      supervisor_(supervisor),
      ledger_(ledger),
      config_(config),
      options_(std::move(options)),
      outbox_(outbox),
      strict_(std::getenv("AGENTD_STRICT") != nullptr &&
              std::string_view(std::getenv("AGENTD_STRICT")) == "1"),
      workspaces_(std::make_unique<WorkspaceProvisioner>(
          loop, WorkspaceProvisioner::Options{options_.workspaces_dir, options_.protected_dirs})) {
  metrics_ = services.metrics;
  checks_ = services.checks;
  audit_ = services.audit;
  tracing_ = services.tracing;
  transcripts_ = services.transcripts;
}

absl::Status TaskBoard::Recover() {
  // Finished tasks are kept as their brief: their records stay in the store until asked
  // for (task_graph.h), and start-up does not parse them.
  absl::Status loaded = store_->ForEachTask(
      {v1::TASK_STATUS_COMPLETED, v1::TASK_STATUS_FAILED, v1::TASK_STATUS_CANCELED},
      [this](TaskRow row) {
        int64_t n = 0;
        if (absl::SimpleAtoi(absl::string_view(row.id).substr(row.id.rfind('-') + 1), &n)) {
          next_id_ = std::max(next_id_, n + 1);
        }
        if (row.body.empty() && Final(static_cast<v1::TaskStatus>(row.status))) {
          if (graph_.AddShelved(row.id, row.goal_id, row.parent_id, row.assignee,
                                static_cast<v1::TaskStatus>(row.status))) {
            return;
          }
          // Its goal or parent is not known (yet): kept whole.
          std::optional<v1::Task> whole = LoadStored(row.id);
          if (whole.has_value()) Add(*std::move(whole));
          return;
        }
        v1::Task t;
        if (!t.ParseFromString(row.body)) {
          spdlog::warn("task {}: stored record unreadable; skipped", row.id);
          return;
        }
        if (Held(t.status()) && !t.assignee().empty()) busy_[t.assignee()] = t.id();
        // A ready task that had been started and is not a retry was handed back after
        // waiting for its children: it continues its attempt.
        if (t.status() == v1::TASK_STATUS_READY && t.attempts() > 0 && !t.has_failure()) {
          resume_.insert(t.id());
        }
        Add(std::move(t));
      });
  if (!loaded.ok()) return loaded;
  // Ids handed to goals whose workspace was being made when agentd stopped: not stored
  // with a goal, but used up (SubmitGoal).
  absl::StatusOr<int64_t> used = store_->LastGoalIdUsed();
  if (!used.ok()) return used.status();
  next_id_ = std::max(next_id_, *used + 1);
  if (absl::Status s = outbox_->Recover(); !s.ok()) return s;
  // Checks that were running when agentd stopped run again: their outcome was not stored.
  // Provider backoffs start again from their retry's delay.
  for (const std::string& id : graph_.Unfinished()) {
    v1::Task& t = graph_.at(id);
    if (t.status() == v1::TASK_STATUS_BLOCKED && t.blocked_reason() == v1::BLOCK_REASON_PROVIDER) {
      loop_->RunAfter(
          ProviderBackoff(config_->config().policy, t.provider_retries()),
          [this, task = t.id(), n = t.provider_retries()] { ProviderRetryDue(task, n); });
    }
    if (t.status() == v1::TASK_STATUS_BLOCKED && t.blocked_reason() == v1::BLOCK_REASON_CHECKS &&
        checks_ != nullptr) {
      StartChecks(t);
    }
  }
  ScheduleSoon();
  loop_->RunAfter(absl::Seconds(1), [this] { StopIdleAgents(); });
  return absl::OkStatus();
}

std::string TaskBoard::NewId(const char* prefix) { return absl::StrCat(prefix, "-", next_id_++); }

bool TaskBoard::Save(v1::Task& t, const char* kind, const std::string& agent,
                     const AuditIntent* audit, const std::string& request_id) {
  absl::Time now = loop_->clock()->Now();
  SetTime(now, t.mutable_update_time());
  auto [row, payload] = RowOf(t);
  row.request_id = request_id;
  if (batch_) {
    batch_->changes.push_back({std::move(row), kind, std::move(payload), agent});
    batch_->ids.push_back(t.id());
    if (audit != nullptr) {
      if (batch_->audit) {
        spdlog::error("task {}: a batch records one audit entry; {} {} is dropped", t.id(),
                      audit->action, audit->target);
      } else {
        batch_->audit = *audit;
      }
    }
    return true;
  }
  std::optional<AuditRecord> record;
  if (audit != nullptr && audit_ != nullptr) {
    absl::StatusOr<AuditRecord> r = audit_->Prepare(*audit);
    if (r.ok()) {
      record = *std::move(r);
    } else {
      spdlog::error("audit: recording {} {}: {}", audit->action, audit->target,
                    r.status().message());
    }
  }
  if (auto s = store_->SaveTask(row, now, kind, payload, agent, record ? &*record : nullptr);
      !s.ok()) {
    spdlog::error("task {}: recording {}: {}", t.id(), kind, s.status().message());
    return false;
  }
  if (record) audit_->Committed(*record);
  Committed(t);
  return true;
}

void TaskBoard::Committed(const v1::Task& t) {
  graph_.Updated(t);
  if (Final(t.status())) {
    // A Delegate repeated after its task ended is refused anyway (the task is no longer
    // held): its request ids need not be remembered, and memory does not grow with the
    // history of delegations.
    for (auto it = delegated_.lower_bound({t.id(), ""});
         it != delegated_.end() && it->first.first == t.id();) {
      it = delegated_.erase(it);
    }
  }
  Notify(t.id());
}

void TaskBoard::ShelveSoon() {
  // Finished work beyond what is kept in memory goes back to the store, in a step of its
  // own: no step holds a task across steps.
  if (shelve_posted_) return;
  shelve_posted_ = true;
  loop_->Post([this] {
    shelve_posted_ = false;
    shelved_since_release_ += graph_.Shelve();
    if (shelved_since_release_ >= kReleaseAfterShelving) {
      shelved_since_release_ = 0;
      ReleaseFreedMemory();
    }
  });
}

void TaskBoard::ReleaseFreedMemory() {
  // The records just shelved were freed (as are every step's temporaries), but glibc's
  // malloc keeps freed memory for reuse and gives back to the system only what lies at the
  // very top of a heap: holes between live blocks stay resident. Over a long history that counted
  // for about half of what agentd's RSS grew by per finished goal (workflow_bench: 0.9 → 0.5 KB a
  // goal). malloc_trim returns every free page of every thread's arena (madvise), except the
  // slack TuneMalloc leaves at the top of the main heap (kHeapTrimThreshold). It took
  // 0.3–1.6 ms in workflow_bench, once per kReleaseAfterShelving tasks shelved: on the
  // loop, as it is far shorter than a step that shelves them, and a thread started for it
  // would cost more than it saves.
#ifdef __GLIBC__
  absl::Time start = absl::Now();
  int released = malloc_trim(kHeapTrimThreshold);
  spdlog::debug("finished work shelved: freed memory returned to the system ({}) in {}",
                released != 0 ? "some" : "none", absl::FormatDuration(absl::Now() - start));
#endif
}

std::optional<v1::Task> TaskBoard::LoadStored(const std::string& id) const {
  absl::StatusOr<std::optional<TaskRow>> row = store_->LoadTask(id);
  if (!row.ok()) {
    spdlog::error("task {}: reading its record back from the store: {}", id,
                  row.status().message());
    return std::nullopt;
  }
  if (!row->has_value()) {
    spdlog::error("task {}: its record is missing from the store", id);
    return std::nullopt;
  }
  v1::Task t;
  if (!t.ParseFromString((*row)->body)) {
    spdlog::error("task {}: its stored record is unreadable", id);
    return std::nullopt;
  }
  return t;
}

void TaskBoard::Notify(const std::string& id) {
  if (observers_.empty()) return;
  // Told after the change that is under way ends, each changed task once, as it is then:
  // an observer (PlanBook) that acts on a task never meets a subtree half ended.
  bool post = to_notify_.empty();
  if (std::find(to_notify_.begin(), to_notify_.end(), id) == to_notify_.end()) {
    to_notify_.push_back(id);
  }
  if (post) loop_->Post([this] { FlushObservers(); });
}

void TaskBoard::FlushObservers() {
  while (!to_notify_.empty()) {
    std::vector<std::string> ids = std::move(to_notify_);
    to_notify_.clear();
    for (const std::string& changed : ids) {
      const v1::Task* t = Find(changed);
      if (t == nullptr) continue;
      v1::Task copy = *t;  // an observer may change tasks
      for (const auto& observe : observers_) observe(copy);
    }
  }
}

void TaskBoard::RecordEnd(const v1::Task& t, const std::string& why) {
  if (transcripts_ == nullptr) return;
  v1::TranscriptEntry e;
  e.mutable_outcome()->set_status(v1::TASK_STATUS_READY);
  e.mutable_outcome()->set_summary(why);
  transcripts_->Record(t.id(), t.goal_id(), "", t.attempts(), std::move(e));
}

void TaskBoard::SetStatus(v1::Task& t, v1::TaskStatus status, const char* kind,
                          const AuditIntent* audit) {
  LogScope log_scope(t.assignee(), t.id(), t.goal_id());
  if (!TransitionAllowed(t.status(), status)) {
    // A bug in the core, not in anything outside it: said loudly; under AGENTD_STRICT
    // (every test's daemon) agentd stops here.
    spdlog::error("task {}: {} -> {} ({}) is not a transition of the status machine", t.id(),
                  StatusName(t.status()), StatusName(status), kind);
    if (strict_) std::abort();
  }
  if (metrics_ != nullptr && t.status() != status) {
    metrics_->task_transitions->Add({StatusName(status)});
  }
  t.set_status(status);
  absl::Time now = loop_->clock()->Now();
  if (status == v1::TASK_STATUS_RUNNING && !t.has_start_time())
    SetTime(now, t.mutable_start_time());
  if (Final(status)) SetTime(now, t.mutable_end_time());
  if (status != v1::TASK_STATUS_BLOCKED) {
    t.clear_blocked_reason();
    t.clear_blocked_detail();
  }
  Save(t, kind, t.assignee(), audit);
  if (transcripts_ != nullptr && (Final(status) || status == v1::TASK_STATUS_BLOCKED)) {
    // How the attempt ended or why it stopped, as agentd decided it: the transcript's
    // last word on the attempt, whatever the agent reported before.
    v1::TranscriptEntry e;
    v1::TranscriptOutcome* o = e.mutable_outcome();
    o->set_status(status);
    if (status == v1::TASK_STATUS_COMPLETED) {
      o->set_summary(t.result().summary());
    } else if (status == v1::TASK_STATUS_BLOCKED) {
      o->set_summary(t.blocked_detail().empty() ? kind : t.blocked_detail());
    } else if (t.has_failure()) {
      o->set_summary(t.failure().message());
      o->set_failure_code(t.failure().code());
    }
    transcripts_->Record(t.id(), t.goal_id(), "", t.attempts(), std::move(e));
  }
}

absl::StatusOr<std::string> TaskBoard::CheckGoal(const v1::SubmitGoalRequest& req) const {
  if (absl::StripAsciiWhitespace(req.text()).empty()) {
    return absl::InvalidArgumentError("text is required: say what the goal should achieve");
  }
  if (constexpr size_t kMaxRequestId = 256; req.request_id().size() > kMaxRequestId) {
    return absl::InvalidArgumentError(absl::StrCat("request_id is ", req.request_id().size(),
                                                   " bytes; at most ", kMaxRequestId,
                                                   " (a UUID is 36)"));
  }
  // A goal that starts from a project template is the bootstrapper's (no model needed);
  // every other goal is the CEO's.
  const std::string role = req.workspace().template_().empty() ? "ceo" : "bootstrapper";
  if (config_->config().roles.count(role) == 0) {
    return absl::FailedPreconditionError(
        "no role \"ceo\" is configured: goals are handed to the CEO (add roles.ceo to the "
        "configuration)");
  }
  if (!req.workspace().template_().empty()) {
    std::string dir =
        absl::StrCat(options_.templates_dir, "/projects/", req.workspace().template_());
    std::error_code exists_ec;
    if (!std::filesystem::is_directory(dir, exists_ec)) {
      std::vector<std::string> names;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(
               absl::StrCat(options_.templates_dir, "/projects"), ec)) {
        names.push_back(e.path().filename().string());
      }
      std::sort(names.begin(), names.end());
      return absl::InvalidArgumentError(absl::StrCat(
          "workspace.template: there is no project template \"", req.workspace().template_(),
          "\"; templates are: ", absl::StrJoin(names, ", ")));
    }
  }
  if (req.checks_size() > 0 && checks_ == nullptr) {
    return absl::FailedPreconditionError("this agentd cannot run a goal's checks");
  }
  if (req.checks_size() > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat("checks: ", req.checks_size(), " given, at most 32 are allowed"));
  }
  for (int i = 0; i < req.checks_size(); ++i) {
    const std::string& c = req.checks(i);
    if (absl::StripAsciiWhitespace(c).empty() || c.size() > 4096 || !IsValidUtf8(c) ||
        c.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("checks[", i,
                       "]: a check is a command line of 1 to 4096 bytes of text, e.g. "
                       "\"pytest -q\""));
    }
  }
  if (req.max_check_rounds() < 0) {
    return absl::InvalidArgumentError("max_check_rounds must not be negative");
  }
  return role;
}

void TaskBoard::SubmitGoal(const v1::SubmitGoalRequest& req, const std::string& by, GoalDone done) {
  if (!req.request_id().empty()) {
    // A retry finds the goal of the first submission, in the store: across restarts, and
    // however many goals came since.
    absl::StatusOr<std::string> first = store_->GoalOfRequest(req.request_id());
    if (!first.ok()) {
      std::move(done)(absl::UnavailableError(
          absl::StrCat("request_id ", req.request_id(), " could not be looked up (",
                       first.status().message(), "); try again")));
      return;
    }
    if (!first->empty()) {
      std::move(done)(Get(*first));
      return;
    }
    if (auto it = preparing_.find(req.request_id()); it != preparing_.end()) {
      it->second.push_back(std::move(done));  // answered with the first
      return;
    }
  }
  absl::StatusOr<std::string> role = CheckGoal(req);
  if (!role.ok()) {
    std::move(done)(role.status());
    return;
  }
  // A refused goal still uses up its id: an id is never tried twice, so what a failed
  // attempt left behind (a branch agentd/g-N, a half-made worktree) cannot block the next.
  // Recorded before the workspace is made, so that this holds across a restart too: an
  // agentd killed while git ran would otherwise give the id again, and its next goal would
  // find the half-made directory (taken as its own, or refused as a folder with files).
  const int64_t n = next_id_;
  if (absl::Status s = store_->KeepGoalIdUsed(n); !s.ok()) {
    std::move(done)(absl::UnavailableError(
        absl::StrCat("the goal's id could not be recorded (", s.message(), "); try again")));
    return;
  }
  std::string id = NewId("g");
  if (!req.request_id().empty()) preparing_[req.request_id()];
  workspaces_->Prepare(req.workspace(), id,
                       [this, req, by, id, role = *role,
                        done = std::move(done)](absl::StatusOr<v1::Workspace> ws) mutable {
                         absl::StatusOr<v1::Task> goal =
                             ws.ok() ? CreateGoal(req, by, id, role, *ws)
                                     : absl::StatusOr<v1::Task>(ws.status());
                         std::vector<GoalDone> waiting;
                         if (auto it = preparing_.find(req.request_id()); it != preparing_.end()) {
                           waiting = std::move(it->second);
                           preparing_.erase(it);
                         }
                         for (GoalDone& w : waiting) std::move(w)(goal);
                         std::move(done)(std::move(goal));
                       });
}

absl::StatusOr<v1::Task> TaskBoard::CreateGoal(const v1::SubmitGoalRequest& req,
                                               const std::string& by, const std::string& id,
                                               const std::string& role, const v1::Workspace& ws) {
  v1::Task t;
  t.set_id(id);
  t.set_goal_id(id);
  std::string title = req.title();
  if (title.empty()) {
    title = std::string(absl::StripAsciiWhitespace(req.text()));
    if (size_t nl = title.find('\n'); nl != std::string::npos) title.resize(nl);
    title = Utf8Prefix(title, 80, "...");  // on a character boundary: CJK titles
  }
  t.set_title(title);
  t.set_role(role);
  t.set_status(v1::TASK_STATUS_READY);
  t.set_max_attempts(options_.default_max_attempts);
  t.mutable_input()->set_instructions(req.text());
  *t.mutable_workspace() = ws;
  t.set_created_by(by);
  v1::ApprovalPolicy policy = req.approval_policy();
  if (policy == v1::APPROVAL_POLICY_UNSPECIFIED) {
    policy = config_->config().policy.plan_approval == "auto" ? v1::APPROVAL_POLICY_AUTO
                                                              : v1::APPROVAL_POLICY_MANUAL;
  }
  t.set_approval_policy(policy);
  for (const std::string& c : req.checks()) t.add_checks()->set_command(c);
  t.set_max_check_rounds(req.max_check_rounds() > 0
                             ? req.max_check_rounds()
                             : static_cast<int32_t>(std::min<int64_t>(
                                   config_->config().policy.max_check_rounds, 100)));
  SetTime(loop_->clock()->Now(), t.mutable_create_time());
  if (absl::Status s = ledger_->SetGoalBudget(id, req.budget()); !s.ok()) return s;
  AuditIntent submitted = AuditLog::By(by, "goal.submit", id, id, id,
                                       {{"title", t.title()}, {"workspace", t.workspace().path()}});
  if (!Save(t, "goal.submitted", "", &submitted, req.request_id())) {
    return absl::UnavailableError("the goal could not be stored; see agentd's log");
  }
  Add(t);
  spdlog::info("goal {} submitted by {}: {}", id, by, t.title());
  ScheduleSoon();
  return t;
}

absl::StatusOr<v1::Task> TaskBoard::Get(const std::string& id) const {
  std::optional<v1::Task> t = graph_.Read(id);
  if (!t.has_value()) {
    if (graph_.BriefOf(id).has_value()) {
      return absl::UnavailableError(
          absl::StrCat("task \"", id,
                       "\" is recorded but could not be read back from the "
                       "store; agentd's log says why"));
    }
    return absl::NotFoundError(
        absl::StrCat("task \"", id, "\" does not exist (agentctl get tasks lists them)"));
  }
  return *std::move(t);
}

absl::StatusOr<v1::ListTasksResponse> TaskBoard::List(const v1::ListTasksRequest& req) const {
  int32_t size = req.page_size() <= 0 ? 100 : std::min(req.page_size(), 1000);
  // Newest first; the page token is the index (from the newest) to continue at.
  size_t start = 0;
  if (!req.page_token().empty() && !absl::SimpleAtoi(req.page_token(), &start)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", req.page_token(), "\" is not one this server issued"));
  }
  std::set<int> statuses(req.statuses().begin(), req.statuses().end());
  v1::ListTasksResponse resp;
  size_t matched = 0;
  // Filtered on what is kept of every task; only the page's tasks are read whole (from
  // the store, for finished ones no longer in memory).
  for (size_t place = graph_.size(); place-- > 0;) {
    std::optional<TaskGraph::Brief> t = graph_.BriefAt(place);
    if (!t.has_value()) continue;
    if (!req.goal_id().empty() && t->goal_id != req.goal_id()) continue;
    if (!req.parent_id().empty() && t->parent_id != req.parent_id()) continue;
    if (!req.assignee().empty() && t->assignee != req.assignee()) continue;
    if (!statuses.empty() && statuses.count(t->status) == 0) continue;
    if (req.goals_only() && !t->parent_id.empty()) continue;
    if (matched++ < start) continue;
    if (resp.tasks_size() == size) {
      resp.set_next_page_token(absl::StrCat(start + static_cast<size_t>(size)));
      break;
    }
    // A record the store cannot give back is left out, as recovery left out unreadable
    // records before finished tasks were shelved (LoadStored logs why).
    std::optional<v1::Task> whole = graph_.Read(std::string(graph_.IdAt(place)));
    if (whole.has_value()) *resp.add_tasks() = *std::move(whole);
  }
  return resp;
}

int TaskBoard::EndSubtree(v1::Task& root, v1::TaskStatus status, const v1::TaskFailure& failure,
                          AuditIntent* audit) {
  if (batch_) return EndSubtreeInBatch(root, status, failure, audit);
  // The whole subtree ends in one transaction: a crash never leaves half of it ended,
  // and agents hear of their tasks' end only once it is on disk.
  batch_.emplace();
  int ended = 0;
  try {
    ended = EndSubtreeInBatch(root, status, failure, audit);
  } catch (...) {
    batch_.reset();  // abandoned with its step (EventLoop): later changes are saved again
    throw;
  }
  Batch batch = *std::move(batch_);
  batch_.reset();
  if (batch.changes.empty()) return ended;
  std::optional<AuditRecord> record;
  if (batch.audit && audit_ != nullptr) {
    absl::StatusOr<AuditRecord> r = audit_->Prepare(*batch.audit);
    if (r.ok()) {
      record = *std::move(r);
    } else {
      spdlog::error("audit: recording {} {}: {}", batch.audit->action, batch.audit->target,
                    r.status().message());
    }
  }
  if (auto s = store_->SaveTasks(batch.changes, loop_->clock()->Now(), record ? &*record : nullptr);
      !s.ok()) {
    spdlog::error("task {}: recording the end of {} task(s): {}", root.id(), batch.changes.size(),
                  s.status().message());
    return ended;
  }
  if (record) audit_->Committed(*record);
  for (const std::string& id : batch.ids) {
    if (const v1::Task* t = Find(id)) Committed(*t);
  }
  for (auto& [agent, d] : batch.deliveries) outbox_->Deliver(agent, std::move(d));
  return ended;
}

int TaskBoard::EndSubtreeInBatch(v1::Task& root, v1::TaskStatus status,
                                 const v1::TaskFailure& failure, AuditIntent* audit) {
  int ended = 0;
  // Children first, so a parent never ends before what it waits on.
  for (const std::string& id : ChildrenOf(root.id())) {
    // Finished children are left as they are (and may be on the shelf: not read back);
    // an unfinished task is always in memory.
    std::optional<TaskGraph::Brief> brief = graph_.BriefOf(id);
    if (!brief.has_value() || Final(brief->status)) continue;
    v1::Task& c = graph_.at(id);
    v1::TaskFailure f = failure;
    if (status == v1::TASK_STATUS_FAILED) {
      f.set_code(v1::TASK_FAILURE_CODE_CANCELED);
      f.set_message(absl::StrCat("parent task ", root.id(), " failed: ", failure.message()));
      ended += EndSubtreeInBatch(c, v1::TASK_STATUS_CANCELED, f, nullptr);
    } else {
      ended += EndSubtreeInBatch(c, status, f, nullptr);
    }
  }
  if (Final(root.status())) return ended;
  if (checks_ != nullptr && root.blocked_reason() == v1::BLOCK_REASON_CHECKS) {
    checks_->Cancel(root.id());
  }
  std::string holder = Held(root.status()) ? root.assignee() : "";
  *root.mutable_failure() = failure;
  if (audit != nullptr) audit->details["canceled"] = absl::StrCat(ended + 1);
  SetStatus(root, status, status == v1::TASK_STATUS_CANCELED ? "task.canceled" : "task.failed",
            audit);
  ledger_->ReleaseTask(root.id());
  if (!holder.empty()) {
    if (auto b = busy_.find(holder); b != busy_.end() && b->second == root.id()) busy_.erase(b);
    v1::ConnectResponse d;
    d.mutable_cancel_task()->set_task_id(root.id());
    d.mutable_cancel_task()->set_reason(failure.message());
    SetTime(loop_->clock()->Now() + kCancelGrace, d.mutable_cancel_task()->mutable_deadline());
    if (tracing_ != nullptr) {
      d.set_traceparent(
          tracing_->Grant(holder, root.goal_id().empty() ? root.id() : root.goal_id(), root.id()));
    }
    batch_->deliveries.emplace_back(holder, std::move(d));
  }
  return ended + 1;
}

absl::StatusOr<v1::CancelTaskResponse> TaskBoard::Cancel(const std::string& id,
                                                         const std::string& reason,
                                                         const std::string& by) {
  v1::Task* t = Find(id);
  if (t == nullptr) return Get(id).status();
  v1::TaskFailure f;
  f.set_code(v1::TASK_FAILURE_CODE_CANCELED);
  f.set_message(reason.empty() ? absl::StrCat("canceled by ", by)
                               : absl::StrCat("canceled by ", by, ": ", reason));
  f.set_by(by);
  v1::CancelTaskResponse resp;
  AuditIntent canceled = AuditLog::By(by, "task.cancel", id, t->goal_id(), id,
                                      {{"reason", reason}, {"canceled", "0"}});
  // The entry goes with the task's own change; a task that had ended has none.
  bool ends_now = !Final(t->status());
  resp.set_canceled_count(EndSubtree(*t, v1::TASK_STATUS_CANCELED, f, &canceled));
  *resp.mutable_task() = *t;
  if (!ends_now && audit_ != nullptr) {
    canceled.details["canceled"] = absl::StrCat(resp.canceled_count());
    audit_->Append(canceled.kind, canceled.actor, canceled.action, canceled.target,
                   canceled.goal_id, canceled.task_id, canceled.details);
  }
  if (resp.canceled_count() > 0) {
    spdlog::info("task {} canceled by {} ({} tasks)", id, by, resp.canceled_count());
    ChildEnded(*t);
    ScheduleSoon();
  }
  return resp;
}

absl::StatusOr<v1::Task> TaskBoard::SetPaused(const std::string& goal_id, bool paused,
                                              const std::string& by) {
  v1::Task* g = Find(goal_id);
  if (g == nullptr) return Get(goal_id).status();
  if (!g->parent_id().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", goal_id, " is not a goal; pause its goal ", g->goal_id()));
  }
  if (Final(g->status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("goal ", goal_id, " has already ended (", StatusName(g->status()), ")"));
  }
  if (g->paused() != paused) {
    g->set_paused(paused);
    AuditIntent changed =
        AuditLog::By(by, paused ? "goal.pause" : "goal.resume", goal_id, goal_id, goal_id);
    Save(*g, paused ? "goal.paused" : "goal.resumed", "", &changed);
    spdlog::info("goal {} {} by {}", goal_id, paused ? "paused" : "resumed", by);
    if (!paused) ScheduleSoon();
  }
  return *g;
}

absl::StatusOr<v1::Task> TaskBoard::Retry(const std::string& id, const std::string& by) {
  v1::Task* t = Find(id);
  if (t == nullptr) return Get(id).status();
  if (t->status() != v1::TASK_STATUS_FAILED && t->status() != v1::TASK_STATUS_CANCELED) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", id, " is ", StatusName(t->status()),
                     "; only failed or canceled tasks are retried"));
  }
  if (t->attempts() >= t->max_attempts()) t->set_max_attempts(t->attempts() + 1);
  t->clear_failure();
  t->clear_end_time();
  AuditIntent retried = AuditLog::By(by, "task.retry", id, t->goal_id(), id);
  SetStatus(*t, v1::TASK_STATUS_READY, "task.retried", &retried);
  spdlog::info("task {} retried by {}", id, by);
  ScheduleSoon();
  return *t;
}

std::string TaskBoard::PickAgent(const std::string& role) const {
  std::string busy;
  for (const auto& [a, sink] : outbox_->attached()) {
    absl::StatusOr<v1::Agent> info = supervisor_->Get(a);
    if (!info.ok() || info->role() != role) continue;
    if (busy_.count(a) == 0) return a;
    if (busy.empty()) busy = a;
  }
  return busy;
}

void TaskBoard::AddFirstReservations(const v1::Task& t, v1::TaskAssignment* a) {
  // Only for an agent that said it uses them (an older agentd-agent, or another program
  // that speaks AgentHost, would leave them held until the run ends), with its stream
  // open (a delivery sent later goes without: Outbox::Deliver), and with a model.
  const Supervisor::Registered* agent = supervisor_->RegisteredAs(t.assignee());
  if (agent == nullptr || !agent->takes_reservations || !outbox_->Attached(t.assignee()) ||
      agent->model.model().empty()) {
    return;
  }
  // What the agent asks for a call (HostBudget): its messages at four bytes a token, 1,024
  // more, and the completion of the model it was given (4,096 when that sets none). The
  // first call is guessed from above: the definition the agent registered with (prompt,
  // knowledge, tools) and this assignment (instructions, briefs) stand for its first
  // request, with room for the prompt's own text; a run handed back after waiting holds
  // its conversation so far too, which is at most its last call's prompt and completion
  // plus the tool results after it. The second call has the first's and room for what
  // the first wrote and its tools returned, as the agent guesses it. A guess too small
  // costs only the round trip it was to save: the agent asks for its own and releases
  // this one. Every term is bounded (the definition and the assignment by what agentd
  // sends, the completion by int32, the last call by the ledger's clamp).
  constexpr int64_t kRoom = 8192;
  const int32_t max_tokens = agent->model.max_tokens();
  int64_t tokens = static_cast<int64_t>((agent->definition_bytes + a->ByteSizeLong()) / 4) + 1024 +
                   kRoom + (max_tokens > 0 ? max_tokens : 4096);
  if (t.handbacks() > 0) {
    absl::StatusOr<int64_t> last = store_->LastCallTokens(t.goal_id(), t.id());
    if (!last.ok()) return;  // the agent asks for its own
    tokens += std::max<int64_t>(*last, 0) + kRoom;
  }
  v1::ReserveBudgetRequest req;
  req.set_task_id(t.id());
  req.set_provider(agent->model.provider());
  req.set_model(agent->model.model());
  req.set_ahead(true);
  const Ledger::Caller caller{t.assignee(), t.role(), t.id(), t.goal_id()};
  for (int64_t estimate : {tokens, tokens + kRoom}) {
    req.set_estimated_tokens(estimate);
    absl::StatusOr<v1::BudgetReservation> r = ledger_->Reserve(caller, req);
    if (!r.ok() || r->status() != v1::BUDGET_RESERVATION_STATUS_GRANTED) return;
    *a->add_reservations() = *std::move(r);
  }
}

void TaskBoard::SendAssignment(const v1::Task& t, bool fresh) {
  v1::ConnectResponse d;
  v1::TaskAssignment* a = d.mutable_task_assignment();
  *a->mutable_task() = t;
  a->set_attempt(t.attempts());
  a->set_handbacks(t.handbacks());
  // Context travels as briefs, goal first: never whole conversations.
  // Finished ones are read from the store when not in memory, and not kept; one that
  // cannot be read is left out (the log says why).
  std::vector<v1::Task> chain;
  for (std::string up = t.parent_id(); !up.empty();) {
    std::optional<v1::Task> p = graph_.Read(up);
    if (p.has_value()) {
      up = p->parent_id();
      chain.push_back(*std::move(p));
    } else {
      std::optional<TaskGraph::Brief> brief = graph_.BriefOf(up);
      up = brief.has_value() ? std::string(brief->parent_id) : "";
    }
  }
  std::reverse(chain.begin(), chain.end());
  auto brief = [](const v1::Task& x, v1::TaskBrief* b) {
    b->set_task_id(x.id());
    b->set_title(x.title());
    b->set_role(x.role());
    b->set_instructions(x.input().instructions());
    b->set_status(x.status());
    if (x.status() == v1::TASK_STATUS_COMPLETED) *b->mutable_result() = x.result();
    if (x.has_failure()) *b->mutable_failure() = x.failure();
  };
  for (const v1::Task& p : chain) brief(p, a->add_ancestors());
  for (const std::string& dep : t.deps()) {
    graph_.Visit(dep, [&](const v1::Task& dt) { brief(dt, a->add_dependencies()); });
  }
  for (const std::string& id : ChildrenOf(t.id())) {
    graph_.Visit(id, [&](const v1::Task& c) { brief(c, a->add_children()); });
  }
  // Handed back after a failed round of checks: the failures answer its complete_task.
  bool checks_failed = false;
  for (const v1::GoalCheck& c : t.checks()) checks_failed |= c.has_run_time() && !c.passed();
  if (checks_failed) {
    a->set_completion_refused(
        ChecksFailedText(std::vector<v1::GoalCheck>(t.checks().begin(), t.checks().end()),
                         t.check_rounds(), t.max_check_rounds()));
  }
  if (tracing_ != nullptr) {
    d.set_traceparent(
        tracing_->Grant(t.assignee(), t.goal_id().empty() ? t.id() : t.goal_id(), t.id()));
  }
  if (fresh) AddFirstReservations(t, a);
  std::vector<std::string> given;
  for (const v1::BudgetReservation& r : a->reservations()) given.push_back(r.id());
  if (outbox_->Deliver(t.assignee(), std::move(d)) == 0) {
    // Not sent (the store refused it; sent again, it goes without them).
    for (const std::string& id : given) (void)ledger_->Release(t.assignee(), id);
  }
}

void TaskBoard::Assign(v1::Task& t, const std::string& agent) {
  LogScope log_scope(agent, t.id(), t.goal_id());
  t.set_assignee(agent);
  // A task handed back after waiting for its children continues its attempt.
  if (resume_.erase(t.id()) == 0 || t.attempts() == 0) {
    t.set_attempts(t.attempts() + 1);
    t.set_handbacks(0);
  } else {
    t.set_handbacks(t.handbacks() + 1);
  }
  busy_[agent] = t.id();
  SetStatus(t, v1::TASK_STATUS_ASSIGNED, "task.assigned");
  spdlog::info("task {} assigned to {} (attempt {})", t.id(), agent, t.attempts());
  SendAssignment(t, /*fresh=*/true);
}

std::vector<SchedAgent> TaskBoard::SchedAgents() const {
  std::vector<SchedAgent> out;
  for (const v1::Agent& a : supervisor_->List("", {})) {
    SchedAgent x;
    x.id = a.id();
    x.role = a.role();
    x.connected = outbox_->Attached(a.id());
    x.busy = busy_.count(a.id()) != 0;
    v1::AgentState st = a.state();
    x.live = st != v1::AGENT_STATE_STOPPED && st != v1::AGENT_STATE_FAILED &&
             st != v1::AGENT_STATE_STOPPING;
    out.push_back(std::move(x));
  }
  return out;
}

std::map<std::string, SchedRole> TaskBoard::SchedRoles() const {
  std::map<std::string, SchedRole> out;
  for (const auto& [name, r] : config_->config().roles) {
    out[name] = SchedRole{r.max_instances, r.idle_timeout};
  }
  return out;
}

void TaskBoard::StopIdleAgents() {
  absl::Time now = loop_->clock()->Now();
  std::vector<SchedAgent> agents = SchedAgents();
  std::map<std::string, SchedRole> roles = SchedRoles();
  TrackIdle(agents, now, &idle_since_);
  // Kept: agents config starts at boot, and an agent whose task waits to be handed back
  // to it (children, checks, a budget, a provider's backoff): it holds that session.
  std::set<std::string> keep;
  for (const AgentConfig& a : config_->config().agents) keep.insert(a.id);
  for (const std::string& id : graph_.Unfinished()) {
    const v1::Task& t = graph_.at(id);
    if (t.status() == v1::TASK_STATUS_BLOCKED && !t.assignee().empty()) keep.insert(t.assignee());
  }
  for (const std::string& agent : IdleToStop(agents, idle_since_, keep, roles, now)) {
    idle_since_.erase(agent);
    spdlog::info("agent {} idle for its role's idle_timeout: stopping it", agent);
    if (audit_ != nullptr)
      audit_->AppendBy("daemon", "agent.stop", agent, "", "", {{"why", "idle"}});
    supervisor_->Stop(agent, absl::ZeroDuration(), false, [](absl::StatusOr<v1::Agent>) {});
  }
  loop_->RunAfter(IdleCheckInterval(roles), [this] { StopIdleAgents(); });
}

void TaskBoard::ScheduleSoon() {
  if (schedule_posted_) return;
  schedule_posted_ = true;
  loop_->Post([this] {
    schedule_posted_ = false;
    Schedule();
  });
}

void TaskBoard::Schedule() {
  // Only unfinished tasks are looked at: the scan does not grow with history.
  std::vector<std::string> unfinished = graph_.Unfinished();
  // Pending tasks whose deps all completed are ready.
  for (const std::string& id : unfinished) {
    v1::Task& t = graph_.at(id);
    if (t.status() != v1::TASK_STATUS_PENDING) continue;
    if (graph_.DepsCompleted(t)) SetStatus(t, v1::TASK_STATUS_READY, "task.ready");
  }
  std::vector<SchedTask> ready;
  for (const std::string& id : unfinished) {
    const v1::Task& t = graph_.at(id);
    if (t.status() != v1::TASK_STATUS_READY) continue;
    const v1::Task* goal = Find(t.goal_id());
    SchedTask x;
    x.id = t.id();
    x.role = t.role();
    if (resume_.count(t.id()) != 0) x.resume_on = t.assignee();
    x.paused = goal != nullptr && goal->paused();
    ready.push_back(std::move(x));
  }
  HandOut plan = PlanHandOut(ready, SchedAgents(), SchedRoles());
  for (const auto& [id, agent] : plan.assign) Assign(graph_.at(id), agent);
  for (const std::string& id : plan.unknown_role) {
    v1::Task& t = graph_.at(id);
    v1::TaskFailure f;
    f.set_code(v1::TASK_FAILURE_CODE_INVALID_INPUT);
    f.set_message(absl::StrCat("no role \"", t.role(), "\" is configured"));
    f.set_by("daemon");
    EndSubtree(t, v1::TASK_STATUS_FAILED, f);
    ChildEnded(t);
  }
  for (const auto& [role, task] : plan.start) {
    v1::StartAgentRequest start;
    start.set_role(role);
    absl::StatusOr<v1::Agent> started = supervisor_->Start(start);
    if (started.ok()) {
      spdlog::info("started agent {} for ready task {}", started->id(), task);
    } else {
      spdlog::warn("task {}: starting an agent of role {}: {}", task, role,
                   started.status().message());
    }
  }
}

void TaskBoard::ChildEnded(const v1::Task& child) {
  // The observers hear of the change first: a plan that failed with this step (and its
  // rollback under way) keeps the parent waiting (plan_pending_).
  FlushObservers();
  // A parent waiting for its children goes on once all have ended.
  if (v1::Task* p = child.parent_id().empty() ? nullptr : Find(child.parent_id());
      p != nullptr && p->status() == v1::TASK_STATUS_BLOCKED &&
      p->blocked_reason() == v1::BLOCK_REASON_CHILDREN && !HasOpenChildren(*p)) {
    resume_.insert(p->id());
    SetStatus(*p, v1::TASK_STATUS_READY, "task.unblocked");
  }
  // Pending tasks may depend on it; a failed dependency fails its dependents.
  if (child.status() == v1::TASK_STATUS_FAILED || child.status() == v1::TASK_STATUS_CANCELED) {
    for (const std::string& id : graph_.Unfinished()) {
      v1::Task& t = graph_.at(id);
      if (Final(t.status())) continue;
      if (std::find(t.deps().begin(), t.deps().end(), child.id()) == t.deps().end()) continue;
      v1::TaskFailure f;
      f.set_code(v1::TASK_FAILURE_CODE_DEPENDENCY_FAILED);
      f.set_message(
          absl::StrCat("task ", child.id(), " it depends on ", StatusName(child.status())));
      f.set_by("daemon");
      EndSubtree(t, v1::TASK_STATUS_FAILED, f);
    }
  }
  ScheduleSoon();
}

void TaskBoard::Attach(const std::string& agent, ConnectSink* sink, int64_t after_seq) {
  std::set<std::string> resent;
  for (const v1::ConnectResponse& d : outbox_->Attach(agent, sink, after_seq)) {
    if (d.has_task_assignment()) resent.insert(d.task_assignment().task().id());
  }
  // The agent may have died holding its task after acknowledging the assignment: send
  // it again (same attempt), so the restarted agent resumes it from its session.
  if (auto b = busy_.find(agent); b != busy_.end() && resent.count(b->second) == 0) {
    if (const v1::Task* t = Find(b->second); t != nullptr && Held(t->status())) {
      SendAssignment(*t);
    }
  }
  if (on_attach_) on_attach_(agent);
  ScheduleSoon();
}

void TaskBoard::Detach(const std::string& agent, ConnectSink* sink) {
  outbox_->Detach(agent, sink);
}

void TaskBoard::Ack(const std::string& agent, int64_t seq) {
  if (outbox_->Ack(agent, seq) && on_ack_) on_ack_(agent, seq);
}

void TaskBoard::OnTaskEvent(const std::string& agent, const v1::TaskEvent& ev) {
  v1::Task* t = Find(ev.task_id());
  LogScope log_scope(agent, ev.task_id(), t != nullptr ? t->goal_id() : "");
  if (t == nullptr || t->assignee() != agent || ev.attempt() != t->attempts() ||
      !Held(t->status())) {
    spdlog::debug("agent {}: event for task {} attempt {} dropped (not held)", agent, ev.task_id(),
                  ev.attempt());
    return;
  }
  if ((ev.has_completed() || ev.has_failed() || ev.has_waiting()) && ev.has_handbacks() &&
      ev.handbacks() != t->handbacks()) {
    // The outcome of a run agentd has handed back since (sent again after a reconnect):
    // the run it would end is another.
    spdlog::debug("agent {}: outcome of task {} hand-back {} dropped (the task is at {})", agent,
                  ev.task_id(), ev.handbacks(), t->handbacks());
    return;
  }
  if (t->status() == v1::TASK_STATUS_ASSIGNED)
    SetStatus(*t, v1::TASK_STATUS_RUNNING, "task.running");
  switch (ev.event_case()) {
    case v1::TaskEvent::kToolCallStarted: {
      // Only for the target of the call's audit entry, when its ToolCallFinished does not
      // carry call_summary. Bounded: a call whose agent died before it finished leaves its
      // target here; past the bound they all go (such a call would lose its target).
      const v1::ToolCallStarted& s = ev.tool_call_started();
      if (call_targets_.size() >= kMaxCallTargets) call_targets_.clear();
      call_targets_[{agent, s.tool_call_id()}] = s.summary();
      break;
    }
    case v1::TaskEvent::kToolCallFinished: {
      const v1::ToolCallFinished& f = ev.tool_call_finished();
      t->set_provider_retries(0);  // a model call got through: the provider is back
      std::string target = f.call_summary();
      if (auto it = call_targets_.find({agent, f.tool_call_id()}); it != call_targets_.end()) {
        if (target.empty()) target = it->second;
        call_targets_.erase(it);
      }
      // Every side effect: what changed files, ran programs or moved the repository.
      static const std::set<std::string> kSideEffects = {
          "fs.write",   "fs.edit",        "shell.run",   "tests.run",
          "git.commit", "git.checkpoint", "git.rollback"};
      // Its audit entry goes in the transaction of the call's event.
      std::optional<AuditRecord> record;
      // And every call of an MCP server's tool: agentd cannot tell what it changed.
      if (audit_ != nullptr &&
          (kSideEffects.count(f.tool()) != 0 || absl::StartsWith(f.tool(), "mcp:"))) {
        std::map<std::string, std::string> details = {{"ok", f.ok() ? "true" : "false"}};
        if (!f.ok()) details["error"] = f.error();
        if (!f.output_summary().empty()) details["result"] = f.output_summary();
        absl::StatusOr<AuditRecord> r = audit_->Prepare(AuditIntent{
            v1::ACTOR_KIND_AGENT, agent, f.tool(), target, t->goal_id(), t->id(), details});
        if (r.ok()) record = *std::move(r);
      }
      nlohmann::json payload = {{"tool", f.tool()},
                                {"ok", f.ok()},
                                {"error", f.error()},
                                {"summary", f.output_summary()}};
      absl::StatusOr<int64_t> seq =
          store_->AppendEvent(loop_->clock()->Now(), "task.tool_call", DumpJson(payload), agent,
                              t->id(), t->goal_id(), record ? &*record : nullptr);
      if (!seq.ok()) {
        spdlog::error("task {}: recording {}'s call: {}", t->id(), f.tool(),
                      seq.status().message());
      } else if (record) {
        audit_->Committed(*record);
      }
      break;
    }
    case v1::TaskEvent::kCompleted: {
      *t->mutable_result() = ev.completed().result();
      busy_.erase(agent);
      if (t->id() == t->goal_id() && t->checks_size() > 0 && checks_ != nullptr) {
        // Not completed yet: agentd checks the work first.
        ledger_->ReleaseTask(t->id());
        StartChecks(*t);
        break;
      }
      SetStatus(*t, v1::TASK_STATUS_COMPLETED, "task.completed");
      ledger_->ReleaseTask(t->id());
      spdlog::info("task {} completed by {}", t->id(), agent);
      ChildEnded(*t);
      break;
    }
    case v1::TaskEvent::kFailed: {
      const v1::TaskFailed& f = ev.failed();
      busy_.erase(agent);
      ledger_->ReleaseTask(t->id());
      const PolicyConfig& policy = config_->config().policy;
      FailedAttempt next = OnAttemptFailed(*t, f, agent, policy);
      switch (next.next) {
        case FailedAttempt::Next::kProviderBackoff: {
          t->set_provider_retries(next.provider_retry);
          t->set_blocked_reason(v1::BLOCK_REASON_PROVIDER);
          t->set_blocked_detail(next.blocked_detail);
          SetStatus(*t, v1::TASK_STATUS_BLOCKED, "task.provider_backoff");
          spdlog::info("task {}: provider error ({}); retry {} of {} in {}", t->id(), f.reason(),
                       next.provider_retry, policy.provider_retries,
                       absl::FormatDuration(next.wait));
          loop_->RunAfter(next.wait, [this, id = t->id(), n = next.provider_retry] {
            ProviderRetryDue(id, n);
          });
          break;
        }
        case FailedAttempt::Next::kHoldAtBudget:
          // Held, not failed: the attempt waits where it stopped until a person raises
          // the budget (OnBudgetChanged), and then goes on in the same session.
          t->set_blocked_reason(v1::BLOCK_REASON_BUDGET);
          t->set_blocked_detail(next.blocked_detail);
          SetStatus(*t, v1::TASK_STATUS_BLOCKED, "task.budget_reached");
          spdlog::info("task {}: held at its budget ({})", t->id(), f.reason());
          break;
        case FailedAttempt::Next::kRetry:
          spdlog::info("task {} attempt {} failed ({}); retrying", t->id(), t->attempts(),
                       f.reason());
          RecordEnd(
              *t, absl::StrCat("attempt ", t->attempts(), " failed and is retried: ", f.reason()));
          SetStatus(*t, v1::TASK_STATUS_READY, "task.retry");
          break;
        case FailedAttempt::Next::kFail:
          EndSubtree(*t, v1::TASK_STATUS_FAILED, next.failure);
          spdlog::info("task {} failed: {}", t->id(), f.reason());
          if (next.fail_goal) {
            if (v1::Task* g = Find(t->goal_id()); g != nullptr) {
              v1::TaskFailure gf = next.failure;
              gf.set_message(absl::StrCat("BUDGET_EXCEEDED: ", f.reason()));
              EndSubtree(*g, v1::TASK_STATUS_FAILED, gf);
            }
          }
          ChildEnded(*t);
          break;
      }
      ScheduleSoon();
      break;
    }
    case v1::TaskEvent::kWaiting: {
      busy_.erase(agent);
      // Its run has ended: no call of it is in flight, and a reservation it asked for
      // ahead of a next call would otherwise hold budget its children need.
      ledger_->ReleaseTask(t->id());
      if (!HasOpenChildren(*t)) {
        // Everything it waits for has ended already: straight back to it.
        resume_.insert(t->id());
        SetStatus(*t, v1::TASK_STATUS_READY, "task.unblocked");
        ScheduleSoon();
        break;
      }
      t->set_blocked_reason(v1::BLOCK_REASON_CHILDREN);
      t->set_blocked_detail(ev.waiting().reason());
      SetStatus(*t, v1::TASK_STATUS_BLOCKED, "task.blocked");
      ScheduleSoon();
      break;
    }
    case v1::TaskEvent::kTranscript:
      if (transcripts_ != nullptr) {
        // Outcomes and consents are agentd's to record (SetStatus, ConsentBook), never
        // an agent's.
        if (ev.transcript().has_outcome() || ev.transcript().has_consent()) break;
        transcripts_->Record(t->id(), t->goal_id(), agent, ev.attempt(), ev.transcript());
      }
      break;
    case v1::TaskEvent::kProgress:
      if (transcripts_ != nullptr) {
        v1::TranscriptEntry e;
        e.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_PROGRESS);
        e.mutable_note()->set_text(ev.progress().text());
        transcripts_->Record(t->id(), t->goal_id(), agent, ev.attempt(), std::move(e));
      }
      break;
    case v1::TaskEvent::kTokenChunk:
      // For live display only: followers of the task's transcript see the text stream.
      if (transcripts_ != nullptr) {
        transcripts_->Stream(t->id(), agent, ev.attempt(), ev.token_chunk().text(),
                             ev.token_chunk().discarded());
      }
      break;
    default:
      break;
  }
}

void TaskBoard::ProviderRetryDue(const std::string& id, int retry) {
  LogScope log_scope("", id);
  v1::Task* t = Find(id);
  if (t == nullptr || t->status() != v1::TASK_STATUS_BLOCKED ||
      t->blocked_reason() != v1::BLOCK_REASON_PROVIDER || t->provider_retries() != retry) {
    return;  // canceled, or handed back already
  }
  t->clear_blocked_reason();
  t->clear_blocked_detail();
  resume_.insert(id);
  SetStatus(*t, v1::TASK_STATUS_READY, "task.provider_retry");
  ScheduleSoon();
}

void TaskBoard::OnBudgetChanged() {
  std::vector<std::string> held;
  for (const std::string& id : graph_.Unfinished()) {
    const v1::Task& t = graph_.at(id);
    if (t.status() == v1::TASK_STATUS_BLOCKED && t.blocked_reason() == v1::BLOCK_REASON_BUDGET) {
      held.push_back(id);
    }
  }
  // Each goes on where it stopped; one whose budget still does not allow its next call
  // is held again by that call's refusal.
  for (const std::string& id : held) {
    v1::Task& t = graph_.at(id);
    t.clear_blocked_reason();
    t.clear_blocked_detail();
    resume_.insert(id);
    SetStatus(t, v1::TASK_STATUS_READY, "task.budget_raised");
    spdlog::info("task {}: a budget changed; it goes on", id);
  }
  if (!held.empty()) ScheduleSoon();
}

void TaskBoard::StartChecks(v1::Task& goal) {
  LogScope log_scope("", goal.id(), goal.id());
  goal.set_blocked_reason(v1::BLOCK_REASON_CHECKS);
  goal.set_blocked_detail(absl::StrCat("agentd is running the goal's ", goal.checks_size(),
                                       " check(s) in its workspace"));
  SetStatus(goal, v1::TASK_STATUS_BLOCKED, "goal.checking");
  spdlog::info("goal {}: running its {} check(s)", goal.id(), goal.checks_size());
  std::vector<v1::GoalCheck> round(goal.checks().begin(), goal.checks().end());
  checks_->Run(goal.id(), goal.workspace().path(), std::move(round),
               [this, id = goal.id()](std::vector<v1::GoalCheck> results) {
                 OnChecksDone(id, std::move(results));
               });
}

void TaskBoard::OnChecksDone(const std::string& goal_id, std::vector<v1::GoalCheck> results) {
  LogScope log_scope("", goal_id, goal_id);
  v1::Task* t = Find(goal_id);
  if (t == nullptr || t->status() != v1::TASK_STATUS_BLOCKED ||
      t->blocked_reason() != v1::BLOCK_REASON_CHECKS) {
    return;  // canceled meanwhile
  }
  ChecksRound round = OnChecksRun(*t, results);
  t->clear_checks();
  for (v1::GoalCheck& c : results) *t->add_checks() = std::move(c);
  t->set_check_rounds(round.check_rounds);
  // The round's entry goes with the goal's change it leads to.
  AuditIntent checked =
      AuditLog::By("daemon", "goal.checks", t->id(), t->id(), t->id(), round.audit_details);
  t->clear_blocked_reason();
  t->clear_blocked_detail();
  switch (round.next) {
    case ChecksRound::Next::kFail:
      EndSubtree(*t, v1::TASK_STATUS_FAILED, round.failure, &checked);
      spdlog::info("goal {} failed: {}", t->id(), round.failure.message());
      ChildEnded(*t);
      return;
    case ChecksRound::Next::kComplete:
      SetStatus(*t, v1::TASK_STATUS_COMPLETED, "task.completed", &checked);
      spdlog::info("goal {} completed: its checks passed", t->id());
      ChildEnded(*t);
      return;
    case ChecksRound::Next::kHandBack:
      // Back to its agent, same attempt: the session goes on with the failures.
      spdlog::info("goal {}: {} check(s) failed; handed back to its agent (round {} of {})",
                   t->id(), round.failed, t->check_rounds(), t->max_check_rounds());
      resume_.insert(t->id());
      SetStatus(*t, v1::TASK_STATUS_READY, "goal.checks_failed", &checked);
      ScheduleSoon();
      return;
  }
}

v1::SessionResumeHint TaskBoard::ResumeHint(const std::string& agent) const {
  v1::SessionResumeHint hint;
  if (auto b = busy_.find(agent); b != busy_.end()) {
    const v1::Task& t = graph_.at(b->second);
    hint.set_task_id(t.id());
    hint.set_attempt(t.attempts());
    hint.set_task_status(t.status());
  }
  hint.set_acked_seq(outbox_->AckedSeq(agent));
  return hint;
}

absl::StatusOr<v1::Task> TaskBoard::TaskOfAgent(const std::string& agent,
                                                const std::string& task_id) const {
  absl::StatusOr<v1::Task> t = Get(task_id);
  if (!t.ok()) return t.status();
  if (t->assignee() != agent || !Held(t->status())) {
    return absl::PermissionDeniedError(
        absl::StrCat("task ", task_id, " is not held by agent ", agent));
  }
  return t;
}

void TaskBoard::OnAgentState(const std::string& agent, v1::AgentState state) {
  if (state != v1::AGENT_STATE_STOPPED && state != v1::AGENT_STATE_FAILED) return;
  auto b = busy_.find(agent);
  if (b == busy_.end()) return;
  v1::Task* t = Find(b->second);
  busy_.erase(b);
  if (t == nullptr || !Held(t->status())) return;
  ledger_->ReleaseTask(t->id());
  if (t->attempts() < t->max_attempts()) {
    spdlog::info("task {}: agent {} is gone; the task is reassigned", t->id(), agent);
    RecordEnd(*t, absl::StrCat("agent ", agent, " is gone; the task is reassigned"));
    SetStatus(*t, v1::TASK_STATUS_READY, "task.reassigned");
  } else {
    v1::TaskFailure f;
    f.set_code(v1::TASK_FAILURE_CODE_ATTEMPTS_EXHAUSTED);
    f.set_message(absl::StrCat("agent ", agent, " stopped during the last of ", t->max_attempts(),
                               " attempts"));
    f.set_by("daemon");
    EndSubtree(*t, v1::TASK_STATUS_FAILED, f);
    ChildEnded(*t);
  }
  ScheduleSoon();
}

std::vector<std::string> TaskBoard::OpenGoals() const {
  std::vector<std::string> out;
  for (const std::string& id : graph_.Unfinished()) {
    const v1::Task* t = graph_.Find(id);
    if (t != nullptr && t->goal_id() == id) out.push_back(id);
  }
  return out;
}

bool TaskBoard::HoldsWork(const std::string& agent) const {
  if (busy_.count(agent) > 0) return true;
  // A task waiting for its children or a check (blocked), or handed back to go on in the
  // same session (ready to resume): its conversation is in this agent's session. A ready
  // task that is not resumed was taken back, and is no longer this agent's.
  for (const std::string& id : graph_.Unfinished()) {
    const v1::Task& t = graph_.at(id);
    if (t.assignee() != agent) continue;
    if (t.status() == v1::TASK_STATUS_BLOCKED || resume_.count(id) > 0) return true;
  }
  return false;
}

void TaskBoard::ReconcileAgents() {
  std::vector<std::pair<std::string, v1::AgentState>> gone;
  for (const auto& [agent, task] : busy_) {
    absl::StatusOr<v1::Agent> a = supervisor_->Get(agent);
    v1::AgentState s = a.ok() ? a->state() : v1::AGENT_STATE_STOPPED;
    if (s == v1::AGENT_STATE_STOPPED || s == v1::AGENT_STATE_FAILED) gone.emplace_back(agent, s);
  }
  for (const auto& [agent, state] : gone) OnAgentState(agent, state);
}

bool TaskBoard::HasOpenChildren(const v1::Task& t) const {
  if (plan_pending_ && plan_pending_(t.id())) return true;
  return graph_.HasOpenChildren(t.id());
}

absl::StatusOr<v1::Task> TaskBoard::Delegate(const std::string& agent,
                                             const v1::DelegateRequest& req) {
  absl::StatusOr<v1::Task> parent = TaskOfAgent(agent, req.parent_task_id());
  if (!parent.ok()) return parent.status();
  const Config& cfg = config_->config();
  if (cfg.roles.count(req.role()) == 0) {
    std::vector<std::string> roles;
    for (const auto& [name, r] : cfg.roles) roles.push_back(name);
    return absl::InvalidArgumentError(absl::StrCat(
        "role \"", req.role(), "\" is not configured; roles are: ", absl::StrJoin(roles, ", ")));
  }
  if (absl::StripAsciiWhitespace(req.input().instructions()).empty()) {
    return absl::InvalidArgumentError("input.instructions is required: say what the task is");
  }
  if (req.max_attempts() < 0 || req.max_attempts() > kMaxTaskAttempts) {
    return absl::InvalidArgumentError(absl::StrCat("max_attempts ", req.max_attempts(),
                                                   " is out of range: give 1 to ", kMaxTaskAttempts,
                                                   ", or 0 for the configured default"));
  }
  for (const std::string& dep : req.deps()) {
    const v1::Task* d = Find(dep);
    if (d == nullptr || d->parent_id() != parent->id()) {
      return absl::InvalidArgumentError(absl::StrCat("dep \"", dep,
                                                     "\" is not a task delegated from ",
                                                     parent->id(), " (deps name sibling tasks)"));
    }
  }
  std::pair<std::string, std::string> key{parent->id(), req.request_id()};
  if (!req.request_id().empty()) {
    if (auto it = delegated_.find(key); it != delegated_.end()) return Get(it->second);
  }
  v1::Task t;
  t.set_id(NewId("t"));
  t.set_parent_id(parent->id());
  t.set_goal_id(parent->goal_id());
  std::string title = req.title().empty() ? req.input().instructions() : req.title();
  if (size_t nl = title.find('\n'); nl != std::string::npos) title.resize(nl);
  title = Utf8Prefix(title, 80, "...");
  t.set_title(title);
  t.set_role(req.role());
  t.set_status(v1::TASK_STATUS_PENDING);
  for (const std::string& dep : req.deps()) t.add_deps(dep);
  t.set_max_attempts(req.max_attempts() > 0 ? req.max_attempts() : options_.default_max_attempts);
  *t.mutable_input() = req.input();
  *t.mutable_workspace() = parent->workspace();
  t.set_created_by(agent);
  SetTime(loop_->clock()->Now(), t.mutable_create_time());
  if (!Save(t, "task.created", agent)) {
    return absl::UnavailableError("the task could not be stored; see agentd's log");
  }
  Add(t);
  // The delegating call's key, so a retried call finds the task it created.
  if (!req.request_id().empty()) delegated_[key] = t.id();
  spdlog::info("task {} delegated by {} to role {}: {}", t.id(), agent, t.role(), t.title());
  ScheduleSoon();
  return t;
}

absl::StatusOr<std::vector<v1::Task>> TaskBoard::PlanTasks(const v1::Plan& plan) {
  v1::Task* parent = Find(plan.task_id());
  if (parent == nullptr) return Get(plan.task_id()).status();
  std::map<std::string, std::string> task_of;  // step id → task id
  for (const v1::PlanStep& step : plan.steps()) task_of[step.id()] = NewId("t");
  std::vector<v1::Task> out;
  absl::Time now = loop_->clock()->Now();
  for (const v1::PlanStep& step : plan.steps()) {
    v1::Task t;
    t.set_id(task_of.at(step.id()));
    t.set_parent_id(parent->id());
    t.set_goal_id(parent->goal_id());
    t.set_title(step.title().empty() ? step.id() : step.title());
    t.set_role(step.role());
    t.set_status(v1::TASK_STATUS_PENDING);
    for (const std::string& dep : step.deps()) t.add_deps(task_of.at(dep));
    // Clamped again here: a plan stored before the limit existed is not checked anew.
    t.set_max_attempts(step.max_attempts() > 0 ? std::min(step.max_attempts(), kMaxTaskAttempts)
                                               : options_.default_max_attempts);
    t.mutable_input()->set_instructions(step.instructions());
    *t.mutable_workspace() = parent->workspace();
    t.set_plan_id(plan.id());
    t.set_plan_step_id(step.id());
    t.set_created_by(plan.proposer());
    SetTime(now, t.mutable_create_time());
    SetTime(now, t.mutable_update_time());
    out.push_back(std::move(t));
  }
  return out;
}

std::pair<TaskRow, std::string> TaskBoard::RowOf(const v1::Task& t) {
  TaskRow row{t.id(),
              t.goal_id(),
              t.parent_id(),
              t.status(),
              t.assignee(),
              absl::ToUnixMicros(FromProto(t.create_time())),
              t.SerializeAsString()};
  nlohmann::json payload = {{"status", StatusName(t.status())}, {"role", t.role()}};
  if (!t.assignee().empty()) payload["assignee"] = t.assignee();
  if (t.attempts() > 0) payload["attempt"] = t.attempts();
  if (t.has_failure()) payload["reason"] = t.failure().message();
  return {std::move(row), DumpJson(payload)};
}

void TaskBoard::AdoptPlanTasks(std::vector<v1::Task> tasks) {
  for (v1::Task& t : tasks) {
    Add(t);
    for (const auto& observe : observers_) observe(t);
  }
  ScheduleSoon();
}

void TaskBoard::Wake(const std::string& task_id) {
  v1::Task* t = Find(task_id);
  if (t == nullptr || t->status() != v1::TASK_STATUS_BLOCKED ||
      t->blocked_reason() != v1::BLOCK_REASON_CHILDREN || HasOpenChildren(*t)) {
    return;
  }
  resume_.insert(t->id());
  SetStatus(*t, v1::TASK_STATUS_READY, "task.unblocked");
  ScheduleSoon();
}

}  // namespace agentd
