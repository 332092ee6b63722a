#include "manager/api/interceptors.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace agentd {
namespace {

class ApiInterceptor final : public grpc::experimental::Interceptor {
 public:
  // `method` is the path gRPC reports, "/pkg.Service/Method"; kept without the slash.
  ApiInterceptor(SystemCore* core, std::string method)
      : core_(core),
        method_(method.empty() || method[0] != '/' ? method : method.substr(1)),
        // A health watcher, an agent's Connect stream or a log follower lasts as long as
        // its peer; shutdown cancels it rather than waiting for it.
        counted_(method_ != "grpc.health.v1.Health/Watch" &&
                 method_ != "agentd.v1.AgentHostService/Connect" &&
                 method_ != "agentd.v1.LogService/StreamLogs") {
    if (counted_) core_->RpcStarted();
  }
  // gRPC destroys a call's interceptors when the call is over, whatever its outcome.
  ~ApiInterceptor() override {
    if (counted_) core_->RpcEnded();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED && s.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::UNIMPLEMENTED,
            absl::StrCat(method_, " is part of the ", kApiVersion, " API but agentd ", kVersion,
                         " does not serve it yet; `buf curl --list-methods` shows the API, "
                         "and the release notes say when it lands")));
      }
    }
    methods->Proceed();
  }

 private:
  SystemCore* core_;
  std::string method_;
  bool counted_;
};

}  // namespace

grpc::experimental::Interceptor* ApiInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ApiInterceptor(core_, info->method());
}

}  // namespace agentd
