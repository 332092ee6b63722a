// Server interceptors every agentd RPC passes through.
//
// ApiInterceptorFactory:
//  - counts RPCs served and in flight (SystemCore::RpcStarted/RpcEnded), for GetInfo
//    and for draining at shutdown;
//  - gives an UNIMPLEMENTED status without a message one that says what it means: the
//    method is part of the v1 API but this agentd does not serve it yet. (gRPC answers a
//    method the service does not override with UNIMPLEMENTED and an empty message.)
#ifndef AGENTD_MANAGER_API_INTERCEPTORS_H_
#define AGENTD_MANAGER_API_INTERCEPTORS_H_

#include "grpcpp/support/server_interceptor.h"
#include "manager/core/system.h"

namespace agentd {

class ApiInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit ApiInterceptorFactory(SystemCore* core) : core_(core) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  SystemCore* core_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_INTERCEPTORS_H_
