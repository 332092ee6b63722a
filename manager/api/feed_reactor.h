// A server stream that follows the change feed: what is stored after a cursor, then each
// event as it commits, mapped to the stream's response type. WatchEvents and
// WatchConsentRequests are both this.
//
// Its state lives on the core loop: gRPC's callbacks post there, and the reactor is
// deleted there after leaving the feed, so a wake-up never reaches a dead reactor. One
// write is in flight at a time; a slow watcher holds back only itself (the next batch is
// read when its writes drain).
#ifndef AGENTD_MANAGER_API_FEED_REACTOR_H_
#define AGENTD_MANAGER_API_FEED_REACTOR_H_

#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/support/server_callback.h"
#include "manager/core/event_loop.h"
#include "manager/core/events.h"

namespace agentd {

template <typename Resp>
class FeedReactor final : public grpc::ServerWriteReactor<Resp> {
 public:
  // Turns an event into a response; false skips the event.
  using Map = std::function<bool(v1::Event& event, Resp* out)>;
  // Runs first, on the loop: queues what goes before the feed and returns the cursor to
  // follow the feed from.
  using Start = std::function<int64_t(std::deque<Resp>* out)>;

  FeedReactor(EventLoop* loop, EventFeed* feed, v1::EventFilter filter, Map map, Start start)
      : loop_(loop), feed_(feed), filter_(std::move(filter)), map_(std::move(map)) {
    loop_->Post([this, start = std::move(start)] {
      cursor_ = start(&queue_);
      // A commit wakes us on the loop's next turn, not inside the commit: whoever made the
      // change (the bus numbering a message, say) has finished with it by then.
      sub_ = feed_->Subscribe([this, alive = alive_] {
        loop_->Post([this, alive] {
          if (*alive) Pump();
        });
      });
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
      *alive_ = false;  // wake-ups still queued find it gone
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
        Resp r;
        if (map_(e, &r)) queue_.push_back(std::move(r));
      }
    }
    if (queue_.empty()) return;  // caught up: the next commit wakes us
    writing_ = true;
    this->StartWrite(&queue_.front());
  }
  void End(grpc::Status s) {
    if (ended_) return;
    ended_ = true;
    this->Finish(std::move(s));
  }

  EventLoop* loop_;
  EventFeed* feed_;
  v1::EventFilter filter_;
  Map map_;
  int64_t cursor_ = 0;
  int sub_ = 0;
  bool writing_ = false, ended_ = false;
  std::deque<Resp> queue_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A stream refused before it starts (the caller may not watch).
template <typename Resp>
class RefusedStream final : public grpc::ServerWriteReactor<Resp> {
 public:
  explicit RefusedStream(grpc::Status s) { this->Finish(std::move(s)); }
  void OnDone() override { delete this; }
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_FEED_REACTOR_H_
