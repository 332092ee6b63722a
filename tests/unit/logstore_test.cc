// LogStore against real pipes and real segment files in a temp directory.
#include "manager/core/logstore.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::agentd::testing::TempDir;
using ::agentd::testing::WaitFor;

constexpr uint32_t kAll = ~0u;

void WriteAll(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

// Every record of `agent` after `after`, read in batches of `batch` bytes the way a
// resuming reader does; gaps are collected apart.
struct ReadAll {
  std::vector<v1::LogRecord> records;
  std::vector<v1::LogGap> gaps;
};
ReadAll ReadEverything(LogStore& store, const std::string& agent, int64_t after = 0,
                       size_t batch = 1 << 20, uint32_t mask = kAll,
                       LogStore::ReadBuffer* scratch = nullptr) {
  ReadAll out;
  for (int guard = 0; guard < 100000; ++guard) {
    v1::StreamLogsResponse resp;
    absl::StatusOr<int64_t> next = store.Read(agent, after, batch, mask, &resp, scratch);
    EXPECT_TRUE(next.ok()) << next.status();
    if (!next.ok() || *next == after) break;
    if (resp.has_gap()) out.gaps.push_back(resp.gap());
    for (const auto& r : resp.records()) out.records.push_back(r);
    after = *next;
  }
  return out;
}

// Segments of 4 KiB, all kept, and the newest `ring_bytes` in memory: most reads of a
// few thousand lines come from disk, across many rotations.
LogStoreOptions SmallSegments(int64_t ring_bytes) {
  LogStoreOptions o;
  o.segment_bytes = 4096;
  o.keep_segments = 1000;
  o.ring_bytes = ring_bytes;
  return o;
}

class LogStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<LogStore> Open(LogStoreOptions o = {}) {
    o.dir = dir_.Join("logs");
    absl::StatusOr<std::unique_ptr<LogStore>> s = LogStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : nullptr;
  }
  TempDir dir_;
};

TEST_F(LogStoreTest, RecordsEachLineWithItsStreamInOrder) {
  auto store = Open();
  absl::StatusOr<OutputPipes> pipes = store->Capture("a1");
  ASSERT_TRUE(pipes.ok()) << pipes.status();
  WriteAll(pipes->out(), "one\ntwo\n");
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") == 2; }, absl::Seconds(10)))
      << "LastSeq " << store->LastSeq("a1");
  WriteAll(pipes->err(), "three\n");
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") == 3; }, absl::Seconds(10)))
      << "LastSeq " << store->LastSeq("a1");
  store->AppendSystem("a1", "exited");
  ReadAll all = ReadEverything(*store, "a1");
  ASSERT_EQ(all.records.size(), 4u);
  std::vector<std::pair<std::string, v1::LogStream>> got;
  for (size_t i = 0; i < all.records.size(); ++i) {
    EXPECT_EQ(all.records[i].seq(), static_cast<int64_t>(i + 1));
    got.emplace_back(all.records[i].line(), all.records[i].stream());
  }
  EXPECT_THAT(got, ::testing::ElementsAre(std::pair{"one", v1::LOG_STREAM_STDOUT},
                                          std::pair{"two", v1::LOG_STREAM_STDOUT},
                                          std::pair{"three", v1::LOG_STREAM_STDERR},
                                          std::pair{"exited", v1::LOG_STREAM_SYSTEM}));
}

TEST_F(LogStoreTest, SplitsOverLongLinesWithoutLosingBytes) {
  LogStoreOptions o;
  o.max_line_bytes = 16;
  auto store = Open(o);
  absl::StatusOr<OutputPipes> pipes = store->Capture("a1");
  ASSERT_TRUE(pipes.ok());
  std::string line = "0123456789abcdefghijklmnopqrstuvwxyzABCD";  // 40 bytes
  // Written in two pieces, so the split also spans reads of the pipe.
  WriteAll(pipes->out(), line.substr(0, 25));
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") >= 1; }, absl::Seconds(10)))
      << "LastSeq " << store->LastSeq("a1");
  WriteAll(pipes->out(), line.substr(25) + "\nshort\n");
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") == 4; }, absl::Seconds(10)))
      << "LastSeq " << store->LastSeq("a1");
  ReadAll all = ReadEverything(*store, "a1");
  ASSERT_EQ(all.records.size(), 4u);
  std::string joined;
  for (int i = 0; i < 3; ++i) {
    EXPECT_LE(all.records[i].line().size(), 16u);
    EXPECT_EQ(all.records[i].truncated(), i < 2) << i;
    joined += all.records[i].line();
  }
  EXPECT_EQ(joined, line);
  EXPECT_EQ(all.records[3].line(), "short");
  EXPECT_FALSE(all.records[3].truncated());
}

TEST_F(LogStoreTest, KeepsBinaryBytesAndAnUnfinishedLastLine) {
  auto store = Open();
  absl::StatusOr<OutputPipes> pipes = store->Capture("a1");
  ASSERT_TRUE(pipes.ok());
  std::string binary("bin\0\x01\xff\xfe\r", 8);
  WriteAll(pipes->out(), binary + "\nno newline at the end");
  { OutputPipes closing = std::move(*pipes); }  // EOF: the last line is complete
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") == 2; }, absl::Seconds(10)))
      << "LastSeq " << store->LastSeq("a1");
  ReadAll all = ReadEverything(*store, "a1");
  ASSERT_EQ(all.records.size(), 2u);
  EXPECT_EQ(all.records[0].line(), binary);
  EXPECT_EQ(all.records[1].line(), "no newline at the end");
}

// Many small segments, and a ring of one block: most reads come from disk, across
// rotations, in batches that end anywhere.
TEST_F(LogStoreTest, ResumesFromAnyCursorAcrossRotations) {
  auto store = Open(SmallSegments(/*ring_bytes=*/1));
  for (int i = 1; i <= 2000; ++i) store->AppendSystem("a1", absl::StrCat("line ", i));
  EXPECT_GT(store->Segments("a1").size(), 10u);
  for (size_t batch : {size_t{1}, size_t{100}, size_t{5000}}) {
    ReadAll all = ReadEverything(*store, "a1", 0, batch);
    ASSERT_EQ(all.records.size(), 2000u) << "batch " << batch;
    EXPECT_TRUE(all.gaps.empty());
    for (int i = 0; i < 2000; ++i) {
      ASSERT_EQ(all.records[i].seq(), i + 1);
      ASSERT_EQ(all.records[i].line(), absl::StrCat("line ", i + 1));
    }
  }
  // From the middle: exactly what follows, nothing before.
  ReadAll tail = ReadEverything(*store, "a1", 1234, 700);
  ASSERT_EQ(tail.records.size(), 766u);
  EXPECT_EQ(tail.records.front().seq(), 1235);
}

TEST_F(LogStoreTest, AReaderThatKeepsItsBufferGetsEveryRecordOnceFromDiskAndRing) {
  // Lines of many lengths, so that what a longer read left in the kept buffer differs from
  // what a shorter one reads; the newest in the ring, the rest in segments on disk.
  auto store = Open(SmallSegments(/*ring_bytes=*/3000));
  std::vector<std::string> lines;
  for (int i = 1; i <= 1500; ++i) {
    lines.push_back(
        absl::StrCat("line ", i, " ", std::string(static_cast<size_t>(i * 7 % 301), 'x')));
    store->AppendSystem("a1", lines.back());
  }
  EXPECT_GT(store->Segments("a1").size(), 10u);
  LogStore::ReadBuffer scratch;
  for (size_t batch : {size_t{1}, size_t{700}, size_t{5000}, size_t{1} << 20}) {
    for (int64_t from : {int64_t{0}, int64_t{777}, int64_t{1490}}) {
      ReadAll all = ReadEverything(*store, "a1", from, batch, kAll, &scratch);
      ASSERT_EQ(all.records.size(), lines.size() - static_cast<size_t>(from))
          << "batch " << batch << " from " << from;
      EXPECT_TRUE(all.gaps.empty());
      for (size_t i = 0; i < all.records.size(); ++i) {
        ASSERT_EQ(all.records[i].seq(), from + static_cast<int64_t>(i) + 1);
        ASSERT_EQ(all.records[i].line(), lines[static_cast<size_t>(from) + i]) << "batch " << batch;
      }
    }
    scratch.Release();  // and again from nothing
  }
}

TEST_F(LogStoreTest, RetentionIsReportedAsAGapWithItsSize) {
  LogStoreOptions o;
  o.segment_bytes = 4096;
  o.keep_segments = 3;
  o.ring_bytes = 1;
  auto store = Open(o);
  for (int i = 1; i <= 1000; ++i) store->AppendSystem("a1", absl::StrCat("line ", i));
  std::vector<v1::LogSegment> segs = store->Segments("a1");
  ASSERT_EQ(segs.size(), 3u);
  ReadAll all = ReadEverything(*store, "a1");
  ASSERT_EQ(all.gaps.size(), 1u);
  const v1::LogGap& gap = all.gaps[0];
  EXPECT_EQ(gap.reason(), v1::LOG_GAP_REASON_RETENTION);
  EXPECT_EQ(gap.from_seq(), 1);
  EXPECT_EQ(gap.to_seq(), segs[0].first_seq() - 1);
  // Each deleted record was its 24-byte header plus "line N".
  int64_t lost = 0;
  for (int i = 1; i < segs[0].first_seq(); ++i) lost += 24 + absl::StrCat("line ", i).size();
  EXPECT_EQ(gap.bytes_lost(), lost);
  ASSERT_FALSE(all.records.empty());
  EXPECT_EQ(all.records.front().seq(), segs[0].first_seq());
  EXPECT_EQ(all.records.back().seq(), 1000);
  EXPECT_EQ(all.records.size(), static_cast<size_t>(1000 - segs[0].first_seq() + 1));
}

TEST_F(LogStoreTest, ReopenedLogContinuesAndCutsATornRecord) {
  LogStoreOptions o;
  o.segment_bytes = 64 << 10;
  {
    auto store = Open(o);
    for (int i = 1; i <= 300; ++i) store->AppendSystem("a1", absl::StrCat("line ", i));
  }
  std::vector<v1::LogSegment> segs;
  {
    auto store = Open(o);
    segs = store->Segments("a1");
  }
  ASSERT_FALSE(segs.empty());
  // A crash in the middle of a write: half a record at the end of the last segment.
  std::string last = dir_.Join("logs/a1/" + segs.back().name());
  int fd = open(last.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  WriteAll(fd, std::string("\x20\x00\x00\x00\x03\x00\xd0\xa6", 8) + "torn");
  close(fd);

  auto store = Open(o);
  EXPECT_EQ(store->LastSeq("a1"), 300);
  store->AppendSystem("a1", "after the restart");
  ReadAll all = ReadEverything(*store, "a1");
  ASSERT_EQ(all.records.size(), 301u);
  EXPECT_EQ(all.records[299].line(), "line 300");
  EXPECT_EQ(all.records[300].seq(), 301);
  EXPECT_EQ(all.records[300].line(), "after the restart");
}

TEST_F(LogStoreTest, NotifiesOnceWhenANewerRecordArrives) {
  auto store = Open();
  store->AppendSystem("a1", "first");
  std::atomic<int> calls{0};
  EXPECT_EQ(store->NotifyAfter("a1", 0, [&] { ++calls; }), 0u) << "record 1 exists already";
  uint64_t id = store->NotifyAfter("a1", 1, [&] { ++calls; });
  ASSERT_NE(id, 0u);
  uint64_t cancelled = store->NotifyAfter("a1", 1, [&] { calls += 100; });
  store->CancelNotify("a1", cancelled);
  EXPECT_EQ(calls.load(), 0);
  store->AppendSystem("a1", "second");
  EXPECT_EQ(calls.load(), 1);
  store->AppendSystem("a1", "third");
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(LogStoreTest, StreamFilterSkipsOtherStreamsButAdvancesTheCursor) {
  auto store = Open();
  absl::StatusOr<OutputPipes> pipes = store->Capture("a1");
  ASSERT_TRUE(pipes.ok());
  store->AppendSystem("a1", "note");
  WriteAll(pipes->err(), "oops\n");
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") == 2; }, absl::Seconds(10)))
      << "LastSeq " << store->LastSeq("a1");
  v1::StreamLogsResponse resp;
  absl::StatusOr<int64_t> next = store->Read("a1", 0, 1 << 20, 1u << v1::LOG_STREAM_STDERR, &resp);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 2);
  ASSERT_EQ(resp.records_size(), 1);
  EXPECT_EQ(resp.records(0).line(), "oops");
}

TEST_F(LogStoreTest, DrainReadsWhatThePipeHoldsAndLastLinesReturnsIt) {
  auto store = Open();
  absl::StatusOr<OutputPipes> pipes = store->Capture("a1");
  ASSERT_TRUE(pipes.ok());
  std::string many;
  for (int i = 1; i <= 30; ++i) absl::StrAppend(&many, "out ", i, "\n");
  WriteAll(pipes->out(), many);
  store->Drain("a1");
  // Drain read the pipe synchronously: all 30 lines are there now, no waiting.
  EXPECT_EQ(store->LastSeq("a1"), 30);
  store->AppendSystem("a1", "not a line of the agent's");
  std::vector<std::string> last = store->LastLines("a1", 3, 0);
  EXPECT_THAT(last, ::testing::ElementsAre("out 28", "out 29", "out 30"));
  // Only lines after a seq: those of the current run of the agent, say.
  EXPECT_THAT(store->LastLines("a1", 3, 29), ::testing::ElementsAre("out 30"));
  EXPECT_THAT(store->LastLines("a1", 3, 30), ::testing::ElementsAre());
}

}  // namespace
}  // namespace agentd

namespace agentd {
namespace {

// Each pipe is drained to its end and closed while new ones open: a descriptor number
// freed by one is at once reused by the next, and no line may be lost to the mix-up.
TEST_F(LogStoreTest, PipesOpenedAsOthersCloseLoseNothing) {
  auto store = Open();
  constexpr int kRuns = 2000;
  for (int i = 0; i < kRuns; ++i) {
    absl::StatusOr<OutputPipes> pipes = store->Capture("a1");
    ASSERT_TRUE(pipes.ok()) << pipes.status();
    WriteAll(pipes->out(), absl::StrCat("run ", i, "\n"));
  }  // each run's write ends close here, as when an agent exits
  ASSERT_TRUE(WaitFor([&] { return store->LastSeq("a1") == kRuns; }, absl::Seconds(20)))
      << store->LastSeq("a1") << " of " << kRuns << " lines";
  ReadAll all = ReadEverything(*store, "a1");
  std::set<std::string> lines;
  for (const auto& r : all.records) lines.insert(r.line());
  EXPECT_EQ(lines.size(), static_cast<size_t>(kRuns));
}

}  // namespace
}  // namespace agentd
