// LogService: agents' logs over gRPC, served from the LogStore.
//
// StreamLogs checks on the core loop that the agent exists, then reads and writes on
// gRPC's threads: one batch in flight per stream, the next read only once the client has
// taken the last one, so a slow or stopped client costs one batch of memory and nothing
// else. With follow, it waits for new records through LogStore::NotifyAfter.
#ifndef AGENTD_MANAGER_API_LOG_SERVICE_H_
#define AGENTD_MANAGER_API_LOG_SERVICE_H_

#include "agentd/v1/logs.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/event_loop.h"
#include "manager/core/logstore.h"
#include "manager/core/supervisor.h"

namespace agentd {

class LogService final : public v1::LogService::CallbackService {
 public:
  // None of the pointers is owned; `supervisor` is used on `loop` only.
  LogService(EventLoop* loop, Supervisor* supervisor, LogStore* logs, ClientAuth auth)
      : loop_(loop), supervisor_(supervisor), logs_(logs), auth_(std::move(auth)) {}

  grpc::ServerWriteReactor<v1::StreamLogsResponse>* StreamLogs(
      grpc::CallbackServerContext* ctx, const v1::StreamLogsRequest* req) override;
  grpc::ServerUnaryReactor* ListLogSegments(grpc::CallbackServerContext* ctx,
                                            const v1::ListLogSegmentsRequest* req,
                                            v1::ListLogSegmentsResponse* resp) override;

 private:
  EventLoop* loop_;
  Supervisor* supervisor_;
  LogStore* logs_;
  ClientAuth auth_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_LOG_SERVICE_H_
