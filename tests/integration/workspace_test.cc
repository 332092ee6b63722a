// Which folders a goal may work in, as a person submitting goals with agentctl meets it:
// never one that holds agentd's state, its socket or the home directory (every agent of
// the goal could read it), and never a person's folder turned into a repository unasked.
#include <sys/stat.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

class WorkspaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // No agent at boot: a submitted goal waits for its CEO, which is all these tests need.
    WriteFile(dir_.Join("agentd.yaml"), R"(
providers:
  none: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  m: {provider: none, model: m}
roles:
  ceo: {model: m, tools: [complete_task]}
agents: []
)");
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  }
  RunResult Goal(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket(), "goal",
                                     "tidy up"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  Daemon daemon_{dir_};
};

TEST_F(WorkspaceTest, AFolderThatHoldsTheStateDirectoryIsRefusedSayingWhy) {
  // The test's folder holds state/ (admin.token, agentd.db) and run/ (the socket).
  RunResult r = Goal({"--workspace", dir_.path()});
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_THAT(r.err, HasSubstr("contains agentd's state directory"));
  EXPECT_THAT(r.err, HasSubstr(daemon_.state_dir()));
  RunResult socket_dir = Goal({"--workspace", dir_.Join("run")});
  EXPECT_NE(socket_dir.exit_code, 0);
  EXPECT_THAT(socket_dir.err, HasSubstr("is the directory of agentd's socket"));
  // A symlink to it is the same folder.
  ASSERT_EQ(symlink(dir_.path().c_str(), dir_.Join("alias").c_str()), 0);
  RunResult alias = Goal({"--workspace", dir_.Join("alias")});
  EXPECT_NE(alias.exit_code, 0);
  EXPECT_THAT(alias.err, HasSubstr("contains agentd's state directory"));
  EXPECT_FALSE(access(dir_.Join(".git").c_str(), F_OK) == 0) << "nothing was made there";
  RunResult root = Goal({"--workspace", "/"});
  EXPECT_NE(root.exit_code, 0);
  EXPECT_THAT(root.err, HasSubstr("/"));
}

TEST_F(WorkspaceTest, AFolderWithFilesBecomesARepositoryOnlyWhenAPersonSaysSo) {
  const std::string folder = dir_.Join("notes");
  ASSERT_EQ(mkdir(folder.c_str(), 0755), 0);
  WriteFile(folder + "/todo.txt", "mine\n");
  RunResult refused = Goal({"--workspace", folder});
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("--init-existing"));
  EXPECT_NE(access((folder + "/.git").c_str(), F_OK), 0) << "git init ran unasked";
  RunResult asked = Goal({"--workspace", folder, "--init-existing"});
  EXPECT_EQ(asked.exit_code, 0) << asked.err;
  EXPECT_EQ(access((folder + "/.git").c_str(), F_OK), 0);
  // An empty or new folder needs no such word.
  RunResult fresh = Goal({"--workspace", dir_.Join("fresh")});
  EXPECT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_EQ(access(dir_.Join("fresh/.git").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace agentd::testing
