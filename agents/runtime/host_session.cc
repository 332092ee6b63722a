#include "agents/runtime/host_session.h"

#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "grpcpp/create_channel.h"
#include "spdlog/spdlog.h"

namespace agentd::agent {
namespace {
absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}
}  // namespace

HostSession::HostSession(HostSessionOptions options) : options_(std::move(options)) {
  channel_ = grpc::CreateChannel("unix:" + options_.socket, grpc::InsecureChannelCredentials());
  stub_ = v1::AgentHostService::NewStub(channel_);
}

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
  v1::RegisterResponse resp;
  grpc::Status s = stub_->Register(NewContext(absl::Seconds(5)).get(), req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  }
  absl::MutexLock l(&mu_);
  lease_id_ = resp.lease_id();
  interval_ = std::max(absl::Milliseconds(10), FromProto(resp.heartbeat_interval()));
  definition_ = resp.definition();
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
    }
    v1::ConnectResponse delivery;
    if (stream->Write(hello)) {
      while (stream->Read(&delivery)) {
        v1::ConnectRequest ack;
        ack.mutable_ack()->set_seq(delivery.seq());
        if (!stream->Write(ack)) break;
      }
    }
    grpc::Status s = stream->Finish();
    {
      absl::MutexLock l(&mu_);
      connect_ctx_ = nullptr;
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
  absl::Duration backoff = absl::Milliseconds(100);
  bool registered = false;
  while (!stop_.HasBeenNotified()) {
    absl::Status s;
    if (!registered) {
      s = RegisterOnce();
      registered = s.ok();
      if (registered && !connect.joinable()) connect = std::thread([this] { HoldConnect(); });
    } else {
      v1::HeartbeatRequest req;
      {
        absl::MutexLock l(&mu_);
        req.set_lease_id(lease_id_);
        req.set_activity(activity_);
        req.set_progress(progress_);
      }
      v1::HeartbeatResponse resp;
      grpc::Status gs = stub_->Heartbeat(NewContext(absl::Seconds(5)).get(), req, &resp);
      s = absl::Status(static_cast<absl::StatusCode>(gs.error_code()), gs.error_message());
      if (s.code() == absl::StatusCode::kFailedPrecondition) registered = false;  // new lease
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
  absl::MutexLock l(&mu_);
  activity_ = activity;
  progress_ = std::move(progress);
}

v1::AgentDefinition HostSession::definition() const {
  absl::MutexLock l(&mu_);
  return definition_;
}

}  // namespace agentd::agent
