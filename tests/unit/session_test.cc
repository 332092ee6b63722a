// SessionStore on real SQLite files, including a writer killed with SIGKILL mid-task.
#include "agents/session/session.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

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
