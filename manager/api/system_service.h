// SystemService: the gRPC adapter over SystemCore. Thin: it converts and completes.
// Handlers never block the callback thread: they post to the core and finish the call
// from the core loop when it answers.
#ifndef AGENTD_MANAGER_API_SYSTEM_SERVICE_H_
#define AGENTD_MANAGER_API_SYSTEM_SERVICE_H_

#include "agentd/v1/system.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/system.h"

namespace agentd {

class SystemService final : public v1::SystemService::CallbackService {
 public:
  SystemService(SystemCore* core, ClientAuth auth) : core_(core), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* GetVersion(grpc::CallbackServerContext* ctx,
                                       const v1::GetVersionRequest* req,
                                       v1::GetVersionResponse* resp) override;
  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* ctx, const v1::GetInfoRequest* req,
                                    v1::GetInfoResponse* resp) override;
  grpc::ServerUnaryReactor* ReloadConfig(grpc::CallbackServerContext* ctx,
                                         const v1::ReloadConfigRequest* req,
                                         v1::ReloadConfigResponse* resp) override;

 private:
  SystemCore* core_;
  ClientAuth auth_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_SYSTEM_SERVICE_H_
