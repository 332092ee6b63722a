// AgentService: the gRPC adapter over the Supervisor. Each handler posts to the core
// loop and finishes the call from there; none blocks a gRPC thread.
#ifndef AGENTD_MANAGER_API_AGENT_SERVICE_H_
#define AGENTD_MANAGER_API_AGENT_SERVICE_H_

#include "agentd/v1/agents.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/audit.h"
#include "manager/core/event_loop.h"
#include "manager/core/supervisor.h"

namespace agentd {

class AgentService final : public v1::AgentService::CallbackService {
 public:
  // Neither pointer is owned; `supervisor` is used on `loop` only.
  AgentService(EventLoop* loop, Supervisor* supervisor, ClientAuth auth, AuditLog* audit)
      : loop_(loop), supervisor_(supervisor), auth_(std::move(auth)), audit_(audit) {}

  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const v1::ListAgentsRequest* req,
                                       v1::ListAgentsResponse* resp) override;
  grpc::ServerUnaryReactor* GetAgent(grpc::CallbackServerContext* ctx,
                                     const v1::GetAgentRequest* req,
                                     v1::GetAgentResponse* resp) override;
  grpc::ServerUnaryReactor* StartAgent(grpc::CallbackServerContext* ctx,
                                       const v1::StartAgentRequest* req,
                                       v1::StartAgentResponse* resp) override;
  grpc::ServerUnaryReactor* StopAgent(grpc::CallbackServerContext* ctx,
                                      const v1::StopAgentRequest* req,
                                      v1::StopAgentResponse* resp) override;
  grpc::ServerUnaryReactor* RestartAgent(grpc::CallbackServerContext* ctx,
                                         const v1::RestartAgentRequest* req,
                                         v1::RestartAgentResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteAgent(grpc::CallbackServerContext* ctx,
                                        const v1::DeleteAgentRequest* req,
                                        v1::DeleteAgentResponse* resp) override;

 private:
  EventLoop* loop_;
  Supervisor* supervisor_;
  ClientAuth auth_;
  AuditLog* audit_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_AGENT_SERVICE_H_
