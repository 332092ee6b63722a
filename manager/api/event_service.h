// EventService: the change feed over the API — ListEvents by cursor, and WatchEvents,
// which sends what is stored after the cursor and then each event as it commits.
#ifndef AGENTD_MANAGER_API_EVENT_SERVICE_H_
#define AGENTD_MANAGER_API_EVENT_SERVICE_H_

#include "agentd/v1/events.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/event_loop.h"
#include "manager/core/events.h"

namespace agentd {

class EventService final : public v1::EventService::CallbackService {
 public:
  // Neither pointer is owned; `feed` is used on `loop` only.
  EventService(EventLoop* loop, EventFeed* feed, ClientAuth auth)
      : loop_(loop), feed_(feed), auth_(std::move(auth)) {}

  grpc::ServerWriteReactor<v1::WatchEventsResponse>* WatchEvents(
      grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) override;
  grpc::ServerUnaryReactor* ListEvents(grpc::CallbackServerContext* ctx,
                                       const v1::ListEventsRequest* req,
                                       v1::ListEventsResponse* resp) override;

 private:
  EventLoop* loop_;
  EventFeed* feed_;
  ClientAuth auth_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_EVENT_SERVICE_H_
