#include "manager/api/task_service.h"

#include <deque>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "manager/api/feed_reactor.h"
#include "manager/api/unary.h"
#include "manager/core/project_templates.h"
#include "manager/core/task_status.h"

namespace agentd {
namespace {

// Stores a StatusOr's value through `set` and returns its status.
template <typename T, typename Set>
absl::Status Take(absl::StatusOr<T> r, Set set) {
  if (!r.ok()) return r.status();
  set(*std::move(r));
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* TaskService::SubmitGoal(grpc::CallbackServerContext* ctx,
                                                  const v1::SubmitGoalRequest* req,
                                                  v1::SubmitGoalResponse* resp) {
  return OnLoopAsync(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)](auto finish) {
    tasks_->SubmitGoal(*req, by, [resp, finish](absl::StatusOr<v1::Task> t) {
      finish(Take(std::move(t), [resp](v1::Task goal) { *resp->mutable_goal() = goal; }));
    });
  });
}

grpc::ServerUnaryReactor* TaskService::GetTask(grpc::CallbackServerContext* ctx,
                                               const v1::GetTaskRequest* req,
                                               v1::GetTaskResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(tasks_->Get(req->task_id()), [resp](v1::Task t) { *resp->mutable_task() = t; });
  });
}

grpc::ServerUnaryReactor* TaskService::ListTasks(grpc::CallbackServerContext* ctx,
                                                 const v1::ListTasksRequest* req,
                                                 v1::ListTasksResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(tasks_->List(*req), [resp](v1::ListTasksResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* TaskService::CancelTask(grpc::CallbackServerContext* ctx,
                                                  const v1::CancelTaskRequest* req,
                                                  v1::CancelTaskResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(tasks_->Cancel(req->task_id(), req->reason(), by),
                [resp](v1::CancelTaskResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* TaskService::PauseGoal(grpc::CallbackServerContext* ctx,
                                                 const v1::PauseGoalRequest* req,
                                                 v1::PauseGoalResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(tasks_->SetPaused(req->goal_id(), true, by),
                [resp](v1::Task t) { *resp->mutable_goal() = t; });
  });
}

grpc::ServerUnaryReactor* TaskService::ResumeGoal(grpc::CallbackServerContext* ctx,
                                                  const v1::ResumeGoalRequest* req,
                                                  v1::ResumeGoalResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(tasks_->SetPaused(req->goal_id(), false, by),
                [resp](v1::Task t) { *resp->mutable_goal() = t; });
  });
}

grpc::ServerUnaryReactor* TaskService::RetryTask(grpc::CallbackServerContext* ctx,
                                                 const v1::RetryTaskRequest* req,
                                                 v1::RetryTaskResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(tasks_->Retry(req->task_id(), by),
                [resp](v1::Task t) { *resp->mutable_task() = t; });
  });
}

grpc::ServerUnaryReactor* TaskService::OpenWorkspace(grpc::CallbackServerContext* ctx,
                                                     const v1::OpenWorkspaceRequest* req,
                                                     v1::OpenWorkspaceResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(opener_->Open(req->task_id(), by),
                [resp](v1::OpenWorkspaceResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* MessageService::SendMessage(grpc::CallbackServerContext* ctx,
                                                      const v1::SendMessageRequest* req,
                                                      v1::SendMessageResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    v1::Envelope msg;
    msg.set_to(req->to());
    msg.set_body(req->body());
    msg.set_type(req->type());
    msg.set_task_id(req->task_id());
    msg.set_goal_id(req->goal_id());
    msg.set_reply_to_id(req->reply_to_id());
    return Take(bus_->Send(by, msg),
                [resp](v1::Envelope e) { *resp->mutable_envelope() = std::move(e); });
  });
}

grpc::ServerUnaryReactor* MessageService::ListMessages(grpc::CallbackServerContext* ctx,
                                                       const v1::ListMessagesRequest* req,
                                                       v1::ListMessagesResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    *resp = bus_->List(*req);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::WatchMessagesResponse>* MessageService::WatchMessages(
    grpc::CallbackServerContext* ctx, const v1::WatchMessagesRequest* req) {
  grpc::Status auth = auth_.Check(ctx);
  if (!auth.ok()) return new RefusedStream<v1::WatchMessagesResponse>(auth);
  // Each message is committed with its "message.sent" event: the stored ones after the
  // cursor come from the bus, then the feed brings each new one (from the feed's position
  // when the backlog was read, on the loop, so none is missed or sent twice).
  v1::EventFilter filter;
  filter.add_kinds("message.sent");
  std::string goal = req->goal_id(), agent = req->agent_id();
  int64_t after = req->after_seq();
  auto sent_up_to = std::make_shared<int64_t>(0);  // the highest message seq queued
  return new FeedReactor<v1::WatchMessagesResponse>(
      loop_, feed_, filter,
      [bus = bus_, goal, agent, sent_up_to](v1::Event& e, v1::WatchMessagesResponse* out) {
        if (!e.has_envelope()) return false;
        // The message as the bus holds it (its seq, whom a role: message went to), matched
        // as the backlog is.
        const v1::Envelope* m = bus->Find(e.envelope().id());
        if (m == nullptr || m->seq() <= *sent_up_to || !Bus::Matches(*m, goal, "", agent)) {
          return false;
        }
        *sent_up_to = m->seq();
        *out->mutable_envelope() = *m;
        return true;
      },
      [bus = bus_, feed = feed_, goal, agent, after,
       sent_up_to](std::deque<v1::WatchMessagesResponse>* out) {
        if (after < 0) {
          *sent_up_to = bus->LastSeq();
          return feed->last_seq();
        }
        // A cursor past the newest message (a stale one, or an event's seq by mistake)
        // follows from the newest: no later message is held back by it.
        const int64_t from = std::min(after, bus->LastSeq());
        *sent_up_to = from;
        v1::ListMessagesRequest list;
        list.set_goal_id(goal);
        list.set_agent_id(agent);
        list.set_page_size(1000);
        list.set_page_token(absl::StrCat(from));
        for (;;) {
          v1::ListMessagesResponse page = bus->List(list);
          for (v1::Envelope& m : *page.mutable_envelopes()) {
            *sent_up_to = std::max(*sent_up_to, m.seq());
            v1::WatchMessagesResponse r;
            *r.mutable_envelope() = std::move(m);
            out->push_back(std::move(r));
          }
          if (page.next_page_token().empty()) break;
          list.set_page_token(page.next_page_token());
        }
        return feed->last_seq();
      });
}

grpc::ServerUnaryReactor* PlanService::ListPlans(grpc::CallbackServerContext* ctx,
                                                 const v1::ListPlansRequest* req,
                                                 v1::ListPlansResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(plans_->List(*req), [resp](v1::ListPlansResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* PlanService::GetPlan(grpc::CallbackServerContext* ctx,
                                               const v1::GetPlanRequest* req,
                                               v1::GetPlanResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(plans_->Get(req->plan_id()), [resp](v1::Plan p) { *resp->mutable_plan() = p; });
  });
}

grpc::ServerUnaryReactor* PlanService::ApprovePlan(grpc::CallbackServerContext* ctx,
                                                   const v1::ApprovePlanRequest* req,
                                                   v1::ApprovePlanResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(plans_->Decide(*req, by),
                [resp](v1::ApprovePlanResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* PlanService::RejectPlan(grpc::CallbackServerContext* ctx,
                                                  const v1::RejectPlanRequest* req,
                                                  v1::RejectPlanResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(plans_->Reject(req->plan_id(), req->reason(), by),
                [resp](v1::Plan p) { *resp->mutable_plan() = p; });
  });
}

grpc::ServerUnaryReactor* AuditService::ListAuditEntries(grpc::CallbackServerContext* ctx,
                                                         const v1::ListAuditEntriesRequest* req,
                                                         v1::ListAuditEntriesResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(audit_->List(*req),
                [resp](v1::ListAuditEntriesResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* AuditService::VerifyAuditChain(grpc::CallbackServerContext* ctx,
                                                         const v1::VerifyAuditChainRequest* req,
                                                         v1::VerifyAuditChainResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(audit_->Verify(*req),
                [resp](v1::VerifyAuditChainResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* UsageService::GetUsage(grpc::CallbackServerContext* ctx,
                                                 const v1::GetUsageRequest* req,
                                                 v1::GetUsageResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(ledger_->GetUsage(*req), [resp](v1::GetUsageResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* UsageService::ListUsageRecords(grpc::CallbackServerContext* ctx,
                                                         const v1::ListUsageRecordsRequest* req,
                                                         v1::ListUsageRecordsResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(ledger_->ListRecords(*req),
                [resp](v1::ListUsageRecordsResponse r) { *resp = std::move(r); });
  });
}

grpc::ServerUnaryReactor* UsageService::GetBudget(grpc::CallbackServerContext* ctx,
                                                  const v1::GetBudgetRequest* req,
                                                  v1::GetBudgetResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp] {
    return Take(ledger_->GetBudget(req->scope(), req->scope_id()),
                [resp](v1::Budget b) { *resp->mutable_budget() = std::move(b); });
  });
}

grpc::ServerUnaryReactor* UsageService::SetBudget(grpc::CallbackServerContext* ctx,
                                                  const v1::SetBudgetRequest* req,
                                                  v1::SetBudgetResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp, by = HumanCaller(ctx)] {
    return Take(ledger_->SetBudget(*req, by),
                [resp](v1::Budget b) { *resp->mutable_budget() = std::move(b); });
  });
}

grpc::ServerUnaryReactor* TaskService::GetTranscript(grpc::CallbackServerContext* ctx,
                                                     const v1::GetTranscriptRequest* req,
                                                     v1::GetTranscriptResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp]() -> absl::Status {
    if (absl::StatusOr<v1::Task> t = tasks_->Get(req->task_id()); !t.ok()) return t.status();
    int64_t after = std::max<int64_t>(req->after_seq(), 0);
    if (!req->page_token().empty() && !absl::SimpleAtoi(req->page_token(), &after)) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token \"", req->page_token(), "\" is not one this server issued"));
    }
    const int size = req->page_size() <= 0 ? 100 : std::min(req->page_size(), 1000);
    // One more than asked for says whether there is a next page.
    absl::StatusOr<std::vector<v1::TranscriptEntry>> entries =
        transcripts_->Read(req->task_id(), after, size + 1);
    if (!entries.ok()) return entries.status();
    // More when there was one more than asked for, or the read stopped at its byte bound.
    bool more = static_cast<int>(entries->size()) > size;
    if (more) {
      entries->pop_back();
    } else if (!entries->empty()) {
      absl::StatusOr<std::vector<v1::TranscriptEntry>> next =
          transcripts_->Read(req->task_id(), entries->back().seq(), 1);
      if (!next.ok()) return next.status();
      more = !next->empty();
    }
    for (v1::TranscriptEntry& e : *entries) *resp->add_entries() = std::move(e);
    if (more) resp->set_next_page_token(absl::StrCat(resp->entries().rbegin()->seq()));
    absl::StatusOr<TranscriptDropped> dropped = transcripts_->Dropped(req->task_id());
    if (!dropped.ok()) return dropped.status();
    resp->set_dropped_entries(dropped->entries);
    resp->set_dropped_bytes(dropped->bytes);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::WatchTranscriptResponse>* TaskService::WatchTranscript(
    grpc::CallbackServerContext* ctx, const v1::WatchTranscriptRequest* req) {
  grpc::Status auth = auth_.Check(ctx);
  if (!auth.ok()) return new RefusedStream<v1::WatchTranscriptResponse>(auth);
  using Reactor = FeedReactor<v1::WatchTranscriptResponse>;
  return new Reactor(
      loop_, feed_,
      [tasks = tasks_, transcripts = transcripts_, task = req->task_id(),
       live = std::make_shared<std::pair<uint64_t, size_t>>(0, 0)](
          int64_t* cursor, std::deque<v1::WatchTranscriptResponse>* batch,
          bool* end) -> absl::Status {
        if (*cursor < 0) {
          return absl::InvalidArgumentError(
              "after_seq must not be negative: 0 sends the whole transcript first");
        }
        // Whether the task has ended is read before its entries: the entries recorded up
        // to its end (agentd's outcome last) are all in this read, or a later one.
        absl::StatusOr<v1::Task> t = tasks->Get(task);
        if (!t.ok()) return t.status();
        absl::StatusOr<std::vector<v1::TranscriptEntry>> entries =
            transcripts->Read(task, *cursor, Reactor::kBatch);
        if (!entries.ok()) return entries.status();
        for (v1::TranscriptEntry& e : *entries) {
          *cursor = e.seq();
          v1::WatchTranscriptResponse r;
          *r.mutable_entry() = std::move(e);
          batch->push_back(std::move(r));
        }
        // Then the model's text as it streams, once caught up with what is stored (a
        // stored model turn ends the pieces before it).
        if (entries->empty()) {
          for (v1::TranscriptEntry& e : transcripts->LiveSince(task, &live->first, &live->second)) {
            v1::WatchTranscriptResponse r;
            *r.mutable_entry() = std::move(e);
            batch->push_back(std::move(r));
          }
        }
        // Only an empty read (caught up) ends it: a read cut by its byte bound is not empty.
        *end = Final(t->status());
        return absl::OkStatus();
      },
      [after = req->after_seq()](std::deque<v1::WatchTranscriptResponse>*) { return after; },
      [transcripts = transcripts_, task = req->task_id()](std::function<void()> wake) {
        int id = transcripts->Watch(task, std::move(wake));
        return std::function<void()>([transcripts, id] { transcripts->Unwatch(id); });
      });
}

grpc::ServerUnaryReactor* TaskService::ListTemplates(grpc::CallbackServerContext* ctx,
                                                     const v1::ListTemplatesRequest*,
                                                     v1::ListTemplatesResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  try {
    for (v1::ProjectTemplate& t : ListProjectTemplates(tasks_->templates_dir())) {
      *resp->add_templates() = std::move(t);
    }
    reactor->Finish(grpc::Status::OK);
  } catch (const std::exception& e) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                 absl::StrCat("listing templates: ", ValidUtf8(e.what()))));
  }
  return reactor;
}

}  // namespace agentd
