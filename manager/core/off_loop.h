// OffLoop: runs blocking jobs (git for a goal's workspace, a plan's checkpoint) on threads
// of their own and hands each result back on the core loop, which never waits for them.
// Jobs are few (a person's goal, a plan's start): a thread each; a finished job's thread
// is joined when the next one starts, and the running ones when the OffLoop goes (their
// results are then dropped, never delivered to an owner that is gone).
//
// Thread-safety: Run() from any thread; `done` runs on the loop.
#ifndef AGENTD_MANAGER_CORE_OFF_LOOP_H_
#define AGENTD_MANAGER_CORE_OFF_LOOP_H_

#include <atomic>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "manager/core/event_loop.h"

namespace agentd {

class OffLoop {
 public:
  // `loop` is not owned and must outlive this object.
  explicit OffLoop(EventLoop* loop) : loop_(loop) {}
  ~OffLoop() {
    alive_->store(false);
    std::vector<Job> jobs;
    {
      absl::MutexLock l(&mu_);
      jobs.swap(jobs_);
    }
    for (Job& j : jobs) j.thread.join();
  }
  OffLoop(const OffLoop&) = delete;
  OffLoop& operator=(const OffLoop&) = delete;

  // Runs `work` on a thread of its own, then `done(result)` on the loop.
  template <typename Result>
  void Run(absl::AnyInvocable<Result() &&> work, absl::AnyInvocable<void(Result) &&> done) {
    auto finished = std::make_shared<std::atomic<bool>>(false);
    absl::MutexLock l(&mu_);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (*it->finished) {
        it->thread.join();
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    std::thread thread([loop = loop_, alive = alive_, finished, work = std::move(work),
                        done = std::move(done)]() mutable {
      Result result = std::move(work)();
      if (alive->load()) {
        loop->Post([alive, done = std::move(done), result = std::move(result)]() mutable {
          if (alive->load()) std::move(done)(std::move(result));
        });
      }
      *finished = true;
    });
    jobs_.push_back(Job{finished, std::move(thread)});
  }

 private:
  struct Job {
    std::shared_ptr<std::atomic<bool>> finished;
    std::thread thread;
  };
  EventLoop* loop_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
  absl::Mutex mu_;
  std::vector<Job> jobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_OFF_LOOP_H_
