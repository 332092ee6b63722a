// The agent loop end to end in one process: agentd's LLM client against dev/fakellm,
// real tools in a real workspace, the session in a real SQLite file.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "agents/runtime/agent_loop.h"
#include "common/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
namespace llm = ::agentd::llm;

constexpr char kAgentLoopScenario[] = R"(
rules:
  - name: write-then-finish
    match: {contains: "make the greeting", last_role: user}
    reply:
      text: "Writing it."
      tool_calls: [{name: fs_write, arguments: {path: "hello.txt", content: "hello\n"}}]
      usage: {prompt_tokens: 100, completion_tokens: 20}
  - name: two-writes
    match: {contains: "write both files", last_role: user}
    reply:
      tool_calls:
        - {name: fs_write, arguments: {path: "x.txt", content: "x"}}
        - {name: fs_write, arguments: {path: "y.txt", content: "y"}}
  - name: write-and-finish
    match: {contains: "write and finish in one go", last_role: user}
    reply:
      tool_calls:
        - {name: complete_task, arguments: {summary: "z.txt is written"}}
        - {name: fs_write, arguments: {path: "z.txt", content: "z"}}
  - name: bad-summary
    match: {contains: "finish oddly", last_role: user}
    reply:
      text: "all done"
      tool_calls: [{name: complete_task, arguments: {summary: {not: "a string"}}}]
  - name: invented-tool
    match: {contains: "try something odd", last_role: user}
    reply:
      tool_calls: [{name: rm_everything, arguments: {}}]
  - name: nudged-into-work
    match: {contains: "[agentd] Your turn ended", model: test-model, last_role: user}
    reply:
      tool_calls: [{name: fs_write, arguments: {path: "hello.txt", content: "hello\n"}}]
  - name: stubborn
    match: {contains: "[agentd] Your turn ended", model: stubborn-model}
    reply: {text: "I am still thinking about it."}
  - name: parent-after-children
    match: {contains: "have ended", model: parent-model, last_role: user}
    reply:
      tool_calls: [{name: complete_task, arguments: {summary: "the children did it"}}]
  - name: parent-completes-early
    match: {model: parent-model, last_role: user}
    reply:
      tool_calls: [{name: complete_task, arguments: {summary: "done, I think"}}]
  - name: announce
    match: {contains: "announce first"}
    reply: {text: "Sure. I will write the greeting file."}
  - name: slow
    match: {contains: "think long"}
    reply: {text: "done thinking", delay_ms: 20000}
  - name: finish
    match: {last_role: tool}
    reply:
      tool_calls: [{name: complete_task, arguments: {summary: "hello.txt is written"}}]
      usage: {prompt_tokens: 150, completion_tokens: 10}
  - name: plain-answer
    match: {contains: "just answer"}
    reply: {text: "42"}
)";

class CountingBudget final : public agent::Budget {
 public:
  explicit CountingBudget(int allowed) : allowed_(allowed) {}
  absl::Status Reserve(const std::string&, int64_t) override {
    if (reserved_ >= allowed_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("BUDGET_EXCEEDED: the goal's budget allows ", allowed_, " calls"));
    }
    ++reserved_;
    return absl::OkStatus();
  }
  void Report(const std::string&, const llm::Usage& u, double, const llm::CallStats& s) override {
    tokens_ += u.prompt_tokens + u.completion_tokens;
    attempts_ += s.attempts;
  }
  void ReportFailure(const std::string&, const absl::Status&, const llm::CallStats&) override {
    ++failures_;
  }
  int reserved_ = 0;
  int64_t tokens_ = 0;
  int attempts_ = 0;
  int failures_ = 0;

 private:
  int allowed_;
};

class AgentLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fake_ = std::make_unique<FakeLlm>(dir_, kAgentLoopScenario);
    ASSERT_FALSE(fake_->url().empty()) << fake_->log();
    ASSERT_EQ(mkdir(dir_.Join("ws").c_str(), 0755), 0);
    auto ws = tools::Workspace::Open(dir_.Join("ws"));
    ASSERT_TRUE(ws.ok()) << ws.status();
    ws_ = *std::move(ws);
    ASSERT_NO_FATAL_FAILURE(OpenSessions());
    llm::ProviderOptions o;
    o.name = "fake";
    o.kind = "openai";
    o.base_url = fake_->url() + "/v1";
    auto client = llm::LlmClient::Create(o);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    box_ = tools::ToolBox::ForRole({"fs.read", "fs.write", "fs.edit", "complete_task"});
  }
  // (Re)opens the session store, as a restarted agent does.
  void OpenSessions() {
    auto sessions = session::SessionStore::Open(dir_.Join("session.db"));
    ASSERT_TRUE(sessions.ok()) << sessions.status();
    sessions_ = *std::move(sessions);
  }
  // The conversation of `task`; empty (with a failure) when it cannot be read.
  std::vector<llm::Message> Conversation(const std::string& task) {
    absl::StatusOr<std::vector<llm::Message>> conv = sessions_->Conversation(task);
    EXPECT_TRUE(conv.ok()) << conv.status();
    return conv.ok() ? *std::move(conv) : std::vector<llm::Message>();
  }
  agent::AgentLoop Loop(agent::Budget* budget = nullptr, agent::LoopLimits limits = {},
                        const std::string& model = "test-model", agent::LoopEvents events = {}) {
    return agent::AgentLoop(client_.get(), model, &box_,
                            {ws_.get(), &shell_, nullptr, "", "", nullptr, ""}, sessions_.get(),
                            budget, limits, std::move(events));
  }
  // The user messages of `task` that are agentd's nudges.
  int Nudges(const std::string& task) {
    int n = 0;
    for (const llm::Message& m : Conversation(task)) {
      if (m.role == llm::Role::kUser && absl::StartsWith(m.content, "[agentd] ")) ++n;
    }
    return n;
  }

  TempDir dir_;
  std::unique_ptr<FakeLlm> fake_;
  std::unique_ptr<tools::Workspace> ws_;
  std::unique_ptr<session::SessionStore> sessions_;
  std::unique_ptr<llm::LlmClient> client_;
  tools::ShellOptions shell_;
  tools::ToolBox box_;
};

TEST_F(AgentLoopTest, RunsToolsUntilTheModelCompletesTheTask) {
  agent::AgentLoop loop = Loop();
  absl::StatusOr<agent::TaskOutcome> out =
      loop.Run("t1", "You are a coder.", "Please make the greeting file.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted) << out->summary;
  EXPECT_EQ(out->summary, "hello.txt is written");
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/hello.txt")), "hello\n");
  EXPECT_EQ(out->turns, 2);
  EXPECT_EQ(out->usage.prompt_tokens, 250);
  EXPECT_EQ(out->usage.completion_tokens, 30);
  // The whole conversation is in the session, the write journaled as done.
  absl::StatusOr<std::vector<llm::Message>> conv = sessions_->Conversation("t1");
  ASSERT_TRUE(conv.ok());
  ASSERT_EQ(conv->size(), 5u);
  EXPECT_EQ((*conv)[2].tool_calls[0].name, "fs.write");
  EXPECT_EQ((*conv)[3].content, "wrote 6 bytes to hello.txt");
  auto j = sessions_->Find("t1", (*conv)[2].tool_calls[0].id);
  ASSERT_TRUE(j.ok() && j->has_value());
  EXPECT_EQ((*j)->state, session::CallState::kDone);
  // Running the finished task again asks the model nothing more.
  int requests = fake_->Requests();
  out = loop.Run("t1", "ignored", "ignored");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  EXPECT_EQ(fake_->Requests(), requests);
}

// A turn that completes the task and writes a file (in either order) has its write done
// before the task ends: "completed" never skips work the model asked for.
TEST_F(AgentLoopTest, ATurnThatWritesAndCompletesRunsTheWriteBeforeTheTaskEnds) {
  absl::StatusOr<agent::TaskOutcome> out =
      Loop().Run("t-both", "sys", "Please write and finish in one go.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  EXPECT_EQ(out->summary, "z.txt is written");
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/z.txt")), "z");
}

// agentd refused a completion (a goal's check failed): handed back, the task answers
// that complete_task with agentd's words and goes on; the same refusal delivered again
// is not applied twice.
TEST_F(AgentLoopTest, ARefusedCompletionIsAnsweredOnceAndTheTaskGoesOn) {
  ASSERT_TRUE(Loop().Run("t-ref", "sys", "Please make the greeting file.").ok());
  int before = fake_->Requests();
  const std::string refusal = "[agentd] The goal is not complete: `make check` failed";
  absl::StatusOr<agent::TaskOutcome> out =
      Loop().Run("t-ref", "ignored", "ignored", nullptr, "", refusal);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  EXPECT_EQ(fake_->Requests(), before + 1) << "the model is asked again";
  std::vector<llm::Message> conv = Conversation("t-ref");
  int answered = 0;
  for (size_t i = 0; i < conv.size(); ++i) {
    if (conv[i].role != llm::Role::kTool || conv[i].content != refusal) continue;
    ++answered;
    EXPECT_TRUE(conv[i].tool_error);
    ASSERT_GT(i, 0u);
    EXPECT_EQ(conv[i - 1].tool_calls.back().name, "complete_task");
  }
  EXPECT_EQ(answered, 1);
  // Delivered again: the later completion stands, nothing is asked.
  out = Loop().Run("t-ref", "ignored", "ignored", nullptr, "", refusal);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  EXPECT_EQ(fake_->Requests(), before + 1);
}

TEST_F(AgentLoopTest, AToolTheModelInventsIsAnErrorItSeesNotACrash) {
  absl::StatusOr<agent::TaskOutcome> out =
      Loop().Run("t2", "You are a coder.", "Please try something odd.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  std::vector<llm::Message> conv = Conversation("t2");
  ASSERT_GE(conv.size(), 4u);
  EXPECT_TRUE(conv[3].tool_error);
  EXPECT_THAT(conv[3].content, HasSubstr("no tool named \"rm_everything\""));
}

// A model that announces what it will do and stops is not done: it is nudged, does the
// work, and the task ends through complete_task with the file written.
TEST_F(AgentLoopTest, APlainTextAnswerIsNudgedAndTheTaskEndsOnlyThroughCompleteTask) {
  absl::StatusOr<agent::TaskOutcome> out =
      Loop().Run("t3", "sys", "Please announce first, then make hello.txt.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted) << out->summary;
  EXPECT_EQ(out->summary, "hello.txt is written");
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/hello.txt")), "hello\n");
  EXPECT_EQ(Nudges("t3"), 1);
  EXPECT_EQ(fake_->Requests(), 3) << "announce, work after the nudge, complete";
}

// A model that never calls complete_task or fail_task fails the task (NO_RESULT) after
// max_nudges nudges in a row, saying what it last answered.
TEST_F(AgentLoopTest, PlainTextAnswersPastTheNudgesFailTheTaskWithNoResult) {
  agent::LoopLimits limits;
  limits.max_nudges = 2;
  absl::StatusOr<agent::TaskOutcome> out =
      Loop(nullptr, limits, "stubborn-model").Run("t3b", "sys", "Please just answer: 6 times 7?");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kFailed);
  EXPECT_EQ(out->failure, agent::TaskOutcome::Failure::kNoResult);
  EXPECT_THAT(out->summary, HasSubstr("3 time(s) in a row"));
  EXPECT_THAT(out->summary, HasSubstr("I am still thinking about it."));
  EXPECT_EQ(Nudges("t3b"), 2);
  EXPECT_EQ(fake_->Requests(), 3);
}

// complete_task while delegated tasks are open makes the task wait (agentd decides when
// it goes on), rather than a refusal the model keeps running into; handed back with the
// children's results, the model completes it.
TEST_F(AgentLoopTest, CompletingWithChildrenOpenWaitsAndCompletesOnceTheyEnded) {
  int open = 1;
  agent::LoopEvents events;
  events.open_children = [&] { return open; };
  absl::StatusOr<agent::TaskOutcome> out =
      Loop(nullptr, {}, "parent-model", events).Run("t3d", "sys", "Please get it done.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kWaiting) << out->summary;
  std::vector<llm::Message> conv = Conversation("t3d");
  ASSERT_FALSE(conv.empty());
  EXPECT_EQ(conv.back().role, llm::Role::kTool);
  EXPECT_THAT(conv.back().content, HasSubstr("have not ended yet"));
  // The children ended: agentd hands the task back with their results.
  open = 0;
  out = Loop(nullptr, {}, "parent-model", events)
            .Run("t3d", "sys", "Please get it done.", nullptr,
                 "The tasks you delegated have ended:\n  t-9 completed: wrote it");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted) << out->summary;
  EXPECT_EQ(out->summary, "the children did it");
  EXPECT_EQ(fake_->Requests(), 2);
}

// A role with ends_on_text takes a plain answer as the result, as a chat role would.
TEST_F(AgentLoopTest, ARoleThatEndsOnTextTakesAPlainAnswerAsTheResult) {
  agent::LoopLimits limits;
  limits.ends_on_text = true;
  absl::StatusOr<agent::TaskOutcome> out =
      Loop(nullptr, limits).Run("t3c", "sys", "Please just answer: 6 times 7?");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  EXPECT_EQ(out->summary, "42");
  EXPECT_EQ(Nudges("t3c"), 0);
}

TEST_F(AgentLoopTest, ARefusedReservationStopsTheTaskBeforeTheCall) {
  CountingBudget budget(1);
  absl::StatusOr<agent::TaskOutcome> out =
      Loop(&budget).Run("t4", "sys", "Please make the greeting file.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kFailed);
  EXPECT_THAT(out->summary, HasSubstr("BUDGET_EXCEEDED"));
  EXPECT_EQ(fake_->Requests(), 1) << "no call past the budget";
  EXPECT_EQ(budget.tokens_, 120);
}

TEST_F(AgentLoopTest, CancelStopsTheTaskWhileTheModelThinks) {
  agent::AgentLoop loop = Loop();
  llm::CancelToken cancel;
  absl::Notification done;
  absl::StatusOr<agent::TaskOutcome> out;
  std::thread t([&] {
    out = loop.Run("t5", "sys", "Please think long about it.", &cancel);
    done.Notify();
  });
  bool asked = WaitFor([&] { return fake_->Requests() == 1; }, absl::Seconds(10));
  cancel.Cancel();
  // The model would answer after 20s; the cancel ends the task long before. A timing
  // window, scaled with the machine's speed.
  bool ended = done.WaitForNotificationWithTimeout(Scaled(absl::Seconds(5)));
  t.join();  // before any ASSERT returns: a joinable thread's destructor aborts
  ASSERT_TRUE(asked) << "the model was not asked: " << fake_->Requests() << " requests\n"
                     << fake_->log();
  EXPECT_TRUE(ended) << "still running after the cancel";
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCanceled);
}

// A restart between a write's intent and its result: the resumed loop sees the file is
// already as the call wanted and does not write again.
TEST_F(AgentLoopTest, AResumedTaskDoesNotRepeatASideEffectThatTookPlace) {
  {
    agent::AgentLoop loop = Loop();
    absl::StatusOr<agent::TaskOutcome> first =
        loop.Run("t6", "sys", "Please make the greeting file.");
    ASSERT_TRUE(first.ok()) << first.status();
  }
  // Rewind the session to the moment after the intent: drop the result and what followed.
  std::vector<llm::Message> conv = Conversation("t6");
  ASSERT_GE(conv.size(), 4u);
  ASSERT_EQ(conv[2].tool_calls.size(), 1u);
  {
    auto db = sqlite::Db::Open(dir_.Join("session.db"), false);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("DELETE FROM messages WHERE task = 't6' AND seq > 3").ok());
    ASSERT_TRUE(
        (*db)->Exec("UPDATE journal SET state = 'intent', result = NULL WHERE task = 't6'").ok());
  }
  // Another process could have changed the file since; the write did take place.
  struct stat before {};
  ASSERT_EQ(stat(dir_.Join("ws/hello.txt").c_str(), &before), 0) << "the first run wrote nothing";
  ASSERT_NO_FATAL_FAILURE(OpenSessions());
  absl::StatusOr<agent::TaskOutcome> out = Loop().Run("t6", "sys", "ignored");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  conv = Conversation("t6");
  ASSERT_GE(conv.size(), 4u);
  EXPECT_EQ(conv[3].tool_call_id, conv[2].tool_calls[0].id);
  EXPECT_THAT(conv[3].content, HasSubstr("already applied before the agent restarted"));
  struct stat after {};
  ASSERT_EQ(stat(dir_.Join("ws/hello.txt").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "written again (a write replaces the file)";
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/hello.txt")), "hello\n");
}

// Killed after the first of two results was saved: the second call is answered on resume
// (a provider refuses a conversation with a call left unanswered), the first not rerun.
TEST_F(AgentLoopTest, AResumeAnswersTheCallsOfTheLastTurnThatHadNoResultYet) {
  absl::StatusOr<agent::TaskOutcome> first = Loop().Run("t7", "sys", "Please write both files.");
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<llm::Message> conv = Conversation("t7");
  ASSERT_GE(conv.size(), 6u);
  ASSERT_EQ(conv[2].tool_calls.size(), 2u);
  std::string second = conv[2].tool_calls[1].id;
  {
    auto db = sqlite::Db::Open(dir_.Join("session.db"), false);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE((*db)->Exec("DELETE FROM messages WHERE task = 't7' AND seq > 4").ok());
    ASSERT_TRUE(
        (*db)->Exec("DELETE FROM journal WHERE task = 't7' AND call_id = '" + second + "'").ok());
  }
  // The first file stays as the first run left it; the second is written on resume.
  ASSERT_EQ(ReadFileOrEmpty(dir_.Join("ws/x.txt")), "x");
  ASSERT_EQ(unlink(dir_.Join("ws/y.txt").c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(OpenSessions());
  absl::StatusOr<agent::TaskOutcome> out = Loop().Run("t7", "sys", "ignored");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted) << out->summary;
  conv = Conversation("t7");
  ASSERT_GE(conv.size(), 6u);
  EXPECT_EQ(conv[3].tool_call_id, conv[2].tool_calls[0].id);
  EXPECT_EQ(conv[4].tool_call_id, second);
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/y.txt")), "y");
}

TEST_F(AgentLoopTest, ASummaryThatIsNotAStringDoesNotCrashTheAgent) {
  absl::StatusOr<agent::TaskOutcome> out = Loop().Run("t8", "sys", "Please finish oddly.");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->status, agent::TaskOutcome::Status::kCompleted);
  EXPECT_EQ(out->summary, "all done");
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// The agent as a process of its own (tests/helpers/loop_runner), killed with SIGKILL.
class KilledAgentTest : public ::testing::Test {
 protected:
  void Start(const std::string& scenario) {
    fake_ = std::make_unique<FakeLlm>(dir_, scenario);
    ASSERT_FALSE(fake_->url().empty()) << fake_->log();
    ASSERT_EQ(mkdir(dir_.Join("ws").c_str(), 0755), 0);
  }
  std::unique_ptr<Subprocess> Runner(const std::string& instructions) {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{HelperBinary("loop_runner"), fake_->url(), dir_.Join("ws"),
                                 dir_.Join("session.db"), "task-1", instructions},
        dir_.Join("runner.out"), dir_.Join("runner.err"));
  }
  TempDir dir_;
  std::unique_ptr<FakeLlm> fake_;
};

// Killed while the model works out its second call: the first call is not repeated.
TEST_F(KilledAgentTest, KilledBetweenTwoToolCallsItFinishesWithEachEffectOnce) {
  Start(R"(
rules:
  - match: {contains: "append twice", last_role: user}
    reply: {tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo one >> log.txt"]}}]}
  - match: {last_role: tool}
    times: 1
    reply:
      tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo two >> log.txt"]}}]
      delay_ms: 30000
  - match: {last_role: tool}
    times: 1
    reply: {tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo two >> log.txt"]}}]}
  - match: {last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "appended"}}]}
)");
  auto first = Runner("Please append twice.");
  ASSERT_TRUE(WaitFor([&] { return fake_->Requests() == 2; }, absl::Seconds(20))) << fake_->log();
  first->Signal(SIGKILL);
  ASSERT_TRUE(first->WaitExit(absl::Seconds(10)).has_value());
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/log.txt")), "one\n");
  auto second = Runner("(resumed: not read)");
  std::optional<int> st = second->WaitExit(absl::Seconds(30));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << ReadFileOrEmpty(dir_.Join("runner.err"));
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/log.txt")), "one\ntwo\n");
  EXPECT_THAT(ReadFileOrEmpty(dir_.Join("runner.out")), HasSubstr("completed: appended"));
}

// Killed while a command with a side effect runs (its intent journaled, no result): the
// resumed agent does not run it again blindly; the model is told and decides.
TEST_F(KilledAgentTest, KilledBetweenAnIntentAndItsResultTheEffectIsNotRepeated) {
  Start(R"(
rules:
  - match: {contains: "append slowly", last_role: user}
    reply: {tool_calls: [{name: shell_run, arguments: {argv: ["sh", "-c", "echo one >> log.txt; sleep 60"]}}]}
  - match: {last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "checked the log"}}]}
)");
  auto first = Runner("Please append slowly.");
  ASSERT_TRUE(WaitFor([&] { return ReadFileOrEmpty(dir_.Join("ws/log.txt")) == "one\n"; },
                      absl::Seconds(20)))
      << fake_->log() << ReadFileOrEmpty(dir_.Join("runner.err"));
  first->Signal(SIGKILL);
  ASSERT_TRUE(first->WaitExit(absl::Seconds(10)).has_value());
  auto second = Runner("(resumed: not read)");
  std::optional<int> st = second->WaitExit(absl::Seconds(30));
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << ReadFileOrEmpty(dir_.Join("runner.err"));
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/log.txt")), "one\n");
  auto sessions = session::SessionStore::Open(dir_.Join("session.db"));
  ASSERT_TRUE(sessions.ok()) << sessions.status();
  auto conv = (*sessions)->Conversation("task-1");
  ASSERT_TRUE(conv.ok()) << conv.status();
  ASSERT_GE(conv->size(), 4u);
  EXPECT_THAT((*conv)[3].content, HasSubstr("may or may not have taken effect"));
}

}  // namespace
}  // namespace agentd::testing
