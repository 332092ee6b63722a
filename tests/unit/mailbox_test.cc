// The agent's mailbox: which conversation each delivered message reaches.
#include <string>
#include <vector>

#include "agents/runtime/daemon_tools.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

v1::Envelope Message(const std::string& id, const std::string& from, const std::string& task) {
  v1::Envelope m;
  m.set_id(id);
  m.set_from(from);
  m.set_task_id(task);
  m.set_body("body of " + id);
  return m;
}

std::vector<std::string> Ids(const std::vector<v1::Envelope>& ms) {
  std::vector<std::string> ids;
  for (const v1::Envelope& m : ms) ids.push_back(m.id());
  return ids;
}

// A note agentd sends about one task (a plan of it rolled back) must not land in the
// conversation of another task the agent is on meanwhile: it waits for its own task.
// Peers' messages name the sender's task and go to whatever the agent is doing.
TEST(MailboxTest, AgentdsNoteAboutATaskWaitsForThatTasksConversation) {
  agent::Mailbox box;
  ASSERT_TRUE(box.Put(Message("m-1", "agentd", "t-1")));
  ASSERT_TRUE(box.Put(Message("m-2", "coder-1", "t-9")));
  ASSERT_TRUE(box.Put(Message("m-3", "agentd", "")));
  ASSERT_TRUE(box.Put(Message("m-4", "agentd", "t-2")));
  EXPECT_EQ(Ids(box.TakeInbox("t-2")), (std::vector<std::string>{"m-2", "m-3", "m-4"}));
  EXPECT_TRUE(box.TakeInbox("t-2").empty());
  EXPECT_EQ(Ids(box.TakeInbox("t-1")), (std::vector<std::string>{"m-1"}));
  // Seen once, never again (a redelivery after a reconnect).
  EXPECT_FALSE(box.Put(Message("m-1", "agentd", "t-1")));
  EXPECT_TRUE(box.TakeInbox("t-1").empty());
}

// A message the agent acknowledged is not lost when the agent is killed before it
// reached a conversation: the inbox lives in the session, and leaves it only in the
// transaction that appends the message to a conversation.
TEST(MailboxTest, AcknowledgedMessagesOutliveTheAgentUntilAConversationHasThem) {
  TempDir dir;
  std::string path = dir.Join("coder-1.db");
  {
    agent::Mailbox box;
    ASSERT_TRUE(box.Persist(path).ok());
    ASSERT_TRUE(box.Put(Message("m-1", "human:me", "")));
    ASSERT_TRUE(box.Put(Message("m-2", "agentd", "t-1")));
    ASSERT_TRUE(box.Put(Message("m-3", "coder-2", "t-9")));
  }  // killed: nothing was read
  agent::Mailbox again;
  ASSERT_TRUE(again.Persist(path).ok());
  EXPECT_FALSE(again.Put(Message("m-1", "human:me", ""))) << "a redelivery is still a repeat";
  std::vector<v1::Envelope> taken = again.TakeInbox("t-2");
  EXPECT_EQ(Ids(taken), (std::vector<std::string>{"m-1", "m-3"}));
  // m-1 reaches t-2's conversation; m-3 was taken but the agent died before appending it.
  auto session = session::SessionStore::Open(path);
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->AppendFromInbox("t-2", llm::UserMessage("m-1's text"), "m-1").ok());

  agent::Mailbox third;
  ASSERT_TRUE(third.Persist(path).ok());
  EXPECT_EQ(Ids(third.TakeInbox("t-2")), (std::vector<std::string>{"m-3"}));
  EXPECT_EQ(Ids(third.TakeInbox("t-1")), (std::vector<std::string>{"m-2"}));
  auto conversation = (*session)->Conversation("t-2");
  ASSERT_TRUE(conversation.ok());
  ASSERT_EQ(conversation->size(), 1u) << "in a conversation, once";
  EXPECT_EQ((*conversation)[0].content, "m-1's text");
}

}  // namespace
}  // namespace agentd::testing
