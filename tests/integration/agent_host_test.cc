// AgentHost with the real agentd-agent: registration, heartbeats and leases, tokens.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <tuple>

#include "absl/strings/str_cat.h"
#include "agentd/v1/agent_host.grpc.pb.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "agents/tools/shell.h"
#include "common/paths.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A context (with Ctx's deadline) that acts with an agent's token.
std::unique_ptr<grpc::ClientContext> AgentCtx(const std::string& token) {
  std::unique_ptr<grpc::ClientContext> ctx = Ctx();
  ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

// A duration as agentd's config reads it.
std::string Yaml(absl::Duration d) { return absl::StrCat(absl::ToInt64Milliseconds(d), "ms"); }

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// The registration and heartbeat lease and the agents' reconnect grace. Tests that
// depend on them (an agent restarted when it runs out, left alone while it does not) are
// timing tests: scaled with the machine's speed.
absl::Duration Lease() { return Scaled(absl::Seconds(1)); }

// The process limit this test runs with (a role may set it without raising anything).
uint64_t NprocNow() {
  rlimit r{};
  getrlimit(RLIMIT_NPROC, &r);
  return r.rlim_cur == RLIM_INFINITY ? 1'000'000 : r.rlim_cur;
}

class AgentHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(
        dir_.Join("agentd.yaml"),
        absl::StrCat(R"(
supervision:
  restart_sec: 50ms
  heartbeat: {interval: )",
                     Yaml(Lease() / 10), ", ttl: ", Yaml(Lease()), R"(}
  stop_timeout: 2s
providers: {local: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models:
  m: {provider: local, model: test-model, price: {input_per_mtok: 1, output_per_mtok: 2}}
  dear: {provider: local, model: dear-model, price: {input_per_mtok: 10, output_per_mtok: 30}}
roles:
  worker: {model: m, tools: [message, complete_task], max_instances: 4,
           env: ["AGENTD_RECONNECT_GRACE=)",
                     Yaml(Lease()), R"("]}
  plain: {model: m, tools: [complete_task], max_instances: 20}
  limited: {model: m, tools: [complete_task], limits: {nproc: )",
                     NprocNow(), R"(}}
  leaker: {command: [")",
                     HelperBinary("token_leaker"), "\", \"", dir_.Join("token"), R"("]}
  busy: {command: [")",
                     HelperBinary("busy_agent"), R"("]}
  other: {command: [")",
                     HelperBinary("token_leaker"), "\", \"", dir_.Join("token2"), R"("]}
  slow: {command: [")",
                     HelperBinary("slow_starter"), "\", \"300\", \"", AgentBinary(),
                     R"("], registers: true, env: ["AGENTD_RECONNECT_GRACE=)", Yaml(Lease()), R"("]}
  stuck: {command: [")",
                     HelperBinary("slow_starter"), "\", \"60000\", \"", AgentBinary(),
                     R"("], registers: true}
  ceo: {command: [")",
                     HelperBinary("token_leaker"), "\", \"", dir_.Join("tokens"),
                     R"(/"], max_instances: 2}
  helper: {command: [")",
                     HelperBinary("token_leaker"), "\", \"", dir_.Join("tokens"), R"(/"]}
agents: []
)"));
    ASSERT_EQ(mkdir(dir_.Join("tokens").c_str(), 0700), 0);
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    client_ = std::make_unique<Client>(daemon_.client());
    host_ = v1::AgentHostService::NewStub(daemon_.UnixChannel());
  }
  // StartAgent; a failed call fails the test (and the agent returned is empty).
  v1::Agent Start(const std::string& role, const std::string& id) {
    v1::StartAgentRequest req;
    req.set_role(role);
    req.set_agent_id(id);
    v1::StartAgentResponse resp;
    grpc::Status s = client_->agents().StartAgent(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.agent();
  }
  // The agent as GetAgent answers; a failed call fails the test. Not for polls: those
  // call client_->GetAgent, which records nothing.
  v1::Agent Get(const std::string& id) {
    grpc::Status s;
    v1::Agent a = client_->GetAgent(id, &s);
    EXPECT_TRUE(s.ok()) << "GetAgent " << id << ": " << s.error_message();
    return a;
  }
  // Waits until `id` is in `state`; the last agent seen goes to `*last`.
  ::testing::AssertionResult WaitForState(const std::string& id, v1::AgentState state,
                                          v1::Agent* last = nullptr) {
    return WaitForValue([&] { return client_->GetAgent(id); },
                        [&](const v1::Agent& a) { return a.state() == state; }, absl::Seconds(10),
                        last);
  }
  // Starts leaker-1 and reads the token agentd gave it.
  void LeakedToken(std::string* token) {
    ASSERT_FALSE(Start("leaker", "leaker-1").id().empty());
    ASSERT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("token")); },
                             [](const std::string& t) { return !t.empty(); }, absl::Seconds(10),
                             token))
        << "the leaker did not write its token\n"
        << daemon_.log();
  }
  // The leaker registered with its token, and its Connect stream (hello not yet sent)
  // under `ctx`, which must outlive the stream.
  void RegisteredLeaker(
      grpc::ClientContext* ctx, absl::Duration stream_for, std::string* token,
      v1::RegisterResponse* registered,
      std::unique_ptr<grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>>* stream) {
    ASSERT_NO_FATAL_FAILURE(LeakedToken(token));
    v1::RegisterRequest reg;
    reg.set_agent_id("leaker-1");
    reg.set_runtime_version("test");
    grpc::Status s = host_->Register(AgentCtx(*token).get(), reg, registered);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ctx->AddMetadata("authorization", "Bearer " + *token);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + stream_for));
    *stream = host_->Connect(ctx);
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::unique_ptr<Client> client_;
  std::unique_ptr<v1::AgentHostService::Stub> host_;
};

TEST_F(AgentHostTest, AgentdAgentRegistersAndHeartbeats) {
  v1::Agent started = Start("worker", "w1");
  EXPECT_EQ(started.state(), v1::AGENT_STATE_STARTING);
  ASSERT_TRUE(WaitForState("w1", v1::AGENT_STATE_IDLE)) << daemon_.log();
  // Heartbeats keep coming: the age stays under the lease.
  v1::Agent a;
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("w1"); },
                           [](const v1::Agent& g) { return g.has_heartbeat_age(); },
                           absl::Seconds(10), &a));
  EXPECT_LT(FromProto(a.heartbeat_age()), Lease());
  EXPECT_EQ(a.state(), v1::AGENT_STATE_IDLE);
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_EQ(a.runtime_version(), AGENTD_VERSION);
  ASSERT_GT(a.pid(), 0);
  // The token travelled on fd 3: neither argv nor the environment holds it.
  std::string cmdline = ReadFileOrEmpty(absl::StrCat("/proc/", a.pid(), "/cmdline"));
  std::string environ = ReadFileOrEmpty(absl::StrCat("/proc/", a.pid(), "/environ"));
  EXPECT_EQ(cmdline.find("agentd_"), std::string::npos);
  EXPECT_EQ(environ.find("agentd_"), std::string::npos);
  // Its output goes to its own log, not into the daemon's.
  EXPECT_TRUE(WaitForValue(
      [&] {
        return RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "logs", "w1"}).out;
      },
      [](const std::string& out) { return out.find("registered as w1") != std::string::npos; },
      absl::Seconds(10)));
  EXPECT_THAT(daemon_.log(), ::testing::Not(HasSubstr("registered as w1")));
}

// The tools' sandbox is tried once by agentd as its agents run (under their isolation, or
// as agentd's user without it), not by each agent at its start; an agent of a role with
// process or memory limits, under which the trial may not hold, tries for itself.
TEST_F(AgentHostTest, AgentsTakeAgentdsTrialOfTheToolSandboxUnlessTheirLimitsDiffer) {
  if (tools::ProbeSandbox().why.size() > 0) GTEST_SKIP() << "bubblewrap does not work here";
  auto log_of = [&](const std::string& id) {
    std::string out;
    WaitForValue(
        [&] {
          return RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "logs", id}).out;
        },
        [](const std::string& o) { return o.find("registered as") != std::string::npos; },
        Scaled(absl::Seconds(10)), &out);
    return out;
  };
  // Isolated agents are told once agentd's own trial under their isolation has ended: an
  // agent started before that tries for itself. Started until one is told, or 20 tries.
  std::string told;
  for (int i = 1; i <= 20 && told.empty(); ++i) {
    std::string id = absl::StrCat("p", i);
    ASSERT_FALSE(Start("plain", id).id().empty());
    std::string log = log_of(id);
    ASSERT_THAT(log, HasSubstr("tool sandbox: ")) << log;
    if (log.find("tool sandbox: does not work here") != std::string::npos) {
      GTEST_SKIP() << "bubblewrap does not work under the agents' isolation here\n" << log;
    }
    if (log.find("(tried by agentd as this agent runs)") != std::string::npos) told = id;
  }
  ASSERT_FALSE(told.empty()) << "no agent took agentd's trial\n" << daemon_.log();
  EXPECT_TRUE(WaitForState(told, v1::AGENT_STATE_IDLE));
  ASSERT_FALSE(Start("limited", "l1").id().empty());
  std::string limited = log_of("l1");
  EXPECT_THAT(limited, HasSubstr("tool sandbox: "));
  EXPECT_THAT(limited, Not(HasSubstr("tried by agentd"))) << limited;
}

TEST_F(AgentHostTest, MissingOrForgedTokenIsUnauthenticated) {
  v1::RegisterRequest req;
  req.set_agent_id("w1");
  v1::RegisterResponse resp;
  EXPECT_EQ(host_->Register(Ctx().get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status forged = host_->Register(AgentCtx("agentd_forged").get(), req, &resp);
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(forged.error_message(), HasSubstr("the agent's own token"));
}

TEST_F(AgentHostTest, ATokenActsOnlyAsItsOwnAgent) {
  std::string token;
  ASSERT_NO_FATAL_FAILURE(LeakedToken(&token));
  v1::RegisterRequest req;
  req.set_agent_id("someone-else");
  v1::RegisterResponse resp;
  grpc::Status s = host_->Register(AgentCtx(token).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("belongs to agent \"leaker-1\""));
  req.set_agent_id("leaker-1");
  s = host_->Register(AgentCtx(token).get(), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // What agentd takes beyond the protocol's first version, for the agent to rely on.
  EXPECT_THAT(resp.features(),
              testing::IsSupersetOf({"connect.task_events", "tool_call_finished.call_summary"}));
}

TEST_F(AgentHostTest, AnAgentTokenOnAClientRpcIsPermissionDenied) {
  std::string token;
  ASSERT_NO_FATAL_FAILURE(LeakedToken(&token));
  v1::StopAgentRequest req;
  req.set_agent_id("leaker-1");
  v1::StopAgentResponse resp;
  grpc::Status s = client_->agents().StopAgent(AgentCtx(token).get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get("leaker-1").state(), v1::AGENT_STATE_RUNNING);
}

TEST_F(AgentHostTest, StoppedHeartbeatsMakeItUnresponsiveThenItIsRestarted) {
  Start("worker", "w2");
  v1::Agent idle;
  ASSERT_TRUE(WaitForState("w2", v1::AGENT_STATE_IDLE, &idle)) << daemon_.log();
  int64_t pid = idle.pid();
  ASSERT_GT(pid, 0);  // kill(0, …) would stop this test's own process group
  ASSERT_EQ(kill(static_cast<pid_t>(pid), SIGSTOP), 0);
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("w2"); },
                           [&](const v1::Agent& a) {
                             return a.state() == v1::AGENT_STATE_IDLE && a.pid() > 0 &&
                                    a.pid() != pid && a.restarts() == 1;
                           },
                           absl::Seconds(20)))
      << daemon_.log();
  EXPECT_THAT(daemon_.log(),
              HasSubstr(absl::StrCat("agent w2 (pid ", pid, ") is unresponsive: no heartbeat for ",
                                     absl::FormatDuration(Lease()))));
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, absl::Seconds(10)))
      << "the stopped process " << pid << " was left behind";
}

// Heartbeats travel on the agent's open Connect stream (a message, not a call each): they
// hold its lease as calls do, and one with a lease that is not current ends the stream
// with FAILED_PRECONDITION, so the agent registers again.
TEST_F(AgentHostTest, HeartbeatsOnTheConnectStreamHoldTheLease) {
  std::string token;
  v1::RegisterResponse registered;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>> stream;
  ASSERT_NO_FATAL_FAILURE(
      RegisteredLeaker(&ctx, 3 * Lease() + absl::Seconds(30), &token, &registered, &stream));
  v1::ConnectRequest msg;
  msg.mutable_hello()->set_lease_id(registered.lease_id());
  ASSERT_TRUE(stream->Write(msg));
  msg.mutable_heartbeat()->set_lease_id(registered.lease_id());
  msg.mutable_heartbeat()->set_activity(v1::AGENT_ACTIVITY_BUSY);
  // Three leases long, a heartbeat every quarter of one (the agent's pace, not a wait for
  // something to happen).
  for (absl::Time end = absl::Now() + 3 * Lease(); absl::Now() < end;) {
    ASSERT_TRUE(stream->Write(msg));
    absl::SleepFor(Lease() / 4);
  }
  v1::Agent a = Get("leaker-1");
  EXPECT_EQ(a.state(), v1::AGENT_STATE_BUSY) << a.DebugString() << daemon_.log();
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_LT(FromProto(a.heartbeat_age()), Lease());

  msg.mutable_heartbeat()->set_lease_id("not-the-lease");
  ASSERT_TRUE(stream->Write(msg));
  v1::ConnectResponse d;
  while (stream->Read(&d)) {
  }
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("register again"));
}

// Heartbeats as calls (an agent sends one every third of its reconnect grace, and every
// one while its stream is down) hold the lease too, and each answer says until when; one
// with a lease that is not current is FAILED_PRECONDITION.
TEST_F(AgentHostTest, HeartbeatCallsHoldTheLeaseAndSayUntilWhen) {
  std::string token;
  ASSERT_NO_FATAL_FAILURE(LeakedToken(&token));
  v1::RegisterRequest reg;
  reg.set_agent_id("leaker-1");
  reg.set_runtime_version("test");
  v1::RegisterResponse registered;
  grpc::Status s = host_->Register(AgentCtx(token).get(), reg, &registered);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::HeartbeatRequest beat;
  beat.set_lease_id(registered.lease_id());
  beat.set_activity(v1::AGENT_ACTIVITY_IDLE);
  for (absl::Time end = absl::Now() + 3 * Lease(); absl::Now() < end;) {
    const absl::Time sent = absl::Now();
    v1::HeartbeatResponse resp;
    s = host_->Heartbeat(AgentCtx(token).get(), beat, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    const absl::Time until = absl::FromUnixSeconds(resp.lease_expire_time().seconds()) +
                             absl::Nanoseconds(resp.lease_expire_time().nanos());
    EXPECT_GE(until, sent + Lease() - absl::Milliseconds(50));
    EXPECT_LE(until, absl::Now() + Lease() + absl::Milliseconds(50));
    absl::SleepFor(Lease() / 4);  // the agent's pace
  }
  v1::Agent a = Get("leaker-1");
  EXPECT_EQ(a.state(), v1::AGENT_STATE_IDLE) << a.DebugString() << daemon_.log();
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_LT(FromProto(a.heartbeat_age()), Lease());

  beat.set_lease_id("not-the-lease");
  v1::HeartbeatResponse refused;
  s = host_->Heartbeat(AgentCtx(token).get(), beat, &refused);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("register again"));
}

// A stream's messages take effect in the order they were sent: a heartbeat that would
// only renew the lease as agentd showed the agent before (idle) does not overtake the
// status sent just before it (busy), so the agent ends as the heartbeat says, idle.
TEST_F(AgentHostTest, AHeartbeatTakesEffectAfterTheStatusSentBeforeIt) {
  std::string token;
  v1::RegisterResponse registered;
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>> stream;
  ASSERT_NO_FATAL_FAILURE(RegisteredLeaker(&ctx, absl::Seconds(30), &token, &registered, &stream));
  ASSERT_EQ(Get("leaker-1").state(), v1::AGENT_STATE_IDLE);
  v1::ConnectRequest hello;
  hello.mutable_hello()->set_lease_id(registered.lease_id());
  ASSERT_TRUE(stream->Write(hello));
  v1::ConnectRequest idle;
  idle.mutable_heartbeat()->set_lease_id(registered.lease_id());
  idle.mutable_heartbeat()->set_activity(v1::AGENT_ACTIVITY_IDLE);
  v1::ConnectRequest busy;
  busy.mutable_status()->set_activity(v1::AGENT_ACTIVITY_BUSY);
  busy.mutable_status()->set_progress("working");
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(stream->Write(idle));
    ASSERT_TRUE(stream->Write(busy));
    ASSERT_TRUE(stream->Write(idle));
  }
  // Then one the loop refuses, after all of them: the stream ends once it was handled.
  v1::ConnectRequest stale = idle;
  stale.mutable_heartbeat()->set_lease_id("not-the-lease");
  ASSERT_TRUE(stream->Write(stale));
  v1::ConnectResponse d;
  while (stream->Read(&d)) {
  }
  grpc::Status s = stream->Finish();
  ASSERT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  v1::Agent a = Get("leaker-1");
  EXPECT_EQ(a.state(), v1::AGENT_STATE_IDLE) << a.DebugString();
  EXPECT_EQ(a.progress(), "");
  // Every round went busy and back to idle: no heartbeat was taken before its status.
  v1::ListEventsRequest changes;
  changes.mutable_filter()->add_kinds("agent.activity");
  changes.set_page_size(1000);
  v1::ListEventsResponse seen;
  s = client_->events().ListEvents(Ctx().get(), changes, &seen);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(seen.events_size(), 2 * kRounds);
}

TEST_F(AgentHostTest, AnAgentHeartbeatingBusyThroughALongCallIsLeftAlone) {
  Start("busy", "b1");
  v1::Agent busy;
  ASSERT_TRUE(WaitForState("b1", v1::AGENT_STATE_BUSY, &busy)) << daemon_.log();
  int64_t pid = busy.pid();
  ASSERT_GT(pid, 0);
  // Three leases go by while it stays busy: it is neither unresponsive nor restarted,
  // and what it says it is doing is shown. (A restart would reset the uptime.)
  v1::Agent a;
  ASSERT_TRUE(WaitForValue(
      [&] { return client_->GetAgent("b1"); },
      [&](const v1::Agent& g) { return FromProto(g.uptime()) >= 3 * Lease() || g.pid() != pid; },
      absl::Seconds(20), &a))
      << daemon_.log();
  EXPECT_EQ(a.state(), v1::AGENT_STATE_BUSY);
  EXPECT_EQ(a.pid(), pid);
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_EQ(a.progress(), "in a long LLM call");
  ASSERT_TRUE(a.has_heartbeat_age());
  EXPECT_LT(FromProto(a.heartbeat_age()), Lease());
  EXPECT_THAT(daemon_.log(), ::testing::Not(HasSubstr("agent b1 (pid")));
}

TEST_F(AgentHostTest, ASlowStarterThatRegistersWithinTheLeaseIsLeftAlone) {
  v1::Agent started = Start("slow", "slow-1");
  EXPECT_EQ(started.state(), v1::AGENT_STATE_STARTING);
  ASSERT_GT(started.pid(), 0);
  v1::Agent a;
  ASSERT_TRUE(WaitForState("slow-1", v1::AGENT_STATE_IDLE, &a)) << daemon_.log();
  EXPECT_EQ(a.pid(), started.pid()) << "the same process, which exec'd agentd-agent";
  EXPECT_EQ(a.restarts(), 0);
}

TEST_F(AgentHostTest, AnAgentThatDoesNotRegisterWithinTheLeaseIsRestarted) {
  v1::Agent started = Start("stuck", "stuck-1");
  ASSERT_GT(started.pid(), 0);
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("stuck-1"); },
                           [&](const v1::Agent& a) {
                             return a.restarts() >= 1 && a.pid() > 0 && a.pid() != started.pid();
                           },
                           absl::Seconds(20)))
      << daemon_.log();
  EXPECT_THAT(daemon_.log(), HasSubstr(absl::StrCat("agent stuck-1 (pid ", started.pid(),
                                                    ") is unresponsive: did not register "
                                                    "within ",
                                                    absl::FormatDuration(Lease()))));
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(started.pid()); }, absl::Seconds(10)))
      << "the first process " << started.pid() << " was left behind";
}

TEST_F(AgentHostTest, AnAgentWhoseDaemonIsGoneExitsAfterTheGracePeriod) {
  Start("worker", "w3");
  v1::Agent idle;
  ASSERT_TRUE(WaitForState("w3", v1::AGENT_STATE_IDLE, &idle)) << daemon_.log();
  int64_t pid = idle.pid();
  ASSERT_GT(pid, 0);
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  // The agent retries for its grace (AGENTD_RECONNECT_GRACE, one lease here), then exits
  // by itself.
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, absl::Seconds(20)))
      << "agent pid " << pid << " outlived its daemon";
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
  WriteFile(dir.Join("agentd.yaml"), absl::StrCat(R"(
supervision: {heartbeat: {interval: 100ms, ttl: )",
                                                  Yaml(Scaled(absl::Seconds(2))), R"(}}
providers: {paid: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key_env: AGENTD_TEST_KEY}}
models: {m: {provider: paid, model: test-model}}
roles: {worker: {model: m}}
)"));
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml"), "--log-level", "debug"},
                           {"AGENTD_TEST_KEY=" + key}))
      << daemon.log();
  Client client = daemon.client();
  v1::StartAgentRequest req;
  req.set_role("worker");
  req.set_agent_id("paid-1");
  v1::StartAgentResponse resp;
  grpc::Status s = client.agents().StartAgent(Ctx().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_GT(resp.agent().pid(), 0);
  ASSERT_TRUE(WaitForValue([&] { return client.GetAgent("paid-1"); },
                           [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_IDLE; },
                           absl::Seconds(10)))
      << daemon.log();
  // The agent got it on a descriptor (AGENTD_KEYS_FD), not in its environment…
  // (containment_daemon_test.cc shows that it reaches the provider.)
  EXPECT_EQ(ReadFileOrEmpty(absl::StrCat("/proc/", resp.agent().pid(), "/environ")).find(key),
            std::string::npos);
  ASSERT_EQ(RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "stop", "paid-1"}).exit_code,
            0);
  std::optional<int> st = daemon.Stop();
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  // …and nothing written down has it.
  RunResult grep = RunCommand({"grep", "-r", "-l", "-a", key, dir.path()});
  EXPECT_EQ(grep.out, "") << "the key is in these files";
  EXPECT_EQ(grep.exit_code, 1) << grep.err;  // grep: 1 = no match
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// An agent this test plays: agentd started a token_leaker for it (role ceo or helper),
// and the test acts with its token and holds its Connect stream open, so that agentd
// hands it tasks as it would hand them to agentd-agent.
struct Played {
  std::string id, token;
  v1::TaskAssignment assignment;  // the first task agentd handed it
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ConnectRequest, v1::ConnectResponse>> stream;
  ~Played() {
    if (stream == nullptr) return;
    ctx->TryCancel();
    (void)stream->Finish();
  }
  const std::string& task() const { return assignment.task().id(); }
};

// A context (with Ctx's deadline) that acts with `p`'s token.
std::unique_ptr<grpc::ClientContext> As(const Played& p) { return AgentCtx(p.token); }

class HeldTaskTest : public AgentHostTest {
 protected:
  // Submits a goal; its id ("" with a failure recorded when refused).
  std::string SubmitGoal(const std::string& text) {
    v1::SubmitGoalRequest req;
    req.set_text(text);
    v1::SubmitGoalResponse resp;
    grpc::Status s = client_->tasks().SubmitGoal(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.goal().id();
  }
  // Plays agent `id` (once agentd has started it and it wrote its token): connects and
  // waits for the task agentd hands it; with `capabilities`, registers with them first.
  // Fatal failures: call in ASSERT_NO_FATAL_FAILURE.
  void Play(const std::string& id, Played* p, const std::vector<std::string>& capabilities = {}) {
    p->id = id;
    ASSERT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("tokens/" + id)); },
                             [](const std::string& t) { return !t.empty(); }, absl::Seconds(10),
                             &p->token))
        << "agentd did not start " << id << "\n"
        << daemon_.log();
    if (!capabilities.empty()) {
      v1::RegisterRequest reg;
      reg.set_agent_id(id);
      for (const std::string& c : capabilities) reg.add_capabilities(c);
      v1::RegisterResponse registered;
      grpc::Status s = host_->Register(AgentCtx(p->token).get(), reg, &registered);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    p->ctx = Ctx(absl::Seconds(60));
    p->ctx->AddMetadata("authorization", "Bearer " + p->token);
    p->stream = host_->Connect(p->ctx.get());
    v1::ConnectRequest hello;
    hello.mutable_hello();
    ASSERT_TRUE(p->stream->Write(hello));
    v1::ConnectResponse d;
    while (p->stream->Read(&d)) {
      if (d.has_task_assignment()) {
        p->assignment = d.task_assignment();
        return;
      }
    }
    FAIL() << "agentd handed " << id << " no task\n" << daemon_.log();
  }
  // Two goals, g-1 held by ceo-1 and g-2 by ceo-2.
  void TwoGoals(Played* ceo1, Played* ceo2) {
    std::string g1 = SubmitGoal("first goal");
    ASSERT_NO_FATAL_FAILURE(Play("ceo-1", ceo1));
    ASSERT_EQ(ceo1->task(), g1);
    std::string g2 = SubmitGoal("second goal");
    ASSERT_NO_FATAL_FAILURE(Play("ceo-2", ceo2));
    ASSERT_EQ(ceo2->task(), g2);
  }
  // Releases the reservations agentd made with `p`'s assignment, as an agent does that
  // does not use them: release_reservation_id on its next requests (here each a guess of
  // no tokens).
  void ReleaseGiven(const Played& p) {
    for (const v1::BudgetReservation& r : p.assignment.reservations()) {
      v1::ReserveBudgetRequest req;
      req.set_task_id(p.task());
      req.set_provider("local");
      req.set_model("test-model");
      req.set_ahead(true);
      req.set_release_reservation_id(r.id());
      v1::ReserveBudgetResponse resp;
      grpc::Status s = host_->ReserveBudget(As(p).get(), req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
    }
  }
  // agentctl on this test's daemon.
  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }
  // RequestConsent as `p`; the call's status, the response in `*out`.
  grpc::Status Ask(const Played& p, const v1::RequestConsentRequest& req,
                   v1::RequestConsentResponse* out) {
    return host_->RequestConsent(As(p).get(), req, out);
  }
  // The request `id` as its agent `p` sees it.
  v1::ConsentRequest Decision(const Played& p, const std::string& id) {
    v1::GetConsentDecisionRequest g;
    g.set_consent_request_id(id);
    v1::GetConsentDecisionResponse d;
    grpc::Status s = host_->GetConsentDecision(As(p).get(), g, &d);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return d.consent_request();
  }
  v1::Budget GoalBudget(const std::string& goal) {
    v1::GetBudgetRequest req;
    req.set_scope(v1::BUDGET_SCOPE_GOAL);
    req.set_scope_id(goal);
    v1::GetBudgetResponse resp;
    grpc::Status s = client_->usage().GetBudget(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.budget();
  }
};

v1::RequestConsentRequest NetworkRequest(const std::string& task, const std::string& key,
                                         const std::string& url = "https://example.com") {
  v1::RequestConsentRequest req;
  req.set_task_id(task);
  req.set_tool("shell.run");
  req.set_kind(v1::CONSENT_KIND_NETWORK);
  req.set_summary("run `curl " + url + "` with network");
  (*req.mutable_details())["argv"] = "[\"curl\", \"" + url + "\"]";
  req.set_request_id(key);
  return req;
}

v1::RequestConsentRequest ReadRequest(const std::string& task, const std::string& path,
                                      const std::string& key) {
  v1::RequestConsentRequest req;
  req.set_task_id(task);
  req.set_tool("fs.read");
  req.set_kind(v1::CONSENT_KIND_PATH_OUTSIDE_WORKSPACE);
  req.set_summary("read README.md, nothing else");  // the agent's words: not shown
  (*req.mutable_details())["path"] = path;
  req.set_request_id(key);
  return req;
}

TEST_F(AgentHostTest, AnAgentCannotAskToOpenAnEditorOnTheHost) {
  v1::RequestConsentRequest req = NetworkRequest("t1", "call-editor");
  req.set_kind(v1::CONSENT_KIND_OPEN_EDITOR);
  (*req.mutable_details())["path"] = "/etc";
  v1::RequestConsentResponse asked;
  std::string token;
  ASSERT_NO_FATAL_FAILURE(LeakedToken(&token));
  grpc::Status s = host_->RequestConsent(AgentCtx(token).get(), req, &asked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
}

TEST_F(HeldTaskTest, AConsentRequestIsListedAndAPersonDecidesIt) {
  Played ceo;
  std::string goal = SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo));
  v1::RequestConsentResponse asked;
  grpc::Status s = Ask(ceo, NetworkRequest(goal, "call-1"), &asked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(asked.consent_request_id().empty());
  EXPECT_EQ(asked.status(), v1::CONSENT_STATUS_PENDING);
  // The same call asking again gets the same request.
  v1::RequestConsentResponse again;
  s = Ask(ceo, NetworkRequest(goal, "call-1"), &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.consent_request_id(), asked.consent_request_id());

  RunResult list = Ctl({"get", "consents"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, ::testing::ContainsRegex(asked.consent_request_id() +
                                                 " +ceo-1 +shell.run +pending +run `curl"));
  EXPECT_EQ(Decision(ceo, asked.consent_request_id()).status(), v1::CONSENT_STATUS_PENDING);
  RunResult approve = Ctl({"consent", "approve", asked.consent_request_id(), "--reason", "once"});
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_THAT(approve.out, HasSubstr("approved"));
  v1::ConsentRequest d = Decision(ceo, asked.consent_request_id());
  EXPECT_EQ(d.status(), v1::CONSENT_STATUS_APPROVED);
  EXPECT_EQ(d.decision_reason(), "once");
  EXPECT_EQ(d.decided_by(), "human:local");
  EXPECT_EQ(d.goal_id(), goal);
  RunResult twice = Ctl({"consent", "deny", asked.consent_request_id()});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_THAT(twice.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(twice.err, HasSubstr("already APPROVED"));

  v1::RequestConsentResponse second;
  s = Ask(ceo, NetworkRequest(goal, "call-2", "https://example.org"), &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_NE(second.consent_request_id(), asked.consent_request_id());
  ASSERT_EQ(
      Ctl({"consent", "deny", second.consent_request_id(), "--reason", "no network"}).exit_code, 0);
  EXPECT_EQ(Decision(ceo, second.consent_request_id()).status(), v1::CONSENT_STATUS_DENIED);
  EXPECT_THAT(Ctl({"get", "consents"}).out, HasSubstr("No pending consent requests"));
  EXPECT_THAT(Ctl({"get", "consents", "--all"}).out, HasSubstr("denied"));
}

// Providers repeat tool-call ids (Ollama's codec numbers them call_1… in every
// response): an approval of one request must not pass for a later one that reuses its
// id with other details, and what a person is shown comes from the details, not from
// the agent's summary.
TEST_F(HeldTaskTest, AConsentDecisionCoversExactlyTheRequestItWasGiven) {
  Played ceo;
  std::string goal = SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo));
  v1::RequestConsentResponse first;
  grpc::Status s = Ask(ceo, ReadRequest(goal, "/srv/notes.txt", "call_1/path"), &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(Ctl({"consent", "approve", first.consent_request_id()}).exit_code, 0);
  ASSERT_EQ(Decision(ceo, first.consent_request_id()).status(), v1::CONSENT_STATUS_APPROVED);

  // The same id for another file: a new request, which waits for a person.
  v1::RequestConsentResponse other;
  s = Ask(ceo, ReadRequest(goal, "/home/me/.ssh/id_ed25519", "call_1/path"), &other);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(other.consent_request_id(), first.consent_request_id());
  EXPECT_EQ(other.status(), v1::CONSENT_STATUS_PENDING);
  v1::ConsentRequest shown = Decision(ceo, other.consent_request_id());
  EXPECT_EQ(shown.summary(), "read /home/me/.ssh/id_ed25519 (outside the workspace)");
  EXPECT_THAT(shown.summary(), Not(HasSubstr("README")));
  // The first file again, whatever id it comes with: the request already decided.
  v1::RequestConsentResponse same;
  s = Ask(ceo, ReadRequest(goal, "/srv/notes.txt", "call_9/path"), &same);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(same.consent_request_id(), first.consent_request_id());
  EXPECT_EQ(same.status(), v1::CONSENT_STATUS_APPROVED);
  // A request without details gives a person nothing to decide on.
  v1::RequestConsentRequest bare = ReadRequest(goal, "/x", "call_2");
  bare.clear_details();
  EXPECT_EQ(Ask(ceo, bare, &same).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// "Remember for this goal" covers the same tool, kind and details in the goal — asked by
// another agent for another task of it — and nothing else: not another path, not
// another goal.
TEST_F(HeldTaskTest, ARememberedApprovalCoversTheSameDetailsInTheSameGoalOnly) {
  Played ceo1, ceo2, helper;
  ASSERT_NO_FATAL_FAILURE(TwoGoals(&ceo1, &ceo2));
  v1::DelegateRequest del;
  del.set_parent_task_id(ceo1.task());
  del.set_role("helper");
  del.mutable_input()->set_instructions("help");
  v1::DelegateResponse child;
  grpc::Status s = host_->Delegate(As(ceo1).get(), del, &child);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_NO_FATAL_FAILURE(Play("helper-1", &helper));
  ASSERT_EQ(helper.task(), child.task().id());

  v1::RequestConsentResponse asked;
  s = Ask(ceo1, ReadRequest(ceo1.task(), "/srv/notes.txt", "call_1"), &asked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  RunResult ok = Ctl({"consent", "approve", asked.consent_request_id(), "--remember"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;

  v1::RequestConsentResponse covered;
  s = Ask(helper, ReadRequest(helper.task(), "/srv/notes.txt", "call_1"), &covered);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(covered.consent_request_id(), asked.consent_request_id());
  EXPECT_EQ(covered.status(), v1::CONSENT_STATUS_APPROVED);
  v1::ConsentRequest d = Decision(helper, covered.consent_request_id());
  EXPECT_EQ(d.decided_by(), "remembered");
  EXPECT_THAT(d.decision_reason(), HasSubstr(asked.consent_request_id()));

  v1::RequestConsentResponse other_path;
  s = Ask(helper, ReadRequest(helper.task(), "/srv/notes.txt.bak", "call_1"), &other_path);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(other_path.status(), v1::CONSENT_STATUS_PENDING);
  v1::RequestConsentRequest other_kind = ReadRequest(helper.task(), "/srv/notes.txt", "call_2");
  other_kind.set_tool("fs.write");
  v1::RequestConsentResponse write;
  s = Ask(helper, other_kind, &write);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(write.status(), v1::CONSENT_STATUS_PENDING);
  v1::RequestConsentResponse other_goal;
  s = Ask(ceo2, ReadRequest(ceo2.task(), "/srv/notes.txt", "call_1"), &other_goal);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(other_goal.status(), v1::CONSENT_STATUS_PENDING);
}

// An agent names only tasks it holds: not another goal's for a consent, a message or
// usage.
TEST_F(HeldTaskTest, AnAgentActsOnlyOnTasksItHolds) {
  Played ceo1, ceo2;
  ASSERT_NO_FATAL_FAILURE(TwoGoals(&ceo1, &ceo2));
  const std::string theirs = ceo2.task();
  const std::string refusal = absl::StrCat("task \"", theirs, "\" is not held by agent \"ceo-1\"");

  v1::RequestConsentResponse asked;
  grpc::Status s = Ask(ceo1, NetworkRequest(theirs, "call-1"), &asked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(refusal));
  s = Ask(ceo1, NetworkRequest("t-999", "call-1"), &asked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  s = Ask(ceo1, NetworkRequest("", "call-1"), &asked);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();

  v1::SendRequest msg;
  msg.set_to("human");
  msg.set_body("about their task");
  msg.set_task_id(theirs);
  v1::SendResponse sent;
  s = host_->Send(As(ceo1).get(), msg, &sent);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(refusal));
  msg.set_task_id(ceo1.task());  // its own: delivered
  s = host_->Send(As(ceo1).get(), msg, &sent);
  EXPECT_TRUE(s.ok()) << s.error_message();

  v1::ReportUsageRequest use;
  use.mutable_record()->set_task_id(theirs);
  use.mutable_record()->set_provider("local");
  use.mutable_record()->set_model("test-model");
  use.mutable_record()->set_prompt_tokens(1000);
  v1::ReportUsageResponse used;
  s = host_->ReportUsage(As(ceo1).get(), use, &used);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr(refusal));
  EXPECT_EQ(GoalBudget(theirs).used_tokens(), 0);
}

// A side effect's audit entry names what the call acted on: from its ToolCallFinished's
// call_summary (as agentd-agent sends it, with no ToolCallStarted), or else from the
// summary of the call's ToolCallStarted (as an agent of another make may send it); events
// that come in one TaskEventBatch count as if sent one by one, in order.
TEST_F(HeldTaskTest, AToolCallsAuditEntryNamesItsTargetWithOrWithoutAStartedEvent) {
  Played ceo1, ceo2;
  ASSERT_NO_FATAL_FAILURE(TwoGoals(&ceo1, &ceo2));
  auto send = [&](auto fill) {
    v1::ConnectRequest msg;
    v1::TaskEvent* ev = msg.mutable_task_event();
    ev->set_task_id(ceo1.task());
    ev->set_attempt(ceo1.assignment.attempt());
    fill(ev);
    ASSERT_TRUE(ceo1.stream->Write(msg));
  };
  ASSERT_NO_FATAL_FAILURE(send([](v1::TaskEvent* ev) {
    v1::ToolCallStarted* s = ev->mutable_tool_call_started();
    s->set_tool_call_id("call-1");
    s->set_tool("shell.run");
    s->set_summary("make test");
  }));
  ASSERT_NO_FATAL_FAILURE(send([](v1::TaskEvent* ev) {
    v1::ToolCallFinished* f = ev->mutable_tool_call_finished();
    f->set_tool_call_id("call-1");
    f->set_tool("shell.run");
    f->set_ok(true);
  }));
  ASSERT_NO_FATAL_FAILURE(send([](v1::TaskEvent* ev) {
    v1::ToolCallFinished* f = ev->mutable_tool_call_finished();
    f->set_tool_call_id("call-2");
    f->set_tool("fs.write");
    f->set_call_summary("notes/plan.md");
    f->set_ok(true);
  }));
  // Events that queued up in the agent come in one batch, handled in order.
  v1::ConnectRequest batch;
  for (const auto& [id, tool, path] : {std::tuple("call-3", "fs.edit", "a.txt"),
                                       std::tuple("call-4", "git.commit", "Add a.txt")}) {
    v1::TaskEvent* ev = batch.mutable_task_events()->add_events();
    ev->set_task_id(ceo1.task());
    ev->set_attempt(ceo1.assignment.attempt());
    v1::ToolCallFinished* f = ev->mutable_tool_call_finished();
    f->set_tool_call_id(id);
    f->set_tool(tool);
    f->set_call_summary(path);
    f->set_ok(true);
  }
  ASSERT_TRUE(ceo1.stream->Write(batch));
  std::vector<std::string> seen;
  EXPECT_TRUE(WaitForValue(
      [&] {
        v1::ListAuditEntriesRequest req;
        req.set_page_size(1000);
        req.set_actor_id("ceo-1");
        v1::ListAuditEntriesResponse resp;
        std::vector<std::string> out;
        if (!client_->audit().ListAuditEntries(Ctx().get(), req, &resp).ok()) return out;
        for (const v1::AuditEntry& e : resp.entries()) {
          out.push_back(absl::StrCat(e.action(), " ", e.target(), " ", e.task_id()));
        }
        return out;
      },
      [](const std::vector<std::string>& v) { return v.size() >= 4; }, absl::Seconds(10), &seen))
      << daemon_.log();
  EXPECT_THAT(seen, ElementsAre(absl::StrCat("shell.run make test ", ceo1.task()),
                                absl::StrCat("fs.write notes/plan.md ", ceo1.task()),
                                absl::StrCat("fs.edit a.txt ", ceo1.task()),
                                absl::StrCat("git.commit Add a.txt ", ceo1.task())));
}

// A task is handed out with reservations for its run's first two model calls, so that
// neither waits for the ledger: the agent's, for its task, the second larger (room for
// the first call's tools), held in the goal's budget until used or released. Only to an
// agent that said it takes them: another would leave them held for the whole run.
TEST_F(HeldTaskTest, ATaskIsHandedOutWithReservationsForItsFirstTwoCallsToAnAgentThatTakesThem) {
  Played ceo1, ceo2;
  std::string g1 = SubmitGoal("first goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo1, {"sandbox.bwrap", "assignment.reservations"}));
  ASSERT_EQ(ceo1.task(), g1);
  std::string g2 = SubmitGoal("second goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-2", &ceo2, {"sandbox.bwrap"}));
  ASSERT_EQ(ceo2.task(), g2);
  EXPECT_EQ(ceo2.assignment.reservations_size(), 0) << ceo2.assignment.ShortDebugString();
  EXPECT_EQ(GoalBudget(g2).reserved_tokens(), 0);

  const auto& given = ceo1.assignment.reservations();
  ASSERT_EQ(given.size(), 2) << ceo1.assignment.ShortDebugString();
  int64_t held = 0;
  for (const v1::BudgetReservation& r : given) {
    EXPECT_EQ(r.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
    EXPECT_EQ(r.agent_id(), "ceo-1");
    EXPECT_EQ(r.task_id(), ceo1.task());
    EXPECT_EQ(r.goal_id(), ceo1.task());
    EXPECT_FALSE(r.model().empty());  // the ceo role's
    EXPECT_TRUE(r.has_expire_time());
    held += r.estimated_tokens();
  }
  EXPECT_GT(given[1].estimated_tokens(), given[0].estimated_tokens());
  EXPECT_NE(given[0].id(), given[1].id());
  EXPECT_EQ(GoalBudget(ceo1.task()).reserved_tokens(), held);
  // Released by the agent's next request, they hold nothing more.
  ReleaseGiven(ceo1);
  EXPECT_EQ(GoalBudget(ceo1.task()).reserved_tokens(), 0);
}

// A submission retried with its request_id (a browser's, an A2A message's id) answers
// with the goal the first one created; another id makes another goal; an id too long to
// be a key is refused, saying what and how long.
TEST_F(HeldTaskTest, ASubmissionRetriedWithItsRequestIdGetsTheSameGoal) {
  auto submit = [&](const std::string& request_id, v1::Task* goal) {
    v1::SubmitGoalRequest req;
    req.set_text("a goal");
    req.set_request_id(request_id);
    v1::SubmitGoalResponse resp;
    grpc::Status s = client_->tasks().SubmitGoal(Ctx().get(), req, &resp);
    *goal = resp.goal();
    return s;
  };
  v1::Task first, again, other;
  ASSERT_TRUE(submit("3f1c2b9e-request-1", &first).ok());
  ASSERT_TRUE(submit("3f1c2b9e-request-1", &again).ok());
  EXPECT_EQ(again.id(), first.id());
  ASSERT_TRUE(submit("3f1c2b9e-request-2", &other).ok());
  EXPECT_NE(other.id(), first.id());
  grpc::Status s = submit(std::string(300, 'r'), &other);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("request_id is 300 bytes; at most 256"));
}

// A run handed back after waiting goes on with its conversation so far: its first call's
// reservation holds what the first run's last call took (prompt and completion) and room
// for the tool results after it, beyond what a fresh run's holds.
TEST_F(HeldTaskTest, AHandedBackRunsReservationsHoldItsLastCallToo) {
  Played ceo1;
  std::string goal = SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo1, {"sandbox.bwrap", "assignment.reservations"}));
  ASSERT_EQ(ceo1.assignment.reservations_size(), 2) << ceo1.assignment.ShortDebugString();
  const int64_t fresh = ceo1.assignment.reservations(0).estimated_tokens();
  // The first run's one call, on the first reservation: 30,000 in, 5,000 out.
  v1::ReportUsageRequest use;
  v1::UsageRecord* rec = use.mutable_record();
  rec->set_reservation_id(ceo1.assignment.reservations(0).id());
  rec->set_task_id(goal);
  rec->set_provider(ceo1.assignment.reservations(0).provider());
  rec->set_model(ceo1.assignment.reservations(0).model());
  rec->set_prompt_tokens(30'000);
  rec->set_completion_tokens(5'000);
  v1::ReportUsageResponse used;
  grpc::Status s = host_->ReportUsage(As(ceo1).get(), use, &used);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // It waits with nothing delegated: handed straight back.
  v1::ConnectRequest wait;
  wait.mutable_task_event()->set_task_id(goal);
  wait.mutable_task_event()->set_attempt(ceo1.assignment.attempt());
  wait.mutable_task_event()->mutable_waiting();
  ASSERT_TRUE(ceo1.stream->Write(wait));
  v1::ConnectResponse d;
  bool handed_back = false;
  while (!handed_back && ceo1.stream->Read(&d)) {
    handed_back = d.has_task_assignment() && d.task_assignment().handbacks() == 1;
  }
  ASSERT_TRUE(handed_back) << daemon_.log();
  const v1::TaskAssignment& again = d.task_assignment();
  ASSERT_EQ(again.reservations_size(), 2) << again.ShortDebugString();
  // The assignments differ by a few bytes (the hand-back count): a few tokens either way.
  EXPECT_NEAR(again.reservations(0).estimated_tokens() - fresh, 30'000 + 5'000 + 8'192, 16)
      << "fresh run " << fresh << ", handed back " << again.reservations(0).estimated_tokens();
  EXPECT_GT(again.reservations(1).estimated_tokens(), again.reservations(0).estimated_tokens());
  // The first run's reservations went with it; the new run's are what the goal holds.
  EXPECT_EQ(GoalBudget(goal).reserved_tokens(),
            again.reservations(0).estimated_tokens() + again.reservations(1).estimated_tokens());
}

// An agent sends its last outcome again when its stream reconnects. One of a run that
// agentd has handed back since must not end the run that goes on: it is dropped, and the
// new run's own outcome counts.
TEST_F(HeldTaskTest, AnOutcomeOfARunHandedBackSinceIsDropped) {
  Played ceo1;
  std::string goal = SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo1));
  ASSERT_EQ(ceo1.assignment.handbacks(), 0);
  auto send = [&](v1::TaskEvent ev, int32_t handbacks) {
    ev.set_task_id(goal);
    ev.set_attempt(ceo1.assignment.attempt());
    ev.set_handbacks(handbacks);
    v1::ConnectRequest m;
    *m.mutable_task_event() = std::move(ev);
    return ceo1.stream->Write(m);
  };
  // The first run waits, with nothing delegated: agentd hands it straight back.
  v1::TaskEvent wait;
  wait.mutable_waiting();
  ASSERT_TRUE(send(wait, 0));
  v1::ConnectResponse d;
  bool handed_back = false;
  while (!handed_back && ceo1.stream->Read(&d)) {
    handed_back = d.has_task_assignment() && d.task_assignment().handbacks() == 1;
  }
  ASSERT_TRUE(handed_back) << daemon_.log();
  // The first run's outcome again, as after a reconnect; then the second run's.
  v1::TaskEvent stale;
  stale.mutable_failed()->set_code(v1::TASK_FAILURE_CODE_AGENT_REPORTED);
  stale.mutable_failed()->set_reason("the first run failed");
  ASSERT_TRUE(send(stale, 0));
  v1::TaskEvent done;
  done.mutable_completed()->mutable_result()->set_summary("the second run's work");
  ASSERT_TRUE(send(done, 1));
  v1::Task t;
  EXPECT_TRUE(WaitForValue(
      [&] {
        v1::GetTaskRequest get;
        get.set_task_id(goal);
        v1::GetTaskResponse got;
        (void)client_->tasks().GetTask(Ctx().get(), get, &got);
        return got.task();
      },
      [](const v1::Task& x) {
        return x.status() == v1::TASK_STATUS_COMPLETED || x.status() == v1::TASK_STATUS_FAILED;
      },
      absl::Seconds(10), &t))
      << daemon_.log();
  EXPECT_EQ(t.status(), v1::TASK_STATUS_COMPLETED) << t.ShortDebugString();
  EXPECT_EQ(t.result().summary(), "the second run's work");
  EXPECT_EQ(t.attempts(), 1) << "the stale failure was taken for the run's";
}

TEST_F(HeldTaskTest, AReservationIsSettledOnlyByTheAgentThatMadeIt) {
  Played ceo1, ceo2;
  ASSERT_NO_FATAL_FAILURE(TwoGoals(&ceo1, &ceo2));
  v1::ReserveBudgetRequest res;
  res.set_task_id(ceo2.task());
  res.set_provider("local");
  res.set_model("test-model");
  res.set_estimated_tokens(1000);
  v1::ReserveBudgetResponse held;
  grpc::Status s = host_->ReserveBudget(As(ceo2).get(), res, &held);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(held.reservation().status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  ASSERT_EQ(GoalBudget(ceo2.task()).reserved_tokens(), 1000);

  v1::ReportUsageRequest use;
  use.mutable_record()->set_reservation_id(held.reservation().id());
  use.mutable_record()->set_provider("local");
  use.mutable_record()->set_model("test-model");
  use.mutable_record()->set_prompt_tokens(1);
  v1::ReportUsageResponse used;
  s = host_->ReportUsage(As(ceo1).get(), use, &used);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("was made by agent \"ceo-2\""));
  EXPECT_EQ(GoalBudget(ceo2.task()).reserved_tokens(), 1000) << "released by another agent";

  // Its own agent settles it, and the usage goes to the task it was reserved for.
  s = host_->ReportUsage(As(ceo2).get(), use, &used);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(used.record().task_id(), ceo2.task());
  v1::Budget b = GoalBudget(ceo2.task());
  EXPECT_EQ(b.reserved_tokens(), 0);
  EXPECT_EQ(b.used_tokens(), 1);
}

// One round trip per model call: a reservation can carry the previous call's usage
// (settle), release a reservation its call did not use, and be asked for ahead of its
// call: then it fills a budget only up to half, its refusal leaves no event, and a call
// that only such guesses stand in the way of is told to ask again, not refused for good.
TEST_F(HeldTaskTest, AReservationAheadCarriesTheLastCallAndNeverRefusesACallForGood) {
  Played ceo1, ceo2;
  ASSERT_NO_FATAL_FAILURE(TwoGoals(&ceo1, &ceo2));
  const std::string goal = ceo1.task();
  v1::SetBudgetRequest limit;
  limit.set_scope(v1::BUDGET_SCOPE_GOAL);
  limit.set_scope_id(goal);
  limit.mutable_limit()->set_max_tokens(10000);
  v1::SetBudgetResponse set;
  grpc::Status s = client_->usage().SetBudget(Ctx().get(), limit, &set);
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto reserve = [&](const Played& as, v1::ReserveBudgetRequest req, grpc::Status* st) {
    req.set_task_id(goal);
    req.set_provider("local");
    req.set_model("test-model");
    v1::ReserveBudgetResponse resp;
    *st = host_->ReserveBudget(As(as).get(), req, &resp);
    return resp.reservation();
  };
  auto granted = [&](const Played& as, const v1::ReserveBudgetRequest& req) {
    grpc::Status st;
    v1::BudgetReservation r = reserve(as, req, &st);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return r;
  };
  v1::ReserveBudgetRequest first;
  first.set_estimated_tokens(1000);
  v1::BudgetReservation call = granted(ceo1, first);
  ASSERT_EQ(call.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);

  // Another agent cannot settle it: refused, and nothing is recorded.
  v1::ReserveBudgetRequest next;
  next.set_ahead(true);
  next.set_estimated_tokens(4500);
  v1::UsageRecord* used = next.mutable_settle();
  used->set_id("call-1");
  used->set_reservation_id(call.id());
  used->set_provider("local");
  used->set_model("test-model");
  used->set_prompt_tokens(500);
  used->set_completion_tokens(100);
  grpc::Status st;
  reserve(ceo2, next, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_EQ(GoalBudget(goal).used_tokens(), 0);
  EXPECT_EQ(GoalBudget(goal).reserved_tokens(), 1000);

  // The call used 600 tokens; a guess of 4,500 for the next would fill past half (5,000).
  v1::BudgetReservation guess = granted(ceo1, next);
  EXPECT_EQ(guess.status(), v1::BUDGET_RESERVATION_STATUS_REFUSED);
  EXPECT_FALSE(guess.has_retry_after());
  v1::Budget b = GoalBudget(goal);
  EXPECT_EQ(b.used_tokens(), 600) << "the call is recorded whatever the guess";
  EXPECT_EQ(b.reserved_tokens(), 0) << "its reservation is settled";
  // The same record again (a retried request) counts once; a guess of 4,000 fits.
  next.set_estimated_tokens(4000);
  guess = granted(ceo1, next);
  ASSERT_EQ(guess.status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  b = GoalBudget(goal);
  EXPECT_EQ(b.used_tokens(), 600);
  EXPECT_EQ(b.reserved_tokens(), 4000);
  // A call that asks for itself may take the rest: 600 + 4,000 + 2,000 of 10,000.
  v1::ReserveBudgetRequest exact;
  exact.set_estimated_tokens(2000);
  EXPECT_EQ(granted(ceo1, exact).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  // One of 5,000 would fit but for the guess: ask again, no refusal recorded.
  exact.set_estimated_tokens(5000);
  v1::BudgetReservation wait = granted(ceo1, exact);
  EXPECT_EQ(wait.status(), v1::BUDGET_RESERVATION_STATUS_REFUSED);
  EXPECT_TRUE(wait.has_retry_after()) << wait.ShortDebugString();
  EXPECT_THAT(wait.refusal_reason(), HasSubstr("held ahead of other calls"));

  // Only the agent that made a reservation releases it.
  v1::ReserveBudgetRequest theirs;
  theirs.set_estimated_tokens(10);
  theirs.set_release_reservation_id(guess.id());
  reserve(ceo2, theirs, &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("was made by agent \"ceo-1\""));
  EXPECT_EQ(GoalBudget(goal).reserved_tokens(), 6000);
  v1::ReserveBudgetRequest smaller;
  smaller.set_estimated_tokens(100);
  smaller.set_release_reservation_id(guess.id());
  EXPECT_EQ(granted(ceo1, smaller).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);
  EXPECT_EQ(GoalBudget(goal).reserved_tokens(), 2100);
  // The guess gone, the call of 5,000 that waited for it is granted.
  EXPECT_EQ(granted(ceo1, exact).status(), v1::BUDGET_RESERVATION_STATUS_GRANTED);

  // Neither the refused guess nor the call told to ask again left a refusal event.
  v1::ListEventsRequest refusals;
  refusals.mutable_filter()->add_kinds("budget.refused");
  v1::ListEventsResponse none;
  s = client_->events().ListEvents(Ctx().get(), refusals, &none);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(none.events_size(), 0) << none.ShortDebugString();
}

// 1e308 dollars was accepted and kept for good. Costs are the daemon's tokens × price;
// a model not in the price table pays the highest configured rates; tokens are clamped.
TEST_F(HeldTaskTest, AbsurdCostsAndTokenCountsAreNotBelieved) {
  Played ceo;
  std::string goal = SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo));
  v1::ReportUsageRequest use;
  v1::UsageRecord* rec = use.mutable_record();
  rec->set_task_id(goal);
  rec->set_provider("local");
  rec->set_model("test-model");  // $1 and $2 per million tokens
  rec->set_prompt_tokens(1'000'000'000'000'000);
  rec->set_completion_tokens(100);
  rec->set_cost_usd(1e308);
  v1::ReportUsageResponse used;
  grpc::Status s = host_->ReportUsage(As(ceo).get(), use, &used);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(used.record().prompt_tokens(), 10'000'000);
  EXPECT_DOUBLE_EQ(used.record().cost_usd(), (10'000'000 * 1.0 + 100 * 2.0) / 1e6);

  rec->set_model("not-in-the-table");  // priced as the dearest: $10 and $30
  rec->set_prompt_tokens(1000);
  rec->set_completion_tokens(1000);
  s = host_->ReportUsage(As(ceo).get(), use, &used);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_DOUBLE_EQ(used.record().cost_usd(), (1000 * 10.0 + 1000 * 30.0) / 1e6);

  v1::Budget b = GoalBudget(goal);
  EXPECT_NEAR(b.used_cost_usd(), 10.0002 + 0.04, 1e-9);
  // A reservation is priced by the daemon too, whatever the agent reckons.
  v1::ReserveBudgetRequest res;
  res.set_task_id(goal);
  res.set_provider("local");
  res.set_model("test-model");
  res.set_estimated_tokens(1000);
  res.set_estimated_cost_usd(1e308);
  v1::ReserveBudgetResponse held;
  s = host_->ReserveBudget(As(ceo).get(), res, &held);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_DOUBLE_EQ(held.reservation().estimated_cost_usd(), 1000 * 2.0 / 1e6);
}

TEST_F(HeldTaskTest, AConsentRequestNobodyDecidesExpiresDenied) {
  Played ceo;
  SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo));
  const std::string& token = ceo.token;
  v1::RequestConsentRequest req = NetworkRequest(ceo.task(), "call-3");
  req.mutable_timeout()->set_nanos(300 * 1000 * 1000);
  v1::RequestConsentResponse asked;
  grpc::Status s = host_->RequestConsent(AgentCtx(token).get(), req, &asked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::GetConsentDecisionRequest g;
  g.set_consent_request_id(asked.consent_request_id());
  v1::ConsentRequest decided;
  ASSERT_TRUE(WaitForValue(
      [&] {
        v1::GetConsentDecisionResponse d;
        (void)host_->GetConsentDecision(AgentCtx(token).get(), g, &d);  // a poll: state only
        return d.consent_request();
      },
      [](const v1::ConsentRequest& r) { return r.status() == v1::CONSENT_STATUS_EXPIRED; },
      absl::Seconds(10), &decided));
  EXPECT_THAT(decided.decision_reason(), HasSubstr("treated as denied"));
}

TEST_F(HeldTaskTest, APendingConsentRequestSurvivesADaemonRestart) {
  Played ceo;
  SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo));
  v1::RequestConsentResponse asked;
  grpc::Status s = Ask(ceo, NetworkRequest(ceo.task(), "call-5"), &asked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(asked.consent_request_id().empty());
  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  RunResult list = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "get", "consents"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out,
              ::testing::ContainsRegex(asked.consent_request_id() + " +ceo-1 +shell.run +pending"));
  // And it can be decided there and then; ids go on after it.
  RunResult approve = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "consent",
                                  "approve", asked.consent_request_id()});
  EXPECT_EQ(approve.exit_code, 0) << approve.err;
}

TEST_F(HeldTaskTest, ConsentRequestsAreAgentsOwnAndNeedAToken) {
  Played ceo;
  SubmitGoal("a goal");
  ASSERT_NO_FATAL_FAILURE(Play("ceo-1", &ceo));
  const std::string& token = ceo.token;
  v1::RequestConsentResponse asked;
  grpc::Status s = Ask(ceo, NetworkRequest(ceo.task(), "call-4"), &asked);
  ASSERT_TRUE(s.ok()) << s.error_message();
  v1::GetConsentDecisionRequest g;
  g.set_consent_request_id(asked.consent_request_id());
  v1::GetConsentDecisionResponse d;
  EXPECT_EQ(host_->GetConsentDecision(Ctx().get(), g, &d).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::RequestConsentResponse none;
  EXPECT_EQ(host_->RequestConsent(Ctx().get(), NetworkRequest(ceo.task(), "x"), &none).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  g.set_consent_request_id("consent-999");
  EXPECT_EQ(host_->GetConsentDecision(AgentCtx(token).get(), g, &d).error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::RequestConsentRequest empty;
  EXPECT_EQ(host_->RequestConsent(AgentCtx(token).get(), empty, &none).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Its own agent may read it (so the refusals below are about the token, not the id)…
  g.set_consent_request_id(asked.consent_request_id());
  s = host_->GetConsentDecision(AgentCtx(token).get(), g, &d);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // …another agent may not.
  Start("other", "other-1");
  std::string other;
  ASSERT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("token2")); },
                           [](const std::string& t) { return !t.empty(); }, absl::Seconds(10),
                           &other));
  ASSERT_NE(other, token);
  s = host_->GetConsentDecision(AgentCtx(other).get(), g, &d);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("belongs to another agent"));
}

}  // namespace
}  // namespace agentd::testing
