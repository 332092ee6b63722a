#include "manager/core/event_loop.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

TEST(EventLoopTest, TimersRunInDeadlineOrderWhenTheClockReachesThem) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::vector<int> ran;
  loop.RunAfter(absl::Seconds(3), [&] { ran.push_back(3); });
  loop.RunAfter(absl::Seconds(1), [&] { ran.push_back(1); });
  loop.RunAfter(absl::Seconds(2), [&] { ran.push_back(2); });
  EXPECT_EQ(loop.RunDue(), 0);
  clock.Advance(absl::Milliseconds(1500));
  EXPECT_EQ(loop.RunDue(), 1);
  EXPECT_EQ(ran, (std::vector<int>{1}));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(loop.RunDue(), 2);
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(loop.RunDue(), 0) << "a timer ran twice";
}

TEST(EventLoopTest, PostedClosuresRunBeforeTimersAndInOrder) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::vector<std::string> ran;
  loop.RunAfter(absl::ZeroDuration(), [&] { ran.push_back("timer"); });
  loop.Post([&] { ran.push_back("a"); });
  loop.Post([&] { ran.push_back("b"); });
  loop.RunDue();
  EXPECT_EQ(ran, (std::vector<std::string>{"a", "b", "timer"}));
}

TEST(EventLoopTest, UrgentClosuresRunAheadOfPostedOnesAndInOrder) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::vector<std::string> ran;
  loop.Post([&] { ran.push_back("a"); });
  loop.Post([&] {
    ran.push_back("b");
    loop.PostUrgent([&] { ran.push_back("u3"); });  // posted while the loop runs
    loop.Post([&] { ran.push_back("d"); });
  });
  loop.PostUrgent([&] { ran.push_back("u1"); });
  loop.PostUrgent([&] { ran.push_back("u2"); });
  loop.Post([&] { ran.push_back("c"); });
  loop.RunDue();
  EXPECT_EQ(ran, (std::vector<std::string>{"u1", "u2", "a", "b", "u3", "c", "d"}));
}

TEST(EventLoopTest, AFloodOfUrgentClosuresCannotStarveThePostedOnes) {
  FakeClock clock;
  EventLoop loop(&clock);
  std::vector<std::string> ran;
  loop.Post([&] { ran.push_back("posted-1"); });
  loop.Post([&] { ran.push_back("posted-2"); });
  // Each urgent closure posts another, as an agent flooding its reservations would.
  std::function<void(int)> urgent = [&](int n) {
    ran.push_back("urgent");
    if (n < 3 * EventLoop::kUrgentRun) loop.PostUrgent([&urgent, n] { urgent(n + 1); });
  };
  loop.PostUrgent([&] { urgent(1); });
  loop.RunDue();
  ASSERT_EQ(ran.size(), 3u * EventLoop::kUrgentRun + 2);
  auto at = [&](const std::string& what) {
    return std::find(ran.begin(), ran.end(), what) - ran.begin();
  };
  EXPECT_EQ(at("posted-1"), EventLoop::kUrgentRun);
  EXPECT_EQ(at("posted-2"), 2 * EventLoop::kUrgentRun + 1);
}

TEST(EventLoopTest, CancelledTimerNeverRuns) {
  FakeClock clock;
  EventLoop loop(&clock);
  bool ran = false, control = false;
  EventLoop::TimerId id = loop.RunAfter(absl::Seconds(1), [&] { ran = true; });
  loop.RunAfter(absl::Seconds(1), [&] { control = true; });
  EXPECT_TRUE(loop.Cancel(id));
  EXPECT_FALSE(loop.Cancel(id));
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(loop.RunDue(), 1);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(control) << "the timers were not due: the test shows nothing";
}

TEST(EventLoopTest, RunServesPostsFromOtherThreadsAndWakesForAnEarlierTimer) {
  EventLoop loop;
  std::thread t([&] { loop.Run(); });
  std::atomic<int> count{0};
  std::vector<std::thread> posters;
  for (int i = 0; i < 4; ++i) {
    posters.emplace_back([&] {
      for (int j = 0; j < 100; ++j) loop.Post([&] { count++; });
    });
  }
  for (auto& p : posters) p.join();
  EXPECT_TRUE(testing::WaitFor([&] { return count.load() == 400; }, absl::Seconds(10)))
      << count.load() << " of 400 posts ran";
  // A far timer first, then a near one: the near one must not wait for the far one.
  std::atomic<bool> near{false};
  loop.RunAfter(absl::Hours(1), [] {});
  loop.RunAfter(absl::Milliseconds(1), [&] { near = true; });
  EXPECT_TRUE(testing::WaitFor([&] { return near.load(); }, absl::Seconds(10)))
      << "the near timer waited behind the far one";
  loop.Stop();
  t.join();
}

TEST(EventLoopTest, ClosuresPostedBeforeStopStillRun) {
  EventLoop loop;
  bool ran = false;
  loop.Post([&] { ran = true; });
  loop.Stop();
  loop.Run();
  EXPECT_TRUE(ran);
}

TEST(EventLoopTest, AClosureThatThrowsIsAbandonedAndTheLoopGoesOn) {
  EventLoop loop;
  std::vector<int> ran;
  loop.Post([&] { ran.push_back(1); });
  loop.Post([]() { throw std::runtime_error("bad UTF-8 in a dump"); });
  loop.Post([&] { ran.push_back(3); });
  EXPECT_EQ(loop.RunDue(), 3);
  EXPECT_EQ(ran, (std::vector<int>{1, 3}));
}

}  // namespace
}  // namespace agentd
