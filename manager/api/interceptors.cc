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
      : core_(core), method_(method.empty() || method[0] != '/' ? method : method.substr(1)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      core_->CountRpc();
    }
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
};

}  // namespace

grpc::experimental::Interceptor* ApiInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ApiInterceptor(core_, info->method());
}

}  // namespace agentd
