// Agents' logs end to end: real agent processes writing to real pipes, read back through
// LogService with a gRPC stub and through agentctl.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "common/paths.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/helpers/flooder.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

class LogsTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& config) {
    // No always-on agents unless the test names them (the default's ceo and manager).
    WriteFile(dir_.Join("agentd.yaml"),
              config + (config.find("agents:") == std::string::npos ? "agents: []\n" : ""));
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    client_ = std::make_unique<Client>(daemon_.client());
  }
  void StartAgent(const std::string& role, const std::string& id) {
    grpc::Status s = client_->StartAgent(role, id);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  // Every record of `id` that exists now, through StreamLogs without follow.
  std::vector<v1::LogRecord> AllRecords(const std::string& id) {
    auto ctx = Ctx(absl::Seconds(30));
    v1::StreamLogsRequest req;
    req.set_agent_id(id);
    auto reader = client_->logs().StreamLogs(ctx.get(), req);
    std::vector<v1::LogRecord> out;
    v1::StreamLogsResponse resp;
    while (reader->Read(&resp)) {
      EXPECT_FALSE(resp.has_gap()) << resp.gap().DebugString();
      for (const v1::LogRecord& r : resp.records()) out.push_back(r);
    }
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }
  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::unique_ptr<Client> client_;
};

TEST_F(LogsTest, AgentctlShowsAndFollowsAnAgentsOutput) {
  StartDaemon(R"(
roles:
  talker: {command: ["/bin/sh", "-c", "echo to stdout; echo to stderr >&2; exec sleep 600"]}
)");
  StartAgent("talker", "t1");
  ASSERT_TRUE(WaitForValue(
      [&] {
        return Ctl({"logs", "t1"}).out;
      },
      [](const std::string& out) { return out.find("to stderr") != std::string::npos; },
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
  ASSERT_TRUE(WaitForValue(
      [&] { return ReadFileOrEmpty(dir_.Join("follow.out")); },
      [](const std::string& out) { return out.find("to stdout") != std::string::npos; },
      absl::Seconds(20)))
      << ReadFileOrEmpty(dir_.Join("follow.err"));
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
  EXPECT_EQ(count("[agentd] stopping"), 1) << ReadFileOrEmpty(dir_.Join("follow.out"));
  EXPECT_TRUE(follower.running()) << "a follower keeps following";

  RunResult missing = Ctl({"logs", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND: agent \"nope\" does not exist"));
}

// Reads stdout records of `agent` after `*cursor` until `want` lines have arrived, then
// disconnects; checks each line against the flooder's and advances `*next`/`*cursor`.
void ReadFlooderLines(v1::LogService::Stub* stub, const std::string& agent, int64_t* cursor,
                      uint64_t* next, uint64_t want) {
  auto ctx = Ctx(absl::Seconds(60));
  v1::StreamLogsRequest req;
  req.set_agent_id(agent);
  req.set_after_seq(*cursor);
  req.set_follow(true);
  req.add_streams(v1::LOG_STREAM_STDOUT);
  auto reader = stub->StreamLogs(ctx.get(), req);
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
  ctx->TryCancel();
  grpc::Status s = reader->Finish();
  // Ended by this reader (CANCELLED), or by the daemon only after the last line.
  EXPECT_TRUE(s.ok() || s.error_code() == grpc::StatusCode::CANCELLED) << s.error_message();
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
  ReadFlooderLines(&client_->logs(), "f1", &cursor, &next, 7000);
  ASSERT_GE(next, 7000u);  // whole batches: a little more than asked for
  ASSERT_LT(next, 30000u) << "the first read took everything: nothing was resumed";
  ReadFlooderLines(&client_->logs(), "f1", &cursor, &next, 19000);
  ASSERT_GE(next, 19000u);
  ASSERT_LT(next, 30000u) << "the second read took everything: nothing was resumed";
  ReadFlooderLines(&client_->logs(), "f1", &cursor, &next, 30000);
  EXPECT_EQ(next, 30000u);

  v1::ListLogSegmentsRequest req;
  req.set_agent_id("f1");
  req.set_page_size(1000);
  v1::ListLogSegmentsResponse segs;
  grpc::Status s = client_->logs().ListLogSegments(Ctx().get(), req, &segs);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // 3 MB of lines in 64 KiB segments: the stream went through dozens of rotations.
  ASSERT_GT(segs.segments_size(), 40);
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
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("f2"); },
                           [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_STOPPED; },
                           absl::Seconds(20)));
  // The whole log, as the API has it: the flooder's 50 lines and agentd's own notes.
  std::vector<v1::LogRecord> records = AllRecords("f2");
  std::vector<size_t> out;  // indexes of the stdout records
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].stream() == v1::LOG_STREAM_STDOUT) out.push_back(i);
  }
  ASSERT_EQ(out.size(), 50u);
  std::string line;
  for (size_t i = 0; i < out.size(); ++i) {
    FlooderLine(i, 19, &line);
    ASSERT_EQ(records[out[i]].line(), line) << i;
  }
  // As agentctl prints a record.
  auto shown = [](const v1::LogRecord& r) {
    return (r.stream() == v1::LOG_STREAM_SYSTEM ? "[agentd] " : "") + r.line();
  };

  // --tail 3: exactly the last three records, whatever their stream.
  RunResult tail = Ctl({"logs", "f2", "--tail", "3"});
  ASSERT_EQ(tail.exit_code, 0) << tail.err;
  std::vector<std::string> lines = absl::StrSplit(tail.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << tail.out;
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(lines[k], shown(records[records.size() - 3 + k])) << k;

  // The tail counts records of every stream (StreamLogsRequest.tail); of those, the
  // stdout ones show. Counted back to the third-last stdout line: exactly the last three.
  size_t n = records.size() - out[47];
  RunResult stdout_tail = Ctl({"logs", "f2", "--stream", "stdout", "--tail", std::to_string(n)});
  ASSERT_EQ(stdout_tail.exit_code, 0) << stdout_tail.err;
  lines = absl::StrSplit(stdout_tail.out, '\n', absl::SkipEmpty());
  std::vector<std::string> want;
  for (int i = 47; i < 50; ++i) {
    FlooderLine(i, 19, &line);
    want.push_back(line);
  }
  EXPECT_EQ(lines, want) << "--tail " << n;
  // One record fewer and the first of those three is not in it.
  RunResult shorter = Ctl({"logs", "f2", "--stream", "stdout", "--tail", std::to_string(n - 1)});
  lines = absl::StrSplit(shorter.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines, std::vector<std::string>(want.begin() + 1, want.end())) << "--tail " << n - 1;

  // -o json: one record a line, each with its seq (a number) and its line (as text).
  RunResult json = Ctl({"logs", "f2", "-o", "json", "--stream", "stdout"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::vector<std::string> docs = absl::StrSplit(json.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(docs.size(), 50u);
  for (size_t i = 0; i < docs.size(); ++i) {
    nlohmann::json doc = nlohmann::json::parse(docs[i], nullptr, false);
    ASSERT_TRUE(doc.is_object()) << docs[i];
    EXPECT_EQ(doc["seq"], records[out[i]].seq()) << docs[i];
    EXPECT_EQ(doc["line"], records[out[i]].line()) << docs[i];
    EXPECT_EQ(doc["stream"], "stdout") << docs[i];
    EXPECT_EQ(doc["agent"], "f2") << docs[i];
  }
  // Resuming after the 10th stdout record's seq gives the 11th line on, and no other.
  RunResult after = Ctl(
      {"logs", "f2", "--stream", "stdout", "--after-seq", std::to_string(records[out[9]].seq())});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  lines = absl::StrSplit(after.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 40u);
  for (size_t i = 0; i < lines.size(); ++i) {
    FlooderLine(10 + i, 19, &line);
    EXPECT_EQ(lines[i], line) << i;
  }
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// Reading logs as journalctl and kubectl users do: several agents or a role at once (a
// prefix per line), --grep, --since/--until, --previous (the run before the last start),
// -o json with the line as text and seq a number, -o yaml, and --timestamps that leaves
// a line's own timestamp alone.
TEST_F(LogsTest, ReadsSeveralAgentsByTimeWindowPatternAndRun) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(R"(
roles:
  talker:
    command: ["/bin/sh", "-c", "echo one; printf 'bad \\377 byte\\n'; echo '2026-01-01T00:00:00 own stamp'; echo ERROR two >&2; exec sleep 600"]
    max_instances: 2
  runner:
    command: ["/bin/sh", "-c", "echo run; exit 3"]
supervision: {restart_sec: 100ms}
)"));
  StartAgent("talker", "t1");
  StartAgent("talker", "t2");
  StartAgent("runner", "r1");
  for (const std::string id : {"t1", "t2"}) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return Ctl({"logs", id}).out.find("ERROR two") != std::string::npos;
        },
        absl::Seconds(20)))
        << id;
  }
  auto lines = [](const std::string& out) {
    return std::vector<std::string>(absl::StrSplit(out, '\n', absl::SkipEmpty()));
  };

  RunResult role = Ctl({"logs", "--role", "talker", "--stream", "stdout,stderr"});
  ASSERT_EQ(role.exit_code, 0) << role.err;
  EXPECT_THAT(lines(role.out), ::testing::IsSupersetOf(
                                   {"[t1] one", "[t2] one", "[t1] ERROR two", "[t2] ERROR two"}));
  EXPECT_EQ(lines(role.out).size(), 8u) << role.out;
  RunResult grep = Ctl({"logs", "t1", "t2", "--grep", "^ERROR"});
  ASSERT_EQ(grep.exit_code, 0) << grep.err;
  EXPECT_THAT(lines(grep.out), ::testing::UnorderedElementsAre("[t1] ERROR two", "[t2] ERROR two"));
  EXPECT_EQ(Ctl({"logs", "t1", "--grep", "("}).exit_code, 2);

  // Time windows: everything lies after 2000 and before 2100.
  EXPECT_THAT(Ctl({"logs", "t1", "--since", "1h"}).out, HasSubstr("ERROR two"));
  EXPECT_THAT(Ctl({"logs", "t1", "--since", "2000-01-01"}).out, HasSubstr("ERROR two"));
  EXPECT_EQ(Ctl({"logs", "t1", "--until", "2000-01-01T00:00:00Z"}).out, "");
  EXPECT_EQ(Ctl({"logs", "t1", "--since", "2100-01-01 00:00"}).out, "");
  RunResult bad_time = Ctl({"logs", "t1", "--since", "yesterday-ish"});
  EXPECT_EQ(bad_time.exit_code, 2);
  EXPECT_THAT(bad_time.err, HasSubstr("is not a time"));

  // -o json: the line as text, a byte that is not UTF-8 as \xff; seq a number.
  RunResult json = Ctl({"logs", "t1", "-o", "json", "--stream", "stdout"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::vector<std::string> docs = lines(json.out);
  ASSERT_EQ(docs.size(), 3u) << json.out;
  nlohmann::json bad = nlohmann::json::parse(docs[1], nullptr, false);
  ASSERT_TRUE(bad.is_object()) << docs[1];
  EXPECT_EQ(bad["line"], "bad \\xff byte");
  EXPECT_TRUE(bad["seq"].is_number_integer()) << docs[1];
  RunResult yaml = Ctl({"logs", "t1", "-o", "yaml", "--grep", "own stamp"});
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, ::testing::StartsWith("---\n"));
  EXPECT_THAT(yaml.out, ::testing::ContainsRegex("\nseq: [0-9]+\n"));
  EXPECT_THAT(yaml.out, HasSubstr("line: 2026-01-01T00:00:00 own stamp"));

  // --timestamps: one stamp per line, the agent's own where it wrote one.
  RunResult stamped = Ctl({"logs", "t1", "--timestamps", "--stream", "stdout"});
  std::vector<std::string> s = lines(stamped.out);
  ASSERT_EQ(s.size(), 3u) << stamped.out;
  EXPECT_THAT(s[0], ::testing::MatchesRegex("20[0-9-]+T[0-9:.]+Z one"));
  EXPECT_EQ(s[2], "2026-01-01T00:00:00 own stamp");

  // --previous: the runner's run before its last start, and only that. It exits at once
  // and is restarted until the crash-loop breaker holds it (failed): then its runs stand.
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::GetAgentRequest req;
        req.set_agent_id("r1");
        v1::GetAgentResponse resp;
        return client_->agents().GetAgent(Ctx().get(), req, &resp).ok() &&
               resp.agent().state() == v1::AGENT_STATE_FAILED;
      },
      absl::Seconds(30)));
  std::vector<int64_t> runs;  // the seq of each run's line
  for (const v1::LogRecord& r : AllRecords("r1")) {
    if (r.line() == "run") runs.push_back(r.seq());
  }
  ASSERT_GE(runs.size(), 2u);
  RunResult previous = Ctl({"logs", "r1", "--previous", "--stream", "stdout", "-o", "json"});
  ASSERT_EQ(previous.exit_code, 0) << previous.err;
  std::vector<std::string> prev = lines(previous.out);
  ASSERT_EQ(prev.size(), 1u) << previous.out;
  nlohmann::json doc = nlohmann::json::parse(prev[0], nullptr, false);
  EXPECT_EQ(doc["seq"], runs[runs.size() - 2]) << prev[0];
  EXPECT_EQ(Ctl({"logs", "t1", "--previous"}).exit_code, 1);  // t1 ran once
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

TEST_F(LogsTest, TheDaemonsOwnLogReadsLikeAnAgentsAndItsIdIsReserved) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon("agents: []\nroles:\n  idle: {command: [sleep, \"600\"]}\n"));
  // What agentd logged at start is there, each record "LEVEL message", after the note
  // that marks a run.
  RunResult own;
  ASSERT_TRUE(WaitFor(
      [&] {
        own = Ctl({"logs", "agentd", "--stream", "stderr"});
        return own.out.find("info agentd ") != std::string::npos;
      },
      absl::Seconds(20)))
      << own.out << own.err;
  EXPECT_THAT(own.out, HasSubstr("cgroup"));
  RunResult system = Ctl({"logs", "agentd", "--stream", "agentd"});
  EXPECT_THAT(system.out, HasSubstr("launching"));
  // No agent may take the log's id; what agentd says about an agent is found by its id.
  grpc::Status s = client_->StartAgent("idle", "agentd");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("reserved"));
  StartAgent("idle", "idle-1");
  ASSERT_TRUE(WaitFor(
      [&] {
        return Ctl({"logs", "agentd", "--grep", "idle-1"}).out.find("idle-1") != std::string::npos;
      },
      absl::Seconds(20)));
  RunResult json = Ctl({"logs", "agentd", "-n", "1", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"seq\":"));
}

}  // namespace
}  // namespace agentd::testing
