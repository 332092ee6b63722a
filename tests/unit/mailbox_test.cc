// The agent's mailbox: which conversation each delivered message reaches.
#include <string>
#include <vector>

#include "agents/runtime/daemon_tools.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace agentd::testing
