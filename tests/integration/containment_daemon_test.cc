// Containment of agentd's own secrets against other local users and its own agents, with
// the real daemon and real agents: a socket or state directory another user could own or
// write is refused at start; provider keys reach agents on a descriptor, not in their
// environment; agentd and its agents are not dumpable and dump no core.
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/client.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// --- item 9: the socket and state directories are agentd's alone ---------------------

// agentd on `socket` and `state`, expected to refuse to start: its result.
RunResult RunAgentd(const std::string& socket, const std::string& state) {
  return RunCommand({AgentdBinary(), "--state-dir", state, "--socket", socket, "--http", ""},
                    absl::Seconds(20));
}

// agentd refused, named the directory and said why, and left nothing in it.
void ExpectRefused(const RunResult& r, const std::string& dir, const std::string& what,
                   const std::vector<std::string>& reasons) {
  EXPECT_EQ(r.exit_code, 1) << "agentd started in an untrusted directory: " << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(what, " ", dir)));
  for (const std::string& reason : reasons) EXPECT_THAT(r.err, HasSubstr(reason));
}

TEST(PrivateDirTest, ASocketDirectoryOwnedByAnotherUserIsRefused) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to give a directory to another user (chown to nobody); this "
                    "test runs as uid "
                 << geteuid();
  }
  TempDir dir;
  std::string run = dir.Join("run");
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  ASSERT_EQ(chown(run.c_str(), 65534, 65534), 0);  // nobody, as another user's pre-made dir
  RunResult r = RunAgentd(run + "/agentd.sock", dir.Join("state"));
  ExpectRefused(r, run, "socket directory", {"owned by uid 65534", "mode 0700", "Remove it"});
  EXPECT_NE(access((run + "/agentd.sock").c_str(), F_OK), 0) << "it bound a socket there";
  EXPECT_NE(access((run + "/agentd.sock.lock").c_str(), F_OK), 0) << "it wrote a lock there";
}

TEST(PrivateDirTest, ASocketDirectoryOthersMayEnterIsRefused) {
  TempDir dir;
  std::string run = dir.Join("run");
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  ASSERT_EQ(chmod(run.c_str(), 0755), 0);
  RunResult r = RunAgentd(run + "/agentd.sock", dir.Join("state"));
  ExpectRefused(r, run, "socket directory", {"mode 0755", "chmod 700"});
  EXPECT_NE(access((run + "/agentd.sock").c_str(), F_OK), 0) << "it bound a socket there";
}

TEST(PrivateDirTest, ASocketDirectoryThatIsASymlinkIsRefused) {
  TempDir dir;
  std::string real = dir.Join("real"), run = dir.Join("run");
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(symlink(real.c_str(), run.c_str()), 0);
  RunResult r = RunAgentd(run + "/agentd.sock", dir.Join("state"));
  ExpectRefused(r, run, "socket directory", {"symbolic link"});
  EXPECT_NE(access((real + "/agentd.sock").c_str(), F_OK), 0) << "it followed the link";
}

TEST(PrivateDirTest, AStateDirectoryOthersMayEnterIsRefused) {
  TempDir dir;
  std::string state = dir.Join("state");
  ASSERT_EQ(mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(chmod(state.c_str(), 0750), 0);
  RunResult r = RunAgentd(dir.Join("run/agentd.sock"), state);
  ExpectRefused(r, state, "state directory", {"mode 0750"});
  EXPECT_NE(access((state + "/admin.token").c_str(), F_OK), 0) << "it wrote its token there";
}

// The positive case: missing directories are made 0700, and the socket is 0600.
TEST(PrivateDirTest, MissingDirectoriesAreCreatedPrivateAndTheSocketIs0600) {
  TempDir dir;
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  struct stat st;
  ASSERT_EQ(lstat(dir.Join("run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(lstat(daemon.state_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(lstat(daemon.socket().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
}

// --- item 10: secrets stay out of environments and core dumps --------------------------

// The owner of /proc/<pid>/environ: the process's uid while it is dumpable; root (0) once
// it is not, which is what keeps other processes of its uid out of its environ and memory.
uid_t ProcOwner(pid_t pid) {
  struct stat st;
  if (stat(absl::StrCat("/proc/", pid, "/environ").c_str(), &st) != 0) {
    return static_cast<uid_t>(-1);
  }
  return st.st_uid;
}

// "soft hard" of RLIMIT_CORE from /proc/<pid>/limits, e.g. "0 0".
std::string CoreLimit(pid_t pid) {
  for (absl::string_view line :
       absl::StrSplit(ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/limits")), '\n')) {
    if (absl::ConsumePrefix(&line, "Max core file size")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() >= 2) return absl::StrCat(f[0], " ", f[1]);
    }
  }
  return "(none)";
}

constexpr char kFinishScenario[] = R"(
rules:
  - name: finish
    match: {}
    reply:
      tool_calls: [{name: complete_task, arguments: {summary: "done"}}]
      usage: {prompt_tokens: 10, completion_tokens: 5}
)";

// A provider key in agentd's environment reaches the provider through the agent that
// calls it, while no agent has it in its environment; neither agentd nor the agent can be
// read by another process of the uid or dump core.
TEST(SecretContainmentTest, TheProviderKeyReachesTheProviderButNoAgentEnvironment) {
  TempDir dir;
  const std::string key = "sk-live-NOT-IN-ENVIRON-0123456789abcdef";
  FakeLlm fake(dir, kFinishScenario);
  ASSERT_FALSE(fake.url().empty()) << fake.log();
  WriteFile(dir.Join("agentd.yaml"),
            absl::StrCat(R"(
supervision: {heartbeat: {interval: 200ms, ttl: )",
                         absl::FormatDuration(Scaled(absl::Seconds(3))),
                         R"(}, stop_timeout: 2s}
providers: {paid: {kind: openai, base_url: ")",
                         fake.url(), R"(/v1", api_key_env: AGENTD_TEST_KEY}}
models: {m: {provider: paid, model: test-model, max_tokens: 100}}
roles:
  ceo: {model: m, prompt: roles/ceo.md, tools: [complete_task]}
agents: []
)"));
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")}, {"AGENTD_TEST_KEY=" + key}))
      << daemon.log();
  const absl::Duration timeout = Scaled(absl::Seconds(60));
  RunResult goal = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "goal", "Say hi",
                               "--wait", "--timeout", absl::FormatDuration(timeout)},
                              timeout + absl::Seconds(30));
  ASSERT_EQ(goal.exit_code, 0) << goal.err << daemon.log();
  // The provider was called with a key (fakellm notes that one came, never its value).
  RunResult logged = RunCommand({"curl", "-sf", fake.url() + "/_fakellm/requests"});
  nlohmann::json requests = nlohmann::json::parse(logged.out, nullptr, false);
  ASSERT_TRUE(requests.is_array() && !requests.empty()) << logged.out;
  for (const auto& q : requests) EXPECT_EQ(q["has_authorization"], true) << q.dump();

  Client client = daemon.client();
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(client.agents().ListAgents(Ctx().get(), v1::ListAgentsRequest(), &agents).ok());
  pid_t agent = 0;
  for (const v1::Agent& a : agents.agents()) {
    if (a.role() == "ceo" && a.pid() > 0) agent = static_cast<pid_t>(a.pid());
  }
  ASSERT_GT(agent, 0) << "no running ceo agent";
  std::string environ = ReadFileOrEmpty(absl::StrCat("/proc/", agent, "/environ"));
  // (Root reads any process's environ; a user cannot read a non-dumpable one at all.)
  if (geteuid() == 0) {
    ASSERT_THAT(environ, HasSubstr("AGENTD_AGENT_ID=")) << "not the agent's environ";
  }
  EXPECT_THAT(environ, Not(HasSubstr(key))) << "the key is in the agent's environment";
  EXPECT_THAT(environ, Not(HasSubstr("AGENTD_TEST_KEY=")));

  // Neither agentd nor the agent writes a core file (soft and hard limits 0).
  pid_t agentd = daemon.process()->pid();
  EXPECT_EQ(CoreLimit(agentd), "0 0");
  EXPECT_EQ(CoreLimit(agent), "0 0");
}

// agentd and agentd-agent make themselves non-dumpable: no other process of their uid can
// read their memory or /proc/<pid>/environ, and the kernel shows it by giving those /proc
// files to root. That shows only for a uid other than root, so as root this runs the
// daemon as nobody.
TEST(SecretContainmentTest, AgentdAndItsAgentsAreNotDumpable) {
  TempDir dir;
  std::vector<std::string> as_user;
  uid_t uid = geteuid();
  std::string home = dir.Join("home");
  ASSERT_EQ(mkdir(home.c_str(), 0700), 0);
  if (uid == 0) {
    uid = 65534;
    as_user = {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
    ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);
    ASSERT_EQ(chown(home.c_str(), uid, uid), 0);
  }
  // The control: an ordinary process of that uid owns its /proc entry.
  std::vector<std::string> sleep_argv = as_user;
  sleep_argv.insert(sleep_argv.end(), {"sleep", "60"});
  Subprocess control(sleep_argv, "/dev/null", "/dev/null");
  ASSERT_TRUE(WaitFor([&] { return ProcOwner(control.pid()) == uid; }, absl::Seconds(5)))
      << "a dumpable process of uid " << uid << " shows owner " << ProcOwner(control.pid());

  std::string socket = home + "/run/agentd.sock";
  std::vector<std::string> argv = as_user;
  argv.insert(argv.end(),
              {AgentdBinary(), "--state-dir", home + "/state", "--socket", socket, "--http", ""});
  Subprocess agentd(argv, dir.Join("agentd.out"), dir.Join("agentd.err"), {"HOME=" + home},
                    {"NOTIFY_SOCKET", "WATCHDOG_USEC"});
  Client client(grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials()));
  // The default configuration starts ceo and manager, both agentd-agent.
  v1::Agent ceo;
  ASSERT_TRUE(WaitForValue(
      [&] { return client.GetAgent("ceo"); },
      [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_IDLE && a.pid() > 0; },
      absl::Seconds(20), &ceo))
      << ReadFileOrEmpty(dir.Join("agentd.err"));
  // A daemon that is not root isolates its agents wherever its user may make a user
  // namespace (agentd's own non-dumpable state must not stand in the way).
  std::vector<std::string> unshare_argv = as_user;
  unshare_argv.insert(unshare_argv.end(), {"unshare", "-U", "true"});
  if (RunCommand(unshare_argv).exit_code == 0) {
    v1::GetInfoResponse info = client.GetInfo();
    EXPECT_EQ(info.counters().agent_isolation(), "namespaces")
        << info.counters().isolation_problem();
    std::string proc = ReadFileOrEmpty(absl::StrCat("/proc/", ceo.pid(), "/status"));
    EXPECT_THAT(proc, HasSubstr(absl::StrCat("NSpid:\t", ceo.pid(), "\t1\n"))) << proc;
  }
  EXPECT_EQ(ProcOwner(agentd.pid()), 0u) << "agentd is dumpable";
  EXPECT_EQ(ProcOwner(static_cast<pid_t>(ceo.pid())), 0u) << "agentd-agent is dumpable";
  EXPECT_EQ(CoreLimit(agentd.pid()), "0 0");
  EXPECT_EQ(CoreLimit(static_cast<pid_t>(ceo.pid())), "0 0");
  agentd.Signal(SIGTERM);
  std::optional<int> st = agentd.WaitExit(absl::Seconds(20));
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(st);
}

// --- item 2: agents are not admins ----------------------------------------------------

// The probe's report: check -> "reached …", "refused …" or a gRPC code's name.
std::map<std::string, std::string> ParseProbeReport(const std::string& text) {
  std::map<std::string, std::string> by_check;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(' ', 1));
    by_check[kv.first] = kv.second;
  }
  return by_check;
}

// A real agent process (a `command` agent: the isolation_probe helper) tries, from inside,
// everything an agent must not reach, and what it must: agentd's admin token and database,
// another agent's session, the admin socket, agentd's environment and other processes (their
// /proc/<pid>/root: the machine's whole file system) are out of its reach; on the endpoint it was
// given, a call without its token is UNAUTHENTICATED and an admin call does not exist, while
// AgentHost with its token works and its own session directory is writable.
TEST(AgentIsolationTest, AnAgentReachesNeitherAgentdsSecretsNorItsAdminSocket) {
  TempDir dir;
  std::string state = dir.Join("state");
  for (const std::string& d : {state, state + "/sessions", state + "/sessions/other"}) {
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0) << d;
  }
  std::string other_session = state + "/sessions/other/other.db";
  WriteFile(other_session, "another agent's conversation");
  std::string report = dir.Join("probe.txt");
  Daemon daemon(dir);
  WriteFile(dir.Join("agentd.yaml"),
            absl::StrCat(R"(
supervision: {stop_timeout: 2s, isolation: auto}
providers: {local: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
models: {m: {provider: local, model: test-model}}
roles:
  prober: {command: [")",
                         HelperBinary("isolation_probe"), R"(", ")", report, R"(", ")", state,
                         R"(", ")", daemon.socket(), R"(", ")", other_session, R"("]}
agents: [{id: prober-1, role: prober}]
)"));
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
  Client client = daemon.client();
  v1::GetInfoResponse info = client.GetInfo();
  if (info.counters().agent_isolation() != "namespaces") {
    GTEST_SKIP() << "agent isolation does not work on this machine: "
                 << info.counters().isolation_problem();
  }
  std::string text;
  ASSERT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(report); },
                           [](const std::string& t) { return !t.empty(); }, absl::Seconds(20),
                           &text))
      << "the probe wrote no report\n"
      << daemon.log();
  std::map<std::string, std::string> got = ParseProbeReport(text);
  for (const char* check : {"admin-token", "database", "other-session", "agentd-environ",
                            "admin-socket", "replace-endpoint", "cgroup-fs", "proc-root",
                            "signal-processes", "other-processes", "state-dir"}) {
    EXPECT_THAT(got[check], ::testing::StartsWith("refused")) << check << "\n" << text;
  }
  EXPECT_THAT(got["own-session"], ::testing::StartsWith("reached")) << text;
  EXPECT_EQ(got["tokenless-heartbeat"], "UNAUTHENTICATED") << text;
  EXPECT_EQ(got["admin-call-on-endpoint"], "UNIMPLEMENTED") << text;
  EXPECT_EQ(got["register-with-token"], "OK") << text;
  // What the probe could not see is still there: hidden, not removed.
  EXPECT_EQ(ReadFileOrEmpty(other_session), "another agent's conversation");
  EXPECT_FALSE(ReadFileOrEmpty(daemon.state_dir() + "/admin.token").empty());
}

// Status says how agents are isolated; an isolated agentd-agent sees only its own PIDs.
TEST(AgentIsolationTest, StatusSaysHowAgentsAreIsolatedAndAgentdAgentIsPidOneWithNoCapabilities) {
  TempDir dir;
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  v1::GetInfoResponse info = daemon.client().GetInfo();
  EXPECT_EQ(info.counters().isolation_policy(), "auto");
  EXPECT_THAT(info.counters().agent_isolation(), ::testing::AnyOf("namespaces", "none"));
  // auto never refuses; the reason is given exactly when it falls back.
  EXPECT_EQ(info.counters().agent_isolation() == "none",
            !info.counters().isolation_problem().empty())
      << info.counters().isolation_problem();
  RunResult status = RunCommand({AgentctlBinary(), "--socket", daemon.socket(), "status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, ::testing::ContainsRegex("isolation: +auto: "));
  // Run as root, agents are root to file permissions: said, not hidden.
  EXPECT_EQ(info.counters().isolation_caveat().empty(), geteuid() != 0)
      << info.counters().isolation_caveat();
  if (geteuid() == 0) {
    EXPECT_THAT(status.out, HasSubstr("CAVEAT: agentd runs as root")) << status.out;
    EXPECT_THAT(daemon.log(), HasSubstr("agentd runs as root"));
  }
  if (info.counters().agent_isolation() != "namespaces") return;
  // agentd-agent (the default config's ceo) is PID 1 of a PID namespace of its own, with
  // no capability: no other process of the machine is in its sight.
  v1::Agent ceo;
  ASSERT_TRUE(WaitForValue(
      [&] { return daemon.client().GetAgent("ceo"); },
      [](const v1::Agent& a) { return a.state() == v1::AGENT_STATE_IDLE && a.pid() > 0; },
      absl::Seconds(20), &ceo))
      << daemon.log();
  std::string proc = ReadFileOrEmpty(absl::StrCat("/proc/", ceo.pid(), "/status"));
  EXPECT_THAT(proc, HasSubstr(absl::StrCat("NSpid:\t", ceo.pid(), "\t1\n"))) << proc;
  EXPECT_THAT(proc, HasSubstr("CapEff:\t0000000000000000")) << proc;
  EXPECT_THAT(proc, HasSubstr("CapPrm:\t0000000000000000")) << proc;
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// server.socket_group: operators in the group use the admin socket (its directory 0750,
// the socket 0660, both of the group); every other user is still kept out.
TEST(SocketGroupTest, MembersOfTheSocketGroupMayUseAgentctlAndNoOneElse) {
  if (geteuid() != 0) {
    GTEST_SKIP() << "needs root to run agentctl as other users (setpriv); this test runs as uid "
                 << geteuid();
  }
  TempDir dir;
  ASSERT_EQ(chmod(dir.path().c_str(), 0711), 0);  // others may pass through to run/
  WriteFile(dir.Join("agentd.yaml"), "server: {socket_group: nogroup}\nagents: []\n");
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
  struct stat run, sock;
  ASSERT_EQ(lstat(dir.Join("run").c_str(), &run), 0);
  ASSERT_EQ(lstat(daemon.socket().c_str(), &sock), 0);
  EXPECT_EQ(run.st_mode & 07777, 0750u);
  EXPECT_EQ(run.st_gid, 65534u);
  EXPECT_EQ(sock.st_mode & 07777, 0660u);
  EXPECT_EQ(sock.st_gid, 65534u);
  EXPECT_EQ(run.st_uid, 0u);
  auto as = [&](const std::string& group) {
    return RunCommand({"setpriv", "--reuid=nobody", "--regid=" + group, "--clear-groups",
                       AgentctlBinary(), "--socket", daemon.socket(), "status"});
  };
  RunResult member = as("nogroup");
  EXPECT_EQ(member.exit_code, 0) << member.out << member.err;
  EXPECT_THAT(member.out, HasSubstr("serving"));
  RunResult stranger = as("daemon");
  EXPECT_EQ(stranger.exit_code, 3) << stranger.out << stranger.err;
  // The state directory stays agentd's alone.
  struct stat state;
  ASSERT_EQ(lstat(daemon.state_dir().c_str(), &state), 0);
  EXPECT_EQ(state.st_mode & 077, 0u);
}

// systemd makes the socket's directory afresh at each start, and a socket_group turned off
// leaves it 0750: agentd takes a directory of its own that only its group may read back to
// 0700 (other users' access, or group write, is still refused).
TEST(SocketGroupTest, ADirectoryLeftOpenToItsGroupIsTakenBackTo0700) {
  TempDir dir;
  ASSERT_EQ(mkdir(dir.Join("run").c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.Join("run").c_str(), 0750), 0);
  WriteFile(dir.Join("agentd.yaml"), "agents: []\n");
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--config", dir.Join("agentd.yaml")})) << daemon.log();
  struct stat run;
  ASSERT_EQ(lstat(dir.Join("run").c_str(), &run), 0);
  EXPECT_EQ(run.st_mode & 07777, 0700u);
}

TEST(SocketGroupTest, AnUnknownGroupIsRefusedWithWhatToDo) {
  TempDir dir;
  WriteFile(dir.Join("agentd.yaml"), "server: {socket_group: no-such-group-here}\n");
  RunResult r =
      RunCommand({AgentdBinary(), "--config", dir.Join("agentd.yaml"), "--state-dir",
                  dir.Join("state"), "--socket", dir.Join("run/agentd.sock"), "--http", ""},
                 absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err,
              HasSubstr("server.socket_group: there is no group named \"no-such-group-here\""));
}

}  // namespace
}  // namespace agentd::testing
