#include "manager/core/plans.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/json_dump.h"
#include "common/logging.h"
#include "common/text.h"
#include "manager/core/plan_check.h"
#include "manager/core/proto_time.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

std::string StatusName(v1::PlanStatus s) {
  std::string name = absl::AsciiStrToLower(v1::PlanStatus_Name(s));
  return name.substr(name.rfind('_') + 1);
}

// The number in a plan id ("p-12" → 12); ids are handed out in increasing order.
int64_t IdNumber(const std::string& id) {
  int64_t n = 0;
  size_t dash = id.rfind('-');
  if (dash == std::string::npos || !absl::SimpleAtoi(absl::string_view(id).substr(dash + 1), &n)) {
    return 0;
  }
  return n;
}

bool Ended(v1::TaskStatus s) {
  return s == v1::TASK_STATUS_COMPLETED || s == v1::TASK_STATUS_FAILED ||
         s == v1::TASK_STATUS_CANCELED;
}

absl::Status StoreUnavailable(const absl::Status& s) {
  return absl::UnavailableError(absl::StrCat("reading plans from the store: ", s.message()));
}

}  // namespace

namespace {

// The checkpoint a plan's workspace is saved under when the plan starts.
std::string CheckpointName(const v1::Plan& plan) { return absl::StrCat("plan-", plan.id()); }

// The commit recorded for it ("checkpoint plan-p-1 saved (<id>)…"), or empty. Rollbacks go
// to that commit, not to the name: an agent's own git.checkpoint may have moved the name.
std::string CheckpointCommit(const v1::Plan& plan) {
  const std::string& c = plan.checkpoint();
  size_t open = c.find(" saved (");
  if (!absl::StartsWith(c, "checkpoint ") || open == std::string::npos) return "";
  open += 8;
  size_t close = c.find(')', open);
  if (close == std::string::npos) return "";
  std::string id = c.substr(open, close - open);
  if ((id.size() != 40 && id.size() != 64) ||
      id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return "";
  }
  return id;
}

}  // namespace

absl::Status PlanBook::Recover() {
  // Ids go on from the largest number stored, whatever is read back below.
  absl::StatusOr<int64_t> largest = store_->LargestPlanNumber();
  if (!largest.ok()) return largest.status();
  next_id_ = std::max(next_id_, *largest + 1);
  // What may still change: plans of open goals, and any undecided or unfinished one.
  std::vector<PlanQuery> queries;
  queries.emplace_back().statuses = {v1::PLAN_STATUS_PROPOSED, v1::PLAN_STATUS_APPROVED,
                                     v1::PLAN_STATUS_EXECUTING};
  for (const std::string& goal : tasks_->OpenGoals()) queries.emplace_back().goal_id = goal;
  std::map<int64_t, v1::Plan> read;  // by id number: the order they were made in
  for (const PlanQuery& q : queries) {
    absl::StatusOr<std::vector<PlanRow>> rows = store_->LoadPlans(q);
    if (!rows.ok()) return rows.status();
    for (const PlanRow& row : *rows) {
      v1::Plan p;
      if (!p.ParseFromString(row.body)) {
        spdlog::error("plan {}: its stored record is unreadable", row.id);
        continue;
      }
      next_id_ = std::max(next_id_, IdNumber(p.id()) + 1);
      read.emplace(IdNumber(p.id()), std::move(p));
    }
  }
  std::vector<std::string> ids;
  for (auto& [n, p] : read) ids.push_back(Keep(std::move(p)).id());
  // Approved, and agentd stopped before its step tasks were stored (they are stored with
  // EXECUTING, all at once): set it going now. Nothing of it ran, so nothing runs twice.
  for (const std::string& id : ids) {
    v1::Plan& p = plans_.at(id);
    if (p.status() == v1::PLAN_STATUS_APPROVED) {
      spdlog::info("plan {}: approved before agentd stopped; executing it now", p.id());
      Execute(p);
    }
    MaybeRollBack(p);  // failed, and agentd stopped before the rollback was recorded
  }
  std::vector<std::string> tasks;
  for (const auto& [task, plans] : by_task_) tasks.push_back(task);
  for (const std::string& task : tasks) MaybeForget(task);
  return absl::OkStatus();
}

v1::Plan* PlanBook::Resident(const std::string& id) {
  auto it = plans_.find(id);
  return it == plans_.end() ? nullptr : &it->second;
}

v1::Plan& PlanBook::Keep(v1::Plan plan) {
  std::string id = plan.id();
  auto [it, added] = plans_.insert_or_assign(id, std::move(plan));
  if (added) by_task_[it->second.task_id()].push_back(id);
  return it->second;
}

absl::StatusOr<std::vector<v1::Plan>> PlanBook::PlansOfTask(const std::string& task_id) const {
  PlanQuery q;
  q.task_id = task_id;
  absl::StatusOr<std::vector<PlanRow>> rows = store_->LoadPlans(q);
  if (!rows.ok()) return StoreUnavailable(rows.status());
  std::map<int64_t, v1::Plan> plans;
  for (const PlanRow& row : *rows) {
    v1::Plan p;
    if (p.ParseFromString(row.body)) plans.emplace(IdNumber(p.id()), std::move(p));
  }
  // Memory is ahead of the store where a save failed: it wins.
  if (auto it = by_task_.find(task_id); it != by_task_.end()) {
    for (const std::string& id : it->second) plans[IdNumber(id)] = plans_.at(id);
  }
  std::vector<v1::Plan> out;
  for (auto& [n, p] : plans) out.push_back(std::move(p));
  return out;
}

bool PlanBook::Settled(const v1::Plan& p) const {
  switch (p.status()) {
    case v1::PLAN_STATUS_REJECTED:
    case v1::PLAN_STATUS_SUPERSEDED:
    case v1::PLAN_STATUS_COMPLETED:
      return true;
    case v1::PLAN_STATUS_FAILED:
      // A rollback that runs, or that waits for a step to stop (MaybeRollBack).
      return rolling_back_.count(p.id()) == 0 && !RollbackDue(p);
    default:
      return false;
  }
}

void PlanBook::ForgetSoon(const std::string& task_id) {
  loop_->Post([this, task_id] { MaybeForget(task_id); });
}

void PlanBook::MaybeForget(const std::string& task_id) {
  auto it = by_task_.find(task_id);
  if (it == by_task_.end()) return;
  absl::StatusOr<v1::Task> task = tasks_->Get(task_id);
  if (!task.ok() || !Ended(task->status())) return;
  // A proposal still waiting for its decision can never run now (Execute would fail it
  // on approval): it fails here, so no one is asked to decide it, and it leaves memory
  // and the plans read back at start with its task. Save posts the next look.
  std::vector<std::string> undecided;
  for (const std::string& id : it->second) {
    if (plans_.at(id).status() == v1::PLAN_STATUS_PROPOSED) undecided.push_back(id);
  }
  for (const std::string& id : undecided) {
    v1::Plan& p = plans_.at(id);
    spdlog::info("plan {}: its task {} ended ({}) before the plan was decided; it fails", p.id(),
                 task_id, v1::TaskStatus_Name(task->status()));
    p.set_status(v1::PLAN_STATUS_FAILED);
    Save(p, "plan.failed");
  }
  if (!undecided.empty()) return;
  for (const std::string& id : it->second) {
    if (!Settled(plans_.at(id))) return;
  }
  for (const std::string& id : it->second) plans_.erase(id);
  by_key_.erase(by_key_.lower_bound({task_id, ""}), by_key_.lower_bound({task_id + '\0', ""}));
  by_task_.erase(it);
}

std::pair<PlanRow, std::string> PlanBook::RowOf(const v1::Plan& plan) {
  PlanRow row{plan.id(),
              plan.goal_id(),
              plan.task_id(),
              plan.status(),
              absl::ToUnixMicros(FromProto(plan.create_time())),
              plan.SerializeAsString()};
  nlohmann::json payload = {{"plan", plan.id()},
                            {"status", StatusName(plan.status())},
                            {"revision", plan.revision()},
                            {"decided_by", plan.decided_by()}};
  if (!plan.rejection_reason().empty()) payload["reason"] = plan.rejection_reason();
  return {std::move(row), DumpJson(payload)};
}

void PlanBook::SetSteps(const google::protobuf::RepeatedPtrField<v1::PlanStep>& steps,
                        v1::Plan* plan) {
  int64_t tokens = 0;
  double cost = 0;
  absl::Duration longest;
  std::map<std::string, absl::Duration> finish;  // along the longest dependency path
  plan->clear_steps();
  for (const v1::PlanStep& s : steps) {
    v1::PlanStep* step = plan->add_steps();
    *step = s;
    step->clear_task_id();
    // A model may estimate anything: negative or non-finite parts count as 0 and the sum
    // saturates (CheckPlanSteps refuses a non-finite cost; a plan only validated still
    // gets totals).
    int64_t t = std::max<int64_t>(s.estimate().tokens(), 0);
    tokens = t > std::numeric_limits<int64_t>::max() - tokens ? std::numeric_limits<int64_t>::max()
                                                              : tokens + t;
    double c = s.estimate().cost_usd();
    if (std::isfinite(c) && c > 0) cost = std::min(cost + c, std::numeric_limits<double>::max());
  }
  // Steps in dependency order; a cycle (in a plan only validated, not stored) ends the
  // walk where it closes.
  std::set<std::string> visiting;
  std::function<absl::Duration(const v1::PlanStep&)> done_at = [&](const v1::PlanStep& s) {
    if (auto it = finish.find(s.id()); it != finish.end()) return it->second;
    if (!visiting.insert(s.id()).second) return absl::ZeroDuration();
    absl::Duration start;
    for (const std::string& d : s.deps()) {
      for (const v1::PlanStep& o : plan->steps()) {
        if (o.id() == d) start = std::max(start, done_at(o));
      }
    }
    return finish[s.id()] = start + FromProto(s.estimate().duration());
  };
  for (const v1::PlanStep& s : plan->steps()) longest = std::max(longest, done_at(s));
  plan->mutable_total_estimate()->set_tokens(tokens);
  plan->mutable_total_estimate()->set_cost_usd(cost);
  SetDuration(longest, plan->mutable_total_estimate()->mutable_duration());
}

void PlanBook::Save(v1::Plan& plan, const char* event, const std::string& agent) {
  absl::Time now = loop_->clock()->Now();
  SetTime(now, plan.mutable_update_time());
  auto [row, payload] = RowOf(plan);
  if (auto s = store_->SavePlan(row, now, event, payload, agent); !s.ok()) {
    spdlog::error("plan {}: recording {}: {}", plan.id(), event, s.status().message());
  }
  // Whatever changed may have settled the last open plan of a task that has ended.
  ForgetSoon(plan.task_id());
}

std::vector<v1::PlanViolation> PlanBook::Validate(const v1::ProposePlanRequest& req,
                                                  const v1::Task& task) const {
  PlanLimits limits;
  for (const auto& [name, r] : config_->config().roles) limits.roles.insert(name);
  limits.max_steps = kMaxSteps;
  absl::StatusOr<v1::Budget> b = ledger_->GetBudget(v1::BUDGET_SCOPE_GOAL, task.goal_id());
  if (b.ok()) {
    if (b->max_cost_usd() > 0) limits.cost_left_usd = b->max_cost_usd() - b->used_cost_usd();
    if (b->max_tokens() > 0) limits.tokens_left = b->max_tokens() - b->used_tokens();
  }
  return CheckPlanSteps(req.steps(), limits);
}

absl::StatusOr<v1::ProposePlanResponse> PlanBook::Propose(const std::string& agent,
                                                          const v1::ProposePlanRequest& req) {
  absl::StatusOr<v1::Task> task = tasks_->TaskOfAgent(agent, req.task_id());
  if (!task.ok()) return task.status();
  v1::ProposePlanResponse resp;
  if (!req.request_id().empty()) {
    if (auto it = by_key_.find({req.task_id(), req.request_id()}); it != by_key_.end()) {
      *resp.mutable_plan() = plans_.at(it->second);
      return resp;
    }
  }
  std::vector<v1::PlanViolation> violations = Validate(req, *task);
  if (!violations.empty()) {
    for (v1::PlanViolation& v : violations) *resp.mutable_invalid()->add_violations() = v;
    spdlog::info("plan proposed by {} for {} is invalid ({} problems)", agent, req.task_id(),
                 violations.size());
    return resp;
  }
  v1::Plan plan;
  plan.set_goal_id(task->goal_id());
  plan.set_task_id(task->id());
  plan.set_proposer(agent);
  plan.set_summary(req.summary());
  // Earlier revisions may have been forgotten (a task that ended and was retried): the
  // store has them all.
  absl::StatusOr<std::vector<v1::Plan>> earlier = PlansOfTask(task->id());
  if (!earlier.ok()) return earlier.status();
  int32_t revision = 1;
  for (const v1::Plan& p : *earlier) {
    revision = std::max(revision, p.revision() + 1);
    plan.set_previous_plan_id(p.id());
  }
  plan.set_revision(revision);
  SetSteps(req.steps(), &plan);
  if (req.validate_only()) {
    *resp.mutable_plan() = plan;
    return resp;
  }
  // An undecided earlier proposal is replaced by this one (undecided ones are in memory).
  if (auto it = by_task_.find(task->id()); it != by_task_.end()) {
    for (const std::string& id : it->second) {
      v1::Plan& p = plans_.at(id);
      if (p.status() != v1::PLAN_STATUS_PROPOSED) continue;
      p.set_status(v1::PLAN_STATUS_SUPERSEDED);
      Save(p, "plan.superseded", agent);
    }
  }
  plan.set_id(absl::StrCat("p-", next_id_++));
  plan.set_status(v1::PLAN_STATUS_PROPOSED);
  SetTime(loop_->clock()->Now(), plan.mutable_create_time());
  Save(plan, "plan.proposed", agent);
  v1::Plan& stored = Keep(plan);
  if (!req.request_id().empty()) by_key_[{req.task_id(), req.request_id()}] = plan.id();
  spdlog::info("plan {} (revision {}) proposed by {} for task {}: {} steps", plan.id(),
               plan.revision(), agent, task->id(), plan.steps_size());
  absl::StatusOr<v1::Task> goal = tasks_->Get(task->goal_id());
  if (goal.ok() && goal->approval_policy() == v1::APPROVAL_POLICY_AUTO) {
    stored.set_status(v1::PLAN_STATUS_APPROVED);
    stored.set_decided_by("policy");
    SetTime(loop_->clock()->Now(), stored.mutable_decide_time());
    Save(stored, "plan.approved");
    if (audit_ != nullptr) {
      audit_->AppendBy("policy", "plan.approve", stored.id(), stored.goal_id(), stored.task_id());
    }
    Execute(stored);
  }
  *resp.mutable_plan() = stored;
  return resp;
}

void PlanBook::Execute(v1::Plan& plan) {
  // The task that proposed it ended meanwhile (canceled, its goal failed): nothing of the
  // plan may start under it.
  if (absl::StatusOr<v1::Task> owner = tasks_->Get(plan.task_id());
      !owner.ok() || owner->status() == v1::TASK_STATUS_COMPLETED ||
      owner->status() == v1::TASK_STATUS_FAILED || owner->status() == v1::TASK_STATUS_CANCELED) {
    spdlog::info("plan {}: its task {} has ended; the plan does not start", plan.id(),
                 plan.task_id());
    plan.set_status(v1::PLAN_STATUS_FAILED);
    Save(plan, "plan.failed");
    return;
  }
  if (config_->config().policy.on_plan_failure == "rollback" && git_ != nullptr &&
      plan.checkpoint().empty()) {
    // Before any step runs: the workspace as the plan found it. Taken again on recovery
    // if agentd stopped first (nothing of the plan ran, so it is the same).
    absl::StatusOr<v1::Task> task = tasks_->Get(plan.task_id());
    std::string workspace = task.ok() ? task->workspace().path() : "";
    git_->Checkpoint(
        workspace, CheckpointName(plan), [this, id = plan.id()](absl::StatusOr<std::string> r) {
          auto it = plans_.find(id);
          if (it == plans_.end() || it->second.status() != v1::PLAN_STATUS_APPROVED) return;
          it->second.set_checkpoint(r.ok() ? *r
                                           : absl::StrCat("none (", r.status().message(),
                                                          "): a failure cannot be rolled back"));
          if (!r.ok()) spdlog::warn("plan {}: {}", id, it->second.checkpoint());
          Execute(it->second);
        });
    return;
  }
  absl::StatusOr<std::vector<v1::Task>> created = tasks_->PlanTasks(plan);
  if (!created.ok()) {
    spdlog::error("plan {}: creating its tasks: {}", plan.id(), created.status().message());
    plan.set_status(v1::PLAN_STATUS_FAILED);
    Save(plan, "plan.failed");
    tasks_->Wake(plan.task_id());
    return;
  }
  // Every step's task and the plan's EXECUTING go in one transaction: a crash leaves the
  // plan APPROVED with no step task (and recovery executes it), or all of it.
  v1::Plan executing = plan;
  for (int i = 0; i < executing.steps_size(); ++i) {
    executing.mutable_steps(i)->set_task_id((*created)[static_cast<size_t>(i)].id());
  }
  executing.set_status(v1::PLAN_STATUS_EXECUTING);
  absl::Time now = loop_->clock()->Now();
  SetTime(now, executing.mutable_update_time());
  std::vector<std::pair<TaskRow, std::string>> rows;
  for (const v1::Task& t : *created) rows.push_back(TaskBoard::RowOf(t));
  auto [plan_row, payload] = RowOf(executing);
  if (auto s = store_->SavePlanWithTasks(plan_row, now, "plan.executing", payload, rows,
                                         plan.proposer());
      !s.ok()) {
    // Memory stays as the store left it: the plan APPROVED, no step task.
    spdlog::error("plan {}: recording its execution: {}", plan.id(), s.status().message());
    return;
  }
  plan = std::move(executing);
  tasks_->AdoptPlanTasks(*std::move(created));
}

absl::StatusOr<v1::Plan> PlanBook::Get(const std::string& id) const {
  if (auto it = plans_.find(id); it != plans_.end()) return it->second;
  absl::StatusOr<std::optional<PlanRow>> row = store_->LoadPlan(id);
  if (!row.ok()) return StoreUnavailable(row.status());
  if (!row->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("plan \"", id, "\" does not exist (agentctl get plans lists them)"));
  }
  v1::Plan p;
  if (!p.ParseFromString((*row)->body)) {
    return absl::UnavailableError(absl::StrCat("plan ", id, ": its stored record is unreadable"));
  }
  return p;
}

absl::StatusOr<v1::Plan> PlanBook::Approve(const std::string& id, const std::string& by,
                                           const std::string& comment) {
  v1::Plan* resident = Resident(id);
  if (resident == nullptr || resident->status() != v1::PLAN_STATUS_PROPOSED) {
    // A plan not in memory has been decided long ago.
    absl::StatusOr<v1::Plan> now = resident != nullptr ? *resident : Get(id);
    if (!now.ok()) return now.status();
    if (now->status() == v1::PLAN_STATUS_APPROVED || now->status() == v1::PLAN_STATUS_EXECUTING) {
      return now;  // approving twice is harmless
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "plan ", id, " is ", StatusName(now->status()), "; only a proposed plan can be approved"));
  }
  v1::Plan& p = *resident;
  p.set_status(v1::PLAN_STATUS_APPROVED);
  p.set_decided_by(by);
  SetTime(loop_->clock()->Now(), p.mutable_decide_time());
  Save(p, "plan.approved");
  if (audit_ != nullptr) {
    // The approver's words stay with the decision (cut: the audit log is not a store).
    std::map<std::string, std::string> details;
    if (!comment.empty()) details["comment"] = Utf8Prefix(comment, kMaxCommentBytes, "…");
    audit_->AppendBy(by, "plan.approve", p.id(), p.goal_id(), p.task_id(), details);
  }
  spdlog::info("plan {} approved by {}", id, by);
  Execute(p);
  return p;
}

absl::StatusOr<v1::ApprovePlanResponse> PlanBook::Decide(const v1::ApprovePlanRequest& req,
                                                         const std::string& by) {
  v1::ApprovePlanResponse resp;
  const std::string& id = req.plan_id();
  if (req.steps().empty()) {
    absl::StatusOr<v1::Plan> p = req.validate_only() ? Get(id) : Approve(id, by, req.comment());
    if (!p.ok()) return p.status();
    *resp.mutable_plan() = *std::move(p);
    return resp;
  }
  v1::Plan* resident = Resident(id);
  if (resident == nullptr || resident->status() != v1::PLAN_STATUS_PROPOSED) {
    absl::StatusOr<v1::Plan> now = resident != nullptr ? *resident : Get(id);
    if (!now.ok()) return now.status();
    return absl::FailedPreconditionError(absl::StrCat(
        "plan ", id, " is ", StatusName(now->status()), "; only a proposed plan can be edited"));
  }
  const v1::Plan old = *resident;
  absl::StatusOr<v1::Task> task = tasks_->Get(old.task_id());
  if (!task.ok()) return task.status();
  // Checked as an agent's proposal is: a person's edit gets no more room than a model's.
  v1::ProposePlanRequest as_proposal;
  as_proposal.set_task_id(old.task_id());
  *as_proposal.mutable_steps() = req.steps();
  std::vector<v1::PlanViolation> violations = Validate(as_proposal, *task);
  v1::Plan plan;
  plan.set_goal_id(old.goal_id());
  plan.set_task_id(old.task_id());
  plan.set_proposer(by);
  plan.set_summary(req.summary().empty() ? old.summary() : req.summary());
  absl::StatusOr<std::vector<v1::Plan>> earlier = PlansOfTask(old.task_id());
  if (!earlier.ok()) return earlier.status();
  int32_t revision = old.revision() + 1;
  for (const v1::Plan& p : *earlier) revision = std::max(revision, p.revision() + 1);
  plan.set_revision(revision);
  plan.set_previous_plan_id(old.id());
  // Totals only for an edit within the limits: a plan of too many steps (or a cycle) is
  // refused without being walked, as an agent's proposal is.
  if (violations.empty()) {
    SetSteps(req.steps(), &plan);
  } else if (req.steps_size() <= kMaxSteps) {
    *plan.mutable_steps() = req.steps();
  }
  if (req.validate_only()) {
    for (v1::PlanViolation& v : violations) *resp.add_violations() = std::move(v);
    *resp.mutable_plan() = std::move(plan);
    return resp;
  }
  if (!violations.empty()) {
    std::vector<std::string> lines;
    for (const v1::PlanViolation& v : violations) {
      lines.push_back(
          absl::StrCat(v.step_id().empty() ? "plan" : absl::StrCat("step ", v.step_id()),
                       v.field().empty() ? "" : absl::StrCat(" ", v.field()), ": ", v.message()));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "the edited plan is not valid, nothing was approved: ", absl::StrJoin(lines, "; ")));
  }
  // The proposal is superseded by the person's revision, which is approved at once.
  v1::Plan& superseded = *resident;
  superseded.set_status(v1::PLAN_STATUS_SUPERSEDED);
  superseded.set_decided_by(by);
  SetTime(loop_->clock()->Now(), superseded.mutable_decide_time());
  Save(superseded, "plan.superseded");
  plan.set_id(absl::StrCat("p-", next_id_++));
  plan.set_status(v1::PLAN_STATUS_PROPOSED);
  SetTime(loop_->clock()->Now(), plan.mutable_create_time());
  Save(plan, "plan.proposed");
  Keep(plan);
  if (audit_ != nullptr) {
    audit_->AppendBy(by, "plan.edit", plan.id(), plan.goal_id(), plan.task_id(),
                     {{"replaces", old.id()}, {"steps", absl::StrCat(plan.steps_size())}});
  }
  spdlog::info("plan {} edited by {} into {} ({} steps)", old.id(), by, plan.id(),
               plan.steps_size());
  absl::StatusOr<v1::Plan> approved = Approve(plan.id(), by, req.comment());
  if (!approved.ok()) return approved.status();
  // The proposer hears that its plan runs as the person changed it.
  v1::ConnectResponse d;
  *d.mutable_plan_decision() = *approved;
  outbox_->Deliver(old.proposer(), std::move(d));
  *resp.mutable_plan() = *std::move(approved);
  return resp;
}

absl::StatusOr<v1::Plan> PlanBook::Reject(const std::string& id, const std::string& reason,
                                          const std::string& by) {
  v1::Plan* resident = Resident(id);
  absl::StatusOr<v1::Plan> now = resident != nullptr ? *resident : Get(id);
  if (!now.ok()) return now.status();
  if (absl::StripAsciiWhitespace(reason).empty()) {
    return absl::InvalidArgumentError(
        "a rejection needs a reason: it goes to the proposer so it can revise the plan");
  }
  // A plan not in memory has been decided long ago.
  if (resident == nullptr || resident->status() != v1::PLAN_STATUS_PROPOSED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "plan ", id, " is ", StatusName(now->status()), "; only a proposed plan can be rejected"));
  }
  v1::Plan& p = *resident;
  p.set_status(v1::PLAN_STATUS_REJECTED);
  p.set_rejection_reason(reason);
  p.set_decided_by(by);
  SetTime(loop_->clock()->Now(), p.mutable_decide_time());
  Save(p, "plan.rejected");
  if (audit_ != nullptr) {
    audit_->AppendBy(by, "plan.reject", p.id(), p.goal_id(), p.task_id(), {{"reason", reason}});
  }
  spdlog::info("plan {} rejected by {}: {}", id, by, reason);
  // The proposer hears why, and gets its task back to revise the plan.
  v1::ConnectResponse d;
  *d.mutable_plan_decision() = p;
  outbox_->Deliver(p.proposer(), std::move(d));
  tasks_->Wake(p.task_id());
  return p;
}

absl::StatusOr<v1::ListPlansResponse> PlanBook::List(const v1::ListPlansRequest& req) const {
  int32_t size = req.page_size() <= 0 ? 100 : std::min(req.page_size(), 1000);
  int64_t start = 0;
  if (!req.page_token().empty()) (void)absl::SimpleAtoi(req.page_token(), &start);
  // Every plan is stored when it is made and each time it changes: the store answers,
  // and a plan in memory is shown as memory has it.
  PlanQuery q;
  q.goal_id = req.goal_id();
  q.task_id = req.task_id();
  for (int status : req.statuses()) q.statuses.push_back(status);
  q.newest_first = true;
  q.offset = std::max<int64_t>(start, 0);
  q.limit = size + 1;
  absl::StatusOr<std::vector<PlanRow>> rows = store_->LoadPlans(q);
  if (!rows.ok()) return StoreUnavailable(rows.status());
  v1::ListPlansResponse resp;
  if (rows->size() > static_cast<size_t>(size)) {
    rows->pop_back();
    resp.set_next_page_token(absl::StrCat(q.offset + size));
  }
  for (const PlanRow& row : *rows) {
    if (auto it = plans_.find(row.id); it != plans_.end()) {
      *resp.add_plans() = it->second;
    } else if (!resp.add_plans()->ParseFromString(row.body)) {
      spdlog::error("plan {}: its stored record is unreadable", row.id);
      resp.mutable_plans()->RemoveLast();
    }
  }
  return resp;
}

bool PlanBook::Pending(const std::string& task_id) const {
  auto plans = by_task_.find(task_id);
  if (plans == by_task_.end()) return false;
  for (const std::string& id : plans->second) {
    const v1::Plan& p = plans_.at(id);
    // Approved but not executing yet (its checkpoint is being taken): its steps come.
    if (p.status() == v1::PLAN_STATUS_PROPOSED || p.status() == v1::PLAN_STATUS_APPROVED ||
        rolling_back_.count(id) != 0) {
      return true;
    }
  }
  return false;
}

bool PlanBook::RollbackDue(const v1::Plan& p) const {
  if (p.status() != v1::PLAN_STATUS_FAILED || git_ == nullptr || !p.rollback().empty() ||
      !absl::StartsWith(p.checkpoint(), "checkpoint ") ||
      config_->config().policy.on_plan_failure != "rollback") {
    return false;
  }
  // A plan that failed before its step tasks were made (its task ended, they could not be
  // made) changed nothing: the workspace is not put back, whatever else wrote to it since.
  for (const v1::PlanStep& s : p.steps()) {
    if (!s.task_id().empty()) return true;
  }
  return false;
}

void PlanBook::MaybeRollBack(v1::Plan& p) {
  if (!RollbackDue(p) || rolling_back_.count(p.id()) != 0) return;
  for (const v1::PlanStep& s : p.steps()) {
    absl::StatusOr<v1::Task> st = tasks_->Get(s.task_id());
    if (st.ok() && st->status() != v1::TASK_STATUS_COMPLETED &&
        st->status() != v1::TASK_STATUS_FAILED && st->status() != v1::TASK_STATUS_CANCELED) {
      return;  // a step still runs: it would write after the rollback
    }
  }
  absl::StatusOr<v1::Task> task = tasks_->Get(p.task_id());
  if (!task.ok()) return;
  std::string commit = CheckpointCommit(p);
  if (commit.empty()) {
    p.set_rollback(absl::StrCat("the rollback failed: no commit recorded for the checkpoint (",
                                p.checkpoint(), ")"));
    Save(p, "plan.rolled_back");
    return;
  }
  rolling_back_.insert(p.id());
  spdlog::info("plan {} failed: rolling its workspace back to {}", p.id(), CheckpointName(p));
  git_->Rollback(
      task->workspace().path(), CheckpointName(p), commit,
      [this, id = p.id()](absl::StatusOr<std::string> r) {
        rolling_back_.erase(id);
        auto it = plans_.find(id);
        if (it == plans_.end()) return;
        v1::Plan& plan = it->second;
        plan.set_rollback(r.ok() ? *r
                                 : absl::StrCat("the rollback failed: ", r.status().message()));
        Save(plan, "plan.rolled_back");
        if (audit_ != nullptr) {
          audit_->AppendBy("daemon", "plan.rollback", plan.id(), plan.goal_id(), plan.task_id(),
                           {{"result", plan.rollback()}});
        }
        if (tell_) {
          tell_(plan.task_id(),
                absl::StrCat("Plan ", plan.id(),
                             " failed, and policy.on_plan_failure is "
                             "rollback: agentd put the workspace back as it was when the plan "
                             "started. ",
                             plan.rollback(),
                             ". Whatever its steps changed is undone; their results above "
                             "describe work that is no longer there."));
        }
        tasks_->Wake(plan.task_id());
      });
}

void PlanBook::OnTask(const v1::Task& t) {
  // A task that proposed plans ended: they may be forgotten.
  if (Ended(t.status()) && by_task_.count(t.id()) != 0) ForgetSoon(t.id());
  if (t.plan_id().empty()) return;
  auto it = plans_.find(t.plan_id());
  if (it == plans_.end()) return;
  v1::Plan& p = it->second;
  if (p.status() == v1::PLAN_STATUS_FAILED) {
    MaybeRollBack(p);  // a step that ran on after the failure may have ended now
    return;
  }
  if (p.status() != v1::PLAN_STATUS_EXECUTING) return;
  bool all_done = true, failed = false;
  for (const v1::PlanStep& s : p.steps()) {
    absl::StatusOr<v1::Task> st = s.task_id() == t.id() ? t : tasks_->Get(s.task_id());
    if (!st.ok()) continue;
    if (st->status() != v1::TASK_STATUS_COMPLETED) all_done = false;
    if (st->status() == v1::TASK_STATUS_FAILED || st->status() == v1::TASK_STATUS_CANCELED) {
      failed = true;
    }
  }
  if (all_done) {
    p.set_status(v1::PLAN_STATUS_COMPLETED);
    Save(p, "plan.completed");
  } else if (failed) {
    p.set_status(v1::PLAN_STATUS_FAILED);
    Save(p, "plan.failed");
  }
  MaybeRollBack(p);
}

}  // namespace agentd
