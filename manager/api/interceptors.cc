#include "manager/api/interceptors.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "google/protobuf/descriptor.h"

namespace agentd {
namespace {

// Whether "pkg.Service/Method" names a method compiled into agentd (the agentd.v1 API,
// health, reflection): a finite set, whatever clients send.
bool IsKnownMethod(const std::string& method) {
  size_t slash = method.find('/');
  if (slash == std::string::npos) return false;
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          method.substr(0, slash));
  return service != nullptr && service->FindMethodByName(method.substr(slash + 1)) != nullptr;
}

class ApiInterceptor final : public grpc::experimental::Interceptor {
 public:
  // `method` is the path gRPC reports, "/pkg.Service/Method"; kept without the slash.
  ApiInterceptor(SystemCore* core, DaemonMetrics* metrics, std::string method, bool unary)
      : core_(core),
        metrics_(metrics),
        method_(method.empty() || method[0] != '/' ? method : method.substr(1)),
        known_(IsKnownMethod(method_)),
        // A watcher, an agent's Connect stream or a log follower lasts as long as its
        // peer; shutdown cancels it rather than waiting for it.
        counted_(unary),
        start_(absl::Now()) {
    if (counted_) core_->RpcStarted();
  }
  // gRPC destroys a call's interceptors when the call is over, whatever its outcome.
  ~ApiInterceptor() override {
    if (counted_) core_->RpcEnded();
    if (metrics_ == nullptr) return;
    std::string code = grpc_code_ < 0 ? "CANCELLED" : GrpcCodeName(grpc_code_);
    // A caller chooses the method name: labelled as sent, made-up names would add a series
    // each, without bound. Names outside the compiled API share one label.
    const std::string& label = known_ ? method_ : kUnknownMethodLabel;
    if (counted_) {
      metrics_->rpc_seconds->Observe({label, code}, absl::ToDoubleSeconds(absl::Now() - start_));
    } else {
      metrics_->rpc_streams->Add({label, code});
    }
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      grpc_code_ = s.error_code();
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED && s.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::UNIMPLEMENTED,
            known_ ? absl::StrCat(method_, " is part of the ", kApiVersion, " API but agentd ",
                                  kVersion,
                                  " does not serve it yet; `buf curl --list-methods` shows the "
                                  "API, and the release notes say when it lands")
                   : "agentd serves no such method; `buf curl --list-methods` lists the API"));
      }
    }
    methods->Proceed();
  }

 private:
  SystemCore* core_;
  DaemonMetrics* metrics_;
  std::string method_;
  bool known_;
  bool counted_;
  absl::Time start_;
  int grpc_code_ = -1;  // the status sent; -1 until then (a call cancelled first)
};

}  // namespace

grpc::experimental::Interceptor* ApiInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ApiInterceptor(core_, metrics_, info->method(),
                            info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY);
}

}  // namespace agentd
