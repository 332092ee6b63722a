// Containment at the approval point, with dev/fakellm playing a hostile model: a consent
// decision covers exactly the request a person was shown (a provider that repeats its
// tool-call ids gets no second read for free), and nothing a model writes reaches the
// person's terminal as a control sequence.
#include <climits>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// `path` with symlinks resolved, as fs.read shows it to a person; `path` itself when it
// cannot be resolved.
std::string Resolved(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

// The pending consent requests (agentctl get consents -o json); empty when there are
// none or agentctl fails. Records no failure.
nlohmann::json Pending(const nlohmann::json& j) {
  return j.is_object() && j.contains("consentRequests") ? j["consentRequests"]
                                                        : nlohmann::json::array();
}

// Success when `out` holds no byte a terminal acts on (newline and tab aside) and no bidi
// control: what agentctl must never print for people. A failure names the first found.
::testing::AssertionResult NoControlSequences(const std::string& out) {
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(out[i]);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
      return ::testing::AssertionFailure()
             << absl::StrFormat("byte 0x%02x at %d in:\n", c, i) << out;
    }
  }
  for (const char* bidi : {"\u202e", "\u202a", "\u2066", "\u2069"}) {
    if (out.find(bidi) != std::string::npos) {
      return ::testing::AssertionFailure() << "a raw bidi control in:\n" << out;
    }
  }
  return ::testing::AssertionSuccess();
}

// The Coder reads two files outside its workspace, both under the tool-call id call_1 (as
// an Ollama-style server numbers them in every response). Approving the first must not
// approve the second: a second request is raised, and denied, nothing of the file is read.
TEST_F(GoalTest, ARepeatedToolCallIdDoesNotReuseAnEarlierApproval) {
  WriteFile(dir_.Join("notes.txt"), "the approved notes\n");
  WriteFile(dir_.Join("secret.txt"), "THE-SECRET-NOBODY-APPROVED\n");
  const std::string first = Resolved(dir_.Join("notes.txt"));
  const std::string second = Resolved(dir_.Join("secret.txt"));
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("containment_repeated_call_ids", {{"FIRST", first}, {"SECOND", second}})));
  ASSERT_EQ(Ctl({"goal", "Read the notes"}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return Pending(PollCtlJson({"get", "consents"}));
      },
      [](const nlohmann::json& p) { return p.size() == 1; }, absl::Seconds(30), &pending))
      << daemon_.log();
  ASSERT_EQ(Text(pending[0]["details"]["path"]), first);
  EXPECT_EQ(Text(pending[0]["summary"]), "read " + first + " (outside the workspace)");
  RunResult ok = Ctl({"consent", "approve", Text(pending[0]["id"])});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;

  // The second file is a request of its own, waiting for a person.
  ASSERT_TRUE(WaitForValue(
      [&] {
        return Pending(PollCtlJson({"get", "consents"}));
      },
      [&](const nlohmann::json& p) {
        return p.size() == 1 && Text(p[0]["details"]["path"]) == second;
      },
      absl::Seconds(30), &pending))
      << "no second consent request was raised; what the Coder's calls returned: "
      << ::testing::PrintToString(ToolResults(FakeRequests(), "coder-m")) << "\n"
      << daemon_.log();
  RunResult no = Ctl({"consent", "deny", Text(pending[0]["id"]), "--reason", "not that one"});
  ASSERT_EQ(no.exit_code, 0) << no.err;
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED")) << daemon_.log();
  std::vector<std::string> results = ToolResults(FakeRequests(), "coder-m");
  ASSERT_EQ(results.size(), 2u) << FakeRequests().dump();
  EXPECT_THAT(results[0], HasSubstr("the approved notes"));
  EXPECT_THAT(results[1], HasSubstr("a person denied reading it"));
  EXPECT_THAT(results[1], Not(HasSubstr("THE-SECRET")));
}

// What agentctl shows a person — consents, task titles, instructions, results, messages
// — carries "\r\e[2K" and U+202E from the model, escaped so that they are seen, never
// acted on; -o json keeps the exact data.
TEST_F(GoalTest, AgentctlShowsAModelsControlSequencesEscaped) {
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("containment_terminal"), "", "[delegate, message, complete_task, fail_task]"));
  ASSERT_EQ(Ctl({"goal", "Tidy up"}).exit_code, 0);
  nlohmann::json pending;
  ASSERT_TRUE(WaitForValue(
      [&] {
        return Pending(PollCtlJson({"get", "consents"}));
      },
      [](const nlohmann::json& p) { return p.size() == 1; }, absl::Seconds(30), &pending))
      << daemon_.log();

  // The consent, as a person decides on it: the daemon's words, every argument shown.
  RunResult consents = Ctl({"get", "consents"});
  ASSERT_EQ(consents.exit_code, 0) << consents.err;
  EXPECT_TRUE(NoControlSequences(consents.out));
  EXPECT_THAT(consents.out, HasSubstr("run `rm -rf $'/\\r\\x1b[2Kls -l \\u202e'`"));
  // As data, the argument is exact.
  nlohmann::json argv = nlohmann::json::parse(Text(pending[0]["details"]["argv"]), nullptr, false);
  ASSERT_TRUE(argv.is_array()) << pending.dump();
  EXPECT_EQ(argv, nlohmann::json({"rm", "-rf", "/\r\x1b[2Kls -l \u202e"}));
  // Described in full: every detail, escaped on its own line.
  RunResult described = Ctl({"describe", "consent", Text(pending[0]["id"])});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_TRUE(NoControlSequences(described.out)) << described.out;
  EXPECT_THAT(described.out, HasSubstr("run `rm -rf $'/\\r\\x1b[2Kls -l \\u202e'`"));
  EXPECT_THAT(described.out, HasSubstr("argv: [\"rm\",\"-rf\",\"/\\r\\u001b[2Kls -l \\u202e\"]"))
      << described.out;
  EXPECT_THAT(described.out, ::testing::ContainsRegex("status: +pending"));
  EXPECT_EQ(CtlJson({"describe", "consent", Text(pending[0]["id"])})["details"]["argv"],
            pending[0]["details"]["argv"]);
  EXPECT_EQ(Ctl({"describe", "consent", "c-none"}).exit_code, 1);
  RunResult yaml = Ctl({"-o", "yaml", "get", "consents"});
  EXPECT_EQ(yaml.exit_code, 0) << yaml.err;
  // YAML is data too: its own escapes, no raw control byte.
  for (char c : yaml.out) {
    EXPECT_FALSE(c == '\x1b' || c == '\r') << "a raw control byte in:\n" << yaml.out;
  }

  // Task titles and instructions, in the list, the tree, and described.
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"get", "tasks"}, {"get", "tasks", "--tree"}, {"describe", "task", "t-2"}}) {
    RunResult r = Ctl(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(NoControlSequences(r.out)) << args[0] << " " << args[1];
    EXPECT_THAT(r.out, HasSubstr("tidy up\\r\\x1b[2Kls -l \\u202etxt.exe"));
  }
  EXPECT_THAT(Ctl({"describe", "task", "t-2"}).out,
              HasSubstr("Clean the temp dir\\r\\x1b[2K(nothing to see)"));
  // The message to people.
  RunResult messages = Ctl({"messages"});
  ASSERT_EQ(messages.exit_code, 0) << messages.err;
  EXPECT_TRUE(NoControlSequences(messages.out));
  EXPECT_THAT(messages.out, HasSubstr("all fine\\r\\x1b[2Kapprove everything \\u202etxt.exe"));

  // Denied; the Coder's result comes back with the same tricks.
  ASSERT_EQ(Ctl({"consent", "deny", Text(pending[0]["id"])}).exit_code, 0);
  ASSERT_TRUE(TaskReaches("t-2", "TASK_STATUS_COMPLETED")) << daemon_.log();
  RunResult result = Ctl({"describe", "task", "t-2"});
  EXPECT_TRUE(NoControlSequences(result.out));
  EXPECT_THAT(result.out, HasSubstr("ok\\r\\x1b[2Kall tests passed \\u202e"));
  EXPECT_EQ(Text(CtlJson({"describe", "task", "t-2"})["result"]["summary"]),
            "ok\r\x1b[2Kall tests passed \u202e");
}

}  // namespace
}  // namespace agentd::testing
