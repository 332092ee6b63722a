#include "common/config_view.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/text.h"
#include "common/values.h"
#include "yaml-cpp/yaml.h"

namespace agentd {
namespace {

// Writes one mapping level at a time; every value is followed by its origin comment.
class View {
 public:
  View(const Config& c, bool with_origins) : c_(c), with_origins_(with_origins) {}

  YAML::Emitter& out() { return out_; }

  void Begin(const std::string& key) {
    out_ << YAML::Key << key << YAML::Value << YAML::BeginMap;
    path_.push_back(key);
  }
  void End() {
    out_ << YAML::EndMap;
    path_.pop_back();
  }

  void Str(const std::string& key, const std::string& v) {
    out_ << YAML::Key << key << YAML::Value << Escaped(v);
    Note(key);
  }
  void Int(const std::string& key, int64_t v) {
    out_ << YAML::Key << key << YAML::Value << v;
    Note(key);
  }
  void Num(const std::string& key, double v) {
    // The shortest text that reads back as the same double (StrCat keeps 6 digits).
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out_ << YAML::Key << key << YAML::Value
         << (ec == std::errc() ? std::string(buf, end) : absl::StrCat(v));
    Note(key);
  }
  void Bool(const std::string& key, bool v) {
    out_ << YAML::Key << key << YAML::Value << (v ? "true" : "false");
    Note(key);
  }
  void Dur(const std::string& key, absl::Duration v) {
    // A zero has a unit too: the loader wants one ("0" alone is refused).
    out_ << YAML::Key << key << YAML::Value
         << (v == absl::ZeroDuration() ? std::string("0s") : agentd::FormatDuration(v));
    Note(key);
  }
  void Bytes(const std::string& key, int64_t v) {
    out_ << YAML::Key << key << YAML::Value << ExactBytes(v);
    Note(key);
  }
  template <typename T>
  void List(const std::string& key, const std::vector<T>& v) {
    out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const T& x : v) {
      if constexpr (std::is_same_v<T, std::string>) {
        out_ << Escaped(x);
      } else {
        out_ << x;
      }
    }
    out_ << YAML::EndSeq;
    Note(key);
  }

  void Limits(const LimitsConfig& l) {
    if (l == LimitsConfig()) return;  // none set: every limit inherited
    Begin("limits");
    if (l.nofile) Int("nofile", *l.nofile);
    if (l.nproc) Int("nproc", *l.nproc);
    if (l.memory) Bytes("memory", *l.memory);
    if (l.core) Bytes("core", *l.core);
    if (l.file_size) Bytes("file_size", *l.file_size);
    if (l.cpu) Dur("cpu", *l.cpu);
    End();
  }

 private:
  // The loader expands ${VAR} and reads "$$" as "$": a value shown must read back as
  // itself. Text is made valid UTF-8 (a ${VAR} may have brought anything in).
  static std::string Escaped(const std::string& v) {
    return absl::StrReplaceAll(ValidUtf8(v), {{"$", "$$"}});
  }
  // A size the loader reads back exactly ("64MiB", not FormatByteSize's rounded "64.0MiB").
  static std::string ExactBytes(int64_t v) {
    for (auto [unit, shift] : {std::pair{"GiB", 30}, std::pair{"MiB", 20}, std::pair{"KiB", 10}}) {
      if (v != 0 && v % (int64_t{1} << shift) == 0) return absl::StrCat(v >> shift, unit);
    }
    return absl::StrCat(v, "B");
  }
  void Note(const std::string& key) {
    if (!with_origins_) return;
    std::string path = absl::StrJoin(path_, ".");
    path = path.empty() ? key : absl::StrCat(path, ".", key);
    // The value's own origin only: one no layer set is the built-in default, even inside
    // an entry a layer named.
    auto it = c_.origins.find(path);
    out_ << YAML::Comment(it == c_.origins.end() ? "default" : it->second);
  }

  const Config& c_;
  const bool with_origins_;
  YAML::Emitter out_;
  std::vector<std::string> path_;
};

}  // namespace

std::string RenderConfigYaml(const Config& c, bool with_origins) {
  View v(c, with_origins);
  YAML::Emitter& out = v.out();
  out.SetIndent(2);
  out << YAML::BeginMap;

  v.Begin("server");
  const ServerConfig& s = c.server;
  v.Str("socket", s.socket);
  v.Str("socket_group", s.socket_group);
  v.Str("http", s.http);
  v.Dur("http_session_ttl", s.http_session_ttl);
  v.List("http_hosts", s.http_hosts);
  v.List("cors_origins", s.cors_origins);
  v.Str("grpc_tcp", s.grpc_tcp);
  v.Str("tls_cert_file", s.tls_cert_file);
  v.Str("tls_key_file", s.tls_key_file);
  v.Dur("shutdown_timeout", s.shutdown_timeout);
  v.End();

  v.Begin("ui");
  v.Str("dir", c.ui.dir);
  v.List("editor", c.ui.editor);
  v.End();

  v.Str("state_dir", c.state_dir);
  v.Str("workspaces_dir", c.workspaces_dir);

  v.Begin("logging");
  v.Str("format", c.logging.format);
  v.Str("level", c.logging.level);
  v.End();

  v.Begin("telemetry");
  v.Str("otlp_endpoint", c.telemetry.otlp_endpoint);
  v.Bool("traceparent_to_providers", c.telemetry.traceparent_to_providers);
  v.End();

  v.Begin("providers");
  for (const auto& [name, p] : c.providers) {
    v.Begin(name);
    v.Str("kind", p.kind);
    if (!p.base_url.empty()) v.Str("base_url", p.base_url);
    if (!p.api_key_env.empty()) v.Str("api_key_env", p.api_key_env);
    if (!p.cassette.empty()) v.Str("cassette", p.cassette);
    v.Begin("timeouts");
    v.Dur("connect", p.timeouts.connect);
    v.Dur("first_byte", p.timeouts.first_byte);
    v.Dur("idle", p.timeouts.idle);
    v.Dur("total", p.timeouts.total);
    v.End();
    v.End();
  }
  v.End();

  v.Begin("models");
  for (const auto& [name, m] : c.models) {
    v.Begin(name);
    v.Str("provider", m.provider);
    v.Str("model", m.model);
    if (m.temperature) v.Num("temperature", *m.temperature);
    if (m.max_tokens) v.Int("max_tokens", *m.max_tokens);
    v.Begin("price");
    v.Num("input_per_mtok", m.price.input_per_mtok);
    v.Num("output_per_mtok", m.price.output_per_mtok);
    v.End();
    v.End();
  }
  v.End();

  v.Begin("roles");
  for (const auto& [name, r] : c.roles) {
    v.Begin(name);
    if (!r.model.empty()) v.Str("model", r.model);
    if (!r.command.empty()) v.List("command", r.command);
    if (r.registers) v.Bool("registers", *r.registers);
    if (!r.env.empty()) v.List("env", r.env);
    if (!r.prompt.empty()) v.Str("prompt", r.prompt);
    v.List("tools", r.tools);
    if (!r.knowledge.empty()) v.List("knowledge", r.knowledge);
    v.Int("max_instances", r.max_instances);
    v.Dur("idle_timeout", r.idle_timeout);
    v.Bool("ends_on_text", r.ends_on_text);
    v.Int("max_nudges", r.max_nudges);
    v.Limits(r.limits);
    v.End();
  }
  v.End();

  v.Begin("mcp_servers");
  for (const auto& [name, m] : c.mcp_servers) {
    v.Begin(name);
    if (!m.command.empty()) v.Str("command", m.command);
    if (!m.args.empty()) v.List("args", m.args);
    if (!m.url.empty()) v.Str("url", m.url);
    // Names of agentd's variables, not their values.
    if (!m.env.empty()) {
      v.Begin("env");
      for (const auto& [k, var] : m.env) v.Str(k, var);
      v.End();
    }
    if (!m.headers.empty()) {
      v.Begin("headers");
      for (const auto& [k, var] : m.headers) v.Str(k, var);
      v.End();
    }
    if (!m.read_only_paths.empty()) v.List("read_only_paths", m.read_only_paths);
    v.Bool("network", m.network);
    v.Dur("timeout", m.timeout);
    v.End();
  }
  v.End();

  out << YAML::Key << "agents" << YAML::Value << YAML::BeginSeq;
  for (size_t i = 0; i < c.agents.size(); ++i) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "id" << YAML::Value << c.agents[i].id;
    out << YAML::Key << "role" << YAML::Value << c.agents[i].role;
    out << YAML::EndMap;
    if (with_origins) {
      auto it = c.origins.find(absl::StrCat("agents[", i, "].id"));
      out << YAML::Comment(it == c.origins.end() ? "default" : it->second);
    }
  }
  out << YAML::EndSeq;

  v.Begin("supervision");
  const SupervisionConfig& sv = c.supervision;
  v.Str("restart", sv.restart);
  v.Dur("restart_sec", sv.restart_sec);
  v.Dur("restart_max_sec", sv.restart_max_sec);
  v.Dur("reset_after", sv.reset_after);
  v.Begin("crash_loop");
  v.Int("max", sv.crash_loop_max);
  v.Dur("window", sv.crash_loop_window);
  v.End();
  v.Begin("global_breaker");
  v.Int("max", sv.global_breaker_max);
  v.Dur("window", sv.global_breaker_window);
  v.Dur("cooldown", sv.global_breaker_cooldown);
  v.End();
  v.List("no_restart_exit_codes", sv.no_restart_exit_codes);
  v.Dur("stop_timeout", sv.stop_timeout);
  v.Begin("heartbeat");
  v.Dur("interval", sv.heartbeat_interval);
  v.Dur("ttl", sv.heartbeat_ttl);
  v.End();
  v.Str("isolation", sv.isolation);
  v.Limits(sv.limits);
  v.End();

  v.Begin("logs");
  v.Bytes("segment_bytes", c.logs.segment_bytes);
  v.Int("keep_segments", c.logs.keep_segments);
  v.Bytes("ring_bytes", c.logs.ring_bytes);
  v.End();

  v.Begin("transcripts");
  v.Bytes("goal_bytes", c.transcripts.goal_bytes);
  v.Bytes("entry_bytes", c.transcripts.entry_bytes);
  v.End();

  v.Begin("policy");
  const PolicyConfig& p = c.policy;
  v.Str("plan_approval", p.plan_approval);
  v.Dur("consent_timeout", p.consent_timeout);
  v.Int("max_check_rounds", p.max_check_rounds);
  v.Dur("check_timeout", p.check_timeout);
  v.Str("on_plan_failure", p.on_plan_failure);
  v.Begin("budget");
  v.Num("goal_usd", p.budget_goal_usd);
  v.Int("goal_tokens", p.budget_goal_tokens);
  v.Str("on_exhausted", p.budget_on_exhausted);
  v.End();
  v.Begin("provider_retry");
  v.Int("max", p.provider_retries);
  v.Dur("backoff", p.provider_backoff);
  v.Dur("max_backoff", p.provider_max_backoff);
  v.End();
  v.Begin("shell");
  v.List("allow", p.shell_allow);
  v.Str("sandbox", p.shell_sandbox);
  v.End();
  v.End();

  out << YAML::EndMap;
  std::string text;
  if (with_origins && !c.layers.empty()) {
    text =
        absl::StrCat("# layers, each over the one before: ", absl::StrJoin(c.layers, ", "), "\n");
  }
  return absl::StrCat(text, out.c_str(), "\n");
}

}  // namespace agentd
