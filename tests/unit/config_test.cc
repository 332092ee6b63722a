#include "common/config.h"

#include <sys/stat.h>

#include <map>

#include "common/config_view.h"
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

TEST(ConfigTest, TelemetryTakesAnHttpEndpointAndNamesWhereOneIsWrong) {
  absl::StatusOr<Config> c = LoadConfigText(
      "telemetry: {otlp_endpoint: \"http://127.0.0.1:4318\", traceparent_to_providers: true}\n",
      "test.yaml", FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->telemetry.otlp_endpoint, "http://127.0.0.1:4318");
  EXPECT_TRUE(c->telemetry.traceparent_to_providers);
  EXPECT_THAT(Error("telemetry:\n  otlp_endpoint: \"collector:4317\"\n"),
              HasSubstr("test.yaml:2:18: telemetry.otlp_endpoint: \"collector:4317\" is not an "
                        "http:// or https:// URL"));
  EXPECT_THAT(Error("telemetry: {endpoint: x}\n"),
              HasSubstr("test.yaml:1:13: unknown key \"telemetry.endpoint\""));
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
  absl::StatusOr<Config> missing = LoadLayeredConfig(dir.Join("nope.yaml"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr(dir.Join("nope.yaml") + ": cannot read config file: No such file"));
}

TEST(ConfigFileTest, ErrorsNameTheFile) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("a.yaml"), "logging:\n  level: chatty\n");
  absl::StatusOr<Config> c = LoadLayeredConfig(dir.Join("a.yaml"));
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

namespace agentd {
namespace {

using ::testing::ElementsAre;

// The embedded default, then `text` as "agentd.yaml".
absl::StatusOr<Config> OverDefault(absl::string_view text) {
  return LoadConfigLayers({{"<embedded default>", std::string(EmbeddedDefaultConfigText())},
                           {"agentd.yaml", std::string(text)}},
                          FakeEnv({}));
}

TEST(ConfigLayersTest, AFileChangesOnlyWhatItNamesAndKeepsEveryDefaultRole) {
  absl::StatusOr<Config> c =
      OverDefault("roles:\n  coder: {max_instances: 5}\nmodels:\n  small: {model: \"qwen3:8b\"}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  for (const char* role : {"ceo", "manager", "specialist", "coder", "tester"}) {
    EXPECT_TRUE(c->roles.count(role)) << role;
  }
  EXPECT_EQ(c->roles.at("coder").max_instances, 5);
  EXPECT_EQ(c->roles.at("coder").model, "small");  // from the default, merged key by key
  EXPECT_THAT(c->roles.at("coder").tools, ::testing::Contains("git.commit"));
  EXPECT_EQ(c->models.at("small").model, "qwen3:8b");
  EXPECT_EQ(c->models.at("small").provider, "local");
  EXPECT_EQ(c->models.at("small").temperature, 0.2);
  ASSERT_EQ(c->agents.size(), 2u);
  EXPECT_EQ(c->origins.at("roles.coder.max_instances"), "agentd.yaml:2:26");
  EXPECT_THAT(c->origins.at("roles.coder.model"), HasSubstr("<embedded default>:"));
  EXPECT_THAT(c->layers, ElementsAre("<embedded default>", "agentd.yaml"));
}

TEST(ConfigLayersTest, ListsReplaceAndNullRemovesANamedEntry) {
  absl::StatusOr<Config> c = OverDefault(
      "roles:\n  coder: {tools: [fs.read, complete_task]}\n  specialist: null\n"
      "providers: {anthropic: ~}\nagents: []\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(c->roles.at("coder").tools, ElementsAre("fs.read", "complete_task"));
  EXPECT_EQ(c->roles.count("specialist"), 0u);
  EXPECT_EQ(c->providers.count("anthropic"), 0u);
  EXPECT_EQ(c->providers.count("openai"), 1u);
  EXPECT_TRUE(c->agents.empty());
}

TEST(ConfigLayersTest, ANewEntryStillNeedsItsRequiredKeys) {
  absl::StatusOr<Config> c = OverDefault("models:\n  tiny: {provider: local}\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("agentd.yaml:2:9: models.tiny: missing required key \"model\""));
}

TEST(ConfigLayersTest, ReferencesAreCheckedAfterTheLastLayerWhereTheyWereSet) {
  // The model is defined by a later layer than the role naming it: no error.
  absl::StatusOr<Config> ok = LoadConfigLayers(
      {{"a.yaml", "roles:\n  r: {model: m}\n"},
       {"b.yaml", "providers: {p: {kind: openai}}\nmodels: {m: {provider: p, model: x}}\n"}},
      FakeEnv({}));
  EXPECT_TRUE(ok.ok()) << ok.status();
  // Removing the model in a later layer leaves the role's reference dangling: the error
  // points at the role's model where it was set.
  absl::StatusOr<Config> bad = OverDefault("models:\n  big: null\n");
  ASSERT_FALSE(bad.ok());
  std::string e(bad.status().message());
  EXPECT_THAT(e, HasSubstr("<embedded default>:"));
  EXPECT_THAT(e, HasSubstr("roles.ceo.model: no model named \"big\""));
  // A pair of settings split across layers is checked on the merged values.
  absl::StatusOr<Config> hb = OverDefault("supervision: {heartbeat: {interval: 30s}}\n");
  ASSERT_FALSE(hb.ok());
  EXPECT_THAT(std::string(hb.status().message()),
              HasSubstr("supervision.heartbeat: ttl must be longer than interval"));
}

TEST(ConfigLayersTest, DropInsApplyInNameOrderAndTheirErrorsNameThem) {
  testing::TempDir dir;
  const std::string file = dir.Join("agentd.yaml");
  testing::WriteFile(file, "roles:\n  coder: {max_instances: 5}\n");
  ASSERT_EQ(mkdir((file + ".d").c_str(), 0700), 0);
  testing::WriteFile(file + ".d/20-late.yaml", "roles:\n  coder: {max_instances: 7}\n");
  testing::WriteFile(file + ".d/10-early.yaml", "roles:\n  coder: {max_instances: 6}\n");
  testing::WriteFile(file + ".d/.hidden.yaml", "nonsense: [\n");
  testing::WriteFile(file + ".d/30-notes.txt", "nonsense: [\n");
  absl::StatusOr<Config> c = LoadLayeredConfig(file, FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->roles.at("coder").max_instances, 7);
  EXPECT_EQ(c->origins.at("roles.coder.max_instances"), file + ".d/20-late.yaml:2:26");
  EXPECT_EQ(c->layers.size(), 4u);

  testing::WriteFile(file + ".d/40-bad.yaml", "roles:\n  coder: {max_instances: 0, colour: red}\n");
  absl::StatusOr<Config> bad = LoadLayeredConfig(file, FakeEnv({}));
  ASSERT_FALSE(bad.ok());
  std::string e(bad.status().message());
  EXPECT_THAT(e, HasSubstr(file + ".d/40-bad.yaml:2:29: unknown key \"roles.coder.colour\""));
  EXPECT_THAT(e, HasSubstr(file + ".d/40-bad.yaml:2:26: roles.coder.max_instances: must be at"));
}

TEST(ConfigLayersTest, AnEmptyFileIsTheDefault) {
  testing::TempDir dir;
  testing::WriteFile(dir.Join("agentd.yaml"), "");
  absl::StatusOr<Config> c = LoadLayeredConfig(dir.Join("agentd.yaml"), FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<Config> d = LoadDefaultConfig(FakeEnv({}));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(c->roles, d->roles);
  EXPECT_EQ(c->agents, d->agents);
}

TEST(ConfigSyntaxTest, ATabIsNamedWhereItIs) {
  std::string e = Error("server:\n\tsocket: /tmp/a.sock\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:2:1: invalid YAML: a tab in the indentation"));
  EXPECT_THAT(e, HasSubstr("\\tsocket: /tmp/a.sock"));  // the line, its tab shown
}

TEST(ConfigSyntaxTest, AnUnclosedBracketIsNamedWhereItOpens) {
  std::string e = Error("roles:\n  coder: {tools: [fs.read, \"a]\" # ]\n    x: 1}\nagents: []\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:2:18: invalid YAML: this \"[\" is never closed"));
  std::string m = Error("roles: {coder: {max_instances: 2}\nagents: []\n");
  EXPECT_THAT(m, HasSubstr("test.yaml:1:8: invalid YAML: this \"{\" is never closed"));
}

TEST(ConfigViewTest, TheViewNamesOriginsAndReadsBackAsTheSameConfiguration) {
  absl::StatusOr<Config> c = OverDefault(
      "roles:\n  coder: {max_instances: 5, limits: {memory: 2GiB}}\n"
      "server: {http: \"\", cors_origins: [\"https://a.example\"]}\n"
      "supervision: {limits: {nofile: 512}}\nstate_dir: /var/lib/$${x}\n"
      "policy: {consent_timeout: 0s, budget: {goal_usd: 1.234567}}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  std::string view = RenderConfigYaml(*c);
  EXPECT_THAT(view, HasSubstr("max_instances: 5  # agentd.yaml:2:26"));
  EXPECT_THAT(view,
              HasSubstr("# layers, each over the one before: <embedded default>, agentd.yaml"));
  EXPECT_THAT(view, ::testing::ContainsRegex("stop_timeout: 10s +# <embedded default>:"));
  EXPECT_THAT(view, ::testing::ContainsRegex("max_nudges: 2 +# default"));
  absl::StatusOr<Config> back = LoadConfigText(view, "view.yaml", FakeEnv({}));
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << view;
  Config a = *c, b = *back;
  a.origins.clear();
  b.origins.clear();
  a.layers = b.layers = {};
  a.source = b.source = "";
  EXPECT_EQ(a, b) << view;
  EXPECT_EQ(b.state_dir, "/var/lib/${x}");
}

}  // namespace
}  // namespace agentd

namespace agentd {
namespace {

TEST(ConfigLayersTest, AnEntryRemovedAndMadeAgainKeepsNoEarlierOrigins) {
  absl::StatusOr<Config> c =
      LoadConfigLayers({{"<embedded default>", std::string(EmbeddedDefaultConfigText())},
                        {"a.yaml", "roles:\n  coder: null\n"},
                        {"b.yaml", "roles:\n  coder: {model: small}\n"}},
                       FakeEnv({}));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->roles.at("coder").max_instances, 1);  // the built-in default, not the file's 3
  EXPECT_TRUE(c->roles.at("coder").tools.empty());
  EXPECT_EQ(c->origins.count("roles.coder.max_instances"), 0u);
  EXPECT_EQ(c->origins.at("roles.coder.model"), "b.yaml:2:18");
}

TEST(ConfigLayersTest, APairThatDisagreesIsPlacedAtTheOneJustChanged) {
  absl::StatusOr<Config> c =
      LoadConfigLayers({{"<embedded default>", std::string(EmbeddedDefaultConfigText())},
                        {"agentd.yaml", "supervision:\n  heartbeat: {interval: 30s}\n"}},
                       FakeEnv({}));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("agentd.yaml:2:25: supervision.heartbeat: ttl must be longer"));
}

TEST(ConfigLayersTest, ARequiredValueALaterLayerEmptiesIsAnError) {
  absl::StatusOr<Config> c = LoadConfigLayers(
      {{"<embedded default>", std::string(EmbeddedDefaultConfigText())},
       {"agentd.yaml", "models:\n  small: {model: \"\"}\nproviders:\n  local: {kind: ~}\n"}},
      FakeEnv({}));
  ASSERT_FALSE(c.ok());
  std::string e(c.status().message());
  EXPECT_THAT(e, HasSubstr("models.small.model: must not be empty"));
  EXPECT_THAT(e, HasSubstr("providers.local.kind: must be one of"));
}

TEST(ConfigSyntaxTest, AnApostropheInAPlainValueIsNotAQuote) {
  std::string e = Error("roles:\n  r: {prompt: don't, tools: [a\nagents: []\n");
  EXPECT_THAT(e, HasSubstr("test.yaml:2:29: invalid YAML: this \"[\" is never closed"));
}

}  // namespace
}  // namespace agentd
