// The task graph (manager/core/task_graph.h): children, dependencies and the unfinished
// set, with no store and no loop.
#include "manager/core/task_graph.h"

#include <map>
#include <optional>
#include <stdexcept>

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
  EXPECT_THAT(g.Order(), ElementsAre("g-1", "t-3", "t-2"));
  EXPECT_EQ(g.Find("nope"), nullptr);
}

// Recovery may meet a child before its parent (tasks made within the same microsecond):
// the child is listed under its parent once the parent comes, before the parent's later
// children; and thousands of ids are all found again (the index is keyed by place).
TEST(TaskGraphTest, AChildMetBeforeItsParentIsListedOnceTheParentComes) {
  TaskGraph g;
  g.Add(T("t-10", "t-9", v1::TASK_STATUS_COMPLETED));
  g.Add(T("t-11", "t-9", v1::TASK_STATUS_READY));
  EXPECT_THAT(g.ChildrenOf("t-9"), IsEmpty());
  g.Add(T("t-9", "", v1::TASK_STATUS_BLOCKED));
  g.Add(T("t-12", "t-9", v1::TASK_STATUS_RUNNING));
  EXPECT_THAT(g.ChildrenOf("t-9"), ElementsAre("t-10", "t-11", "t-12"));
  EXPECT_TRUE(g.HasOpenChildren("t-9"));
  for (int i = 0; i < 5000; ++i) {
    g.Add(T("x-" + std::to_string(i), i == 0 ? "" : "x-0", v1::TASK_STATUS_COMPLETED));
  }
  EXPECT_EQ(g.ChildrenOf("x-0").size(), 4999u);
  EXPECT_FALSE(g.HasOpenChildren("x-0"));
  for (int i = 0; i < 5000; i += 499) {
    ASSERT_NE(g.Find("x-" + std::to_string(i)), nullptr) << i;
    EXPECT_EQ(g.Find("x-" + std::to_string(i))->id(), "x-" + std::to_string(i));
  }
  EXPECT_EQ(g.Find("x-5000"), nullptr);
  EXPECT_EQ(g.size(), 5004u);
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
  EXPECT_THAT(g.Order(), ElementsAre("g-1", "t-2", "t-3"));
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

// Finished work beyond the bound leaves memory: what listing, children and dependencies
// need stays, and the whole record is read back (through the loader: the store) only
// when asked for.
TEST(TaskGraphTest, FinishedTasksBeyondTheBoundAreShelvedAndReadBackWhenAskedFor) {
  std::map<std::string, v1::Task> stored;  // what the store holds
  int loads = 0;
  TaskGraph g(
      [&](const std::string& id) -> std::optional<v1::Task> {
        ++loads;
        auto it = stored.find(id);
        if (it == stored.end()) return std::nullopt;
        return it->second;
      },
      /*resident_finished=*/2);
  auto add = [&](v1::Task t) {
    t.set_goal_id("g-1");
    t.set_title("title of " + t.id());
    stored[t.id()] = t;
    g.Add(t);
  };
  add(T("g-1", "", v1::TASK_STATUS_RUNNING));
  for (const char* id : {"t-2", "t-3", "t-4", "t-5"}) add(T(id, "g-1", v1::TASK_STATUS_COMPLETED));
  ASSERT_TRUE(g.NeedsShelving());
  EXPECT_EQ(g.Shelve(), 2u) << "t-2 and t-3, finished longest ago";
  EXPECT_FALSE(g.NeedsShelving());
  EXPECT_EQ(g.resident(), 3u);
  EXPECT_EQ(g.size(), 5u);

  // Briefs, children and dependencies without reading anything back.
  std::optional<TaskGraph::Brief> brief = g.BriefOf("t-2");
  ASSERT_TRUE(brief.has_value());
  EXPECT_EQ(brief->status, v1::TASK_STATUS_COMPLETED);
  EXPECT_EQ(brief->parent_id, "g-1");
  EXPECT_EQ(brief->goal_id, "g-1");
  EXPECT_FALSE(g.HasOpenChildren("g-1"));
  EXPECT_TRUE(g.DepsCompleted(T("t-6", "g-1", v1::TASK_STATUS_PENDING, {"t-2", "t-5"})));
  EXPECT_THAT(g.ChildrenOf("g-1"), ElementsAre("t-2", "t-3", "t-4", "t-5"));
  EXPECT_EQ(g.OpenGoals(), 1u);
  EXPECT_EQ(loads, 0);

  // A reader's copy leaves it on the shelf; Find brings it back into memory.
  std::optional<v1::Task> copy = g.Read("t-2");
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->title(), "title of t-2");
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(g.resident(), 3u);
  ASSERT_NE(g.Find("t-2"), nullptr);
  EXPECT_EQ(g.at("t-2").title(), "title of t-2");
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(g.resident(), 4u);
  // Read last, kept longest: t-4 goes now, t-2 stays.
  EXPECT_EQ(g.Shelve(), 1u);
  g.at("t-2");
  g.at("t-5");
  EXPECT_EQ(loads, 2);
  g.at("t-4");
  EXPECT_EQ(loads, 3);

  // A shelved task retried is whole again and unfinished: it is never shelved so.
  g.Add(T("t-3", "g-1", v1::TASK_STATUS_READY));
  EXPECT_THAT(g.Unfinished(), ElementsAre("g-1", "t-3"));
  EXPECT_EQ(g.at("t-3").status(), v1::TASK_STATUS_READY);
  g.Shelve();
  EXPECT_EQ(g.at("t-3").status(), v1::TASK_STATUS_READY);
  EXPECT_EQ(loads, 3);

  // A record the store cannot give back: not found, said plainly; the brief remains.
  EXPECT_FALSE(g.AddShelved("t-8", "g-7", "g-7", "", v1::TASK_STATUS_FAILED))
      << "its goal is not known: kept whole or not at all";
  EXPECT_FALSE(g.AddShelved("t-8", "g-1", "g-1", "", v1::TASK_STATUS_RUNNING)) << "unfinished";
  EXPECT_FALSE(g.BriefOf("t-8").has_value());
  ASSERT_TRUE(g.AddShelved("g-10", "g-10", "", "ceo", v1::TASK_STATUS_COMPLETED)) << "a goal";
  EXPECT_EQ(g.BriefOf("g-10")->goal_id, "g-10");
  EXPECT_EQ(g.BriefOf("g-10")->assignee, "ceo");
  EXPECT_TRUE(g.BriefOf("g-10")->parent_id.empty());
  ASSERT_TRUE(g.AddShelved("t-9", "g-1", "g-1", "", v1::TASK_STATUS_FAILED));
  EXPECT_EQ(g.Find("t-9"), nullptr);
  EXPECT_FALSE(g.Read("t-9").has_value());
  EXPECT_THROW(g.at("t-9"), std::out_of_range);
  ASSERT_TRUE(g.BriefOf("t-9").has_value());
  EXPECT_EQ(g.BriefOf("t-9")->status, v1::TASK_STATUS_FAILED);
  EXPECT_THAT(g.Order(), ElementsAre("g-1", "t-2", "t-3", "t-4", "t-5", "g-10", "t-9"));
  EXPECT_THAT(g.ChildrenOf("g-1"), ElementsAre("t-2", "t-3", "t-4", "t-5", "t-9"));
  // By place, shelved or resident, the same briefs as by id.
  for (size_t place = 0; place < g.size(); ++place) {
    const std::string id(g.IdAt(place));
    std::optional<TaskGraph::Brief> by_place = g.BriefAt(place), by_id = g.BriefOf(id);
    ASSERT_EQ(by_place.has_value(), by_id.has_value()) << id;
    ASSERT_TRUE(by_place.has_value()) << id;
    EXPECT_EQ(by_place->goal_id, by_id->goal_id) << id;
    EXPECT_EQ(by_place->parent_id, by_id->parent_id) << id;
    EXPECT_EQ(by_place->assignee, by_id->assignee) << id;
    EXPECT_EQ(by_place->status, by_id->status) << id;
  }
  EXPECT_EQ(g.BriefAt(6)->status, v1::TASK_STATUS_FAILED) << "t-9, shelved";
  EXPECT_EQ(g.BriefAt(0)->parent_id, "") << "g-1";
}

// The owner hears when finished tasks in memory pass the bound, whether they finished or
// were read back; Visit reads a shelved task without keeping it.
TEST(TaskGraphTest, TheOwnerIsToldWhenFinishedTasksPassTheBound) {
  std::map<std::string, v1::Task> stored;
  int told = 0;
  TaskGraph g(
      [&](const std::string& id) -> std::optional<v1::Task> {
        auto it = stored.find(id);
        if (it == stored.end()) return std::nullopt;
        return it->second;
      },
      /*resident_finished=*/1, [&] { ++told; });
  for (const char* id : {"g-1", "g-2"}) {
    v1::Task t = T(id, "", v1::TASK_STATUS_RUNNING);
    t.set_goal_id(id);
    stored[id] = t;
    g.Add(t);
  }
  for (const char* id : {"g-1", "g-2"}) {
    v1::Task& t = g.at(id);
    t.set_status(v1::TASK_STATUS_COMPLETED);
    stored[id] = t;
    g.Updated(t);
  }
  EXPECT_EQ(told, 1) << "the second finished task passed the bound of one";
  EXPECT_EQ(g.Shelve(), 1u);
  EXPECT_EQ(g.resident(), 1u);
  bool seen = false;
  EXPECT_TRUE(g.Visit("g-1", [&](const v1::Task& t) { seen = t.id() == "g-1"; }));
  EXPECT_TRUE(seen);
  EXPECT_EQ(g.resident(), 1u) << "a visit keeps nothing";
  EXPECT_FALSE(g.Visit("g-9", [](const v1::Task&) { ADD_FAILURE() << "unknown"; }));
  g.at("g-1");  // read back: past the bound again
  EXPECT_EQ(told, 2);
}

}  // namespace
}  // namespace agentd
