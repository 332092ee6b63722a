// A client of a test's agentd: a stub for each admin service on one channel, and a
// deadline on every call (Ctx), so that no test waits for ever on a daemon that hangs.
#ifndef AGENTD_TESTS_SUPPORT_CLIENT_H_
#define AGENTD_TESTS_SUPPORT_CLIENT_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/audit.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace agentd::testing {

// A context whose deadline is Scaled(timeout) from now. Every unary call and every
// stream a test makes takes one; a stream that must outlive it takes a longer timeout.
std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10));

class Client {
 public:
  explicit Client(std::shared_ptr<grpc::Channel> channel);

  v1::AgentService::Stub& agents() { return *agents_; }
  v1::AuditService::Stub& audit() { return *audit_; }
  v1::ConsentService::Stub& consent() { return *consent_; }
  v1::EventService::Stub& events() { return *events_; }
  v1::LogService::Stub& logs() { return *logs_; }
  v1::MessageService::Stub& messages() { return *messages_; }
  v1::PlanService::Stub& plans() { return *plans_; }
  v1::SystemService::Stub& system() { return *system_; }
  v1::TaskService::Stub& tasks() { return *tasks_; }
  v1::UsageService::Stub& usage() { return *usage_; }

  // The agent as GetAgent answers; an empty Agent (no id) when the call fails, with its
  // status in `*status` when given. Meant for polling: it records no failure itself.
  v1::Agent GetAgent(const std::string& id, grpc::Status* status = nullptr);
  // StartAgent of `role` as `id`; the call's status.
  grpc::Status StartAgent(const std::string& role, const std::string& id);
  // GetInfo; an empty response when the call fails.
  v1::GetInfoResponse GetInfo(grpc::Status* status = nullptr);

 private:
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::AuditService::Stub> audit_;
  std::unique_ptr<v1::ConsentService::Stub> consent_;
  std::unique_ptr<v1::EventService::Stub> events_;
  std::unique_ptr<v1::LogService::Stub> logs_;
  std::unique_ptr<v1::MessageService::Stub> messages_;
  std::unique_ptr<v1::PlanService::Stub> plans_;
  std::unique_ptr<v1::SystemService::Stub> system_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::UsageService::Stub> usage_;
};

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_SUPPORT_CLIENT_H_
