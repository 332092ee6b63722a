// Configuration as the daemon and agentctl see it: bad files stop agentd before it
// serves, with file:line:col; reloads are all-or-nothing.
#include <signal.h>
#include <sys/stat.h>

#include "agentd/v1/system.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

RunResult RunAgentdWithConfig(const TempDir& dir, const std::string& config) {
  return RunCommand({AgentdBinary(), "--config", config, "--state-dir", dir.Join("state"),
                     "--socket", dir.Join("run/agentd.sock"), "--http", ""},
                    absl::Seconds(20));
}

TEST(AgentdConfigTest, UnknownKeyExitsNonZeroNamingFileLineColumn) {
  TempDir dir;
  WriteFile(dir.Join("a.yaml"), "server:\n  sockett: /tmp/x.sock\n");
  RunResult r = RunAgentdWithConfig(dir, dir.Join("a.yaml"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir.Join("a.yaml") + ":2:3: unknown key \"server.sockett\""));
}

TEST(AgentdConfigTest, WrongTypeExitsNonZeroNamingWhatWasExpected) {
  TempDir dir;
  WriteFile(dir.Join("a.yaml"), "roles:\n  coder: {model: m, max_instances: three}\n");
  RunResult r = RunAgentdWithConfig(dir, dir.Join("a.yaml"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              HasSubstr(dir.Join("a.yaml") +
                        ":2:36: roles.coder.max_instances: expected an integer, got \"three\""));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("must be at least 1")));
}

TEST(AgentdConfigTest, BadDurationExitsNonZero) {
  TempDir dir;
  WriteFile(dir.Join("a.yaml"), "supervision:\n  heartbeat: {interval: 5 seconds}\n");
  RunResult r = RunAgentdWithConfig(dir, dir.Join("a.yaml"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir.Join("a.yaml") +
                               ":2:25: supervision.heartbeat.interval: invalid duration"));
}

TEST(AgentdConfigTest, UnreadableFileExitsNonZeroNamingIt) {
  TempDir dir;
  RunResult r = RunAgentdWithConfig(dir, dir.Join("missing.yaml"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir.Join("missing.yaml") + ": cannot read config file"));
}

TEST(AgentdConfigTest, BadFlagsAreUsageErrors) {
  EXPECT_EQ(RunCommand({AgentdBinary(), "--no-such-flag"}).exit_code, 2);
  EXPECT_EQ(RunCommand({AgentdBinary(), "--socket"}).exit_code, 2);
  RunResult fmt = RunCommand({AgentdBinary(), "--log-format", "xml", "--http", ""});
  EXPECT_EQ(fmt.exit_code, 1);
  EXPECT_THAT(fmt.err, HasSubstr("--log-format"));
}

TEST(AgentctlConfigTest, ValidateAcceptsTheDefaultAndRejectsABadFile) {
  TempDir dir;
  RunResult def = RunCommand({AgentctlBinary(), "config", "default"});
  ASSERT_EQ(def.exit_code, 0);
  WriteFile(dir.Join("good.yaml"), def.out);
  RunResult ok = RunCommand({AgentctlBinary(), "config", "validate", dir.Join("good.yaml")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("valid (3 providers, 2 models, 5 roles, 2 agents)"));
  WriteFile(dir.Join("bad.yaml"), "logs: {keep_segments: 0}\n");
  RunResult bad = RunCommand({AgentctlBinary(), "config", "validate", dir.Join("bad.yaml")});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err,
              HasSubstr(dir.Join("bad.yaml") + ":1:23: logs.keep_segments: must be at least 1"));
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(config_, "logging: {level: info}\nsupervision: {stop_timeout: 3s}\n");
    ASSERT_TRUE(daemon_.Start({"--config", config_})) << daemon_.log();
    client_ = std::make_unique<Client>(daemon_.client());
  }
  grpc::Status Reload(v1::ReloadConfigResponse* resp) {
    return client_->system().ReloadConfig(Ctx().get(), v1::ReloadConfigRequest(), resp);
  }
  // GetInfo; a failed call fails the test. Not for polls (client_->GetInfo is).
  v1::GetInfoResponse Info() {
    grpc::Status s;
    v1::GetInfoResponse info = client_->GetInfo(&s);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return info;
  }
  TempDir dir_;
  std::string config_ = dir_.Join("agentd.yaml");
  Daemon daemon_{dir_};
  std::unique_ptr<Client> client_;
};

TEST_F(ReloadTest, BadFileIsRefusedWithItsPositionAndTheRunningConfigIsUntouched) {
  v1::GetInfoResponse before = Info();
  ASSERT_TRUE(before.has_config_loaded_time()) << before.DebugString();
  WriteFile(config_, "logging: {level: info}\nsupervision: {stop_timeout: never}\n");
  v1::ReloadConfigResponse resp;
  grpc::Status s = Reload(&resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr(config_ + ":2:29: supervision.stop_timeout"));
  EXPECT_THAT(s.error_message(), HasSubstr("nothing changed"));
  v1::GetInfoResponse after = Info();
  ASSERT_TRUE(after.has_config_loaded_time()) << after.DebugString();
  EXPECT_EQ(after.config_loaded_time().seconds(), before.config_loaded_time().seconds());
  EXPECT_EQ(after.config_loaded_time().nanos(), before.config_loaded_time().nanos());
  // The old values still rule: a good reload now reports the change from 3s, not from
  // anything the bad file said.
  WriteFile(config_, "logging: {level: debug}\nsupervision: {stop_timeout: 3s}\n");
  s = Reload(&resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(resp.applied(), ::testing::ElementsAre("logging.level"));
}

TEST_F(ReloadTest, GoodFileAppliesAndReportsRestartRequiredSettings) {
  WriteFile(config_, "server: {grpc_tcp: \"127.0.0.1:0\"}\nsupervision: {stop_timeout: 4s}\n");
  v1::ReloadConfigResponse resp;
  grpc::Status s = Reload(&resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_THAT(resp.applied(), ::testing::ElementsAre("supervision"));
  EXPECT_THAT(resp.restart_required(), ::testing::ElementsAre("server.grpc_tcp"));
  EXPECT_EQ(resp.config_file(), config_);
}

TEST_F(ReloadTest, SighupReloadsToo) {
  v1::GetInfoResponse before = Info();
  ASSERT_TRUE(before.has_config_loaded_time()) << before.DebugString();
  WriteFile(config_, "logging: {level: debug}\n");
  daemon_.process()->Signal(SIGHUP);
  EXPECT_TRUE(WaitForValue([&] { return client_->GetInfo().config_loaded_time(); },
                           [&](const google::protobuf::Timestamp& t) {
                             return t.seconds() > before.config_loaded_time().seconds() ||
                                    (t.seconds() == before.config_loaded_time().seconds() &&
                                     t.nanos() > before.config_loaded_time().nanos());
                           },
                           absl::Seconds(10)))
      << "loaded before: " << before.config_loaded_time().ShortDebugString();
  EXPECT_THAT(daemon_.log(), HasSubstr("configuration reloaded"));
}

TEST_F(ReloadTest, AgentctlConfigReload) {
  WriteFile(config_, "logging: {level: warn}\n");
  RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "config", "reload"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("logging.level"));
  WriteFile(config_, "logging: {level: loud}\n");
  RunResult bad = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "config", "reload"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(bad.err, HasSubstr(config_ + ":1:18"));
}

}  // namespace
}  // namespace agentd::testing
