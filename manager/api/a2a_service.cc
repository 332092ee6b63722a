#include "manager/api/a2a_service.h"

#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json_dump.h"
#include "common/token.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"

namespace agentd {

namespace a2a = lf::a2a::v1;
using nlohmann::json;

namespace {

constexpr int kMaxCalls = 64;

std::string Bearer(const grpc::CallbackServerContext* ctx) {
  auto it = ctx->client_metadata().find("authorization");
  if (it == ctx->client_metadata().end()) return "";
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(value, kBearer)) return "";
  return std::string(value.substr(kBearer.size()));
}

// A2A's errors as gRPC codes (the binding's mapping).
grpc::StatusCode CodeOf(int64_t rpc_code) {
  switch (rpc_code) {
    case -32001:  // TaskNotFound
      return grpc::StatusCode::NOT_FOUND;
    case -32002:  // TaskNotCancelable
    case -32003:  // PushNotificationNotSupported
    case -32004:  // UnsupportedOperation
    case -32007:  // ExtendedAgentCardNotConfigured
    case -32009:  // VersionNotSupported
      return grpc::StatusCode::FAILED_PRECONDITION;
    case -32005:  // ContentTypeNotSupported
    case -32602:  // InvalidParams
    case -32600:  // InvalidRequest
    case -32700:  // ParseError
      return grpc::StatusCode::INVALID_ARGUMENT;
    case -32601:
      return grpc::StatusCode::UNIMPLEMENTED;
    default:
      return grpc::StatusCode::INTERNAL;
  }
}

// The JSON-RPC request for `method` with `params`.
std::string RequestBody(const std::string& method, const google::protobuf::Message& params) {
  std::string p;
  (void)google::protobuf::util::MessageToJsonString(params, &p);
  return absl::StrCat(R"({"jsonrpc":"2.0","id":1,"method":")", method, R"(","params":)",
                      p.empty() ? "{}" : p, "}");
}

// A JSON-RPC response (`body`) into `out`, or the status its error says.
grpc::Status FromResponse(const std::string& body, google::protobuf::Message* out) {
  json r = json::parse(body, nullptr, false);
  if (!r.is_object()) return grpc::Status(grpc::StatusCode::INTERNAL, "no answer");
  if (r.contains("error") && r["error"].is_object()) {
    const json& e = r["error"];
    int64_t code =
        e.contains("code") && e["code"].is_number_integer() ? e["code"].get<int64_t>() : 0;
    std::string message = e.contains("message") && e["message"].is_string()
                              ? e["message"].get<std::string>()
                              : "error";
    return grpc::Status(CodeOf(code), message);
  }
  if (!r.contains("result")) return grpc::Status(grpc::StatusCode::INTERNAL, "no result");
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  auto s = google::protobuf::util::JsonStringToMessage(DumpJson(r["result"]), out, opts);
  if (!s.ok()) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("agentd's answer does not fit the A2A proto: ", std::string(s.message())));
  }
  return grpc::Status::OK;
}

// A unary call's answer: the one JSON body.
class Collect final : public web::A2aResponder {
 public:
  explicit Collect(std::function<bool()> gone) : gone_(std::move(gone)) {}
  void Json(int, std::string body) override { body_ = std::move(body); }
  void Event(std::string data, bool) override { body_ = std::move(data); }
  bool gone() const override { return gone_(); }
  const std::string& body() const { return body_; }

 private:
  std::function<bool()> gone_;
  std::string body_;
};

// A stream's reactor and the handler's responder in one: events are written one at a
// time, in order; the stream finishes after the last (or at once, with an error answer).
// Finish is called outside the lock: gRPC may run OnDone from it.
class StreamCall final : public grpc::ServerWriteReactor<a2a::StreamResponse>,
                         public web::A2aResponder {
 public:
  explicit StreamCall(std::function<bool()> stopping) : stopping_(std::move(stopping)) {}

  void Hold(std::shared_ptr<StreamCall> self) { self_ = std::move(self); }

  void Json(int, std::string body) override {
    // Only an error comes this way: nothing was streamed.
    a2a::StreamResponse unused;
    grpc::Status s = FromResponse(body, &unused);
    EndWith(s.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "no stream") : s);
  }
  void Event(std::string data, bool last) override {
    a2a::StreamResponse item;
    grpc::Status s = FromResponse(data, &item);
    if (!s.ok()) return EndWith(s);
    std::unique_lock l(mu_);
    if (done_ || finishing_ || cancelled_) return;
    queue_.push_back(std::move(item));
    last_queued_ = last_queued_ || last;
    if (!writing_) WriteNextLocked();
  }
  bool gone() const override {
    std::lock_guard l(mu_);
    return done_ || cancelled_ || stopping_();
  }
  // The handler returned: whatever it did not end is ended now.
  void HandlerDone() {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard l(mu_);
      handler_done_ = true;
      if (!writing_ && !finishing_ && !done_ && (queue_.empty() || cancelled_)) {
        finishing_ = true;
        finish = cancelled_ ? grpc::Status::CANCELLED : grpc::Status::OK;
      }
    }
    // Every reactor finishes, a cancelled one too: gRPC waits for it at shutdown.
    if (finish.has_value()) Finish(*finish);
  }

  void OnWriteDone(bool ok) override {
    std::optional<grpc::Status> finish;
    {
      std::lock_guard l(mu_);
      writing_ = false;
      if (!ok) {  // the client is gone: nothing more is written, and the call finishes
        cancelled_ = true;
        queue_.clear();
        if (pending_.has_value()) {
          finish = *pending_;
          pending_.reset();
        } else if (handler_done_ && !finishing_) {
          finishing_ = true;
          finish = grpc::Status::CANCELLED;
        }
      }
    }
    if (!ok) {
      if (finish.has_value()) Finish(*finish);
      return;
    }
    {
      std::lock_guard l(mu_);
      queue_.pop_front();
      if (pending_.has_value()) {  // an error came while this was being written
        finish = *pending_;
        pending_.reset();
      } else if (!queue_.empty()) {
        return WriteNextLocked();
      } else if ((last_queued_ || handler_done_) && !finishing_) {
        finishing_ = true;
        finish = grpc::Status::OK;
      }
    }
    if (finish.has_value()) Finish(*finish);
  }
  void OnCancel() override {
    std::lock_guard l(mu_);
    cancelled_ = true;
  }
  void OnDone() override {
    std::shared_ptr<StreamCall> self;
    {
      std::lock_guard l(mu_);
      done_ = true;
      self = std::move(self_);
    }
  }

 private:
  void EndWith(const grpc::Status& s) {
    {
      std::lock_guard l(mu_);
      if (done_ || finishing_) return;
      finishing_ = true;
      if (writing_) {
        // The write in flight ends first (its OnWriteDone finishes with `s`); nothing
        // queued after it is sent.
        queue_.erase(queue_.begin() + 1, queue_.end());
        pending_ = s;
        return;
      }
      queue_.clear();
    }
    Finish(s);
  }
  void WriteNextLocked() {
    writing_ = true;
    StartWrite(&queue_.front());
  }

  std::function<bool()> stopping_;
  mutable std::mutex mu_;
  std::shared_ptr<StreamCall> self_;  // until OnDone
  std::deque<a2a::StreamResponse> queue_;
  bool writing_ = false, last_queued_ = false, handler_done_ = false, finishing_ = false;
  bool done_ = false, cancelled_ = false;
  std::optional<grpc::Status> pending_;  // the status to finish with once a write ends
};

}  // namespace

A2aService::A2aService(std::string admin_token, std::string a2a_token)
    : admin_token_(std::move(admin_token)), a2a_token_(std::move(a2a_token)) {}

A2aService::~A2aService() { Shutdown(); }

void A2aService::Attach(std::unique_ptr<web::A2aServer> server) {
  absl::MutexLock l(&mu_);
  server_ = std::move(server);
}

void A2aService::Shutdown() {
  absl::MutexLock l(&mu_);
  stopping_ = true;
  mu_.Await(absl::Condition(
      +[](int* n) { return *n == 0; }, &threads_));
}

bool A2aService::Enter() {
  absl::MutexLock l(&mu_);
  // Each call waits on a thread of its own: past kMaxCalls, callers wait their turn.
  if (stopping_ || threads_ >= kMaxCalls) return false;
  ++threads_;
  return true;
}

void A2aService::Leave() {
  absl::MutexLock l(&mu_);
  --threads_;
}

grpc::Status A2aService::Check(const grpc::CallbackServerContext* ctx) const {
  std::string token = Bearer(ctx);
  // No token: the unix socket, whose access is the admin's credential (the TCP listener
  // refuses a call without one before it gets here).
  if (token.empty() || TokenEquals(token, admin_token_) ||
      (!a2a_token_.empty() && TokenEquals(token, a2a_token_))) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "A2A needs agentd's A2A token (STATE_DIR/a2a.token) or its admin token");
}

grpc::ServerUnaryReactor* A2aService::Unary(grpc::CallbackServerContext* ctx,
                                            const std::string& method,
                                            const google::protobuf::Message& request,
                                            google::protobuf::Message* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (grpc::Status s = Check(ctx); !s.ok()) {
    reactor->Finish(s);
    return reactor;
  }
  std::shared_ptr<web::A2aServer> server;
  {
    absl::MutexLock l(&mu_);
    server = server_;
  }
  if (server == nullptr || !Enter()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE,
                     "A2A is not serving, or is serving as many calls as it takes (64)"));
    return reactor;
  }
  std::string body = RequestBody(method, request);
  std::thread([this, server, body, reactor, response, ctx]() mutable {
    Collect out([this, ctx] {
      absl::MutexLock l(&mu_);
      return stopping_ || ctx->IsCancelled();
    });
    server->Handle(body, true, &out);
    reactor->Finish(FromResponse(out.body(), response));
    server.reset();  // before counting out: the service may be gone once the count is zero
    Leave();
  }).detach();
  return reactor;
}

grpc::ServerWriteReactor<a2a::StreamResponse>* A2aService::Stream(
    grpc::CallbackServerContext* ctx, const std::string& method,
    const google::protobuf::Message& request) {
  auto call = std::make_shared<StreamCall>([this] {
    absl::MutexLock l(&mu_);
    return stopping_;
  });
  call->Hold(call);
  grpc::Status refused = Check(ctx);
  std::shared_ptr<web::A2aServer> server;
  {
    absl::MutexLock l(&mu_);
    server = server_;
  }
  if (refused.ok() && (server == nullptr || !Enter())) {
    refused = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "A2A is not serving, or is serving as many calls as it takes (64)");
  }
  if (!refused.ok()) {
    call->Finish(refused);
    return call.get();
  }
  std::string body = RequestBody(method, request);
  std::thread([this, server, body, call]() mutable {
    server->Handle(body, true, call.get());
    call->HandlerDone();
    server.reset();  // before counting out: the service may be gone once the count is zero
    call.reset();
    Leave();
  }).detach();
  return call.get();
}

grpc::ServerUnaryReactor* A2aService::SendMessage(grpc::CallbackServerContext* ctx,
                                                  const a2a::SendMessageRequest* req,
                                                  a2a::SendMessageResponse* resp) {
  return Unary(ctx, "SendMessage", *req, resp);
}
grpc::ServerWriteReactor<a2a::StreamResponse>* A2aService::SendStreamingMessage(
    grpc::CallbackServerContext* ctx, const a2a::SendMessageRequest* req) {
  return Stream(ctx, "SendStreamingMessage", *req);
}
grpc::ServerUnaryReactor* A2aService::GetTask(grpc::CallbackServerContext* ctx,
                                              const a2a::GetTaskRequest* req, a2a::Task* resp) {
  return Unary(ctx, "GetTask", *req, resp);
}
grpc::ServerUnaryReactor* A2aService::ListTasks(grpc::CallbackServerContext* ctx,
                                                const a2a::ListTasksRequest* req,
                                                a2a::ListTasksResponse* resp) {
  return Unary(ctx, "ListTasks", *req, resp);
}
grpc::ServerUnaryReactor* A2aService::CancelTask(grpc::CallbackServerContext* ctx,
                                                 const a2a::CancelTaskRequest* req,
                                                 a2a::Task* resp) {
  return Unary(ctx, "CancelTask", *req, resp);
}
grpc::ServerWriteReactor<a2a::StreamResponse>* A2aService::SubscribeToTask(
    grpc::CallbackServerContext* ctx, const a2a::SubscribeToTaskRequest* req) {
  return Stream(ctx, "SubscribeToTask", *req);
}

}  // namespace agentd
