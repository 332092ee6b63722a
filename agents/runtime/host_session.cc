#include "agents/runtime/host_session.h"

#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/protocol_features.h"
#include "common/version.h"
#include "grpcpp/create_channel.h"
#include "spdlog/spdlog.h"

namespace agentd::agent {
namespace {
absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}
bool Listed(const std::string& feature, const std::vector<std::string>& features) {
  return std::find(features.begin(), features.end(), feature) != features.end();
}
}  // namespace

HostSession::HostSession(HostSessionOptions options) : options_(std::move(options)) {
  channel_ = grpc::CreateChannel("unix:" + options_.socket, grpc::InsecureChannelCredentials());
  stub_ = v1::AgentHostService::NewStub(channel_);
}

HostSession::~HostSession() { FlushReports(absl::Seconds(11)); }

std::unique_ptr<grpc::ClientContext> HostSession::NewContext(absl::Duration timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  ctx->AddMetadata("authorization", "Bearer " + options_.token);
  return ctx;
}

absl::Status HostSession::RegisterOnce() {
  v1::RegisterRequest req;
  req.set_agent_id(options_.agent_id);
  req.set_pid(getpid());
  req.set_runtime_version(kVersion);
  req.add_capabilities(kCapabilityAssignmentReservations);
  if (options_.sandbox_problem.empty()) {
    req.add_capabilities("sandbox.bwrap");
  } else {
    req.set_sandbox_problem(options_.sandbox_problem);
  }
  v1::RegisterResponse resp;
  grpc::Status s = stub_->Register(NewContext(absl::Seconds(5)).get(), req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  absl::MutexLock l(&mu_);
  registered_ = true;
  lease_id_ = resp.lease_id();
  interval_ = std::max(absl::Milliseconds(10), FromProto(resp.heartbeat_interval()));
  definition_ = resp.definition();
  features_.assign(resp.features().begin(), resp.features().end());
  batches_ = Listed(kFeatureTaskEventBatch, features_);
  spdlog::info("registered as {} (role {}), heartbeat every {}", options_.agent_id,
               resp.definition().role(), absl::FormatDuration(interval_));
  return absl::OkStatus();
}

// Holds the Connect stream until it breaks or Stop(); deliveries are read and acked.
void HostSession::HoldConnect() {
  while (!stop_.HasBeenNotified()) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + options_.token);
    {
      absl::MutexLock l(&mu_);
      connect_ctx_ = &ctx;
    }
    auto stream = stub_->Connect(&ctx);
    v1::ConnectRequest hello;
    {
      absl::MutexLock l(&mu_);
      hello.mutable_hello()->set_lease_id(lease_id_);
      hello.mutable_hello()->set_after_seq(last_seq_);
    }
    bool up = false;
    {
      absl::MutexLock w(&write_mu_);
      up = stream->Write(hello);
      if (up) {
        stream_ = stream.get();
        // A completion the daemon may have missed when the last stream broke.
        std::optional<v1::TaskEvent> final;
        {
          absl::MutexLock o(&out_mu_);
          final = last_final_;
        }
        if (final.has_value()) {
          v1::ConnectRequest again;
          *again.mutable_task_event() = *std::move(final);
          stream->Write(again);
        }
      }
    }
    v1::ConnectResponse delivery;
    while (up && stream->Read(&delivery)) {
      {
        absl::MutexLock l(&mu_);
        if (delivery.seq() <= last_seq_ && delivery.seq() != 0) continue;  // a repeat
      }
      if (options_.on_delivery) options_.on_delivery(delivery);
      {
        absl::MutexLock l(&mu_);
        last_seq_ = std::max(last_seq_, delivery.seq());
      }
      v1::ConnectRequest ack;
      ack.mutable_ack()->set_seq(delivery.seq());
      absl::MutexLock w(&write_mu_);
      if (!DrainLocked() || !stream->Write(ack)) break;
    }
    {
      absl::MutexLock w(&write_mu_);
      stream_ = nullptr;
    }
    grpc::Status s = stream->Finish();
    {
      absl::MutexLock l(&mu_);
      connect_ctx_ = nullptr;
      // A heartbeat's lease or the token refused: the next one goes as a call, whose
      // answer says what to do (register again, or stop).
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
          s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
          s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
        lease_refused_on_stream_ = true;
      }
    }
    if (!stop_.HasBeenNotified()) {
      spdlog::debug("Connect stream ended ({}); reopening", s.error_message());
      stop_.WaitForNotificationWithTimeout(absl::Milliseconds(500));
    }
  }
}

absl::Status HostSession::Run() {
  std::thread connect;
  absl::Time unreachable_since = absl::InfiniteFuture();
  absl::Time answered = absl::Now();  // when agentd last answered a call of this loop
  absl::Duration backoff = absl::Milliseconds(100);
  bool registered = false;
  while (!stop_.HasBeenNotified()) {
    absl::Status s;
    if (!registered) {
      s = RegisterOnce();
      registered = s.ok();
      if (registered) {
        answered = absl::Now();
        absl::MutexLock l(&mu_);
        lease_refused_on_stream_ = false;
      }
      if (registered && !connect.joinable()) connect = std::thread([this] { HoldConnect(); });
    } else {
      v1::ConnectRequest beat;
      v1::HeartbeatRequest& req = *beat.mutable_heartbeat();
      bool stale = false;
      {
        absl::MutexLock l(&mu_);
        req.set_lease_id(lease_id_);
        req.set_activity(activity_);
        req.set_progress(progress_);
        stale = lease_refused_on_stream_;
      }
      // On the open Connect stream when there is one (a message, not a call). A written
      // message proves only that the bytes left, not that agentd took them: a call, whose
      // answer does, at least every third of the reconnect grace, every time while agentd
      // does not answer, and once the stream refused the lease (the answer says what to do).
      bool call = stale || unreachable_since != absl::InfiniteFuture() ||
                  absl::Now() - answered >= options_.reconnect_grace / 3;
      bool sent = false;
      {
        absl::MutexLock w(&write_mu_);
        // What was queued goes now in any case (QueueTaskEvent: at the latest with a
        // heartbeat), the heartbeat with it when it goes on the stream.
        bool open = stream_ != nullptr && DrainLocked();
        if (!call && open) {
          // The activity as of now, after the statuses just written: a status said
          // before this heartbeat must not be undone by it.
          {
            absl::MutexLock l(&mu_);
            req.set_activity(activity_);
            req.set_progress(progress_);
          }
          sent = stream_->Write(beat);
        }
      }
      if (!sent) {
        v1::HeartbeatResponse resp;
        grpc::Status gs = stub_->Heartbeat(NewContext(absl::Seconds(5)).get(), req, &resp);
        s = absl::Status(static_cast<absl::StatusCode>(gs.error_code()), gs.error_message());
        if (s.code() == absl::StatusCode::kFailedPrecondition) registered = false;  // new lease
        if (s.ok()) {
          answered = absl::Now();
          absl::MutexLock l(&mu_);
          lease_refused_on_stream_ = false;  // the lease is good: the stream may carry them
        }
      }
    }
    absl::Duration wait;
    if (s.ok()) {
      unreachable_since = absl::InfiniteFuture();
      backoff = absl::Milliseconds(100);
      absl::MutexLock l(&mu_);
      wait = interval_;
    } else {
      if (s.code() == absl::StatusCode::kUnauthenticated ||
          s.code() == absl::StatusCode::kPermissionDenied) {
        // This token will not become valid again: agentd starts a new process instead.
        Stop();
        if (connect.joinable()) connect.join();
        return s;
      }
      if (unreachable_since == absl::InfiniteFuture()) unreachable_since = absl::Now();
      if (absl::Now() - unreachable_since > options_.reconnect_grace) {
        Stop();
        if (connect.joinable()) connect.join();
        return absl::UnavailableError(absl::StrCat("agentd unreachable for ",
                                                   absl::FormatDuration(options_.reconnect_grace),
                                                   ": ", s.message()));
      }
      spdlog::warn("agentd: {} (retrying in {})", s.ToString(), absl::FormatDuration(backoff));
      wait = backoff;
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
    stop_.WaitForNotificationWithTimeout(wait);
  }
  if (connect.joinable()) connect.join();
  return absl::OkStatus();
}

void HostSession::Stop() {
  absl::MutexLock l(&mu_);
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (connect_ctx_ != nullptr) connect_ctx_->TryCancel();
}

void HostSession::SetActivity(v1::AgentActivity activity, std::string progress) {
  v1::ConnectRequest status;
  status.mutable_status()->set_activity(activity);
  status.mutable_status()->set_progress(progress);
  {
    absl::MutexLock l(&mu_);
    activity_ = activity;
    progress_ = std::move(progress);
  }
  // Said at once on the stream (after the events before it); heartbeats repeat it.
  Enqueue(std::move(status));
}

bool HostSession::WaitRegistered(absl::Duration timeout) const {
  absl::MutexLock l(&mu_);
  bool (*ready)(const HostSession*) = [](const HostSession* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return s->registered_ || s->stop_.HasBeenNotified();
  };
  mu_.AwaitWithTimeout(absl::Condition(ready, this), timeout);
  return registered_;
}

void HostSession::SendTaskEvent(const v1::TaskEvent& event) {
  v1::ConnectRequest req;
  *req.mutable_task_event() = event;
  Enqueue(std::move(req));
}

void HostSession::QueueTaskEvent(const v1::TaskEvent& event) {
  v1::ConnectRequest req;
  *req.mutable_task_event() = event;
  absl::MutexLock o(&out_mu_);
  out_.push_back(std::move(req));
}

void HostSession::Flush() {
  absl::MutexLock w(&write_mu_);
  DrainLocked();
}

void HostSession::SendSpans(std::string scope_spans) {
  v1::ConnectRequest req;
  req.mutable_spans()->set_scope_spans(std::move(scope_spans));
  Enqueue(std::move(req));
}

// Every write takes what is queued first, in order: a message waits only while another
// thread writes, and what queued up meanwhile goes in one write (one TaskEventBatch).
// Why not a writer thread: on a loaded machine the wake-up of another thread costs a turn
// more than the write itself (turn_bench: +1,166 us against +895 us a turn).
void HostSession::Enqueue(v1::ConnectRequest msg) {
  {
    absl::MutexLock o(&out_mu_);
    out_.push_back(std::move(msg));
  }
  absl::MutexLock w(&write_mu_);
  DrainLocked();
}

bool HostSession::DrainLocked() {
  std::deque<v1::ConnectRequest> queued;
  {
    absl::MutexLock o(&out_mu_);
    queued.swap(out_);
  }
  // A batch stays well under the server's 4 MiB message limit; a larger event goes alone.
  constexpr size_t kBatchBytes = 1 << 20;
  bool ok = stream_ != nullptr;
  v1::ConnectRequest batch;
  size_t batch_bytes = 0;
  auto write = [&](v1::ConnectRequest& msg) {
    if (msg.has_spans()) {
      if (!ok) {
        ++dropped_spans_;
        return;
      }
      msg.mutable_spans()->set_dropped(std::exchange(dropped_spans_, 0));
    }
    // A failed write ends the stream; the reader reconnects. The rest is dropped.
    if (ok) ok = stream_->Write(msg);
  };
  auto flush_batch = [&] {
    if (batch_bytes == 0) return;
    v1::TaskEventBatch* b = batch.mutable_task_events();
    if (b->events_size() == 1) {
      v1::ConnectRequest one;
      one.mutable_task_event()->Swap(b->mutable_events(0));
      write(one);
    } else {
      write(batch);
    }
    batch.Clear();
    batch_bytes = 0;
  };
  std::optional<v1::TaskEvent> final;
  for (v1::ConnectRequest& msg : queued) {
    if (msg.has_task_event() &&
        (msg.task_event().has_completed() || msg.task_event().has_failed())) {
      final = msg.task_event();
    }
    // Alone in the queue (the usual case), or agentd takes no batches: as it is.
    if (!msg.has_task_event() || !batches_ || queued.size() == 1) {
      flush_batch();
      write(msg);
      continue;
    }
    size_t size = msg.task_event().ByteSizeLong();
    if (batch_bytes > 0 && batch_bytes + size > kBatchBytes) flush_batch();
    batch.mutable_task_events()->add_events()->Swap(msg.mutable_task_event());
    batch_bytes += size + 8;  // with the field's tag and length
  }
  flush_batch();
  if (final.has_value()) {
    absl::MutexLock o(&out_mu_);
    last_final_ = *std::move(final);
  }
  return ok;
}

namespace {
template <typename Resp>
absl::StatusOr<Resp> Result(const grpc::Status& s, Resp resp) {
  if (!s.ok())
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return resp;
}
}  // namespace

absl::StatusOr<v1::BudgetReservation> HostSession::ReserveBudget(
    const v1::ReserveBudgetRequest& req) {
  v1::ReserveBudgetResponse resp;
  grpc::Status s = stub_->ReserveBudget(NewContext(absl::Seconds(10)).get(), req, &resp);
  return Result(s, resp.reservation());
}

void HostSession::ReportUsageAsync(v1::ReportUsageRequest req, absl::Duration timeout) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::ReportUsageRequest req;
    v1::ReportUsageResponse resp;
  };
  auto* call = new Call{NewContext(timeout), std::move(req), {}};
  {
    absl::MutexLock l(&mu_);
    ++reports_in_flight_;
  }
  stub_->async()->ReportUsage(call->ctx.get(), &call->req, &call->resp,
                              [this, call](grpc::Status s) {
                                if (!s.ok()) {
                                  spdlog::warn("reporting usage of a call: {}", s.error_message());
                                }
                                delete call;
                                absl::MutexLock l(&mu_);
                                --reports_in_flight_;
                              });
}

void HostSession::ReserveBudgetAsync(
    v1::ReserveBudgetRequest req, absl::Duration timeout,
    absl::AnyInvocable<void(absl::StatusOr<v1::BudgetReservation>) &&> done) {
  struct Call {
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::ReserveBudgetRequest req;
    v1::ReserveBudgetResponse resp;
    absl::AnyInvocable<void(absl::StatusOr<v1::BudgetReservation>) &&> done;
  };
  auto* call = new Call{NewContext(timeout), std::move(req), {}, std::move(done)};
  {
    absl::MutexLock l(&mu_);
    ++reports_in_flight_;
  }
  stub_->async()->ReserveBudget(call->ctx.get(), &call->req, &call->resp,
                                [this, call](grpc::Status s) {
                                  // `done` first: it may send the report again, which
                                  // FlushReports must then wait for too.
                                  std::move(call->done)(Result(s, call->resp.reservation()));
                                  delete call;
                                  absl::MutexLock l(&mu_);
                                  --reports_in_flight_;
                                });
}

void HostSession::FlushReports(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  bool (*done)(int*) = [](int* n) { return *n == 0; };
  mu_.AwaitWithTimeout(absl::Condition(done, &reports_in_flight_), timeout);
}

absl::StatusOr<v1::RequestConsentResponse> HostSession::RequestConsent(
    const v1::RequestConsentRequest& req) {
  v1::RequestConsentResponse resp;
  grpc::Status s = stub_->RequestConsent(NewContext(absl::Seconds(10)).get(), req, &resp);
  return Result(s, resp);
}

absl::StatusOr<v1::ConsentRequest> HostSession::GetConsentDecision(const std::string& id) {
  v1::GetConsentDecisionRequest req;
  req.set_consent_request_id(id);
  v1::GetConsentDecisionResponse resp;
  grpc::Status s = stub_->GetConsentDecision(NewContext(absl::Seconds(10)).get(), req, &resp);
  return Result(s, resp.consent_request());
}

absl::StatusOr<v1::Task> HostSession::Delegate(const v1::DelegateRequest& req) {
  v1::DelegateResponse resp;
  grpc::Status s = stub_->Delegate(NewContext(absl::Seconds(10)).get(), req, &resp);
  return Result(s, resp.task());
}

absl::StatusOr<v1::ProposePlanResponse> HostSession::ProposePlan(
    const v1::ProposePlanRequest& req) {
  v1::ProposePlanResponse resp;
  grpc::Status s = stub_->ProposePlan(NewContext(absl::Seconds(10)).get(), req, &resp);
  return Result(s, resp);
}

absl::StatusOr<v1::Envelope> HostSession::Send(const v1::SendRequest& req) {
  v1::SendResponse resp;
  grpc::Status s = stub_->Send(NewContext(absl::Seconds(10)).get(), req, &resp);
  return Result(s, resp.envelope());
}

v1::AgentDefinition HostSession::definition() const {
  absl::MutexLock l(&mu_);
  return definition_;
}

bool HostSession::Supports(const std::string& feature) const {
  absl::MutexLock l(&mu_);
  return Listed(feature, features_);
}

}  // namespace agentd::agent
