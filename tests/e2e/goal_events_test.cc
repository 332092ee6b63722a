// What a goal leaves for people to follow and check: the event feed, live and paged, and
// the hash-chained audit log.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agentd/v1/events.grpc.pb.h"
#include "common/sqlite.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"

namespace agentd::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

// Every transition is an event; a watcher follows the feed live and resumes from its
// cursor after a disconnect with nothing lost and nothing twice.
TEST_F(GoalTest, EventsWatchFollowsEveryTransitionAndResumesFromItsCursor) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("delegate")));
  Client client = daemon_.client();
  // A watcher from now on, before the goal exists; its deadline outlasts the goal's.
  std::unique_ptr<grpc::ClientContext> live_ctx = Ctx(absl::Seconds(90));
  v1::WatchEventsRequest live_req;
  live_req.set_after_seq(-1);
  live_req.mutable_filter()->add_kinds("task.");
  live_req.mutable_filter()->add_kinds("goal.");
  auto live = client.events().WatchEvents(live_ctx.get(), live_req);
  RunResult goal = CtlGoalAndWait({"Write hello.txt"});
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  std::vector<v1::Event> seen;
  v1::WatchEventsResponse r;
  while (live->Read(&r)) {
    seen.push_back(r.event());
    if (r.event().task_id() == "g-1" && r.event().kind() == "task.completed") break;
  }
  live_ctx->TryCancel();
  // The loop ended on the goal's completion, not on the stream's end.
  ASSERT_FALSE(seen.empty()) << "the watch saw no event";
  ASSERT_EQ(seen.back().task_id(), "g-1") << seen.back().ShortDebugString();
  ASSERT_EQ(seen.back().kind(), "task.completed") << seen.back().ShortDebugString();
  std::vector<std::string> goal_statuses;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(seen[i].seq(), seen[i - 1].seq());
    }
    if (seen[i].task_id() == "g-1") {
      goal_statuses.push_back(v1::TaskStatus_Name(seen[i].task().status()));
    }
  }
  ASSERT_GE(goal_statuses.size(), 3u) << ::testing::PrintToString(goal_statuses);
  EXPECT_EQ(goal_statuses.front(), "TASK_STATUS_READY");  // goal.submitted
  EXPECT_THAT(goal_statuses, Contains("TASK_STATUS_BLOCKED"));
  EXPECT_EQ(goal_statuses.back(), "TASK_STATUS_COMPLETED");

  // From the start, in two pieces: cut after the third event, resume from its seq.
  auto read_from = [&](int64_t after, size_t max) {
    std::unique_ptr<grpc::ClientContext> ctx = Ctx();
    v1::WatchEventsRequest req;
    req.set_after_seq(after);
    *req.mutable_filter() = live_req.filter();
    auto stream = client.events().WatchEvents(ctx.get(), req);
    std::vector<int64_t> seqs;
    v1::WatchEventsResponse e;
    while (seqs.size() < max && stream->Read(&e)) seqs.push_back(e.event().seq());
    ctx->TryCancel();
    return seqs;
  };
  // The goal alone makes more than three events (submitted, blocked, completed, and the
  // coder's task's), so both pieces have some.
  ASSERT_GT(seen.size(), 3u);
  std::vector<int64_t> first = read_from(0, 3);
  ASSERT_EQ(first.size(), 3u);
  std::vector<int64_t> rest = read_from(first.back(), seen.size() - 3);
  first.insert(first.end(), rest.begin(), rest.end());
  std::vector<int64_t> expected;
  for (const v1::Event& e : seen) expected.push_back(e.seq());
  EXPECT_EQ(first, expected);

  // ListEvents pages through the same feed.
  v1::ListEventsRequest list;
  list.mutable_filter()->set_goal_id("g-1");
  list.mutable_filter()->add_kinds("plan.");
  list.mutable_filter()->add_kinds("task.completed");
  v1::ListEventsResponse page;
  grpc::Status listed = client.events().ListEvents(Ctx().get(), list, &page);
  ASSERT_TRUE(listed.ok()) << listed.error_message();
  ASSERT_EQ(page.events_size(), 2) << page.ShortDebugString();  // the coder's task, the goal
  EXPECT_EQ(page.events(0).task().id(), "t-2");
  EXPECT_EQ(page.events(1).task().result().summary(), "hello.txt is written and committed");

  // A call's usage rides on its event, priced (the UI's charts grow from these).
  v1::ListEventsRequest usage_list;
  usage_list.mutable_filter()->add_kinds("usage.recorded");
  v1::ListEventsResponse usage_page;
  grpc::Status usage_listed = client.events().ListEvents(Ctx().get(), usage_list, &usage_page);
  ASSERT_TRUE(usage_listed.ok()) << usage_listed.error_message();
  ASSERT_GT(usage_page.events_size(), 0);
  const v1::UsageRecord& rec = usage_page.events(0).usage_record();
  EXPECT_EQ(rec.model(), "ceo-m");
  EXPECT_GT(rec.prompt_tokens(), 0);
  EXPECT_GT(rec.cost_usd(), 0);

  // Each audit entry is an event too, carrying the entry (the UI's audit view follows
  // these), in the audit log's own order.
  v1::ListEventsRequest audit_list;
  audit_list.mutable_filter()->add_kinds("audit.appended");
  audit_list.set_page_size(1000);
  v1::ListEventsResponse audit_page;
  grpc::Status audit_listed = client.events().ListEvents(Ctx().get(), audit_list, &audit_page);
  ASSERT_TRUE(audit_listed.ok()) << audit_listed.error_message();
  ASSERT_GT(audit_page.events_size(), 0);
  EXPECT_EQ(audit_page.events(0).audit_entry().action(), "goal.submit")
      << audit_page.events(0).ShortDebugString();
  int64_t last = 0;
  for (const v1::Event& e : audit_page.events()) {
    EXPECT_GT(e.audit_entry().seq(), last) << e.ShortDebugString();
    last = e.audit_entry().seq();
  }
  v1::ListAuditEntriesRequest entries_req;
  entries_req.set_page_size(1000);
  v1::ListAuditEntriesResponse entries;
  ASSERT_TRUE(client.audit().ListAuditEntries(Ctx().get(), entries_req, &entries).ok());
  EXPECT_EQ(audit_page.events_size(), entries.entries_size());
}

// Side effects, decisions and admin actions land in the hash-chained audit log; an entry
// edited behind agentd's back is named by Verify.
TEST_F(GoalTest, TheAuditLogChainsEverySideEffectAndVerifyNamesAnEditedEntry) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("delegate")));
  RunResult r = CtlGoalAndWait({"Write hello.txt"});
  ASSERT_EQ(r.exit_code, 0) << r.err << daemon_.log();
  ASSERT_EQ(Ctl({"stop", "coder-1"}).exit_code, 0);
  nlohmann::json audit = CtlJson({"audit"});
  std::vector<std::string> seen;
  for (auto& e : audit["entries"]) {
    seen.push_back(
        absl::StrCat(Text(e["actor"]["id"]), " ", Text(e["action"]), " ", Text(e["target"])));
  }
  EXPECT_THAT(seen, Contains("human:local goal.submit g-1"));
  EXPECT_THAT(seen, Contains("coder-1 fs.write hello.txt"));
  EXPECT_THAT(seen, Contains("coder-1 git.commit Add hello.txt"));
  EXPECT_THAT(seen, Contains("human:local agent.stop coder-1"));
  nlohmann::json by_goal = CtlJson({"audit", "--goal", "g-1", "--action", "fs."});
  ASSERT_EQ(ArraySize(by_goal, "entries"), 1u) << by_goal.dump();
  RunResult ok = Ctl({"audit", "--verify"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("audit chain intact"));

  // Someone rewrites history in agentd.db while agentd is down.
  int64_t edited = std::stoll(by_goal["entries"][0]["seq"].get<std::string>());
  ASSERT_TRUE(daemon_.Stop().has_value());
  {
    auto db = sqlite::Db::Open(daemon_.state_dir() + "/agentd.db", false);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(
        (*db)
            ->Exec(absl::StrCat("UPDATE audit SET target = 'innocent.txt' WHERE seq = ", edited))
            .ok());
  }
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  RunResult broken = Ctl({"audit", "--verify"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_THAT(broken.out,
              HasSubstr(absl::StrCat("audit chain BROKEN at entry ", edited, ": hash mismatch")));
}

}  // namespace
}  // namespace agentd::testing
