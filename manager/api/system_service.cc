#include "manager/api/system_service.h"

#include "absl/strings/str_cat.h"
#include "manager/api/status.h"
#include "manager/api/unary.h"
#include "manager/core/proto_time.h"

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

grpc::ServerUnaryReactor* SystemService::Diagnose(grpc::CallbackServerContext* ctx,
                                                  const v1::DiagnoseRequest*,
                                                  v1::DiagnoseResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  core_->Diagnose([reactor, resp](v1::DiagnoseResponse r) mutable {
    *resp = std::move(r);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* SystemService::GetConfig(grpc::CallbackServerContext* ctx,
                                                   const v1::GetConfigRequest* req,
                                                   v1::GetConfigResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  core_->GetConfig(!req->without_origins(), [reactor, resp](v1::GetConfigResponse r) mutable {
    *resp = std::move(r);
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

void SystemService::Audit(const grpc::CallbackServerContext* ctx, const std::string& action,
                          std::map<std::string, std::string> details) {
  if (loop_ == nullptr || audit_ == nullptr) return;
  loop_->Post([audit = audit_, by = HumanCaller(ctx), action, details = std::move(details)] {
    audit->AppendBy(by, action, "web-ui", "", "", details);
  });
}

grpc::ServerUnaryReactor* SystemService::CreateLoginCode(grpc::CallbackServerContext* ctx,
                                                         const v1::CreateLoginCodeRequest*,
                                                         v1::CreateLoginCodeResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  std::string base = sessions_ != nullptr ? sessions_->base_url() : "";
  if (base.empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "agentd's HTTP listener is off (server.http is \"\" or --http "
                                 "\"\" was given), so there is no web UI to log in to"));
    return reactor;
  }
  WebSessions::Grant code = sessions_->CreateLoginCode();
  resp->set_url(absl::StrCat(base, WebSessions::LoginPath(code.secret)));
  resp->set_code(code.secret);
  SetTime(code.expire_time, resp->mutable_expire_time());
  SetDuration(sessions_->session_ttl(), resp->mutable_session_ttl());
  // The code itself stays out of the audit log: it is a credential until used.
  Audit(ctx, "web.login_code", {});
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* SystemService::RevokeWebSessions(grpc::CallbackServerContext* ctx,
                                                           const v1::RevokeWebSessionsRequest*,
                                                           v1::RevokeWebSessionsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  if (sessions_ != nullptr) {
    WebSessions::Revoked r = sessions_->RevokeAll();
    resp->set_revoked_sessions(r.sessions);
    resp->set_revoked_codes(r.codes);
    Audit(ctx, "web.sessions_revoked",
          {{"sessions", absl::StrCat(r.sessions)}, {"codes", absl::StrCat(r.codes)}});
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace agentd
