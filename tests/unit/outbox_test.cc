// The agent outbox with a real SQLite store: deliveries numbered, sent again in order
// after a reconnect, forgotten once acknowledged, and kept across a restart.
#include "manager/core/outbox.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "manager/store/store.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

class RecordingSink final : public ConnectSink {
 public:
  void Deliver(const v1::ConnectResponse& d) override { got.push_back(d); }
  std::vector<int64_t> Seqs() const {
    std::vector<int64_t> seqs;
    for (const auto& d : got) seqs.push_back(d.seq());
    return seqs;
  }
  std::vector<v1::ConnectResponse> got;
};

v1::ConnectResponse Message(const std::string& id) {
  v1::ConnectResponse d;
  d.mutable_envelope()->set_id(id);
  return d;
}

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    outbox_.reset();
    store_.reset();
    auto store = Store::Open(dir_.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    outbox_ = std::make_unique<Outbox>(store_.get());
    ASSERT_TRUE(outbox_->Recover().ok());
  }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Outbox> outbox_;
};

TEST_F(OutboxTest, DeliveriesAreNumberedSentWhenConnectedAndSentAgainInOrderAfterTheLastSeen) {
  int64_t a = outbox_->Deliver("coder-1", Message("m-1"));  // not connected: stored only
  RecordingSink first;
  EXPECT_EQ(outbox_->Attach("coder-1", &first, 0).size(), 1u);
  int64_t b = outbox_->Deliver("coder-1", Message("m-2"));
  int64_t c = outbox_->Deliver("coder-1", Message("m-3"));
  ASSERT_GT(a, 0);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(first.Seqs(), (std::vector<int64_t>{a, b, c}));
  // Another agent's deliveries are its own.
  EXPECT_GT(outbox_->Deliver("coder-2", Message("m-4")), c);
  // The stream breaks after the agent saw m-1; it connects again saying so.
  outbox_->Detach("coder-1", &first);
  EXPECT_FALSE(outbox_->Attached("coder-1"));
  RecordingSink second;
  std::vector<v1::ConnectResponse> resent = outbox_->Attach("coder-1", &second, a);
  EXPECT_EQ(second.Seqs(), (std::vector<int64_t>{b, c}));
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0].envelope().id(), "m-2");
  // The old stream's late close does not close the new one.
  outbox_->Detach("coder-1", &first);
  EXPECT_TRUE(outbox_->Attached("coder-1"));
}

TEST_F(OutboxTest, AnAcknowledgedDeliveryIsForgottenHereAndInTheStore) {
  int64_t a = outbox_->Deliver("coder-1", Message("m-1"));
  int64_t b = outbox_->Deliver("coder-1", Message("m-2"));
  int64_t c = outbox_->Deliver("coder-1", Message("m-3"));
  EXPECT_EQ(outbox_->AckedSeq("coder-1"), a - 1);
  EXPECT_TRUE(outbox_->Ack("coder-1", b));
  EXPECT_EQ(outbox_->AckedSeq("coder-1"), b);
  EXPECT_FALSE(outbox_->Ack("coder-1", a)) << "a stale acknowledgement counted";
  // A restart: only what was not acknowledged comes back, and is sent from the start.
  Open();
  RecordingSink sink;
  outbox_->Attach("coder-1", &sink, 0);
  EXPECT_EQ(sink.Seqs(), (std::vector<int64_t>{c}));
  EXPECT_EQ(sink.got[0].envelope().id(), "m-3");
  EXPECT_TRUE(outbox_->Ack("coder-1", c));
  EXPECT_EQ(outbox_->AckedSeq("coder-1"), 0);
  // Numbers are never reused, across restarts too.
  Open();
  EXPECT_GT(outbox_->Deliver("coder-1", Message("m-5")), c);
}

// A task assignment's reservations go with its first send only: one sent again (after a
// reconnect, or a restart of agentd) might name some the ledger no longer holds.
TEST_F(OutboxTest, AnAssignmentSentAgainCarriesNoReservation) {
  v1::ConnectResponse d;
  v1::TaskAssignment* a = d.mutable_task_assignment();
  a->mutable_task()->set_id("t-1");
  v1::BudgetReservation* r = a->add_reservations();
  r->set_id("res-0a1b2c3d-1");
  r->set_status(v1::BUDGET_RESERVATION_STATUS_GRANTED);
  RecordingSink live;
  outbox_->Attach("coder-1", &live, 0);
  int64_t seq = outbox_->Deliver("coder-1", d);
  ASSERT_EQ(live.Seqs(), (std::vector<int64_t>{seq}));
  ASSERT_EQ(live.got[0].task_assignment().reservations_size(), 1);
  EXPECT_EQ(live.got[0].task_assignment().reservations(0).id(), "res-0a1b2c3d-1");
  // Not acknowledged; the stream breaks and the agent connects again.
  outbox_->Detach("coder-1", &live);
  RecordingSink again;
  outbox_->Attach("coder-1", &again, 0);
  ASSERT_EQ(again.Seqs(), (std::vector<int64_t>{seq}));
  EXPECT_EQ(again.got[0].task_assignment().task().id(), "t-1");
  EXPECT_EQ(again.got[0].task_assignment().reservations_size(), 0)
      << again.got[0].ShortDebugString();
  // Nor after a restart.
  Open();
  RecordingSink after;
  outbox_->Attach("coder-1", &after, 0);
  ASSERT_EQ(after.Seqs(), (std::vector<int64_t>{seq}));
  EXPECT_EQ(after.got[0].task_assignment().reservations_size(), 0)
      << after.got[0].ShortDebugString();
}

}  // namespace
}  // namespace agentd
