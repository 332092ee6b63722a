// Which directories a goal may use as its workspace (manager/core/workspace_policy.h),
// on real directories and symlinks.
#include "manager/core/workspace_policy.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/paths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::agentd::testing::TempDir;
using ::testing::HasSubstr;

class WorkspacePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(dir_.Join("home").c_str(), 0700), 0);
    ASSERT_EQ(mkdir(dir_.Join("home/state").c_str(), 0700), 0);
    ASSERT_EQ(mkdir(dir_.Join("home/src").c_str(), 0700), 0);
    ASSERT_EQ(mkdir(dir_.Join("run").c_str(), 0700), 0);
    protected_ = {{dir_.Join("home/state"), "agentd's state directory", true, ""},
                  {dir_.Join("run"), "the directory of agentd's socket", true, dir_.Join("run/ws")},
                  {dir_.Join("home/state-workspaces"), "agentd's workspaces directory", false, ""},
                  {dir_.Join("home"), "the home directory of the user agentd runs as", false, ""},
                  {"/", "the root directory", false, ""}};
  }
  absl::Status Check(const std::string& path) { return CheckWorkspacePath(path, protected_); }

  TempDir dir_;
  std::vector<ProtectedDir> protected_;
};

TEST_F(WorkspacePolicyTest, AFolderOfItsOwnOrOneBeneathAProtectedDirectoryIsFine) {
  EXPECT_TRUE(Check(dir_.Join("home/src")).ok());
  EXPECT_TRUE(Check(dir_.Join("home/src/not-yet/made")).ok());
  EXPECT_TRUE(Check(dir_.Join("home/state-workspaces/g-1")).ok()) << "agentd's own default";
  EXPECT_TRUE(Check(dir_.Join("elsewhere")).ok());
}

TEST_F(WorkspacePolicyTest, ADirectoryEqualToOrAboveAProtectedOneIsRefusedSayingWhich) {
  absl::Status state = Check(dir_.Join("home/state"));
  EXPECT_EQ(state.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(state.message(), HasSubstr("is agentd's state directory"));
  absl::Status home = Check(dir_.Join("home"));
  EXPECT_THAT(home.message(), HasSubstr("contains agentd's state directory"));
  EXPECT_THAT(Check(dir_.path()).message(), HasSubstr("contains agentd's state directory"));
  EXPECT_THAT(Check(dir_.Join("run")).message(), HasSubstr("the directory of agentd's socket"));
  EXPECT_EQ(Check("/").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(CheckWorkspacePath("/", {{"/", "the root directory", false, ""}}).message()),
      HasSubstr("is the root directory /"));
}

// Isolated agents see nothing of the state and socket directories: a workspace inside them
// is refused, and so is agentd's workspaces directory itself (every goal's workspace), but
// not a goal's folder inside it.
TEST_F(WorkspacePolicyTest, ADirectoryInsideTheStateOrSocketDirectoryIsRefused) {
  absl::Status logs = Check(dir_.Join("home/state/logs"));
  EXPECT_EQ(logs.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(logs.message(), HasSubstr("is inside agentd's state directory"));
  EXPECT_FALSE(Check(dir_.Join("home/state/sessions/coder-1")).ok());
  EXPECT_FALSE(Check(dir_.Join("home/state/workspaces")).ok()) << "the old default place";
  EXPECT_THAT(Check(dir_.Join("home/state-workspaces")).message(),
              HasSubstr("is agentd's workspaces directory"))
      << "all goals' workspaces";
  EXPECT_THAT(Check(dir_.Join("run/x")).message(),
              HasSubstr("is inside the directory of agentd's socket"));
  EXPECT_TRUE(Check(dir_.Join("run/ws/g-1")).ok()) << "agentd's workspaces, shown to agents";
  EXPECT_FALSE(Check(dir_.Join("run/ws")).ok());
  EXPECT_TRUE(Check(dir_.Join("home/state-workspaces/g-1/sub")).ok());
  EXPECT_TRUE(Check(dir_.Join("home/other")).ok()) << "inside home is fine";
}

TEST_F(WorkspacePolicyTest, SymlinksAndDotDotAreResolvedBeforeTheCheck) {
  ASSERT_EQ(symlink(dir_.Join("home").c_str(), dir_.Join("link").c_str()), 0);
  absl::Status through_link = Check(dir_.Join("link"));
  EXPECT_EQ(through_link.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(through_link.message(), HasSubstr(dir_.Join("home") + ")"))
      << "the message shows where the link leads";
  EXPECT_FALSE(Check(dir_.Join("home/src/..")).ok());
  EXPECT_FALSE(Check(dir_.Join("home/src/not-yet/../../state")).ok());
  EXPECT_TRUE(Check(dir_.Join("link/src")).ok());
}

TEST_F(WorkspacePolicyTest, ARelativePathIsRefused) {
  EXPECT_EQ(Check("src").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CanonicalPath("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkspacePolicyDefaultsTest, TheStateSocketWorkspacesHomeAndRootDirectoriesAreProtected) {
  // Each test runs in a process of its own (ctest), so changing HOME here is harmless.
  ASSERT_EQ(setenv("HOME", "/home/someone", 1), 0);
  std::vector<ProtectedDir> dirs =
      ProtectedDirs("/var/lib/agentd", "/run/agentd/agentd.sock", "/var/lib/agentd-workspaces");
  std::vector<std::string> paths;
  for (const ProtectedDir& d : dirs) paths.push_back(d.path);
  EXPECT_THAT(paths,
              ::testing::UnorderedElementsAre("/var/lib/agentd", "/run/agentd", "/",
                                              "/var/lib/agentd-workspaces", "/home/someone"));
}

// Agents cannot see into the state or socket directory, so goals' workspaces may not live
// there; nor may the workspaces directory hold either.
TEST(WorkspacePolicyDefaultsTest, TheWorkspacesDirectoryIsNeitherInsideNorAboveTheStateDirectory) {
  TempDir dir;
  std::string state = dir.Join("state"), sock = dir.Join("run/agentd.sock");
  EXPECT_TRUE(CheckWorkspacesDir(dir.Join("state-workspaces"), state, sock).ok());
  absl::Status inside = CheckWorkspacesDir(dir.Join("state/ws"), state, sock);
  EXPECT_EQ(inside.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(inside.message(), HasSubstr("workspaces_dir: " + dir.Join("state/ws") +
                                          " is inside agentd's state directory"));
  EXPECT_THAT(CheckWorkspacesDir(dir.path(), state, sock).message(),
              HasSubstr("is above agentd's state directory"));
  EXPECT_THAT(CheckWorkspacesDir(dir.Join("run"), state, sock).message(),
              HasSubstr("is the directory of agentd's socket"));
  EXPECT_TRUE(CheckWorkspacesDir(dir.Join("run/ws"), state, sock).ok())
      << "agents are shown it there";
  EXPECT_THAT(CheckWorkspacesDir(AgentEndpointPath(sock) + "-ws", state, sock).message(),
              HasSubstr("inside the agent endpoint's directory"));
}

}  // namespace
}  // namespace agentd
