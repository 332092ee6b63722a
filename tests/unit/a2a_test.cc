// A2A's mapping without a daemon: agentd's task statuses as A2A states, and which replies
// approve what a person is asked.
#include "manager/web/a2a.h"

#include "agentd/v1/tasks.pb.h"
#include "gtest/gtest.h"

namespace agentd::web {
namespace {

using a2a_internal::Approves;
using a2a_internal::StateOf;

TEST(A2aMappingTest, StatusesMapToA2aStatesAndAQuestionIsInputRequired) {
  EXPECT_EQ(StateOf(v1::TASK_STATUS_PENDING, false), "TASK_STATE_SUBMITTED");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_READY, false), "TASK_STATE_SUBMITTED");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_ASSIGNED, false), "TASK_STATE_WORKING");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_RUNNING, false), "TASK_STATE_WORKING");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_BLOCKED, false), "TASK_STATE_WORKING");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_RUNNING, true), "TASK_STATE_INPUT_REQUIRED");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_PENDING, true), "TASK_STATE_INPUT_REQUIRED");
  // An ended goal is ended, whatever was still asked.
  EXPECT_EQ(StateOf(v1::TASK_STATUS_COMPLETED, true), "TASK_STATE_COMPLETED");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_FAILED, false), "TASK_STATE_FAILED");
  EXPECT_EQ(StateOf(v1::TASK_STATUS_CANCELED, true), "TASK_STATE_CANCELED");
}

TEST(A2aMappingTest, OnlyAWholeYesApproves) {
  for (const char* yes : {"approve", "Approve.", "  APPROVED ", "yes", "ok!", "allow", "LGTM"}) {
    EXPECT_TRUE(Approves(yes)) << yes;
  }
  for (const char* no : {"", "no", "okay, but do not touch main", "yesterday's plan was better",
                         "approve only step one", "reject: too broad", "ok then delete all"}) {
    EXPECT_FALSE(Approves(no)) << no;
  }
}

}  // namespace
}  // namespace agentd::web
