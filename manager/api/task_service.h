// TaskService, MessageService and UsageService: thin adapters from the API to the
// TaskBoard, the Bus and the Ledger on the core loop. Admin callers only (an agent's token is
// refused).
#ifndef AGENTD_MANAGER_API_TASK_SERVICE_H_
#define AGENTD_MANAGER_API_TASK_SERVICE_H_

#include "agentd/v1/audit.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/audit.h"
#include "manager/core/bus.h"
#include "manager/core/event_loop.h"
#include "manager/core/events.h"
#include "manager/core/ledger.h"
#include "manager/core/plans.h"
#include "manager/core/tasks.h"
#include "manager/core/transcripts.h"
#include "manager/core/workspace_opener.h"

namespace agentd {

class TaskService final : public v1::TaskService::CallbackService {
 public:
  // No pointer is owned; all but `loop` are used on `loop` only. `feed`'s commits wake
  // the followers of transcripts.
  TaskService(EventLoop* loop, TaskBoard* tasks, Transcripts* transcripts, EventFeed* feed,
              WorkspaceOpener* opener, ClientAuth auth)
      : loop_(loop),
        tasks_(tasks),
        transcripts_(transcripts),
        feed_(feed),
        opener_(opener),
        auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* SubmitGoal(grpc::CallbackServerContext* ctx,
                                       const v1::SubmitGoalRequest* req,
                                       v1::SubmitGoalResponse* resp) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* ctx, const v1::GetTaskRequest* req,
                                    v1::GetTaskResponse* resp) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* ctx,
                                      const v1::ListTasksRequest* req,
                                      v1::ListTasksResponse* resp) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* ctx,
                                       const v1::CancelTaskRequest* req,
                                       v1::CancelTaskResponse* resp) override;
  grpc::ServerUnaryReactor* PauseGoal(grpc::CallbackServerContext* ctx,
                                      const v1::PauseGoalRequest* req,
                                      v1::PauseGoalResponse* resp) override;
  grpc::ServerUnaryReactor* ResumeGoal(grpc::CallbackServerContext* ctx,
                                       const v1::ResumeGoalRequest* req,
                                       v1::ResumeGoalResponse* resp) override;
  grpc::ServerUnaryReactor* RetryTask(grpc::CallbackServerContext* ctx,
                                      const v1::RetryTaskRequest* req,
                                      v1::RetryTaskResponse* resp) override;
  grpc::ServerUnaryReactor* OpenWorkspace(grpc::CallbackServerContext* ctx,
                                          const v1::OpenWorkspaceRequest* req,
                                          v1::OpenWorkspaceResponse* resp) override;
  // Errors: NOT_FOUND for a task agentd does not know; INVALID_ARGUMENT for a bad page
  // token.
  grpc::ServerUnaryReactor* GetTranscript(grpc::CallbackServerContext* ctx,
                                          const v1::GetTranscriptRequest* req,
                                          v1::GetTranscriptResponse* resp) override;
  // The kept entries after the cursor, then each as it is recorded; the stream ends (OK)
  // once the task has ended and all its entries are sent.
  grpc::ServerWriteReactor<v1::WatchTranscriptResponse>* WatchTranscript(
      grpc::CallbackServerContext* ctx, const v1::WatchTranscriptRequest* req) override;
  // Read from the templates folder off the core loop (a few small files).
  grpc::ServerUnaryReactor* ListTemplates(grpc::CallbackServerContext* ctx,
                                          const v1::ListTemplatesRequest* req,
                                          v1::ListTemplatesResponse* resp) override;

 private:
  EventLoop* loop_;
  TaskBoard* tasks_;
  Transcripts* transcripts_;
  EventFeed* feed_;
  WorkspaceOpener* opener_;
  ClientAuth auth_;
};

class MessageService final : public v1::MessageService::CallbackService {
 public:
  // `feed` (not owned, used on `loop`) carries the messages WatchMessages follows.
  MessageService(EventLoop* loop, Bus* bus, EventFeed* feed, ClientAuth auth)
      : loop_(loop), bus_(bus), feed_(feed), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* SendMessage(grpc::CallbackServerContext* ctx,
                                        const v1::SendMessageRequest* req,
                                        v1::SendMessageResponse* resp) override;
  grpc::ServerUnaryReactor* ListMessages(grpc::CallbackServerContext* ctx,
                                         const v1::ListMessagesRequest* req,
                                         v1::ListMessagesResponse* resp) override;
  // The stored messages after the cursor, then each one as it is sent.
  grpc::ServerWriteReactor<v1::WatchMessagesResponse>* WatchMessages(
      grpc::CallbackServerContext* ctx, const v1::WatchMessagesRequest* req) override;

 private:
  EventLoop* loop_;
  Bus* bus_;
  EventFeed* feed_;
  ClientAuth auth_;
};

class PlanService final : public v1::PlanService::CallbackService {
 public:
  PlanService(EventLoop* loop, PlanBook* plans, ClientAuth auth)
      : loop_(loop), plans_(plans), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* ListPlans(grpc::CallbackServerContext* ctx,
                                      const v1::ListPlansRequest* req,
                                      v1::ListPlansResponse* resp) override;
  grpc::ServerUnaryReactor* GetPlan(grpc::CallbackServerContext* ctx, const v1::GetPlanRequest* req,
                                    v1::GetPlanResponse* resp) override;
  grpc::ServerUnaryReactor* ApprovePlan(grpc::CallbackServerContext* ctx,
                                        const v1::ApprovePlanRequest* req,
                                        v1::ApprovePlanResponse* resp) override;
  grpc::ServerUnaryReactor* RejectPlan(grpc::CallbackServerContext* ctx,
                                       const v1::RejectPlanRequest* req,
                                       v1::RejectPlanResponse* resp) override;

 private:
  EventLoop* loop_;
  PlanBook* plans_;
  ClientAuth auth_;
};

class AuditService final : public v1::AuditService::CallbackService {
 public:
  AuditService(EventLoop* loop, AuditLog* audit, ClientAuth auth)
      : loop_(loop), audit_(audit), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* ListAuditEntries(grpc::CallbackServerContext* ctx,
                                             const v1::ListAuditEntriesRequest* req,
                                             v1::ListAuditEntriesResponse* resp) override;
  grpc::ServerUnaryReactor* VerifyAuditChain(grpc::CallbackServerContext* ctx,
                                             const v1::VerifyAuditChainRequest* req,
                                             v1::VerifyAuditChainResponse* resp) override;

 private:
  EventLoop* loop_;
  AuditLog* audit_;
  ClientAuth auth_;
};

class UsageService final : public v1::UsageService::CallbackService {
 public:
  UsageService(EventLoop* loop, Ledger* ledger, ClientAuth auth)
      : loop_(loop), ledger_(ledger), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* GetUsage(grpc::CallbackServerContext* ctx,
                                     const v1::GetUsageRequest* req,
                                     v1::GetUsageResponse* resp) override;
  grpc::ServerUnaryReactor* ListUsageRecords(grpc::CallbackServerContext* ctx,
                                             const v1::ListUsageRecordsRequest* req,
                                             v1::ListUsageRecordsResponse* resp) override;
  grpc::ServerUnaryReactor* GetBudget(grpc::CallbackServerContext* ctx,
                                      const v1::GetBudgetRequest* req,
                                      v1::GetBudgetResponse* resp) override;
  grpc::ServerUnaryReactor* SetBudget(grpc::CallbackServerContext* ctx,
                                      const v1::SetBudgetRequest* req,
                                      v1::SetBudgetResponse* resp) override;

 private:
  EventLoop* loop_;
  Ledger* ledger_;
  ClientAuth auth_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_TASK_SERVICE_H_
