// The agent's MCP client against real servers: the reference server-everything from npm
// (over stdio inside the tool sandbox, and over Streamable HTTP), and a server that
// misbehaves on request (tests/helpers/mcp_misbehaving_server.mjs) — crashing mid-call,
// hanging, sending malformed JSON — which must each end as a clear tool error, with the
// agent's client going on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "agents/mcp/client.h"
#include "agents/mcp/mcp_tools.h"
#include "agents/tools/shell.h"
#include "agents/tools/workspace.h"
#include "common/json_dump.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const std::string kInterop = AGENTD_SOURCE_ROOT "/tests/interop/node_modules";
const std::string kEverything = kInterop + "/@modelcontextprotocol/server-everything/dist/index.js";
const std::string kMisbehaving = AGENTD_SOURCE_ROOT "/tests/helpers/mcp_misbehaving_server.mjs";

// Answers every consent request with `answer`, and remembers what was asked.
class FakeConsent final : public tools::ConsentAsker {
 public:
  explicit FakeConsent(bool answer) : answer_(answer) {}
  absl::StatusOr<bool> Ask(const tools::ConsentAsk& ask, const llm::CancelToken*) const override {
    asked.push_back(ask);
    return answer_;
  }
  mutable std::vector<tools::ConsentAsk> asked;

 private:
  bool answer_;
};

class McpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kEverything.c_str(), R_OK), 0)
        << kEverything << " is missing: dev/setup installs tests/interop's npm packages";
    absl::StatusOr<std::unique_ptr<tools::Workspace>> ws = tools::Workspace::Open(dir_.path());
    ASSERT_TRUE(ws.ok()) << ws.status();
    workspace_ = *std::move(ws);
    shell_.sandbox = "auto";
    tools::SandboxProbe probe = tools::ProbeSandbox();
    sandboxed_ = probe.works;
    shell_.sandbox_broken = probe.works ? "" : probe.why;
  }

  mcp::ServerSpec Everything() {
    mcp::ServerSpec s;
    s.name = "everything";
    s.command = "node";
    s.args = {kEverything, "stdio"};
    s.read_only_paths = {kInterop};
    return s;
  }

  mcp::ServerSpec Misbehaving(std::vector<std::string> extra_args = {}) {
    mcp::ServerSpec s;
    s.name = "mis";
    s.command = "node";
    s.args = {kMisbehaving};
    s.args.insert(s.args.end(), extra_args.begin(), extra_args.end());
    s.read_only_paths = {AGENTD_SOURCE_ROOT "/tests/helpers"};
    s.env = {{"MCP_TEST_STARTS", "STARTS_FILE"}, {"MCP_TEST_SECRET", "SECRET_VAR"}};
    s.call_timeout = Scaled(absl::Seconds(2));
    return s;
  }

  // The tools `grants` give, by name; problems in `problems_`.
  std::map<std::string, std::unique_ptr<tools::Tool>> Tools(
      mcp::McpHub& hub, const std::vector<mcp::ServerSpec>& specs,
      const std::vector<std::string>& grants) {
    problems_.clear();
    std::map<std::string, std::unique_ptr<tools::Tool>> out;
    for (std::unique_ptr<tools::Tool>& t :
         hub.ToolsFor(specs, grants, dir_.path(), shell_, {"complete_task"}, &consent_, &cancel_,
                      &problems_)) {
      std::string name = t->name();
      out[name] = std::move(t);
    }
    return out;
  }

  tools::ToolResult Call(const std::map<std::string, std::unique_ptr<tools::Tool>>& tools,
                         const std::string& name, const nlohmann::json& args,
                         const llm::CancelToken* cancel = nullptr) {
    auto it = tools.find(name);
    if (it == tools.end()) return {absl::StrCat("(test) no tool ", name), true};
    tools::ToolContext ctx{workspace_.get(),
                           &shell_,
                           cancel != nullptr ? cancel : &cancel_,
                           "t-1",
                           absl::StrCat("call-", ++calls_),
                           &consent_,
                           ""};
    return it->second->Run(args, ctx);
  }

  // The keys the hub is given: the starts file (the misbehaving server counts its starts
  // there) and a secret.
  std::map<std::string, std::string> Keys() {
    return {{"STARTS_FILE", dir_.Join("starts")}, {"SECRET_VAR", "s3cret-value"}};
  }
  int Starts() {
    std::string s = ReadFileOrEmpty(dir_.Join("starts"));
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }

  TempDir dir_;
  std::unique_ptr<tools::Workspace> workspace_;
  tools::ShellOptions shell_;
  bool sandboxed_ = false;
  FakeConsent consent_{false};
  llm::CancelToken cancel_;
  std::vector<std::string> problems_;
  int calls_ = 0;
};

std::vector<std::string> Names(const std::map<std::string, std::unique_ptr<tools::Tool>>& tools) {
  std::vector<std::string> out;
  for (const auto& [name, t] : tools) out.push_back(name);
  return out;
}

TEST_F(McpTest, ServerEverythingOverStdioOffersItsToolsAndAnswersCalls) {
  mcp::McpHub hub({});
  auto tools = Tools(hub, {Everything()}, {"mcp:everything"});
  EXPECT_THAT(problems_, IsEmpty());
  EXPECT_THAT(Names(tools), Contains("mcp:everything/get-sum"));
  EXPECT_THAT(Names(tools), Contains("mcp:everything/echo"));
  ASSERT_EQ(tools.count("mcp:everything/get-sum"), 1u);
  const tools::Tool& sum = *tools["mcp:everything/get-sum"];
  // Its schema and hints, as the server gives them.
  EXPECT_EQ(sum.schema()["type"], "object");
  EXPECT_TRUE(sum.schema()["properties"].contains("a")) << DumpJson(sum.schema());
  EXPECT_FALSE(sum.schema().contains("$schema"));
  EXPECT_FALSE(sum.side_effect());  // readOnlyHint
  tools::ToolResult r = Call(tools, "mcp:everything/get-sum", {{"a", 2}, {"b", 3}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("The sum of 2 and 3 is 5"));
  r = Call(tools, "mcp:everything/echo", {{"message", "héllo"}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("Echo: héllo"));
  // A tool that is not read-only is a side effect (journaled by the agent loop).
  ASSERT_EQ(tools.count("mcp:everything/toggle-simulated-logging"), 1u)
      << ::testing::PrintToString(Names(tools));
  EXPECT_TRUE(tools["mcp:everything/toggle-simulated-logging"]->side_effect());
}

TEST_F(McpTest, AGrantNamingOneToolOffersThatToolAloneAndSaysWhatIsMissing) {
  mcp::McpHub hub({});
  auto tools = Tools(hub, {Everything()}, {"mcp:everything/echo", "mcp:everything/no-such-tool"});
  EXPECT_THAT(Names(tools), ::testing::ElementsAre("mcp:everything/echo"));
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_THAT(problems_[0], HasSubstr("lists no tool \"no-such-tool\""));
}

TEST_F(McpTest, ToolsAreListedOverEveryPageAndUnusableOnesAreLeftOut) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  EXPECT_THAT(problems_, IsEmpty());
  // echo is on the first page, pwd on the second.
  EXPECT_THAT(Names(tools), Contains("mcp:mis/echo"));
  EXPECT_THAT(Names(tools), Contains("mcp:mis/pwd"));
  EXPECT_THAT(Names(tools), Not(Contains("mcp:mis/bad name!")));
  EXPECT_THAT(Names(tools), Not(Contains("mcp:mis/not-an-object")));
}

TEST_F(McpTest, AServerThatCrashesMidCallGivesAnErrorAndIsStartedAgainForTheNextCall) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  ASSERT_EQ(Starts(), 1);
  tools::ToolResult r = Call(tools, "mcp:mis/crash", nlohmann::json::object());
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("the server failed during the call"));
  EXPECT_THAT(r.content, HasSubstr("exit status 3"));
  r = Call(tools, "mcp:mis/echo", {{"text", "again"}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_EQ(r.content, "echo: again");
  EXPECT_EQ(Starts(), 2);
}

TEST_F(McpTest, AServerThatHangsIsCutOffAtTheCallTimeoutAndStaysUsable) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  absl::Time start = absl::Now();
  tools::ToolResult r = Call(tools, "mcp:mis/hang", nlohmann::json::object());
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("gave no answer within"));
  EXPECT_LT(absl::Now() - start, Scaled(absl::Seconds(30)));
  r = Call(tools, "mcp:mis/echo", {{"text", "still here"}});
  EXPECT_EQ(r.content, "echo: still here");
  EXPECT_EQ(Starts(), 1);  // not restarted: it only ignored one call
}

TEST_F(McpTest, ACanceledTaskCutsAHangingCallShort) {
  mcp::McpHub hub(Keys());
  mcp::ServerSpec spec = Misbehaving();
  spec.call_timeout = absl::Minutes(10);
  auto tools = Tools(hub, {spec}, {"mcp:mis"});
  llm::CancelToken cancel;
  std::thread canceler([&] {
    // Cancels once the call is underway (the call itself is what the test waits on).
    absl::SleepFor(absl::Milliseconds(300));
    cancel.Cancel();
  });
  tools::ToolResult r = Call(tools, "mcp:mis/hang", nlohmann::json::object(), &cancel);
  canceler.join();
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("cancelled"));
}

TEST_F(McpTest, MalformedJsonFromTheServerIsAnErrorAndTheServerIsStartedAgain) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  tools::ToolResult r = Call(tools, "mcp:mis/garbage", nlohmann::json::object());
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("malformed message"));
  r = Call(tools, "mcp:mis/echo", {{"text", "x"}});
  EXPECT_EQ(r.content, "echo: x");
  EXPECT_EQ(Starts(), 2);
  // A stray plain line on stdout is skipped, not taken for a broken stream.
  r = Call(tools, "mcp:mis/stray", nlohmann::json::object());
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_EQ(r.content, "after stray");
}

TEST_F(McpTest, AServerThatEndsOnTheDiscoverProbeIsStartedAgainWithInitialize) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving({"--die-on-discover"})}, {"mcp:mis"});
  EXPECT_THAT(problems_, IsEmpty());
  EXPECT_EQ(Call(tools, "mcp:mis/echo", {{"text", "old"}}).content, "echo: old");
  EXPECT_EQ(Starts(), 2);
}

TEST_F(McpTest, ListChangedNotificationsBringNewToolsToTheNextTask) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  EXPECT_THAT(Names(tools), Not(Contains("mcp:mis/extra")));
  EXPECT_EQ(Call(tools, "mcp:mis/grow", nlohmann::json::object()).content, "grown");
  // The notification comes before the answer on the same stream.
  tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  EXPECT_THAT(Names(tools), Contains("mcp:mis/extra"));
  EXPECT_EQ(Call(tools, "mcp:mis/extra", nlohmann::json::object()).content, "extra ran");
  EXPECT_EQ(Starts(), 1);
}

TEST_F(McpTest, ADestructiveToolAsksAPersonUnlessTheGrantNamesIt) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  ASSERT_EQ(tools.count("mcp:mis/destroy"), 1u);
  EXPECT_TRUE(tools["mcp:mis/destroy"]->side_effect());
  EXPECT_THAT(tools["mcp:mis/destroy"]->description(), HasSubstr("Destroys a target"));
  tools::ToolResult r = Call(tools, "mcp:mis/destroy", {{"target", "db"}});
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("a person declined"));
  ASSERT_EQ(consent_.asked.size(), 1u);
  EXPECT_EQ(consent_.asked[0].kind, tools::ConsentKind::kDestructiveTool);
  EXPECT_EQ(consent_.asked[0].details["tool"], "destroy");
  EXPECT_EQ(consent_.asked[0].details["arguments"], R"({"target":"db"})");
  // Tools that are not destructive run without asking.
  EXPECT_EQ(Call(tools, "mcp:mis/grow", nlohmann::json::object()).content, "grown");
  EXPECT_EQ(consent_.asked.size(), 1u);
  // Named in the grant: the role's config has decided.
  tools = Tools(hub, {Misbehaving()}, {"mcp:mis", "mcp:mis/destroy"});
  r = Call(tools, "mcp:mis/destroy", {{"target", "db"}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_EQ(r.content, "destroyed db");
  EXPECT_EQ(consent_.asked.size(), 1u);
}

TEST_F(McpTest, AStdioServerRunsInTheWorkspaceInsideTheSandboxWithItsSecrets) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  EXPECT_EQ(Call(tools, "mcp:mis/env", nlohmann::json::object()).content, "secret=s3cret-value");
  tools::ToolResult r = Call(tools, "mcp:mis/pwd", nlohmann::json::object());
  EXPECT_THAT(r.content, HasSubstr(absl::StrCat("cwd=", dir_.path())));
  if (!sandboxed_) GTEST_SKIP() << "bubblewrap does not work here: " << shell_.sandbox_broken;
  EXPECT_THAT(r.content, HasSubstr("etc-writable=no"));
}

TEST_F(McpTest, ArgumentsThatDoNotFitTheSchemaNeverReachTheServer) {
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {Misbehaving()}, {"mcp:mis"});
  tools::ToolBox box;
  box.Add(std::move(tools["mcp:mis/echo"]));
  tools::ToolContext ctx{workspace_.get(), &shell_, &cancel_, "t-1", "c-1", &consent_, ""};
  tools::ToolResult r = box.Call("mcp:mis/echo", R"({"text": 7})", ctx);
  EXPECT_TRUE(r.error);
  EXPECT_THAT(r.content, HasSubstr("argument \"text\" must be string"));
  r = box.Call("mcp:mis/echo", R"({})", ctx);
  EXPECT_THAT(r.content, HasSubstr("argument \"text\" is required"));
}

// The revision is negotiated: a server on the 2.x SDK that speaks 2026-07-28 answers the
// server/discover probe and is spoken to statelessly; server-everything (SDK 1.x) does not,
// and gets initialize with 2025-11-25.
TEST_F(McpTest, TheNewestRevisionBothSidesSpeakIsChosen) {
  struct Case {
    std::vector<std::string> argv;
    mcp::McpClient::Era era;
    std::string revision, tool;
    nlohmann::json args;
    std::string answer;
  };
  for (const Case& c :
       std::vector<Case>{{{"node", AGENTD_SOURCE_ROOT "/tests/interop/mcp_modern_server.mjs"},
                          mcp::McpClient::Era::kModern,
                          "2026-07-28",
                          "add",
                          {{"a", 2}, {"b", 5}},
                          "sum=7"},
                         {{"node", kEverything, "stdio"},
                          mcp::McpClient::Era::kLegacy,
                          "2025-11-25",
                          "echo",
                          {{"message", "m"}},
                          "Echo: m"}}) {
    SCOPED_TRACE(c.argv[1]);
    mcp::StdioOptions o;
    o.name = "s";
    o.argv = c.argv;
    o.env = {"PATH=/usr/bin:/bin"};
    o.cwd = dir_.path();
    absl::StatusOr<std::unique_ptr<mcp::Connection>> conn = mcp::StartStdio(o);
    ASSERT_TRUE(conn.ok()) << conn.status();
    mcp::McpClient client("s", *std::move(conn));
    ASSERT_TRUE(client.Open({}).ok());
    EXPECT_EQ(client.era(), c.era);
    EXPECT_EQ(client.revision(), c.revision);
    absl::StatusOr<std::vector<mcp::ToolInfo>> tools = client.ListTools(absl::Seconds(30), nullptr);
    ASSERT_TRUE(tools.ok()) << tools.status();
    bool listed = false;
    for (const mcp::ToolInfo& t : *tools) listed = listed || t.name == c.tool;
    EXPECT_TRUE(listed);
    absl::StatusOr<mcp::CallResult> r =
        client.CallTool(c.tool, c.args, absl::Seconds(30), nullptr, 4096);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->is_error);
    EXPECT_EQ(r->text, c.answer);
  }
}

// A free TCP port on 127.0.0.1 (bound, read and released).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

bool Listening(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

TEST_F(McpTest, ServerEverythingOverStreamableHttpAnswersCallsInItsSession) {
  int port = FreePort();
  ASSERT_GT(port, 0);
  Subprocess server({"node", kEverything, "streamableHttp"}, dir_.Join("http.out"),
                    dir_.Join("http.err"), {absl::StrCat("PORT=", port)});
  ASSERT_TRUE(WaitFor([&] { return Listening(port); }, absl::Seconds(30)))
      << ReadFileOrEmpty(dir_.Join("http.err"));
  mcp::ServerSpec spec;
  spec.name = "remote";
  spec.url = absl::StrCat("http://127.0.0.1:", port, "/mcp");
  spec.headers = {{"X-Test-Token", "SECRET_VAR"}};
  // Without a grant of the network, a person is asked first; denied, nothing is offered.
  {
    mcp::McpHub hub(Keys());
    auto none = Tools(hub, {spec}, {"mcp:remote"});
    EXPECT_THAT(none, IsEmpty());
    ASSERT_EQ(consent_.asked.size(), 1u);
    EXPECT_EQ(consent_.asked[0].kind, tools::ConsentKind::kNetwork);
    EXPECT_EQ(consent_.asked[0].details["url"], spec.url);
    ASSERT_EQ(problems_.size(), 1u);
    EXPECT_THAT(problems_[0], HasSubstr("declined network access"));
  }
  spec.network = true;
  mcp::McpHub hub(Keys());
  auto tools = Tools(hub, {spec}, {"mcp:remote"});
  EXPECT_THAT(problems_, IsEmpty());
  EXPECT_EQ(consent_.asked.size(), 1u);  // granted by config: not asked
  tools::ToolResult r = Call(tools, "mcp:remote/get-sum", {{"a", 40}, {"b", 2}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("The sum of 40 and 2 is 42"));
  // Structured content with no text would be shown as JSON; this one has text.
  r = Call(tools, "mcp:remote/get-structured-content", {{"location", "Chicago"}});
  EXPECT_FALSE(r.error) << r.content;
  EXPECT_THAT(r.content, HasSubstr("temperature"));
}

}  // namespace
}  // namespace agentd::testing
