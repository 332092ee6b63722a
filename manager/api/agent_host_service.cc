#include "manager/api/agent_host_service.h"

#include "absl/strings/match.h"
#include "common/token.h"
#include "manager/api/status.h"

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
    if (r.ok()) *resp = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentHostService::Heartbeat(grpc::CallbackServerContext* ctx,
                                                      const v1::HeartbeatRequest* req,
                                                      v1::HeartbeatResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  loop_->Post([this, reactor, req, resp, token = BearerToken(ctx)] {
    absl::StatusOr<v1::HeartbeatResponse> r = supervisor_->Heartbeat(token, *req);
    if (r.ok()) *resp = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

// Runs `fn(agent_id)` on the core loop as the agent the call's token names, or finishes
// the call with UNAUTHENTICATED.
template <typename Fn>
void AsAgent(EventLoop* loop, Supervisor* supervisor, grpc::CallbackServerContext* ctx,
             grpc::ServerUnaryReactor* reactor, Fn fn) {
  loop->Post([supervisor, reactor, fn = std::move(fn), token = BearerToken(ctx)]() mutable {
    absl::StatusOr<std::string> id = supervisor->AgentForToken(token);
    if (!id.ok()) {
      reactor->Finish(ToGrpcStatus(id.status()));
      return;
    }
    fn(*id);
  });
}

grpc::ServerUnaryReactor* AgentHostService::RequestConsent(grpc::CallbackServerContext* ctx,
                                                           const v1::RequestConsentRequest* req,
                                                           v1::RequestConsentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  AsAgent(loop_, supervisor_, ctx, reactor, [this, reactor, req, resp](const std::string& id) {
    absl::StatusOr<v1::RequestConsentResponse> r = consents_->Request(id, *req);
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

namespace {

// Reads the agent's messages until it closes the stream; the token is checked first.
class ConnectReactor final
    : public grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse> {
 public:
  ConnectReactor(EventLoop* loop, Supervisor* supervisor, std::string token) {
    loop->Post([this, supervisor, token = std::move(token)] {
      absl::StatusOr<std::string> id = supervisor->AgentForToken(token);
      if (!id.ok()) {
        Finish(ToGrpcStatus(id.status()));
        return;
      }
      StartRead(&request_);
    });
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the agent closed its side
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  v1::ConnectRequest request_;
};

}  // namespace

grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* AgentHostService::Connect(
    grpc::CallbackServerContext* ctx) {
  return new ConnectReactor(loop_, supervisor_, BearerToken(ctx));
}

}  // namespace agentd
