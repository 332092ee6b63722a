// Server interceptors every agentd RPC passes through.
//
// ApiInterceptorFactory:
//  - counts unary RPCs served and in flight (SystemCore::RpcStarted/RpcEnded), for
//    GetInfo and for draining at shutdown (streams last as long as their peer: shutdown
//    cancels them rather than waiting);
//  - records each call's duration (unary) or its end (streams) in the metrics, by method
//    and status code;
//  - gives an UNIMPLEMENTED status without a message one that says what it means: the
//    method is part of the v1 API but this agentd does not serve it yet. (gRPC answers a
//    method the service does not override with UNIMPLEMENTED and an empty message.)
#ifndef AGENTD_MANAGER_API_INTERCEPTORS_H_
#define AGENTD_MANAGER_API_INTERCEPTORS_H_

#include "grpcpp/support/server_interceptor.h"
#include "manager/core/metrics.h"
#include "manager/core/system.h"

namespace agentd {

class ApiInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` may be null.
  ApiInterceptorFactory(SystemCore* core, DaemonMetrics* metrics)
      : core_(core), metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  SystemCore* core_;
  DaemonMetrics* metrics_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_INTERCEPTORS_H_
