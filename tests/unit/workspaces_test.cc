// Moving the workspaces earlier versions kept in the state directory
// (manager/core/workspaces.h MoveLegacyWorkspaces): real git repositories and worktrees,
// a real store.
#include "manager/core/workspaces.h"

#include <sys/stat.h>

#include "agentd/v1/agent_host.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::agentd::testing::ReadFileOrEmpty;
using ::agentd::testing::RunCommand;
using ::agentd::testing::TempDir;
using ::agentd::testing::WriteFile;
using ::testing::HasSubstr;

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

void Git(std::vector<std::string> args) {
  args.insert(args.begin(), {"git", "-c", "user.name=t", "-c", "user.email=t@example.com"});
  agentd::testing::RunResult r = RunCommand(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

class MoveLegacyWorkspacesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(dir_.Join("state").c_str(), 0700), 0);
    ASSERT_EQ(mkdir(legacy_.c_str(), 0700), 0);
    auto store = Store::Open(dir_.Join("state/agentd.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void SaveTask(const std::string& id, const std::string& parent, const std::string& path) {
    v1::Task t;
    t.set_id(id);
    t.set_parent_id(parent);
    t.mutable_workspace()->set_path(path);
    TaskRow row{id, parent.empty() ? id : parent, parent, 1, "", 0, t.SerializeAsString()};
    ASSERT_TRUE(store_->SaveTask(row, absl::Now(), "task.created", "{}", "").ok());
  }

  std::map<std::string, std::string> TaskPaths() {
    std::map<std::string, std::string> out;
    auto rows = store_->LoadTasks();
    EXPECT_TRUE(rows.ok());
    for (const TaskRow& row : *rows) {
      v1::Task t;
      EXPECT_TRUE(t.ParseFromString(row.body));
      out[row.id] = t.workspace().path();
    }
    return out;
  }

  TempDir dir_;
  std::string legacy_ = dir_.Join("state/workspaces");
  std::string moved_ = dir_.Join("state-workspaces");
  std::unique_ptr<Store> store_;
};

// A folder an earlier goal made a repository (git init, no commit yet) can be given
// again: with no kind, the goal works in it as the first did; asked for as a repository
// (a branch of its own), it is refused, saying to commit first.
TEST(WorkspaceProvisionerTest, ARepositoryWithNoCommitYetIsWorkedInPlaceOrRefusedSayingWhy) {
  TempDir dir;
  std::string folder = dir.Join("project");
  ASSERT_EQ(mkdir(folder.c_str(), 0755), 0);
  WriteFile(folder + "/notes.txt", "hello\n");
  WorkspaceProvisioner::Options options;
  options.workspaces_dir = dir.Join("workspaces");
  v1::Workspace first;
  first.set_path(folder);
  first.set_init_existing(true);
  absl::StatusOr<v1::Workspace> made = WorkspaceProvisioner::PrepareNow(options, first, "g-1");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->path(), folder);
  ASSERT_TRUE(Exists(folder + "/.git"));
  v1::Workspace again;
  again.set_path(folder);
  absl::StatusOr<v1::Workspace> second = WorkspaceProvisioner::PrepareNow(options, again, "g-2");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->kind(), v1::WORKSPACE_KIND_NEW_DIRECTORY);
  EXPECT_EQ(second->path(), folder);
  v1::Workspace as_repo = again;
  as_repo.set_kind(v1::WORKSPACE_KIND_EXISTING_REPO);
  absl::StatusOr<v1::Workspace> refused = WorkspaceProvisioner::PrepareNow(options, as_repo, "g-3");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("no commit yet"));
  EXPECT_THAT(refused.status().message(), HasSubstr("commit --allow-empty"));
  // Once it has a commit, it is a repository like any other: a worktree of its own.
  Git({"-C", folder, "add", "-A"});
  Git({"-C", folder, "commit", "-q", "-m", "start"});
  absl::StatusOr<v1::Workspace> branched = WorkspaceProvisioner::PrepareNow(options, again, "g-4");
  ASSERT_TRUE(branched.ok()) << branched.status();
  EXPECT_EQ(branched->kind(), v1::WORKSPACE_KIND_EXISTING_REPO);
  EXPECT_EQ(branched->path(), dir.Join("workspaces/g-4"));
  EXPECT_EQ(ReadFileOrEmpty(branched->path() + "/notes.txt"), "hello\n");
}

// A goal given no workspace gets a new repository of its own, on branch main, that git
// works with; it holds nothing from git's template (sample hooks that would never run,
// a description): agentd makes it without one, a third less work on the way of the goal.
TEST(WorkspaceProvisionerTest, ANewDirectoryIsARepositoryWithoutGitsTemplate) {
  TempDir dir;
  WorkspaceProvisioner::Options options;
  options.workspaces_dir = dir.Join("workspaces");
  absl::StatusOr<v1::Workspace> made =
      WorkspaceProvisioner::PrepareNow(options, v1::Workspace(), "g-1");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->kind(), v1::WORKSPACE_KIND_NEW_DIRECTORY);
  EXPECT_EQ(made->branch(), "main");
  const std::string& ws = made->path();
  ASSERT_TRUE(Exists(ws + "/.git/HEAD"));
  EXPECT_EQ(ReadFileOrEmpty(ws + "/.git/HEAD"), "ref: refs/heads/main\n");
  EXPECT_FALSE(Exists(ws + "/.git/hooks"));
  EXPECT_FALSE(Exists(ws + "/.git/description"));
  WriteFile(ws + "/mul.py", "def mul(a, b):\n    return a * b\n");
  Git({"-C", ws, "add", "-A"});
  Git({"-C", ws, "commit", "-q", "-m", "mul"});
  agentd::testing::RunResult log = RunCommand({"git", "-C", ws, "log", "--format=%s", "main"});
  EXPECT_EQ(log.exit_code, 0) << log.err;
  EXPECT_EQ(log.out, "mul\n");
}

// A new repository and a worktree of a person's repository move out of the state
// directory; the tasks and the pending assignment that named them name the new place; the
// worktree still works from both sides; and a second run changes nothing.
TEST_F(MoveLegacyWorkspacesTest, RepositoriesWorktreesAndTheirRecordsMoveTogether) {
  Git({"init", "-q", "-b", "main", legacy_ + "/g-1"});
  WriteFile(legacy_ + "/g-1/hello.txt", "hello");
  std::string repo = dir_.Join("repo");
  Git({"init", "-q", "-b", "main", repo});
  Git({"-C", repo, "commit", "-q", "--allow-empty", "-m", "first"});
  Git({"-C", repo, "worktree", "add", "-q", "-b", "agentd/g-2", legacy_ + "/g-2"});
  SaveTask("g-1", "", legacy_ + "/g-1");
  SaveTask("t-1", "g-1", legacy_ + "/g-1");
  SaveTask("g-2", "", legacy_ + "/g-2");
  SaveTask("g-3", "", dir_.Join("elsewhere"));
  v1::ConnectResponse assignment;
  assignment.mutable_task_assignment()->mutable_task()->set_id("t-1");
  assignment.mutable_task_assignment()->mutable_task()->mutable_workspace()->set_path(legacy_ +
                                                                                      "/g-1");
  ASSERT_TRUE(store_->AddDelivery("coder-1", assignment.SerializeAsString()).ok());

  ASSERT_TRUE(MoveLegacyWorkspaces(store_.get(), legacy_, moved_, absl::Now()).ok());

  EXPECT_FALSE(Exists(legacy_));
  EXPECT_EQ(ReadFileOrEmpty(moved_ + "/g-1/hello.txt"), "hello");
  std::map<std::string, std::string> paths = TaskPaths();
  EXPECT_EQ(paths["g-1"], moved_ + "/g-1");
  EXPECT_EQ(paths["t-1"], moved_ + "/g-1");
  EXPECT_EQ(paths["g-2"], moved_ + "/g-2");
  EXPECT_EQ(paths["g-3"], dir_.Join("elsewhere")) << "a person's folder stays where it is";
  auto deliveries = store_->LoadDeliveries();
  ASSERT_TRUE(deliveries.ok());
  ASSERT_EQ(deliveries->size(), 1u);
  v1::ConnectResponse sent;
  ASSERT_TRUE(sent.ParseFromString((*deliveries)[0].body));
  EXPECT_EQ(sent.task_assignment().task().workspace().path(), moved_ + "/g-1");
  // The worktree knows its repository, and the repository its worktree.
  agentd::testing::RunResult status = RunCommand({"git", "-C", moved_ + "/g-2", "status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  agentd::testing::RunResult list = RunCommand({"git", "-C", repo, "worktree", "list"});
  EXPECT_THAT(list.out, HasSubstr(moved_ + "/g-2")) << list.out;
  auto events = store_->QueryEvents(0, 100);
  ASSERT_TRUE(events.ok());
  int moved_events = 0;
  for (const EventRow& e : *events) moved_events += e.kind == "workspaces.moved";
  EXPECT_EQ(moved_events, 1);

  ASSERT_TRUE(MoveLegacyWorkspaces(store_.get(), legacy_, moved_, absl::Now()).ok());
  EXPECT_EQ(TaskPaths(), paths);
}

// After a crash between a worktree's move and the records' rewrite: the records still
// name the old place (written, too, as an earlier run spelled it: a doubled slash), the
// folder is in the new one. The next start rewrites them and reconnects the worktree.
TEST_F(MoveLegacyWorkspacesTest, ACrashBetweenTheMoveAndTheRecordsIsMendedAtTheNextStart) {
  std::string repo = dir_.Join("repo");
  Git({"init", "-q", "-b", "main", repo});
  Git({"-C", repo, "commit", "-q", "--allow-empty", "-m", "first"});
  Git({"-C", repo, "worktree", "add", "-q", "-b", "agentd/g-2", legacy_ + "/g-2"});
  SaveTask("g-2", "", dir_.Join("state//workspaces/g-2"));
  ASSERT_EQ(mkdir(moved_.c_str(), 0700), 0);
  ASSERT_EQ(rename((legacy_ + "/g-2").c_str(), (moved_ + "/g-2").c_str()), 0);  // then: kill -9

  ASSERT_TRUE(MoveLegacyWorkspaces(store_.get(), legacy_, moved_, absl::Now()).ok());
  EXPECT_EQ(TaskPaths()["g-2"], moved_ + "/g-2");
  agentd::testing::RunResult list = RunCommand({"git", "-C", repo, "worktree", "list"});
  EXPECT_THAT(list.out, HasSubstr(moved_ + "/g-2")) << list.out;
  EXPECT_FALSE(Exists(legacy_));
}

// A person who had made <state>/workspaces a symlink to the new place: the records move,
// the link goes, nothing is renamed onto itself.
TEST_F(MoveLegacyWorkspacesTest, ALinkToTheNewPlaceIsReplacedByTheRecordsAlone) {
  ASSERT_EQ(rmdir(legacy_.c_str()), 0);
  ASSERT_EQ(mkdir(moved_.c_str(), 0700), 0);
  Git({"init", "-q", "-b", "main", moved_ + "/g-1"});
  ASSERT_EQ(symlink(moved_.c_str(), legacy_.c_str()), 0);
  SaveTask("g-1", "", legacy_ + "/g-1");
  ASSERT_TRUE(MoveLegacyWorkspaces(store_.get(), legacy_, moved_, absl::Now()).ok());
  EXPECT_EQ(TaskPaths()["g-1"], moved_ + "/g-1");
  EXPECT_FALSE(Exists(legacy_));
  EXPECT_TRUE(Exists(moved_ + "/g-1/.git"));
}

// A name already taken in the new place stops the move, saying which, and loses nothing.
TEST_F(MoveLegacyWorkspacesTest, ANameTakenInTheNewPlaceStopsTheMoveAndLosesNothing) {
  Git({"init", "-q", "-b", "main", legacy_ + "/g-1"});
  WriteFile(legacy_ + "/g-1/hello.txt", "old");
  ASSERT_EQ(mkdir(moved_.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((moved_ + "/g-1").c_str(), 0700), 0);
  SaveTask("g-1", "", legacy_ + "/g-1");
  absl::Status s = MoveLegacyWorkspaces(store_.get(), legacy_, moved_, absl::Now());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr(moved_ + "/g-1 already exists"));
  EXPECT_EQ(ReadFileOrEmpty(legacy_ + "/g-1/hello.txt"), "old");
  EXPECT_EQ(TaskPaths()["g-1"], legacy_ + "/g-1");
}

}  // namespace
}  // namespace agentd
