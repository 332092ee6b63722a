#include "manager/api/interceptors.h"

#include <string>

#include "absl/strings/match.h"
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
  ApiInterceptor(SystemCore* core, DaemonMetrics* metrics, ApiInterceptorFactory::Method* method,
                 bool unary)
      : core_(core),
        metrics_(metrics),
        method_(method),
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
    // No status sent: the call was cancelled first. A code beyond gRPC's own (none of
    // agentd's handlers sends one) counts as UNKNOWN.
    int code = grpc_code_;
    if (code < 0) code = static_cast<int>(grpc::StatusCode::CANCELLED);
    if (code >= static_cast<int>(method_->by_code.size())) {
      code = static_cast<int>(grpc::StatusCode::UNKNOWN);
    }
    // A caller chooses the method name: labelled as sent, made-up names would add a series
    // each, without bound. Names outside the compiled API share one entry, "unknown".
    const std::string& label = method_->name;
    if (counted_) {
      std::atomic<HistogramFamily::Series*>& slot = method_->by_code[static_cast<size_t>(code)];
      HistogramFamily::Series* series = slot.load(std::memory_order_acquire);
      if (series == nullptr) {  // two first calls at once find the same series
        series = metrics_->rpc_seconds->SeriesFor({label, GrpcCodeName(code)});
        slot.store(series, std::memory_order_release);
      }
      metrics_->rpc_seconds->Observe(series, absl::ToDoubleSeconds(absl::Now() - start_));
    } else {
      metrics_->rpc_streams->Add({label, GrpcCodeName(code)});
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
            method_->known
                ? absl::StrCat(method_->name, " is part of the ", kApiVersion, " API but agentd ",
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
  // The factory's: the grpc::Server owns the factory and destroys it after every call.
  ApiInterceptorFactory::Method* method_;
  bool counted_;
  absl::Time start_;
  int grpc_code_ = -1;  // the status sent; -1 until then (a call cancelled first)
};

}  // namespace

ApiInterceptorFactory::ApiInterceptorFactory(SystemCore* core, DaemonMetrics* metrics)
    : core_(core), metrics_(metrics) {
  unknown_.name = kUnknownMethodLabel;
}

ApiInterceptorFactory::Method* ApiInterceptorFactory::Lookup(const char* path) {
  absl::string_view key = path == nullptr ? "" : path;
  {
    absl::ReaderMutexLock l(&mu_);
    if (auto it = methods_.find(key); it != methods_.end()) return it->second.get();
  }
  // "/pkg.Service/Method" is kept without its slash.
  std::string name(absl::StartsWith(key, "/") ? key.substr(1) : key);
  if (!IsKnownMethod(name)) return &unknown_;
  absl::MutexLock l(&mu_);
  auto [it, added] = methods_.try_emplace(key, nullptr);
  if (added) {
    it->second = std::make_unique<Method>();
    it->second->name = std::move(name);
    it->second->known = true;
  }
  return it->second.get();
}

grpc::experimental::Interceptor* ApiInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new ApiInterceptor(core_, metrics_, Lookup(info->method()),
                            info->type() == grpc::experimental::ServerRpcInfo::Type::UNARY);
}

}  // namespace agentd
