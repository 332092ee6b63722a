// Agents' logs end to end: real agent processes writing to real pipes, read back through
// LogService with a gRPC stub and through agentctl.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "common/paths.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/helpers/flooder.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

class LogsTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& config) {
    WriteFile(dir_.Join("agentd.yaml"), config);
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    agents_ = v1::AgentService::NewStub(daemon_.UnixChannel());
    logs_ = v1::LogService::NewStub(daemon_.UnixChannel());
  }
  void StartAgent(const std::string& role, const std::string& id) {
    grpc::ClientContext ctx;
    v1::StartAgentRequest req;
    req.set_role(role);
    req.set_agent_id(id);
    v1::StartAgentResponse resp;
    grpc::Status s = agents_->StartAgent(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::Agent Get(const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetAgentRequest req;
    req.set_agent_id(id);
    v1::GetAgentResponse resp;
    EXPECT_TRUE(agents_->GetAgent(&ctx, req, &resp).ok());
    return resp.agent();
  }
  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::LogService::Stub> logs_;
};

TEST_F(LogsTest, AgentctlShowsAndFollowsAnAgentsOutput) {
  StartDaemon(R"(
roles:
  talker: {command: ["/bin/sh", "-c", "echo to stdout; echo to stderr >&2; exec sleep 600"]}
)");
  StartAgent("talker", "t1");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Ctl({"logs", "t1"}).out.find("to stderr") != std::string::npos;
      },
      absl::Seconds(20)));
  RunResult all = Ctl({"logs", "t1"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("to stdout\n"));
  EXPECT_THAT(all.out, HasSubstr("[agentd] running (pid "));
  RunResult only = Ctl({"logs", "t1", "--stream", "stderr"});
  EXPECT_EQ(only.out, "to stderr\n");

  // A follower sees what the next run of the agent writes.
  Subprocess follower({AgentctlBinary(), "--socket", daemon_.socket(), "logs", "-f", "t1"},
                      dir_.Join("follow.out"), dir_.Join("follow.err"));
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFileOrEmpty(dir_.Join("follow.out")).find("to stdout") != std::string::npos;
      },
      absl::Seconds(20)));
  ASSERT_EQ(Ctl({"restart", "t1"}).exit_code, 0);
  auto count = [&](const std::string& text) {
    std::string out = ReadFileOrEmpty(dir_.Join("follow.out"));
    int n = 0;
    for (size_t p = out.find(text); p != std::string::npos; p = out.find(text, p + 1)) ++n;
    return n;
  };
  EXPECT_TRUE(WaitFor([&] { return count("to stdout") == 2 && count("to stderr") == 2; },
                      absl::Seconds(20)))
      << ReadFileOrEmpty(dir_.Join("follow.out"));
  EXPECT_GE(count("[agentd] stopping"), 1);
  EXPECT_TRUE(follower.running()) << "a follower keeps following";

  RunResult missing = Ctl({"logs", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND: agent \"nope\" does not exist"));
}

// Reads stdout records of `agent` after `*cursor` until `want` lines have arrived, then
// disconnects; checks each line against the flooder's and advances `*next`/`*cursor`.
void ReadFlooderLines(v1::LogService::Stub* stub, const std::string& agent, int64_t* cursor,
                      uint64_t* next, uint64_t want) {
  grpc::ClientContext ctx;
  v1::StreamLogsRequest req;
  req.set_agent_id(agent);
  req.set_after_seq(*cursor);
  req.set_follow(true);
  req.add_streams(v1::LOG_STREAM_STDOUT);
  auto reader = stub->StreamLogs(&ctx, req);
  v1::StreamLogsResponse resp;
  std::string expected;
  while (*next < want && reader->Read(&resp)) {
    ASSERT_FALSE(resp.has_gap()) << resp.gap().DebugString();
    for (const v1::LogRecord& r : resp.records()) {
      ASSERT_GT(r.seq(), *cursor) << "a record sent twice";
      *cursor = r.seq();
      FlooderLine(*next, 99, &expected);
      ASSERT_EQ(r.line(), expected) << "line " << *next << " at seq " << r.seq();
      ++*next;
    }
  }
  ctx.TryCancel();
  reader->Finish();
}

TEST_F(LogsTest, StreamLogsResumesFromItsCursorAcrossRotations) {
  StartDaemon(absl::StrCat(R"(
logs: {segment_bytes: 64KiB, keep_segments: 1000, ring_bytes: 64KiB}
roles:
  flood: {command: [")",
                           HelperBinary("flooder"), R"(", "30000", "100"]}
)"));
  StartAgent("flood", "f1");
  int64_t cursor = 0;
  uint64_t next = 0;
  // Disconnect twice, mid-stream, and come back with the last seq seen.
  ReadFlooderLines(logs_.get(), "f1", &cursor, &next, 7000);
  ASSERT_GE(next, 7000u);  // whole batches: a little more than asked for
  ReadFlooderLines(logs_.get(), "f1", &cursor, &next, 19000);
  ASSERT_GE(next, 19000u);
  ReadFlooderLines(logs_.get(), "f1", &cursor, &next, 30000);
  EXPECT_EQ(next, 30000u);

  grpc::ClientContext ctx;
  v1::ListLogSegmentsRequest req;
  req.set_agent_id("f1");
  req.set_page_size(1000);
  v1::ListLogSegmentsResponse segs;
  ASSERT_TRUE(logs_->ListLogSegments(&ctx, req, &segs).ok());
  // 3 MB of lines in 64 KiB segments: the stream went through dozens of rotations.
  EXPECT_GT(segs.segments_size(), 40);
  EXPECT_EQ(segs.segments(0).first_seq(), 1);
  for (int i = 1; i < segs.segments_size(); ++i) {
    EXPECT_EQ(segs.segments(i).first_seq(), segs.segments(i - 1).last_seq() + 1);
  }
}

TEST_F(LogsTest, TailAndAfterSeqPickWhereTheStreamStarts) {
  StartDaemon(absl::StrCat(R"(
roles:
  flood: {command: [")",
                           HelperBinary("flooder"), R"(", "50", "20"]}
)"));
  StartAgent("flood", "f2");
  ASSERT_TRUE(
      WaitFor([&] { return Get("f2").state() == v1::AGENT_STATE_STOPPED; }, absl::Seconds(20)));
  std::string line;
  RunResult tail = Ctl({"logs", "f2", "--stream", "stdout", "--tail", "3"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  std::vector<std::string> lines = absl::StrSplit(tail.out, '\n', absl::SkipEmpty());
  // The tail counts records of every stream; of the last three, the stdout ones show.
  ASSERT_FALSE(lines.empty());
  FlooderLine(49, 19, &line);
  EXPECT_EQ(lines.back(), line);
  RunResult json = Ctl({"logs", "f2", "-o", "json", "--stream", "stdout"});
  std::vector<std::string> docs = absl::StrSplit(json.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(docs.size(), 50u);
  // Resuming after the 10th stdout record's seq gives the 11th line first.
  std::string seq10 = docs[9].substr(docs[9].find("\"seq\":\"") + 7);
  seq10 = seq10.substr(0, seq10.find('"'));
  RunResult after = Ctl({"logs", "f2", "--stream", "stdout", "--after-seq", seq10});
  lines = absl::StrSplit(after.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 40u);
  FlooderLine(10, 19, &line);
  EXPECT_EQ(lines[0], line);
}

}  // namespace
}  // namespace agentd::testing
