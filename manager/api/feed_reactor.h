// A server stream that follows the change feed: what is stored after a cursor, then each
// event as it commits, mapped to the stream's response type. WatchEvents and
// WatchConsentRequests are both this; WatchTranscript reads the transcripts instead, woken
// by the same commits.
//
// Its state lives on the core loop: gRPC's callbacks post there, and the reactor is
// deleted there after leaving the feed, so a wake-up never reaches a dead reactor. The
// loop reads a batch of events into the queue; gRPC's thread writes the batch out on its
// own, each write started from the last one's completion, and hands back to the loop
// only when the batch is written: a watcher catching up costs the loop one hop per batch, not two
// per event. One write is in flight at a time; a slow watcher holds back only itself (the next
// batch is read when its writes drain).
#ifndef AGENTD_MANAGER_API_FEED_REACTOR_H_
#define AGENTD_MANAGER_API_FEED_REACTOR_H_

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

  // Reads the next batch after `*cursor` into `batch`, moving the cursor past what it
  // read; `*end` set says the stream is complete once what is read is written. An error
  // ends the stream with its code and message.
  using Reader = std::function<absl::Status(int64_t* cursor, std::deque<Resp>* batch, bool* end)>;

  // Follows the change feed's events that match `filter`, mapped by `map`.
  FeedReactor(EventLoop* loop, EventFeed* feed, v1::EventFilter filter, Map map, Start start)
      : FeedReactor(loop, feed, EventReader(feed, std::move(filter), std::move(map)),
                    std::move(start)) {}

  // Something else that wakes the stream (on the loop): given the wake-up, it returns the
  // function that stops it.
  using Waker = std::function<std::function<void()>(std::function<void()> wake)>;

  // Follows whatever `reader` reads, looking again after every commit of the store, and
  // whenever `also` wakes it.
  FeedReactor(EventLoop* loop, EventFeed* feed, Reader reader, Start start, Waker also = nullptr)
      : loop_(loop), feed_(feed), reader_(std::move(reader)) {
    loop_->Post([this, start = std::move(start), also = std::move(also)] {
      std::deque<Resp> first;
      cursor_ = start(&first);
      {
        absl::MutexLock l(&mu_);
        queue_ = std::move(first);
      }
      // A commit wakes us on the loop's next turn, not inside the commit: whoever made the
      // change (the bus numbering a message, say) has finished with it by then.
      sub_ = feed_->Subscribe([this, alive = alive_] {
        loop_->Post([this, alive] {
          if (*alive) Pump();
        });
      });
      if (also) {
        stop_also_ = also([this, alive = alive_] {
          loop_->Post([this, alive] {
            if (*alive) Pump();
          });
        });
      }
      Pump();
    });
  }

  void OnWriteDone(bool ok) override {
    Next next;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock l(&mu_);
      if (finish_.has_value()) {  // the loop ended the stream while this write was out
        finish.swap(finish_);
      } else if (ok) {
        queue_.pop_front();
        next = FrontLocked();
      } else {
        broken_ = true;  // no write more: End() follows on the loop
      }
      if (next.msg == nullptr) writing_ = false;
    }
    if (finish.has_value()) {
      this->Finish(*std::move(finish));
      return;
    }
    if (next.msg != nullptr) {  // the rest of the batch, without a trip to the loop
      Write(next);
      return;
    }
    loop_->Post([this, ok] {
      if (!ok) {
        End(grpc::Status::CANCELLED);
        return;
      }
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
      if (stop_also_) stop_also_();
      delete this;
    });
  }

 private:
  // The message to write next.
  struct Next {
    const Resp* msg = nullptr;
  };
  Next FrontLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return {};
    return {&queue_.front()};
  }
  // Outside the lock: gRPC may complete it on another thread at once. The message stays
  // at the queue's front (a deque keeps its address) until its completion pops it. No
  // buffer hint: a hinted write may not complete until a later write flushes it, and the
  // next write starts only from this one's completion.
  void Write(const Next& next) { this->StartWrite(next.msg); }

  void Pump() {
    if (ended_) return;
    Next next;
    {
      absl::MutexLock l(&mu_);
      if (writing_ || broken_) return;
      next = FrontLocked();
      writing_ = next.msg != nullptr;
    }
    if (next.msg == nullptr) {
      // Nothing queued and no write in flight: only the loop touches the queue now.
      std::deque<Resp> batch;
      bool end = false;
      if (absl::Status read = reader_(&cursor_, &batch, &end); !read.ok()) {
        End(grpc::Status(static_cast<grpc::StatusCode>(read.code()), std::string(read.message())));
        return;
      }
      if (batch.empty()) {
        if (end) End(grpc::Status::OK);
        return;  // caught up: the next commit wakes us
      }
      absl::MutexLock l(&mu_);
      queue_ = std::move(batch);
      next = FrontLocked();
      writing_ = true;
    }
    Write(next);
  }
  // On the loop. With a write out, its completion finishes the stream (no write may start
  // after Finish).
  void End(grpc::Status s) {
    if (ended_) return;
    ended_ = true;
    {
      absl::MutexLock l(&mu_);
      if (writing_) {
        finish_ = std::move(s);
        return;
      }
    }
    this->Finish(std::move(s));
  }

  static Reader EventReader(EventFeed* feed, v1::EventFilter filter, Map map) {
    return [feed, filter = std::move(filter), map = std::move(map)](
               int64_t* cursor, std::deque<Resp>* batch, bool*) -> absl::Status {
      int64_t scanned = *cursor;
      absl::StatusOr<std::vector<v1::Event>> events = feed->Read(*cursor, filter, kBatch, &scanned);
      if (!events.ok())
        return absl::UnavailableError(absl::StrCat("reading events: ", events.status().message()));
      *cursor = scanned;
      for (v1::Event& e : *events) {
        Resp r;
        if (map(e, &r)) batch->push_back(std::move(r));
      }
      return absl::OkStatus();
    };
  }

  EventLoop* loop_;
  EventFeed* feed_;
  Reader reader_;

 public:
  // Entries read from the store at a time.
  static constexpr int kBatch = 256;

 private:
  int64_t cursor_ = 0;
  int sub_ = 0;
  std::function<void()> stop_also_;
  bool ended_ = false;
  // The batch being written: filled on the loop, drained by gRPC's thread.
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // a write failed: the stream is gone
  std::deque<Resp> queue_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);  // End()'s, while a write was out
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
