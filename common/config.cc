#include "common/config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/embedded_config.h"
#include "common/values.h"
#include "yaml-cpp/yaml.h"

namespace agentd {
namespace {

std::string KindName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return absl::StrCat("\"", n.Scalar(), "\"");
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "an undefined value";
  }
}

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  if (!absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

// Walks the YAML tree, converting values into the Config and collecting every error with
// its position. Nothing here throws: yaml-cpp's conversions are not used on user data.
class Parser {
 public:
  Parser(absl::string_view source, const EnvLookup& env) : source_(source), env_(env) {}

  void Error(const YAML::Mark& m, absl::string_view msg) {
    if (m.is_null()) {
      errors_.push_back(absl::StrCat(source_, ": ", msg));
    } else {
      errors_.push_back(absl::StrCat(source_, ":", m.line + 1, ":", m.column + 1, ": ", msg));
    }
  }
  const std::vector<std::string>& errors() const { return errors_; }

  // The expanded text of a scalar, or nullopt (error recorded). Null reads as "".
  std::optional<std::string> Scalar(const YAML::Node& n, absl::string_view path,
                                    absl::string_view expected) {
    if (n.IsNull()) return std::string();
    if (!n.IsScalar()) {
      Error(n.Mark(), absl::StrCat(path, ": expected ", expected, ", got ", KindName(n)));
      return std::nullopt;
    }
    absl::StatusOr<std::string> expanded = ExpandEnv(n.Scalar(), env_);
    if (!expanded.ok()) {
      Error(n.Mark(), absl::StrCat(path, ": ", expanded.status().message()));
      return std::nullopt;
    }
    return *std::move(expanded);
  }

  void Read(const YAML::Node& n, absl::string_view path, std::string* out) {
    if (auto s = Scalar(n, path, "a string")) *out = *std::move(s);
  }
  void Read(const YAML::Node& n, absl::string_view path, int64_t* out) {
    auto s = Scalar(n, path, "an integer");
    if (!s) return;
    int64_t v = 0;  // SimpleAtoi writes even when it fails; keep *out as it was
    if (absl::SimpleAtoi(*s, &v)) {
      *out = v;
    } else {
      Error(n.Mark(), absl::StrCat(path, ": expected an integer, got ", KindName(n)));
    }
  }
  void Read(const YAML::Node& n, absl::string_view path, bool* out) {
    auto s = Scalar(n, path, "true or false");
    if (!s) return;
    if (*s == "true") {
      *out = true;
    } else if (*s == "false") {
      *out = false;
    } else {
      Error(n.Mark(), absl::StrCat(path, ": expected true or false, got \"", *s, "\""));
    }
  }
  void Read(const YAML::Node& n, absl::string_view path, double* out) {
    auto s = Scalar(n, path, "a number");
    if (!s) return;
    double v = 0;
    if (absl::SimpleAtod(*s, &v)) {
      *out = v;
    } else {
      Error(n.Mark(), absl::StrCat(path, ": expected a number, got ", KindName(n)));
    }
  }
  void Read(const YAML::Node& n, absl::string_view path, std::optional<double>* out) {
    double v = 0;
    size_t before = errors_.size();
    Read(n, path, &v);
    if (errors_.size() == before) *out = v;
  }
  void Read(const YAML::Node& n, absl::string_view path, std::optional<int64_t>* out) {
    int64_t v = 0;
    size_t before = errors_.size();
    Read(n, path, &v);
    if (errors_.size() == before) *out = v;
  }
  void Read(const YAML::Node& n, absl::string_view path, absl::Duration* out) {
    auto s = Scalar(n, path, "a duration");
    if (!s) return;
    absl::StatusOr<absl::Duration> d = ParseDuration(*s);
    if (!d.ok()) {
      Error(n.Mark(), absl::StrCat(path, ": ", d.status().message()));
      return;
    }
    *out = *d;
  }
  void ReadBytes(const YAML::Node& n, absl::string_view path, int64_t* out) {
    auto s = Scalar(n, path, "a size");
    if (!s) return;
    absl::StatusOr<int64_t> b = ParseByteSize(*s);
    if (!b.ok()) {
      Error(n.Mark(), absl::StrCat(path, ": ", b.status().message()));
      return;
    }
    *out = *b;
  }
  template <typename T>
  void Read(const YAML::Node& n, absl::string_view path, std::vector<T>* out) {
    if (n.IsNull()) {
      out->clear();
      return;
    }
    if (!n.IsSequence()) {
      Error(n.Mark(), absl::StrCat(path, ": expected a list, got ", KindName(n)));
      return;
    }
    out->clear();
    for (size_t i = 0; i < n.size(); ++i) {
      T v{};
      Read(n[i], absl::StrCat(path, "[", i, "]"), &v);
      out->push_back(std::move(v));
    }
  }

  // Records an error unless `v` is one of `allowed`.
  void OneOf(const YAML::Node& n, absl::string_view path, const std::string& v,
             std::initializer_list<absl::string_view> allowed) {
    for (absl::string_view a : allowed) {
      if (v == a) return;
    }
    Error(n.Mark(),
          absl::StrCat(path, ": \"", v, "\" is not one of: ", absl::StrJoin(allowed, ", ")));
  }

 private:
  std::string source_;
  const EnvLookup& env_;
  std::vector<std::string> errors_;
};

// One YAML mapping being read: each key the caller asks for is marked known; Done()
// reports the keys nobody asked for, and duplicate keys.
class Fields {
 public:
  Fields(Parser& p, const YAML::Node& node, std::string path)
      : p_(p), node_(node), path_(std::move(path)) {
    ok_ = node.IsMap() || node.IsNull();
    if (!ok_) {
      p_.Error(node.Mark(), absl::StrCat(path_.empty() ? "document" : path_,
                                         ": expected a mapping, got ", KindName(node)));
    }
  }

  bool ok() const { return ok_; }

  // The value under `key`, or an undefined node when absent.
  YAML::Node Get(absl::string_view key) {
    known_.insert(std::string(key));
    if (!ok_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
    }
    return YAML::Node(YAML::NodeType::Undefined);
  }

  std::string Sub(absl::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }

  template <typename T>
  Fields& Opt(absl::string_view key, T* out) {
    YAML::Node v = Get(key);
    if (v.IsDefined()) p_.Read(v, Sub(key), out);
    return *this;
  }
  Fields& Bytes(absl::string_view key, int64_t* out) {
    YAML::Node v = Get(key);
    if (v.IsDefined()) p_.ReadBytes(v, Sub(key), out);
    return *this;
  }
  template <typename T>
  Fields& Req(absl::string_view key, T* out) {
    YAML::Node v = Get(key);
    if (!v.IsDefined() || v.IsNull()) {
      p_.Error(node_.Mark(), absl::StrCat(path_, ": missing required key \"", key, "\""));
    } else {
      p_.Read(v, Sub(key), out);
    }
    return *this;
  }

  void Done() {
    if (!ok_ || !node_.IsMap()) return;
    std::set<std::string> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (!it->first.IsScalar()) {
        p_.Error(it->first.Mark(), absl::StrCat(path_, ": keys must be plain strings"));
        continue;
      }
      const std::string& k = it->first.Scalar();
      if (!seen.insert(k).second) {
        p_.Error(it->first.Mark(), absl::StrCat("duplicate key \"", Sub(k), "\""));
      }
      if (known_.count(k) == 0) {
        p_.Error(it->first.Mark(), absl::StrCat("unknown key \"", Sub(k), "\" (expected one of: ",
                                                absl::StrJoin(known_, ", "), ")"));
      }
    }
  }

 private:
  Parser& p_;
  YAML::Node node_;
  std::string path_;
  bool ok_ = true;
  std::set<std::string> known_;
};

// Calls fn(name, value_node, key_mark) for each entry of a mapping of named items.
template <typename Fn>
void ForEachNamed(Parser& p, const YAML::Node& n, absl::string_view path, Fn fn) {
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) {
    p.Error(n.Mark(), absl::StrCat(path, ": expected a mapping of names, got ", KindName(n)));
    return;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
    if (!IsIdentifier(name)) {
      p.Error(it->first.Mark(),
              absl::StrCat(path, ": invalid name \"", name,
                           "\" (expected letters, digits, '-' or '_', at most 63)"));
      continue;
    }
    fn(name, it->second, it->first.Mark());
  }
}

struct Ref {
  YAML::Mark mark;
  std::string path, kind, name;
};

bool IsLoopback(absl::string_view addr) {
  return absl::StartsWith(addr, "127.") || absl::StartsWith(addr, "localhost:") ||
         absl::StartsWith(addr, "[::1]:") || absl::StartsWith(addr, "unix:");
}

absl::StatusOr<Config> Parse(const YAML::Node& root, absl::string_view source,
                             const EnvLookup& env) {
  Parser p(source, env);
  Config c;
  c.source = std::string(source);
  std::vector<Ref> refs;
  Fields top(p, root, "");

  if (YAML::Node n = top.Get("server"); n.IsDefined()) {
    Fields f(p, n, "server");
    f.Opt("socket", &c.server.socket)
        .Opt("http", &c.server.http)
        .Opt("grpc_tcp", &c.server.grpc_tcp)
        .Opt("tls_cert_file", &c.server.tls_cert_file)
        .Opt("tls_key_file", &c.server.tls_key_file)
        .Opt("shutdown_timeout", &c.server.shutdown_timeout)
        .Opt("cors_origins", &c.server.cors_origins)
        .Opt("http_hosts", &c.server.http_hosts)
        .Opt("http_session_ttl", &c.server.http_session_ttl)
        .Done();
    for (size_t i = 0; i < c.server.http_hosts.size(); ++i) {
      const std::string& h = c.server.http_hosts[i];
      bool ok = !h.empty() && h.size() <= 253 && h.front() != '.' && h.front() != '-';
      for (char ch : h) {
        ok = ok && (absl::ascii_islower(static_cast<unsigned char>(ch)) ||
                    absl::ascii_isdigit(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.');
      }
      if (!ok) {
        p.Error(f.Get("http_hosts")[i].Mark(),
                absl::StrCat("server.http_hosts[", i, "]: \"", h,
                             "\" is not a host name: write it in lower case with no scheme, port "
                             "or path, e.g. \"agentd.lan\" (loopback addresses, localhost and the "
                             "listener's own address need no entry)"));
      }
    }
    if (c.server.http_session_ttl < absl::Seconds(1) ||
        c.server.http_session_ttl > absl::Hours(24 * 30)) {
      p.Error(f.Get("http_session_ttl").IsDefined() ? f.Get("http_session_ttl").Mark() : n.Mark(),
              "server.http_session_ttl: must be between 1s and 720h");
    }
    for (size_t i = 0; i < c.server.cors_origins.size(); ++i) {
      const std::string& o = c.server.cors_origins[i];
      if (!(absl::StartsWith(o, "http://") || absl::StartsWith(o, "https://")) ||
          absl::EndsWith(o, "/")) {
        p.Error(f.Get("cors_origins")[i].Mark(),
                absl::StrCat("server.cors_origins[", i, "]: \"", o,
                             "\" is not an origin: write scheme://host[:port], e.g. "
                             "\"https://ui.example:8443\", with no path"));
      }
    }
    if (c.server.tls_cert_file.empty() != c.server.tls_key_file.empty()) {
      p.Error(n.Mark(), "server: tls_cert_file and tls_key_file must be set together");
    }
    if (!c.server.grpc_tcp.empty() && c.server.tls_cert_file.empty() &&
        !IsLoopback(c.server.grpc_tcp)) {
      p.Error(f.Get("grpc_tcp").Mark(),
              absl::StrCat("server.grpc_tcp: \"", c.server.grpc_tcp,
                           "\" is not a loopback address; without tls_cert_file and "
                           "tls_key_file the token would cross the network in clear text"));
    }
  }
  top.Opt("state_dir", &c.state_dir);
  top.Opt("workspaces_dir", &c.workspaces_dir);

  if (YAML::Node n = top.Get("ui"); n.IsDefined()) {
    Fields f(p, n, "ui");
    f.Opt("dir", &c.ui.dir).Opt("editor", &c.ui.editor).Done();
  }

  if (YAML::Node n = top.Get("logging"); n.IsDefined()) {
    Fields f(p, n, "logging");
    f.Opt("format", &c.logging.format).Opt("level", &c.logging.level).Done();
    p.OneOf(f.Get("format"), "logging.format", c.logging.format, {"text", "json"});
    p.OneOf(f.Get("level"), "logging.level", c.logging.level,
            {"trace", "debug", "info", "warn", "error", "critical", "off"});
  }

  ForEachNamed(p, top.Get("providers"), "providers",
               [&](const std::string& name, const YAML::Node& n, const YAML::Mark&) {
                 std::string path = absl::StrCat("providers.", name);
                 ProviderConfig pc;
                 Fields f(p, n, path);
                 f.Req("kind", &pc.kind)
                     .Opt("base_url", &pc.base_url)
                     .Opt("api_key_env", &pc.api_key_env)
                     .Opt("cassette", &pc.cassette);
                 if (YAML::Node t = f.Get("timeouts"); t.IsDefined()) {
                   Fields tf(p, t, path + ".timeouts");
                   tf.Opt("connect", &pc.timeouts.connect)
                       .Opt("first_byte", &pc.timeouts.first_byte)
                       .Opt("idle", &pc.timeouts.idle)
                       .Opt("total", &pc.timeouts.total)
                       .Done();
                   for (const char* key : {"connect", "first_byte", "idle", "total"}) {
                     const ProviderConfig::Timeouts& v = pc.timeouts;
                     absl::Duration d = std::string_view(key) == "connect"      ? v.connect
                                        : std::string_view(key) == "first_byte" ? v.first_byte
                                        : std::string_view(key) == "idle"       ? v.idle
                                                                                : v.total;
                     if (d <= absl::ZeroDuration() && tf.Get(key).IsDefined()) {
                       p.Error(tf.Get(key).Mark(),
                               absl::StrCat(path, ".timeouts.", key, ": must be positive"));
                     }
                   }
                 }
                 f.Done();
                 if (!pc.kind.empty()) {
                   p.OneOf(f.Get("kind"), path + ".kind", pc.kind,
                           {"openai", "anthropic", "ollama", "replay"});
                 }
                 if (pc.kind == "replay" && pc.cassette.empty()) {
                   p.Error(n.Mark(), path + ": a replay provider needs \"cassette\"");
                 }
                 c.providers[name] = std::move(pc);
               });

  ForEachNamed(
      p, top.Get("models"), "models",
      [&](const std::string& name, const YAML::Node& n, const YAML::Mark&) {
        std::string path = absl::StrCat("models.", name);
        ModelConfig mc;
        Fields f(p, n, path);
        f.Req("provider", &mc.provider)
            .Req("model", &mc.model)
            .Opt("temperature", &mc.temperature)
            .Opt("max_tokens", &mc.max_tokens);
        if (YAML::Node pn = f.Get("price"); pn.IsDefined()) {
          Fields pf(p, pn, path + ".price");
          pf.Opt("input_per_mtok", &mc.price.input_per_mtok)
              .Opt("output_per_mtok", &mc.price.output_per_mtok)
              .Done();
        }
        f.Done();
        if (!mc.provider.empty()) {
          refs.push_back({f.Get("provider").Mark(), path + ".provider", "provider", mc.provider});
        }
        c.models[name] = std::move(mc);
      });

  // `limits:` of supervision or of a role.
  auto read_limits = [&p](Fields& parent, const std::string& path, LimitsConfig* l) {
    YAML::Node n = parent.Get("limits");
    if (!n.IsDefined()) return;
    Fields f(p, n, path);
    f.Opt("nofile", &l->nofile).Opt("nproc", &l->nproc);
    for (auto [key, out] : {std::pair{"memory", &l->memory}, std::pair{"core", &l->core},
                            std::pair{"file_size", &l->file_size}}) {
      int64_t v = -1;
      f.Bytes(key, &v);
      if (v >= 0) *out = v;
    }
    absl::Duration cpu = absl::InfiniteDuration();
    f.Opt("cpu", &cpu);
    if (cpu != absl::InfiniteDuration()) {
      if (cpu < absl::Seconds(1)) {
        p.Error(f.Get("cpu").Mark(),
                path + ".cpu: must be at least 1s (the kernel counts seconds)");
      }
      l->cpu = cpu;
    }
    for (auto [key, v] : {std::pair{"nofile", l->nofile}, std::pair{"nproc", l->nproc}}) {
      if (v && *v < 1)
        p.Error(f.Get(key).Mark(), absl::StrCat(path, ".", key, ": must be at least 1"));
    }
    f.Done();
  };

  ForEachNamed(
      p, top.Get("roles"), "roles",
      [&](const std::string& name, const YAML::Node& n, const YAML::Mark&) {
        std::string path = absl::StrCat("roles.", name);
        RoleConfig rc;
        Fields f(p, n, path);
        f.Opt("command", &rc.command).Opt("env", &rc.env);
        if (YAML::Node reg = f.Get("registers"); reg.IsDefined()) {
          bool v = false;
          p.Read(reg, path + ".registers", &v);
          rc.registers = v;
        }
        if (rc.command.empty()) {
          f.Req("model", &rc.model);
        } else {
          f.Opt("model", &rc.model);
        }
        for (size_t i = 0; i < rc.env.size(); ++i) {
          if (rc.env[i].find('=') == std::string::npos || rc.env[i][0] == '=') {
            p.Error(
                f.Get("env")[i].Mark(),
                absl::StrCat(path, ".env[", i, "]: expected NAME=value, got \"", rc.env[i], "\""));
          }
        }
        f.Opt("prompt", &rc.prompt)
            .Opt("tools", &rc.tools)
            .Opt("knowledge", &rc.knowledge)
            .Opt("max_instances", &rc.max_instances)
            .Opt("idle_timeout", &rc.idle_timeout)
            .Opt("ends_on_text", &rc.ends_on_text)
            .Opt("max_nudges", &rc.max_nudges);
        read_limits(f, path + ".limits", &rc.limits);
        f.Done();
        if (rc.max_nudges < 0) {
          p.Error(f.Get("max_nudges").Mark(), path + ".max_nudges: must be 0 or more");
        }
        if (rc.max_instances < 1) {
          p.Error(f.Get("max_instances").Mark(), path + ".max_instances: must be at least 1");
        }
        if (!rc.model.empty()) {
          refs.push_back({f.Get("model").Mark(), path + ".model", "model", rc.model});
        }
        YAML::Node tools = f.Get("tools");
        for (size_t i = 0; i < rc.tools.size(); ++i) {
          const auto& known = KnownTools();
          if (std::find(known.begin(), known.end(), rc.tools[i]) == known.end()) {
            p.Error(tools[i].Mark(),
                    absl::StrCat(path, ".tools[", i, "]: unknown tool \"", rc.tools[i],
                                 "\" (known: ", absl::StrJoin(known, ", "), ")"));
          }
        }
        c.roles[name] = std::move(rc);
      });

  if (YAML::Node n = top.Get("agents"); n.IsDefined() && !n.IsNull()) {
    if (!n.IsSequence()) {
      p.Error(n.Mark(), absl::StrCat("agents: expected a list, got ", KindName(n)));
    } else {
      std::set<std::string> ids;
      for (size_t i = 0; i < n.size(); ++i) {
        std::string path = absl::StrCat("agents[", i, "]");
        AgentConfig ac;
        Fields f(p, n[i], path);
        f.Req("id", &ac.id).Req("role", &ac.role).Done();
        if (!ac.id.empty() && !IsIdentifier(ac.id)) {
          p.Error(f.Get("id").Mark(), absl::StrCat(path, ".id: invalid agent id \"", ac.id,
                                                   "\" (expected letters, digits, '-', '_')"));
        } else if (!ac.id.empty() && !ids.insert(ac.id).second) {
          p.Error(f.Get("id").Mark(),
                  absl::StrCat(path, ".id: duplicate agent id \"", ac.id, "\""));
        }
        if (!ac.role.empty())
          refs.push_back({f.Get("role").Mark(), path + ".role", "role", ac.role});
        c.agents.push_back(std::move(ac));
      }
    }
  }

  if (YAML::Node n = top.Get("supervision"); n.IsDefined()) {
    SupervisionConfig& s = c.supervision;
    Fields f(p, n, "supervision");
    f.Opt("restart", &s.restart)
        .Opt("restart_sec", &s.restart_sec)
        .Opt("restart_max_sec", &s.restart_max_sec)
        .Opt("reset_after", &s.reset_after)
        .Opt("no_restart_exit_codes", &s.no_restart_exit_codes)
        .Opt("stop_timeout", &s.stop_timeout)
        .Opt("isolation", &s.isolation);
    read_limits(f, "supervision.limits", &s.limits);
    if (YAML::Node cl = f.Get("crash_loop"); cl.IsDefined()) {
      Fields cf(p, cl, "supervision.crash_loop");
      cf.Opt("max", &s.crash_loop_max).Opt("window", &s.crash_loop_window).Done();
    }
    if (YAML::Node gb = f.Get("global_breaker"); gb.IsDefined()) {
      Fields gf(p, gb, "supervision.global_breaker");
      gf.Opt("max", &s.global_breaker_max)
          .Opt("window", &s.global_breaker_window)
          .Opt("cooldown", &s.global_breaker_cooldown)
          .Done();
    }
    if (YAML::Node hb = f.Get("heartbeat"); hb.IsDefined()) {
      Fields hf(p, hb, "supervision.heartbeat");
      hf.Opt("interval", &s.heartbeat_interval).Opt("ttl", &s.heartbeat_ttl).Done();
      if (s.heartbeat_ttl <= s.heartbeat_interval) {
        p.Error(hb.Mark(), "supervision.heartbeat: ttl must be longer than interval");
      }
    }
    f.Done();
    p.OneOf(f.Get("restart"), "supervision.restart", s.restart, {"always", "on-failure", "never"});
    p.OneOf(f.Get("isolation"), "supervision.isolation", s.isolation, {"auto", "required", "off"});
    if (s.restart_max_sec < s.restart_sec) {
      p.Error(f.Get("restart_max_sec").Mark(),
              "supervision.restart_max_sec: must not be shorter than restart_sec");
    }
  }

  if (YAML::Node n = top.Get("logs"); n.IsDefined()) {
    Fields f(p, n, "logs");
    f.Bytes("segment_bytes", &c.logs.segment_bytes)
        .Opt("keep_segments", &c.logs.keep_segments)
        .Bytes("ring_bytes", &c.logs.ring_bytes)
        .Done();
    if (c.logs.segment_bytes < (int64_t{64} << 10)) {
      p.Error(f.Get("segment_bytes").Mark(),
              "logs.segment_bytes: must be at least 64KiB (a segment holds whole lines of up to "
              "16KiB)");
    }
    if (c.logs.keep_segments < 1) {
      p.Error(f.Get("keep_segments").Mark(), "logs.keep_segments: must be at least 1");
    }
  }

  if (YAML::Node n = top.Get("policy"); n.IsDefined()) {
    PolicyConfig& pol = c.policy;
    Fields f(p, n, "policy");
    f.Opt("plan_approval", &pol.plan_approval).Opt("consent_timeout", &pol.consent_timeout);
    f.Opt("max_check_rounds", &pol.max_check_rounds).Opt("check_timeout", &pol.check_timeout);
    f.Opt("on_plan_failure", &pol.on_plan_failure);
    if (pol.max_check_rounds < 0) {
      p.Error(f.Get("max_check_rounds").Mark(), "policy.max_check_rounds: must not be negative");
    }
    if (YAML::Node b = f.Get("budget"); b.IsDefined()) {
      Fields bf(p, b, "policy.budget");
      bf.Opt("goal_usd", &pol.budget_goal_usd)
          .Opt("goal_tokens", &pol.budget_goal_tokens)
          .Opt("on_exhausted", &pol.budget_on_exhausted)
          .Done();
      p.OneOf(bf.Get("on_exhausted"), "policy.budget.on_exhausted", pol.budget_on_exhausted,
              {"pause", "fail"});
    }
    if (YAML::Node pr = f.Get("provider_retry"); pr.IsDefined()) {
      Fields rf(p, pr, "policy.provider_retry");
      rf.Opt("max", &pol.provider_retries)
          .Opt("backoff", &pol.provider_backoff)
          .Opt("max_backoff", &pol.provider_max_backoff)
          .Done();
      if (pol.provider_retries < 0) {
        p.Error(rf.Get("max").Mark(), "policy.provider_retry.max: must not be negative");
      }
      if (pol.provider_backoff <= absl::ZeroDuration() ||
          pol.provider_max_backoff < pol.provider_backoff) {
        p.Error(rf.Get("backoff").Mark(),
                "policy.provider_retry: backoff must be positive and at most max_backoff");
      }
    }
    if (YAML::Node sh = f.Get("shell"); sh.IsDefined()) {
      Fields sf(p, sh, "policy.shell");
      sf.Opt("allow", &pol.shell_allow).Opt("sandbox", &pol.shell_sandbox).Done();
      p.OneOf(sf.Get("sandbox"), "policy.shell.sandbox", pol.shell_sandbox,
              {"auto", "required", "off"});
    }
    f.Done();
    p.OneOf(f.Get("plan_approval"), "policy.plan_approval", pol.plan_approval, {"manual", "auto"});
    p.OneOf(f.Get("on_plan_failure"), "policy.on_plan_failure", pol.on_plan_failure,
            {"keep", "rollback"});
  }
  top.Done();

  for (const Ref& r : refs) {
    bool found = (r.kind == "provider" && c.providers.count(r.name)) ||
                 (r.kind == "model" && c.models.count(r.name)) ||
                 (r.kind == "role" && c.roles.count(r.name));
    if (!found) {
      p.Error(r.mark,
              absl::StrCat(r.path, ": no ", r.kind, " named \"", r.name, "\" (define it under ",
                           r.kind == "provider" ? "providers" : r.kind + "s", ")"));
    }
  }

  if (!p.errors().empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(p.errors(), "\n"));
  }
  return c;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<Config> LoadConfigText(absl::string_view text, absl::string_view source_name,
                                      const EnvLookup& env) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    // e.msg is the bare reason; e.mark its position (0-based).
    return absl::InvalidArgumentError(absl::StrCat(source_name, ":", e.mark.line + 1, ":",
                                                   e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
  try {
    return Parse(root, source_name, env);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path, const EnvLookup& env) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": cannot read config file: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::InvalidArgumentError(msg);
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read config file: ", std::strerror(errno)));
  }
  return LoadConfigText(buf.str(), path, env);
}

absl::string_view EmbeddedDefaultConfigText() { return kEmbeddedDefaultConfig; }

absl::StatusOr<Config> LoadDefaultConfig(const EnvLookup& env) {
  return LoadConfigText(kEmbeddedDefaultConfig, "<embedded default>", env);
}

const std::vector<std::string>& KnownTools() {
  static const auto* tools = new std::vector<std::string>{
      "fs.read",       "fs.write",   "fs.edit",  "fs.list",    "fs.search",      "shell.run",
      "tests.run",     "git.status", "git.diff", "git.commit", "git.checkpoint", "git.rollback",
      "complete_task", "fail_task",  "message",  "ask_human",  "delegate",       "propose_plan"};
  return *tools;
}

LimitsConfig LimitsConfig::OverriddenBy(const LimitsConfig& over) const {
  LimitsConfig out = *this;
  if (over.nofile) out.nofile = over.nofile;
  if (over.nproc) out.nproc = over.nproc;
  if (over.memory) out.memory = over.memory;
  if (over.core) out.core = over.core;
  if (over.file_size) out.file_size = over.file_size;
  if (over.cpu) out.cpu = over.cpu;
  return out;
}

}  // namespace agentd
