// EventLoop: the core loop. One thread runs it and owns all mutable orchestration state;
// everyone else talks to that state by posting closures.
//
// Post(), PostUrgent() and RunAt()/RunAfter() are thread-safe and never run the closure
// inline. Closures run on the loop thread in order: due timers (by deadline, then by the
// order they were added) after the closures posted before them; urgent closures ahead of
// posted ones (see PostUrgent). Run() blocks the calling
// thread until Stop(); RunDue() runs what is due now and returns, so a test can drive
// the loop with a FakeClock and no thread.
#ifndef AGENTD_MANAGER_CORE_EVENT_LOOP_H_
#define AGENTD_MANAGER_CORE_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <thread>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "manager/core/clock.h"

namespace agentd {

class EventLoop {
 public:
  using Fn = absl::AnyInvocable<void() &&>;
  using TimerId = uint64_t;

  // `clock` must outlive the loop.
  explicit EventLoop(Clock* clock = Clock::Real()) : clock_(clock) {}
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Post(Fn fn);
  // Post() for a step someone is blocked on and that is quick to run (an agent's budget
  // reservation, which its next model call waits for): it runs ahead of the closures
  // posted with Post() that have not started, in order among urgent ones. Not a way
  // around the queue: after kUrgentRun urgent steps in a row the oldest posted closure
  // runs, so a flood of urgent requests (a misbehaving agent) cannot starve the rest.
  void PostUrgent(Fn fn);
  static constexpr int kUrgentRun = 8;
  TimerId RunAt(absl::Time when, Fn fn);
  TimerId RunAfter(absl::Duration delay, Fn fn) {
    return RunAt(clock_->Now() + delay, std::move(fn));
  }
  // Cancels a timer that has not run yet; returns whether it was pending.
  bool Cancel(TimerId id);

  // Runs closures and timers until Stop(). Closures posted before Stop() still run.
  void Run();
  // Asks Run() to return once the closures posted so far have run. Thread-safe.
  void Stop();
  // Runs every posted closure and every timer due at clock->Now(); returns how many ran.
  int RunDue();

  // How many closures and timers have started to run, the one running now included.
  // Thread-safe. All orchestration state changes inside a step, so a value read on the
  // loop and read again elsewhere, unchanged, proves that nothing changed in between:
  // what lets a reader answer from a copy the loop made (SystemCore::GetInfo).
  uint64_t steps() const { return steps_.load(std::memory_order_acquire); }

  // How many timers are waiting. Thread-safe.
  size_t pending_timers() {
    absl::MutexLock l(&mu_);
    return timers_.size();
  }

  bool InLoopThread() const { return std::this_thread::get_id() == loop_thread_; }
  Clock* clock() const { return clock_; }

 private:
  // Takes the next runnable closure, or returns false. Sets *wait_until when a timer is
  // pending but not due.
  bool TakeNext(Fn* out, absl::Time now, absl::Time* wait_until) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* clock_;
  absl::Mutex mu_;
  std::deque<Fn> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Fn> urgent_ ABSL_GUARDED_BY(mu_);
  int urgent_run_ ABSL_GUARDED_BY(mu_) = 0;  // urgent steps taken since the last posted one
  std::map<std::pair<absl::Time, TimerId>, Fn> timers_ ABSL_GUARDED_BY(mu_);
  std::map<TimerId, absl::Time> timer_deadlines_ ABSL_GUARDED_BY(mu_);
  TimerId next_timer_ ABSL_GUARDED_BY(mu_) = 1;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id loop_thread_;
  std::atomic<uint64_t> steps_{0};
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_EVENT_LOOP_H_
