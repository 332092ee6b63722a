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

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "manager/core/metrics.h"
#include "manager/core/system.h"

namespace agentd {

class ApiInterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // What every call of one method shares, worked out on its first call: whether it is part
  // of the API, and its duration series by status code. A call then makes no strings and
  // looks up neither descriptors nor labels (daemon_bench, GetInfo with one client: 0.85–0.88
  // of a raw gRPC server before, 0.90–0.91 after).
  struct Method {
    std::string name;  // "pkg.Service/Method", or "unknown" for every name off the API
    bool known = false;
    // rpc_seconds by status code, OK (0) to UNAUTHENTICATED (16).
    std::array<std::atomic<HistogramFamily::Series*>,
               static_cast<size_t>(grpc::StatusCode::UNAUTHENTICATED) + 1>
        by_code{};
  };

  // `metrics` may be null.
  ApiInterceptorFactory(SystemCore* core, DaemonMetrics* metrics);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  // The method gRPC names "/pkg.Service/Method"; names outside the compiled API all share
  // one entry (a caller chooses them: kept apart they would grow without bound).
  Method* Lookup(const char* path);

  SystemCore* core_;
  DaemonMetrics* metrics_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_ ABSL_GUARDED_BY(mu_);
  Method unknown_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_INTERCEPTORS_H_
