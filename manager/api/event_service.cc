#include "manager/api/event_service.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "manager/api/feed_reactor.h"
#include "manager/api/unary.h"

namespace agentd {
grpc::ServerWriteReactor<v1::WatchEventsResponse>* EventService::WatchEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) {
  grpc::Status auth = auth_.Check(ctx);
  if (!auth.ok()) return new RefusedStream<v1::WatchEventsResponse>(auth);
  return new FeedReactor<v1::WatchEventsResponse>(
      loop_, feed_, req->filter(),
      [](v1::Event& e, v1::WatchEventsResponse* out) {
        *out->mutable_event() = std::move(e);
        return true;
      },
      [feed = feed_, after = req->after_seq()](std::deque<v1::WatchEventsResponse>*) {
        return after < 0 ? feed->last_seq() : after;
      });
}

grpc::ServerUnaryReactor* EventService::ListEvents(grpc::CallbackServerContext* ctx,
                                                   const v1::ListEventsRequest* req,
                                                   v1::ListEventsResponse* resp) {
  return OnLoop(ctx, auth_, loop_, [this, req, resp]() -> absl::Status {
    int64_t after = req->after_seq();
    if (!req->page_token().empty() && !absl::SimpleAtoi(req->page_token(), &after)) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_token \"", req->page_token(), "\" is not one this server issued"));
    }
    int size = req->page_size() <= 0 ? 100 : std::min(req->page_size(), 1000);
    int64_t scanned = after;
    absl::StatusOr<std::vector<v1::Event>> events =
        feed_->Read(after, req->filter(), size, &scanned);
    if (!events.ok()) return events.status();
    for (v1::Event& e : *events) *resp->add_events() = std::move(e);
    if (scanned < feed_->last_seq()) resp->set_next_page_token(absl::StrCat(scanned));
    return absl::OkStatus();
  });
}

}  // namespace agentd
