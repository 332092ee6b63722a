#include "manager/api/agent_service.h"

#include "manager/api/unary.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "manager/api/status.h"
#include "manager/core/proto_time.h"

namespace agentd {
namespace {

// Finishes `reactor` with the agent in `*slot`, or with the error.
template <typename Resp>
auto Reply(grpc::ServerUnaryReactor* reactor, Resp* resp) {
  return [reactor, resp](absl::StatusOr<v1::Agent> a) mutable {
    if (!a.ok()) {
      reactor->Finish(ToGrpcStatus(a.status()));
      return;
    }
    *resp->mutable_agent() = *std::move(a);
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

grpc::ServerUnaryReactor* AgentService::ListAgents(grpc::CallbackServerContext* ctx,
                                                   const v1::ListAgentsRequest* req,
                                                   v1::ListAgentsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post([this, reactor, req, resp] {
    std::vector<v1::AgentState> states;
    for (int s : req->states()) states.push_back(static_cast<v1::AgentState>(s));
    std::vector<v1::Agent> all = supervisor_->List(req->role(), states);
    // Pages by position in id order; the token is the id the next page starts after.
    size_t start = 0;
    if (!req->page_token().empty()) {
      while (start < all.size() && all[start].id() <= req->page_token()) ++start;
    }
    size_t size = req->page_size() > 0 ? static_cast<size_t>(req->page_size()) : 1000;
    if (req->page_size() < 0) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative"));
      return;
    }
    size_t end = std::min(all.size(), start + size);
    for (size_t i = start; i < end; ++i) *resp->add_agents() = std::move(all[i]);
    if (end < all.size()) resp->set_next_page_token(resp->agents().rbegin()->id());
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::GetAgent(grpc::CallbackServerContext* ctx,
                                                 const v1::GetAgentRequest* req,
                                                 v1::GetAgentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post(
      [this, reactor, req, resp] { Reply(reactor, resp)(supervisor_->Get(req->agent_id())); });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::StartAgent(grpc::CallbackServerContext* ctx,
                                                   const v1::StartAgentRequest* req,
                                                   v1::StartAgentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post([this, reactor, req, resp, by = HumanCaller(ctx)] {
    absl::StatusOr<v1::Agent> a = supervisor_->Start(*req);
    if (a.ok()) audit_->AppendBy(by, "agent.start", a->id(), "", "", {{"role", a->role()}});
    Reply(reactor, resp)(std::move(a));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::StopAgent(grpc::CallbackServerContext* ctx,
                                                  const v1::StopAgentRequest* req,
                                                  v1::StopAgentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post([this, reactor, req, resp, by = HumanCaller(ctx)] {
    audit_->AppendBy(by, "agent.stop", req->agent_id());
    supervisor_->Stop(req->agent_id(), FromProto(req->timeout()), req->wait(),
                      Reply(reactor, resp));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::RestartAgent(grpc::CallbackServerContext* ctx,
                                                     const v1::RestartAgentRequest* req,
                                                     v1::RestartAgentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post([this, reactor, req, resp, by = HumanCaller(ctx)] {
    audit_->AppendBy(by, "agent.restart", req->agent_id());
    supervisor_->Restart(req->agent_id(), FromProto(req->timeout()), Reply(reactor, resp));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AgentService::DeleteAgent(grpc::CallbackServerContext* ctx,
                                                    const v1::DeleteAgentRequest* req,
                                                    v1::DeleteAgentResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post([this, reactor, req, resp, by = HumanCaller(ctx)] {
    supervisor_->Delete(
        req->agent_id(), req->force(),
        [this, reactor, resp, by, id = req->agent_id()](absl::StatusOr<v1::Agent> agent) mutable {
          if (agent.ok()) audit_->AppendBy(by, "agent.delete", id);
          Reply(reactor, resp)(std::move(agent));
        });
  });
  return reactor;
}

}  // namespace agentd
