// What the benchmarks that run goals share: submit one and wait for its end.
#ifndef AGENTD_DEV_BENCH_GOAL_UTIL_H_
#define AGENTD_DEV_BENCH_GOAL_UTIL_H_

#include <optional>

#include "absl/time/time.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "tests/support/process.h"

namespace agentd::bench {

// Submits `goal` and polls until it has ended; the goal as it ended, or nullopt when it
// could not be submitted or did not end within 30 s.
inline std::optional<v1::Task> RunGoal(v1::TaskService::Stub* tasks,
                                       const v1::SubmitGoalRequest& goal) {
  v1::SubmitGoalResponse submitted;
  grpc::ClientContext c1;
  if (!tasks->SubmitGoal(&c1, goal, &submitted).ok()) return std::nullopt;
  v1::Task done;
  bool ended = testing::WaitFor(
      [&] {
        grpc::ClientContext c2;
        v1::GetTaskRequest get;
        get.set_task_id(submitted.goal().id());
        v1::GetTaskResponse resp;
        if (!tasks->GetTask(&c2, get, &resp).ok()) return false;
        done = resp.task();
        return done.status() == v1::TASK_STATUS_COMPLETED ||
               done.status() == v1::TASK_STATUS_FAILED || done.status() == v1::TASK_STATUS_CANCELED;
      },
      absl::Seconds(30));
  if (!ended) return std::nullopt;
  return done;
}

// How long a goal took by agentd's own record, created to ended: a bench's polling does
// not count.
inline absl::Duration GoalTime(const v1::Task& t) {
  return absl::Seconds(t.end_time().seconds() - t.create_time().seconds()) +
         absl::Nanoseconds(t.end_time().nanos() - t.create_time().nanos());
}

}  // namespace agentd::bench

#endif  // AGENTD_DEV_BENCH_GOAL_UTIL_H_
