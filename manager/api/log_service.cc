#include "manager/api/log_service.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "manager/api/status.h"

namespace agentd {
namespace {

// Bytes of log lines in one response: large enough that a reader catching up on 1 GB
// needs few messages, small enough that a stalled reader holds little.
constexpr size_t kBatchBytes = 256 << 10;

class LogStreamer final : public grpc::ServerWriteReactor<v1::StreamLogsResponse> {
 public:
  LogStreamer(EventLoop* loop, Supervisor* supervisor, LogStore* logs,
              const v1::StreamLogsRequest& req, grpc::Status refused)
      : logs_(logs), agent_(req.agent_id()), follow_(req.follow()) {
    // Timestamp's own range (years 1 to 9999): anything else is refused below.
    auto valid = [](const google::protobuf::Timestamp& t) {
      return t.seconds() >= -62135596800 && t.seconds() <= 253402300799 && t.nanos() >= 0 &&
             t.nanos() < 1000000000;
    };
    bool times_ok =
        (!req.has_since() || valid(req.since())) && (!req.has_until() || valid(req.until()));
    if (times_ok && req.has_since()) since_us_ = ToMicros(req.since());
    if (times_ok && req.has_until()) until_us_ = ToMicros(req.until());
    guard_->self = this;
    for (int s : req.streams()) {
      if (s < v1::LOG_STREAM_STDOUT || s > v1::LOG_STREAM_SYSTEM) {
        Stop(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("streams: ", s,
                                       " is not a log stream (1 stdout, 2 stderr, "
                                       "3 system)")));
        return;
      }
      mask_ |= 1u << s;
    }
    if (mask_ == 0) mask_ = ~0u;
    if (!refused.ok()) {
      Stop(refused);
      return;
    }
    if (!times_ok) {
      Stop(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "since and until must be times between the years 1 and 9999"));
      return;
    }
    if (req.after_seq() < 0 || req.tail() < 0) {
      Stop(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "after_seq and tail must not be negative"));
      return;
    }
    int64_t after = req.after_seq();
    int32_t tail = req.tail();
    loop->Post([g = guard_, supervisor, after, tail] {
      absl::MutexLock l(&g->mu);
      LogStreamer* self = g->self;
      if (self == nullptr || self->finished_) return;  // the client went away meanwhile
      if (absl::StatusOr<v1::Agent> a = supervisor->Get(self->agent_);
          !a.ok() && self->agent_ != kDaemonLogId) {
        self->Stop(ToGrpcStatus(a.status()));
        return;
      }
      self->cursor_ = after;
      if (after == 0 && tail > 0) {
        self->cursor_ = std::max<int64_t>(0, self->logs_->LastSeq(self->agent_) - tail);
      } else if (after == 0 && self->since_us_ > INT64_MIN) {
        // Skip whole segments that ended before `since` (their index says when); the
        // newest, still written, is always read.
        std::vector<v1::LogSegment> segments = self->logs_->Segments(self->agent_);
        for (size_t i = 0; i + 1 < segments.size(); ++i) {
          const v1::LogSegment& s = segments[i];
          if (!s.has_last_time() || ToMicros(s.last_time()) >= self->since_us_) break;
          self->cursor_ = s.last_seq();
        }
      }
      // Reading may touch the disk: not on the core loop. The client learns at once that
      // the stream is open, and the first batch is read on gRPC's thread when that is done.
      self->StartSendInitialMetadata();
    });
  }

  void OnSendInitialMetadataDone(bool ok) override {
    absl::MutexLock l(&guard_->mu);
    if (!ok) {
      Stop(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock l(&guard_->mu);
    writing_ = false;
    if (!ok || cancelled_) {
      Stop(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnCancel() override {
    absl::MutexLock l(&guard_->mu);
    cancelled_ = true;
    if (!writing_) Stop(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    uint64_t waiter;
    {
      absl::MutexLock l(&guard_->mu);
      guard_->self = nullptr;  // a notification that comes later finds no one
      waiter = waiter_;
    }
    if (waiter != 0) logs_->CancelNotify(agent_, waiter);
    delete this;
  }

 private:
  // Shared with pending notifications, which may outlive the reactor.
  struct Guard {
    absl::Mutex mu;
    LogStreamer* self = nullptr;
  };

  // Writes the next batch, finishes, or waits for more. Called with guard_->mu held.
  void Next() {
    while (!finished_ && !cancelled_) {
      if (past_until_) {  // what came before `until` is written: the window is done
        Stop(grpc::Status::OK);
        return;
      }
      response_.Clear();
      absl::StatusOr<int64_t> next =
          logs_->Read(agent_, cursor_, kBatchBytes, mask_, &response_, &scratch_);
      if (!next.ok()) {
        Stop(ToGrpcStatus(next.status()));
        return;
      }
      bool moved = *next != cursor_;
      cursor_ = *next;
      if (since_us_ > INT64_MIN || until_us_ < INT64_MAX) Window(&response_);
      if (response_.records_size() > 0 || response_.has_gap()) {
        writing_ = true;
        StartWrite(&response_);
        return;
      }
      if (moved) continue;  // only records of other streams: read on
      if (!follow_) {
        Stop(grpc::Status::OK);
        return;
      }
      scratch_.Release();  // caught up: a follower that waits holds no read buffer
      waiter_ = logs_->NotifyAfter(agent_, cursor_, [g = guard_] {
        absl::MutexLock l(&g->mu);
        if (g->self != nullptr) {
          g->self->waiter_ = 0;
          g->self->Next();
        }
      });
      if (waiter_ != 0) return;
    }
  }

  static int64_t ToMicros(const google::protobuf::Timestamp& t) {
    return t.seconds() * 1000000 + t.nanos() / 1000;
  }

  // Keeps the records inside [since, until]; a record past `until` ends the stream once
  // what came before it is written.
  void Window(v1::StreamLogsResponse* batch) {
    auto* records = batch->mutable_records();
    int kept = 0;
    for (int i = 0; i < records->size(); ++i) {
      int64_t t = ToMicros(records->Get(i).time());
      if (t > until_us_) {
        past_until_ = true;
        break;
      }
      if (t < since_us_) continue;
      if (kept != i) records->SwapElements(kept, i);
      ++kept;
    }
    records->DeleteSubrange(kept, records->size() - kept);
  }

  void Stop(const grpc::Status& s) {
    if (finished_) return;
    finished_ = true;
    scratch_.Release();
    Finish(s);
  }

  std::shared_ptr<Guard> guard_ = std::make_shared<Guard>();
  LogStore* logs_;
  std::string agent_;
  bool follow_;
  uint32_t mask_ = 0;
  int64_t cursor_ = 0;
  int64_t since_us_ = INT64_MIN, until_us_ = INT64_MAX;
  bool past_until_ = false;
  uint64_t waiter_ = 0;
  bool writing_ = false, cancelled_ = false, finished_ = false;
  v1::StreamLogsResponse response_;
  LogStore::ReadBuffer scratch_;  // reused from batch to batch while catching up
};

}  // namespace

grpc::ServerWriteReactor<v1::StreamLogsResponse>* LogService::StreamLogs(
    grpc::CallbackServerContext* ctx, const v1::StreamLogsRequest* req) {
  return new LogStreamer(loop_, supervisor_, logs_, *req, auth_.Check(ctx));
}

grpc::ServerUnaryReactor* LogService::ListLogSegments(grpc::CallbackServerContext* ctx,
                                                      const v1::ListLogSegmentsRequest* req,
                                                      v1::ListLogSegmentsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_.Refuse(ctx, reactor)) return reactor;
  if (req->page_size() < 0) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative"));
    return reactor;
  }
  int64_t after = 0;
  if (!req->page_token().empty() && !absl::SimpleAtoi(req->page_token(), &after)) {
    reactor->Finish(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("page_token \"", req->page_token(), "\" is not one this method returned")));
    return reactor;
  }
  loop_->Post([this, reactor, req, resp, after] {
    if (absl::StatusOr<v1::Agent> a = supervisor_->Get(req->agent_id());
        !a.ok() && req->agent_id() != kDaemonLogId) {
      reactor->Finish(ToGrpcStatus(a.status()));
      return;
    }
    int size = req->page_size() == 0 ? 100 : std::min(req->page_size(), 1000);
    for (v1::LogSegment& s : logs_->Segments(req->agent_id())) {
      if (s.first_seq() <= after) continue;
      if (resp->segments_size() == size) {
        resp->set_next_page_token(absl::StrCat(resp->segments(size - 1).first_seq()));
        break;
      }
      *resp->add_segments() = std::move(s);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace agentd
