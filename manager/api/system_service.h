// SystemService: the gRPC adapter over SystemCore. Thin: it converts and completes.
// Handlers never block the callback thread: they post to the core and finish the call
// from the core loop when it answers.
#ifndef AGENTD_MANAGER_API_SYSTEM_SERVICE_H_
#define AGENTD_MANAGER_API_SYSTEM_SERVICE_H_

#include "agentd/v1/system.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/audit.h"
#include "manager/core/event_loop.h"
#include "manager/core/system.h"
#include "manager/core/web_sessions.h"

namespace agentd {

class SystemService final : public v1::SystemService::CallbackService {
 public:
  // None of the pointers is owned. `sessions` may be null (no HTTP listener: the login
  // RPCs fail FAILED_PRECONDITION); `audit` is used on `loop` only and may be null.
  SystemService(SystemCore* core, ClientAuth auth, WebSessions* sessions = nullptr,
                EventLoop* loop = nullptr, AuditLog* audit = nullptr)
      : core_(core), auth_(std::move(auth)), sessions_(sessions), loop_(loop), audit_(audit) {}

  grpc::ServerUnaryReactor* GetVersion(grpc::CallbackServerContext* ctx,
                                       const v1::GetVersionRequest* req,
                                       v1::GetVersionResponse* resp) override;
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx, const v1::GetInfoRequest* req,
                                    v1::GetInfoResponse* resp) override;
  grpc::ServerUnaryReactor* Diagnose(grpc::CallbackServerContext* ctx,
                                     const v1::DiagnoseRequest* req,
                                     v1::DiagnoseResponse* resp) override;
  grpc::ServerUnaryReactor* GetConfig(grpc::CallbackServerContext* ctx,
                                      const v1::GetConfigRequest* req,
                                      v1::GetConfigResponse* resp) override;
  grpc::ServerUnaryReactor* ReloadConfig(grpc::CallbackServerContext* ctx,
                                         const v1::ReloadConfigRequest* req,
                                         v1::ReloadConfigResponse* resp) override;
  grpc::ServerUnaryReactor* CreateLoginCode(grpc::CallbackServerContext* ctx,
                                            const v1::CreateLoginCodeRequest* req,
                                            v1::CreateLoginCodeResponse* resp) override;
  grpc::ServerUnaryReactor* RevokeWebSessions(grpc::CallbackServerContext* ctx,
                                              const v1::RevokeWebSessionsRequest* req,
                                              v1::RevokeWebSessionsResponse* resp) override;

 private:
  // Records `action` by the caller of `ctx` in the audit log (on the loop).
  void Audit(const grpc::CallbackServerContext* ctx, const std::string& action,
             std::map<std::string, std::string> details);

  SystemCore* core_;
  ClientAuth auth_;
  WebSessions* sessions_;
  EventLoop* loop_;
  AuditLog* audit_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_SYSTEM_SERVICE_H_
