// The shape of most admin RPCs: check the caller, run one step on the core loop, answer.
#ifndef AGENTD_MANAGER_API_UNARY_H_
#define AGENTD_MANAGER_API_UNARY_H_

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/text.h"
#include "grpcpp/support/server_callback.h"
#include "manager/api/agent_host_service.h"
#include "manager/api/status.h"
#include "manager/core/event_loop.h"

namespace agentd {

// Refuses the call unless `auth` admits it; otherwise runs `fn(finish)` on the core loop,
// which fills the response and calls `finish(status)` exactly once, then or later, from
// any thread. The callback thread never blocks; an exception from `fn` answers the call
// with INTERNAL (and does not cross the core loop).
template <typename Fn>
grpc::ServerUnaryReactor* OnLoopAsync(grpc::CallbackServerContext* ctx, const ClientAuth& auth,
                                      EventLoop* loop, Fn fn) {
  auto* reactor = ctx->DefaultReactor();
  if (auth.Refuse(ctx, reactor)) return reactor;
  loop->Post([reactor, fn = std::move(fn)]() mutable {
    auto finish = [reactor](const absl::Status& status) { reactor->Finish(ToGrpcStatus(status)); };
    try {
      fn(finish);
    } catch (const std::exception& e) {
      finish(
          absl::InternalError(absl::StrCat("agentd failed on this call: ", ValidUtf8(e.what()))));
    }
  });
  return reactor;
}

// The same for a step done at once: `fn()` returns the call's status.
template <typename Fn>
grpc::ServerUnaryReactor* OnLoop(grpc::CallbackServerContext* ctx, const ClientAuth& auth,
                                 EventLoop* loop, Fn fn) {
  return OnLoopAsync(ctx, auth, loop,
                     [fn = std::move(fn)](const auto& finish) mutable { finish(fn()); });
}

// Who a person's call comes from: over TCP, the holder of the admin token; on the unix
// socket, the local user; through the web bridge (the in-process channel, whose peer is
// no address), the web UI's user, who logged in with the admin token.
inline std::string HumanCaller(const grpc::CallbackServerContext* ctx) {
  if (ctx->auth_context() && ctx->auth_context()->IsPeerAuthenticated()) return "human:admin";
  std::string peer = ctx->peer();
  if (peer.rfind("unix:", 0) == 0 || peer.rfind("ipv4:", 0) == 0 || peer.rfind("ipv6:", 0) == 0) {
    return "human:local";
  }
  return "human:web";
}

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_UNARY_H_
