#include "tests/support/client.h"

#include <chrono>

#include "tests/support/process.h"

namespace agentd::testing {

std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + Scaled(timeout)));
  return ctx;
}

Client::Client(std::shared_ptr<grpc::Channel> channel)
    : agents_(v1::AgentService::NewStub(channel)),
      audit_(v1::AuditService::NewStub(channel)),
      consent_(v1::ConsentService::NewStub(channel)),
      events_(v1::EventService::NewStub(channel)),
      logs_(v1::LogService::NewStub(channel)),
      messages_(v1::MessageService::NewStub(channel)),
      plans_(v1::PlanService::NewStub(channel)),
      system_(v1::SystemService::NewStub(channel)),
      tasks_(v1::TaskService::NewStub(channel)),
      usage_(v1::UsageService::NewStub(channel)) {}

v1::Agent Client::GetAgent(const std::string& id, grpc::Status* status) {
  v1::GetAgentRequest req;
  req.set_agent_id(id);
  v1::GetAgentResponse resp;
  grpc::Status s = agents_->GetAgent(Ctx().get(), req, &resp);
  if (status != nullptr) *status = s;
  return s.ok() ? resp.agent() : v1::Agent();
}

grpc::Status Client::StartAgent(const std::string& role, const std::string& id) {
  v1::StartAgentRequest req;
  req.set_role(role);
  req.set_agent_id(id);
  v1::StartAgentResponse resp;
  return agents_->StartAgent(Ctx().get(), req, &resp);
}

v1::GetInfoResponse Client::GetInfo(grpc::Status* status) {
  v1::GetInfoResponse resp;
  grpc::Status s = system_->GetInfo(Ctx().get(), v1::GetInfoRequest(), &resp);
  if (status != nullptr) *status = s;
  return s.ok() ? resp : v1::GetInfoResponse();
}

}  // namespace agentd::testing
