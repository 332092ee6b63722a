// Agents as supervised processes: the real agentd supervising real child processes
// (tests/helpers), observed through AgentService, agentctl, /proc and agentd.db.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/paths.h"
#include "common/sqlite.h"
#include "common/values.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return ctx;
}

// Live (non-zombie) processes whose environment says AGENTD_AGENT_ID=id. It scans the
// whole machine: agent ids must be unique across tests that may run in parallel.
int ProcessesOfAgent(const std::string& id) {
  int n = 0;
  DIR* proc = opendir("/proc");
  while (dirent* e = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string env = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/environ"));
    if (env.find(absl::StrCat("AGENTD_AGENT_ID=", id, std::string(1, '\0'))) == std::string::npos) {
      continue;
    }
    std::string stat = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
    size_t close = stat.rfind(')');
    if (close != std::string::npos && stat.size() > close + 2 && stat[close + 2] == 'Z') continue;
    ++n;
  }
  closedir(proc);
  return n;
}

class SupervisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string h = DirName(HelperBinary("sleeper"));
    config_ = absl::StrCat(R"(
supervision:
  restart: on-failure
  restart_sec: 50ms
  restart_max_sec: 400ms
  reset_after: 1h
  crash_loop: {max: 5, window: 1m}
  no_restart_exit_codes: [3]
  stop_timeout: 500ms
  limits: {nofile: 1000, core: 0}
roles:
  sleeper: {command: [")",
                           h, R"(/sleeper"], max_instances: 5}
  single:  {command: [")",
                           h, R"(/sleeper"], max_instances: 1}
  limited: {command: ["/bin/sleep", "1000"], limits: {nofile: 123, memory: 3GiB}}
  escaper: {command: [")",
                           h, "/escaper\", \"", dir_.Join("escaped"), R"("]}
  crasher: {command: [")",
                           h, R"(/crasher", "1", "100"]}
  done:    {command: [")",
                           h, R"(/crasher", "3", "10"]}
  ignorer: {command: [")",
                           h, "/sigterm_ignorer\", \"", dir_.Join("pids"), R"("]}
)");
  }
  void StartDaemon(const std::string& extra = "") {
    WriteFile(dir_.Join("agentd.yaml"), config_ + extra);
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    stub_ = v1::AgentService::NewStub(daemon_.UnixChannel());
  }
  absl::StatusOr<v1::Agent> StartAgent(const std::string& role, const std::string& id = "") {
    v1::StartAgentRequest req;
    req.set_role(role);
    req.set_agent_id(id);
    v1::StartAgentResponse resp;
    grpc::Status s = stub_->StartAgent(Ctx().get(), req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return resp.agent();
  }
  v1::Agent Get(const std::string& id) {
    v1::GetAgentRequest req;
    req.set_agent_id(id);
    v1::GetAgentResponse resp;
    grpc::Status s = stub_->GetAgent(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.agent();
  }
  // The "restarting in D" delays recorded in agentd.db's agent.backoff events.
  std::vector<absl::Duration> BackoffDelays(const std::string& id) {
    std::vector<absl::Duration> out;
    auto db = sqlite::Db::Open(daemon_.state_dir() + "/agentd.db", false);
    EXPECT_TRUE(db.ok());
    auto st = (*db)->Prepare(
        "SELECT payload FROM events WHERE kind = 'agent.backoff' AND agent_id = ?1 ORDER BY seq");
    st->Bind(1, id);
    while (*st->Step()) {
      std::string detail = nlohmann::json::parse(st->ColumnText(0))["detail"];
      std::string d = detail.substr(detail.find("restarting in ") + 14);
      out.push_back(*ParseDuration(d));
    }
    return out;
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::string config_;
  std::unique_ptr<v1::AgentService::Stub> stub_;
};

TEST_F(SupervisionTest, AgentctlStartsListsDescribesAndStopsAnAgent) {
  StartDaemon();
  std::vector<std::string> ctl = {AgentctlBinary(), "--socket", daemon_.socket()};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = ctl;
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  };
  RunResult start = run({"start", "sleeper", "--id", "s1"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_THAT(start.out, HasSubstr("agent s1 running, pid "));
  RunResult list = run({"get", "agents"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("ID"));
  EXPECT_THAT(list.out, ::testing::ContainsRegex("s1 +sleeper +running +[0-9]+"));
  RunResult json = run({"get", "agents", "-o", "json"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["agents"][0]["id"], "s1");
  RunResult describe = run({"describe", "agent", "s1"});
  EXPECT_THAT(describe.out, HasSubstr("state:"));
  EXPECT_THAT(describe.out, HasSubstr("running"));
  int64_t pid = Get("s1").pid();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(ProcessesOfAgent("s1"), 1);
  RunResult stop = run({"stop", "s1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_THAT(stop.out, HasSubstr("agent s1 stopped"));
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(static_cast<pid_t>(pid)); }, absl::Seconds(10)));
  EXPECT_EQ(Get("s1").last_exit().exit_code(), 0);  // the sleeper exits 0 on SIGTERM
  RunResult missing = run({"describe", "agent", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND: agent \"nope\" does not exist"));
}

TEST_F(SupervisionTest, ResourceLimitsFromConfigApplyToTheAgentsProcess) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("limited", "l1").ok());
  int64_t pid = Get("l1").pid();
  std::string limits = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/limits"));
  // The role's nofile wins over supervision's; supervision's core applies; memory is the
  // role's own.
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max open files +123 +123 +files"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max core file size +0 +0 +bytes"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max address space +3221225472 +3221225472 +bytes"));
}

// A process that left the agent's process group (setsid) is out of reach of a group kill;
// where the machine offers cgroups, the agent's cgroup still holds it and stopping the
// agent ends it too.
TEST_F(SupervisionTest, StoppingAnAgentEndsAProcessThatLeftItsGroupWhenCgroupsAreThere) {
  StartDaemon();
  v1::GetInfoResponse info;
  {
    auto sys = v1::SystemService::NewStub(daemon_.UnixChannel());
    ASSERT_TRUE(sys->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info).ok());
  }
  const std::string cgroup = info.paths().agent_cgroup();
  ASSERT_TRUE(StartAgent("escaper", "e1").ok());
  int64_t leader = Get("e1").pid();
  int64_t escaped = 0;
  ASSERT_TRUE(
      WaitFor([&] { return absl::SimpleAtoi(ReadFileOrEmpty(dir_.Join("escaped")), &escaped); },
              absl::Seconds(10)));
  ASSERT_NE(getpgid(static_cast<pid_t>(escaped)), getpgid(static_cast<pid_t>(leader)));
  if (cgroup.empty()) {
    // No cgroups here: the group kill cannot reach it, as agentd's docs say.
    EXPECT_THAT(daemon_.log(), HasSubstr("agents run without cgroups"));
    kill(static_cast<pid_t>(escaped), SIGKILL);
    return;
  }
  std::string procs;
  for (int n = 1; n < 10 && procs.empty(); ++n) {
    procs = ReadFileOrEmpty(absl::StrCat(cgroup, "/e1.", n, "/cgroup.procs"));
  }
  EXPECT_THAT(procs, HasSubstr(absl::StrCat(leader, "\n")));
  EXPECT_THAT(procs, HasSubstr(absl::StrCat(escaped, "\n")));
  RunResult stop = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "stop", "e1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(escaped); }, absl::Seconds(10)))
      << "pid " << escaped << " outlived its agent";
}

TEST_F(SupervisionTest, Kill9IsRestartedAfterBackoffWithANewPid) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("sleeper", "k1").ok());
  int64_t first = Get("k1").pid();
  ASSERT_EQ(kill(static_cast<pid_t>(first), SIGKILL), 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        v1::Agent a = Get("k1");
        return a.state() == v1::AGENT_STATE_RUNNING && a.pid() != 0 && a.pid() != first;
      },
      absl::Seconds(20)))
      << daemon_.log();
  v1::Agent a = Get("k1");
  EXPECT_EQ(a.restarts(), 1);
  RunResult status =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "status", "-o", "json"});
  nlohmann::json counters = nlohmann::json::parse(status.out)["counters"];
  EXPECT_EQ(counters["agentRestarts"], "1");
  EXPECT_EQ(counters["agentsByState"]["running"], "1");
  EXPECT_EQ(a.last_exit().signal(), SIGKILL);
  RunResult d =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "describe", "agent", "k1"});
  EXPECT_THAT(d.out, ::testing::ContainsRegex("restarts: +1"));
  EXPECT_THAT(d.out, HasSubstr("killed by SIGKILL"));
  EXPECT_EQ(ProcessesOfAgent("k1"), 1);
}

TEST_F(SupervisionTest, CrasherBacksOffWithGrowingDelaysThenFailsWithItsReason) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("crasher", "c1").ok());
  ASSERT_TRUE(
      WaitFor([&] { return Get("c1").state() == v1::AGENT_STATE_FAILED; }, absl::Seconds(30)))
      << daemon_.log();
  v1::Agent a = Get("c1");
  EXPECT_THAT(a.state_detail(), HasSubstr("crash loop: 6 exits within 1m"));
  EXPECT_THAT(a.state_detail(), HasSubstr("exit code 1"));
  EXPECT_EQ(a.last_exit().exit_code(), 1);
  // What it said last is kept with its exit, and shown by describe.
  EXPECT_THAT(a.last_exit().last_log_lines(),
              ::testing::ElementsAre("crasher: exiting with 1 in 100 ms"));
  RunResult d =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "describe", "agent", "c1"});
  EXPECT_THAT(d.out, HasSubstr("last output before the exit"));
  EXPECT_THAT(d.out, HasSubstr("  crasher: exiting with 1 in 100 ms"));
  EXPECT_EQ(a.restarts(), 5);
  std::vector<absl::Duration> delays = BackoffDelays("c1");
  ASSERT_EQ(delays.size(), 5u);
  // 50ms doubling, ±10% jitter, capped at 400ms: 50, 100, 200, 400, 400.
  const double expected_ms[] = {50, 100, 200, 400, 400};
  for (size_t i = 0; i < delays.size(); ++i) {
    EXPECT_GE(absl::ToDoubleMilliseconds(delays[i]), expected_ms[i] * 0.89) << i;
    EXPECT_LE(absl::ToDoubleMilliseconds(delays[i]), expected_ms[i] * 1.11) << i;
  }
  EXPECT_EQ(ProcessesOfAgent("c1"), 0);
}

TEST_F(SupervisionTest, ExitCodeOnTheNoRestartListStopsTheAgent) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("done", "d1").ok());
  ASSERT_TRUE(
      WaitFor([&] { return Get("d1").state() == v1::AGENT_STATE_STOPPED; }, absl::Seconds(20)));
  v1::Agent a = Get("d1");
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_EQ(a.last_exit().exit_code(), 3);
  EXPECT_THAT(a.state_detail(), HasSubstr("no_restart_exit_codes"));
  EXPECT_TRUE(BackoffDelays("d1").empty());
}

TEST_F(SupervisionTest, SigtermIgnorerIsKilledAfterStopTimeoutAndItsGrandchildToo) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("ignorer", "i1").ok());
  std::string pids;
  ASSERT_TRUE(WaitFor(
      [&] {
        pids = ReadFileOrEmpty(dir_.Join("pids"));
        return !pids.empty();
      },
      absl::Seconds(10)));
  std::vector<std::string> parts = absl::StrSplit(pids, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  ASSERT_EQ(parts.size(), 2u);
  pid_t child = std::stoi(parts[0]), grandchild = std::stoi(parts[1]);
  v1::StopAgentRequest req;
  req.set_agent_id("i1");
  req.set_wait(true);
  v1::StopAgentResponse resp;
  grpc::Status s = stub_->StopAgent(Ctx().get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.agent().state(), v1::AGENT_STATE_STOPPED);
  EXPECT_EQ(resp.agent().last_exit().signal(), SIGKILL);
  EXPECT_TRUE(
      WaitFor([&] { return ProcessGone(child) && ProcessGone(grandchild); }, absl::Seconds(10)));
  EXPECT_THAT(daemon_.log(), HasSubstr("still running 500ms after SIGTERM"));
}

TEST_F(SupervisionTest, InstanceLimitsUnknownRolesAndDuplicatesAreRefusedClearly) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("single").ok());
  absl::StatusOr<v1::Agent> second = StartAgent("single");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("role \"single\" allows 1 instance(s) (roles.single.max_instances)"));
  absl::StatusOr<v1::Agent> unknown = StartAgent("wizard");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("configured roles: "));
  absl::StatusOr<v1::Agent> dup = StartAgent("single", "single-1");
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<v1::Agent> bad = StartAgent("sleeper", "no spaces");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SupervisionTest, ConfigAgentsStartAtBootAndStopWithTheDaemon) {
  StartDaemon("agents:\n  - {id: boot-1, role: sleeper}\n  - {id: boot-2, role: sleeper}\n");
  ASSERT_TRUE(
      WaitFor([&] { return ProcessesOfAgent("boot-1") == 1 && ProcessesOfAgent("boot-2") == 1; },
              absl::Seconds(10)));
  int64_t pid = Get("boot-1").pid();
  std::optional<int> st = daemon_.Stop();
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(WEXITSTATUS(*st), 0);
  EXPECT_TRUE(ProcessGone(static_cast<pid_t>(pid)));
  EXPECT_EQ(ProcessesOfAgent("boot-1"), 0);
  EXPECT_EQ(ProcessesOfAgent("boot-2"), 0);
}

TEST_F(SupervisionTest, Kill9OfTheDaemonThenRestartLeavesExactlyOneProcessPerAgent) {
  StartDaemon();
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(StartAgent("sleeper", absl::StrCat("a", i)).ok());
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  // The agents outlive a kill -9 of their daemon…
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(ProcessesOfAgent(absl::StrCat("a", i)), 1);
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  stub_ = v1::AgentService::NewStub(daemon_.UnixChannel());
  // …and the new daemon ends up with exactly one process per agent, each running.
  for (int i = 1; i <= 5; ++i) {
    std::string id = absl::StrCat("a", i);
    EXPECT_TRUE(WaitFor([&] { return ProcessesOfAgent(id) == 1; }, absl::Seconds(10))) << id;
    v1::Agent a = Get(id);
    EXPECT_EQ(a.state(), v1::AGENT_STATE_RUNNING) << id;
    EXPECT_EQ(ProcessesOfAgent(id), 1) << id;
  }
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

TEST(GlobalBreakerTest, ManyFailuresAtOnceHoldRestartsUntilAPersonRestarts) {
  TempDir dir;
  WriteFile(dir.Join("agentd.yaml"),
            absl::StrCat(R"(
supervision:
  restart_sec: 20ms
  restart_max_sec: 20ms
  crash_loop: {max: 100, window: 1m}
  global_breaker: {max: 3, window: 1m, cooldown: 1h}
roles:
  flaky: {command: [")",
                         HelperBinary("crasher"), R"(", "1", "50"], max_instances: 4}
)"));
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
  auto stub = v1::AgentService::NewStub(daemon.UnixChannel());
  auto get = [&](const std::string& id) {
    grpc::ClientContext ctx;
    v1::GetAgentRequest req;
    req.set_agent_id(id);
    v1::GetAgentResponse resp;
    EXPECT_TRUE(stub->GetAgent(&ctx, req, &resp).ok());
    return resp.agent();
  };
  for (const char* id : {"gb1", "gb2", "gb3", "gb4"}) {
    grpc::ClientContext ctx;
    v1::StartAgentRequest req;
    req.set_role("flaky");
    req.set_agent_id(id);
    v1::StartAgentResponse resp;
    ASSERT_TRUE(stub->StartAgent(&ctx, req, &resp).ok());
  }
  auto held = [&](const std::string& id) {
    v1::Agent a = get(id);
    return a.state() == v1::AGENT_STATE_BACKOFF &&
           a.state_detail().find("held by the global breaker") != std::string::npos;
  };
  ASSERT_TRUE(WaitFor([&] { return held("gb1") && held("gb2") && held("gb3") && held("gb4"); },
                      absl::Seconds(30)))
      << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("global breaker open"));
  int64_t restarts = get("gb1").restarts();
  // A person's restart goes through the open breaker.
  RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "restart", "gb1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("agent gb1 running"));
  EXPECT_EQ(get("gb1").restarts(), restarts + 1);
}

}  // namespace
}  // namespace agentd::testing
