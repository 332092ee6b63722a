// The shape of most admin RPCs: check the caller, run one step on the core loop, answer.
#ifndef AGENTD_MANAGER_API_UNARY_H_
#define AGENTD_MANAGER_API_UNARY_H_

#include <utility>

#include "grpcpp/support/server_callback.h"
#include "manager/api/agent_host_service.h"
#include "manager/api/status.h"
#include "manager/core/event_loop.h"

namespace agentd {

// Refuses the call unless `auth` admits it; otherwise runs `fn()` (returning
// absl::Status, filling the response itself) on the core loop and finishes with its
// status. The callback thread never blocks.
template <typename Fn>
grpc::ServerUnaryReactor* OnLoop(grpc::CallbackServerContext* ctx, const ClientAuth& auth,
                                 EventLoop* loop, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  if (auth.Refuse(ctx, reactor)) return reactor;
  loop->Post([reactor, fn = std::move(fn)]() mutable { reactor->Finish(ToGrpcStatus(fn())); });
  return reactor;
}

// Who a person's call comes from: the unix socket's peer is the local user; over TCP,
// the holder of the admin token.
inline std::string HumanCaller(const grpc::CallbackServerContext* ctx) {
  return ctx->auth_context() && ctx->auth_context()->IsPeerAuthenticated() ? "human:admin"
                                                                           : "human:local";
}

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_UNARY_H_
