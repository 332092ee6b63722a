#include "manager/core/event_loop.h"

#include <exception>

#include "common/text.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

// Runs one closure. No exception may cross the core loop: one that escapes a closure
// would end agentd (and with it every agent's supervision). The closure's own work is
// abandoned — callers that answer someone (OnLoop) catch first and answer INTERNAL — and
// the loop goes on with the next closure.
void RunGuarded(EventLoop::Fn fn) {
  try {
    std::move(fn)();
  } catch (const std::exception& e) {
    spdlog::error("a core-loop step failed with an exception and was abandoned: {}",
                  ValidUtf8(e.what()));
  } catch (...) {
    spdlog::error("a core-loop step failed with an unknown exception and was abandoned");
  }
}

}  // namespace

Clock* Clock::Real() {
  class RealClock final : public Clock {
   public:
    absl::Time Now() override { return absl::Now(); }
  };
  static RealClock* clock = new RealClock;
  return clock;
}

void EventLoop::Post(Fn fn) {
  absl::MutexLock l(&mu_);
  queue_.push_back(std::move(fn));
}

void EventLoop::PostUrgent(Fn fn) {
  absl::MutexLock l(&mu_);
  urgent_.push_back(std::move(fn));
}

EventLoop::TimerId EventLoop::RunAt(absl::Time when, Fn fn) {
  absl::MutexLock l(&mu_);
  TimerId id = next_timer_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  timer_deadlines_.emplace(id, when);
  return id;
}

bool EventLoop::Cancel(TimerId id) {
  absl::MutexLock l(&mu_);
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return false;
  timers_.erase({it->second, id});
  timer_deadlines_.erase(it);
  return true;
}

bool EventLoop::TakeNext(Fn* out, absl::Time now, absl::Time* wait_until) {
  if (!urgent_.empty() && (queue_.empty() || urgent_run_ < kUrgentRun)) {
    *out = std::move(urgent_.front());
    urgent_.pop_front();
    // Counted only while posted closures wait: those are what the bound protects.
    urgent_run_ = queue_.empty() ? 0 : urgent_run_ + 1;
    return true;
  }
  if (!queue_.empty()) {
    *out = std::move(queue_.front());
    queue_.pop_front();
    urgent_run_ = 0;
    return true;
  }
  if (!timers_.empty()) {
    auto it = timers_.begin();
    if (it->first.first <= now) {
      *out = std::move(it->second);
      timer_deadlines_.erase(it->first.second);
      timers_.erase(it);
      return true;
    }
    *wait_until = it->first.first;
  }
  return false;
}

void EventLoop::Run() {
  loop_thread_ = std::this_thread::get_id();
  for (;;) {
    Fn fn;
    {
      absl::MutexLock l(&mu_);
      for (;;) {
        absl::Time wait_until = absl::InfiniteFuture();
        if (TakeNext(&fn, clock_->Now(), &wait_until)) break;
        if (stop_) return;
        // Wakes when something is posted, Stop() is called, or the next timer is due.
        // (The loop waits on real time; with a FakeClock, drive it with RunDue instead.)
        // A timer added for earlier than wait_until wakes it too.
        auto ready = [this, &wait_until]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !queue_.empty() || !urgent_.empty() || stop_ ||
                 (!timers_.empty() && timers_.begin()->first.first < wait_until);
        };
        mu_.AwaitWithDeadline(absl::Condition(&ready), wait_until);
      }
    }
    steps_.fetch_add(1, std::memory_order_acq_rel);
    RunGuarded(std::move(fn));
  }
}

void EventLoop::Stop() {
  absl::MutexLock l(&mu_);
  stop_ = true;
}

int EventLoop::RunDue() {
  loop_thread_ = std::this_thread::get_id();
  int ran = 0;
  for (;;) {
    Fn fn;
    {
      absl::MutexLock l(&mu_);
      absl::Time ignored;
      if (!TakeNext(&fn, clock_->Now(), &ignored)) return ran;
    }
    steps_.fetch_add(1, std::memory_order_acq_rel);
    RunGuarded(std::move(fn));
    ++ran;
  }
}

}  // namespace agentd
