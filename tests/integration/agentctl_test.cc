// agentctl's command line as a person and a script meet it: the real binary, parsing,
// help, exit codes and shell completion, against a real agentd where a daemon is due.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/client.h"
#include "tests/support/daemon.h"
#include "tests/support/fakellm.h"

namespace agentd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsSupersetOf;
using ::testing::Not;

class AgentctlTest : public ::testing::Test {
 protected:
  RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {AgentctlBinary(), "--socket", daemon_.socket()});
    return RunCommand(args);
  }
  // The bodies of the messages the bus holds, oldest first.
  std::vector<std::string> MessageBodies() {
    v1::ListMessagesRequest req;
    v1::ListMessagesResponse resp;
    grpc::Status s = daemon_.client().messages().ListMessages(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> bodies;
    for (const v1::Envelope& e : resp.envelopes()) bodies.push_back(e.body());
    return bodies;
  }

  TempDir dir_;
  Daemon daemon_{dir_};
};

// Every command answers --help with its own usage, options and examples, without a
// daemon; the same text `agentctl help CMD…` prints.
TEST_F(AgentctlTest, EveryCommandHasItsOwnHelp) {
  const std::vector<std::vector<std::string>> commands = {{"status"},
                                                          {"version"},
                                                          {"ui"},
                                                          {"config", "validate"},
                                                          {"config", "default"},
                                                          {"config", "reload"},
                                                          {"get", "agents"},
                                                          {"get", "tasks"},
                                                          {"get", "plans"},
                                                          {"get", "consents"},
                                                          {"get", "events"},
                                                          {"describe", "agent"},
                                                          {"describe", "task"},
                                                          {"describe", "plan"},
                                                          {"describe", "consent"},
                                                          {"start"},
                                                          {"stop"},
                                                          {"restart"},
                                                          {"consent", "approve"},
                                                          {"consent", "deny"},
                                                          {"logs"},
                                                          {"goal"},
                                                          {"cancel"},
                                                          {"pause"},
                                                          {"resume"},
                                                          {"retry"},
                                                          {"usage"},
                                                          {"send"},
                                                          {"messages"},
                                                          {"approve"},
                                                          {"reject"},
                                                          {"budget", "get"},
                                                          {"budget", "set"},
                                                          {"audit"},
                                                          {"bootstrap"},
                                                          {"completion"},
                                                          {"help"},
                                                          {"chat"},
                                                          {"delete", "agent"},
                                                          {"doctor"},
                                                          {"config", "view"}};
  std::set<std::string> texts;
  for (const auto& words : commands) {
    std::vector<std::string> argv = {AgentctlBinary()};
    argv.insert(argv.end(), words.begin(), words.end());
    std::string path = absl::StrJoin(words, " ");
    argv.push_back("--help");
    RunResult r = RunCommand(argv);
    ASSERT_EQ(r.exit_code, 0) << path << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("Usage: agentctl " + path)) << r.out;
    if (path != "help" && path != "status" && path != "version" && path != "config default" &&
        path != "config reload" && path != "ui") {
      EXPECT_THAT(r.out, HasSubstr("Example")) << path << "\n" << r.out;
    }
    texts.insert(r.out);
    std::vector<std::string> via_help = {AgentctlBinary(), "help"};
    via_help.insert(via_help.end(), words.begin(), words.end());
    RunResult h = RunCommand(via_help);
    ASSERT_EQ(h.exit_code, 0) << h.err;
    EXPECT_EQ(h.out, r.out) << path;
    // -h anywhere after the command is the same request.
    argv.back() = "-h";
    EXPECT_EQ(RunCommand(argv).out, r.out) << path;
  }
  EXPECT_EQ(texts.size(), commands.size()) << "two commands share a help text";
  // The top level documents the exit codes (4 too) and the environment fallbacks.
  RunResult top = RunCommand({AgentctlBinary(), "--help"});
  ASSERT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("4  still running"));
  EXPECT_THAT(top.out, HasSubstr("AGENTD_SOCKET"));
  EXPECT_THAT(top.out, HasSubstr("AGENTD_TOKEN"));
  EXPECT_THAT(RunCommand({AgentctlBinary(), "help", "--all"}).out,
              HasSubstr("Usage: agentctl consent deny"));
}

// "help" and "--help" after the words a command takes are its arguments, not a request
// for help; `--` ends the flags.
TEST_F(AgentctlTest, HelpAsAnArgumentIsSentAsText) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  RunResult a = Ctl({"send", "@ceo", "help"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  RunResult b = Ctl({"send", "@ceo", "--", "--help"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult c = Ctl({"send", "@ceo", "--", "-h"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(MessageBodies(), (std::vector<std::string>{"help", "--help", "-h"}));
}

// -o in every spelling, before or after the command; --version with no daemon.
TEST_F(AgentctlTest, OutputFlagInEverySpellingAndVersionWithoutADaemon) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  for (const std::vector<std::string>& spelling :
       std::vector<std::vector<std::string>>{{"-ojson", "get", "agents"},
                                             {"-o=json", "get", "agents"},
                                             {"--output=json", "get", "agents"},
                                             {"get", "agents", "-o", "json"},
                                             {"get", "agents", "-ojson"}}) {
    RunResult r = Ctl(spelling);
    ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(spelling, " ") << ": " << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("agents")) << absl::StrJoin(spelling, " ") << r.out;
  }
  RunResult v = RunCommand({AgentctlBinary(), "--socket", dir_.Join("none.sock"), "--version"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_THAT(v.out, HasSubstr(absl::StrCat("agentctl ", AGENTD_VERSION)));
  // A TCP address in the environment without its token concerns only commands that
  // connect: help and completion (the man page is made from them) work.
  RunResult all = RunCommand({AgentctlBinary(), "help", "--all"}, absl::Seconds(30),
                             {"AGENTD_ADDR=127.0.0.1:1"});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("agentctl get agents"));
  RunResult tcp =
      RunCommand({AgentctlBinary(), "status"}, absl::Seconds(30), {"AGENTD_ADDR=127.0.0.1:1"});
  EXPECT_EQ(tcp.exit_code, 3);
  EXPECT_THAT(tcp.err, HasSubstr("needs the admin token"));
}

// Usage errors exit 2 and name what was wrong and where to read more; flags after the
// command are the command's.
TEST_F(AgentctlTest, UsageErrorsExitTwoAndSayWhatAndWhere) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"frobnicate"}, "unknown command \"frobnicate\""},
           {{"get", "frobs"}, "unknown command \"frobs\""},
           {{"get", "agents", "--frob"}, "--frob"},
           {{"logs", "ceo", "--tail", "many"}, "--tail: \"many\" is not a whole number"},
           {{"goal", "x", "--timeout", "0s"}, "--timeout"},
           {{"goal", "x", "--approve", "maybe"}, "--approve"},
           {{"-o", "xml", "status"}, "--output"},
           {{"stop"}, "AGENT is required"},
           {{"reject", "p-1"}, "--reason"},
       }) {
    RunResult r = RunCommand([&] {
      std::vector<std::string> argv = {AgentctlBinary(), "--socket", dir_.Join("none.sock")};
      argv.insert(argv.end(), c.args.begin(), c.args.end());
      return argv;
    }());
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(r.err, HasSubstr("--help")) << absl::StrJoin(c.args, " ");
  }
}

// Completion: commands, flags, flag values and the daemon's own ids, through the real
// bash script.
TEST_F(AgentctlTest, CompletionOffersCommandsFlagsValuesAndTheDaemonsIds) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  RunResult sent = Ctl({"goal", "complete me"});
  ASSERT_EQ(sent.exit_code, 0) << sent.err;
  auto complete = [&](std::vector<std::string> words, const std::string& current) {
    std::vector<std::string> argv = {AgentctlBinary(), "__complete", "--socket", daemon_.socket()};
    argv.insert(argv.end(), words.begin(), words.end());
    argv.push_back("--");
    argv.push_back(current);
    RunResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::vector<std::string>(absl::StrSplit(r.out, '\n', absl::SkipEmpty()));
  };
  EXPECT_THAT(complete({}, "st"), IsSupersetOf({"start", "status", "stop"}));
  EXPECT_THAT(complete({"get"}, ""), IsSupersetOf({"agents", "tasks", "plans", "consents"}));
  EXPECT_THAT(complete({"logs"}, "--t"), IsSupersetOf({"--tail", "--timestamps", "--timeout"}));
  EXPECT_THAT(complete({"usage", "--by"}, ""), IsSupersetOf({"role", "model", "task"}));
  EXPECT_THAT(complete({"describe", "agent"}, ""), IsSupersetOf({"ceo", "manager"}));
  EXPECT_THAT(complete({"send"}, "@m"), ::testing::ElementsAre("@manager"));
  EXPECT_THAT(complete({"cancel"}, "g-"), ::testing::Contains("g-1"));
  EXPECT_THAT(complete({"describe", "agent", "ceo"}, ""), Not(::testing::Contains("ceo")));
  EXPECT_THAT(complete({"get", "agents"}, "--output=y"), ::testing::ElementsAre("--output=yaml"));
  EXPECT_THAT(complete({"send", "@ceo", "hi"}, "--"), IsSupersetOf({"--task", "--reply-to"}));

  RunResult script = RunCommand({AgentctlBinary(), "completion", "bash"});
  ASSERT_EQ(script.exit_code, 0);
  std::string file = dir_.Join("agentctl.bash");
  WriteFile(file, script.out);
  std::string bin_dir = AgentctlBinary().substr(0, AgentctlBinary().rfind('/'));
  RunResult bash =
      RunCommand({"bash", "-c",
                  absl::StrCat("PATH=", bin_dir, ":$PATH; export AGENTD_SOCKET=", daemon_.socket(),
                               "; source ", file,
                               "; COMP_WORDS=(agentctl describe agent m); COMP_CWORD=3; _agentctl; "
                               "printf '%s\\n' \"${COMPREPLY[@]}\"")});
  ASSERT_EQ(bash.exit_code, 0) << bash.err;
  EXPECT_EQ(bash.out, "manager\n");
}

// goal --wait and get -w follow the change feed: a task that waits shows why (here the
// default config's provider, which nothing serves, with agentd's retry count), and the
// watched list prints the goal's rows as they change.
TEST_F(AgentctlTest, WaitAndWatchShowChangesAsTheyHappenAndWhyATaskWaits) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  Subprocess agents({AgentctlBinary(), "--socket", daemon_.socket(), "get", "agents", "-w"},
                    dir_.Join("agents.out"), dir_.Join("agents.err"));
  Subprocess watch({AgentctlBinary(), "--socket", daemon_.socket(), "get", "tasks", "-w"},
                   dir_.Join("watch.out"), dir_.Join("watch.err"));
  ASSERT_TRUE(
      WaitFor([&] { return ReadFileOrEmpty(dir_.Join("watch.out")) != ""; }, absl::Seconds(10)));
  EXPECT_EQ(ReadFileOrEmpty(dir_.Join("watch.out")).substr(0, 2), "ID");
  Subprocess goal({AgentctlBinary(), "--socket", daemon_.socket(), "goal", "Say hi", "--wait"},
                  dir_.Join("goal.out"), dir_.Join("goal.err"));
  std::string progress;
  EXPECT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("goal.err")); },
                           [](const std::string& err) {
                             return err.find("blocked") != std::string::npos &&
                                    err.find("(retry 1 of ") != std::string::npos;
                           },
                           absl::Seconds(60), &progress));
  EXPECT_THAT(progress, HasSubstr("goal g-1 submitted"));
  EXPECT_THAT(progress, HasSubstr("running"));
  // The watched list got the goal as it was created, and again as it changed.
  std::string rows;
  EXPECT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("watch.out")); },
                           [](const std::string& out) {
                             return out.find("g-1") != std::string::npos &&
                                    out.find("blocked") != std::string::npos;
                           },
                           absl::Seconds(30), &rows));
  EXPECT_THAT(rows, ::testing::ContainsRegex("g-1 +ceo +(pending|ready|assigned)"));
  EXPECT_TRUE(watch.running()) << ReadFileOrEmpty(dir_.Join("watch.err"));
  // The agents' watch: a coder started by hand shows up, as it starts and as it runs.
  ASSERT_EQ(Ctl({"start", "coder"}).exit_code, 0);
  std::string agent_rows;
  EXPECT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("agents.out")); },
                           [](const std::string& out) {
                             return out.find("coder-1   coder") != std::string::npos &&
                                    out.find("idle") != std::string::npos;
                           },
                           absl::Seconds(30), &agent_rows));
  EXPECT_THAT(agent_rows, ::testing::ContainsRegex("coder-1 +coder +starting"));
  // The feed itself, as recorded: the goal's events in seq order, the backoff among them.
  RunResult events = Ctl({"get", "events", "--goal", "g-1", "--kind", "task.", "--kind", "goal."});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  EXPECT_THAT(events.out, ::testing::ContainsRegex("goal.submitted +g-1 +g-1"));
  EXPECT_THAT(events.out,
              ::testing::ContainsRegex("task.provider_backoff +g-1 +g-1 +ceo +blocked"));
  EXPECT_THAT(events.out, Not(HasSubstr("usage.")));
  EXPECT_TRUE(goal.running()) << ReadFileOrEmpty(dir_.Join("goal.err"));
}

// delete agent: a stopped agent's record goes (event and audit entry recorded); a running
// one only with --force; one the config lists never. And an agent a person started by
// hand and left idle does not come back when agentd restarts; the config's agents do.
TEST_F(AgentctlTest, DeleteAgentAndHandStartedAgentsStayDownAfterARestart) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  RunResult started = Ctl({"start", "coder"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  RunResult running = Ctl({"delete", "agent", "coder-1"});
  EXPECT_EQ(running.exit_code, 1);
  EXPECT_THAT(running.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(running.err, HasSubstr("agentctl stop coder-1"));
  RunResult listed = Ctl({"delete", "agent", "ceo", "--force"});
  EXPECT_EQ(listed.exit_code, 1);
  EXPECT_THAT(listed.err, HasSubstr("listed in the configuration's agents:"));
  RunResult missing = Ctl({"delete", "agent", "nobody"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("NOT_FOUND"));

  // Started by hand, idle, then agentd restarts: it stays stopped; ceo comes back.
  ASSERT_EQ(Ctl({"start", "coder"}).exit_code, 0);  // coder-2
  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  auto state_of = [&](const std::string& id) {
    RunResult r = Ctl({"get", "agents", "-o", "json"});
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_object()) return std::string("?");
    for (const auto& a : j["agents"]) {
      if (a["id"] == id) return a["state"].get<std::string>();
    }
    return std::string("absent");
  };
  EXPECT_EQ(state_of("coder-2"), "AGENT_STATE_STOPPED");
  std::string ceo;
  EXPECT_TRUE(WaitForValue(
      [&] { return state_of("ceo"); },
      [](const std::string& s) { return s == "AGENT_STATE_IDLE" || s == "AGENT_STATE_RUNNING"; },
      absl::Seconds(20), &ceo));

  RunResult deleted = Ctl({"delete", "agent", "coder-2"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "agent coder-2 deleted\n");
  EXPECT_EQ(state_of("coder-2"), "absent");
  RunResult forced = Ctl({"delete", "agent", "coder-1", "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(state_of("coder-1"), "absent");
  RunResult events = Ctl({"get", "events", "--kind", "agent.deleted"});
  EXPECT_THAT(events.out, ::testing::ContainsRegex("agent.deleted +- +- +coder-2"));
  EXPECT_THAT(Ctl({"audit", "--action", "agent.delete"}).out, HasSubstr("coder-1"));
  // Deleted stays deleted across a restart.
  ASSERT_TRUE(daemon_.Stop().has_value());
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  EXPECT_EQ(state_of("coder-1"), "absent");
  EXPECT_EQ(state_of("coder-2"), "absent");
}

// A listener that cannot be bound (its port taken) fails agentd's start before any
// agent runs: none is started only to be killed again.
TEST_F(AgentctlTest, ATakenHttpPortFailsTheStartBeforeAnyAgentRuns) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  daemon_.ExpectUncleanExit();
  daemon_.Spawn({"--http", absl::StrCat("127.0.0.1:", ntohs(addr.sin_port))});
  std::optional<int> status = daemon_.process()->WaitExit(absl::Seconds(30));
  close(fd);
  ASSERT_TRUE(status.has_value()) << daemon_.log();
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(daemon_.log(), HasSubstr("127.0.0.1:"));
  // No agent was started: agentd's notes in the agents' logs name no process.
  for (const std::string agent : {"ceo", "manager"}) {
    std::string notes =
        ReadFileOrEmpty(daemon_.state_dir() + "/logs/" + agent + "/00000000000000000001.seg");
    EXPECT_THAT(notes, Not(HasSubstr("(pid "))) << agent;
  }
  EXPECT_THAT(daemon_.log(), Not(HasSubstr("agent ceo")));
}

// agentctl chat, driven through a pipe as a script would: plain lines go to the agent
// talked to, @agent lines to another, /commands answer in place, and what people are told
// shows as it is sent; the end of input ends it with exit 0.
TEST_F(AgentctlTest, ChatSendsMessagesRunsCommandsAndShowsWhatComes) {
  ASSERT_TRUE(daemon_.Start()) << daemon_.log();
  std::string fifo = dir_.Join("chat.in");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Subprocess chat({"/bin/sh", "-c",
                   absl::StrCat("exec '", AgentctlBinary(), "' --socket '", daemon_.socket(),
                                "' chat @ceo < '", fifo, "'")},
                  dir_.Join("chat.out"), dir_.Join("chat.err"));
  // A chat that died early must fail the test, not kill it with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  int in = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // waits for the chat to open it
  ASSERT_GE(in, 0);
  auto type = [&](const std::string& line) {
    std::string l = line + "\n";
    ASSERT_EQ(write(in, l.data(), l.size()), static_cast<ssize_t>(l.size()));
  };
  type("hello ceo");
  type("@manager hi manager");
  type("/agents");
  type("/plans");
  type("/frobnicate");
  std::string out;
  EXPECT_TRUE(WaitForValue(
      [&] { return ReadFileOrEmpty(dir_.Join("chat.out")); },
      [](const std::string& o) { return o.find("not a chat command") != std::string::npos; },
      absl::Seconds(20), &out));
  EXPECT_THAT(out, ::testing::ContainsRegex("ceo +ceo +[a-z]+"));
  EXPECT_THAT(out, HasSubstr("no plan waits for approval"));
  // What someone tells the people shows in the chat as it is sent.
  ASSERT_EQ(Ctl({"send", "human", "a note for whoever chats"}).exit_code, 0);
  EXPECT_TRUE(WaitForValue([&] { return ReadFileOrEmpty(dir_.Join("chat.out")); },
                           [](const std::string& o) {
                             return o.find("→ you] a note for whoever chats") != std::string::npos;
                           },
                           absl::Seconds(20), &out));
  close(in);
  std::optional<int> status = chat.WaitExit(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << ReadFileOrEmpty(dir_.Join("chat.err"));
  std::vector<std::string> bodies = MessageBodies();
  EXPECT_THAT(bodies, ::testing::IsSupersetOf({"hello ceo", "hi manager"}));
  v1::ListMessagesRequest req;
  req.set_agent_id("manager");
  v1::ListMessagesResponse to_manager;
  ASSERT_TRUE(daemon_.client().messages().ListMessages(Ctx().get(), req, &to_manager).ok());
  ASSERT_EQ(to_manager.envelopes_size(), 1);
  EXPECT_EQ(to_manager.envelopes(0).body(), "hi manager");

  // WatchMessages by cursor: what is stored after it, in order, then what is sent next.
  auto watch = [&](int64_t after, const std::string& agent, size_t n) {
    auto ctx = Ctx(absl::Seconds(20));
    v1::WatchMessagesRequest watch_req;
    watch_req.set_after_seq(after);
    watch_req.set_agent_id(agent);
    auto reader = daemon_.client().messages().WatchMessages(ctx.get(), watch_req);
    std::vector<v1::Envelope> got;
    v1::WatchMessagesResponse resp;
    while (got.size() < n && reader->Read(&resp)) got.push_back(resp.envelope());
    ctx->TryCancel();
    reader->Finish();
    return got;
  };
  std::vector<v1::Envelope> all = watch(0, "", 3);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].body(), "hello ceo");
  EXPECT_LT(all[0].seq(), all[1].seq());
  std::vector<v1::Envelope> rest = watch(all[0].seq(), "", 2);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id(), all[1].id());
  // Live: a message sent after the watch began comes with its seq, and the agent filter
  // holds (the manager's watch sees its own, not the CEO's).
  std::vector<v1::Envelope> live;
  std::atomic<bool> watched{false};
  std::thread watcher([&] {
    live = watch(-1, "manager", 1);
    watched = true;
  });
  bool seen = WaitFor(
      [&] {
        // Sent until the watch (which starts at "now") has seen one: no race with its start.
        if (watched) return true;
        (void)Ctl({"send", "@ceo", "not for the manager"});
        (void)Ctl({"send", "@manager", "for the manager"});
        return false;
      },
      absl::Seconds(20));
  watcher.join();
  ASSERT_TRUE(seen);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].body(), "for the manager");
  EXPECT_GT(live[0].seq(), all.back().seq());
}

}  // namespace
}  // namespace agentd::testing

namespace agentd::testing {
namespace {

// agentctl doctor: agentd asks each provider a role uses for its models, and says what to
// do about each failure; exit 1 while a goal could not run, 0 once it could.
TEST_F(AgentctlTest, DoctorNamesEachBrokenProviderAndModelAndWhatToDo) {
  FakeLlm fake(dir_, "models: [m-present, \"llama3:latest\"]\nrules:\n  - reply: {text: hi}\n");
  ASSERT_FALSE(fake.url().empty()) << fake.log();
  const std::string config = dir_.Join("agentd.yaml");
  const std::string fake_providers =
      absl::StrCat("providers:\n  fake: {kind: openai, base_url: \"", fake.url(), "/v1\"}\n",
                   "  tags: {kind: ollama, base_url: \"", fake.url(), "\"}\n");
  const std::string good_models =
      "models:\n  big: {provider: fake, model: m-present}\n  small: {provider: tags, model: "
      "llama3}\n";
  const std::string good = fake_providers + good_models + "agents: []\n";
  WriteFile(
      config,
      absl::StrCat(fake_providers,
                   "  gone: {kind: openai, base_url: \"http://127.0.0.1:1/v1\"}\n"
                   "  keyed: {kind: openai, base_url: \"",
                   fake.url(), "/v1\", api_key_env: AGENTD_TEST_NO_SUCH_KEY}\n", good_models,
                   "  missing: {provider: fake, model: m-absent}\n"
                   "  far: {provider: gone, model: x}\n"
                   "  locked: {provider: keyed, model: m-present}\n"
                   "roles:\n  r1: {model: missing}\n  r2: {model: far}\n  r3: {model: locked}\n"
                   "agents: []\n"));
  ASSERT_TRUE(daemon_.Start({"--config", config})) << daemon_.log();

  RunResult bad = Ctl({"doctor"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_THAT(bad.out, HasSubstr("ok    provider fake"));
  EXPECT_THAT(bad.out, HasSubstr("ok    model small"));  // llama3 is llama3:latest
  EXPECT_THAT(bad.out, ::testing::ContainsRegex("FAIL +provider gone +not reachable"));
  EXPECT_THAT(bad.out,
              ::testing::ContainsRegex("FAIL +provider keyed +AGENTD_TEST_NO_SUCH_KEY is not set"));
  EXPECT_THAT(bad.out, ::testing::ContainsRegex(
                           "FAIL +model missing +\"m-absent\" is not served by provider fake"));
  EXPECT_THAT(bad.out, HasSubstr("-> set models.missing.model"));
  EXPECT_THAT(bad.out, HasSubstr("a goal cannot run"));
  EXPECT_THAT(bad.out, HasSubstr("listener socket"));
  EXPECT_THAT(bad.out, HasSubstr("sandbox"));
  RunResult json = Ctl({"doctor", "-o", "json"});
  EXPECT_EQ(json.exit_code, 1);
  nlohmann::json j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << json.out;
  EXPECT_FALSE(j.value("goalCanRun", true));

  // Fixed, reloaded: a goal can run.
  WriteFile(config, good);
  ASSERT_EQ(Ctl({"config", "reload"}).exit_code, 0);
  RunResult fixed = Ctl({"doctor"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  EXPECT_THAT(fixed.out, HasSubstr("a goal can run"));
  EXPECT_THAT(fixed.out, Not(HasSubstr("FAIL")));
}

TEST_F(AgentctlTest, DoctorWithoutADaemonSaysHowToStartOne) {
  RunResult r = RunCommand({AgentctlBinary(), "--socket", dir_.Join("none.sock"), "doctor"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("start it"));
}

// config view: every layer merged, each value beside where it came from, from the daemon
// (its flags included) or for a file.
TEST_F(AgentctlTest, ConfigViewNamesWhereEachValueCameFrom) {
  const std::string config = dir_.Join("agentd.yaml");
  WriteFile(config, "agents: []\nroles:\n  coder: {max_instances: 5}\n");
  ASSERT_EQ(mkdir((config + ".d").c_str(), 0700), 0);
  WriteFile(config + ".d/50-more.yaml", "roles:\n  tester: {max_instances: 4}\n");
  ASSERT_TRUE(daemon_.Start({"--config", config})) << daemon_.log();
  RunResult view = Ctl({"config", "view"});
  ASSERT_EQ(view.exit_code, 0) << view.err;
  EXPECT_THAT(view.out, HasSubstr("max_instances: 5  # " + config + ":3:26"));
  EXPECT_THAT(view.out, HasSubstr("max_instances: 4  # " + config + ".d/50-more.yaml:2:27"));
  EXPECT_THAT(view.out, ::testing::ContainsRegex("socket: .*  # --socket"));
  EXPECT_THAT(view.out, ::testing::ContainsRegex("restart_sec: 1s  # <embedded default>:[0-9]+:"));
  EXPECT_THAT(view.out, HasSubstr("# layers, each over the one before: <embedded default>, " +
                                  config + ", " + config + ".d/50-more.yaml"));
  // The same for a file, with no daemon; the output is itself a valid configuration.
  RunResult local = RunCommand({AgentctlBinary(), "config", "view", config, "--no-origins"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.out, Not(HasSubstr("#")));
  WriteFile(dir_.Join("view.yaml"), local.out);
  RunResult valid = RunCommand({AgentctlBinary(), "config", "validate", dir_.Join("view.yaml")});
  EXPECT_EQ(valid.exit_code, 0) << valid.err << local.out;
  // A drop-in's mistake is named with its place; validate reads the drop-ins too.
  WriteFile(config + ".d/60-bad.yaml", "roles:\n  tester: {max_instanses: 4}\n");
  RunResult bad = RunCommand({AgentctlBinary(), "config", "validate", config});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(
      bad.err,
      HasSubstr(config + ".d/60-bad.yaml:2:12: unknown key \"roles.tester.max_instanses\""));
}

}  // namespace
}  // namespace agentd::testing
