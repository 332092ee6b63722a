// AgentHostService: the agent↔manager protocol, served to agentd-agent processes.
//
// Every call must carry the calling agent's own token (`authorization: Bearer …`), which
// the supervisor handed to that process at start; the token names the agent, and acts
// only as it. Register and Heartbeat go to the Supervisor on the core loop. Connect
// holds the agent's stream open (deliveries over it come with the task and message
// services); it ends when the agent closes it, its token stops being current, or the
// daemon shuts down. RequestConsent and GetConsentDecision go to the ConsentBook, as the
// token's agent. Methods not listed here answer UNIMPLEMENTED.
//
// An agent acts only on tasks it holds (assigned or running, as the TaskBoard has it):
// RequestConsent, ReserveBudget, Send, Delegate and ProposePlan naming another task —
// another agent's, another goal's, one that ended — get PERMISSION_DENIED ("task \"t-9\"
// is not held by agent \"coder-1\""). ReportUsage goes to the task its reservation was
// made for (a reservation is settled only by its own agent), else to a task assigned to
// the agent, even one that ended meanwhile: the money was spent.
#ifndef AGENTD_MANAGER_API_AGENT_HOST_SERVICE_H_
#define AGENTD_MANAGER_API_AGENT_HOST_SERVICE_H_

#include <string>

#include "agentd/v1/agent_host.grpc.pb.h"
#include "manager/core/agent_scope.h"
#include "manager/core/bus.h"
#include "manager/core/consent.h"
#include "manager/core/event_loop.h"
#include "manager/core/ledger.h"
#include "manager/core/plans.h"
#include "manager/core/supervisor.h"
#include "manager/core/tasks.h"
#include "manager/core/tracing.h"

namespace agentd {

// The bearer token of a call, or "" when it carries none.
std::string BearerToken(const grpc::CallbackServerContext* ctx);

// Who may call the client services (System, Agents, …): callers on the unix socket
// without a token (filesystem permissions authenticated them), and callers with the
// admin token. An agent's token is good for AgentHostService only: PERMISSION_DENIED.
struct ClientAuth {
  std::string admin_token;
  grpc::Status Check(const grpc::CallbackServerContext* ctx) const;
  // Finishes `reactor` with the refusal and returns true when Check() refuses the call.
  bool Refuse(const grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor) const {
    grpc::Status s = Check(ctx);
    if (!s.ok()) reactor->Finish(s);
    return !s.ok();
  }
};

class AgentHostService final : public v1::AgentHostService::CallbackService {
 public:
  // None of the pointers is owned; all are used on `loop` only. `tracing` may be null
  // (agentd does not trace: spans agents send are dropped).
  AgentHostService(EventLoop* loop, Supervisor* supervisor, ConsentBook* consents, TaskBoard* tasks,
                   Ledger* ledger, Bus* bus, PlanBook* plans, Tracing* tracing)
      : loop_(loop),
        supervisor_(supervisor),
        consents_(consents),
        tasks_(tasks),
        ledger_(ledger),
        bus_(bus),
        plans_(plans),
        tracing_(tracing),
        scope_(supervisor, tasks, ledger) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx,
                                     const v1::RegisterRequest* req,
                                     v1::RegisterResponse* resp) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const v1::HeartbeatRequest* req,
                                      v1::HeartbeatResponse* resp) override;
  grpc::ServerBidiReactor<v1::ConnectRequest, v1::ConnectResponse>* Connect(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* RequestConsent(grpc::CallbackServerContext* ctx,
                                           const v1::RequestConsentRequest* req,
                                           v1::RequestConsentResponse* resp) override;
  grpc::ServerUnaryReactor* GetConsentDecision(grpc::CallbackServerContext* ctx,
                                               const v1::GetConsentDecisionRequest* req,
                                               v1::GetConsentDecisionResponse* resp) override;
  grpc::ServerUnaryReactor* ReserveBudget(grpc::CallbackServerContext* ctx,
                                          const v1::ReserveBudgetRequest* req,
                                          v1::ReserveBudgetResponse* resp) override;
  grpc::ServerUnaryReactor* ReportUsage(grpc::CallbackServerContext* ctx,
                                        const v1::ReportUsageRequest* req,
                                        v1::ReportUsageResponse* resp) override;
  grpc::ServerUnaryReactor* Delegate(grpc::CallbackServerContext* ctx,
                                     const v1::DelegateRequest* req,
                                     v1::DelegateResponse* resp) override;
  grpc::ServerUnaryReactor* ProposePlan(grpc::CallbackServerContext* ctx,
                                        const v1::ProposePlanRequest* req,
                                        v1::ProposePlanResponse* resp) override;
  grpc::ServerUnaryReactor* Send(grpc::CallbackServerContext* ctx, const v1::SendRequest* req,
                                 v1::SendResponse* resp) override;

 private:
  EventLoop* loop_;
  Supervisor* supervisor_;
  ConsentBook* consents_;
  TaskBoard* tasks_;
  Ledger* ledger_;
  Bus* bus_;
  PlanBook* plans_;
  Tracing* tracing_;  // null: agentd does not trace
  AgentScope scope_;  // what each call may act on
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_AGENT_HOST_SERVICE_H_
