// Transcripts kept within their bounds, on a real SQLite store: entries cut to
// entry_bytes and marked, a goal's oldest entries dropped past goal_bytes and counted per
// task; and the pieces they are made of: a message's texts fitted to a size, a file's
// change as a unified diff.
#include "manager/core/transcripts.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agents/tools/file_diff.h"
#include "common/proto_text.h"
#include "common/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "manager/core/clock.h"
#include "manager/core/config_state.h"
#include "manager/core/event_loop.h"
#include "manager/store/store.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(FitStringsTest, CutsTheLongestTextsOnACharacterAndSaysHowMuch) {
  v1::TranscriptEntry e;
  v1::TranscriptToolCall* c = e.mutable_tool_call();
  c->set_tool("shell.run");
  c->set_summary("short");
  std::string result;
  for (int i = 0; i < 20000; ++i) result += "é";  // two bytes each: cuts must not split one
  c->set_result(result);
  c->set_diff(std::string(10000, 'd'));
  ASSERT_GT(e.ByteSizeLong(), 8192u);
  int64_t cut = FitStrings(&e, 8192);
  EXPECT_LE(e.ByteSizeLong(), 8192u);
  EXPECT_GT(cut, 0);
  EXPECT_TRUE(IsValidUtf8(c->result()));
  EXPECT_THAT(c->result(), HasSubstr("bytes cut by agentd]"));
  EXPECT_EQ(c->summary(), "short");  // short texts are left whole
  EXPECT_EQ(c->tool(), "shell.run");
  // What was cut plus what is left is what there was (less the markers).
  int64_t left = static_cast<int64_t>(c->result().size() + c->diff().size());
  EXPECT_GE(left + cut, 40000 + 10000);

  v1::TranscriptEntry small;
  small.mutable_note()->set_text("fits");
  EXPECT_EQ(FitStrings(&small, 8192), 0);
  EXPECT_EQ(small.note().text(), "fits");
}

TEST(FitStringsTest, MakesEveryStringValidUtf8AndTransformsThemAll) {
  v1::TranscriptEntry e;
  e.mutable_model_turn()->set_text(std::string("ok \xff\xfe bad", 10));
  e.mutable_model_turn()->add_tool_calls()->set_arguments_json("{\"k\": \"\xc3\"}");
  MakeStringsUtf8(&e);
  EXPECT_TRUE(IsValidUtf8(e.model_turn().text()));
  EXPECT_TRUE(IsValidUtf8(e.model_turn().tool_calls(0).arguments_json()));
  TransformStrings(&e, [](const std::string& s) { return "[" + s + "]"; });
  EXPECT_EQ(e.model_turn().text().front(), '[');
  EXPECT_EQ(e.model_turn().tool_calls(0).arguments_json().front(), '[');
}

TEST(FileDiffTest, NewChangedAndUnchangedFiles) {
  std::string made = tools::FileDiff("a.txt", "", "one\ntwo\n", false);
  EXPECT_THAT(made, HasSubstr("--- /dev/null\n+++ b/a.txt\n"));
  EXPECT_THAT(made, HasSubstr("\n+one\n+two\n"));
  std::string changed = tools::FileDiff("a.txt", "one\ntwo\nthree\n", "one\n2\nthree\n", true);
  EXPECT_THAT(changed, HasSubstr("--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n"));
  EXPECT_THAT(changed, HasSubstr("\n-two\n+2\n"));
  EXPECT_THAT(changed, HasSubstr("\n one\n"));
  EXPECT_EQ(tools::FileDiff("a.txt", "same\n", "same\n", true), "");
  EXPECT_THAT(tools::FileDiff("a.txt", "x\n", "x", true), HasSubstr("newline at the end"));
}

TEST(FileDiffTest, HostileContentStaysValidAndBounded) {
  // Not UTF-8, control bytes, a NUL, a huge file: always a valid, bounded answer.
  std::string bad = tools::FileDiff("b\xff.txt", "a\xff\n", "a\xfe\n", true);
  EXPECT_TRUE(IsValidUtf8(bad)) << bad;
  EXPECT_THAT(bad, HasSubstr("@@"));
  EXPECT_THAT(tools::FileDiff("bin", std::string("\0x", 2), "y", true), HasSubstr("binary"));
  std::string big(3 << 20, 'x');
  std::string huge = tools::FileDiff("big", "", big, false);
  EXPECT_THAT(huge, HasSubstr("too large to diff"));
  EXPECT_LT(huge.size(), 500u);
}

constexpr char kConfig[] = R"(
transcripts: {goal_bytes: 64KiB, entry_bytes: 8KiB}
)";

class TranscriptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteFile(dir_.Join("agentd.yaml"), kConfig);
    auto config = ConfigState::Load(dir_.Join("agentd.yaml"), {});
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = std::make_unique<ConfigState>(*std::move(config));
    auto store = Store::Open(dir_.Join("agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    transcripts_ = std::make_unique<Transcripts>(&loop_, store_.get(), config_.get());
  }
  void Note(const std::string& task, const std::string& goal, const std::string& text) {
    v1::TranscriptEntry e;
    e.mutable_note()->set_kind(v1::TRANSCRIPT_NOTE_KIND_PROGRESS);
    e.mutable_note()->set_text(text);
    transcripts_->Record(task, goal, "coder-1", 1, std::move(e));
  }

  testing::TempDir dir_;
  FakeClock clock_;
  EventLoop loop_{&clock_};
  std::unique_ptr<ConfigState> config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Transcripts> transcripts_;
};

TEST_F(TranscriptsTest, EntriesComeBackInOrderWithTheirIdsAndAnOversizedOneIsCut) {
  Note("t-2", "g-1", "first");
  v1::TranscriptEntry forged;
  forged.set_seq(999);  // an agent's seq, time and ids are not taken
  forged.set_task_id("t-9");
  forged.mutable_tool_call()->set_result(std::string(20000, 'r'));
  transcripts_->Record("t-2", "g-1", "coder-1", 2, forged);
  Note("t-3", "g-1", "another task's");
  auto entries = transcripts_->Read("t-2", 0, 100);
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].note().text(), "first");
  EXPECT_EQ((*entries)[0].agent_id(), "coder-1");
  EXPECT_EQ((*entries)[0].attempt(), 1);
  EXPECT_TRUE((*entries)[0].has_time());
  const v1::TranscriptEntry& cut = (*entries)[1];
  EXPECT_GT(cut.seq(), (*entries)[0].seq());
  EXPECT_NE(cut.seq(), 999);
  EXPECT_EQ(cut.task_id(), "t-2");
  EXPECT_EQ(cut.attempt(), 2);
  EXPECT_GT(cut.omitted_bytes(), 20000 - 8192);
  EXPECT_LE(cut.ByteSizeLong(), 8192u + 64);  // its seq and time are added after the cut
  EXPECT_THAT(cut.tool_call().result(), HasSubstr("bytes cut by agentd"));
  // After a cursor: only what follows it.
  auto after = transcripts_->Read("t-2", (*entries)[0].seq(), 100);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].seq(), cut.seq());
}

// A follower that has everything is answered from memory; each entry written after,
// by this agentd or one before it (the same database), still reaches it.
TEST_F(TranscriptsTest, AReaderWithEverythingGetsNothingThenEachNewEntry) {
  Note("t-2", "g-1", "one");
  auto first = transcripts_->Read("t-2", 0, 100);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 1u);
  const int64_t seq = (*first)[0].seq();
  auto none = transcripts_->Read("t-2", seq, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  Note("t-3", "g-1", "another task's");  // a later seq, but not t-2's
  Note("t-2", "g-1", "two");             // queued: the read writes it first
  auto next = transcripts_->Read("t-2", seq, 100);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].note().text(), "two");
  // A second Transcripts on the same store (agentd restarted) knows nothing in memory:
  // it reads the store, and sees the first one's entries.
  Transcripts again(&loop_, store_.get(), config_.get());
  auto all = again.Read("t-2", 0, 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  auto after_first = again.Read("t-2", seq, 100);
  ASSERT_TRUE(after_first.ok());
  EXPECT_EQ(after_first->size(), 1u);
}

TEST_F(TranscriptsTest, AGoalPastItsBoundLosesItsOldestEntriesAndEachTaskCountsItsLoss) {
  // 40 entries of about 4 KB over two tasks of one goal: past 64 KiB, the oldest go.
  for (int i = 0; i < 40; ++i) {
    Note(i % 2 == 0 ? "t-2" : "t-3", "g-1", std::string(4000, static_cast<char>('a' + i % 26)));
    if (i % 7 == 0) transcripts_->Flush();  // in batches of several sizes
  }
  Note("t-9", "g-2", "another goal's, untouched");
  transcripts_->Flush();
  auto kept2 = transcripts_->Read("t-2", 0, 1000);
  auto kept3 = transcripts_->Read("t-3", 0, 1000);
  ASSERT_TRUE(kept2.ok() && kept3.ok());
  const size_t kept = kept2->size() + kept3->size();
  EXPECT_LT(kept, 40u);
  EXPECT_GE(kept, 12u);  // 64 KiB holds about 16 of them
  auto lost2 = transcripts_->Dropped("t-2");
  auto lost3 = transcripts_->Dropped("t-3");
  ASSERT_TRUE(lost2.ok() && lost3.ok());
  EXPECT_EQ(lost2->entries + lost3->entries + static_cast<int64_t>(kept), 40);
  EXPECT_GT(lost2->bytes, 4000 * lost2->entries - 1);
  // The newest stayed: the last entry of each task is there.
  EXPECT_EQ(kept2->back().note().text(), std::string(4000, static_cast<char>('a' + 38 % 26)));
  EXPECT_EQ(kept3->back().note().text(), std::string(4000, static_cast<char>('a' + 39 % 26)));
  // And what is kept is the newest: no gap inside it.
  EXPECT_LT(kept2->front().seq(), kept3->back().seq());
  auto other = transcripts_->Read("t-9", 0, 10);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), 1u);
  auto none = transcripts_->Dropped("t-9");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->entries, 0);
}

TEST_F(TranscriptsTest, AFloodOfShortTextsIsKeptAsANoteAndAgentdsOwnEntriesAreNeverDropped) {
  // Thousands of short texts cannot be cut to fit: the entry is kept as a note saying so,
  // with what was claimed about it by the agent not believed.
  v1::TranscriptEntry flood;
  for (int i = 0; i < 5000; ++i) {
    v1::TranscriptToolRequest* r = flood.mutable_model_turn()->add_tool_calls();
    r->set_tool("fs.read");
    r->set_tool_call_id(absl::StrCat("c", i));
  }
  flood.set_omitted_bytes(-5);
  transcripts_->Record("t-2", "g-1", "coder-1", 1, flood);
  // agentd's own outcome, then enough of the agent's to push the goal past its bound.
  v1::TranscriptEntry outcome;
  outcome.mutable_outcome()->set_status(v1::TASK_STATUS_COMPLETED);
  transcripts_->Record("t-2", "g-1", "", 1, outcome);
  for (int i = 0; i < 40; ++i) Note("t-2", "g-1", std::string(4000, 'x'));
  v1::TranscriptEntry empty;  // nothing in it: not recorded
  transcripts_->Record("t-2", "g-1", "coder-1", 1, empty);
  auto kept = transcripts_->Read("t-2", 0, 1000);
  ASSERT_TRUE(kept.ok());
  bool outcome_kept = false, flood_kept = false;
  for (const v1::TranscriptEntry& e : *kept) {
    EXPECT_NE(e.entry_case(), v1::TranscriptEntry::ENTRY_NOT_SET);
    EXPECT_GE(e.omitted_bytes(), 0);
    outcome_kept = outcome_kept || e.has_outcome();
    flood_kept = flood_kept || e.has_model_turn();
  }
  EXPECT_TRUE(outcome_kept) << "agentd's outcome was dropped by retention";
  EXPECT_FALSE(flood_kept);
  auto dropped = transcripts_->Dropped("t-2");
  ASSERT_TRUE(dropped.ok());
  EXPECT_GT(dropped->entries, 0);
  // The flood itself became a note (and went, being the oldest of the agent's).
  transcripts_->Record("t-4", "g-3", "coder-1", 1, flood);
  auto note = transcripts_->Read("t-4", 0, 10);
  ASSERT_TRUE(note.ok());
  ASSERT_EQ(note->size(), 1u);
  EXPECT_THAT((*note)[0].note().text(), HasSubstr("too large to keep"));
  EXPECT_GT((*note)[0].omitted_bytes(), 8192);
}

}  // namespace
}  // namespace agentd
