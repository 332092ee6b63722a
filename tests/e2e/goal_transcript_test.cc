// Transcripts: what each agent of a whole-team goal was told, said and did, read back
// through TaskService and agentctl, live and after the fact.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/client.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

std::vector<v1::TranscriptEntry> ReadTranscript(Client& client, const std::string& task,
                                                int64_t after = 0) {
  std::vector<v1::TranscriptEntry> out;
  v1::GetTranscriptRequest req;
  req.set_task_id(task);
  req.set_after_seq(after);
  req.set_page_size(3);  // several pages: the paging is part of what is checked
  for (int pages = 0; pages < 1000; ++pages) {
    v1::GetTranscriptResponse resp;
    std::unique_ptr<grpc::ClientContext> ctx = Ctx();
    grpc::Status s = client.tasks().GetTranscript(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (!s.ok()) break;
    for (const v1::TranscriptEntry& e : resp.entries()) out.push_back(e);
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  return out;
}

std::string Describe(const std::vector<v1::TranscriptEntry>& entries) {
  std::string s;
  for (const v1::TranscriptEntry& e : entries) absl::StrAppend(&s, e.ShortDebugString(), "\n");
  return s;
}

TEST_F(GoalTest, ATranscriptShowsThePromptTheTurnsAndEachToolCallWithItsDiff) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("delegate")));
  RunResult goal = CtlGoalAndWait({"Write hello.txt"});
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  std::string coder_task;
  for (const auto& t : tasks["tasks"]) {
    if (Text(t["role"]) == "coder") coder_task = Text(t["id"]);
  }
  ASSERT_FALSE(coder_task.empty()) << tasks.dump();
  Client client = daemon_.client();

  // The coder's: its prompt, then turn, call, result, in order, then agentd's outcome.
  std::vector<v1::TranscriptEntry> coder = ReadTranscript(client, coder_task);
  ASSERT_GE(coder.size(), 8u) << Describe(coder);
  for (size_t i = 1; i < coder.size(); ++i) {
    EXPECT_GT(coder[i].seq(), coder[i - 1].seq()) << Describe(coder);
  }
  ASSERT_TRUE(coder.front().has_prompt()) << Describe(coder);
  EXPECT_THAT(coder.front().prompt().instructions(),
              HasSubstr("Write hello.txt containing hi, commit it"));
  EXPECT_FALSE(coder.front().prompt().system_prompt().empty());
  EXPECT_THAT(std::vector<std::string>(coder.front().prompt().tools().begin(),
                                       coder.front().prompt().tools().end()),
              ::testing::Contains("fs.write"));
  EXPECT_EQ(coder.front().prompt().model(), "coder-m");
  EXPECT_FALSE(coder.front().agent_id().empty());
  EXPECT_EQ(coder.front().attempt(), 1);
  ASSERT_TRUE(coder.back().has_outcome()) << Describe(coder);
  EXPECT_EQ(coder.back().outcome().status(), v1::TASK_STATUS_COMPLETED);
  EXPECT_EQ(coder.back().outcome().summary(), "wrote and committed hello.txt");
  EXPECT_TRUE(coder.back().agent_id().empty()) << "an outcome is agentd's";

  std::map<std::string, v1::TranscriptToolCall> started, finished;
  int turns = 0;
  std::set<std::string> asked;  // the calls the model's turns asked for
  for (const v1::TranscriptEntry& e : coder) {
    if (e.has_model_turn()) {
      ++turns;
      EXPECT_GE(e.model_turn().attempts(), 1);
      EXPECT_GT(e.model_turn().prompt_tokens(), 0) << e.ShortDebugString();
      EXPECT_TRUE(e.model_turn().has_latency());
      for (const auto& c : e.model_turn().tool_calls()) asked.insert(c.tool_call_id());
    }
    if (e.has_tool_call()) {
      const v1::TranscriptToolCall& c = e.tool_call();
      if (c.phase() == v1::TOOL_CALL_PHASE_STARTED) {
        EXPECT_EQ(finished.count(c.tool_call_id()), 0u) << "ended before it started";
        EXPECT_EQ(asked.count(c.tool_call_id()), 1u) << "run before a turn asked for it";
        started[c.tool_call_id()] = c;
      } else {
        EXPECT_EQ(started.count(c.tool_call_id()), 1u) << Describe(coder);
        finished[c.tool_call_id()] = c;
      }
    }
  }
  EXPECT_EQ(turns, 3) << Describe(coder);  // write, commit, complete
  // The provider's reasoning, apart from the answer, in the turn that wrote the file.
  bool reasoned = false;
  for (const v1::TranscriptEntry& e : coder) {
    reasoned =
        reasoned || (e.has_model_turn() && e.model_turn().reasoning() == "The file must hold hi.");
  }
  EXPECT_TRUE(reasoned) << Describe(coder);
  ASSERT_EQ(finished.size(), 2u) << Describe(coder);
  std::map<std::string, v1::TranscriptToolCall> by_tool;
  for (const auto& [id, c] : finished) by_tool[c.tool()] = c;
  ASSERT_EQ(by_tool.count("fs.write"), 1u) << Describe(coder);
  ASSERT_EQ(by_tool.count("git.commit"), 1u) << Describe(coder);
  const v1::TranscriptToolCall& write = by_tool["fs.write"];
  EXPECT_TRUE(write.ok());
  EXPECT_THAT(write.result(), HasSubstr("hello.txt"));
  EXPECT_THAT(write.diff(), HasSubstr("+++ b/hello.txt"));
  EXPECT_THAT(write.diff(), HasSubstr("\n+hi\n"));
  EXPECT_THAT(started[write.tool_call_id()].arguments_json(), HasSubstr("hello.txt"));
  const v1::TranscriptToolCall& commit = by_tool["git.commit"];
  EXPECT_TRUE(commit.ok()) << commit.result();
  EXPECT_THAT(commit.diff(), HasSubstr("hello.txt"));
  EXPECT_THAT(commit.diff(), HasSubstr("+hi"));

  // The CEO's: its delegation, a wait (the outcome BLOCKED), the children's results handed
  // back, and the completion.
  std::vector<v1::TranscriptEntry> ceo = ReadTranscript(client, "g-1");
  bool delegated = false, blocked = false, resumed = false;
  for (const v1::TranscriptEntry& e : ceo) {
    delegated =
        delegated || (e.has_tool_call() && e.tool_call().tool() == "delegate" &&
                      e.tool_call().phase() == v1::TOOL_CALL_PHASE_FINISHED && e.tool_call().ok());
    blocked = blocked || (e.has_outcome() && e.outcome().status() == v1::TASK_STATUS_BLOCKED);
    resumed = resumed || (e.has_note() && e.note().kind() == v1::TRANSCRIPT_NOTE_KIND_RESUMED &&
                          absl::StrContains(e.note().text(), "have ended"));
  }
  EXPECT_TRUE(delegated) << Describe(ceo);
  EXPECT_TRUE(blocked) << Describe(ceo);
  EXPECT_TRUE(resumed) << Describe(ceo);
  ASSERT_TRUE(ceo.back().has_outcome());
  EXPECT_EQ(ceo.back().outcome().status(), v1::TASK_STATUS_COMPLETED);

  // From a cursor: exactly what comes after it.
  std::vector<v1::TranscriptEntry> rest = ReadTranscript(client, coder_task, coder[2].seq());
  ASSERT_EQ(rest.size(), coder.size() - 3) << Describe(rest);
  EXPECT_EQ(rest.front().seq(), coder[3].seq());

  // Watching a task that has ended: the whole transcript, then the stream ends by itself.
  {
    std::unique_ptr<grpc::ClientContext> ctx = Ctx(absl::Seconds(30));
    v1::WatchTranscriptRequest req;
    req.set_task_id(coder_task);
    auto stream = client.tasks().WatchTranscript(ctx.get(), req);
    std::vector<int64_t> seqs;
    v1::WatchTranscriptResponse r;
    while (stream->Read(&r)) seqs.push_back(r.entry().seq());
    grpc::Status s = stream->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(seqs.size(), coder.size());
    EXPECT_EQ(seqs.back(), coder.back().seq());
  }

  // agentctl, for people and as data.
  RunResult text = Ctl({"transcript", coder_task});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("PROMPT"));
  EXPECT_THAT(text.out, HasSubstr("fs.write"));
  EXPECT_THAT(text.out, HasSubstr("+++ b/hello.txt"));
  EXPECT_THAT(text.out, HasSubstr("OUTCOME attempt 1 completed"));
  RunResult followed = Ctl({"transcript", "g-1", "-f"});
  ASSERT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_THAT(followed.out, HasSubstr("delegate"));
  EXPECT_THAT(followed.out, HasSubstr("OUTCOME attempt 1 completed"));
  nlohmann::json data = CtlJson({"transcript", coder_task});
  ASSERT_EQ(ArraySize(data, "entries"), coder.size()) << data.dump();

  // A task agentd does not know.
  v1::GetTranscriptRequest unknown;
  unknown.set_task_id("t-999");
  v1::GetTranscriptResponse none;
  std::unique_ptr<grpc::ClientContext> ctx = Ctx();
  grpc::Status s = client.tasks().GetTranscript(ctx.get(), unknown, &none);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  RunResult missing = Ctl({"transcript", "t-999"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("t-999"));
}

// A transcript followed while the task runs shows its entries as they are recorded, and
// a watcher that reconnects from its cursor misses nothing and sees nothing twice.
TEST_F(GoalTest, ATranscriptFollowedLiveEndsWithTheTaskAndResumesFromItsCursor) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("delegate")));
  Client client = daemon_.client();
  RunResult submitted = Ctl({"goal", "Write hello.txt"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  // Cut after the first entry, then resumed: together, the whole transcript.
  std::vector<int64_t> seqs;
  {
    std::unique_ptr<grpc::ClientContext> ctx = Ctx(absl::Seconds(60));
    v1::WatchTranscriptRequest req;
    req.set_task_id("g-1");
    auto stream = client.tasks().WatchTranscript(ctx.get(), req);
    v1::WatchTranscriptResponse r;
    ASSERT_TRUE(stream->Read(&r)) << daemon_.log();
    EXPECT_TRUE(r.entry().has_prompt()) << r.ShortDebugString();
    seqs.push_back(r.entry().seq());
    ctx->TryCancel();
    stream->Finish();
  }
  {
    std::unique_ptr<grpc::ClientContext> ctx = Ctx(absl::Seconds(60));
    v1::WatchTranscriptRequest req;
    req.set_task_id("g-1");
    req.set_after_seq(seqs.back());
    auto stream = client.tasks().WatchTranscript(ctx.get(), req);
    v1::WatchTranscriptResponse r;
    v1::TranscriptEntry last;
    while (stream->Read(&r)) {
      if (r.entry().live()) continue;  // streamed text: not stored, no cursor
      seqs.push_back(r.entry().seq());
      last = r.entry();
    }
    grpc::Status s = stream->Finish();
    ASSERT_TRUE(s.ok()) << s.error_message() << daemon_.log();
    // It ended because the goal did, with agentd's word on it.
    ASSERT_TRUE(last.has_outcome()) << last.ShortDebugString();
    EXPECT_EQ(last.outcome().status(), v1::TASK_STATUS_COMPLETED);
  }
  std::vector<v1::TranscriptEntry> all = ReadTranscript(client, "g-1");
  std::vector<int64_t> stored;
  for (const v1::TranscriptEntry& e : all) stored.push_back(e.seq());
  EXPECT_EQ(seqs, stored);
}

// The model's text streams to a follower of the transcript as the provider sends it, then
// the stored turn holds all of it.
TEST_F(GoalTest, AFollowerSeesTheModelsTextStreamBeforeItsTurnIsStored) {
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("slow_words")));
  Client client = daemon_.client();
  RunResult submitted = Ctl({"goal", "Think"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::unique_ptr<grpc::ClientContext> ctx = Ctx(absl::Seconds(60));
  v1::WatchTranscriptRequest req;
  req.set_task_id("g-1");
  auto stream = client.tasks().WatchTranscript(ctx.get(), req);
  v1::WatchTranscriptResponse r;
  std::string streamed;
  int pieces = 0;
  std::string stored;  // the first stored turn's text
  while (stream->Read(&r)) {
    const v1::TranscriptEntry& e = r.entry();
    if (e.live()) {
      EXPECT_EQ(e.seq(), 0);
      EXPECT_TRUE(e.has_model_turn());
      if (e.model_turn().error() == "discarded") {
        streamed.clear();
      } else {
        streamed += e.model_turn().text();
        ++pieces;
      }
      continue;
    }
    if (e.has_model_turn() && stored.empty() && !e.model_turn().text().empty()) {
      stored = e.model_turn().text();
    }
  }
  grpc::Status s = stream->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message() << daemon_.log();
  EXPECT_EQ(stored, "Let me think about this for a moment before I answer.");
  EXPECT_GT(pieces, 3) << "the words came one by one";
  EXPECT_EQ(streamed, stored);
  // agentctl -f prints the text as it streams and the stored turn after it.
  RunResult followed = Ctl({"transcript", "g-1", "-f"});
  ASSERT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_THAT(followed.out, HasSubstr("Let me think about this for a moment before I answer."));
  EXPECT_THAT(followed.out, HasSubstr("OUTCOME attempt 1 completed"));
}

}  // namespace
}  // namespace agentd::testing
