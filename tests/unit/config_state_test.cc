#include "manager/core/config_state.h"

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ConfigStateTest, FlagsWinOverTheFile) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.yaml"), "state_dir: /from/file\nlogging: {level: warn}\n");
  ConfigOverrides o;
  o.state_dir = "/from/flag";
  auto st = ConfigState::Load(dir.Join("a.yaml"), o);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->config().state_dir, "/from/flag");
  EXPECT_EQ(st->config().logging.level, "warn");
  EXPECT_FALSE(st->config().server.socket.empty());  // resolved default
}

// Goals' workspaces default to beside the state directory, never in it; paths are
// absolute and without trailing slashes whatever was written.
TEST(ConfigStateTest, WorkspacesDirDefaultsToBesideTheStateDirectory) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.yaml"), "state_dir: /srv/agentd/\n");
  auto st = ConfigState::Load(dir.Join("a.yaml"), {});
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->config().state_dir, "/srv/agentd");
  EXPECT_EQ(st->config().workspaces_dir, "/srv/agentd-workspaces");
  testing::WriteFile(dir.Join("b.yaml"), "state_dir: /srv/agentd\nworkspaces_dir: ws/\n");
  st = ConfigState::Load(dir.Join("b.yaml"), {});
  ASSERT_TRUE(st.ok()) << st.status();
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  EXPECT_EQ(st->config().workspaces_dir, std::string(cwd) + "/ws");
}

TEST(ConfigStateTest, BadReloadChangesNothing) {
  testing::TempDir dir;
  std::string file = dir.Join("a.yaml");
  testing::WriteFile(file, "logging: {level: warn}\nsupervision: {stop_timeout: 3s}\n");
  auto st = ConfigState::Load(file, {});
  ASSERT_TRUE(st.ok());
  Config before = st->config();
  absl::Time loaded = st->loaded_time();
  testing::WriteFile(file, "logging: {level: warn}\nsupervision: {stop_timeout: later}\n");
  absl::StatusOr<ReloadResult> r = st->Reload();
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(file + ":2:29:"));
  EXPECT_EQ(st->config(), before);
  EXPECT_EQ(st->loaded_time(), loaded);
}

TEST(ConfigStateTest, ReloadAppliesWhatItCanAndReportsWhatNeedsARestart) {
  testing::TempDir dir;
  std::string file = dir.Join("a.yaml");
  testing::WriteFile(file, "server: {socket: /tmp/one.sock}\nsupervision: {stop_timeout: 3s}\n");
  auto st = ConfigState::Load(file, {});
  ASSERT_TRUE(st.ok());
  testing::WriteFile(file, "server: {socket: /tmp/two.sock}\nsupervision: {stop_timeout: 4s}\n");
  absl::StatusOr<ReloadResult> r = st->Reload();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->applied, ElementsAre("supervision"));
  EXPECT_THAT(r->restart_required, ElementsAre("server.socket"));
  EXPECT_EQ(st->config().supervision.stop_timeout, absl::Seconds(4));
  EXPECT_EQ(st->config().server.socket, "/tmp/one.sock");  // still the bound one
}

// What a reload leaves at its running value (until a restart) keeps its origin too, so
// `agentctl config view` shows what is in force and where it came from.
TEST(ConfigStateTest, SettingsKeptUntilARestartKeepTheirOrigins) {
  testing::TempDir dir;
  std::string file = dir.Join("a.yaml");
  testing::WriteFile(file, "logs: {keep_segments: 3}\nserver: {cors_origins: [\"https://a.b\"]}\n");
  auto st = ConfigState::Load(file, {});
  ASSERT_TRUE(st.ok()) << st.status();
  testing::WriteFile(file,
                     "# moved down a line\nlogs: {keep_segments: 5}\nserver: {cors_origins: []}\n");
  absl::StatusOr<ReloadResult> r = st->Reload();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->restart_required, ::testing::IsSupersetOf({"logs", "server.cors_origins"}));
  EXPECT_EQ(st->config().logs.keep_segments, 3);
  EXPECT_EQ(st->config().origins.at("logs.keep_segments"), file + ":1:23");
  EXPECT_EQ(st->config().server.cors_origins.size(), 1u);
  EXPECT_EQ(st->config().origins.count("server.cors_origins[0]"), 1u);
}

}  // namespace
}  // namespace agentd
