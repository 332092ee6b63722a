// Agents as supervised processes: the real agentd supervising real child processes
// (tests/helpers), observed through AgentService, agentctl and /proc.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/paths.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;

// The live (non-zombie) processes whose environment says AGENTD_AGENT_ID=id, other than
// agentd-init (PID 1 of an isolated `command` agent, not the agent's program). It scans
// the whole machine: agent ids must be unique across tests that may run in parallel.
std::vector<pid_t> ProcessesOf(const std::string& id) {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* e = readdir(proc)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string env = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/environ"));
    if (env.find(absl::StrCat("AGENTD_AGENT_ID=", id, std::string(1, '\0'))) == std::string::npos) {
      continue;
    }
    if (ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/comm")) == "agentd-init\n") continue;
    if (ProcessGone(pid)) continue;  // a zombie
    pids.push_back(pid);
  }
  closedir(proc);
  return pids;
}

int ProcessesOfAgent(const std::string& id) { return static_cast<int>(ProcessesOf(id).size()); }

// The machine's pid of a process of agent `id` that calls itself `pid` (an isolated agent
// has a PID namespace of its own: the last NSpid field is its own view); 0 when there is
// none.
pid_t MachinePid(const std::string& id, int64_t pid) {
  for (pid_t p : ProcessesOf(id)) {
    std::string status = ReadFileOrEmpty(absl::StrCat("/proc/", p, "/status"));
    size_t at = status.find("NSpid:");
    if (at == std::string::npos) continue;
    std::vector<std::string> fields =
        absl::StrSplit(status.substr(at + 6, status.find('\n', at) - at - 6),
                       absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (!fields.empty() && fields.back() == absl::StrCat(pid)) return p;
  }
  return 0;
}

// The lines of a crasher's STAMPS file (tests/helpers/crasher.cc): the CLOCK_MONOTONIC
// times at which each of its runs started and exited, in order.
struct Runs {
  std::vector<absl::Duration> starts, exits;
  bool well_formed = true;  // every line parsed
};
Runs ReadStamps(const std::string& path) {
  Runs r;
  for (absl::string_view line : absl::StrSplit(ReadFileOrEmpty(path), '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    int64_t ns = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &ns)) {
      r.well_formed = false;
      continue;
    }
    if (parts[0] == "start") {
      r.starts.push_back(absl::Nanoseconds(ns));
    } else if (parts[0] == "exit") {
      r.exits.push_back(absl::Nanoseconds(ns));
    } else {
      r.well_formed = false;
    }
  }
  return r;
}

class SupervisionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string h = DirName(HelperBinary("sleeper"));
    config_ = absl::StrCat(R"(
supervision:
  restart: on-failure
  restart_sec: 100ms
  restart_max_sec: 800ms
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
                           h, R"(/crasher", "1", "100", ")", dir_.Join("crasher.stamps"),
                           R"("]}
  done:    {command: [")",
                           h, R"(/crasher", "3", "10", ")", dir_.Join("done.stamps"), R"("]}
  ignorer: {command: [")",
                           h, "/sigterm_ignorer\", \"", dir_.Join("pids"), R"("]}
  unrunnable: {command: [")",
                           dir_.Join("unrunnable"), R"("]}
)");
  }
  void StartDaemon(const std::string& extra = "") {
    // No always-on agents unless the test names them (the default's ceo and manager).
    WriteFile(dir_.Join("agentd.yaml"),
              config_ + extra + (extra.find("agents:") == std::string::npos ? "agents: []\n" : ""));
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    client_ = std::make_unique<Client>(daemon_.client());
  }
  absl::StatusOr<v1::Agent> StartAgent(const std::string& role, const std::string& id = "") {
    v1::StartAgentRequest req;
    req.set_role(role);
    req.set_agent_id(id);
    v1::StartAgentResponse resp;
    grpc::Status s = client_->agents().StartAgent(Ctx().get(), req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
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
  RunResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {AgentctlBinary(), "--socket", daemon_.socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  TempDir dir_;
  Daemon daemon_{dir_};
  std::string config_;
  std::unique_ptr<Client> client_;
};

TEST_F(SupervisionTest, AgentctlStartsListsDescribesAndStopsAnAgent) {
  StartDaemon();
  RunResult start = Ctl({"start", "sleeper", "--id", "s1"});
  ASSERT_EQ(start.exit_code, 0) << start.err;
  EXPECT_THAT(start.out, HasSubstr("agent s1 running, pid "));
  RunResult list = Ctl({"get", "agents"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("ID"));
  EXPECT_THAT(list.out, ::testing::ContainsRegex("s1 +sleeper +running +[0-9]+"));
  RunResult json = Ctl({"get", "agents", "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  nlohmann::json listed = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(listed.is_object()) << json.out;
  ASSERT_EQ(listed["agents"].size(), 1u) << json.out;
  EXPECT_EQ(listed["agents"][0]["id"], "s1");
  RunResult describe = Ctl({"describe", "agent", "s1"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_THAT(describe.out, ::testing::ContainsRegex("state: +running"));
  int64_t pid = Get("s1").pid();
  ASSERT_GT(pid, 0);
  EXPECT_EQ(ProcessesOfAgent("s1"), 1);
  RunResult stop = Ctl({"stop", "s1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_THAT(stop.out, HasSubstr("agent s1 stopped"));
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }, absl::Seconds(10)))
      << "pid " << pid << " outlived agentctl stop";
  // The sleeper exits 0 on SIGTERM: an exit code, not a signal, and that code 0.
  v1::Agent stopped = Get("s1");
  ASSERT_TRUE(stopped.has_last_exit()) << stopped.DebugString();
  EXPECT_EQ(stopped.last_exit().status_case(), v1::AgentExit::kExitCode) << stopped.DebugString();
  EXPECT_EQ(stopped.last_exit().exit_code(), 0);
  RunResult missing = Ctl({"describe", "agent", "nope"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND: agent \"nope\" does not exist"));
}

TEST_F(SupervisionTest, ResourceLimitsFromConfigApplyToTheAgentsProcess) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("limited", "l1").ok());
  int64_t pid = Get("l1").pid();
  ASSERT_GT(pid, 0);
  std::string limits = ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/limits"));
  // The role's nofile wins over supervision's; supervision's core applies; memory is the
  // role's own.
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max open files +123 +123 +files"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max core file size +0 +0 +bytes"));
  EXPECT_THAT(limits, ::testing::ContainsRegex("Max address space +3221225472 +3221225472 +bytes"));
}

// Whether agents get cgroups is the machine's doing; that agentd says which, in its log
// and in GetInfo alike, is its own, and holds everywhere.
TEST_F(SupervisionTest, TheDaemonSaysWhetherAgentsRunInCgroups) {
  StartDaemon();
  grpc::Status s;
  v1::GetInfoResponse info = client_->GetInfo(&s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string cgroup = info.paths().agent_cgroup();
  if (cgroup.empty()) {
    EXPECT_THAT(daemon_.log(), HasSubstr("agents run without cgroups ("));
  } else {
    EXPECT_THAT(daemon_.log(), HasSubstr("each agent runs in a cgroup of its own under " + cgroup));
    EXPECT_EQ(access((cgroup + "/cgroup.procs").c_str(), F_OK), 0) << cgroup;
  }
}

// A process that left the agent's process group (setsid) is out of reach of a group kill;
// where the machine offers cgroups, the agent's cgroup still holds it and stopping the
// agent ends it too.
TEST_F(SupervisionTest, StoppingAnAgentEndsAProcessThatLeftItsGroupWhenCgroupsAreThere) {
  StartDaemon();
  grpc::Status s;
  v1::GetInfoResponse info = client_->GetInfo(&s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  const std::string cgroup = info.paths().agent_cgroup();
  if (cgroup.empty()) {
    // Without cgroups a group kill cannot reach it, as agentd's docs say: nothing to test.
    std::string log = daemon_.log();
    size_t at = log.find("agents run without cgroups (");
    GTEST_SKIP() << "no cgroup v2 with cgroup.kill on this machine: "
                 << (at == std::string::npos ? "agentd did not say why"
                                             : log.substr(at, log.find('\n', at) - at));
  }
  ASSERT_TRUE(StartAgent("escaper", "e1").ok());
  int64_t leader = Get("e1").pid();
  ASSERT_GT(leader, 0);
  int64_t escaped = 0;
  ASSERT_TRUE(
      WaitFor([&] { return absl::SimpleAtoi(ReadFileOrEmpty(dir_.Join("escaped")), &escaped); },
              absl::Seconds(10)))
      << "the escaper did not write its child's pid";
  ASSERT_GT(escaped, 0);
  escaped = MachinePid("e1", escaped);
  ASSERT_GT(escaped, 0) << "no process of e1 is the escaper's child";
  ASSERT_NE(getpgid(static_cast<pid_t>(escaped)), getpgid(static_cast<pid_t>(leader)));
  std::string procs;
  for (int n = 1; n < 10 && procs.empty(); ++n) {
    procs = ReadFileOrEmpty(absl::StrCat(cgroup, "/e1.", n, "/cgroup.procs"));
  }
  EXPECT_THAT(procs, HasSubstr(absl::StrCat(leader, "\n")));
  EXPECT_THAT(procs, HasSubstr(absl::StrCat(escaped, "\n")));
  RunResult stop = Ctl({"stop", "e1"});
  ASSERT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(escaped); }, absl::Seconds(10)))
      << "pid " << escaped << " outlived its agent";
  if (!ProcessGone(escaped)) kill(static_cast<pid_t>(escaped), SIGKILL);
  EXPECT_TRUE(ProcessGone(leader));
}

TEST_F(SupervisionTest, Kill9IsRestartedAfterBackoffWithANewPid) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("sleeper", "k1").ok());
  int64_t first = Get("k1").pid();
  ASSERT_GT(first, 0);  // kill(0, …) would signal this test's own process group
  ASSERT_EQ(kill(static_cast<pid_t>(first), SIGKILL), 0);
  v1::Agent a;
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("k1"); },
                           [&](const v1::Agent& g) {
                             return g.state() == v1::AGENT_STATE_RUNNING && g.pid() != 0 &&
                                    g.pid() != first;
                           },
                           absl::Seconds(20), &a))
      << daemon_.log();
  EXPECT_EQ(a.restarts(), 1);
  EXPECT_EQ(a.last_exit().signal(), SIGKILL);
  RunResult status = Ctl({"status", "-o", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  nlohmann::json counters = nlohmann::json::parse(status.out, nullptr, false)["counters"];
  EXPECT_EQ(counters["agentRestarts"], "1") << status.out;
  EXPECT_EQ(counters["agentsByState"]["running"], "1") << status.out;
  RunResult d = Ctl({"describe", "agent", "k1"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_THAT(d.out, ::testing::ContainsRegex("restarts: +1"));
  EXPECT_THAT(d.out, HasSubstr("killed by SIGKILL"));
  EXPECT_TRUE(ProcessGone(first));
  EXPECT_EQ(ProcessesOfAgent("k1"), 1);
}

// The delays are measured, not read from what agentd says about them: the crasher
// stamps each start and exit with the machine's monotonic clock, and the gap from one
// exit to the next start is the supervisor's delay (plus the time to notice the exit and
// start a process, which only lengthens it).
TEST_F(SupervisionTest, CrasherBacksOffWithGrowingDelaysThenFailsWithItsReason) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("crasher", "c1").ok());
  v1::Agent a;
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("c1"); },
                           [](const v1::Agent& g) { return g.state() == v1::AGENT_STATE_FAILED; },
                           absl::Seconds(30), &a))
      << daemon_.log();
  EXPECT_THAT(a.state_detail(), HasSubstr("crash loop: 6 exits within 1m"));
  EXPECT_THAT(a.state_detail(), HasSubstr("exit code 1"));
  EXPECT_EQ(a.last_exit().exit_code(), 1);
  EXPECT_EQ(a.restarts(), 5);
  // What it said last is kept with its exit, and shown by describe.
  EXPECT_THAT(a.last_exit().last_log_lines(),
              ::testing::ElementsAre("crasher: exiting with 1 in 100 ms"));
  RunResult d = Ctl({"describe", "agent", "c1"});
  EXPECT_THAT(d.out, HasSubstr("last output before the exit"));
  EXPECT_THAT(d.out, HasSubstr("  crasher: exiting with 1 in 100 ms"));

  Runs runs = ReadStamps(dir_.Join("crasher.stamps"));
  ASSERT_TRUE(runs.well_formed) << ReadFileOrEmpty(dir_.Join("crasher.stamps"));
  ASSERT_EQ(runs.starts.size(), 6u) << ReadFileOrEmpty(dir_.Join("crasher.stamps"));
  ASSERT_EQ(runs.exits.size(), 6u) << ReadFileOrEmpty(dir_.Join("crasher.stamps"));
  std::vector<absl::Duration> gaps;
  for (size_t i = 0; i + 1 < runs.starts.size(); ++i) {
    gaps.push_back(runs.starts[i + 1] - runs.exits[i]);
  }
  std::string shown = absl::StrJoin(gaps, ", ", [](std::string* out, absl::Duration g) {
    absl::StrAppend(out, absl::FormatDuration(g));
  });
  // restart_sec 100ms doubling, ±10% jitter, capped at restart_max_sec 800ms. A delay is
  // never shorter than the supervisor's; it may be longer by the time it takes to see the
  // exit and start the next process, which a loaded machine stretches.
  const double expected_ms[] = {100, 200, 400, 800, 800};
  const absl::Duration overhead = Scaled(absl::Milliseconds(150));
  for (size_t i = 0; i < gaps.size(); ++i) {
    EXPECT_GE(gaps[i], absl::Milliseconds(expected_ms[i] * 0.9 - 1))
        << "delay " << i << " of " << shown;
    EXPECT_LE(gaps[i], absl::Milliseconds(expected_ms[i] * 1.1) + overhead)
        << "delay " << i << " of " << shown;
  }
  for (size_t i = 0; i + 2 < gaps.size(); ++i) {
    EXPECT_LT(gaps[i], gaps[i + 1]) << "the delays do not grow: " << shown;
  }
  EXPECT_EQ(ProcessesOfAgent("c1"), 0);
}

TEST_F(SupervisionTest, ExitCodeOnTheNoRestartListStopsTheAgent) {
  StartDaemon();
  ASSERT_TRUE(StartAgent("done", "d1").ok());
  v1::Agent a;
  ASSERT_TRUE(WaitForValue([&] { return client_->GetAgent("d1"); },
                           [](const v1::Agent& g) { return g.state() == v1::AGENT_STATE_STOPPED; },
                           absl::Seconds(20), &a));
  EXPECT_EQ(a.restarts(), 0);
  EXPECT_EQ(a.last_exit().status_case(), v1::AgentExit::kExitCode);
  EXPECT_EQ(a.last_exit().exit_code(), 3);
  EXPECT_THAT(a.state_detail(), HasSubstr("no_restart_exit_codes"));
  // It ran once, and no restart is pending: STOPPED is not BACKOFF.
  Runs runs = ReadStamps(dir_.Join("done.stamps"));
  EXPECT_EQ(runs.starts.size(), 1u) << ReadFileOrEmpty(dir_.Join("done.stamps"));
  EXPECT_FALSE(a.has_next_restart_time()) << a.DebugString();
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
      absl::Seconds(10)))
      << "the ignorer did not write its pids";
  std::vector<std::string> parts = absl::StrSplit(pids, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  ASSERT_EQ(parts.size(), 2u) << pids;
  int child = 0, grandchild = 0;
  ASSERT_TRUE(absl::SimpleAtoi(parts[0], &child) && child > 0) << pids;
  ASSERT_TRUE(absl::SimpleAtoi(parts[1], &grandchild) && grandchild > 0) << pids;
  child = MachinePid("i1", child);
  grandchild = MachinePid("i1", grandchild);
  ASSERT_TRUE(child > 0 && grandchild > 0) << "not processes of i1: " << pids;
  v1::StopAgentRequest req;
  req.set_agent_id("i1");
  req.set_wait(true);
  v1::StopAgentResponse resp;
  grpc::Status s = client_->agents().StopAgent(Ctx(absl::Seconds(30)).get(), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.agent().state(), v1::AGENT_STATE_STOPPED);
  EXPECT_EQ(resp.agent().last_exit().signal(), SIGKILL);
  EXPECT_TRUE(
      WaitFor([&] { return ProcessGone(child) && ProcessGone(grandchild); }, absl::Seconds(10)))
      << "child " << child << (ProcessGone(child) ? " gone" : " alive") << ", grandchild "
      << grandchild << (ProcessGone(grandchild) ? " gone" : " alive");
  EXPECT_THAT(daemon_.log(), HasSubstr("still running 500ms after SIGTERM"));
}

// A command that cannot run (not executable) fails the agent's start, saying why, and is
// not restarted: the same whether or not it runs under agentd-init in a PID namespace.
TEST_F(SupervisionTest, ACommandThatCannotRunFailsTheStartWithItsReason) {
  WriteFile(dir_.Join("unrunnable"), "#!/bin/sh\nexit 0\n");  // mode 0644: not executable
  StartDaemon();
  absl::StatusOr<v1::Agent> started = StartAgent("unrunnable", "u1");
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().code(), absl::StatusCode::kFailedPrecondition) << started.status();
  EXPECT_THAT(std::string(started.status().message()), HasSubstr("Permission denied"));
  v1::Agent a = Get("u1");
  EXPECT_EQ(a.state(), v1::AGENT_STATE_FAILED) << a.DebugString();
  EXPECT_THAT(a.state_detail(), HasSubstr("Permission denied")) << a.DebugString();
  EXPECT_EQ(a.restarts(), 0);
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
              absl::Seconds(10)))
      << "boot-1: " << ProcessesOfAgent("boot-1")
      << " processes, boot-2: " << ProcessesOfAgent("boot-2");
  int64_t pid1 = Get("boot-1").pid(), pid2 = Get("boot-2").pid();
  ASSERT_GT(pid1, 0);
  ASSERT_GT(pid2, 0);
  std::optional<int> st = daemon_.Stop();
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(st);
  // agentd waits for its agents before it exits: they are gone already, not soon.
  EXPECT_TRUE(ProcessGone(pid1));
  EXPECT_TRUE(ProcessGone(pid2));
  EXPECT_EQ(ProcessesOfAgent("boot-1"), 0);
  EXPECT_EQ(ProcessesOfAgent("boot-2"), 0);
}

TEST_F(SupervisionTest, Kill9OfTheDaemonThenRestartLeavesExactlyOneProcessPerAgent) {
  // The config's agents: those come back after a restart (one started by hand and left
  // idle would not).
  StartDaemon("agents:\n" + [] {
    std::string list;
    for (int i = 1; i <= 5; ++i) absl::StrAppend(&list, "  - {id: a", i, ", role: sleeper}\n");
    return list;
  }());
  std::map<std::string, int64_t> old_pids;
  for (int i = 1; i <= 5; ++i) {
    std::string id = absl::StrCat("a", i);
    v1::Agent a;
    ASSERT_TRUE(WaitForValue([&] { return Get(id); },
                             [](const v1::Agent& g) { return g.pid() > 0; }, absl::Seconds(20), &a))
        << id;
    old_pids[id] = a.pid();
  }
  // Each has written its line: a program that first writes after its daemon died gets
  // SIGPIPE (nothing reads its output any more), which is not what this test is about.
  for (const auto& [id, pid] : old_pids) {
    ASSERT_TRUE(WaitFor(
        [&] {
          return Ctl({"logs", id}).out.find("sleeper: pid") != std::string::npos;
        },
        absl::Seconds(10)))
        << id << " wrote nothing";
  }
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  // The agents outlive a kill -9 of their daemon…
  for (const auto& [id, pid] : old_pids) {
    EXPECT_FALSE(ProcessGone(pid)) << id << " (pid " << pid << ") died with its daemon";
    EXPECT_EQ(ProcessesOfAgent(id), 1) << id;
  }
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  client_ = std::make_unique<Client>(daemon_.client());
  // …and the new daemon ends the old processes and runs each agent anew: exactly one
  // process per agent, a new one.
  for (const auto& [id, old] : old_pids) {
    v1::Agent a;
    EXPECT_TRUE(WaitForValue([&] { return client_->GetAgent(id); },
                             [&](const v1::Agent& g) {
                               return g.state() == v1::AGENT_STATE_RUNNING && g.pid() > 0 &&
                                      g.pid() != old;
                             },
                             absl::Seconds(20), &a))
        << id << " (old pid " << old << ")\n"
        << daemon_.log();
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(old); }, absl::Seconds(10)))
        << id << ": the old process " << old << " still runs beside the new " << a.pid();
    EXPECT_FALSE(ProcessGone(a.pid())) << id;
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
  Client client = daemon.client();
  for (const char* id : {"gb1", "gb2", "gb3", "gb4"}) {
    grpc::Status s = client.StartAgent("flaky", id);
    ASSERT_TRUE(s.ok()) << id << ": " << s.error_message();
  }
  auto held = [](const v1::Agent& a) {
    return a.state() == v1::AGENT_STATE_BACKOFF &&
           a.state_detail().find("held by the global breaker") != std::string::npos;
  };
  std::vector<v1::Agent> last;
  ASSERT_TRUE(WaitForValue(
      [&] {
        std::vector<v1::Agent> all;
        for (const char* id : {"gb1", "gb2", "gb3", "gb4"}) all.push_back(client.GetAgent(id));
        return all;
      },
      [&](const std::vector<v1::Agent>& all) { return std::all_of(all.begin(), all.end(), held); },
      absl::Seconds(30), &last))
      << daemon.log();
  EXPECT_THAT(daemon.log(), HasSubstr("global breaker open"));
  int64_t restarts = last[0].restarts();
  // A person's restart goes through the open breaker.
  RunResult r = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "restart", "gb1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("agent gb1 running"));
  grpc::Status s;
  EXPECT_EQ(client.GetAgent("gb1", &s).restarts(), restarts + 1) << s.error_message();
}

}  // namespace
}  // namespace agentd::testing
