// Which directories a goal may use as its workspace (manager/core/workspace_policy.h),
// on real directories and symlinks.
#include "manager/core/workspace_policy.h"

#include <sys/stat.h>
#include <unistd.h>

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
    protected_ = {{dir_.Join("home/state"), "agentd's state directory", true,
                   dir_.Join("home/state/workspaces")},
                  {dir_.Join("run"), "the directory of agentd's socket", true, ""},
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
  EXPECT_TRUE(Check(dir_.Join("home/state/workspaces/g-1")).ok()) << "agentd's own default";
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

// Isolated agents see nothing of the state and socket directories but the default
// workspaces: a workspace anywhere else inside them is refused.
TEST_F(WorkspacePolicyTest, ADirectoryInsideTheStateOrSocketDirectoryIsRefusedButTheDefaults) {
  absl::Status logs = Check(dir_.Join("home/state/logs"));
  EXPECT_EQ(logs.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(logs.message(), HasSubstr("is inside agentd's state directory"));
  EXPECT_FALSE(Check(dir_.Join("home/state/sessions/coder-1")).ok());
  EXPECT_FALSE(Check(dir_.Join("home/state/workspaces")).ok()) << "all goals' workspaces";
  EXPECT_THAT(Check(dir_.Join("run/x")).message(),
              HasSubstr("is inside the directory of agentd's socket"));
  EXPECT_TRUE(Check(dir_.Join("home/state/workspaces/g-1/sub")).ok());
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

TEST(WorkspacePolicyDefaultsTest, TheStateSocketHomeAndRootDirectoriesAreProtected) {
  // Each test runs in a process of its own (ctest), so changing HOME here is harmless.
  ASSERT_EQ(setenv("HOME", "/home/someone", 1), 0);
  std::vector<ProtectedDir> dirs = ProtectedDirs("/var/lib/agentd", "/run/agentd/agentd.sock");
  std::vector<std::string> paths;
  for (const ProtectedDir& d : dirs) paths.push_back(d.path);
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre("/var/lib/agentd", "/run/agentd", "/",
                                                     "/home/someone"));
}

}  // namespace
}  // namespace agentd
