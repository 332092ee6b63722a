// AgentHost with the real agentd-agent: registration, heartbeats and leases, tokens.
#include <signal.h>

#include "absl/strings/str_cat.h"
#include "agentd/v1/agent_host.grpc.pb.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "common/paths.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& token = "") {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

class AgentHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.Join("agentd.yaml"),
              absl::StrCat(R"(
supervision:
  restart_sec: 50ms
  heartbeat: {interval: 100ms, ttl: 1s}
  stop_timeout: 2s
providers: {local: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models: {m: {provider: local, model: test-model}}
roles:
  worker: {model: m, tools: [message, complete_task], max_instances: 4,
           env: ["AGENTD_RECONNECT_GRACE=1s"]}
  leaker: {command: [")",
                           HelperBinary("token_leaker"), "\", \"", dir_.Join("token"), R"("]}
  busy: {command: [")",
                           HelperBinary("busy_agent"), R"("]}
  other: {command: [")",
                           HelperBinary("token_leaker"), "\", \"", dir_.Join("token2"), R"("]}
  slow: {command: [")",
                           HelperBinary("slow_starter"), "\", \"300\", \"", AgentBinary(),
                           R"("], registers: true, env: ["AGENTD_RECONNECT_GRACE=1s"]}
  stuck: {command: [")",
                           HelperBinary("slow_starter"), "\", \"60000\", \"", AgentBinary(),
                           R"("], registers: true}
)"));
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    agents_ = v1::AgentService::NewStub(daemon_.UnixChannel());
    host_ = v1::AgentHostService::NewStub(daemon_.UnixChannel());
  }
  v1::Agent Start(const std::string& role, const std::string& id) {
    v1::StartAgentRequest req;
    req.set_role(role);
    req.set_agent_id(id);
    v1::StartAgentResponse resp;
    grpc::Status s = agents_->StartAgent(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.agent();
  }
  v1::Agent Get(const std::string& id) {
    v1::GetAgentRequest req;
    req.set_agent_id(id);
    v1::GetAgentResponse resp;
    EXPECT_TRUE(agents_->GetAgent(Ctx().get(), req, &resp).ok());
    return resp.agent();
  }
  std::string LeakedToken() {
    Start("leaker", "leaker-1");
    std::string token;
    EXPECT_TRUE(WaitFor(
        [&] {
          token = ReadFileOrEmpty(dir_.Join("token"));
          return !token.empty();
        },
        absl::Seconds(10)));
    return token;
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::unique_ptr<v1::AgentHostService::Stub> host_;
};

TEST_F(AgentHostTest, AgentdAgentRegistersAndHeartbeats) {
  v1::Agent started = Start("worker", "w1");
  EXPECT_EQ(started.state(), v1::AGENT_STATE_STARTING);
  ASSERT_TRUE(WaitFor([&] { return Get("w1").state() == v1::AGENT_STATE_IDLE; }, absl::Seconds(10)))
      << daemon_.log();
  // Heartbeats keep coming: the age stays well under the 1s lease.
  ASSERT_TRUE(WaitFor([&] { return Get("w1").has_heartbeat_age(); }, absl::Seconds(10)));
  v1::Agent a = Get("w1");
  EXPECT_LT(a.heartbeat_age().seconds(), 1);
  EXPECT_EQ(a.runtime_version(), AGENTD_VERSION);
  // The token travelled on fd 3: neither argv nor the environment holds it.
  std::string cmdline = ReadFileOrEmpty(absl::StrCat("/proc/", a.pid(), "/cmdline"));
  std::string environ = ReadFileOrEmpty(absl::StrCat("/proc/", a.pid(), "/environ"));
  EXPECT_EQ(cmdline.find("agentd_"), std::string::npos);
  EXPECT_EQ(environ.find("agentd_"), std::string::npos);
  // Its output goes to its own log, not into the daemon's.
  EXPECT_TRUE(WaitFor(
      [&] {
        return RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "logs", "w1"})
                   .out.find("registered as w1") != std::string::npos;
      },
      absl::Seconds(10)));
  EXPECT_THAT(daemon_.log(), ::testing::Not(HasSubstr("registered as w1")));
}

TEST_F(AgentHostTest, MissingOrForgedTokenIsUnauthenticated) {
  v1::RegisterRequest req;
  req.set_agent_id("w1");
  v1::RegisterResponse resp;
  EXPECT_EQ(host_->Register(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status forged = host_->Register(Ctx("agentd_forged").get(), req, &resp);
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(forged.error_message(), HasSubstr("the agent's own token"));
}

TEST_F(AgentHostTest, ATokenActsOnlyAsItsOwnAgent) {
  std::string token = LeakedToken();
  v1::RegisterRequest req;
  req.set_agent_id("someone-else");
  v1::RegisterResponse resp;
  grpc::Status s = host_->Register(Ctx(token).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("belongs to agent \"leaker-1\""));
  req.set_agent_id("leaker-1");
  EXPECT_TRUE(host_->Register(Ctx(token).get(), req, &resp).ok());
}

TEST_F(AgentHostTest, AnAgentTokenOnAClientRpcIsPermissionDenied) {
  std::string token = LeakedToken();
  v1::StopAgentRequest req;
  req.set_agent_id("leaker-1");
  v1::StopAgentResponse resp;
  grpc::Status s = agents_->StopAgent(Ctx(token).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get("leaker-1").state(), v1::AGENT_STATE_RUNNING);
}

TEST_F(AgentHostTest, StoppedHeartbeatsMakeItUnresponsiveThenItIsRestarted) {
  Start("worker", "w2");
  ASSERT_TRUE(
      WaitFor([&] { return Get("w2").state() == v1::AGENT_STATE_IDLE; }, absl::Seconds(10)));
  int64_t pid = Get("w2").pid();
  ASSERT_EQ(kill(static_cast<pid_t>(pid), SIGSTOP), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Agent a = Get("w2");
        return a.state() == v1::AGENT_STATE_IDLE && a.pid() != pid && a.restarts() == 1;
      },
      absl::Seconds(20)))
      << daemon_.log();
  EXPECT_THAT(daemon_.log(), HasSubstr("agent w2 (pid " + std::to_string(pid) +
                                       ") is unresponsive: no heartbeat for 1s"));
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, absl::Seconds(10)));
}

TEST_F(AgentHostTest, AnAgentHeartbeatingBusyThroughALongCallIsLeftAlone) {
  Start("busy", "b1");
  ASSERT_TRUE(WaitFor([&] { return Get("b1").state() == v1::AGENT_STATE_BUSY; }, absl::Seconds(10)))
      << daemon_.log();
  int64_t pid = Get("b1").pid();
  // Three leases (ttl 1s) go by while it stays busy: it is neither unresponsive nor
  // restarted, and what it says it is doing is shown.
  ASSERT_TRUE(WaitFor([&] { return Get("b1").uptime().seconds() >= 3; }, absl::Seconds(20)));
  v1::Agent a = Get("b1");
  EXPECT_EQ(a.state(), v1::AGENT_STATE_BUSY);
  EXPECT_EQ(a.pid(), pid);
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_EQ(a.progress(), "in a long LLM call");
  EXPECT_LT(a.heartbeat_age().seconds(), 1);
  EXPECT_THAT(daemon_.log(), ::testing::Not(HasSubstr("agent b1 (pid")));
}

TEST_F(AgentHostTest, ASlowStarterThatRegistersWithinTheLeaseIsLeftAlone) {
  v1::Agent started = Start("slow", "slow-1");
  EXPECT_EQ(started.state(), v1::AGENT_STATE_STARTING);
  ASSERT_TRUE(
      WaitFor([&] { return Get("slow-1").state() == v1::AGENT_STATE_IDLE; }, absl::Seconds(10)))
      << daemon_.log();
  v1::Agent a = Get("slow-1");
  EXPECT_EQ(a.pid(), started.pid()) << "the same process, which exec'd agentd-agent";
  EXPECT_EQ(a.restarts(), 0);
}

TEST_F(AgentHostTest, AnAgentThatDoesNotRegisterWithinTheLeaseIsRestarted) {
  v1::Agent started = Start("stuck", "stuck-1");
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Agent a = Get("stuck-1");
        return a.restarts() >= 1 && a.pid() != started.pid();
      },
      absl::Seconds(20)))
      << daemon_.log();
  EXPECT_THAT(daemon_.log(), HasSubstr(absl::StrCat("agent stuck-1 (pid ", started.pid(),
                                                    ") is unresponsive: did not register "
                                                    "within 1s")));
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(started.pid()); }, absl::Seconds(10)));
}

TEST_F(AgentHostTest, AnAgentWhoseDaemonIsGoneExitsAfterTheGracePeriod) {
  Start("worker", "w3");
  ASSERT_TRUE(
      WaitFor([&] { return Get("w3").state() == v1::AGENT_STATE_IDLE; }, absl::Seconds(10)));
  int64_t pid = Get("w3").pid();
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  // The agent retries for its 1s grace (AGENTD_RECONNECT_GRACE), then exits by itself.
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, absl::Seconds(20)));
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// A provider key in agentd's environment reaches the agent that needs it — and nothing
// that is written down: not agentd's log, not the agent's log, not agentd.db.
TEST(SecretsTest, AProviderKeyAppearsInNoLogNoEventAndNoDatabase) {
  TempDir dir;
  Daemon daemon(dir);
  const std::string key = "sk-live-DO-NOT-LEAK-0123456789abcdef";
  WriteFile(dir.Join("agentd.yaml"), R"(
supervision: {heartbeat: {interval: 100ms, ttl: 2s}}
providers: {paid: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: AGENTD_TEST_KEY}}
models: {m: {provider: paid, model: test-model}}
roles: {worker: {model: m}}
)");
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml"), "--log-level", "debug"},
                           {"AGENTD_TEST_KEY=" + key}))
      << daemon.log();
  auto agents = v1::AgentService::NewStub(daemon.UnixChannel());
  v1::StartAgentRequest req;
  req.set_role("worker");
  req.set_agent_id("paid-1");
  v1::StartAgentResponse resp;
  ASSERT_TRUE(agents->StartAgent(Ctx().get(), req, &resp).ok());
  auto idle = [&] {
    v1::GetAgentRequest g;
    g.set_agent_id("paid-1");
    v1::GetAgentResponse a;
    agents->GetAgent(Ctx().get(), g, &a);
    return a.agent().state() == v1::AGENT_STATE_IDLE;
  };
  ASSERT_TRUE(WaitFor(idle, absl::Seconds(10))) << daemon.log();
  // The agent got it, for its provider…
  EXPECT_NE(ReadFileOrEmpty(absl::StrCat("/proc/", resp.agent().pid(), "/environ")).find(key),
            std::string::npos);
  ASSERT_EQ(RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "stop", "paid-1"}).exit_code,
            0);
  ASSERT_TRUE(daemon.Stop().has_value());
  // …and nothing written down has it.
  RunResult grep = RunCommand({"grep", "-r", "-l", "-a", key, dir.path()});
  EXPECT_EQ(grep.out, "") << "the key is in these files";
  EXPECT_EQ(grep.exit_code, 1) << grep.err;  // grep: 1 = no match
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

v1::RequestConsentRequest NetworkRequest(const std::string& key) {
  v1::RequestConsentRequest req;
  req.set_task_id("t1");
  req.set_tool("shell.run");
  req.set_kind(v1::CONSENT_KIND_NETWORK);
  req.set_summary("run `curl https://example.com` with network");
  (*req.mutable_details())["argv"] = "curl https://example.com";
  req.set_request_id(key);
  return req;
}

TEST_F(AgentHostTest, AnAgentCannotAskToOpenAnEditorOnTheHost) {
  v1::RequestConsentRequest req = NetworkRequest("call-editor");
  req.set_kind(v1::CONSENT_KIND_OPEN_EDITOR);
  (*req.mutable_details())["path"] = "/etc";
  v1::RequestConsentResponse asked;
  grpc::Status s = host_->RequestConsent(Ctx(LeakedToken()).get(), req, &asked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

TEST_F(AgentHostTest, AConsentRequestIsListedAndAPersonDecidesIt) {
  std::string token = LeakedToken();
  v1::RequestConsentResponse asked;
  ASSERT_TRUE(host_->RequestConsent(Ctx(token).get(), NetworkRequest("call-1"), &asked).ok());
  EXPECT_EQ(asked.status(), v1::CONSENT_STATUS_PENDING);
  // The same call asking again gets the same request.
  v1::RequestConsentResponse again;
  ASSERT_TRUE(host_->RequestConsent(Ctx(token).get(), NetworkRequest("call-1"), &again).ok());
  EXPECT_EQ(again.consent_request_id(), asked.consent_request_id());

  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  RunResult list = ctl({"get", "consents"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, ::testing::ContainsRegex(asked.consent_request_id() +
                                                 " +leaker-1 +shell.run +pending +run `curl"));
  auto decision = [&](const std::string& id) {
    v1::GetConsentDecisionRequest g;
    g.set_consent_request_id(id);
    v1::GetConsentDecisionResponse d;
    EXPECT_TRUE(host_->GetConsentDecision(Ctx(token).get(), g, &d).ok());
    return d.consent_request();
  };
  EXPECT_EQ(decision(asked.consent_request_id()).status(), v1::CONSENT_STATUS_PENDING);
  RunResult approve = ctl({"consent", "approve", asked.consent_request_id(), "--reason", "once"});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_THAT(approve.out, HasSubstr("approved"));
  v1::ConsentRequest d = decision(asked.consent_request_id());
  EXPECT_EQ(d.status(), v1::CONSENT_STATUS_APPROVED);
  EXPECT_EQ(d.decision_reason(), "once");
  EXPECT_EQ(d.decided_by(), "human:local");
  RunResult twice = ctl({"consent", "deny", asked.consent_request_id()});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_THAT(twice.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(twice.err, HasSubstr("already APPROVED"));

  v1::RequestConsentResponse second;
  ASSERT_TRUE(host_->RequestConsent(Ctx(token).get(), NetworkRequest("call-2"), &second).ok());
  ASSERT_EQ(
      ctl({"consent", "deny", second.consent_request_id(), "--reason", "no network"}).exit_code, 0);
  EXPECT_EQ(decision(second.consent_request_id()).status(), v1::CONSENT_STATUS_DENIED);
  EXPECT_THAT(ctl({"get", "consents"}).out, HasSubstr("No pending consent requests"));
  EXPECT_THAT(ctl({"get", "consents", "--all"}).out, HasSubstr("denied"));
}

TEST_F(AgentHostTest, AConsentRequestNobodyDecidesExpiresDenied) {
  std::string token = LeakedToken();
  v1::RequestConsentRequest req = NetworkRequest("call-3");
  req.mutable_timeout()->set_nanos(300 * 1000 * 1000);
  v1::RequestConsentResponse asked;
  ASSERT_TRUE(host_->RequestConsent(Ctx(token).get(), req, &asked).ok());
  v1::GetConsentDecisionRequest g;
  g.set_consent_request_id(asked.consent_request_id());
  v1::GetConsentDecisionResponse d;
  ASSERT_TRUE(WaitFor(
      [&] {
        return host_->GetConsentDecision(Ctx(token).get(), g, &d).ok() &&
               d.consent_request().status() == v1::CONSENT_STATUS_EXPIRED;
      },
      absl::Seconds(10)));
  EXPECT_THAT(d.consent_request().decision_reason(), HasSubstr("treated as denied"));
}

TEST_F(AgentHostTest, APendingConsentRequestSurvivesADaemonRestart) {
  std::string token = LeakedToken();
  v1::RequestConsentResponse asked;
  ASSERT_TRUE(host_->RequestConsent(Ctx(token).get(), NetworkRequest("call-5"), &asked).ok());
  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  RunResult list = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "get", "consents"});
  EXPECT_THAT(list.out, HasSubstr(asked.consent_request_id()));
  EXPECT_THAT(list.out, HasSubstr("pending"));
  // And it can be decided there and then; ids go on after it.
  RunResult approve = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "consent",
                                  "approve", asked.consent_request_id()});
  EXPECT_EQ(approve.exit_code, 0) << approve.err;
}

TEST_F(AgentHostTest, ConsentRequestsAreAgentsOwnAndNeedAToken) {
  std::string token = LeakedToken();
  v1::RequestConsentResponse asked;
  ASSERT_TRUE(host_->RequestConsent(Ctx(token).get(), NetworkRequest("call-4"), &asked).ok());
  v1::GetConsentDecisionRequest g;
  g.set_consent_request_id(asked.consent_request_id());
  v1::GetConsentDecisionResponse d;
  EXPECT_EQ(host_->GetConsentDecision(Ctx().get(), g, &d).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::RequestConsentResponse none;
  EXPECT_EQ(host_->RequestConsent(Ctx().get(), NetworkRequest("x"), &none).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  g.set_consent_request_id("consent-999");
  EXPECT_EQ(host_->GetConsentDecision(Ctx(token).get(), g, &d).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::RequestConsentRequest empty;
  EXPECT_EQ(host_->RequestConsent(Ctx(token).get(), empty, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Another agent may not read it.
  Start("other", "other-1");
  std::string other;
  ASSERT_TRUE(WaitFor([&] { return !(other = ReadFileOrEmpty(dir_.Join("token2"))).empty(); },
                      absl::Seconds(10)));
  g.set_consent_request_id(asked.consent_request_id());
  grpc::Status s = host_->GetConsentDecision(Ctx(other).get(), g, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("belongs to another agent"));
}

}  // namespace
}  // namespace agentd::testing
