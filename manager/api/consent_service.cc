#include "manager/api/consent_service.h"

#include "absl/strings/str_cat.h"
#include "manager/api/feed_reactor.h"
#include "manager/api/status.h"
#include "manager/api/unary.h"

namespace agentd {

grpc::ServerUnaryReactor* ConsentService::ListConsentRequests(
    grpc::CallbackServerContext* ctx, const v1::ListConsentRequestsRequest* req,
    v1::ListConsentRequestsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  if (req->page_size() < 0) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative"));
    return reactor;
  }
  loop_->Post([this, reactor, req, resp] {
    // Pages by id order; the token is the id the next page starts after.
    size_t size = req->page_size() > 0 ? static_cast<size_t>(req->page_size()) : 100;
    for (v1::ConsentRequest& r : consents_->List(req->include_decided(), req->agent_id())) {
      if (!req->page_token().empty() && r.id() <= req->page_token()) continue;
      if (static_cast<size_t>(resp->consent_requests_size()) == size) {
        resp->set_next_page_token(resp->consent_requests(resp->consent_requests_size() - 1).id());
        break;
      }
      *resp->add_consent_requests() = std::move(r);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ConsentService::GetConsentRequest(grpc::CallbackServerContext* ctx,
                                                            const v1::GetConsentRequestRequest* req,
                                                            v1::GetConsentRequestResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  loop_->Post([this, reactor, req, resp] {
    absl::StatusOr<v1::ConsentRequest> r = consents_->Find(req->consent_request_id());
    if (r.ok()) *resp->mutable_consent_request() = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* ConsentService::DecideConsentRequest(
    grpc::CallbackServerContext* ctx, const v1::DecideConsentRequestRequest* req,
    v1::DecideConsentRequestResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  std::string by = HumanCaller(ctx);
  loop_->Post([this, reactor, req, resp, by] {
    absl::StatusOr<v1::ConsentRequest> r = consents_->Decide(*req, by);
    if (r.ok()) *resp->mutable_consent_request() = *std::move(r);
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchConsentRequestsResponse>* ConsentService::WatchConsentRequests(
    grpc::CallbackServerContext* ctx, const v1::WatchConsentRequestsRequest* req) {
  grpc::Status auth = auth_.Check(ctx);
  if (!auth.ok()) return new RefusedStream<v1::WatchConsentRequestsResponse>(auth);
  v1::EventFilter filter;
  filter.add_kinds("consent.");
  std::string goal = req->goal_id();
  return new FeedReactor<v1::WatchConsentRequestsResponse>(
      loop_, feed_, filter,
      [goal](v1::Event& e, v1::WatchConsentRequestsResponse* out) {
        if (!e.has_consent_request()) return false;
        if (!goal.empty() && e.consent_request().goal_id() != goal) return false;
        out->set_seq(e.seq());
        *out->mutable_consent_request() = std::move(*e.mutable_consent_request());
        return true;
      },
      [this, goal, after = req->after_seq()](std::deque<v1::WatchConsentRequestsResponse>* out) {
        if (after > 0) return after;
        // From the start: what waits for a person now, then changes from here on.
        int64_t now = feed_->last_seq();
        for (v1::ConsentRequest& r : consents_->List(false, "")) {
          if (!goal.empty() && r.goal_id() != goal) continue;
          v1::WatchConsentRequestsResponse resp;
          resp.set_seq(now);
          *resp.mutable_consent_request() = std::move(r);
          out->push_back(std::move(resp));
        }
        return now;
      });
}

}  // namespace agentd
