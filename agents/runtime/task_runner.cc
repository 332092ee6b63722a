#include "agents/runtime/task_runner.h"
#include "agents/runtime/task_spans.h"

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agents/llm/client.h"
#include "agents/runtime/agent_loop.h"
#include "agents/runtime/bootstrap.h"
#include "agents/runtime/prompt.h"
#include "agents/tools/workspace.h"
#include "common/logging.h"
#include "common/proto_text.h"
#include "common/protocol_features.h"
#include "common/text.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace agentd::agent {
namespace {

// The prompt of a role whose template is missing: enough for the loop to work.
constexpr char kDefaultPrompt[] =
    "You are {{agent}}, an agent of agentd playing the role \"{{role}}\".\n"
    "Work in the workspace {{workspace}} with the tools you have: {{tools}}.\n"
    "When the task is done, call complete_task with a short summary of the result; if it "
    "cannot be done, call fail_task saying why.\n";

// One transcript entry, at most (agentd cuts it again to transcripts.entry_bytes).
constexpr size_t kTranscriptEntryBound = 1 << 20;

void SetProtoDuration(absl::Duration d, google::protobuf::Duration* out) {
  int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

// Knowledge inlined into the system prompt, in total.
constexpr size_t kKnowledgeBound = 256 << 10;

std::string Key(const std::string& task, int attempt) { return absl::StrCat(task, "@", attempt); }
// An attempt's outcome is kept per hand-back: agentd hands an attempt back (its children
// ended, a check failed, a budget was raised) with a higher count, and that is new work;
// the same count again means agentd missed the outcome.
std::string Done(const v1::TaskAssignment& a) {
  return absl::StrCat(Key(a.task().id(), a.attempt()), "#", a.handbacks());
}

std::string Brief(const v1::TaskBrief& b) {
  std::string status = v1::TaskStatus_Name(b.status());
  status = status.substr(status.rfind('_') + 1);
  std::string line =
      absl::StrCat("- ", b.task_id(), " (", b.role(), ", ", status, "): ", b.title());
  if (b.has_result() && !b.result().summary().empty()) {
    absl::StrAppend(&line, "\n  result: ", b.result().summary());
  }
  if (b.has_failure()) absl::StrAppend(&line, "\n  failure: ", b.failure().message());
  return line;
}

// What a tool call acts on, in one line for people and the audit log: the path, the
// command line, the commit message.
std::string CallSummary(const llm::ToolCall& call) {
  nlohmann::json args = nlohmann::json::parse(call.arguments, nullptr, false);
  if (!args.is_object()) return "";
  auto str = [&](const char* k) {
    return args.contains(k) && args[k].is_string() ? args[k].get<std::string>() : "";
  };
  std::string out;
  if (args.contains("argv") && args["argv"].is_array()) {
    std::vector<std::string> argv;
    for (const auto& w : args["argv"])
      argv.push_back(w.is_string() ? w.get<std::string>() : w.dump());
    out = absl::StrJoin(argv, " ");
  } else if (!str("command").empty()) {
    out = str("command");
  } else if (!str("path").empty()) {
    out = str("path");
  } else if (!str("message").empty()) {
    out = str("message");
  }
  return Utf8Prefix(out, 300, "...");
}

// Budget through the daemon's ledger: a reservation before each call, usage after it.
// One round trip per call, off the turn's critical path: the usage of a call goes to the
// daemon together with a reservation for the call after next (ReserveBudget's settle and
// ahead), sized by a guess — this call's estimate, plus what it wrote and room for its
// tools' results, twice — while the tools and the next call run. So the reservation a
// call uses was asked for a whole call earlier, and its answer is there when the call
// starts: asked for one call earlier only, it came back after the tools in most turns
// (a quick tool takes microseconds, the round trip through a busy agentd ~0.5 ms). The
// first two calls of a run take the reservations agentd made as it handed the task out,
// when they cover them (so no call of a run waits for the ledger, the first included); a
// run given none asks for the next call's guess once the first has its own reservation.
// A call uses the first guess that covers its own estimate and has time left, and asks
// for what it needs when none does; a guess it does not use is released by the next
// request it sends (and by agentd when the task ends). A guess the daemon refused, or a
// request that failed (its usage is then reported on its own, once), costs only that
// fallback.
class HostBudget final : public Budget {
 public:
  // `given`: the reservations agentd made for the run's first calls as it handed the task
  // out (TaskAssignment.reservations), used like guesses asked for ahead.
  HostBudget(HostSession* host, const v1::ModelRef& model,
             const google::protobuf::RepeatedPtrField<v1::BudgetReservation>& given)
      : host_(host), model_(model), run_(absl::ToUnixMicros(absl::Now())) {
    for (const v1::BudgetReservation& r : given) {
      if (r.status() != v1::BUDGET_RESERVATION_STATUS_GRANTED || r.id().empty()) continue;
      auto ahead = std::make_shared<Ahead>();
      ahead->Set(r);
      ahead_.push_back(std::move(ahead));
    }
  }
  absl::Status Reserve(const std::string& task, int64_t estimated_tokens) override {
    v1::ReserveBudgetRequest req = ReserveRequest(task, estimated_tokens);
    last_estimate_ = estimated_tokens;
    // The guess asked for this call; when it falls short, the next call's (a larger
    // guess) too, before asking for what this call needs.
    bool reserved = false;
    while (!reserved && !ahead_.empty()) {
      std::shared_ptr<Ahead> ahead = std::move(ahead_.front());
      ahead_.pop_front();
      ahead->Wait();
      const v1::BudgetReservation& r = ahead->reservation;
      if (r.status() == v1::BUDGET_RESERVATION_STATUS_UNSPECIFIED && !ahead->released.empty()) {
        // The request failed: the guess it was to release goes with the next one (agentd
        // ignores the release of one it released already).
        unused_.push_back(std::move(ahead->released));
      }
      if (r.status() != v1::BUDGET_RESERVATION_STATUS_GRANTED) continue;
      absl::Time expires = absl::FromUnixSeconds(r.expire_time().seconds());
      if (r.estimated_tokens() >= req.estimated_tokens() &&
          expires - absl::Now() > kAheadMinLifeLeft) {
        reservation_ = r.id();
        reserved = true;
      } else {
        unused_.push_back(r.id());  // too small or about to expire
      }
    }
    // Refused only for guesses held ahead (other calls', or this task's not yet released):
    // they are used or released within moments; ask again for a while before taking it
    // as the budget's answer.
    absl::Time give_up = absl::Now() + kGuessesWait;
    while (!reserved) {
      TakeRelease(&req);
      absl::StatusOr<v1::BudgetReservation> r = host_->ReserveBudget(req);
      if (!r.ok()) return r.status();
      if (r->status() == v1::BUDGET_RESERVATION_STATUS_GRANTED) {
        reservation_ = r->id();
        reserved = true;
        break;
      }
      // This task's own guess may be what stood in the way: released by the next request.
      if (r->has_retry_after() && !unused_.empty()) continue;
      absl::Duration retry =
          absl::Seconds(r->retry_after().seconds()) + absl::Nanoseconds(r->retry_after().nanos());
      if (!r->has_retry_after() || absl::Now() + retry > give_up) {
        return absl::ResourceExhaustedError(r->refusal_reason());
      }
      absl::SleepFor(std::min(retry, absl::Seconds(5)));  // the daemon's pace, not a sync
    }
    // Keep a guess for the next call asked for while this one runs.
    if (ahead_.empty()) AskAhead(ReserveRequest(task, estimated_tokens + kToolRoom), std::nullopt);
    return absl::OkStatus();
  }
  void Report(const std::string& task, const llm::Usage& usage, double cost_usd,
              const llm::CallStats& stats) override {
    v1::ReportUsageRequest report = Request(task, stats);
    v1::UsageRecord* rec = report.mutable_record();
    rec->set_outcome("ok");
    if (stats.first_token != absl::InfiniteDuration()) {
      SetDuration(stats.first_token, rec->mutable_time_to_first_token());
    }
    rec->set_prompt_tokens(usage.prompt_tokens);
    rec->set_completion_tokens(usage.completion_tokens);
    rec->set_cost_usd(cost_usd);
    reservation_.clear();
    // The call after next: this one's prompt, and twice what this call wrote and its tools'
    // results may add (the next call's turn is guessed to be like this one).
    const int64_t turn = std::max<int64_t>(usage.completion_tokens, 0) + kToolRoom;
    AskAhead(ReserveRequest(task, last_estimate_ + 2 * turn), std::move(report));
  }
  void ReportFailure(const std::string& task, const absl::Status& error,
                     const llm::CallStats& stats) override {
    v1::ReportUsageRequest req = Request(task, stats);
    req.mutable_record()->set_outcome(OutcomeOf(error));
    host_->ReportUsageAsync(std::move(req));
  }

 private:
  // Asks for `next` ahead of the call it is for, without waiting; with `report` (the
  // usage of the call that just returned) settled in the same request. A request that
  // fails reports the usage on its own (its id counts it once).
  void AskAhead(v1::ReserveBudgetRequest next, std::optional<v1::ReportUsageRequest> report) {
    next.set_ahead(true);
    TakeRelease(&next);
    if (report.has_value()) *next.mutable_settle() = report->record();
    auto ahead = std::make_shared<Ahead>();
    ahead->released = next.release_reservation_id();
    ahead_.push_back(ahead);
    // Both legs within the time FlushReports gives reports before an outcome is sent.
    host_->ReserveBudgetAsync(
        std::move(next), kAheadDeadline,
        [ahead, host = host_,
         report = std::move(report)](absl::StatusOr<v1::BudgetReservation> r) mutable {
          if (!r.ok() && report.has_value()) {
            // The usage must reach the ledger: on its own now.
            spdlog::debug("reserving ahead: {}; reporting the call alone", r.status().message());
            host->ReportUsageAsync(*std::move(report), kAheadDeadline);
          }
          ahead->Set(r.ok() ? *std::move(r) : v1::BudgetReservation());
        });
  }
  // Puts one of the guesses this task holds and will not use into `req`'s release.
  void TakeRelease(v1::ReserveBudgetRequest* req) {
    req->clear_release_reservation_id();
    if (unused_.empty()) return;
    req->set_release_reservation_id(std::move(unused_.back()));
    unused_.pop_back();
  }
  // Session keys are "task@attempt"; the daemon knows tasks.
  static std::string TaskOf(const std::string& key) { return key.substr(0, key.rfind('@')); }
  // What every report of a call carries.
  v1::ReportUsageRequest Request(const std::string& task, const llm::CallStats& stats) {
    v1::ReportUsageRequest req;
    v1::UsageRecord* rec = req.mutable_record();
    // Unique per call: a resumed run of the same attempt counts its calls afresh.
    rec->set_id(absl::StrCat(task, "/", run_, "/", ++calls_));
    rec->set_task_id(TaskOf(task));
    rec->set_provider(model_.provider());
    rec->set_model(model_.model());
    rec->set_reservation_id(reservation_);
    rec->set_attempts(stats.attempts);
    SetDuration(stats.latency, rec->mutable_latency());
    return req;
  }
  // The outcome label of a failed call (agents/llm/client.h lists its errors).
  static const char* OutcomeOf(const absl::Status& s) {
    switch (s.code()) {
      case absl::StatusCode::kDeadlineExceeded:
        return "timeout";
      case absl::StatusCode::kUnavailable:
      case absl::StatusCode::kDataLoss:
        return "unavailable";
      case absl::StatusCode::kResourceExhausted:
        return "rate_limited";
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kPermissionDenied:
      case absl::StatusCode::kUnauthenticated:
      case absl::StatusCode::kNotFound:
        return "refused";
      case absl::StatusCode::kCancelled:
        return "canceled";
      default:
        return "error";
    }
  }
  static void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
    int64_t ns = absl::ToInt64Nanoseconds(d);
    out->set_seconds(ns / 1000000000);
    out->set_nanos(static_cast<int32_t>(ns % 1000000000));
  }
  v1::ReserveBudgetRequest ReserveRequest(const std::string& task, int64_t estimated_tokens) const {
    v1::ReserveBudgetRequest req;
    req.set_task_id(TaskOf(task));
    req.set_provider(model_.provider());
    req.set_model(model_.model());
    int64_t completion = model_.max_tokens() > 0 ? model_.max_tokens() : 4096;
    req.set_estimated_tokens(estimated_tokens + completion);
    req.set_estimated_cost_usd(
        (static_cast<double>(estimated_tokens) * model_.input_per_mtok_usd() +
         static_cast<double>(completion) * model_.output_per_mtok_usd()) /
        1e6);
    return req;
  }

  // Room in a guessed reservation for the results of a call's tools (about 32 KB of text).
  static constexpr int64_t kToolRoom = 8192;
  // A guess is used only while it outlives the longest call (a provider's total timeout
  // is 10 minutes by default; agentd grants 15): one asked for two turns ahead may have
  // waited through long tools, and one that expired mid-call would free its budget while
  // the call still spends it.
  static constexpr absl::Duration kAheadMinLifeLeft = absl::Minutes(11);
  // Each leg of a call's report (with the guess, then alone if that failed): together
  // within FlushReports' 10 s.
  static constexpr absl::Duration kAheadDeadline = absl::Seconds(4);
  // How long a call asks again while only other calls' guesses stand in its way.
  static constexpr absl::Duration kGuessesWait = absl::Seconds(60);
  // A reservation asked for ahead of the next call: set once, from a gRPC thread.
  struct Ahead {
    absl::Mutex mu;
    bool answered ABSL_GUARDED_BY(mu) = false;
    v1::BudgetReservation reservation;  // written before `answered`; empty: none
    std::string released;               // the guess the request released; set before it is sent
    void Set(v1::BudgetReservation r) {
      absl::MutexLock l(&mu);
      reservation = std::move(r);
      answered = true;
    }
    // The call has its own deadline: an answer always comes.
    void Wait() {
      absl::MutexLock l(&mu);
      mu.Await(absl::Condition(&answered));
    }
  };

  HostSession* host_;
  v1::ModelRef model_;
  int64_t run_;
  std::string reservation_;
  int calls_ = 0;
  int64_t last_estimate_ = 0;  // the prompt estimate of the last Reserve()
  // Guesses asked for ahead of the next calls, oldest first (at most two).
  std::deque<std::shared_ptr<Ahead>> ahead_;
  // Granted guesses this task will not use, released one per request it sends.
  std::vector<std::string> unused_;
};

// Consent through agentd: a request, then its decision, polled (a person takes seconds
// at best; four polls a second cost agentd nothing).
class HostConsent final : public tools::ConsentAsker {
 public:
  HostConsent(HostSession* host, std::string task_id) : host_(host), task_id_(std::move(task_id)) {}
  absl::StatusOr<bool> Ask(const tools::ConsentAsk& ask,
                           const llm::CancelToken* cancel) const override {
    v1::RequestConsentRequest req;
    req.set_task_id(task_id_);
    req.set_tool(ask.tool);
    switch (ask.kind) {
      case tools::ConsentKind::kNetwork:
        req.set_kind(v1::CONSENT_KIND_NETWORK);
        break;
      case tools::ConsentKind::kPathOutsideWorkspace:
        req.set_kind(v1::CONSENT_KIND_PATH_OUTSIDE_WORKSPACE);
        break;
      case tools::ConsentKind::kCommandNotAllowed:
        req.set_kind(v1::CONSENT_KIND_COMMAND_NOT_ALLOWED);
        break;
      case tools::ConsentKind::kDestructiveTool:
        req.set_kind(v1::CONSENT_KIND_DESTRUCTIVE_TOOL);
        break;
    }
    // No summary: agentd builds what a person is shown from the kind and the details, and
    // the decision binds to exactly those; the tool's own wording stays in this log.
    for (const auto& [k, v] : ask.details) (*req.mutable_details())[k] = v;
    req.set_request_id(ask.request_id);
    absl::StatusOr<v1::RequestConsentResponse> r = host_->RequestConsent(req);
    if (!r.ok())
      return absl::UnavailableError(absl::StrCat("asking for consent: ", r.status().message()));
    spdlog::info("waiting for a person to decide consent request {}: {}", r->consent_request_id(),
                 ask.summary);
    v1::ConsentStatus status = r->status();
    while (status == v1::CONSENT_STATUS_PENDING) {
      if (cancel != nullptr && cancel->WaitFor(absl::Milliseconds(250))) {
        return absl::CancelledError("the task was canceled while waiting for consent");
      }
      if (cancel == nullptr) absl::SleepFor(absl::Milliseconds(250));
      absl::StatusOr<v1::ConsentRequest> d = host_->GetConsentDecision(r->consent_request_id());
      if (!d.ok()) continue;  // agentd restarting: keep asking
      status = d->status();
    }
    spdlog::info("consent request {}: {}", r->consent_request_id(), v1::ConsentStatus_Name(status));
    return status == v1::CONSENT_STATUS_APPROVED;
  }

 private:
  HostSession* host_;
  std::string task_id_;
};

}  // namespace

TaskRunner::TaskRunner(HostSession* host, TaskRunnerOptions options)
    : host_(host),
      options_(std::move(options)),
      mcp_(std::make_unique<mcp::McpHub>(options_.provider_keys)) {
  if (!options_.session_path.empty()) {
    if (absl::Status s = mailbox_.Persist(options_.session_path); !s.ok()) {
      spdlog::error("the inbox is in memory only: {}", s.message());
    }
  }
}

void TaskRunner::OnDelivery(const v1::ConnectResponse& d) {
  absl::MutexLock l(&mu_);
  switch (d.delivery_case()) {
    case v1::ConnectResponse::kTaskAssignment: {
      const v1::TaskAssignment& a = d.task_assignment();
      // The same hand-back of the same attempt, sent again while worked or queued. A new
      // hand-back is new work, even while the last one is still winding down.
      std::string key = Done(a);
      if (key == current_) return;
      for (const v1::TaskAssignment& q : queue_) {
        if (Done(q) == key) return;
      }
      // Finished already: the daemon missed the outcome.
      if (auto f = finished_.find(Done(a)); f != finished_.end() && !f->second.has_waiting()) {
        host_->SendTaskEvent(f->second);
        return;
      }
      if (!d.traceparent().empty()) {
        if (traceparents_.size() >= 4096) traceparents_.clear();  // a bound; Work erases them
        traceparents_[a.task().id()] = d.traceparent();
      }
      queue_.push_back(a);
      break;
    }
    case v1::ConnectResponse::kCancelTask: {
      const std::string& id = d.cancel_task().task_id();
      if (current_.substr(0, current_.rfind('@')) == id && cancel_ != nullptr) {
        spdlog::info("task {}: canceled ({})", id, d.cancel_task().reason());
        cancel_->Cancel();
      }
      std::erase_if(queue_, [&](const v1::TaskAssignment& q) { return q.task().id() == id; });
      break;
    }
    case v1::ConnectResponse::kEnvelope:
      if (mailbox_.Put(d.envelope())) {
        spdlog::info("message {} from {}", d.envelope().id(), d.envelope().from());
      }
      break;
    case v1::ConnectResponse::kPlanDecision: {
      // Told to the model with the task, when it is handed back: a note from agentd about
      // that task, which the mailbox keeps for that task's conversation.
      const v1::Plan& p = d.plan_decision();
      v1::Envelope note;
      note.set_id(absl::StrCat("decision-", p.id(), "-", p.status()));
      note.set_from("agentd");
      note.set_task_id(p.task_id());
      std::string by = p.decided_by().empty() ? "" : absl::StrCat(" by ", p.decided_by());
      if (p.status() == v1::PLAN_STATUS_REJECTED) {
        note.set_body(absl::StrCat("plan ", p.id(), " was rejected", by, ": ", p.rejection_reason(),
                                   "\nRevise the plan and propose it again."));
      } else if (!p.previous_plan_id().empty() && p.proposer() == p.decided_by()) {
        // A person edited the proposal and approved the edit: what runs is theirs.
        std::vector<std::string> steps;
        for (const v1::PlanStep& s : p.steps()) {
          steps.push_back(absl::StrCat("- ", s.id(), " (", s.role(), "): ", s.title()));
        }
        note.set_body(absl::StrCat("plan ", p.previous_plan_id(), " was edited", by, " into plan ",
                                   p.id(), ", which was approved and runs instead. Its steps:\n",
                                   absl::StrJoin(steps, "\n")));
      } else {
        note.set_body(absl::StrCat("plan ", p.id(), " is ", v1::PlanStatus_Name(p.status()), by));
      }
      mailbox_.Put(note);
      break;
    }
    case v1::ConnectResponse::kShutdown:
      spdlog::info("agentd asks this agent to stop: {}", d.shutdown().reason());
      stop_ = true;
      if (cancel_ != nullptr) cancel_->Cancel();
      host_->Stop();
      break;
    default:
      break;
  }
}

void TaskRunner::Stop() {
  absl::MutexLock l(&mu_);
  stop_ = true;
  if (cancel_ != nullptr) cancel_->Cancel();
}

void TaskRunner::Run() {
  for (;;) {
    v1::TaskAssignment a;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](TaskRunner* r)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return r->stop_ || !r->queue_.empty(); },
          this));
      if (stop_) return;
      a = std::move(queue_.front());
      queue_.pop_front();
      current_ = Done(a);
      cancel_ = std::make_shared<llm::CancelToken>();
    }
    try {
      Work(a);
    } catch (const std::exception& e) {
      // No exception crosses an agent's turn: it fails the task (not retried: the same
      // session would meet it again) and the agent lives on for the next one.
      v1::TaskEvent ev;
      ev.mutable_failed()->set_code(v1::TASK_FAILURE_CODE_INTERNAL);
      ev.mutable_failed()->set_reason(
          absl::StrCat("agentd-agent failed on this task: ", ValidUtf8(e.what())));
      spdlog::error("task {}: {}", a.task().id(), ev.failed().reason());
      Send(a, ev);
      absl::MutexLock l(&mu_);
      finished_[Done(a)] = ev;
    }
    absl::MutexLock l(&mu_);
    current_.clear();
    cancel_.reset();
  }
}

void TaskRunner::Send(const v1::TaskAssignment& a, v1::TaskEvent ev, bool now) {
  // An outcome goes only after the usage it cost is in the ledger.
  if (ev.has_completed() || ev.has_failed() || ev.has_waiting()) {
    host_->FlushReports(absl::Seconds(10));
  }
  ev.set_task_id(a.task().id());
  ev.set_attempt(a.attempt());
  ev.set_handbacks(a.handbacks());
  // The last line of defence for "every string in a proto is UTF-8": agentd could not
  // parse an event with a bad string, and the stream would fail on it again and again.
  MakeStringsUtf8(&ev);
  absl::Time at = absl::Now();
  ev.mutable_time()->set_seconds(absl::ToUnixSeconds(at));
  if (now) {
    host_->SendTaskEvent(ev);
  } else {
    host_->QueueTaskEvent(ev);
  }
}

void TaskRunner::Work(const v1::TaskAssignment& a) {
  const v1::Task& task = a.task();
  std::string key = Key(task.id(), a.attempt());
  std::shared_ptr<llm::CancelToken> cancel;
  {
    absl::MutexLock l(&mu_);
    cancel = cancel_;
  }
  auto fail = [&](v1::TaskFailureCode code, std::string reason, bool retryable) {
    spdlog::warn("task {}: {}", task.id(), reason);
    v1::TaskEvent ev;
    ev.mutable_failed()->set_code(code);
    ev.mutable_failed()->set_reason(std::move(reason));
    ev.mutable_failed()->set_retryable(retryable);
    Send(a, ev);
    absl::MutexLock l(&mu_);
    finished_[Done(a)] = ev;
  };
  spdlog::info("task {} (attempt {}): {}", task.id(), a.attempt(), task.title());
  host_->SetActivity(v1::AGENT_ACTIVITY_BUSY, task.title());
  struct Idle {
    HostSession* host;
    ~Idle() { host->SetActivity(v1::AGENT_ACTIVITY_IDLE, ""); }
  } idle{host_};

  v1::AgentDefinition def = host_->definition();
  if (def.role() == "bootstrapper") {
    // The built-in role: a project template, no model.
    const char* templates = std::getenv("AGENTD_TEMPLATES");
    absl::StatusOr<std::string> done =
        Bootstrap(templates == nullptr ? "" : templates, task.workspace().template_(),
                  task.workspace().path(), cancel.get());
    if (!done.ok()) {
      if (done.status().code() == absl::StatusCode::kCancelled) return;
      fail(done.status().code() == absl::StatusCode::kFailedPrecondition
               ? v1::TASK_FAILURE_CODE_AGENT_REPORTED
               : v1::TASK_FAILURE_CODE_INVALID_INPUT,
           std::string(done.status().message()), false);
      return;
    }
    v1::TaskEvent ev;
    ev.mutable_completed()->mutable_result()->set_summary(*done);
    Send(a, ev);
    absl::MutexLock l(&mu_);
    finished_[Done(a)] = ev;
    return;
  }
  if (sessions_ == nullptr) {
    absl::StatusOr<std::unique_ptr<session::SessionStore>> s =
        session::SessionStore::Open(options_.session_path);
    if (!s.ok()) {
      fail(v1::TASK_FAILURE_CODE_INTERNAL,
           absl::StrCat("the session store cannot be opened: ", s.status().message()), true);
      return;
    }
    sessions_ = *std::move(s);
  }
  const v1::ModelRef& model = def.model();
  if (model.provider_kind().empty()) {
    fail(v1::TASK_FAILURE_CODE_INVALID_INPUT,
         absl::StrCat("role ", def.role(), " has no model configured (roles.", def.role(),
                      ".model)"),
         false);
    return;
  }
  llm::ProviderOptions po;
  po.name = model.provider();
  po.kind = model.provider_kind();
  po.base_url = model.base_url();
  po.input_per_mtok_usd = model.input_per_mtok_usd();
  po.output_per_mtok_usd = model.output_per_mtok_usd();
  po.cassette = model.cassette();
  // The provider's timeouts from agentd's config; each unset one keeps the default.
  auto timeout = [](const google::protobuf::Duration& d, absl::Duration* out) {
    absl::Duration v = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    if (v > absl::ZeroDuration()) *out = v;
  };
  timeout(model.connect_timeout(), &po.timeouts.connect);
  timeout(model.first_byte_timeout(), &po.timeouts.first_byte);
  timeout(model.idle_timeout(), &po.timeouts.idle);
  timeout(model.total_timeout(), &po.timeouts.total);
  po.record_path = options_.record_path;
  if (!model.api_key_env().empty()) {
    auto k = options_.provider_keys.find(model.api_key_env());
    if (k == options_.provider_keys.end() || k->second.empty()) {
      fail(
          v1::TASK_FAILURE_CODE_PROVIDER_ERROR,
          absl::StrCat("provider ", model.provider(), " needs an API key in $", model.api_key_env(),
                       ", which is not set in agentd's environment (agentd passes it on to "
                       "the agents whose model uses the provider)"),
          false);
      return;
    }
    po.api_key = k->second;
    AddLogSecret(po.api_key);
  }
  absl::StatusOr<std::unique_ptr<llm::LlmClient>> client = llm::LlmClient::Create(po);
  if (!client.ok()) {
    fail(v1::TASK_FAILURE_CODE_INVALID_INPUT, std::string(client.status().message()), false);
    return;
  }
  absl::StatusOr<std::unique_ptr<tools::Workspace>> ws =
      tools::Workspace::Open(task.workspace().path());
  if (!ws.ok()) {
    fail(v1::TASK_FAILURE_CODE_INVALID_INPUT,
         absl::StrCat("workspace ", task.workspace().path(), ": ", ws.status().message()), false);
    return;
  }
  std::vector<std::string> names(def.allowed_tools().begin(), def.allowed_tools().end());
  tools::ToolBox box = tools::ToolBox::ForRole(names);
  delegations_.Reset();
  // Children still open (the daemon handed the task back early, say after a restart):
  // the task goes on waiting for them rather than taking its last turn as the answer.
  for (const v1::TaskBrief& c : a.children()) {
    if (c.status() != v1::TASK_STATUS_COMPLETED && c.status() != v1::TASK_STATUS_FAILED &&
        c.status() != v1::TASK_STATUS_CANCELED) {
      delegations_.Opened(c.task_id());
    }
  }
  for (std::unique_ptr<tools::Tool>& t : DaemonTools(names, host_, &delegations_, &mailbox_)) {
    box.Add(std::move(t));
  }
  tools::ShellOptions shell;
  shell.allow.assign(def.shell_allow().begin(), def.shell_allow().end());
  // policy.shell.sandbox, from agentd's config in the definition (empty from an older
  // daemon: auto), and what the probe at start found.
  shell.sandbox = def.shell_sandbox().empty() ? "auto" : def.shell_sandbox();
  shell.sandbox_broken = options_.sandbox_problem;
  if (shell.sandbox == "required" && !shell.sandbox_broken.empty()) {
    // Fails closed, at once and whole: a task that cannot run its programs gets nowhere,
    // and a person must hear why rather than watch each tool call fail.
    std::vector<std::string> needs;
    for (const tools::Tool* t : box.tools()) {
      if (t->name() == "shell.run" || t->name() == "tests.run" ||
          absl::StartsWith(t->name(), "git.")) {
        needs.push_back(t->name());
      }
    }
    if (!needs.empty()) {
      fail(v1::TASK_FAILURE_CODE_INVALID_INPUT,
           absl::StrCat("policy.shell.sandbox is required, but the sandbox does not work on this "
                        "agent's host: ",
                        shell.sandbox_broken, " (role ", def.role(), " runs programs with ",
                        absl::StrJoin(needs, ", "),
                        "); fix the sandbox, or set policy.shell.sandbox to auto"),
           false);
      return;
    }
  }
  if (def.limits().max_tool_output_bytes() > 0) {
    shell.output_cap = static_cast<size_t>(def.limits().max_tool_output_bytes());
  }
  if (def.limits().has_tool_timeout()) {
    shell.timeout = absl::Seconds(def.limits().tool_timeout().seconds());
  }
  HostConsent consent(host_, task.id());
  // The MCP servers' tools the role grants: the servers are started here (kept for the
  // next task in the same workspace). What cannot be offered is told, not fatal.
  {
    std::vector<mcp::ServerSpec> specs;
    for (const v1::McpServerDefinition& d : def.mcp_servers()) {
      mcp::ServerSpec s;
      s.name = d.name();
      s.command = d.command();
      s.args.assign(d.args().begin(), d.args().end());
      s.url = d.url();
      s.env.insert(d.env().begin(), d.env().end());
      s.headers.insert(d.headers().begin(), d.headers().end());
      s.read_only_paths.assign(d.read_only_paths().begin(), d.read_only_paths().end());
      s.network = d.network();
      if (d.has_call_timeout() && d.call_timeout().seconds() > 0) {
        s.call_timeout =
            absl::Seconds(d.call_timeout().seconds()) + absl::Nanoseconds(d.call_timeout().nanos());
      }
      specs.push_back(std::move(s));
    }
    std::vector<std::string> wire = {llm::WireToolName("complete_task"),
                                     llm::WireToolName("fail_task")};
    for (const tools::Tool* t : box.tools()) wire.push_back(llm::WireToolName(t->name()));
    std::vector<std::string> problems;
    for (std::unique_ptr<tools::Tool>& t :
         mcp_->ToolsFor(specs, names, task.workspace().path(), shell, wire, &consent, cancel.get(),
                        &problems)) {
      box.Add(std::move(t));
    }
    for (const std::string& p : problems) {
      spdlog::warn("task {}: {}", task.id(), p);
      v1::TaskEvent ev;
      ev.mutable_progress()->set_text(absl::StrCat("MCP: ", p));
      Send(a, ev);
    }
  }

  // The system prompt: the role's template with its variables.
  std::vector<std::string> tool_names;
  for (const tools::Tool* t : box.tools()) tool_names.push_back(t->name());
  tool_names.push_back("complete_task");
  tool_names.push_back("fail_task");
  std::vector<std::string> parents;
  for (const v1::TaskBrief& b : a.ancestors()) parents.push_back(Brief(b));
  std::string knowledge;
  for (const v1::KnowledgeRef& k : def.knowledge()) {
    if (k.content().empty() || knowledge.size() + k.content().size() > kKnowledgeBound) {
      absl::StrAppend(&knowledge, "## ", k.name(), "\n(not included: read it at ", k.uri(),
                      ")\n\n");
      continue;
    }
    absl::StrAppend(&knowledge, "## ", k.name(), "\n", k.content(), "\n\n");
  }
  std::map<std::string, std::string> vars = {
      {"agent", def.id()},
      {"role", def.role()},
      {"task", task.title()},
      {"workspace", task.workspace().path()},
      {"tools", absl::StrJoin(tool_names, ", ")},
      {"parent_summaries",
       parents.empty() ? "(none: this is a goal)" : absl::StrJoin(parents, "\n")},
      {"knowledge", knowledge}};
  std::string tmpl =
      def.system_prompt_template().empty() ? kDefaultPrompt : def.system_prompt_template();
  std::vector<std::string> unknown;
  std::string system = RenderTemplate(tmpl, vars, &unknown);
  for (const std::string& u : unknown) {
    spdlog::warn("prompt template of role {}: unknown variable {{{{{}}}}} left as written",
                 def.role(), u);
  }
  if (!knowledge.empty() && tmpl.find("knowledge") == std::string::npos) {
    absl::StrAppend(&system, "\n\n# Reference material\n\n", knowledge);
  }

  // The first user message: the task itself, what it builds on.
  std::string instructions = task.input().instructions();
  if (!task.input().context().empty()) {
    absl::StrAppend(&instructions, "\n\nContext:\n", task.input().context());
  }
  if (!a.dependencies().empty()) {
    std::vector<std::string> deps;
    for (const v1::TaskBrief& b : a.dependencies()) deps.push_back(Brief(b));
    absl::StrAppend(&instructions, "\n\nThis task builds on:\n", absl::StrJoin(deps, "\n"));
  }
  std::string resume_note;
  if (!a.children().empty()) {
    std::vector<std::string> kids;
    for (const v1::TaskBrief& b : a.children()) kids.push_back(Brief(b));
    resume_note = absl::StrCat("The tasks you delegated have ended:\n", absl::StrJoin(kids, "\n"),
                               "\n\nGo on with your task.");
  }

  HostBudget budget(host_, model, a.reservations());
  LoopLimits limits;
  if (def.limits().max_turns() > 0) limits.max_turns = def.limits().max_turns();
  if (def.limits().has_max_nudges()) limits.max_nudges = std::max(0, def.limits().max_nudges());
  limits.ends_on_text = def.ends_on_text();
  if (def.limits().has_task_timeout()) {
    limits.max_wall = absl::Seconds(def.limits().task_timeout().seconds());
  }
  std::string call_id = absl::StrCat(key, "/", absl::ToUnixMicros(absl::Now()));
  LoopEvents events;
  // The transcript: what the model was told, said and did, for people to read. Secrets
  // agentd handed over (provider keys) are taken out, and an entry is kept well within a
  // gRPC message (agentd cuts it again to its own transcripts.entry_bytes).
  // A turn's messages to agentd go two to a write: the model's turn with what comes next
  // (its first tool call's start, its outcome, a nudge, or at the latest the next call), a
  // tool call's end with its transcript entry.
  auto record = [&](v1::TranscriptEntry entry, bool now = true) {
    TransformStrings(&entry, [](const std::string& s) { return RedactSecrets(s); });
    MakeStringsUtf8(&entry);
    if (int64_t cut = FitStrings(&entry, kTranscriptEntryBound); cut > 0) {
      entry.set_omitted_bytes(cut);
    }
    v1::TaskEvent ev;
    *ev.mutable_transcript() = std::move(entry);
    Send(a, ev, now);
  };
  events.calling = [&] { host_->Flush(); };
  events.prompt = [&](const std::string& system_text, const std::string& first_message) {
    v1::TranscriptEntry e;
    v1::TranscriptPrompt* p = e.mutable_prompt();
    p->set_system_prompt(system_text);
    p->set_instructions(first_message);
    for (const std::string& t : tool_names) p->add_tools(t);
    p->set_provider(model.provider());
    p->set_model(model.model());
    record(std::move(e));
  };
  events.note = [&](NoteKind kind, const std::string& text) {
    v1::TranscriptEntry e;
    switch (kind) {
      case NoteKind::kNudge:
        e.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_NUDGE);
        break;
      case NoteKind::kResumed:
        e.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_RESUMED);
        break;
      case NoteKind::kMessage:
        e.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_MESSAGE);
        break;
      case NoteKind::kCompletionRefused:
        e.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_COMPLETION_REFUSED);
        break;
    }
    e.mutable_note()->set_text(text);
    record(std::move(e));
  };
  events.turn = [&](const absl::StatusOr<llm::ChatResult>& r, const llm::CallStats& stats) {
    v1::TranscriptEntry e;
    v1::TranscriptModelTurn* t = e.mutable_model_turn();
    t->set_provider(model.provider());
    t->set_model(model.model());
    if (r.ok()) {
      t->set_text(r->text);
      t->set_reasoning(r->reasoning);
      for (const llm::ToolCall& c : r->tool_calls) {
        v1::TranscriptToolRequest* q = t->add_tool_calls();
        q->set_tool_call_id(c.id);
        q->set_tool(c.name);
        // In full in the call's own entry (STARTED); here enough to tell the calls apart,
        // for those never run (complete_task's summary is in its outcome).
        q->set_arguments_json(Utf8Prefix(c.arguments, 16 << 10, "..."));
      }
      t->set_prompt_tokens(r->usage.prompt_tokens);
      t->set_completion_tokens(r->usage.completion_tokens);
      t->set_cost_usd(r->cost_usd);
      t->set_finish_reason(r->finish_reason);
    } else {
      t->set_error(std::string(r.status().message()));
    }
    SetProtoDuration(stats.latency, t->mutable_latency());
    if (stats.first_token != absl::InfiniteDuration()) {
      SetProtoDuration(stats.first_token, t->mutable_time_to_first_token());
    }
    t->set_attempts(stats.attempts);
    for (const std::string& why : stats.retry_reasons) t->add_retry_reasons(why);
    record(std::move(e), /*now=*/false);
  };
  // When each running tool call began (for its duration), and what it acts on.
  struct Running {
    absl::Time start;
    std::string summary;
  };
  std::map<std::string, Running> tool_start;
  events.text = [&](absl::string_view text) {
    v1::TaskEvent ev;
    ev.mutable_token_chunk()->set_call_id(call_id);
    ev.mutable_token_chunk()->set_text(std::string(text));
    Send(a, ev);
  };
  events.text_discarded = [&] {
    v1::TaskEvent ev;
    ev.mutable_token_chunk()->set_call_id(call_id);
    ev.mutable_token_chunk()->set_discarded(true);
    Send(a, ev);
  };
  // No ToolCallStarted: the call's STARTED transcript entry tells people, and its
  // ToolCallFinished carries what agentd needs (call_summary): one message less a call.
  // Unless agentd is of a version that needs it for the call's audit entry.
  const bool send_started = !host_->Supports(kFeatureCallSummary);
  events.tool_started = [&](const llm::ToolCall& call) {
    Running& running = tool_start[call.id];
    running = {absl::Now(), CallSummary(call)};
    if (send_started) {
      v1::TaskEvent ev;
      v1::ToolCallStarted* s = ev.mutable_tool_call_started();
      s->set_tool_call_id(call.id);
      s->set_tool(call.name);
      s->set_summary(running.summary);
      Send(a, ev);
    }
    v1::TranscriptEntry e;
    v1::TranscriptToolCall* c = e.mutable_tool_call();
    c->set_tool_call_id(call.id);
    c->set_tool(call.name);
    c->set_phase(v1::TOOL_CALL_PHASE_STARTED);
    c->set_arguments_json(call.arguments);
    c->set_summary(running.summary);
    record(std::move(e));
  };
  events.tool = [&](const llm::ToolCall& call, const tools::ToolResult& r) {
    v1::TaskEvent ev;
    v1::ToolCallFinished* f = ev.mutable_tool_call_finished();
    f->set_tool_call_id(call.id);
    f->set_tool(call.name);
    f->set_ok(!r.error);
    std::string first = Utf8Prefix(r.content.substr(0, r.content.find('\n')), 200, "...");
    (r.error ? f->mutable_error() : f->mutable_output_summary())->assign(first);
    f->set_output_bytes(static_cast<int64_t>(r.content.size()));
    absl::Duration took = absl::ZeroDuration();
    if (auto it = tool_start.find(call.id); it != tool_start.end()) {
      took = absl::Now() - it->second.start;
      f->set_call_summary(std::move(it->second.summary));
      tool_start.erase(it);
      SetProtoDuration(took, f->mutable_duration());
    } else {
      f->set_call_summary(CallSummary(call));
    }
    Send(a, ev, /*now=*/false);  // with the transcript entry below
    v1::TranscriptEntry e;
    v1::TranscriptToolCall* c = e.mutable_tool_call();
    c->set_tool_call_id(call.id);
    c->set_tool(call.name);
    c->set_phase(v1::TOOL_CALL_PHASE_FINISHED);
    c->set_ok(!r.error);
    c->set_result(r.content);
    c->set_summary(first);
    c->set_diff(r.diff);
    SetProtoDuration(took, c->mutable_duration());
    record(std::move(e));
  };
  // Spans, when agentd traces the task: under the context its assignment came with.
  std::optional<TaskSpans> spans;
  std::optional<otel::TraceContext> trace;
  {
    absl::MutexLock l(&mu_);
    if (auto it = traceparents_.find(task.id()); it != traceparents_.end()) {
      trace = otel::ParseTraceparent(it->second);
    }
  }
  if (trace.has_value() && def.has_telemetry()) {
    spans.emplace(host_, *trace, def.telemetry(), model, task.id());
    events.model_trace = [&spans] { return spans->NextModelCall(); };
    events.model_call = [&spans](const llm::ChatRequest& req, absl::Time start,
                                 const absl::StatusOr<llm::ChatResult>& r,
                                 const llm::CallStats& stats) {
      spans->ModelCall(req, start, r, stats);
    };
    events.tool_trace = [&spans](const llm::ToolCall& call) { return spans->ToolStarted(call); };
    auto tool_done = std::move(events.tool);
    events.tool = [&spans, tool_done = std::move(tool_done)](const llm::ToolCall& call,
                                                             const tools::ToolResult& r) {
      spans->ToolEnded(call, r);
      if (tool_done) tool_done(call, r);
    };
  }
  events.open_children = [this] { return delegations_.open(); };
  events.inbox = [this, task_id = task.id()] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const v1::Envelope& m : mailbox_.TakeInbox(task_id)) {
      out.emplace_back(m.id(),
                       absl::StrCat("Message ", m.id(), " from ", m.from(), ": ", m.body()));
    }
    return out;
  };
  // Tools name the daemon's task; the session keys it by attempt too.
  tools::ToolContext ctx{ws->get(), &shell, cancel.get(), task.id(), "", &consent, ""};
  AgentLoop loop(client->get(), model.model(), &box, ctx, sessions_.get(), &budget, limits,
                 std::move(events));
  Sampling sampling;
  if (model.temperature() != 0) sampling.temperature = model.temperature();
  if (model.max_tokens() > 0) sampling.max_tokens = model.max_tokens();
  loop.set_sampling(sampling);
  absl::StatusOr<TaskOutcome> out =
      loop.Run(key, system, instructions, cancel.get(), resume_note, a.completion_refused());
  {
    absl::MutexLock l(&mu_);
    traceparents_.erase(task.id());  // a later assignment of the task brings it again
  }
  if (!out.ok()) {
    fail(v1::TASK_FAILURE_CODE_INTERNAL,
         absl::StrCat("the session store failed: ", out.status().message()), true);
    return;
  }
  v1::TaskEvent ev;
  switch (out->status) {
    case TaskOutcome::Status::kCompleted:
      ev.mutable_completed()->mutable_result()->set_summary(out->summary);
      spdlog::info("task {} completed ({} turns, {} + {} tokens)", task.id(), out->turns,
                   out->usage.prompt_tokens, out->usage.completion_tokens);
      break;
    case TaskOutcome::Status::kWaiting:
      ev.mutable_waiting()->set_reason(out->summary);
      spdlog::info("task {}: waiting for {}", task.id(), out->summary);
      break;
    case TaskOutcome::Status::kCanceled:
      spdlog::info("task {}: stopped (canceled)", task.id());
      return;  // the daemon ended it already
    case TaskOutcome::Status::kFailed: {
      v1::TaskFailed* f = ev.mutable_failed();
      f->set_reason(out->summary);
      switch (out->failure) {
        case TaskOutcome::Failure::kBudget:
          f->set_code(v1::TASK_FAILURE_CODE_BUDGET_EXCEEDED);
          break;
        case TaskOutcome::Failure::kProvider:
          f->set_code(v1::TASK_FAILURE_CODE_PROVIDER_ERROR);
          f->set_retryable(true);
          break;
        case TaskOutcome::Failure::kLimit:
          f->set_code(v1::TASK_FAILURE_CODE_TIMEOUT);
          break;
        case TaskOutcome::Failure::kNoResult:
          f->set_code(v1::TASK_FAILURE_CODE_NO_RESULT);
          break;
        default:
          f->set_code(v1::TASK_FAILURE_CODE_AGENT_REPORTED);
          break;
      }
      spdlog::info("task {} failed: {}", task.id(), out->summary);
      break;
    }
  }
  Send(a, ev);
  absl::MutexLock l(&mu_);
  finished_[Done(a)] = ev;
}

}  // namespace agentd::agent
