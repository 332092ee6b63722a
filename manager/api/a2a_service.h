// A2aService: A2A v1.0's gRPC binding (lf.a2a.v1.A2AService, proto/a2a/v1/a2a.proto) on
// agentd's listeners, an adapter over web::A2aServer, which serves the JSON-RPC binding:
// A2A's JSON is the protobuf JSON of the same messages, so each request is turned into
// its JSON-RPC form, served by the one implementation, and the answer turned back. Errors
// become the status codes A2A gives them (TaskNotFound: NOT_FOUND; TaskNotCancelable,
// UnsupportedOperation, push notifications: FAILED_PRECONDITION; bad params:
// INVALID_ARGUMENT).
//
// The callers it accepts: the admin token, or the A2A token (which every agentd.v1 service
// refuses); on the unix socket, whoever may use it.
//
// Threading: each call is served on a thread of its own (a SendMessage waits for its goal,
// and gRPC's callback threads must not); Shutdown() stops them (they notice within a
// second) and waits for them. Set the A2aServer with Attach() once the gRPC server is up
// (it calls back into it through the in-process channel); calls before it are UNAVAILABLE.
#ifndef AGENTD_MANAGER_API_A2A_SERVICE_H_
#define AGENTD_MANAGER_API_A2A_SERVICE_H_

#include <memory>
#include <string>

#include "a2a/v1/a2a.grpc.pb.h"
#include "absl/synchronization/mutex.h"
#include "manager/web/a2a.h"

namespace agentd {

class A2aService final : public lf::a2a::v1::A2AService::CallbackService {
 public:
  A2aService(std::string admin_token, std::string a2a_token);
  ~A2aService() override;

  void Attach(std::unique_ptr<web::A2aServer> server);
  // Ends the calls that wait (within about a second) and waits for their threads.
  void Shutdown();

  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* ctx,
                                        const lf::a2a::v1::SendMessageRequest* req,
                                        lf::a2a::v1::SendMessageResponse* resp) override;
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* SendStreamingMessage(
      grpc::CallbackServerContext* ctx, const lf::a2a::v1::SendMessageRequest* req) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx,
                                    const lf::a2a::v1::GetTaskRequest* req,
                                    lf::a2a::v1::Task* resp) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const lf::a2a::v1::ListTasksRequest* req,
                                      lf::a2a::v1::ListTasksResponse* resp) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const lf::a2a::v1::CancelTaskRequest* req,
                                       lf::a2a::v1::Task* resp) override;
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* SubscribeToTask(
      grpc::CallbackServerContext* ctx, const lf::a2a::v1::SubscribeToTaskRequest* req) override;

 private:
  // Serves `method` with `request` as its params on a thread of its own, then finishes
  // `reactor`, filling `response` from the result.
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, const std::string& method,
                                  const google::protobuf::Message& request,
                                  google::protobuf::Message* response);
  grpc::ServerWriteReactor<lf::a2a::v1::StreamResponse>* Stream(
      grpc::CallbackServerContext* ctx, const std::string& method,
      const google::protobuf::Message& request);
  // OK for the admin or A2A token, or none (the unix socket); UNAUTHENTICATED otherwise.
  grpc::Status Check(const grpc::CallbackServerContext* ctx) const;
  // Counts a thread in, unless shutting down (then false).
  bool Enter();
  void Leave();

  std::string admin_token_, a2a_token_;
  mutable absl::Mutex mu_;
  std::shared_ptr<web::A2aServer> server_ ABSL_GUARDED_BY(mu_);
  int threads_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_A2A_SERVICE_H_
