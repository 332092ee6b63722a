// SessionStore on real SQLite files, including a writer killed with SIGKILL mid-task.
#include "agents/session/session.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd::session {
namespace {

using ::agentd::testing::TempDir;

TEST(SessionStoreTest, ConversationComesBackInOrderAfterReopening) {
  TempDir dir;
  {
    auto store = SessionStore::Open(dir.Join("a.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Append("t1", llm::SystemMessage("sys")).ok());
    ASSERT_TRUE((*store)->Append("t1", llm::UserMessage("do it")).ok());
    ASSERT_TRUE(
        (*store)
            ->Append("t1", llm::AssistantMessage("", {{"c1", "fs.read", "{\"path\":\"a\"}"}}))
            .ok());
    ASSERT_TRUE((*store)->Append("t1", llm::ToolResultMessage("c1", "fs.read", "nope", true)).ok());
    ASSERT_TRUE((*store)->Append("t2", llm::UserMessage("other task")).ok());
  }
  auto store = SessionStore::Open(dir.Join("a.db"));
  ASSERT_TRUE(store.ok());
  absl::StatusOr<std::vector<llm::Message>> c = (*store)->Conversation("t1");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 4u);
  EXPECT_EQ((*c)[0].role, llm::Role::kSystem);
  EXPECT_EQ((*c)[1].content, "do it");
  ASSERT_EQ((*c)[2].tool_calls.size(), 1u);
  EXPECT_EQ((*c)[2].tool_calls[0], (llm::ToolCall{"c1", "fs.read", "{\"path\":\"a\"}"}));
  EXPECT_EQ((*c)[3].tool_call_id, "c1");
  EXPECT_TRUE((*c)[3].tool_error);
  EXPECT_EQ((*store)->Conversation("t2")->size(), 1u);
  EXPECT_TRUE((*store)->Conversation("t3")->empty());
}

// A task's opening messages go in together or not at all: a conversation found begun has
// its instructions (a resumed task is not left with a system prompt alone). The second
// insert is made to fail by a trigger another connection adds to the real database.
TEST(SessionStoreTest, AppendAllKeepsAllOrNone) {
  TempDir dir;
  auto store = SessionStore::Open(dir.Join("a.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(
      (*store)->AppendAll("t1", {llm::SystemMessage("sys"), llm::UserMessage("do it")}).ok());
  {
    auto other = sqlite::Db::Open(dir.Join("a.db"), /*create=*/false);
    ASSERT_TRUE(other.ok()) << other.status();
    ASSERT_TRUE((*other)
                    ->Exec("CREATE TRIGGER poison BEFORE INSERT ON messages "
                           "WHEN NEW.message LIKE '%poison%' BEGIN "
                           "SELECT RAISE(ABORT, 'poisoned'); END;")
                    .ok());
  }
  absl::Status failed =
      (*store)->AppendAll("t2", {llm::SystemMessage("sys"), llm::UserMessage("poison")});
  EXPECT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.message()), ::testing::HasSubstr("poisoned"));
  EXPECT_TRUE((*store)->Conversation("t2")->empty());
  // The store goes on: the transaction that failed is not left open.
  ASSERT_TRUE((*store)->AppendAll("t2", {llm::SystemMessage("sys"), llm::UserMessage("b")}).ok());
  absl::StatusOr<std::vector<llm::Message>> t1 = (*store)->Conversation("t1");
  absl::StatusOr<std::vector<llm::Message>> t2 = (*store)->Conversation("t2");
  ASSERT_TRUE(t1.ok() && t2.ok());
  ASSERT_EQ(t1->size(), 2u);
  EXPECT_EQ((*t1)[0].role, llm::Role::kSystem);
  EXPECT_EQ((*t1)[1].content, "do it");
  ASSERT_EQ(t2->size(), 2u);
  EXPECT_EQ((*t2)[1].content, "b");
}

TEST(SessionStoreTest, AKilledWriterLeavesDoneCallsDoneAndTheLastOneAsAnIntent) {
  TempDir dir;
  const std::string path = dir.Join("agent.db");
  pid_t pid = fork();
  if (pid == 0) {
    // In the child no assertion can report: a step that fails exits with its number,
    // which the parent sees instead of the SIGKILL it expects.
    auto store = SessionStore::Open(path);
    if (!store.ok()) _exit(2);
    if (!(*store)->RecordIntent("t", {"c1", "fs.write", "{\"path\":\"x\"}"}).ok()) _exit(3);
    if (!(*store)->RecordResult("t", "c1", "wrote 3 bytes", false).ok()) _exit(4);
    if (!(*store)->RecordIntent("t", {"c2", "shell.run", "{\"argv\":[\"make\"]}"}).ok()) _exit(5);
    raise(SIGKILL);  // between c2's intent and its result
    _exit(6);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << agentd::testing::DescribeWaitStatus(status);

  auto store = SessionStore::Open(path);
  ASSERT_TRUE(store.ok());
  auto c1 = (*store)->Find("t", "c1");
  ASSERT_TRUE(c1.ok() && c1->has_value());
  EXPECT_EQ((*c1)->state, CallState::kDone);
  EXPECT_EQ((*c1)->result, "wrote 3 bytes");
  auto c2 = (*store)->Find("t", "c2");
  ASSERT_TRUE(c2.ok() && c2->has_value());
  EXPECT_EQ((*c2)->state, CallState::kIntent);
  EXPECT_EQ((*c2)->tool, "shell.run");
  EXPECT_FALSE((*store)->Find("t", "c3")->has_value());
  // An intent recorded again (the resumed agent retrying) keeps the first one.
  ASSERT_TRUE((*store)->RecordIntent("t", {"c2", "shell.run", "{}"}).ok());
  EXPECT_EQ((*(*store)->Find("t", "c2"))->arguments, "{\"argv\":[\"make\"]}");
}

}  // namespace
}  // namespace agentd::session
