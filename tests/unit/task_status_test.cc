// The task status machine, as a pure function: every transition it allows and every one
// it refuses, checked against the table below.
#include "manager/core/task_status.h"

#include <map>
#include <set>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace agentd {
namespace {

using S = v1::TaskStatus;

TEST(TaskStatusTest, EveryTransitionIsAllowedOrRefusedAsTheMachineSays) {
  const S kAll[] = {v1::TASK_STATUS_UNSPECIFIED, v1::TASK_STATUS_PENDING, v1::TASK_STATUS_READY,
                    v1::TASK_STATUS_ASSIGNED,    v1::TASK_STATUS_RUNNING, v1::TASK_STATUS_BLOCKED,
                    v1::TASK_STATUS_COMPLETED,   v1::TASK_STATUS_FAILED,  v1::TASK_STATUS_CANCELED};
  const S P = v1::TASK_STATUS_PENDING, R = v1::TASK_STATUS_READY, A = v1::TASK_STATUS_ASSIGNED,
          U = v1::TASK_STATUS_RUNNING, B = v1::TASK_STATUS_BLOCKED, C = v1::TASK_STATUS_COMPLETED,
          F = v1::TASK_STATUS_FAILED, X = v1::TASK_STATUS_CANCELED;
  // Besides staying as it is, what each status may become.
  const std::map<S, std::set<S>> allowed = {
      {P, {R, F, X}},           // its dependencies ended; or it ends with its parent
      {R, {A, F, X}},           // handed to an agent
      {A, {U, R, B, C, F, X}},  // started; back (agent gone, attempt failed); waits; ends
      {U, {R, B, C, F, X}},     // the same, once started
      {B, {R, C, F, X}},        // handed back; checks passed; ends
      {C, {}},                  // final for good
      {F, {R}},                 // a person's retry
      {X, {R}},                 // a person's retry
  };
  int allowed_count = 0, refused_count = 0;
  for (S from : kAll) {
    for (S to : kAll) {
      bool expected = from == to || (allowed.count(from) != 0 && allowed.at(from).count(to) != 0);
      EXPECT_EQ(TransitionAllowed(from, to), expected)
          << StatusName(from) << " -> " << StatusName(to);
      (expected ? allowed_count : refused_count)++;
    }
  }
  EXPECT_EQ(allowed_count, 9 + 23);
  EXPECT_EQ(refused_count, 81 - 9 - 23);
}

TEST(TaskStatusTest, FinalAndHeldStatuses) {
  EXPECT_TRUE(Final(v1::TASK_STATUS_COMPLETED));
  EXPECT_TRUE(Final(v1::TASK_STATUS_FAILED));
  EXPECT_TRUE(Final(v1::TASK_STATUS_CANCELED));
  EXPECT_FALSE(Final(v1::TASK_STATUS_BLOCKED));
  EXPECT_TRUE(Held(v1::TASK_STATUS_ASSIGNED));
  EXPECT_TRUE(Held(v1::TASK_STATUS_RUNNING));
  EXPECT_FALSE(Held(v1::TASK_STATUS_BLOCKED)) << "an agent waiting on children is free";
  EXPECT_EQ(StatusName(v1::TASK_STATUS_RUNNING), "running");
}

}  // namespace
}  // namespace agentd
