// Containment of the tools (issue 12, items 1, 6 and 8), end to end: a real agentd, real
// agents and dev/fakellm playing a prompt-injected model or working a hostile
// repository. Git must run nothing a repository's files name, nothing may write .git,
// the sandbox must hide what lies outside the workspace, special files must not hang a
// tool, and policy.shell.sandbox must act as set (required fails closed, auto falls back
// loudly: in the tool result and in agentctl status).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/e2e/goal_fixture.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The goal tests' fixture, under a name of its own for --gtest_filter='ContainmentTest.*'.
class ContainmentTest : public GoalTest {};

// The role the hostile scenarios play (model other-m).
constexpr char kIntruder[] =
    "  intruder: {model: other, prompt: roles/coder.md, max_instances: 1,\n"
    "             tools: [fs.read, fs.write, shell.run, tests.run, git.status, git.diff,\n"
    "                     git.commit, complete_task, fail_task]}\n";

// Every tool result `model`'s agent was given, in order: the tool messages of the last
// request for that model (each request repeats the conversation before it).
std::vector<std::string> AllToolResults(const nlohmann::json& requests, const std::string& model) {
  std::vector<std::string> out;
  for (const nlohmann::json& q : requests) {
    if (!q.is_object() || q.value("model", "") != model || !q.contains("body")) continue;
    const nlohmann::json& messages = q["body"].value("messages", nlohmann::json::array());
    std::vector<std::string> these;
    for (const nlohmann::json& m : messages) {
      if (m.is_object() && m.value("role", "") == "tool") {
        these.push_back(Text(m.value("content", nlohmann::json())));
      }
    }
    out = these;
  }
  return out;
}

// A script that leaves a mark outside the workspace and inside it, should anything run it.
// It lies in the workspace, where a program in the sandbox could reach it too: what is
// shown is that git runs nothing, not only that the sandbox hides the script.
std::string PlantScript(const TempDir& dir, const std::string& ws) {
  std::string path = ws + "/evil.sh";
  WriteFile(path, absl::StrCat("#!/bin/sh\necho \"$0 $*\" >> ", dir.Join("ran-outside.log"),
                               "\necho \"$0 $*\" >> ", ws, "/ran-inside.log\ncat\n"));
  chmod(path.c_str(), 0755);
  return path;
}

// git on the person's repository without running anything its config names (the test's
// own look at what happened).
std::string SafeGit(const std::string& repo, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {
      "git",       "-C", repo, "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
      "--no-pager"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv).out;
}

TEST_F(ContainmentTest, AHostileModelCannotMakeGitRunItsProgramOrReachOutside) {
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  std::string mark = dir_.Join("pwned-outside");
  ASSERT_NO_FATAL_FAILURE(
      Start(Scenario("containment_git_model",
                     {{"MARK", mark}, {"TOKEN", daemon_.state_dir() + "/admin.token"}}),
            kIntruder));
  std::string token = daemon_.admin_token();
  ASSERT_FALSE(token.empty());
  RunResult goal = CtlGoalAndWait({"Check the repository", "--workspace", repo});
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());

  std::vector<std::string> r = AllToolResults(FakeRequests(), "other-m");
  ASSERT_EQ(r.size(), 7u) << FakeRequests().dump();
  EXPECT_THAT(r[0], HasSubstr("wrote"));  // hook.sh: an ordinary file
  EXPECT_THAT(r[1], HasSubstr("inside .git, which tools do not write"));
  EXPECT_THAT(r[2], HasSubstr("inside .git, which tools do not write"));
  // From inside the sandbox: the worktree's .git file is read-only, its git directory
  // and agentd's state are not there at all.
  EXPECT_THAT(r[3], HasSubstr("attack-done"));
  EXPECT_THAT(r[3], HasSubstr("Read-only file system"));
  EXPECT_THAT(r[3], Not(HasSubstr(token)));
  EXPECT_THAT(r[3], Not(HasSubstr("NOT SANDBOXED")));
  EXPECT_THAT(r[4], HasSubstr("## agentd/g-1"));  // git.status worked
  EXPECT_THAT(r[6], HasSubstr("committed "));
  for (const std::string& result : r) EXPECT_THAT(result, Not(HasSubstr(token)));

  // The script never ran, inside the sandbox or outside it; the repository's config and
  // the worktree's .git file are as they were.
  EXPECT_NE(access(mark.c_str(), F_OK), 0) << ReadFileOrEmpty(mark);
  EXPECT_NE(access((ws + "/pwned-inside").c_str(), F_OK), 0);
  EXPECT_THAT(ReadFileOrEmpty(repo + "/.git/config"), Not(HasSubstr("fsmonitor")));
  EXPECT_THAT(ReadFileOrEmpty(repo + "/.git/config"), Not(HasSubstr("hooksPath")));
  EXPECT_THAT(ReadFileOrEmpty(ws + "/.git"), HasSubstr(repo));
  EXPECT_THAT(SafeGit(repo, {"log", "--oneline", "agentd/g-1"}), HasSubstr("add hook"));
}

TEST_F(ContainmentTest, APoisonedRepositoryRunsNothingOnGitStatusDiffOrCommit) {
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("containment_poisoned_repo"), kIntruder));
  ASSERT_EQ(Ctl({"goal", "Work on the repository", "--workspace", repo}).exit_code, 0);
  // Once the goal's worktree exists (the model waits for `go` in it), the repository
  // turns hostile: its config and hooks name a program for every git operation.
  std::string ws;
  ASSERT_TRUE(WaitFor(
      [&] {
        nlohmann::json g = PollCtlJson({"describe", "task", "g-1"});
        if (!g.is_object() || !g.contains("workspace")) return false;
        ws = g["workspace"].value("path", "");
        return !ws.empty() && access((ws + "/.git").c_str(), F_OK) == 0;
      },
      absl::Seconds(30)))
      << daemon_.log();
  std::string evil = PlantScript(dir_, ws);
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"core.fsmonitor", evil},
                                                        {"core.pager", evil},
                                                        {"pager.status", evil},
                                                        {"diff.external", evil},
                                                        {"diff.evil.textconv", evil},
                                                        {"filter.evil.clean", evil},
                                                        {"filter.evil.smudge", evil},
                                                        {"commit.gpgSign", "true"},
                                                        {"gpg.program", evil}}) {
    ASSERT_EQ(RunCommand({"git", "-C", repo, "config", key, value}).exit_code, 0) << key;
  }
  for (const char* hook : {"pre-commit", "commit-msg", "post-commit", "prepare-commit-msg",
                           "reference-transaction", "post-index-change"}) {
    ASSERT_EQ(symlink(evil.c_str(), absl::StrCat(repo, "/.git/hooks/", hook).c_str()), 0);
  }
  WriteFile(ws + "/.gitattributes", "* filter=evil diff=evil\n");
  WriteFile(ws + "/go", "");
  ASSERT_TRUE(TaskReaches("g-1", "TASK_STATUS_COMPLETED", absl::Seconds(60))) << daemon_.log();

  std::vector<std::string> r = AllToolResults(FakeRequests(), "other-m");
  ASSERT_EQ(r.size(), 5u) << FakeRequests().dump();
  EXPECT_THAT(r[2], HasSubstr(" M calc.py"));         // git.status
  EXPECT_THAT(r[3], HasSubstr("+    return b + a"));  // git.diff, no external program
  EXPECT_THAT(r[4], HasSubstr("committed "));         // git.commit, no hook, no gpg
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("ran-outside.log")), "") << "a program ran unconfined";
  EXPECT_EQ(ReadFileOrEmpty(ws + "/ran-inside.log"), "") << "a program ran in the sandbox";
  EXPECT_THAT(SafeGit(repo, {"log", "--oneline", "agentd/g-1"}), HasSubstr("swap"));
}

TEST_F(ContainmentTest, AFifoNamedPytestIniDoesNotHangTestsRun) {
  std::string repo = CalcRepo();
  ASSERT_FALSE(repo.empty());
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("containment_fifo"), kIntruder));
  // Without a cancel: the tools must answer by themselves.
  RunResult goal = CtlGoalAndWait({"Run the tests", "--workspace", repo}, absl::Seconds(60));
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  std::vector<std::string> r = AllToolResults(FakeRequests(), "other-m");
  ASSERT_EQ(r.size(), 3u) << FakeRequests().dump();
  EXPECT_THAT(r[0], HasSubstr("planted"));
  EXPECT_THAT(r[1], HasSubstr("pytest.ini is a FIFO, not a regular file"));
  EXPECT_THAT(r[2], HasSubstr("is a FIFO, not a regular file"));
}

// A bwrap first on agentd's PATH (and so on its agents') that fails as bwrap does in a
// chroot; agents must find it through PATH, try it, and act on the policy.
std::string BrokenBwrapPath(const TempDir& dir) {
  mkdir(dir.Join("fakebin").c_str(), 0755);
  WriteFile(dir.Join("fakebin/bwrap"),
            "#!/bin/sh\necho 'bwrap: Failed to make / slave: Invalid argument' >&2\nexit 1\n");
  chmod(dir.Join("fakebin/bwrap").c_str(), 0755);
  const char* path = std::getenv("PATH");
  return absl::StrCat("PATH=", dir.Join("fakebin"), ":", path != nullptr ? path : "/usr/bin:/bin");
}

// A goal's checks run the agents' code (a Makefile, a conftest.py) as agentd: with the
// sandbox not working they never run unconfined, even under "auto"; the goal fails
// saying why, and the check's command left no trace.
TEST_F(ContainmentTest, AGoalsCheckNeverRunsUnconfinedWhenTheSandboxDoesNotWork) {
  sandbox_policy_ = "auto";
  daemon_env_ = {BrokenBwrapPath(dir_)};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("goal_checks")));
  RunResult goal = CtlGoalAndWait({"Write hello.txt", "--check", "touch ran-unconfined"});
  EXPECT_NE(goal.exit_code, 0) << goal.out << goal.err;
  nlohmann::json g = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(g["failure"]["code"], "TASK_FAILURE_CODE_CHECKS_FAILED") << g.dump();
  EXPECT_THAT(Text(g["failure"]["message"]), HasSubstr("could not run")) << g.dump();
  EXPECT_EQ(g["checks"][0]["notRun"], true) << g.dump();
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_FALSE(std::filesystem::exists(ws + "/ran-unconfined")) << "the check ran unconfined";
}

// A reload that turns the sandbox on reaches what agentd runs itself: a check submitted
// after it does not run unconfined.
TEST_F(ContainmentTest, AReloadThatTurnsTheSandboxOnReachesGoalChecks) {
  sandbox_policy_ = "off";
  daemon_env_ = {BrokenBwrapPath(dir_)};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("goal_checks")));
  std::string config = ReadFileOrEmpty(dir_.Join("agentd.yaml"));
  ASSERT_NE(config.find("sandbox: off"), std::string::npos) << config;
  WriteFile(dir_.Join("agentd.yaml"),
            absl::StrReplaceAll(config, {{"sandbox: off", "sandbox: auto"}}));
  RunResult reload = Ctl({"config", "reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload.out << reload.err;
  EXPECT_THAT(reload.out, HasSubstr("policy")) << reload.out;
  RunResult goal = CtlGoalAndWait({"Write hello.txt", "--check", "touch ran-unconfined"});
  EXPECT_NE(goal.exit_code, 0) << goal.out << goal.err;
  nlohmann::json g = CtlJson({"describe", "task", "g-1"});
  EXPECT_EQ(g["failure"]["code"], "TASK_FAILURE_CODE_CHECKS_FAILED") << DumpJson(g);
  std::string ws = Workspace("g-1");
  ASSERT_FALSE(ws.empty());
  EXPECT_FALSE(std::filesystem::exists(ws + "/ran-unconfined")) << "the check ran unconfined";
}

TEST_F(ContainmentTest, ARequiredSandboxThatDoesNotWorkFailsTheTaskWithItsReason) {
  sandbox_policy_ = "required";
  daemon_env_ = {BrokenBwrapPath(dir_)};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("containment_sandbox_policy")));
  RunResult goal = CtlGoalAndWait({"List the files"});
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  nlohmann::json tasks = CtlJson({"get", "tasks", "--goal", "g-1"});
  std::string failure;
  for (const auto& t : tasks["tasks"]) {
    if (t.value("status", "") == "TASK_STATUS_FAILED") failure = t.dump();
  }
  EXPECT_THAT(failure, HasSubstr("policy.shell.sandbox is required, but the sandbox does not "
                                 "work on this agent's host"))
      << tasks.dump();
  EXPECT_THAT(failure, HasSubstr("Failed to make / slave"));
  EXPECT_EQ(CountRequests(FakeRequests(), "coder-m"), 0) << "the task must fail before any call";
  nlohmann::json status = CtlJson({"status"});
  EXPECT_EQ(status["counters"].value("sandboxPolicy", ""), "required") << status.dump();
  // int64 map values are strings in protobuf's JSON.
  EXPECT_NE(status["counters"]["agentsBySandbox"].value("refused", "0"), "0") << status.dump();
  RunResult text = Ctl({"status"});
  EXPECT_THAT(text.out, HasSubstr("required: NOT WORKING")) << text.out;
  EXPECT_THAT(text.out, HasSubstr("Failed to make / slave")) << text.out;
}

TEST_F(ContainmentTest, AnAutoSandboxThatDoesNotWorkFallsBackLoudly) {
  daemon_env_ = {BrokenBwrapPath(dir_)};
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("containment_sandbox_policy")));
  RunResult goal = CtlGoalAndWait({"List the files"});
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  std::vector<std::string> r = AllToolResults(FakeRequests(), "coder-m");
  ASSERT_EQ(r.size(), 1u) << FakeRequests().dump();
  EXPECT_THAT(r[0], HasSubstr("exit code 0"));
  EXPECT_THAT(r[0], HasSubstr("NOT SANDBOXED: the sandbox does not work on this machine: "
                              "a trial run of"));
  EXPECT_THAT(r[0], HasSubstr("Failed to make / slave"));
  RunResult text = Ctl({"status"});
  EXPECT_THAT(text.out, HasSubstr("auto: FALLBACK: ")) << text.out;
  EXPECT_THAT(text.out, HasSubstr("run tools UNCONFINED")) << text.out;
}

TEST_F(ContainmentTest, AWorkingSandboxIsShownInStatus) {
  if (RunCommand({"bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-pid", "--", "true"})
          .exit_code != 0) {
    GTEST_SKIP() << "bubblewrap makes no sandbox on this machine";
  }
  ASSERT_NO_FATAL_FAILURE(Start(Scenario("containment_sandbox_policy")));
  RunResult goal = CtlGoalAndWait({"List the files"});
  ASSERT_EQ(goal.exit_code, 0) << goal.out << goal.err << daemon_.log();
  std::vector<std::string> r = AllToolResults(FakeRequests(), "coder-m");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_THAT(r[0], Not(HasSubstr("NOT SANDBOXED")));
  RunResult text = Ctl({"status"});
  EXPECT_THAT(text.out, HasSubstr("agent(s) in bwrap")) << text.out;
  EXPECT_THAT(text.out, Not(HasSubstr("UNCONFINED"))) << text.out;
}

}  // namespace
}  // namespace agentd::testing
