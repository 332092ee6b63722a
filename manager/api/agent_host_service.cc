#include "manager/api/agent_host_service.h"

#include <atomic>
#include <deque>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/token.h"
#include "manager/api/status.h"
#include "manager/core/proto_time.h"

namespace agentd {

std::string BearerToken(const grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end()) return "";
  std::string value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(value, kBearer)) return "";
  return value.substr(kBearer.size());
}

grpc::Status ClientAuth::Check(const grpc::CallbackServerContext* ctx) const {
  std::string token = BearerToken(ctx);
  if (token.empty() || TokenEquals(token, admin_token)) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "this token is not the admin token: an agent's token may call "
                      "agentd.v1.AgentHostService only");
}

grpc::ServerUnaryReactor* AgentHostService::Register(grpc::CallbackServerContext* ctx,
                                                     const v1::RegisterRequest* req,
                                                     v1::RegisterResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  loop_->Post([this, reactor, req, resp, token = BearerToken(ctx)] {
    absl::StatusOr<v1::RegisterResponse> r = supervisor_->Register(token, *req);
    if (r.ok()) {
      *resp = *std::move(r);
      *resp->mutable_resume() = tasks_->ResumeHint(req->agent_id());
    }
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::Heartbeat(grpc::CallbackServerContext* ctx,
                                                      const v1::HeartbeatRequest* req,
                                                      v1::HeartbeatResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  std::string token = BearerToken(ctx);
  // One that only renews the lease is answered here, as on the Connect stream.
  if (std::optional<absl::Time> expiry = supervisor_->leases()->TryRenewCall(token, *req)) {
    SetTime(*expiry, resp->mutable_lease_expire_time());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  loop_->Post([this, reactor, req, resp, token = std::move(token)] {
    absl::StatusOr<v1::HeartbeatResponse> r = supervisor_->Heartbeat(token, *req);
    if (r.ok()) *resp = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

// Runs `fn(agent_id)` on the core loop as the agent the call's token names, or finishes
// the call with UNAUTHENTICATED. `urgent`: the agent's turn waits for the answer (its
// budget before a model call, its usage before an outcome), so the step goes ahead of
// the loop's queue (EventLoop::PostUrgent).
template <typename Fn>
void AsAgent(EventLoop* loop, Supervisor* supervisor, grpc::CallbackServerContext* ctx,
             grpc::ServerUnaryReactor* reactor, Fn fn, bool urgent = false) {
  auto step = [supervisor, reactor, fn = std::move(fn), token = BearerToken(ctx)]() mutable {
    absl::StatusOr<std::string> id = supervisor->AgentForToken(token);
    if (!id.ok()) {
      reactor->Finish(ToGrpcStatus(id.status()));
      return;
    }
    fn(*id);
  };
  if (urgent) {
    loop->PostUrgent(std::move(step));
  } else {
    loop->Post(std::move(step));
  }
}

grpc::ServerUnaryReactor* AgentHostService::RequestConsent(grpc::CallbackServerContext* ctx,
                                                           const v1::RequestConsentRequest* req,
                                                           v1::RequestConsentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(loop_, supervisor_, ctx, reactor, [this, reactor, req, resp](const std::string& id) {
    if (req->kind() == v1::CONSENT_KIND_OPEN_EDITOR) {
      // Only a person, through the UI, opens editors (TaskService.OpenWorkspace).
      reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   "agents may not ask to open an editor on the host"));
      return;
    }
    // A consent is for a task the agent holds, and binds to that attempt of it.
    absl::StatusOr<v1::Task> task = scope_.HeldTask(id, req->task_id());
    if (!task.ok()) {
      reactor->Finish(ToGrpcStatus(task.status()));
      return;
    }
    absl::StatusOr<v1::RequestConsentResponse> r =
        consents_->Request(id, *req, task->goal_id(), task->attempts());
    if (r.ok()) *resp = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::GetConsentDecision(
    grpc::CallbackServerContext* ctx, const v1::GetConsentDecisionRequest* req,
    v1::GetConsentDecisionResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(loop_, supervisor_, ctx, reactor, [this, reactor, req, resp](const std::string& id) {
    absl::StatusOr<v1::ConsentRequest> r = consents_->Get(id, req->consent_request_id());
    if (r.ok()) *resp->mutable_consent_request() = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::ReserveBudget(grpc::CallbackServerContext* ctx,
                                                          const v1::ReserveBudgetRequest* req,
                                                          v1::ReserveBudgetResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(
      loop_, supervisor_, ctx, reactor,
      [this, reactor, req, resp](const std::string& id) {
        // The previous call first, as ReportUsage records it: one round trip per call.
        if (req->has_settle()) {
          absl::StatusOr<Ledger::Caller> payer = scope_.UsageCaller(id, req->settle());
          absl::StatusOr<v1::UsageRecord> used =
              payer.ok() ? ledger_->Report(*payer, req->settle()) : payer.status();
          if (!used.ok()) {
            reactor->Finish(ToGrpcStatus(used.status()));
            return;
          }
        }
        if (!req->release_reservation_id().empty()) {
          if (absl::Status s = ledger_->Release(id, req->release_reservation_id()); !s.ok()) {
            reactor->Finish(ToGrpcStatus(s));
            return;
          }
        }
        absl::StatusOr<Ledger::Caller> caller = scope_.CallerFor(id, req->task_id());
        if (!caller.ok()) {
          reactor->Finish(ToGrpcStatus(caller.status()));
          return;
        }
        absl::StatusOr<v1::BudgetReservation> r = ledger_->Reserve(*caller, *req);
        if (r.ok()) *resp->mutable_reservation() = *std::move(r);
        reactor->Finish(ToGrpcStatus(r.status()));
      },
      /*urgent=*/true);
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::ReportUsage(grpc::CallbackServerContext* ctx,
                                                        const v1::ReportUsageRequest* req,
                                                        v1::ReportUsageResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(
      loop_, supervisor_, ctx, reactor,
      [this, reactor, req, resp](const std::string& id) {
        // Charged where the core says (AgentScope::UsageCaller).
        const v1::UsageRecord& rec = req->record();
        absl::StatusOr<Ledger::Caller> caller = scope_.UsageCaller(id, rec);
        if (!caller.ok()) {
          reactor->Finish(ToGrpcStatus(caller.status()));
          return;
        }
        absl::StatusOr<v1::UsageRecord> r = ledger_->Report(*caller, rec);
        if (r.ok()) *resp->mutable_record() = *std::move(r);
        reactor->Finish(ToGrpcStatus(r.status()));
      },
      /*urgent=*/true);
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::Delegate(grpc::CallbackServerContext* ctx,
                                                     const v1::DelegateRequest* req,
                                                     v1::DelegateResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(loop_, supervisor_, ctx, reactor, [this, reactor, req, resp](const std::string& id) {
    absl::StatusOr<v1::Task> t = tasks_->Delegate(id, *req);
    if (t.ok()) *resp->mutable_task() = *std::move(t);
    reactor->Finish(ToGrpcStatus(t.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::ProposePlan(grpc::CallbackServerContext* ctx,
                                                        const v1::ProposePlanRequest* req,
                                                        v1::ProposePlanResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(loop_, supervisor_, ctx, reactor, [this, reactor, req, resp](const std::string& id) {
    absl::StatusOr<v1::ProposePlanResponse> r = plans_->Propose(id, *req);
    if (r.ok()) *resp = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::Send(grpc::CallbackServerContext* ctx,
                                                 const v1::SendRequest* req,
                                                 v1::SendResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(loop_, supervisor_, ctx, reactor, [this, reactor, req, resp](const std::string& id) {
    // A message about a task is about one the agent holds; none named is fine.
    if (!req->task_id().empty()) {
      if (absl::StatusOr<v1::Task> t = scope_.HeldTask(id, req->task_id()); !t.ok()) {
        reactor->Finish(ToGrpcStatus(t.status()));
        return;
      }
    }
    v1::Envelope msg;
    msg.set_to(req->to());
    msg.set_body(req->body());
    msg.set_type(req->type());
    msg.set_task_id(req->task_id());
    msg.set_reply_to_id(req->reply_to_id());
    absl::StatusOr<v1::Envelope> e = bus_->Send(id, msg, req->request_id());
    if (e.ok()) *resp->mutable_envelope() = *std::move(e);
    reactor->Finish(ToGrpcStatus(e.status()));
  });
  return reactor;
}

namespace {

// An agent's work stream. Reads are handed to the core loop in order, but for a heartbeat
// that only renews its lease, which the reading thread takes (LeaseBoard) when nothing
// read before it is still waiting for the loop; deliveries come from the core loop and
// are written one at a time from a queue (gRPC allows one write in flight). The reactor is
// deleted on the core loop, after the TaskBoard has let go of it, so the loop never calls
// into a dead stream.
class ConnectReactor final
    : public grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>,
      public ConnectSink {
 public:
  ConnectReactor(EventLoop* loop, Supervisor* supervisor, TaskBoard* tasks, Tracing* tracing,
                 std::string token)
      : loop_(loop),
        supervisor_(supervisor),
        tasks_(tasks),
        tracing_(tracing),
        token_(std::move(token)) {
    loop->Post([this, supervisor] {
      absl::StatusOr<std::string> id = supervisor->AgentForToken(token_);
      if (!id.ok()) {
        Close(ToGrpcStatus(id.status()));
        return;
      }
      agent_ = *id;
      StartRead(&request_);
    });
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Close(grpc::Status::OK);  // the agent closed its side
      return;
    }
    // Once attached, with nothing of this stream's still on its way through the loop (a
    // status before it must be applied first), a heartbeat the board takes is done. (agent_
    // was set on the loop before the first read was started, and is not changed since.)
    if (request_.has_heartbeat() && attached_.load() && in_loop_.load() == 0 &&
        supervisor_->leases()->TryRenew(agent_, token_, request_.heartbeat())) {
      request_.Clear();
      StartRead(&request_);
      return;
    }
    ++in_loop_;
    loop_->Post([this, req = std::move(request_)] {
      // Counted down however Handle ends (the loop's guard catches what it throws), before
      // OnDone's deletion, which is posted after this.
      struct Handled {
        std::atomic<int>* in_loop;
        ~Handled() { --*in_loop; }
      } handled{&in_loop_};
      Handle(req);
    });
    request_.Clear();
    StartRead(&request_);
  }

  void Deliver(const v1::ConnectResponse& d) override {
    absl::MutexLock l(&mu_);
    if (closed_) return;  // stored: sent again on the next stream
    queue_.push_back(d);
    if (queue_.size() == 1) StartWrite(&queue_.front());
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock l(&mu_);
    queue_.pop_front();
    if (!ok || closed_) {
      queue_.clear();
      return;
    }
    if (!queue_.empty()) StartWrite(&queue_.front());
  }

  void OnDone() override {
    {
      absl::MutexLock l(&mu_);
      closed_ = true;
    }
    loop_->Post([this] {
      if (attached_) tasks_->Detach(agent_, this);
      delete this;
    });
  }

 private:
  // On the core loop.
  void Handle(const v1::ConnectRequest& req) {
    if (!attached_) {
      if (!req.has_hello()) {
        Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "the first message on Connect must be hello"));
        return;
      }
      attached_ = true;
      tasks_->Attach(agent_, this, req.hello().after_seq());
      return;
    }
    switch (req.message_case()) {
      case v1::ConnectRequest::kAck:
        tasks_->Ack(agent_, req.ack().seq());
        break;
      case v1::ConnectRequest::kTaskEvent:
        tasks_->OnTaskEvent(agent_, req.task_event());
        break;
      case v1::ConnectRequest::kTaskEvents:
        for (const v1::TaskEvent& ev : req.task_events().events()) tasks_->OnTaskEvent(agent_, ev);
        break;
      case v1::ConnectRequest::kStatus:
        supervisor_->SetActivity(agent_, req.status().activity(), req.status().progress());
        break;
      case v1::ConnectRequest::kHeartbeat: {
        // As the call would: the token must still be this agent's (a restarted agent has
        // a new one), then the lease.
        absl::StatusOr<std::string> id = supervisor_->AgentForToken(token_);
        if (!id.ok() || *id != agent_) {
          Close(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                             "this stream's token is no longer its agent's"));
          break;
        }
        if (absl::StatusOr<v1::HeartbeatResponse> r =
                supervisor_->HeartbeatOf(agent_, req.heartbeat());
            !r.ok()) {
          Close(ToGrpcStatus(r.status()));
        }
        break;
      }
      case v1::ConnectRequest::kSpans:
        // Best effort, as the agent sends them: dropped when agentd does not trace.
        if (tracing_ != nullptr) {
          absl::StatusOr<v1::Agent> a = supervisor_->Get(agent_);
          tracing_->FromAgent(agent_, a.ok() ? a->role() : "", req.spans().scope_spans(),
                              req.spans().dropped());
        }
        break;
      default:
        break;
    }
  }

  void Close(grpc::Status s) {
    absl::MutexLock l(&mu_);
    if (closed_) return;
    closed_ = true;
    Finish(std::move(s));
  }

  EventLoop* loop_;
  Supervisor* supervisor_;
  TaskBoard* tasks_;
  Tracing* tracing_;  // null: agentd does not trace
  const std::string token_;
  std::string agent_;  // written on the core loop before the first read, then read-only
  std::atomic<bool> attached_{false};  // written on the core loop
  std::atomic<int> in_loop_{0};        // reads posted to the loop and not yet handled
  v1::ConnectRequest request_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::ConnectResponse> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* AgentHostService::Connect(
    grpc::CallbackServerContext* ctx) {
  return new ConnectReactor(loop_, supervisor_, tasks_, tracing_, BearerToken(ctx));
}

}  // namespace agentd
