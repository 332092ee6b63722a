#include "common/config.h"

#include <sys/stat.h>

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"

namespace agentd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](absl::string_view n) -> std::optional<std::string> {
    auto it = vars.find(std::string(n));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string Error(absl::string_view yaml) {
  absl::StatusOr<Config> c = LoadConfigText(yaml, "test.yaml", FakeEnv({}));
  EXPECT_FALSE(c.ok()) << "expected an error for:\n" << yaml;
  return c.ok() ? "" : std::string(c.status().message());
}

TEST(ConfigTest, EmbeddedDefaultLoadsWithTheDocumentedValues) {
  absl::StatusOr<Config> c = LoadDefaultConfig(FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.http, "127.0.0.1:7878");
  EXPECT_EQ(c->server.socket, "");
  EXPECT_EQ(c->supervision.restart, "on-failure");
  EXPECT_EQ(c->supervision.heartbeat_ttl, absl::Seconds(20));
  EXPECT_EQ(c->logs.segment_bytes, int64_t{64} << 20);
  ASSERT_EQ(c->agents.size(), 2u);
  EXPECT_EQ(c->agents[0].id, "ceo");
  for (const char* role : {"ceo", "manager", "specialist", "coder", "tester"}) {
    EXPECT_TRUE(c->roles.count(role)) << role;
  }
  EXPECT_EQ(c->roles.at("coder").max_instances, 3);
  EXPECT_EQ(c->models.at("small").temperature, 0.2);
}

TEST(ConfigTest, EmptyDocumentMeansAllDefaults) {
  absl::StatusOr<Config> c = LoadConfigText("", "empty.yaml", FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->supervision.stop_timeout, absl::Seconds(10));
  EXPECT_TRUE(c->roles.empty());
}

TEST(ConfigTest, UnknownKeyNamesFileLineColumnAndTheKnownKeys) {
  std::string e = Error("server:\n  socket: /tmp/a.sock\n  htp: 127.0.0.1:1\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:3:3: unknown key \"server.htp\""));
  EXPECT_THAT(e, HasSubstr("expected one of:"));
  EXPECT_THAT(e, HasSubstr("http"));
}

TEST(ConfigTest, UnknownTopLevelKey) {
  EXPECT_THAT(Error("servers: {}\n"), HasSubstr("test.yaml:1:1: unknown key \"servers\""));
}

TEST(ConfigTest, WrongTypeNamesWhatWasExpected) {
  EXPECT_THAT(Error("logs:\n  keep_segments: many\n"),
              HasSubstr("test.yaml:2:18: logs.keep_segments: expected an integer, got \"many\""));
  EXPECT_THAT(Error("server: [1, 2]\n"),
              HasSubstr("test.yaml:1:9: server: expected a mapping, got a list"));
  EXPECT_THAT(Error("policy:\n  shell:\n    allow: make\n"),
              HasSubstr("test.yaml:3:12: policy.shell.allow: expected a list"));
}

TEST(ConfigTest, BadDurationNamesTheValueAndTheFormat) {
  std::string e = Error("supervision:\n  restart_sec: 5x\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:2:16: supervision.restart_sec: invalid duration \"5x\""));
  EXPECT_THAT(e, HasSubstr("500ms, 10s, 5m"));
}

TEST(ConfigTest, BadSizeAndEnumValues) {
  EXPECT_THAT(Error("logs: {ring_bytes: lots}\n"), HasSubstr("logs.ring_bytes: invalid size"));
  EXPECT_THAT(Error("supervision: {restart: sometimes}\n"),
              HasSubstr("\"sometimes\" is not one of: always, on-failure, never"));
}

TEST(ConfigTest, EveryErrorIsReportedNotOnlyTheFirst) {
  std::string e =
      Error("bogus: 1\nsupervision:\n  stop_timeout: soon\nlogs:\n  keep_segments: x\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:1:1:"));
  EXPECT_THAT(e, HasSubstr("test.yaml:3:17:"));
  EXPECT_THAT(e, HasSubstr("test.yaml:5:18:"));
}

TEST(ConfigTest, ReferencesBetweenSectionsAreChecked) {
  std::string e = Error(
      "providers: {p: {kind: openai}}\n"
      "models: {m: {provider: nope, model: x}}\n"
      "roles: {r: {model: missing}}\n"
      "agents: [{id: a, role: ghost}]\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:2:24: models.m.provider: no provider named \"nope\""));
  EXPECT_THAT(e, HasSubstr("test.yaml:3:20: roles.r.model: no model named \"missing\""));
  EXPECT_THAT(e, HasSubstr("agents[0].role: no role named \"ghost\""));
}

TEST(ConfigTest, UnknownToolsDuplicateAgentsAndMissingKeys) {
  std::string e = Error(
      "providers: {p: {kind: openai}}\n"
      "models: {m: {provider: p, model: x}}\n"
      "roles: {r: {model: m, tools: [fs.read, fs.delete_everything]}}\n"
      "agents: [{id: a, role: r}, {id: a, role: r}, {role: r}]\n");
  EXPECT_THAT(e, HasSubstr("roles.r.tools[1]: unknown tool \"fs.delete_everything\""));
  EXPECT_THAT(e, HasSubstr("duplicate agent id \"a\""));
  EXPECT_THAT(e, HasSubstr("agents[2]: missing required key \"id\""));
}

// A provider's timeouts, phase by phase; each one left out keeps its default, and one that
// is not positive is an error where it is written.
TEST(ConfigTest, ProviderTimeoutsAreReadPhaseByPhase) {
  absl::StatusOr<Config> c = LoadConfigText(
      "providers:\n  slow: {kind: openai, base_url: \"http://h/v1\",\n"
      "         timeouts: {first_byte: 5m, idle: 2s}}\n",
      "test.yaml", FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  const ProviderConfig::Timeouts& t = c->providers.at("slow").timeouts;
  EXPECT_EQ(t.first_byte, absl::Minutes(5));
  EXPECT_EQ(t.idle, absl::Seconds(2));
  EXPECT_EQ(t.connect, absl::Seconds(10));
  EXPECT_EQ(t.total, absl::Minutes(10));
  EXPECT_THAT(Error("providers:\n  p: {kind: openai, timeouts: {idle: 0s}}\n"),
              HasSubstr("test.yaml:2:38: providers.p.timeouts.idle: must be positive"));
  EXPECT_THAT(Error("providers:\n  p: {kind: openai, timeouts: {read: 1s}}\n"),
              HasSubstr("providers.p.timeouts"));
}

TEST(ConfigTest, DuplicateKeysAreErrors) {
  EXPECT_THAT(Error("state_dir: /a\nstate_dir: /b\n"), HasSubstr("duplicate key \"state_dir\""));
}

TEST(ConfigTest, InvalidYamlSyntaxHasAPosition) {
  EXPECT_THAT(Error("server: {socket: \"/a\"\n"), HasSubstr("test.yaml:"));
  EXPECT_THAT(Error("a: [\n"), HasSubstr("invalid YAML"));
}

TEST(ConfigTest, EnvironmentVariablesExpandAndUnsetOnesAreErrors) {
  absl::StatusOr<Config> c =
      LoadConfigText("state_dir: ${HOME}/state\nserver: {socket: \"${RUN:-/run/x}/a.sock\"}\n",
                     "env.yaml", FakeEnv({{"HOME", "/home/u"}}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->state_dir, "/home/u/state");
  EXPECT_EQ(c->server.socket, "/run/x/a.sock");
  absl::StatusOr<Config> bad = LoadConfigText("state_dir: ${NOPE}\n", "env.yaml", FakeEnv({}));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("env.yaml:1:12: state_dir: environment variable NOPE is not set"));
}

TEST(ConfigTest, TcpWithoutTlsMustBeLoopback) {
  EXPECT_THAT(Error("server: {grpc_tcp: \"0.0.0.0:9000\"}\n"),
              HasSubstr("is not a loopback address"));
  EXPECT_TRUE(LoadConfigText("server: {grpc_tcp: \"127.0.0.1:9000\"}\n", "t", FakeEnv({})).ok());
  EXPECT_TRUE(LoadConfigText("server: {grpc_tcp: \"0.0.0.0:9000\", tls_cert_file: c, "
                             "tls_key_file: k}\n",
                             "t", FakeEnv({}))
                  .ok());
}

TEST(ConfigFileTest, UnreadableFileNamesThePathAndTheReason) {
  testing::TempDir dir;
  absl::StatusOr<Config> missing = LoadConfigFile(dir.Join("nope.yaml"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr(dir.Join("nope.yaml") + ": cannot read config file: No such file"));
}

TEST(ConfigFileTest, ErrorsNameTheFile) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.yaml"), "logging:\n  level: chatty\n");
  absl::StatusOr<Config> c = LoadConfigFile(dir.Join("a.yaml"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr(dir.Join("a.yaml") + ":2:10: logging.level: \"chatty\" is not one of"));
}

}  // namespace
}  // namespace agentd

namespace agentd {
namespace {

TEST(ConfigLimitsTest, RoleLimitsOverrideSupervisionLimitsKeyByKey) {
  absl::StatusOr<Config> c = LoadConfigText(R"(
supervision:
  limits: {nofile: 1024, memory: 2GiB, cpu: 1h}
roles:
  tool: {command: [/bin/true], limits: {nofile: 64, core: 0}}
)",
                                            "limits.yaml", FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  LimitsConfig l = c->supervision.limits.OverriddenBy(c->roles.at("tool").limits);
  EXPECT_EQ(l.nofile, 64);
  EXPECT_EQ(l.memory, int64_t{2} << 30);
  EXPECT_EQ(l.core, 0);
  EXPECT_EQ(l.cpu, absl::Hours(1));
  EXPECT_FALSE(l.nproc.has_value());
}

TEST(ConfigLimitsTest, RegistersIsABooleanThatDefaultsByKindOfAgent) {
  absl::StatusOr<Config> c = LoadConfigText(
      "roles:\n  a: {command: [x], registers: true}\n  b: {command: [x]}\n", "r.yaml", FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->roles.at("a").registers, true);
  EXPECT_FALSE(c->roles.at("b").registers.has_value());
  EXPECT_THAT(
      Error("roles:\n  a: {command: [x], registers: maybe}\n"),
      HasSubstr("test.yaml:2:32: roles.a.registers: expected true or false, got \"maybe\""));
}

TEST(ConfigLimitsTest, BadLimitsAreErrorsWithTheirPlace) {
  std::string e = Error(
      "roles:\n  r: {command: [x], limits: {nofile: 0, cpu: 10ms, memory: lots, stack: 1}}\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:2:38: roles.r.limits.nofile: must be at least 1"));
  EXPECT_THAT(e, HasSubstr("roles.r.limits.cpu: must be at least 1s"));
  EXPECT_THAT(e, HasSubstr("roles.r.limits.memory:"));
  EXPECT_THAT(e, HasSubstr("unknown key \"roles.r.limits.stack\""));
}

}  // namespace
}  // namespace agentd
