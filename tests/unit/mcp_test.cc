// MCP without a server: the config that names servers and grants their tools, and the
// parsers of what a server sends (messages, tool lists, call results), fed hostile input.
#include <map>
#include <string>
#include <vector>

#include "agents/mcp/client.h"
#include "agents/mcp/connection.h"
#include "agents/tools/tool.h"
#include "common/config.h"
#include "common/text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace agentd {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

EnvLookup NoEnv() {
  return [](absl::string_view) -> std::optional<std::string> { return std::nullopt; };
}

constexpr char kBase[] =
    "providers: {p: {kind: openai}}\n"
    "models: {m: {provider: p, model: x}}\n";

TEST(McpConfigTest, ServersAreReadAndRolesGrantTheirTools) {
  absl::StatusOr<Config> c = LoadConfigText(
      absl::StrCat(
          kBase,
          "mcp_servers:\n"
          "  files:\n"
          "    command: node\n"
          "    args: [server.js, --root, .]\n"
          "    env: {GITHUB_TOKEN: MY_GITHUB_TOKEN}\n"
          "    read_only_paths: [/opt/mcp]\n"
          "    timeout: 90s\n"
          "  remote: {url: \"https://mcp.example/mcp\", headers: {Authorization: MCP_AUTH},\n"
          "           network: true}\n"
          "roles:\n"
          "  r: {model: m, tools: [fs.read, \"mcp:files\", \"mcp:remote/search.docs\"]}\n"),
      "test.yaml", NoEnv());
  ASSERT_TRUE(c.ok()) << c.status();
  const McpServerConfig& files = c->mcp_servers.at("files");
  EXPECT_EQ(files.command, "node");
  EXPECT_EQ(files.args, (std::vector<std::string>{"server.js", "--root", "."}));
  EXPECT_EQ(files.env.at("GITHUB_TOKEN"), "MY_GITHUB_TOKEN");
  EXPECT_EQ(files.read_only_paths, std::vector<std::string>{"/opt/mcp"});
  EXPECT_EQ(files.timeout, absl::Seconds(90));
  EXPECT_FALSE(files.network);
  const McpServerConfig& remote = c->mcp_servers.at("remote");
  EXPECT_EQ(remote.url, "https://mcp.example/mcp");
  EXPECT_EQ(remote.headers.at("Authorization"), "MCP_AUTH");
  EXPECT_TRUE(remote.network);
}

TEST(McpConfigTest, MistakesAreReportedWhereTheyAreWritten) {
  absl::StatusOr<Config> c = LoadConfigText(
      absl::StrCat(kBase,
                   "mcp_servers:\n"
                   "  ok: {command: x}\n"
                   "  badurl: {url: \"ftp://h/mcp\"}\n"
                   "  secret: {command: x, env: {TOKEN: \"ghp_literal-secret\"}}\n"
                   "  hdr: {url: \"http://h/mcp\", headers: {Mcp-Session-Id: X}}\n"
                   "  rel: {command: x, read_only_paths: [relative/dir], timeout: 0s}\n"
                   "roles:\n"
                   "  r: {model: m, tools: [\"mcp:ok\", \"mcp:\", \"mcp:ok/bad tool\"]}\n"),
      "test.yaml", NoEnv());
  ASSERT_FALSE(c.ok());
  std::string e(c.status().message());
  EXPECT_THAT(e, HasSubstr("test.yaml:5:17: mcp_servers.badurl.url: \"ftp://h/mcp\" is not an"));
  EXPECT_THAT(e,
              HasSubstr("test.yaml:6:37: mcp_servers.secret.env.TOKEN: \"ghp_literal-secret\" is "
                        "not an environment variable name"));
  EXPECT_THAT(e, HasSubstr("\"Mcp-Session-Id\" is not an HTTP header name agentd lets config set"));
  EXPECT_THAT(e, HasSubstr("read_only_paths[0]: \"relative/dir\" is not an absolute path"));
  EXPECT_THAT(e, HasSubstr("mcp_servers.rel.timeout: must be positive"));
  EXPECT_THAT(e, HasSubstr("test.yaml:10:35: roles.r.tools[1]: \"mcp:\": expected mcp:<server>"));
  EXPECT_THAT(e, HasSubstr("roles.r.tools[2]: \"mcp:ok/bad tool\": a tool name is"));
}

// What needs the whole configuration: a server is one kind or the other, and a grant
// names a server that exists — placed where it was set.
TEST(McpConfigTest, ServersAndGrantsAreCheckedAgainstEachOther) {
  absl::StatusOr<Config> c =
      LoadConfigText(absl::StrCat(kBase,
                                  "mcp_servers:\n"
                                  "  both: {command: x, url: \"http://h/mcp\"}\n"
                                  "  neither: {args: [a]}\n"
                                  "  mixed: {url: \"http://h/mcp\", env: {A: B}}\n"
                                  "roles:\n"
                                  "  r: {model: m, tools: [\"mcp:both\", \"mcp:nowhere/x\"]}\n"),
                     "test.yaml", NoEnv());
  ASSERT_FALSE(c.ok());
  std::string e(c.status().message());
  EXPECT_THAT(e, HasSubstr("test.yaml:4:3: mcp_servers.both: set either \"command\" (a server over "
                           "stdio) or \"url\" (Streamable HTTP), not both"));
  EXPECT_THAT(e, HasSubstr("mcp_servers.neither: set either \"command\""));
  EXPECT_THAT(e, HasSubstr("not neither"));
  EXPECT_THAT(e, HasSubstr("mcp_servers.mixed: \"args\", \"env\" and \"read_only_paths\" are for"));
  EXPECT_THAT(e, HasSubstr("test.yaml:8:37: roles.r.tools[1]: no MCP server named \"nowhere\" "
                           "(define it under mcp_servers)"));
}

TEST(McpConfigTest, GrantsAreParsed) {
  EXPECT_FALSE(ParseMcpGrant("fs.read").has_value());
  auto all = ParseMcpGrant("mcp:github");
  ASSERT_TRUE(all.has_value() && all->ok());
  EXPECT_EQ((*all)->server, "github");
  EXPECT_EQ((*all)->tool, "");
  auto one = ParseMcpGrant("mcp:github/create_issue");
  ASSERT_TRUE(one.has_value() && one->ok());
  EXPECT_EQ((*one)->tool, "create_issue");
  for (const char* bad : {"mcp:", "mcp:/x", "mcp:a/", "mcp:a/b/c", "mcp:a b"}) {
    auto g = ParseMcpGrant(bad);
    ASSERT_TRUE(g.has_value()) << bad;
    EXPECT_FALSE(g->ok()) << bad;
  }
}

TEST(McpMessageTest, MessagesAreClassifiedAndAnythingElseIsInvalid) {
  using mcp::internal::Classify;
  using Kind = mcp::internal::Incoming::Kind;
  auto ok = Classify(json::parse(R"({"jsonrpc":"2.0","id":7,"result":{"x":1}})"));
  EXPECT_EQ(ok.kind, Kind::kResponse);
  EXPECT_EQ(ok.id, 7);
  EXPECT_TRUE(ok.error.ok());
  EXPECT_EQ(ok.result["x"], 1);
  auto err = Classify(json::parse(
      R"({"jsonrpc":"2.0","id":8,"error":{"code":-32601,"message":"Method not found"}})"));
  EXPECT_EQ(err.kind, Kind::kResponse);
  EXPECT_FALSE(err.error.ok());
  EXPECT_EQ(mcp::RpcErrorCode(err.error), -32601);
  EXPECT_THAT(std::string(err.error.message()), HasSubstr("Method not found"));
  EXPECT_EQ(mcp::RpcErrorCode(absl::UnavailableError("x")), std::nullopt);
  auto note =
      Classify(json::parse(R"({"jsonrpc":"2.0","method":"notifications/tools/list_changed"})"));
  EXPECT_EQ(note.kind, Kind::kNotification);
  EXPECT_TRUE(note.params.is_object());
  auto req = Classify(json::parse(R"({"jsonrpc":"2.0","id":"s-1","method":"ping"})"));
  EXPECT_EQ(req.kind, Kind::kRequest);
  EXPECT_EQ(req.id_json, "s-1");
  for (const char* bad :
       {R"([1,2])", R"("text")", R"({"id":1,"result":{}})",
        R"({"jsonrpc":"2.0","id":1.5,"result":{}})", R"({"jsonrpc":"2.0","id":"x","result":{}})",
        R"({"jsonrpc":"2.0","method":7})", R"({"jsonrpc":"2.0","id":[1],"method":"m"})"}) {
    EXPECT_EQ(Classify(json::parse(bad)).kind, Kind::kInvalid) << bad;
  }
  auto neither = Classify(json::parse(R"({"jsonrpc":"2.0","id":3})"));
  EXPECT_EQ(neither.error.code(), absl::StatusCode::kDataLoss);
}

TEST(McpMessageTest, AToolListKeepsWhatCanBeUsedAndSaysWhatWasLeftOut) {
  std::vector<mcp::ToolInfo> tools;
  std::vector<std::string> skipped;
  std::string cursor;
  json page = json::parse(R"({"tools":[
      {"name":"ok","title":"OK","description":"does it","inputSchema":{"type":"object",
       "$schema":"http://json-schema.org/draft-07/schema#"},
       "annotations":{"readOnlyHint":true,"idempotentHint":true}},
      {"name":"plain","inputSchema":{"type":"object"}},
      {"name":"bad name","inputSchema":{"type":"object"}},
      {"name":"noschema"},
      {"name":"str","inputSchema":{"type":"string"}},
      42,
      {"name":"hints","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":"yes",
       "destructiveHint":false}}
    ],"nextCursor":"c2"})");
  ASSERT_TRUE(mcp::internal::ParseToolsPage(page, &tools, &skipped, &cursor).ok());
  EXPECT_EQ(cursor, "c2");
  ASSERT_EQ(tools.size(), 3u);
  EXPECT_EQ(tools[0].name, "ok");
  EXPECT_EQ(tools[0].description, "OK: does it");
  EXPECT_TRUE(tools[0].read_only);
  EXPECT_TRUE(tools[0].idempotent);
  EXPECT_FALSE(tools[0].input_schema.contains("$schema"));
  // The protocol's defaults: not read-only, destructive.
  EXPECT_FALSE(tools[1].read_only);
  EXPECT_TRUE(tools[1].destructive);
  // A hint of the wrong type counts as absent.
  EXPECT_FALSE(tools[2].read_only);
  EXPECT_FALSE(tools[2].destructive);
  EXPECT_EQ(skipped.size(), 4u);
  EXPECT_FALSE(mcp::internal::ParseToolsPage(json::array(), &tools, &skipped, &cursor).ok());
  EXPECT_FALSE(
      mcp::internal::ParseToolsPage(json::parse(R"({"tools":{}})"), &tools, &skipped, &cursor)
          .ok());
}

TEST(McpMessageTest, ACallResultBecomesTextForTheModel) {
  using mcp::internal::ParseCallResult;
  auto r = ParseCallResult(json::parse(R"({"content":[
      {"type":"text","text":"first"},
      {"type":"image","data":"AAAA","mimeType":"image/png"},
      {"type":"resource_link","uri":"file:///x","name":"x"},
      {"type":"resource","resource":{"uri":"mem://a","text":"inline"}},
      {"type":"hologram"}],"isError":true})"),
                           1 << 20);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->is_error);
  EXPECT_THAT(r->text, HasSubstr("first"));
  EXPECT_THAT(r->text, HasSubstr("[image image/png, 3 bytes, not shown]"));
  EXPECT_THAT(r->text, HasSubstr("[resource link: file:///x (x)]"));
  EXPECT_THAT(r->text, HasSubstr("inline"));
  EXPECT_THAT(r->text, HasSubstr("hologram"));
  // Structured content alone is shown as JSON.
  r = ParseCallResult(json::parse(R"({"content":[],"structuredContent":{"t":21}})"), 1 << 20);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->text, R"({"t":21})");
  // Bytes that are not UTF-8 are made valid; a long answer is cut on a character boundary.
  json bad = {
      {"content", json::array({{{"type", "text"}, {"text", std::string(100, 'x') + "é"}}})}};
  r = ParseCallResult(bad, 101);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(IsValidUtf8(r->text));
  EXPECT_THAT(r->text, HasSubstr("[output cut: 102 bytes in all"));
  // The new revision's request for input agentd cannot give.
  EXPECT_EQ(ParseCallResult(json::parse(R"({"resultType":"input_required"})"), 100).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ParseCallResult(json::parse("[]"), 100).status().code(), absl::StatusCode::kDataLoss);
}

TEST(McpMessageTest, ArgumentsAreCheckedAgainstAServersSchemaWithoutThrowing) {
  json schema = json::parse(R"({"type":"object","properties":{
      "n":{"type":["integer","null"]},"tags":{"type":"array","items":{"type":"number"}},
      "odd":{"type":{"weird":1}},"s":"not an object"},
      "required":["n", 5, {"x":1}],"additionalProperties":true})");
  EXPECT_TRUE(tools::CheckArguments(schema, json::parse(R"({"n":null,"extra":1})")).ok());
  EXPECT_TRUE(tools::CheckArguments(schema, json::parse(R"({"n":3,"tags":[1,2.5]})")).ok());
  EXPECT_THAT(std::string(tools::CheckArguments(schema, json::parse(R"({"n":"x"})")).message()),
              HasSubstr("must be integer or null"));
  EXPECT_THAT(
      std::string(tools::CheckArguments(schema, json::parse(R"({"n":1,"tags":["a"]})")).message()),
      HasSubstr("must be an array of numbers"));
  EXPECT_THAT(std::string(tools::CheckArguments(schema, json::object()).message()),
              HasSubstr("\"n\" is required"));
  // Shapes nobody expects are skipped, not thrown on.
  EXPECT_THAT(std::string(tools::CheckArguments(json::parse(R"({"properties":[],"required":"n"})"),
                                                json::parse(R"({"a":1})"))
                              .message()),
              HasSubstr("unknown argument \"a\""));
  EXPECT_TRUE(tools::CheckArguments(json::array(), json::object()).ok());
  // agentd's own tools leave additionalProperties out and mean no.
  EXPECT_FALSE(tools::CheckArguments(json::parse(R"({"type":"object","properties":{}})"),
                                     json::parse(R"({"a":1})"))
                   .ok());
}

}  // namespace
}  // namespace agentd
