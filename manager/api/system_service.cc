#include "manager/api/system_service.h"

#include "manager/api/unary.h"

#include "manager/api/status.h"

namespace agentd {

grpc::ServerUnaryReactor* SystemService::GetVersion(grpc::CallbackServerContext* ctx,
                                                    const v1::GetVersionRequest*,
                                                    v1::GetVersionResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  *resp = SystemCore::Version();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* SystemService::GetInfo(grpc::CallbackServerContext* ctx,
                                                 const v1::GetInfoRequest*,
                                                 v1::GetInfoResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  core_->GetInfo([reactor, resp](v1::GetInfoResponse info) mutable {
    *resp = std::move(info);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* SystemService::ReloadConfig(grpc::CallbackServerContext* ctx,
                                                      const v1::ReloadConfigRequest*,
                                                      v1::ReloadConfigResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  if (core_->state() == v1::DAEMON_STATE_DRAINING) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "agentd is shutting down; reload after it restarts"));
    return reactor;
  }
  core_->ReloadConfig(
      [reactor, resp](absl::StatusOr<v1::ReloadConfigResponse> r) mutable {
        if (!r.ok()) {
          reactor->Finish(ToGrpcStatus(r.status()));
          return;
        }
        *resp = *std::move(r);
        reactor->Finish(grpc::Status::OK);
      },
      HumanCaller(ctx));
  return reactor;
}

}  // namespace agentd
