// ConsentService: a person lists agents' consent requests and decides them. Each handler
// posts to the core loop (ConsentBook) and finishes from there.
#ifndef AGENTD_MANAGER_API_CONSENT_SERVICE_H_
#define AGENTD_MANAGER_API_CONSENT_SERVICE_H_

#include "agentd/v1/consent.grpc.pb.h"
#include "manager/api/agent_host_service.h"
#include "manager/core/consent.h"
#include "manager/core/event_loop.h"
#include "manager/core/events.h"

namespace agentd {

class ConsentService final : public v1::ConsentService::CallbackService {
 public:
  // Neither pointer is owned; `consents` is used on `loop` only.
  ConsentService(EventLoop* loop, ConsentBook* consents, EventFeed* feed, ClientAuth auth)
      : loop_(loop), consents_(consents), feed_(feed), auth_(std::move(auth)) {}

  grpc::ServerUnaryReactor* ListConsentRequests(grpc::CallbackServerContext* ctx,
                                                const v1::ListConsentRequestsRequest* req,
                                                v1::ListConsentRequestsResponse* resp) override;
  grpc::ServerUnaryReactor* GetConsentRequest(grpc::CallbackServerContext* ctx,
                                              const v1::GetConsentRequestRequest* req,
                                              v1::GetConsentRequestResponse* resp) override;
  grpc::ServerUnaryReactor* DecideConsentRequest(grpc::CallbackServerContext* ctx,
                                                 const v1::DecideConsentRequestRequest* req,
                                                 v1::DecideConsentRequestResponse* resp) override;
  // Every pending request first (after_seq 0), then each one created or decided.
  grpc::ServerWriteReactor<v1::WatchConsentRequestsResponse>* WatchConsentRequests(
      grpc::CallbackServerContext* ctx, const v1::WatchConsentRequestsRequest* req) override;

 private:
  EventLoop* loop_;
  ConsentBook* consents_;
  EventFeed* feed_;
  ClientAuth auth_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_CONSENT_SERVICE_H_
