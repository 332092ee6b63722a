// Heartbeats renewed off the core loop (manager/core/lease_board.h): which ones the board
// takes, and that everything else is left to the Supervisor.
#include "manager/core/lease_board.h"

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace agentd {
namespace {

LeaseBoard::Lease Idle(std::string token = "tok-1", std::string lease = "lease-1") {
  LeaseBoard::Lease l;
  l.token = std::move(token);
  l.lease_id = std::move(lease);
  l.renewable = true;
  return l;
}

v1::HeartbeatRequest Beat(std::string lease = "lease-1",
                          v1::AgentActivity activity = v1::AGENT_ACTIVITY_IDLE,
                          std::string progress = "") {
  v1::HeartbeatRequest req;
  req.set_lease_id(std::move(lease));
  req.set_activity(activity);
  req.set_progress(std::move(progress));
  return req;
}

TEST(LeaseBoardTest, AHeartbeatThatChangesNothingButTheTimeIsTakenAndRecorded) {
  FakeClock clock;
  LeaseBoard board(&clock);
  board.Set("a", Idle());
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), absl::InfinitePast());
  clock.Advance(absl::Seconds(3));
  ASSERT_TRUE(board.TryRenew("a", "tok-1", Beat()));
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), clock.Now());
  // An unset activity is idle, as the Supervisor reads it.
  clock.Advance(absl::Seconds(1));
  ASSERT_TRUE(board.TryRenew("a", "tok-1", Beat("lease-1", v1::AGENT_ACTIVITY_UNSPECIFIED)));
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), clock.Now());
  // Asked about another lease: none.
  EXPECT_EQ(board.RenewedAt("a", "lease-0"), absl::InfinitePast());
}

TEST(LeaseBoardTest, AnythingMoreThanARenewalIsLeftToTheLoop) {
  FakeClock clock;
  LeaseBoard board(&clock);
  LeaseBoard::Lease busy = Idle();
  busy.busy = true;
  busy.progress = "reading";
  board.Set("a", busy);
  EXPECT_FALSE(board.TryRenew("b", "tok-1", Beat())) << "an agent the board does not hold";
  EXPECT_FALSE(board.TryRenew("a", "tok-2", Beat("lease-1", v1::AGENT_ACTIVITY_BUSY, "reading")))
      << "another token (the agent was restarted)";
  EXPECT_FALSE(board.TryRenew("a", "", Beat("lease-1", v1::AGENT_ACTIVITY_BUSY, "reading")));
  EXPECT_FALSE(board.TryRenew("a", "tok-1", Beat("lease-0", v1::AGENT_ACTIVITY_BUSY, "reading")))
      << "a stale lease";
  EXPECT_FALSE(board.TryRenew("a", "tok-1", Beat("lease-1", v1::AGENT_ACTIVITY_IDLE, "reading")))
      << "another activity";
  EXPECT_FALSE(board.TryRenew("a", "tok-1", Beat("lease-1", v1::AGENT_ACTIVITY_BUSY, "writing")))
      << "another progress";
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), absl::InfinitePast()) << "none of them renewed it";
  EXPECT_TRUE(board.TryRenew("a", "tok-1", Beat("lease-1", v1::AGENT_ACTIVITY_BUSY, "reading")));

  // Not idle or busy (starting, unresponsive, stopping): never taken here.
  LeaseBoard::Lease other = Idle();
  other.renewable = false;
  board.Set("c", other);
  EXPECT_FALSE(board.TryRenew("c", "tok-1", Beat()));
  // Not registered: no lease to renew, whatever the request names.
  board.Set("d", Idle("tok-1", ""));
  EXPECT_FALSE(board.TryRenew("d", "tok-1", Beat("")));
  board.Remove("a");
  EXPECT_FALSE(board.TryRenew("a", "tok-1", Beat("lease-1", v1::AGENT_ACTIVITY_BUSY, "reading")));
}

TEST(LeaseBoardTest, ANewLeaseStartsWithoutTheOldOnesRenewals) {
  FakeClock clock;
  LeaseBoard board(&clock);
  board.Set("a", Idle());
  ASSERT_TRUE(board.TryRenew("a", "tok-1", Beat()));
  absl::Time first = clock.Now();
  // The same lease set again (another state, another progress): its renewals stay.
  LeaseBoard::Lease busy = Idle();
  busy.busy = true;
  board.Set("a", busy);
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), first);
  // Registered again: a new lease, and the old one's heartbeats are refused.
  clock.Advance(absl::Seconds(1));
  board.Set("a", Idle("tok-1", "lease-2"));
  EXPECT_EQ(board.RenewedAt("a", "lease-2"), absl::InfinitePast());
  EXPECT_FALSE(board.TryRenew("a", "tok-1", Beat("lease-1")));
  // Restarted: a new token, the same lease id cannot carry renewals over.
  ASSERT_TRUE(board.TryRenew("a", "tok-1", Beat("lease-2")));
  board.Set("a", Idle("tok-2", "lease-2"));
  EXPECT_EQ(board.RenewedAt("a", "lease-2"), absl::InfinitePast());
}

// While the loop decides on a due lease, renewals go to it instead (behind the decision);
// set again, the board takes them again.
TEST(LeaseBoardTest, ALeaseHeldForItsTimerIsNotRenewedHereUntilSetAgain) {
  FakeClock clock;
  LeaseBoard board(&clock);
  board.Set("a", Idle());
  ASSERT_TRUE(board.TryRenew("a", "tok-1", Beat()));
  const absl::Time renewed = clock.Now();
  EXPECT_EQ(board.Hold("a", "lease-0"), absl::InfinitePast()) << "another lease";
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(board.Hold("a", "lease-1"), renewed);
  EXPECT_FALSE(board.TryRenew("a", "tok-1", Beat()));
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), renewed);
  board.Set("a", Idle());
  EXPECT_TRUE(board.TryRenew("a", "tok-1", Beat()));
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), clock.Now());
}

// A Heartbeat call names no agent: its token does, as long as it is the agent's current
// one; the answer is the renewal's expiry.
TEST(LeaseBoardTest, ACallIsRenewedForTheAgentWhoseCurrentTokenItCarries) {
  FakeClock clock;
  LeaseBoard board(&clock);
  LeaseBoard::Lease a = Idle("tok-a", "lease-a");
  a.ttl = absl::Seconds(20);
  board.Set("a", a);
  board.Set("b", Idle("tok-b", "lease-b"));
  std::optional<absl::Time> until = board.TryRenewCall("tok-a", Beat("lease-a"));
  ASSERT_TRUE(until.has_value());
  EXPECT_EQ(*until, clock.Now() + absl::Seconds(20));
  EXPECT_EQ(board.RenewedAt("a", "lease-a"), clock.Now());
  EXPECT_FALSE(board.TryRenewCall("tok-a", Beat("lease-b")).has_value()) << "b's lease";
  EXPECT_FALSE(board.TryRenewCall("tok-x", Beat("lease-a")).has_value()) << "no one's token";
  EXPECT_FALSE(board.TryRenewCall("", Beat("lease-a")).has_value());
  // Restarted with a new token: the old one names no one.
  board.Set("a", Idle("tok-a2", "lease-a"));
  EXPECT_FALSE(board.TryRenewCall("tok-a", Beat("lease-a")).has_value());
  EXPECT_TRUE(board.TryRenewCall("tok-a2", Beat("lease-a")).has_value());
  board.Remove("a");
  EXPECT_FALSE(board.TryRenewCall("tok-a2", Beat("lease-a")).has_value());
  EXPECT_TRUE(board.TryRenewCall("tok-b", Beat("lease-b")).has_value());
}

TEST(LeaseBoardTest, RenewalsFromManyThreadsWhileTheLoopChangesTheBoard) {
  FakeClock clock;
  LeaseBoard board(&clock);
  board.Set("a", Idle());
  std::atomic<bool> stop{false};
  std::atomic<int64_t> taken{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        if (board.TryRenew("a", "tok-1", Beat())) ++taken;
      }
    });
  }
  // The loop's side: the agent goes busy and idle again, time passes.
  for (int i = 0; i < 2000; ++i) {
    LeaseBoard::Lease l = Idle();
    l.busy = i % 2 == 1;
    board.Set("a", l);
    clock.Advance(absl::Milliseconds(1));
  }
  board.Set("a", Idle());
  // Every reader takes a heartbeat of the idle agent from here on.
  int64_t before = taken;
  while (taken < before + 4) {
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(board.RenewedAt("a", "lease-1"), clock.Now());
}

}  // namespace
}  // namespace agentd
