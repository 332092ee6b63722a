// The real agentd on a temp socket and state dir, driven by real clients: a C++ gRPC
// stub, agentctl, and buf curl.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/client.h"
#include "tests/support/daemon.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;

const std::vector<std::string> kServices = {
    "agentd.v1.SystemService",  "agentd.v1.AgentService",    "agentd.v1.LogService",
    "agentd.v1.TaskService",    "agentd.v1.PlanService",     "agentd.v1.MessageService",
    "agentd.v1.EventService",   "agentd.v1.UsageService",    "agentd.v1.AuditService",
    "agentd.v1.ConsentService", "agentd.v1.AgentHostService"};

class DaemonTest : public ::testing::Test {
 protected:
  TempDir dir_;
  Daemon daemon_{dir_};
};

TEST_F(DaemonTest, HealthIsServingOnceStarted) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  auto health = grpc::health::v1::Health::NewStub(daemon_.UnixChannel());
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(health->Check(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  req.set_service("agentd.v1.SystemService");
  ASSERT_TRUE(health->Check(Ctx().get(), req, &resp).ok());
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(DaemonTest, ReflectionListsEveryServiceToACppClient) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  auto refl = grpc::reflection::v1alpha::ServerReflection::NewStub(daemon_.UnixChannel());
  auto ctx = Ctx();
  auto stream = refl->ServerReflectionInfo(ctx.get());
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, IsSupersetOf(kServices));
  EXPECT_THAT(names, ::testing::Contains("grpc.health.v1.Health"));
  // Every service can be described too (file descriptors are served).
  req.set_file_containing_symbol("agentd.v1.AgentHostService");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(DaemonTest, BufCurlListsEveryServiceOverTheSocket) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  RunResult r =
      RunCommand({BufBinary(), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                  "--unix-socket", daemon_.socket(), "--list-services", "http://localhost"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> names = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  EXPECT_THAT(names, IsSupersetOf(kServices));
  // And a call through reflection: the request/response types are resolved by buf.
  RunResult call = RunCommand({BufBinary(), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                               "--unix-socket", daemon_.socket(), "-d", "{}",
                               "http://localhost/agentd.v1.SystemService/GetVersion"});
  ASSERT_EQ(call.exit_code, 0) << call.err;
  EXPECT_EQ(nlohmann::json::parse(call.out)["apiVersion"], "agentd.v1");
}

TEST_F(DaemonTest, GetInfoListsTheConfiguredRoles) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  auto stub = v1::SystemService::NewStub(daemon_.UnixChannel());
  v1::GetInfoResponse info;
  ASSERT_TRUE(stub->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info).ok());
  std::map<std::string, v1::RoleSummary> roles;
  for (const v1::RoleSummary& r : info.roles()) roles[r.name()] = r;
  // The embedded default's five roles, and the built-in bootstrapper.
  for (const char* name : {"ceo", "manager", "specialist", "coder", "tester", "bootstrapper"}) {
    EXPECT_TRUE(roles.count(name)) << name;
  }
  EXPECT_FALSE(roles["coder"].model().empty());
  EXPECT_THAT(
      std::vector<std::string>(roles["coder"].tools().begin(), roles["coder"].tools().end()),
      ::testing::Contains("shell.run"));
  EXPECT_EQ(roles["coder"].max_instances(), 3);  // the embedded default's
}

// GetInfo answers from a copy of the daemon's state when nothing changed since the copy
// was made: a change committed before the call must show in its answer all the same.
TEST_F(DaemonTest, GetInfoCountsTasksAndGoalsAndShowsEveryChangeMadeBeforeTheCall) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  Client client(daemon_.UnixChannel());
  auto info = [&client] {
    v1::GetInfoResponse r;
    grpc::Status s = client.system().GetInfo(Ctx().get(), {}, &r);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return r;
  };
  v1::GetInfoResponse first = info();
  v1::GetInfoResponse again = info();  // nothing in between: may come from the copy
  EXPECT_EQ(again.counters().tasks(), 0);
  EXPECT_EQ(again.counters().active_goals(), 0);
  EXPECT_GT(again.counters().rpcs_served(), first.counters().rpcs_served());
  EXPECT_GE(again.uptime().seconds() * 1000000000LL + again.uptime().nanos(),
            first.uptime().seconds() * 1000000000LL + first.uptime().nanos());

  v1::SubmitGoalRequest submit;
  submit.set_text("count me");
  v1::SubmitGoalResponse goal;
  ASSERT_TRUE(client.tasks().SubmitGoal(Ctx().get(), submit, &goal).ok());
  v1::GetInfoResponse submitted = info();
  EXPECT_EQ(submitted.counters().tasks(), 1) << submitted.counters().DebugString();
  EXPECT_EQ(submitted.counters().active_goals(), 1);
  EXPECT_GT(submitted.counters().last_event_seq(), again.counters().last_event_seq());

  v1::CancelTaskRequest cancel;
  cancel.set_task_id(goal.goal().id());
  v1::CancelTaskResponse canceled;
  ASSERT_TRUE(client.tasks().CancelTask(Ctx().get(), cancel, &canceled).ok());
  v1::GetInfoResponse ended = info();
  EXPECT_EQ(ended.counters().tasks(), 1);
  EXPECT_EQ(ended.counters().active_goals(), 0) << ended.counters().DebugString();
  EXPECT_GT(ended.counters().last_event_seq(), submitted.counters().last_event_seq());
}

// A client that retries SubmitGoal with its request_id after agentd went away (killed, or
// restarted by systemd) gets the goal its first submission created, not a second one
// that would do the work again; a new id still makes a new goal.
TEST_F(DaemonTest, ASubmissionRetriedAfterARestartGetsTheGoalOfTheFirst) {
  auto submit = [&](const std::string& request_id, v1::Task* goal) {
    v1::SubmitGoalRequest req;
    req.set_text(absl::StrCat("goal of ", request_id));
    req.set_request_id(request_id);
    v1::SubmitGoalResponse resp;
    grpc::Status s = daemon_.client().tasks().SubmitGoal(Ctx().get(), req, &resp);
    *goal = resp.goal();
    return s;
  };
  auto goals = [&] {
    v1::ListTasksRequest req;
    req.set_goals_only(true);
    v1::ListTasksResponse list;
    EXPECT_TRUE(daemon_.client().tasks().ListTasks(Ctx().get(), req, &list).ok());
    return list.tasks_size();
  };
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  v1::Task first, second;
  ASSERT_TRUE(submit("ci-run-41", &first).ok());
  ASSERT_TRUE(submit("ci-run-42", &second).ok());
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  v1::Task again;
  grpc::Status s = submit("ci-run-41", &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.id(), first.id());
  EXPECT_EQ(again.input().instructions(), "goal of ci-run-41");
  EXPECT_EQ(goals(), 2);
  // Stopped cleanly and started again: the same, for the other one.
  ASSERT_EQ(daemon_.Stop(), std::optional<int>(0)) << daemon_.log();
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  ASSERT_TRUE(submit("ci-run-42", &again).ok());
  EXPECT_EQ(again.id(), second.id());
  v1::Task third;
  ASSERT_TRUE(submit("ci-run-43", &third).ok());
  EXPECT_NE(third.id(), first.id());
  EXPECT_NE(third.id(), second.id());
  EXPECT_EQ(goals(), 3);
}

// agentd killed while a goal's workspace was being made (git still running) stored no
// goal, but the id it gave named the directory git was making. The next start does not
// give that id again: the next goal gets a directory of its own, not the half-made one
// (a folder with files, which it would refuse as a person's). git is made slow here: a
// git first on agentd's PATH says what it was asked and waits.
TEST_F(DaemonTest, AnIdGivenToAGoalCutShortIsNotGivenAgain) {
  const std::string bin = dir_.Join("slow-git");
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  const std::string asked = dir_.Join("git-asked");
  WriteFile(bin + "/git",
            absl::StrCat("#!/bin/sh\necho $$ \"$@\" >> ", asked, "\nexec sleep 600\n"));
  ASSERT_EQ(chmod((bin + "/git").c_str(), 0755), 0);
  const char* path = std::getenv("PATH");
  ASSERT_TRUE(daemon_.Start({}, {absl::StrCat("PATH=", bin, ":", path == nullptr ? "" : path)}))
      << daemon_.log();
  std::thread cut([&] {
    v1::SubmitGoalRequest req;
    req.set_text("a goal cut short");
    v1::SubmitGoalResponse resp;
    grpc::Status s = daemon_.client().tasks().SubmitGoal(Ctx().get(), req, &resp);
    EXPECT_FALSE(s.ok()) << "answered " << resp.goal().id();
  });
  ASSERT_TRUE(WaitFor([&] { return !ReadFileOrEmpty(asked).empty(); }, absl::Seconds(20)))
      << daemon_.log();
  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  cut.join();
  // "PID init -q --template= -b main DIR": the goal's directory is DIR, which git (had it
  // gone on) would have filled; a file stands for what it made.
  std::vector<std::string> words =
      absl::StrSplit(ReadFileOrEmpty(asked), absl::ByAnyChar(" \n"), absl::SkipEmpty());
  ASSERT_GE(words.size(), 2u);
  int git_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(words.front(), &git_pid));
  kill(git_pid, SIGKILL);
  const std::string half_made = words.back();
  const std::string cut_id = half_made.substr(half_made.rfind('/') + 1);
  ASSERT_EQ(cut_id.rfind("g-", 0), 0u) << half_made;
  WriteFile(half_made + "/half-made.txt", "what git had made\n");

  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  v1::SubmitGoalRequest req;
  req.set_text("the next goal");
  v1::SubmitGoalResponse next;
  grpc::Status s = daemon_.client().tasks().SubmitGoal(Ctx().get(), req, &next);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(next.goal().id(), cut_id);
  EXPECT_NE(next.goal().workspace().path(), half_made);
  EXPECT_EQ(ReadFileOrEmpty(half_made + "/half-made.txt"), "what git had made\n");
}

// After a restart, finished tasks are kept in memory as their brief alone and read back
// from the store when asked for: every read answers as before, and new ids go on from
// the highest stored.
TEST_F(DaemonTest, FinishedTasksAreReadBackFromTheStoreAfterARestart) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  std::vector<std::string> goals;
  {
    Client client = daemon_.client();
    for (int i = 0; i < 3; ++i) {
      v1::SubmitGoalRequest submit;
      submit.set_text(absl::StrCat("goal number ", i));
      v1::SubmitGoalResponse goal;
      ASSERT_TRUE(client.tasks().SubmitGoal(Ctx().get(), submit, &goal).ok());
      goals.push_back(goal.goal().id());
    }
    for (int i = 0; i < 2; ++i) {
      v1::CancelTaskRequest cancel;
      cancel.set_task_id(goals[i]);
      cancel.set_reason(absl::StrCat("reason ", i));
      v1::CancelTaskResponse canceled;
      ASSERT_TRUE(client.tasks().CancelTask(Ctx().get(), cancel, &canceled).ok());
    }
  }
  ASSERT_EQ(daemon_.Stop(), std::optional<int>(0)) << daemon_.log();
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  Client client = daemon_.client();

  v1::GetTaskRequest get;
  get.set_task_id(goals[1]);
  v1::GetTaskResponse got;
  grpc::Status s = client.tasks().GetTask(Ctx().get(), get, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got.task().status(), v1::TASK_STATUS_CANCELED);
  EXPECT_THAT(got.task().input().DebugString(), HasSubstr("goal number 1"))
      << got.task().DebugString();
  EXPECT_THAT(got.task().failure().message(), HasSubstr("reason 1"));

  v1::ListTasksRequest list;
  list.add_statuses(v1::TASK_STATUS_CANCELED);
  v1::ListTasksResponse canceled;
  ASSERT_TRUE(client.tasks().ListTasks(Ctx().get(), list, &canceled).ok());
  ASSERT_EQ(canceled.tasks_size(), 2);
  EXPECT_EQ(canceled.tasks(0).id(), goals[1]) << "newest first";
  EXPECT_THAT(canceled.tasks(0).input().DebugString(), HasSubstr("goal number 1"));
  EXPECT_EQ(canceled.tasks(1).id(), goals[0]);
  EXPECT_THAT(canceled.tasks(1).failure().message(), HasSubstr("reason 0"));

  // Acting on a finished task reads it back too: canceling it again is refused as before.
  v1::CancelTaskRequest again;
  again.set_task_id(goals[0]);
  v1::CancelTaskResponse ignored;
  s = client.tasks().CancelTask(Ctx().get(), again, &ignored);
  EXPECT_NE(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();

  v1::GetInfoResponse info;
  ASSERT_TRUE(client.system().GetInfo(Ctx().get(), {}, &info).ok());
  EXPECT_EQ(info.counters().tasks(), 3);
  EXPECT_EQ(info.counters().active_goals(), 1);
  // The open goal, and the canceled one read back by Find (Get and List only copy).
  EXPECT_EQ(info.counters().tasks_in_memory(), 2);

  v1::SubmitGoalRequest submit;
  submit.set_text("one more");
  v1::SubmitGoalResponse more;
  ASSERT_TRUE(client.tasks().SubmitGoal(Ctx().get(), submit, &more).ok());
  EXPECT_THAT(goals, Not(::testing::Contains(more.goal().id())));
  v1::ListTasksRequest all;
  all.set_goals_only(true);
  v1::ListTasksResponse listed;
  ASSERT_TRUE(client.tasks().ListTasks(Ctx().get(), all, &listed).ok());
  ASSERT_EQ(listed.tasks_size(), 4);
  EXPECT_EQ(listed.tasks(0).id(), more.goal().id());
}

TEST_F(DaemonTest, AgentctlStatusJsonParsesAndCarriesTheVersion) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  grpc::Status s;
  v1::GetInfoResponse info = daemon_.client().GetInfo(&s);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_GE(info.schema_version(), 1);
  RunResult r =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "status", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["version"]["version"], AGENTD_VERSION);
  EXPECT_EQ(j["state"], "DAEMON_STATE_SERVING");
  EXPECT_EQ(j["paths"]["socket"], daemon_.socket());
  // What the daemon says, as it says it (an int64 is a JSON string).
  EXPECT_EQ(j["schemaVersion"], std::to_string(info.schema_version()));
  RunResult yaml =
      RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "status", "-o", "yaml"});
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, HasSubstr("state: DAEMON_STATE_SERVING"));
  RunResult table = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "status"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, ::testing::ContainsRegex("state: +serving"));
}

TEST_F(DaemonTest, AgentctlCannotConnectExitsThreeAndSaysWhereItTried) {
  RunResult r = RunCommand(
      {AgentctlBinary(), "--socket", dir_.Join("none.sock"), "--timeout", "1s", "status"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot connect to agentd at unix:" + dir_.Join("none.sock")));
  EXPECT_THAT(r.err, HasSubstr("Start it with `agentd`"));
  EXPECT_EQ(RunCommand({AgentctlBinary(), "frobnicate"}).exit_code, 2);
}

// agentd.db runs out of space (its growth capped, as a full disk would): agentd stops
// accepting changes rather than go on with memory the disk did not take — FAILED, health
// NOT_SERVING, said in `agentctl status` — while reads go on. Restarted, it has every
// goal it answered OK, and nothing of the one it refused.
TEST_F(DaemonTest, ADatabaseOutOfSpaceLeavesAgentdFailedRefusingChangesWithNothingHalfWritten) {
  ASSERT_TRUE(daemon_.Start({}, {"AGENTD_FAULT_DB_GROWTH_PAGES=16"})) << daemon_.log();
  Client client = daemon_.client();
  std::vector<std::string> accepted;
  grpc::Status refused;
  for (int i = 0; i < 400 && refused.ok(); ++i) {
    v1::SubmitGoalRequest req;
    req.set_text(absl::StrCat("goal ", i, ": ", std::string(3000, 'x')));
    v1::SubmitGoalResponse resp;
    grpc::Status s = client.tasks().SubmitGoal(Ctx().get(), req, &resp);
    if (s.ok()) {
      accepted.push_back(resp.goal().id());
    } else {
      refused = s;
    }
  }
  ASSERT_FALSE(refused.ok()) << "the database never filled up";
  std::sort(accepted.begin(), accepted.end());
  ASSERT_FALSE(accepted.empty()) << refused.error_message();
  v1::GetInfoResponse info;
  ASSERT_TRUE(client.system().GetInfo(Ctx().get(), {}, &info).ok());
  EXPECT_EQ(info.state(), v1::DAEMON_STATE_FAILED) << info.DebugString();
  EXPECT_THAT(info.failure(), HasSubstr("full")) << info.DebugString();
  auto health = grpc::health::v1::Health::NewStub(daemon_.UnixChannel());
  grpc::health::v1::HealthCheckResponse h;
  ASSERT_TRUE(health->Check(Ctx().get(), {}, &h).ok());
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  RunResult status = RunCommand({AgentctlBinary(), "--socket", daemon_.socket(), "status"});
  EXPECT_THAT(status.out, HasSubstr("failed: ")) << status.out << status.err;
  // Every change is refused from now on; reads still answer.
  v1::SubmitGoalRequest more;
  more.set_text("one more");
  v1::SubmitGoalResponse ignored;
  EXPECT_FALSE(client.tasks().SubmitGoal(Ctx().get(), more, &ignored).ok());
  auto goal_ids = [&] {
    v1::ListTasksRequest list;
    list.set_goals_only(true);
    list.set_page_size(1000);
    v1::ListTasksResponse page;
    grpc::Status s = Client(daemon_.UnixChannel()).tasks().ListTasks(Ctx().get(), list, &page);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const v1::Task& t : page.tasks()) ids.push_back(t.id());
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  EXPECT_EQ(goal_ids(), accepted);

  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  EXPECT_EQ(goal_ids(), accepted) << "a goal answered OK is missing, or a refused one is there";
  ASSERT_TRUE(Client(daemon_.UnixChannel()).system().GetInfo(Ctx().get(), {}, &info).ok());
  EXPECT_EQ(info.state(), v1::DAEMON_STATE_SERVING);
}

// A missing socket, a stale one and a refused TCP port answer at once, not after
// --timeout: the bound below is half the timeout, so only waiting it out fails.
TEST_F(DaemonTest, AgentctlFailsFastWhenNothingListens) {
  std::vector<std::vector<std::string>> cases = {
      {"--socket", dir_.Join("none.sock")},
  };
  {
    // A stale socket: bound, never listened on.
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string path = dir_.Join("stale.sock");
    std::memcpy(sun.sun_path, path.data(), path.size());
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)), 0) << strerror(errno);
    close(fd);
    cases.push_back({"--socket", path});
  }
  {
    // A TCP port nothing listens on: bound to learn a free one, then closed.
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
    ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len), 0);
    close(fd);
    cases.push_back({"--addr", absl::StrCat("127.0.0.1:", ntohs(sin.sin_port)), "--token", "x"});
  }
  for (const std::vector<std::string>& where : cases) {
    std::vector<std::string> argv = {AgentctlBinary()};
    argv.insert(argv.end(), where.begin(), where.end());
    argv.insert(argv.end(), {"--timeout", "60s", "status"});
    absl::Time start = absl::Now();
    RunResult r = RunCommand(argv);
    absl::Duration took = absl::Now() - start;
    EXPECT_EQ(r.exit_code, 3) << where[1] << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("Start it with `agentd`")) << where[1];
    EXPECT_LT(took, absl::Seconds(30)) << where[1] << " waited for its timeout: " << r.err;
  }
}

// The unix socket is the admin's credential: agentctl does not hand its commands to a
// socket whose directory someone else could have made or may write, and says why.
TEST_F(DaemonTest, AgentctlRefusesASocketWhoseDirectoryOthersControl) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  const std::string home = daemon_.socket();
  auto status_at = [](const std::string& socket) {
    return RunCommand({AgentctlBinary(), "--socket", socket, "--timeout", "5s", "status"});
  };
  ASSERT_EQ(status_at(home).exit_code, 0) << status_at(home).err;
  // The real daemon's socket, moved (a bound socket keeps working under a new name) into
  // a directory everyone may write.
  std::string open_dir = dir_.Join("open");
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  std::string moved = open_dir + "/agentd.sock";
  ASSERT_EQ(rename(home.c_str(), moved.c_str()), 0) << strerror(errno);
  RunResult refused = status_at(moved);
  EXPECT_EQ(refused.exit_code, 3) << refused.out;
  EXPECT_THAT(refused.err, HasSubstr("does not trust the socket's directory " + open_dir));
  EXPECT_THAT(refused.err, HasSubstr("0777"));
  // The same socket once the directory is private again: it was the directory.
  ASSERT_EQ(chmod(open_dir.c_str(), 0700), 0);
  RunResult trusted = status_at(moved);
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  // A symlink to the socket is not followed blindly either.
  std::string link = dir_.Join("link.sock");
  ASSERT_EQ(symlink(moved.c_str(), link.c_str()), 0);
  RunResult linked = status_at(link);
  EXPECT_EQ(linked.exit_code, 3);
  EXPECT_THAT(linked.err, HasSubstr("symbolic link"));
  if (geteuid() == 0) {
    // Another user's directory, made where anyone may create one (/tmp).
    char tmpl[] = "/tmp/agentd-other-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    std::string other = tmpl;
    ASSERT_EQ(chown(other.c_str(), 12345, 12345), 0);
    std::string there = other + "/agentd.sock";
    ASSERT_EQ(rename(moved.c_str(), there.c_str()), 0) << strerror(errno);
    RunResult foreign = status_at(there);
    EXPECT_EQ(foreign.exit_code, 3);
    EXPECT_THAT(foreign.err, HasSubstr("belongs to uid 12345"));
    // The same person's directory inside one only root may write (a home directory):
    // still not trusted.
    std::string nested = dir_.Join("run-agentd");
    ASSERT_EQ(rename(other.c_str(), nested.c_str()), 0) << strerror(errno);
    EXPECT_EQ(status_at(nested + "/agentd.sock").exit_code, 3);
    // A system account's (as systemd's /run/agentd for the `agentd` user), the socket its
    // own, inside a directory only root may write: only a privileged set-up could have
    // made it, so it is trusted.
    std::string sock = nested + "/agentd.sock";
    ASSERT_EQ(chown(nested.c_str(), 998, 998), 0);
    ASSERT_EQ(lchown(sock.c_str(), 998, 998), 0);
    RunResult service = status_at(sock);
    EXPECT_EQ(service.exit_code, 0) << service.err;
    ASSERT_EQ(lchown(sock.c_str(), 0, 0), 0);
    ASSERT_EQ(rename(sock.c_str(), moved.c_str()), 0);
  }
  ASSERT_EQ(rename(moved.c_str(), home.c_str()), 0) << strerror(errno);
}

TEST_F(DaemonTest, SocketIsPrivateAndItsDirectoryToo) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  struct stat st;
  ASSERT_EQ(stat(daemon_.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(dir_.Join("run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat((daemon_.state_dir() + "/admin.token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(DaemonTest, SigtermExitsZeroAndRemovesTheSocket) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  std::optional<int> st = daemon_.Stop();
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  ASSERT_TRUE(WIFEXITED(*st));
  EXPECT_EQ(WEXITSTATUS(*st), 0) << daemon_.log();
  struct stat sb;
  EXPECT_NE(stat(daemon_.socket().c_str(), &sb), 0);
  EXPECT_THAT(daemon_.log(), HasSubstr("agentd stopped"));
}

// A second agentd fails at once, with exit code 1: it must not hang waiting for the
// first (RunCommand kills it at the timeout, and that is exit_code -1).
TEST_F(DaemonTest, SecondDaemonOnTheSameSocketExitsNonZeroAndTheFirstKeepsServing) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  TempDir other;
  RunResult r = RunCommand({AgentdBinary(), "--state-dir", other.Join("state"), "--socket",
                            daemon_.socket(), "--http", ""},
                           absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("another agentd (pid " + std::to_string(daemon_.process()->pid())));
  EXPECT_THAT(r.err, HasSubstr("socket " + daemon_.socket()));
  v1::GetVersionResponse v;
  grpc::Status s = daemon_.client().system().GetVersion(Ctx().get(), v1::GetVersionRequest(), &v);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(daemon_.process()->running());
}

TEST_F(DaemonTest, SecondDaemonOnTheSameStateDirExitsNonZero) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  TempDir other;
  RunResult r = RunCommand({AgentdBinary(), "--state-dir", daemon_.state_dir(), "--socket",
                            other.Join("x.sock"), "--http", ""},
                           absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("state directory " + daemon_.state_dir()));
  // It failed before it touched anything of the first's: no socket of its own either.
  EXPECT_NE(access(other.Join("x.sock").c_str(), F_OK), 0);
  EXPECT_TRUE(daemon_.process()->running());
}

// A kill -9 leaves a stale socket, lock files and a database mid-use: the next agentd
// starts without anyone cleaning up, and what the first one had stored is all there.
TEST_F(DaemonTest, RestartsAfterKill9WithoutManualCleanup) {
  WriteFile(dir_.Join("agentd.yaml"),
            absl::StrCat("roles:\n  ceo: {command: [sleep, \"3600\"]}\n  keeper: {command: [\"",
                         HelperBinary("sleeper"), "\"]}\nagents: []\n"));
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  Client client = daemon_.client();
  // State of three kinds, each written before the kill: a goal, an agent, a message.
  v1::SubmitGoalRequest goal;
  goal.set_text("Survive a kill -9");
  v1::SubmitGoalResponse submitted;
  grpc::Status s = client.tasks().SubmitGoal(Ctx().get(), goal, &submitted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(submitted.goal().id().empty());
  s = client.StartAgent("keeper", "keep-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  int64_t old_pid = client.GetAgent("keep-1").pid();
  ASSERT_GT(old_pid, 0);
  v1::SendMessageRequest msg;
  msg.set_to("keep-1");
  msg.set_body("remember me");
  v1::SendMessageResponse sent;
  s = client.messages().SendMessage(Ctx().get(), msg, &sent);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(sent.envelope().id().empty());

  daemon_.process()->Signal(SIGKILL);
  ASSERT_TRUE(daemon_.process()->WaitExit(absl::Seconds(10)).has_value());
  struct stat sb;
  ASSERT_EQ(stat(daemon_.socket().c_str(), &sb), 0) << "no stale socket: the case is not tested";
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  client = daemon_.client();

  v1::GetTaskRequest get;
  get.set_task_id(submitted.goal().id());
  v1::GetTaskResponse task;
  s = client.tasks().GetTask(Ctx().get(), get, &task);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(task.task().input().instructions(), "Survive a kill -9");
  v1::ListMessagesRequest list;
  list.set_agent_id("keep-1");
  v1::ListMessagesResponse listed;
  s = client.messages().ListMessages(Ctx().get(), list, &listed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<std::pair<std::string, std::string>> messages;
  for (const v1::Envelope& e : listed.envelopes()) messages.emplace_back(e.id(), e.body());
  EXPECT_THAT(messages, ::testing::Contains(std::pair{sent.envelope().id(), "remember me"}));
  // The agent is known; started by hand and holding no task, it stays down until asked
  // (the config's agents: and agents holding work come back), and its old process is gone.
  v1::Agent agent = client.GetAgent("keep-1");
  EXPECT_EQ(agent.state(), v1::AGENT_STATE_STOPPED) << agent.DebugString();
  EXPECT_TRUE(ProcessGone(old_pid));
  s = client.StartAgent("keeper", "keep-1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(WaitForValue([&] { return client.GetAgent("keep-1"); },
                           [&](const v1::Agent& a) {
                             return a.state() == v1::AGENT_STATE_RUNNING && a.pid() > 0 &&
                                    a.pid() != old_pid;
                           },
                           absl::Seconds(20), &agent))
      << daemon_.log();
  EXPECT_EQ(agent.role(), "keeper");
}

class TcpTest : public DaemonTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.Start({"--grpc-tcp", "127.0.0.1:0"})) << daemon_.log();
    auto stub = v1::SystemService::NewStub(daemon_.UnixChannel());
    v1::GetInfoResponse info;
    ASSERT_TRUE(stub->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info).ok());
    addr_ = info.paths().grpc_tcp();
    ASSERT_FALSE(addr_.empty()) << info.DebugString() << daemon_.log();
  }
  grpc::Status CallWithToken(const std::string& token) {
    auto ch = grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials());
    auto stub = v1::SystemService::NewStub(ch);
    auto ctx = Ctx();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    v1::GetInfoResponse info;
    return stub->GetInfo(ctx.get(), v1::GetInfoRequest(), &info);
  }
  std::string addr_;
};

// The caller is not known yet: the refusal says what to send, never where agentd keeps
// its files.
TEST_F(TcpTest, NoTokenIsUnauthenticatedAndSaysWhatToSendButNamesNoPath) {
  grpc::Status s = CallWithToken("");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), HasSubstr("authorization: Bearer"));
  EXPECT_THAT(s.error_message(), Not(HasSubstr(daemon_.state_dir())));
  EXPECT_THAT(s.error_message(), Not(HasSubstr("/")));
}

TEST_F(TcpTest, WrongTokenIsUnauthenticatedAndNamesNoPath) {
  grpc::Status s = CallWithToken("agentd_0000");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(s.error_message(), Not(HasSubstr("/")));
}

TEST_F(TcpTest, AdminTokenIsAccepted) {
  grpc::Status s = CallWithToken(daemon_.admin_token());
  EXPECT_TRUE(s.ok()) << s.error_message();
}

TEST_F(TcpTest, ReflectionAndHealthNeedTheTokenToo) {
  auto ch = grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(ch);
  grpc::health::v1::HealthCheckResponse resp;
  EXPECT_EQ(health->Check(Ctx().get(), {}, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TcpTest, AgentctlOverTcpWithTokenFile) {
  RunResult ok = RunCommand({AgentctlBinary(), "--addr", addr_, "--token-file",
                             daemon_.state_dir() + "/admin.token", "status", "-o", "json"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(nlohmann::json::parse(ok.out)["paths"]["grpcTcp"], addr_);
  RunResult bad =
      RunCommand({AgentctlBinary(), "--addr", addr_, "--token", "agentd_nope", "status"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("UNAUTHENTICATED"));
}

TEST_F(TcpTest, TheAdminTokenNeverAppearsInTheLog) {
  ASSERT_FALSE(daemon_.admin_token().empty());
  ASSERT_TRUE(CallWithToken(daemon_.admin_token()).ok());
  ASSERT_FALSE(CallWithToken("agentd_wrong_token_value").ok());
  ASSERT_TRUE(daemon_.Stop().has_value());
  std::string log = daemon_.log();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.find(daemon_.admin_token()), std::string::npos);
}

TEST_F(DaemonTest, JsonLogsAreOneObjectPerLine) {
  ASSERT_TRUE(daemon_.Start({"--log-format", "json"})) << daemon_.log();
  ASSERT_TRUE(daemon_.Stop().has_value());
  std::vector<std::string> lines = absl::StrSplit(daemon_.log(), '\n', absl::SkipEmpty());
  ASSERT_GE(lines.size(), 2u);
  for (const std::string& line : lines) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
  }
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

TEST_F(DaemonTest, AnIdleClientConnectionDoesNotHoldUpShutdown) {
  // With a two-minute drain deadline, agentd must still exit as soon as no call is in
  // flight, although this client keeps its connection open.
  WriteFile(dir_.Join("agentd.yaml"), "server: {shutdown_timeout: 120s}\n");
  ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
  auto channel = daemon_.UnixChannel();
  auto stub = v1::SystemService::NewStub(channel);
  v1::GetVersionResponse v;
  ASSERT_TRUE(stub->GetVersion(Ctx().get(), v1::GetVersionRequest(), &v).ok());
  std::optional<int> st = daemon_.Stop(absl::Seconds(60));
  ASSERT_TRUE(st.has_value()) << "agentd waited for the idle connection\n" << daemon_.log();
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(st);
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// TCP with TLS from server.tls_cert_file/tls_key_file: the token is still required.
class TlsTest : public DaemonTest {
 protected:
  void SetUp() override {
    RunResult cert =
        RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    dir_.Join("key.pem"), "-out", dir_.Join("cert.pem"), "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"});
    ASSERT_EQ(cert.exit_code, 0) << cert.err;
    WriteFile(dir_.Join("agentd.yaml"),
              "server:\n  grpc_tcp: \"0.0.0.0:0\"\n  tls_cert_file: " + dir_.Join("cert.pem") +
                  "\n  tls_key_file: " + dir_.Join("key.pem") + "\n");
    ASSERT_TRUE(daemon_.Start({"--config", dir_.Join("agentd.yaml")})) << daemon_.log();
    auto stub = v1::SystemService::NewStub(daemon_.UnixChannel());
    v1::GetInfoResponse info;
    ASSERT_TRUE(stub->GetInfo(Ctx().get(), v1::GetInfoRequest(), &info).ok());
    port_ = info.paths().grpc_tcp().substr(info.paths().grpc_tcp().rfind(':') + 1);
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(port_, &port) && port > 0) << info.DebugString();
  }
  grpc::Status Call(const std::string& token, const std::string& ca_pem) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_pem;
    auto ch = grpc::CreateChannel("localhost:" + port_, grpc::SslCredentials(ssl));
    auto stub = v1::SystemService::NewStub(ch);
    auto ctx = Ctx();
    if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
    v1::GetVersionResponse v;
    return stub->GetVersion(ctx.get(), v1::GetVersionRequest(), &v);
  }
  std::string port_;
};

TEST_F(TlsTest, TlsWithTheTokenIsAcceptedAndWithoutItUnauthenticated) {
  std::string ca = ReadFileOrEmpty(dir_.Join("cert.pem"));
  grpc::Status ok = Call(daemon_.admin_token(), ca);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(Call("", ca).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A plaintext client does not get through a TLS listener at all.
  auto plain = grpc::CreateChannel("localhost:" + port_, grpc::InsecureChannelCredentials());
  v1::GetVersionResponse v;
  auto ctx = Ctx(absl::Seconds(2));
  ctx->AddMetadata("authorization", "Bearer " + daemon_.admin_token());
  EXPECT_FALSE(v1::SystemService::NewStub(plain)->GetVersion(ctx.get(), {}, &v).ok());
}

TEST_F(TlsTest, AgentctlWithTlsCa) {
  RunResult r = RunCommand({AgentctlBinary(), "--addr", "localhost:" + port_, "--tls-ca",
                            dir_.Join("cert.pem"), "--token", daemon_.admin_token(), "version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("agentd   " AGENTD_VERSION));
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

TEST_F(DaemonTest, HealthWatchersSeeNotServingWhenTheDaemonDrains) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  auto health = grpc::health::v1::Health::NewStub(daemon_.UnixChannel());
  auto ctx = Ctx(absl::Seconds(30));
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("agentd.v1.SystemService");
  auto reader = health->Watch(ctx.get(), req);
  grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  daemon_.process()->Signal(SIGTERM);
  bool saw_not_serving = false;
  while (reader->Read(&resp)) {
    if (resp.status() == grpc::health::v1::HealthCheckResponse::NOT_SERVING) {
      saw_not_serving = true;
      break;
    }
  }
  EXPECT_TRUE(saw_not_serving) << "the watch ended without NOT_SERVING, last "
                               << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                                      resp.status());
  ctx->TryCancel();
  reader->Finish();
  std::optional<int> st = daemon_.process()->WaitExit(absl::Seconds(20));
  ASSERT_TRUE(st.has_value()) << "agentd did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << DescribeWaitStatus(st);
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// --log-format json: each record one JSON object, with the agent, task and goal it
// concerns as fields of their own.
TEST(DaemonLogTest, JsonRecordsCarryTheAgentTaskAndGoalTheyConcern) {
  TempDir dir;
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({"--log-format", "json"})) << daemon.log();
  v1::SubmitGoalRequest goal;
  goal.set_text("Log me");
  v1::SubmitGoalResponse submitted;
  ASSERT_TRUE(daemon.client().tasks().SubmitGoal(Ctx().get(), goal, &submitted).ok());
  const std::string id = submitted.goal().id();
  nlohmann::json found;
  EXPECT_TRUE(WaitFor(
      [&] {
        for (absl::string_view line : absl::StrSplit(daemon.log(), '\n', absl::SkipEmpty())) {
          nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
          if (j.is_object() && j.value("task_id", "") == id && j.value("goal_id", "") == id &&
              j.value("agent_id", "") == "ceo") {
            found = j;
            return true;
          }
        }
        return false;
      },
      absl::Seconds(20)))
      << daemon.log();
  EXPECT_TRUE(found.contains("msg") && found.contains("level") && found.contains("ts"))
      << found.dump();
}

// Under systemd (stderr is the journal: JOURNAL_STREAM names its device and inode),
// agentd writes to journald natively: a priority per level and AGENT_ID=, TASK_ID=,
// GOAL_ID= fields. A test journal socket stands in for journald, where none runs.
TEST(DaemonLogTest, UnderSystemdRecordsGoToTheJournalWithFields) {
  const std::string journal = "/run/systemd/journal/socket";
  if (geteuid() != 0) GTEST_SKIP() << "needs root to stand in for journald at " << journal;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", journal.c_str());
  if (access(journal.c_str(), F_OK) == 0) {
    // A live journald answers on it; a socket file no one holds (a test run that died)
    // refuses, and is replaced.
    int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(probe);
    if (live) GTEST_SKIP() << "a journald runs here (" << journal << ")";
    unlink(journal.c_str());
  }
  ASSERT_EQ(system("mkdir -p /run/systemd/journal"), 0);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  // Drained from the start, on a thread of its own: sd_journal_sendv blocks when the
  // socket's queue is full, and agentd must never wait for the test.
  std::mutex mu;
  std::vector<std::string> records;
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    char buf[65536];
    while (!stop) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n <= 0) continue;
      std::lock_guard<std::mutex> l(mu);
      records.emplace_back(buf, static_cast<size_t>(n));
    }
  });
  struct Cleanup {
    std::atomic<bool>& stop;
    std::thread& reader;
    int fd;
    std::string path;
    ~Cleanup() {
      stop = true;
      reader.join();
      close(fd);
      unlink(path.c_str());
    }
  } cleanup{stop, reader, fd, journal};
  TempDir dir;
  WriteFile(dir.Join("agentd.err"), "");
  struct stat st;
  ASSERT_EQ(stat(dir.Join("agentd.err").c_str(), &st), 0);
  Daemon daemon(dir);
  ASSERT_TRUE(daemon.Start({}, {absl::StrCat("JOURNAL_STREAM=", st.st_dev, ":", st.st_ino)}))
      << daemon.log();
  v1::SubmitGoalRequest goal;
  goal.set_text("Journal me");
  v1::SubmitGoalResponse submitted;
  ASSERT_TRUE(daemon.client().tasks().SubmitGoal(Ctx().get(), goal, &submitted).ok());
  const std::string id = submitted.goal().id();
  // Datagrams of "KEY=value\n" fields (journald's native protocol).
  auto has = [&](const std::vector<std::string>& fields) {
    std::lock_guard<std::mutex> l(mu);
    for (const std::string& r : records) {
      bool all = true;
      for (const std::string& f : fields) all = all && r.find(f) != std::string::npos;
      if (all) return true;
    }
    return false;
  };
  EXPECT_TRUE(WaitFor(
      [&] {
        return has({"AGENT_ID=ceo\n", "TASK_ID=" + id + "\n", "GOAL_ID=" + id + "\n"});
      },
      absl::Seconds(20)))
      << "no record with the goal's fields";
  EXPECT_TRUE(has({"MESSAGE=agentd ", "SYSLOG_IDENTIFIER=agentd\n", "PRIORITY=6\n"}))
      << "no info-level start-up record";
  // Nothing of it on stderr: the journal has it once.
  EXPECT_EQ(daemon.log().find("serving on"), std::string::npos) << daemon.log();
}

}  // namespace
}  // namespace agentd::testing
