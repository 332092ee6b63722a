#include "manager/api/event_service.h"

#include <deque>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "manager/api/unary.h"

namespace agentd {
namespace {

// Follows the feed for one watcher. Its state lives on the core loop: gRPC's callbacks
// post there, and the reactor is deleted there after leaving the feed, so a wake-up never
// reaches a dead reactor. One write is in flight at a time; a slow watcher holds back only
// itself (the next batch is read when its writes drain).
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEventsResponse> {
 public:
  WatchReactor(EventLoop* loop, EventFeed* feed, const v1::WatchEventsRequest& req)
      : loop_(loop), feed_(feed), filter_(req.filter()) {
    loop_->Post([this, after = req.after_seq()] {
      cursor_ = after < 0 ? feed_->last_seq() : after;
      sub_ = feed_->Subscribe([this] { Pump(); });
      Pump();
    });
  }

  void OnWriteDone(bool ok) override {
    loop_->Post([this, ok] {
      writing_ = false;
      if (!ok) {
        End(grpc::Status::CANCELLED);
        return;
      }
      queue_.pop_front();
      Pump();
    });
  }
  void OnCancel() override {
    loop_->Post([this] { End(grpc::Status::CANCELLED); });
  }
  void OnDone() override {
    loop_->Post([this] {
      feed_->Unsubscribe(sub_);
      delete this;
    });
  }

 private:
  void Pump() {
    if (ended_ || writing_) return;
    if (queue_.empty()) {
      int64_t scanned = cursor_;
      absl::StatusOr<std::vector<v1::Event>> events = feed_->Read(cursor_, filter_, 64, &scanned);
      if (!events.ok()) {
        End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                         absl::StrCat("reading events: ", events.status().message())));
        return;
      }
      cursor_ = scanned;
      for (v1::Event& e : *events) {
        v1::WatchEventsResponse r;
        *r.mutable_event() = std::move(e);
        queue_.push_back(std::move(r));
      }
    }
    if (queue_.empty()) return;  // caught up: the next commit wakes us
    writing_ = true;
    StartWrite(&queue_.front());
  }
  void End(grpc::Status s) {
    if (ended_) return;
    ended_ = true;
    Finish(std::move(s));
  }

  EventLoop* loop_;
  EventFeed* feed_;
  v1::EventFilter filter_;
  int64_t cursor_ = 0;
  int sub_ = 0;
  bool writing_ = false, ended_ = false;
  std::deque<v1::WatchEventsResponse> queue_;
};

}  // namespace

grpc::ServerWriteReactor<v1::WatchEventsResponse>* EventService::WatchEvents(
    grpc::CallbackServerContext* ctx, const v1::WatchEventsRequest* req) {
  grpc::Status auth = auth_.Check(ctx);
  if (!auth.ok()) {
    // A reactor that refuses at once.
    class Refused final : public grpc::ServerWriteReactor<v1::WatchEventsResponse> {
     public:
      explicit Refused(grpc::Status s) { Finish(std::move(s)); }
      void OnDone() override { delete this; }
    };
    return new Refused(auth);
  }
  return new WatchReactor(loop_, feed_, *req);
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
