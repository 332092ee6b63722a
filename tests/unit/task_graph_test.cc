// The task graph (manager/core/task_graph.h): children, dependencies and the unfinished
// set, with no store and no loop.
#include "manager/core/task_graph.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentd {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::Task T(const std::string& id, const std::string& parent, v1::TaskStatus status,
           std::vector<std::string> deps = {}) {
  v1::Task t;
  t.set_id(id);
  t.set_parent_id(parent);
  t.set_status(status);
  for (const std::string& d : deps) t.add_deps(d);
  return t;
}

TEST(TaskGraphTest, ChildrenInCreationOrderAndWhetherAnyIsOpen) {
  TaskGraph g;
  g.Add(T("g-1", "", v1::TASK_STATUS_BLOCKED));
  g.Add(T("t-3", "g-1", v1::TASK_STATUS_RUNNING));
  g.Add(T("t-2", "g-1", v1::TASK_STATUS_COMPLETED));
  EXPECT_THAT(g.ChildrenOf("g-1"), ElementsAre("t-3", "t-2"));
  EXPECT_THAT(g.ChildrenOf("t-3"), IsEmpty());
  EXPECT_TRUE(g.HasOpenChildren("g-1"));
  g.at("t-3").set_status(v1::TASK_STATUS_CANCELED);
  EXPECT_FALSE(g.HasOpenChildren("g-1")) << "ended, whichever way";
  EXPECT_THAT(g.order(), ElementsAre("g-1", "t-3", "t-2"));
  EXPECT_EQ(g.Find("nope"), nullptr);
}

// The unfinished set follows each change told through Updated, oldest first, and a task
// stored again (recovery) replaces the one kept, in its place.
TEST(TaskGraphTest, TheUnfinishedAreTrackedOldestFirst) {
  TaskGraph g;
  g.Add(T("g-1", "", v1::TASK_STATUS_RUNNING));
  g.Add(T("t-2", "g-1", v1::TASK_STATUS_COMPLETED));
  g.Add(T("t-3", "g-1", v1::TASK_STATUS_READY));
  EXPECT_THAT(g.Unfinished(), ElementsAre("g-1", "t-3"));
  g.at("g-1").set_status(v1::TASK_STATUS_FAILED);
  EXPECT_THAT(g.Unfinished(), ElementsAre("g-1", "t-3")) << "not until told";
  g.Updated(g.at("g-1"));
  EXPECT_THAT(g.Unfinished(), ElementsAre("t-3"));
  g.Add(T("t-2", "g-1", v1::TASK_STATUS_READY));  // retried
  EXPECT_THAT(g.Unfinished(), ElementsAre("t-2", "t-3"));
  EXPECT_THAT(g.ChildrenOf("g-1"), ElementsAre("t-2", "t-3")) << "not listed twice";
  EXPECT_THAT(g.order(), ElementsAre("g-1", "t-2", "t-3"));
}

TEST(TaskGraphTest, DepsAreCompletedOnlyWhenEachIsThereAndCompleted) {
  TaskGraph g;
  g.Add(T("a", "", v1::TASK_STATUS_COMPLETED));
  g.Add(T("b", "", v1::TASK_STATUS_RUNNING));
  EXPECT_TRUE(g.DepsCompleted(T("c", "", v1::TASK_STATUS_PENDING, {"a"})));
  EXPECT_FALSE(g.DepsCompleted(T("c", "", v1::TASK_STATUS_PENDING, {"a", "b"})));
  EXPECT_FALSE(g.DepsCompleted(T("c", "", v1::TASK_STATUS_PENDING, {"missing"})));
  EXPECT_TRUE(g.DepsCompleted(T("c", "", v1::TASK_STATUS_PENDING)));
}

}  // namespace
}  // namespace agentd
