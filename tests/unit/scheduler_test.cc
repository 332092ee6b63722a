// The scheduler's decisions (manager/core/scheduler.h), without processes: hand-out,
// session affinity, pause, max_instances and idle stop under a FakeClock.
#include "manager/core/scheduler.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/clock.h"

namespace agentd {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

SchedAgent Connected(const std::string& id, const std::string& role, bool busy = false) {
  return SchedAgent{id, role, true, busy, true};
}
SchedAgent Starting(const std::string& id, const std::string& role) {
  return SchedAgent{id, role, false, false, true};
}
SchedAgent Stopped(const std::string& id, const std::string& role) {
  return SchedAgent{id, role, false, false, false};
}
SchedTask Ready(const std::string& id, const std::string& role) {
  return SchedTask{id, role, "", false};
}

const std::map<std::string, SchedRole> kRoles = {{"coder", {3, absl::Minutes(5)}},
                                                 {"ceo", {1, absl::InfiniteDuration()}}};

TEST(SchedulerTest, AReadyTaskGoesToTheFirstFreeConnectedAgentOfItsRole) {
  HandOut h = PlanHandOut({Ready("t-1", "coder")},
                          {Connected("ceo", "ceo"), Connected("coder-1", "coder", true),
                           Starting("coder-2", "coder"), Connected("coder-3", "coder")},
                          kRoles);
  EXPECT_THAT(h.assign, ElementsAre(Pair("t-1", "coder-3")));
  EXPECT_THAT(h.start, IsEmpty());
}

TEST(SchedulerTest, OneAgentTakesOneTaskPerPassAndTheNextStartsAnotherAgent) {
  HandOut h = PlanHandOut({Ready("t-1", "coder"), Ready("t-2", "coder"), Ready("t-3", "coder")},
                          {Connected("coder-1", "coder")}, kRoles);
  EXPECT_THAT(h.assign, ElementsAre(Pair("t-1", "coder-1")));
  // One start per role per pass: t-3 waits for the next pass.
  EXPECT_THAT(h.start, ElementsAre(Pair("coder", "t-2")));
}

// A task handed back keeps its conversation: it goes to the agent holding its session,
// even when another agent of the role is free, and to another only when that one is not.
TEST(SchedulerTest, AResumedTaskGoesBackToTheAgentHoldingItsSession) {
  SchedTask resumed{"t-1", "coder", "coder-2", false};
  std::vector<SchedAgent> agents = {Connected("coder-1", "coder"), Connected("coder-2", "coder")};
  EXPECT_THAT(PlanHandOut({resumed}, agents, kRoles).assign, ElementsAre(Pair("t-1", "coder-2")));
  agents[1].busy = true;
  EXPECT_THAT(PlanHandOut({resumed}, agents, kRoles).assign, ElementsAre(Pair("t-1", "coder-1")));
  // A plain task served first does not take the session's agent from the resumed one
  // served after it when another is free.
  agents[1].busy = false;
  HandOut h = PlanHandOut({Ready("t-2", "coder"), resumed}, agents, kRoles);
  EXPECT_THAT(h.assign, ElementsAre(Pair("t-2", "coder-1"), Pair("t-1", "coder-2")));
}

TEST(SchedulerTest, APausedGoalsTaskIsNeitherHandedOutNorStartsAnAgent) {
  SchedTask paused = Ready("t-1", "coder");
  paused.paused = true;
  HandOut h = PlanHandOut({paused}, {Connected("coder-1", "coder")}, kRoles);
  EXPECT_THAT(h.assign, IsEmpty());
  h = PlanHandOut({paused}, {}, kRoles);
  EXPECT_THAT(h.start, IsEmpty());
}

TEST(SchedulerTest, NoStartBeyondMaxInstancesNorWhileOneIsOnItsWayUp) {
  std::vector<SchedAgent> three = {Connected("coder-1", "coder", true),
                                   Connected("coder-2", "coder", true),
                                   Connected("coder-3", "coder", true)};
  EXPECT_THAT(PlanHandOut({Ready("t-1", "coder")}, three, kRoles).start, IsEmpty());
  // A stopped agent does not count against the limit.
  three[2] = Stopped("coder-3", "coder");
  EXPECT_THAT(PlanHandOut({Ready("t-1", "coder")}, three, kRoles).start,
              ElementsAre(Pair("coder", "t-1")));
  // One already starting: wait for it rather than start another.
  three[2] = Starting("coder-3", "coder");
  EXPECT_THAT(PlanHandOut({Ready("t-1", "coder")}, three, kRoles).start, IsEmpty());
}

TEST(SchedulerTest, ATaskOfAnUnconfiguredRoleIsReported) {
  HandOut h = PlanHandOut({Ready("t-1", "poet"), Ready("t-2", "coder")}, {}, kRoles);
  EXPECT_THAT(h.unknown_role, ElementsAre("t-1"));
  EXPECT_THAT(h.start, ElementsAre(Pair("coder", "t-2")));
}

// Idle time counts from when an agent was first seen connected and free, restarts when it
// takes a task, and stops it at exactly its role's idle_timeout — never an agent kept
// (started at boot, or holding a waiting task's session), never a role without a timeout.
TEST(SchedulerTest, AnAgentIdleForItsRolesTimeoutIsStoppedUnlessKept) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  std::map<std::string, absl::Time> idle;
  std::vector<SchedAgent> agents = {Connected("coder-1", "coder"), Connected("coder-2", "coder"),
                                    Connected("coder-3", "coder"), Connected("ceo", "ceo")};
  std::set<std::string> keep = {"coder-3"};
  TrackIdle(agents, clock.Now(), &idle);
  clock.Advance(absl::Minutes(2));
  agents[1].busy = true;  // coder-2 works for a while, then is free again
  TrackIdle(agents, clock.Now(), &idle);
  agents[1].busy = false;
  TrackIdle(agents, clock.Now(), &idle);
  clock.Advance(absl::Minutes(3) - absl::Milliseconds(1));
  TrackIdle(agents, clock.Now(), &idle);
  EXPECT_THAT(IdleToStop(agents, idle, keep, kRoles, clock.Now()), IsEmpty());
  clock.Advance(absl::Milliseconds(1));
  EXPECT_THAT(IdleToStop(agents, idle, keep, kRoles, clock.Now()), ElementsAre("coder-1"));
  clock.Advance(absl::Minutes(2));
  EXPECT_THAT(IdleToStop(agents, idle, keep, kRoles, clock.Now()),
              ElementsAre("coder-1", "coder-2"));
  clock.Advance(absl::Hours(100));
  EXPECT_THAT(IdleToStop(agents, idle, keep, kRoles, clock.Now()),
              ElementsAre("coder-1", "coder-2"))
      << "ceo has no idle_timeout; coder-3 is kept";
  // A disconnected agent is not idle: its count starts again when it is back.
  agents[0].connected = false;
  TrackIdle(agents, clock.Now(), &idle);
  EXPECT_EQ(idle.count("coder-1"), 0u);
}

TEST(SchedulerTest, IdleChecksComeAtATenthOfTheShortestTimeoutWithinBounds) {
  EXPECT_EQ(IdleCheckInterval(kRoles), absl::Seconds(30));
  EXPECT_EQ(IdleCheckInterval({{"a", {1, absl::Seconds(20)}}}), absl::Seconds(2));
  EXPECT_EQ(IdleCheckInterval({{"a", {1, absl::Milliseconds(50)}}}), absl::Milliseconds(100));
}

}  // namespace
}  // namespace agentd
