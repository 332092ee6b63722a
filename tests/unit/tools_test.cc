// The agent's tools on a real workspace directory, running real programs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agents/tools/junit.h"
#include "agents/tools/shell.h"
#include "agents/tools/tool.h"
#include "agents/tools/workspace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd::tools {
namespace {

using ::agentd::testing::ReadFileOrEmpty;
using ::agentd::testing::TempDir;
using ::agentd::testing::WriteFile;
using nlohmann::json;
using ::testing::HasSubstr;

// Whether `program` is an executable file in a directory of $PATH.
bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    if (access(absl::StrCat(dir, "/", program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// The interface names in a /proc/net/dev listing ("  lo: 0 0 …" after two header lines).
std::set<std::string> Interfaces(absl::string_view net_dev) {
  std::set<std::string> names;
  for (absl::string_view line : absl::StrSplit(net_dev, '\n')) {
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos || line.find('|') != absl::string_view::npos) continue;
    names.insert(std::string(absl::StripAsciiWhitespace(line.substr(0, colon))));
  }
  return names;
}

class ToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mkdir(dir_.Join("ws").c_str(), 0755);
    auto ws = Workspace::Open(dir_.Join("ws"));
    ASSERT_TRUE(ws.ok()) << ws.status();
    ws_ = *std::move(ws);
    shell_.allow = {"ls", "cat", "sleep", "head", "printenv", "touch", "false"};
    shell_.timeout = absl::Seconds(20);
    ctx_ = {ws_.get(), &shell_, nullptr, "", "", nullptr, ""};
    box_ = ToolBox::ForRole(
        {"fs.read", "fs.write", "fs.edit", "fs.list", "fs.search", "shell.run", "message"});
  }
  ToolResult Call(const std::string& tool, const json& args) {
    return box_.Call(tool, args.dump(), ctx_);
  }

  TempDir dir_;
  std::unique_ptr<Workspace> ws_;
  ShellOptions shell_;
  ToolContext ctx_;
  ToolBox box_;
};

// A person, as the tools see one: answers every request with `approve` and keeps them.
class RecordingPerson final : public ConsentAsker {
 public:
  explicit RecordingPerson(bool approve) : approve_(approve) {}
  absl::StatusOr<bool> Ask(const ConsentAsk& ask, const llm::CancelToken*) const override {
    asked.push_back(ask);
    return approve_;
  }
  mutable std::vector<ConsentAsk> asked;

 private:
  bool approve_;
};

TEST_F(ToolsTest, ReadingOutsideTheWorkspaceAsksAPersonForTheResolvedPath) {
  WriteFile(dir_.Join("notes.txt"), "outside notes\n");
  ASSERT_EQ(symlink(dir_.Join("notes.txt").c_str(), dir_.Join("ws/link").c_str()), 0);
  RecordingPerson yes(true), no(false);
  ctx_.consent = &yes;
  ToolResult r = Call("fs.read", {{"path", "link"}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_EQ(r.content, "outside notes\n");
  ASSERT_EQ(yes.asked.size(), 1u);
  EXPECT_EQ(yes.asked[0].kind, ConsentKind::kPathOutsideWorkspace);
  EXPECT_EQ(yes.asked[0].details.at("path"), dir_.Join("notes.txt"));  // where it really is
  ctx_.consent = &no;
  r = Call("fs.read", {{"path", "../notes.txt"}});
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("a person denied reading it"));
  // Inside the workspace nobody is asked.
  WriteFile(dir_.Join("ws/in.txt"), "in\n");
  EXPECT_EQ(Call("fs.read", {{"path", "in.txt"}}).content, "in\n");
  EXPECT_EQ(no.asked.size(), 1u);
}

TEST_F(ToolsTest, AProgramOffTheAllowlistRunsOnlyWithAPersonsApproval) {
  RecordingPerson yes(true), no(false);
  ctx_.consent = &no;
  ToolResult r = Call("shell.run", {{"argv", {"echo", "hi"}}});
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("a person denied running it"));
  ASSERT_EQ(no.asked.size(), 1u);
  EXPECT_EQ(no.asked[0].kind, ConsentKind::kCommandNotAllowed);
  EXPECT_EQ(no.asked[0].details.at("argv"), R"(["echo","hi"])") << "argv as a list, not a line";
  ctx_.consent = &yes;
  r = Call("shell.run", {{"argv", {"echo", "hi"}}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("hi"));
  // Paths and environment assignments are refused without asking anyone.
  r = Call("shell.run", {{"argv", {"/bin/echo", "hi"}}});
  EXPECT_TRUE(r.error);
  r = Call("shell.run", {{"command", "X=1 echo hi"}});
  EXPECT_TRUE(r.error);
  EXPECT_EQ(yes.asked.size(), 1u);
}

TEST_F(ToolsTest, PathsThatLeaveTheWorkspaceAreRefused) {
  WriteFile(dir_.Join("secret"), "outside");
  ASSERT_EQ(symlink("/etc", dir_.Join("ws/etc").c_str()), 0);
  ASSERT_EQ(symlink(dir_.path().c_str(), dir_.Join("ws/up").c_str()), 0);
  mkdir(dir_.Join("ws/sub").c_str(), 0755);
  for (const char* path : {"../secret", "/etc/passwd", "etc/passwd", "up/secret",
                           "sub/../../secret", "sub/../../ws/../secret"}) {
    ToolResult r = Call("fs.read", {{"path", path}});
    EXPECT_TRUE(r.error) << path;
    EXPECT_THAT(r.content, HasSubstr("outside the workspace")) << path;
  }
  // Nor may anything be written through them.
  for (const char* path : {"../planted", "up/planted", "etc/planted", "/tmp/planted"}) {
    ToolResult r = Call("fs.write", {{"path", path}, {"content", "x"}});
    EXPECT_TRUE(r.error) << path << ": " << r.content;
  }
  EXPECT_NE(access(dir_.Join("planted").c_str(), F_OK), 0);
  // What stays inside is fine, `..` included.
  WriteFile(dir_.Join("ws/inside.txt"), "ok");
  ToolResult r = Call("fs.read", {{"path", "sub/../inside.txt"}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_EQ(r.content, "ok");
}

TEST_F(ToolsTest, WriteReadEditListAndSearch) {
  ToolResult w =
      Call("fs.write", {{"path", "src/lib/a.py"}, {"content", "def f():\n    return 1\n"}});
  ASSERT_FALSE(w.error) << w.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/src/lib/a.py")), "def f():\n    return 1\n");
  EXPECT_EQ(Call("fs.read", {{"path", "src/lib/a.py"}, {"offset", 2}, {"limit", 1}}).content,
            "    return 1\n");
  ToolResult e = Call(
      "fs.edit", {{"path", "src/lib/a.py"}, {"old_text", "return 1"}, {"new_text", "return 2"}});
  EXPECT_FALSE(e.error) << e.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/src/lib/a.py")), "def f():\n    return 2\n");
  // No match, or more than one: refused, and the file is left as it was.
  ToolResult none =
      Call("fs.edit", {{"path", "src/lib/a.py"}, {"old_text", "return 9"}, {"new_text", "x"}});
  EXPECT_TRUE(none.error);
  EXPECT_THAT(none.content, HasSubstr("does not occur"));
  ToolResult twice = Call("fs.write", {{"path", "twice.txt"}, {"content", "ab ab"}});
  ASSERT_FALSE(twice.error) << twice.content;
  ToolResult many = Call("fs.edit", {{"path", "twice.txt"}, {"old_text", "ab"}, {"new_text", "x"}});
  EXPECT_TRUE(many.error);
  EXPECT_THAT(many.content, HasSubstr("occurs 2 times"));
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/twice.txt")), "ab ab");
  // A script stays executable through an edit (which replaces the file); a FIFO is
  // refused, not waited on.
  ToolResult script = Call("fs.write", {{"path", "run.sh"}, {"content", "echo 1\n"}});
  ASSERT_FALSE(script.error) << script.content;
  ASSERT_EQ(chmod(dir_.Join("ws/run.sh").c_str(), 0755), 0);
  ToolResult edited = Call("fs.edit", {{"path", "run.sh"}, {"old_text", "1"}, {"new_text", "2"}});
  EXPECT_FALSE(edited.error) << edited.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/run.sh")), "echo 2\n") << "the edit did not happen";
  struct stat st {};
  ASSERT_EQ(stat(dir_.Join("ws/run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(mkfifo(dir_.Join("ws/pipe").c_str(), 0600), 0);
  EXPECT_THAT(Call("fs.read", {{"path", "pipe"}}).content, HasSubstr("not a regular file"));
  ASSERT_EQ(unlink(dir_.Join("ws/run.sh").c_str()), 0);
  ASSERT_EQ(unlink(dir_.Join("ws/pipe").c_str()), 0);
  EXPECT_EQ(Call("fs.list", {{"recursive", true}}).content,
            "src/\nsrc/lib/\nsrc/lib/a.py\ntwice.txt");
  EXPECT_EQ(Call("fs.search", {{"text", "return 2"}}).content, "src/lib/a.py:2:     return 2\n");
}

TEST_F(ToolsTest, BadCallsComeBackAsErrorsTheModelCanRead) {
  ToolResult unknown = box_.Call("fs.delete", "{}", ctx_);
  EXPECT_TRUE(unknown.error);
  EXPECT_THAT(unknown.content, HasSubstr("no tool named \"fs.delete\""));
  ToolResult not_json = box_.Call("fs.read", "{\"path\": ", ctx_);
  EXPECT_TRUE(not_json.error);
  EXPECT_THAT(not_json.content, HasSubstr("not valid JSON"));
  ToolResult missing = Call("fs.read", json::object());
  EXPECT_THAT(missing.content, HasSubstr("argument \"path\" is required"));
  ToolResult wrong = Call("fs.read", {{"path", 3}});
  EXPECT_THAT(wrong.content, HasSubstr("argument \"path\" must be string"));
  ToolResult extra = Call("fs.read", {{"path", "a"}, {"mode", "x"}});
  EXPECT_THAT(extra.content, HasSubstr("unknown argument \"mode\""));
  EXPECT_EQ(box_.Find("message"), nullptr) << "daemon tools are not built in";
}

TEST_F(ToolsTest, CommandLinesAreSplitWithoutAShellAndShellSyntaxIsRefused) {
  absl::StatusOr<std::vector<std::string>> argv = ParseCommand("ls -la 'a b' \"c d\" e\\ f");
  ASSERT_TRUE(argv.ok());
  EXPECT_THAT(*argv, ::testing::ElementsAre("ls", "-la", "a b", "c d", "e f"));
  for (const char* bad : {"ls; rm -rf /", "cat a | sh", "echo $(id)", "echo `id`", "ls > out",
                          "ls && rm x", "cat \"$HOME\"", "ls *"}) {
    EXPECT_FALSE(ParseCommand(bad).ok()) << bad;
  }
  for (const char* refused : {"rm -rf /", "A=1 ls", "/bin/ls", "env ls", "bash -c ls"}) {
    ToolResult r = Call("shell.run", {{"command", refused}});
    EXPECT_TRUE(r.error) << refused;
    EXPECT_THAT(r.content, HasSubstr("shell.run:")) << refused;
  }
  EXPECT_THAT(Call("shell.run", {{"command", "rm -rf /"}}).content,
              HasSubstr("\"rm\" is not an allowed program"));
}

TEST_F(ToolsTest, AnAllowedProgramRunsInTheWorkspaceWithoutTheAgentsSecrets) {
  setenv("OPENAI_API_KEY", "sk-test-never-shown", 1);
  WriteFile(dir_.Join("ws/hello.txt"), "hi");
  ToolResult ls = Call("shell.run", {{"argv", {"ls"}}});
  EXPECT_FALSE(ls.error) << ls.content;
  EXPECT_EQ(ls.content, "exit code 0\nhello.txt\n");
  ToolResult env = Call("shell.run", {{"argv", {"printenv"}}});
  EXPECT_THAT(env.content, HasSubstr("PATH="));
  EXPECT_THAT(env.content, ::testing::Not(HasSubstr("sk-test-never-shown")));
  ToolResult fails = Call("shell.run", {{"argv", {"false"}}});
  EXPECT_FALSE(fails.error) << "a failing program is a result, not a tool error";
  EXPECT_THAT(fails.content, HasSubstr("exit code 1"));
  unsetenv("OPENAI_API_KEY");
}

TEST_F(ToolsTest, TimeoutsAndOutputCapsHold) {
  absl::Time start = absl::Now();
  ToolResult slow = Call("shell.run", {{"argv", {"sleep", "30"}}, {"timeout_seconds", 1}});
  EXPECT_TRUE(slow.error);
  EXPECT_THAT(slow.content, HasSubstr("timed out after 1s: killed"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15)) << "did not wait for the program";
  // A program that closes its output and goes on running is still held to the timeout.
  shell_.allow.push_back("sh");
  start = absl::Now();
  ToolResult quiet = Call(
      "shell.run", {{"argv", {"sh", "-c", "exec >&- 2>&-; sleep 30"}}, {"timeout_seconds", 1}});
  EXPECT_THAT(quiet.content, HasSubstr("timed out"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  shell_.output_cap = 1000;
  ToolResult loud = Call("shell.run", {{"command", "head -c 200000 /dev/zero"}});
  EXPECT_THAT(loud.content, HasSubstr("(output: the last 1000 of 200000 bytes)"));
  EXPECT_LE(loud.content.size(), 1100u);
}

// A product guarantee that holds on every machine: "required" refuses to run a program
// unsandboxed when bubblewrap is not there, and the program does not run.
TEST_F(ToolsTest, TheRequiredSandboxRefusesToRunWithoutBwrap) {
  shell_.sandbox = "required";
  shell_.bwrap = dir_.Join("no-such-bwrap");
  ToolResult r = Call("shell.run", {{"argv", {"touch", "ran-anyway"}}});
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("sandbox is required"));
  EXPECT_NE(access(dir_.Join("ws/ran-anyway").c_str(), F_OK), 0) << "it ran unsandboxed";
}

TEST_F(ToolsTest, TheSandboxHasNoNetworkAndAReadOnlySystem) {
  if (FindProgram(shell_.bwrap).empty()) {
    GTEST_SKIP() << "no bubblewrap on PATH (Debian: apt-get install bubblewrap)";
  }
  // bwrap that cannot make namespaces here (a container without user namespaces) cannot
  // sandbox anything; what the tool asks of it is then not in question.
  agentd::testing::RunResult probe = agentd::testing::RunCommand(
      {FindProgram(shell_.bwrap), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
       "--unshare-net", "--unshare-pid", "--unshare-ipc", "--", "/bin/true"});
  if (probe.exit_code != 0) {
    GTEST_SKIP() << shell_.bwrap << " cannot make a sandbox on this machine: " << probe.err;
  }
  shell_.sandbox = "required";
  std::vector<std::string> unchecked;  // what this machine cannot show, said at the end

  // Files outside the workspace and the system's folders are not there at all.
  WriteFile(dir_.Join("outside.txt"), "private");
  ToolResult peek = Call("shell.run", {{"argv", {"cat", dir_.Join("outside.txt")}}});
  EXPECT_THAT(peek.content, ::testing::Not(HasSubstr("private")));
  EXPECT_THAT(peek.content, ::testing::Not(HasSubstr("exit code 0")));
  // The workspace is writable…
  ToolResult inside = Call("shell.run", {{"argv", {"touch", "made-here"}}});
  EXPECT_THAT(inside.content, HasSubstr("exit code 0"));
  EXPECT_EQ(access(dir_.Join("ws/made-here").c_str(), F_OK), 0);
  // …the system is not. That shows only where this user could write it unsandboxed.
  if (access("/usr", W_OK) == 0) {
    ToolResult outside = Call("shell.run", {{"argv", {"touch", "/usr/agentd-sandbox-test"}}});
    EXPECT_THAT(outside.content, ::testing::Not(HasSubstr("exit code 0")));
    EXPECT_NE(access("/usr/agentd-sandbox-test", F_OK), 0);
    unlink("/usr/agentd-sandbox-test");
  } else {
    unchecked.push_back("that /usr is read-only (this user cannot write it anyway: not root)");
  }

  // No network: the only interface is the loopback.
  ToolResult net = Call("shell.run", {{"argv", {"cat", "/proc/net/dev"}}});
  EXPECT_FALSE(net.error) << net.content;
  ASSERT_THAT(net.content, HasSubstr("exit code 0\n")) << net.content;
  EXPECT_EQ(Interfaces(net.content), std::set<std::string>{"lo"}) << net.content;
  std::set<std::string> host = Interfaces(ReadFileOrEmpty("/proc/net/dev"));
  if (host.size() <= 1) {
    unchecked.push_back(
        absl::StrCat("that the network is taken away (this machine has no "
                     "interface but ",
                     absl::StrJoin(host, ", "), ")"));
  }
  if (!unchecked.empty()) {
    GTEST_SKIP() << "everything else held; not shown here: " << absl::StrJoin(unchecked, "; ");
  }
}

}  // namespace
}  // namespace agentd::tools

namespace agentd::tools {
namespace {

TEST_F(ToolsTest, GitCommitCheckpointAndRollback) {
  box_ = ToolBox::ForRole(
      {"fs.write", "git.status", "git.diff", "git.commit", "git.checkpoint", "git.rollback"});
  ASSERT_EQ(agentd::testing::RunCommand({"git", "init", "-q", dir_.Join("ws")}).exit_code, 0);
  Call("fs.write", {{"path", "a.txt"}, {"content", "one\n"}});
  ToolResult commit = Call("git.commit", {{"message", "first"}});
  ASSERT_FALSE(commit.error) << commit.content;
  EXPECT_THAT(commit.content, HasSubstr("committed "));
  std::string head =
      agentd::testing::RunCommand({"git", "-C", dir_.Join("ws"), "rev-parse", "HEAD"}).out;
  EXPECT_THAT(Call("git.commit", {{"message", "again"}}).content, HasSubstr("nothing committed"));

  Call("fs.write", {{"path", "a.txt"}, {"content", "two\n"}});
  EXPECT_THAT(Call("git.status", json::object()).content, HasSubstr(" M a.txt"));
  EXPECT_THAT(Call("git.diff", json::object()).content, HasSubstr("+two"));
  ToolResult ck = Call("git.checkpoint", {{"name", "before-refactor"}});
  ASSERT_FALSE(ck.error) << ck.content;
  // After the checkpoint: a change, and a new file.
  Call("fs.write", {{"path", "a.txt"}, {"content", "three\n"}});
  Call("fs.write", {{"path", "new/b.txt"}, {"content", "b\n"}});
  ToolResult rb = Call("git.rollback", {{"name", "before-refactor"}});
  ASSERT_FALSE(rb.error) << rb.content;
  EXPECT_THAT(rb.content, HasSubstr("removed 1 file(s)"));
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/a.txt")), "two\n");
  EXPECT_NE(access(dir_.Join("ws/new/b.txt").c_str(), F_OK), 0);
  // Neither the branch nor the staging area moved.
  EXPECT_EQ(agentd::testing::RunCommand({"git", "-C", dir_.Join("ws"), "rev-parse", "HEAD"}).out,
            head);
  EXPECT_EQ(
      agentd::testing::RunCommand({"git", "-C", dir_.Join("ws"), "diff", "--cached", "--name-only"})
          .out,
      "");
  EXPECT_TRUE(Call("git.rollback", {{"name", "nope"}}).error);
  EXPECT_TRUE(Call("git.checkpoint", {{"name", "../x"}}).error);
}

}  // namespace
}  // namespace agentd::tools

namespace agentd::tools {
namespace {

TEST_F(ToolsTest, TestsRunCountsARealPytestProject) {
  if (!OnPath("pytest")) {
    GTEST_SKIP() << "no pytest on PATH (Debian: apt-get install python3-pytest)";
  }
  box_ = ToolBox::ForRole({"tests.run"});
  WriteFile(dir_.Join("ws/pytest.ini"), "[pytest]\n");
  WriteFile(dir_.Join("ws/test_math.py"),
            "import pytest\n"
            "def test_add():\n    assert 1 + 1 == 2\n"
            "def test_mul():\n    assert 2 * 3 == 6\n"
            "def test_broken():\n    assert 2 - 1 == 0\n"
            "@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n");
  ToolResult r = Call("tests.run", json::object());
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("2 passed, 1 failed, 1 skipped (pytest)"));
  EXPECT_THAT(r.content, HasSubstr("failing: test_math.test_broken"));
  EXPECT_NE(access(dir_.Join("ws/.agentd-junit.xml").c_str(), F_OK), 0) << "report left behind";
}

TEST_F(ToolsTest, TestsRunCountsARealCtestTree) {
  if (!OnPath("ctest")) GTEST_SKIP() << "no ctest on PATH (Debian: apt-get install cmake)";
  box_ = ToolBox::ForRole({"tests.run"});
  mkdir(dir_.Join("ws/build").c_str(), 0755);
  // What CMake writes for add_test(): ctest reads it as it is.
  WriteFile(dir_.Join("ws/build/CTestTestfile.cmake"),
            "add_test(passes \"/bin/true\")\n"
            "add_test(also_passes \"/bin/true\")\n"
            "add_test(fails \"/bin/false\")\n");
  ToolResult r = Call("tests.run", json::object());
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("2 passed, 1 failed, 0 skipped (ctest)"));
  EXPECT_THAT(r.content, HasSubstr("failing: "));
  EXPECT_THAT(r.content, HasSubstr("fails"));
}

TEST_F(ToolsTest, TestsRunSaysWhenThereAreNoTests) {
  box_ = ToolBox::ForRole({"tests.run"});
  ToolResult r = Call("tests.run", json::object());
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("no tests found"));
}

TEST(JunitTest, CountsCasesByWhatTheyHold) {
  absl::StatusOr<TestCounts> c = ParseJunit(R"(<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="4">
  <testcase classname="a.B" name="ok" time="0.1"/>
  <testcase classname="a.B" name="bad &amp; sad"><failure message="x">trace</failure></testcase>
  <testcase name="crash"><error message="boom"/></testcase>
  <testcase classname="a.B" name="later"><skipped/></testcase>
  <testcase classname="a.B" name="ok2"><system-out>hi</system-out></testcase>
</testsuite></testsuites>)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->passed, 2);
  EXPECT_EQ(c->failed, 2);
  EXPECT_EQ(c->skipped, 1);
  EXPECT_THAT(c->failing, ::testing::ElementsAre("a.B.bad & sad", "crash"));
  EXPECT_FALSE(ParseJunit("<testsuites/>").ok());
  EXPECT_FALSE(ParseJunit("<testcase name=\"x\"><failure>").ok());
}

}  // namespace
}  // namespace agentd::tools

// Containment (issue 12): what a hostile model or workspace must not get through the
// tools — git's config-driven programs, writes into .git, special files — and the
// sandbox policy as it is set.
namespace agentd::tools {
namespace {

using ::agentd::testing::RunCommand;

// Whether bubblewrap makes a sandbox on this machine (the agent's own probe).
bool SandboxWorks() { return ProbeSandbox().works; }

// Runs `fn` on a thread of its own and waits up to `limit` for it. When it does not end
// in time, `unblock` is called (to free what it waits on) before the thread is joined, and
// false is returned: the caller fails the test rather than hanging with it.
bool EndsWithin(absl::Duration limit, const std::function<void()>& fn,
                const std::function<void()>& unblock) {
  std::packaged_task<void()> task(fn);
  std::future<void> done = task.get_future();
  std::thread t(std::move(task));
  bool ended = done.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(limit))) ==
               std::future_status::ready;
  if (!ended) unblock();
  t.join();
  return ended;
}

// A script that, if anything ever runs it, leaves a mark both in the workspace (which a
// sandboxed program could write) and beside it (which only an unconfined one could).
std::string PlantScript(const TempDir& dir, const std::string& name) {
  std::string path = dir.Join(name);
  WriteFile(path, absl::StrCat("#!/bin/sh\necho \"$0 $*\" >> ", dir.Join("ran-outside.log"),
                               "\necho \"$0 $*\" >> ", dir.Join("ws/ran-inside.log"), "\ncat\n"));
  chmod(path.c_str(), 0755);
  return path;
}

TEST_F(ToolsTest, ToolsNeverWriteGitNorThroughASymlink) {
  ASSERT_EQ(RunCommand({"git", "init", "-q", dir_.Join("ws")}).exit_code, 0);
  std::string config = ReadFileOrEmpty(dir_.Join("ws/.git/config"));
  for (const char* path :
       {".git/config", ".GIT/config", "./.git/hooks/pre-commit", "sub/../.git/config", ".Git"}) {
    ToolResult w = Call("fs.write", {{"path", path}, {"content", "[core]\nfsmonitor = ./x\n"}});
    EXPECT_TRUE(w.error) << path << ": " << w.content;
    EXPECT_THAT(w.content, HasSubstr(".git")) << path;
  }
  EXPECT_TRUE(
      Call("fs.edit", {{"path", ".git/config"}, {"old_text", "[core]"}, {"new_text", "x"}}).error);
  // A symlink to .git (made by a program, or found in the workspace) carries no write.
  ASSERT_EQ(symlink(".git", dir_.Join("ws/foo").c_str()), 0);
  ToolResult via = Call("fs.write", {{"path", "foo/config"}, {"content", "evil"}});
  EXPECT_TRUE(via.error);
  EXPECT_THAT(via.content, HasSubstr("symlink"));
  ToolResult mk = Call("fs.write", {{"path", "foo/hooks/new"}, {"content", "evil"}});
  EXPECT_TRUE(mk.error) << mk.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/.git/config")), config);
  EXPECT_NE(access(dir_.Join("ws/.git/hooks/new").c_str(), F_OK), 0);
  // Reads are not writes: the config can be looked at.
  EXPECT_FALSE(Call("fs.read", {{"path", ".git/config"}}).error);
  // A worktree's .git is a file: it is refused as well.
  ASSERT_EQ(unlink(dir_.Join("ws/foo").c_str()), 0);
  EXPECT_TRUE(Call("fs.write", {{"path", ".git"}, {"content", "gitdir: /tmp\n"}}).error);
}

TEST_F(ToolsTest, ASandboxedProgramCannotWriteGit) {
  if (!SandboxWorks()) GTEST_SKIP() << "bubblewrap makes no sandbox here: " << ProbeSandbox().why;
  shell_.sandbox = "required";
  shell_.allow.push_back("sh");
  ASSERT_EQ(RunCommand({"git", "init", "-q", dir_.Join("ws")}).exit_code, 0);
  std::string config = ReadFileOrEmpty(dir_.Join("ws/.git/config"));
  ToolResult r = Call("shell.run", {{"argv",
                                     {"sh", "-c",
                                      "printf '[core]\\n\\tfsmonitor = ./x\\n' >> "
                                      ".git/config; touch .git/hooks/pre-commit x"}}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("Read-only file system")) << r.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/.git/config")), config);
  EXPECT_NE(access(dir_.Join("ws/.git/hooks/pre-commit").c_str(), F_OK), 0);
  EXPECT_EQ(access(dir_.Join("ws/x").c_str(), F_OK), 0) << "the rest of the workspace is writable";
  // Nor can it swap .git for a directory of its own, or remove it.
  r = Call("shell.run", {{"argv", {"sh", "-c", "mv .git g2 || rm -rf .git; ls -d .git"}}});
  EXPECT_THAT(r.content, HasSubstr("exit code 0")) << r.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/.git/config")), config);
}

TEST_F(ToolsTest, GitRunsNothingAHostileRepositoryNames) {
  ASSERT_EQ(RunCommand({"git", "init", "-q", dir_.Join("ws")}).exit_code, 0);
  std::string evil = PlantScript(dir_, "evil.sh");
  // Every setting that makes git run a program, and hooks in the default place too.
  std::string ws = dir_.Join("ws");
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"core.fsmonitor", evil},
                                                        {"core.hooksPath", dir_.Join("hooks")},
                                                        {"core.pager", evil},
                                                        {"pager.diff", evil},
                                                        {"pager.status", evil},
                                                        {"diff.external", evil},
                                                        {"diff.evil.textconv", evil},
                                                        {"diff.evil.command", evil},
                                                        {"filter.evil.clean", evil},
                                                        {"filter.evil.smudge", evil},
                                                        {"filter.evil.required", "true"},
                                                        {"commit.gpgSign", "true"},
                                                        {"gpg.program", evil},
                                                        {"core.sshCommand", evil},
                                                        {"core.editor", evil},
                                                        {"alias.status", "!" + evil}}) {
    ASSERT_EQ(RunCommand({"git", "-C", ws, "config", key, value}).exit_code, 0) << key;
  }
  mkdir(dir_.Join("hooks").c_str(), 0755);
  for (const char* hook : {"pre-commit", "commit-msg", "post-commit", "prepare-commit-msg",
                           "reference-transaction", "post-index-change", "post-checkout"}) {
    symlink(evil.c_str(), dir_.Join(absl::StrCat("hooks/", hook)).c_str());
    symlink(evil.c_str(), dir_.Join(absl::StrCat("ws/.git/hooks/", hook)).c_str());
  }
  WriteFile(dir_.Join("ws/.gitattributes"), "* filter=evil diff=evil\n");
  box_ = ToolBox::ForRole(
      {"fs.write", "git.status", "git.diff", "git.commit", "git.checkpoint", "git.rollback"});
  Call("fs.write", {{"path", "a.txt"}, {"content", "one\n"}});
  ToolResult commit = Call("git.commit", {{"message", "first"}});
  EXPECT_FALSE(commit.error) << commit.content;
  Call("fs.write", {{"path", "a.txt"}, {"content", "two\n"}});
  ToolResult status = Call("git.status", json::object());
  EXPECT_THAT(status.content, HasSubstr(" M a.txt"));
  ToolResult diff = Call("git.diff", json::object());
  EXPECT_THAT(diff.content, HasSubstr("+two"));
  EXPECT_FALSE(Call("git.checkpoint", {{"name", "c1"}}).error);
  Call("fs.write", {{"path", "a.txt"}, {"content", "three\n"}});
  ToolResult rb = Call("git.rollback", {{"name", "c1"}});
  EXPECT_FALSE(rb.error) << rb.content;
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/a.txt")), "two\n");
  EXPECT_FALSE(Call("git.commit", {{"message", "second"}}).error);
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ran-outside.log")), "") << "ran unconfined";
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ws/ran-inside.log")), "") << "ran in the sandbox";
}

TEST_F(ToolsTest, GitToolsWorkInAWorktreeWhoseGitFileProgramsCannotRewrite) {
  std::string repo = dir_.Join("repo");
  ASSERT_EQ(RunCommand({"sh", "-c",
                        absl::StrCat("git init -q -b main ", repo, " && cd ", repo,
                                     " && echo a > a.txt && git add . && git -c user.name=t -c "
                                     "user.email=t@t commit -qm base && git worktree add -q -b "
                                     "agentd/g-1 ",
                                     dir_.Join("wt"))})
                .exit_code,
            0);
  auto wt = Workspace::Open(dir_.Join("wt"));
  ASSERT_TRUE(wt.ok()) << wt.status();
  ctx_.workspace = wt->get();
  shell_.allow.push_back("sh");
  box_ = ToolBox::ForRole({"fs.write", "shell.run", "git.status", "git.commit", "git.checkpoint"});
  std::string git_file = ReadFileOrEmpty(dir_.Join("wt/.git"));
  ASSERT_THAT(git_file, HasSubstr("gitdir: "));
  EXPECT_TRUE(Call("fs.write", {{"path", ".git"}, {"content", "gitdir: /tmp\n"}}).error);
  if (SandboxWorks()) {
    Call("shell.run", {{"argv", {"sh", "-c", "echo 'gitdir: /tmp' > .git"}}});
    EXPECT_EQ(ReadFileOrEmpty(dir_.Join("wt/.git")), git_file);
  }
  Call("fs.write", {{"path", "b.txt"}, {"content", "b\n"}});
  ToolResult commit = Call("git.commit", {{"message", "add b"}});
  EXPECT_FALSE(commit.error) << commit.content;
  EXPECT_FALSE(Call("git.checkpoint", {{"name", "c"}}).error);
  EXPECT_THAT(RunCommand({"git", "-C", repo, "log", "--oneline", "agentd/g-1"}).out,
              HasSubstr("add b"));
  // A .git file that names a directory that is no worktree's is refused, not followed.
  unlink(dir_.Join("wt/.git").c_str());
  WriteFile(dir_.Join("wt/.git"), absl::StrCat("gitdir: ", dir_.Join("repo"), "\n"));
  ToolResult odd = Call("git.status", json::object());
  EXPECT_TRUE(odd.error);
  EXPECT_THAT(odd.content, HasSubstr("does not name a worktree"));
}

// A bwrap that fails the way it does in a chroot, found first on PATH.
class BrokenBwrap {
 public:
  explicit BrokenBwrap(const TempDir& dir) : old_(std::getenv("PATH")) {
    mkdir(dir.Join("fakebin").c_str(), 0755);
    WriteFile(dir.Join("fakebin/bwrap"),
              "#!/bin/sh\necho 'bwrap: Failed to make / slave: Invalid argument' >&2\nexit 1\n");
    chmod(dir.Join("fakebin/bwrap").c_str(), 0755);
    setenv("PATH", absl::StrCat(dir.Join("fakebin"), ":", old_).c_str(), 1);
  }
  ~BrokenBwrap() { setenv("PATH", old_.c_str(), 1); }

 private:
  std::string old_;
};

TEST_F(ToolsTest, TheProbeFindsBwrapOnPathAndTriesIt) {
  {
    BrokenBwrap broken(dir_);
    SandboxProbe p = ProbeSandbox();
    EXPECT_FALSE(p.works);
    EXPECT_EQ(p.bwrap, dir_.Join("fakebin/bwrap"));
    EXPECT_THAT(p.why, HasSubstr("Failed to make / slave"));
  }
  SandboxProbe none = ProbeSandbox("no-such-bwrap-anywhere");
  EXPECT_FALSE(none.works);
  EXPECT_THAT(none.why, HasSubstr("not on PATH"));
  if (FindProgram("bwrap").empty()) GTEST_SKIP() << "no bubblewrap on PATH to try for real";
  SandboxProbe real = ProbeSandbox();
  if (!real.works) GTEST_SKIP() << "bubblewrap makes no sandbox here: " << real.why;
  EXPECT_EQ(real.bwrap, FindProgram("bwrap"));
}

TEST_F(ToolsTest, AutoFallsBackLoudlyAndRequiredFailsClosed) {
  ASSERT_EQ(RunCommand({"git", "init", "-q", dir_.Join("ws")}).exit_code, 0);
  box_ = ToolBox::ForRole({"shell.run", "git.status", "tests.run"});
  shell_.test_command = {"ls"};
  shell_.sandbox_broken = "bwrap: Failed to make / slave: Invalid argument";
  shell_.sandbox = "auto";
  for (const char* tool : {"shell.run", "git.status", "tests.run"}) {
    ToolResult r =
        Call(tool, std::string(tool) == "shell.run" ? json{{"argv", {"ls"}}} : json::object());
    EXPECT_FALSE(r.error) << tool << ": " << r.content;
    EXPECT_THAT(r.content, HasSubstr("NOT SANDBOXED: the sandbox does not work on this machine: "
                                     "bwrap: Failed to make / slave"))
        << tool;
  }
  shell_.sandbox = "required";
  for (const char* tool : {"shell.run", "git.status", "tests.run"}) {
    ToolResult r = Call(
        tool, std::string(tool) == "shell.run" ? json{{"argv", {"touch", "ran"}}} : json::object());
    EXPECT_TRUE(r.error) << tool << ": " << r.content;
    EXPECT_THAT(r.content, HasSubstr("policy.shell.sandbox is required")) << tool;
  }
  EXPECT_NE(access(dir_.Join("ws/ran").c_str(), F_OK), 0);
  // Found through PATH, not at a fixed place: a broken one there is what is tried.
  shell_.sandbox_broken.clear();
  shell_.sandbox = "auto";
  BrokenBwrap broken(dir_);
  ToolResult r = Call("shell.run", {{"argv", {"ls"}}});
  EXPECT_THAT(r.content, HasSubstr("Failed to make / slave")) << r.content;
  // "off" is a person's choice: programs run unconfined and nothing is said.
  shell_.sandbox = "off";
  r = Call("shell.run", {{"argv", {"ls"}}});
  EXPECT_THAT(r.content, HasSubstr("exit code 0"));
  EXPECT_THAT(r.content, ::testing::Not(HasSubstr("SANDBOX")));
}

TEST_F(ToolsTest, SpecialFilesAreNeverReadAndNeverHangATool) {
  ASSERT_EQ(mkfifo(dir_.Join("ws/pipe").c_str(), 0644), 0);
  ASSERT_EQ(mkfifo(dir_.Join("ws/pytest.ini").c_str(), 0644), 0);
  WriteFile(dir_.Join("ws/big.txt"), std::string(300 << 10, 'x'));
  box_ = ToolBox::ForRole({"fs.read", "fs.edit", "fs.search", "tests.run"});
  // A writer frees whatever blocks on a FIFO's open, should a tool hang on one.
  auto unblock = [&] {
    for (const char* f : {"ws/pipe", "ws/pytest.ini"}) {
      int fd = open(dir_.Join(f).c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) close(fd);
    }
  };
  ToolResult read, edit, search, tests;
  ASSERT_TRUE(EndsWithin(
      absl::Seconds(20),
      [&] {
        read = Call("fs.read", {{"path", "pipe"}});
        edit = Call("fs.edit", {{"path", "pipe"}, {"old_text", "a"}, {"new_text", "b"}});
        search = Call("fs.search", {{"text", "needle"}});
        tests = Call("tests.run", json::object());
      },
      unblock))
      << "a tool blocked on a FIFO";
  EXPECT_TRUE(read.error);
  EXPECT_THAT(read.content, HasSubstr("is a FIFO, not a regular file"));
  EXPECT_TRUE(edit.error);
  EXPECT_THAT(search.content, HasSubstr("no line contains"));
  EXPECT_TRUE(tests.error);
  EXPECT_THAT(tests.content, HasSubstr("pytest.ini is a FIFO"));
  // Bounded: a large file is cut at the cap.
  absl::StatusOr<FileData> big = ws_->ReadFile("big.txt", 1000);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->bytes.size(), 1000u);
  EXPECT_TRUE(big->truncated);
  absl::StatusOr<FileData> dir = ws_->ReadFile("", 1000);
  EXPECT_FALSE(dir.ok());
}

TEST_F(ToolsTest, AJunitReportThatIsAFifoDoesNotHangTestsRun) {
  if (FindProgram("pytest").empty()) GTEST_SKIP() << "no pytest on PATH";
  box_ = ToolBox::ForRole({"tests.run"});
  // The project's own hook, run after pytest wrote its report, puts a FIFO in its place.
  WriteFile(dir_.Join("ws/conftest.py"),
            "import os\n"
            "def pytest_unconfigure(config):\n"
            "    path = config.option.xmlpath\n"
            "    if path:\n"
            "        os.unlink(path)\n"
            "        os.mkfifo(path)\n");
  WriteFile(dir_.Join("ws/test_a.py"), "def test_a():\n    assert True\n");
  std::string report = dir_.Join("ws/.agentd-junit.xml");
  ToolResult r;
  ASSERT_TRUE(EndsWithin(
      absl::Seconds(20), [&] { r = Call("tests.run", json::object()); },
      [&] {
        int fd = open(report.c_str(), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) close(fd);
      }))
      << "tests.run blocked on the FIFO report";
  EXPECT_THAT(r.content, HasSubstr("pytest: exit code 0")) << r.content;
  EXPECT_NE(access(report.c_str(), F_OK), 0) << "the planted report is removed";
}

}  // namespace
}  // namespace agentd::tools
