#include "common/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/embedded_config.h"
#include "common/text.h"
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

bool IsEnvName(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// An HTTP header name (RFC 9110's token), and not one the MCP client sets itself.
bool IsHeaderName(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  for (absl::string_view reserved : {"content-type", "content-length", "accept", "host",
                                     "mcp-session-id", "mcp-protocol-version"}) {
    if (absl::EqualsIgnoreCase(s, reserved)) return false;
  }
  return true;
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
  Parser(const EnvLookup& env, std::map<std::string, std::string>* origins)
      : env_(env), origins_(origins) {}

  // The layer being read: errors and origins name it.
  void set_source(absl::string_view source) { source_ = std::string(source); }

  std::string Where(const YAML::Mark& m) const {
    if (m.is_null()) return source_;
    return absl::StrCat(source_, ":", m.line + 1, ":", m.column + 1);
  }
  void Error(const YAML::Mark& m, absl::string_view msg) {
    errors_.push_back(absl::StrCat(Where(m), ": ", msg));
  }
  // An error about the value at `path` as merged from every layer: placed where that
  // value (or the nearest enclosing one) was last set.
  void ErrorAt(absl::string_view path, absl::string_view msg) {
    errors_.push_back(absl::StrCat(OriginOf(*origins_, path), ": ", msg));
  }
  const std::vector<std::string>& errors() const { return errors_; }

  // Forgets where everything under `path` came from (an entry removed or made afresh).
  void Forget(absl::string_view path) {
    for (const char* sep : {".", "["}) {
      std::string prefix = absl::StrCat(path, sep);
      for (auto it = origins_->lower_bound(prefix);
           it != origins_->end() && absl::StartsWith(it->first, prefix);) {
        it = origins_->erase(it);
      }
    }
  }
  // Of two settings, the one a later layer set (the one a person just changed), by the
  // layer order `layers`; `a` when neither or both come from the same layer.
  std::string LaterOf(const std::vector<std::string>& layers, const std::string& a,
                      const std::string& b) const {
    auto layer_of = [&](const std::string& path) {
      auto it = origins_->find(path);
      if (it == origins_->end()) return -1;
      for (int i = static_cast<int>(layers.size()) - 1; i >= 0; --i) {
        if (absl::StartsWith(it->second, layers[i] + ":")) return i;
      }
      return -1;
    };
    return layer_of(b) > layer_of(a) ? b : a;
  }

  // Notes that `path` was set by the current layer at `m`.
  void Record(absl::string_view path, const YAML::Mark& m) {
    (*origins_)[std::string(path)] = Where(m);
  }

  // The expanded text of a scalar, or nullopt (error recorded). Null reads as "".
  std::optional<std::string> Scalar(const YAML::Node& n, absl::string_view path,
                                    absl::string_view expected) {
    Record(path, n.Mark());
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
    Record(path, n.Mark());  // a list replaces the one of an earlier layer, whole
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

  // A mapping of plain strings; like a list, it replaces an earlier layer's whole.
  void Read(const YAML::Node& n, absl::string_view path, std::map<std::string, std::string>* out) {
    Record(path, n.Mark());
    if (n.IsNull()) {
      out->clear();
      return;
    }
    if (!n.IsMap()) {
      Error(n.Mark(), absl::StrCat(path, ": expected a mapping, got ", KindName(n)));
      return;
    }
    out->clear();
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!it->first.IsScalar()) {
        Error(it->first.Mark(), absl::StrCat(path, ": keys must be plain strings"));
        continue;
      }
      std::string v;
      Read(it->second, absl::StrCat(path, ".", it->first.Scalar()), &v);
      if (!out->emplace(it->first.Scalar(), std::move(v)).second) {
        Error(it->first.Mark(),
              absl::StrCat("duplicate key \"", path, ".", it->first.Scalar(), "\""));
      }
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
  std::map<std::string, std::string>* origins_;
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
  // Required unless `have` (an earlier layer already set it): a later layer changes only
  // what it names.
  template <typename T>
  Fields& ReqUnless(bool have, absl::string_view key, T* out) {
    return have ? Opt(key, out) : Req(key, out);
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

// Calls fn(name, value_node) for each entry of a mapping of named items, merging into
// `items`: an entry named again is changed key by key, and an entry whose value is null
// (`openai: null`, or `openai:` alone) is removed.
template <typename T, typename Fn>
void ForEachNamed(Parser& p, const YAML::Node& n, absl::string_view path,
                  std::map<std::string, T>* items, Fn fn) {
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
    const std::string entry = absl::StrCat(path, ".", name);
    // An entry removed, or defined where none is, keeps nothing of an earlier one's origins.
    if (it->second.IsNull() || items->count(name) == 0) p.Forget(entry);
    p.Record(entry, it->first.Mark());
    if (it->second.IsNull()) {
      items->erase(name);
      continue;
    }
    fn(name, it->second);
  }
}

bool IsLoopback(absl::string_view addr) {
  return absl::StartsWith(addr, "127.") || absl::StartsWith(addr, "localhost:") ||
         absl::StartsWith(addr, "[::1]:") || absl::StartsWith(addr, "unix:");
}

// Reads one layer into `c`, over what the earlier layers left there. Checks that need
// the whole configuration (references between sections, pairs of settings) wait for
// Finish(), after the last layer.
void ParseLayer(Parser& p, const YAML::Node& root, Config& c) {
  Fields top(p, root, "");

  if (YAML::Node n = top.Get("server"); n.IsDefined()) {
    Fields f(p, n, "server");
    f.Opt("socket", &c.server.socket)
        .Opt("socket_group", &c.server.socket_group)
        .Opt("http", &c.server.http)
        .Opt("grpc_tcp", &c.server.grpc_tcp)
        .Opt("tls_cert_file", &c.server.tls_cert_file)
        .Opt("tls_key_file", &c.server.tls_key_file)
        .Opt("shutdown_timeout", &c.server.shutdown_timeout)
        .Opt("cors_origins", &c.server.cors_origins)
        .Opt("http_hosts", &c.server.http_hosts)
        .Opt("http_session_ttl", &c.server.http_session_ttl)
        .Done();
    // Checked only where this layer set them (an earlier layer's were checked with it).
    for (size_t i = 0; f.Get("http_hosts").IsSequence() && i < c.server.http_hosts.size(); ++i) {
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
    for (size_t i = 0; f.Get("cors_origins").IsSequence() && i < c.server.cors_origins.size();
         ++i) {
      const std::string& o = c.server.cors_origins[i];
      if (!(absl::StartsWith(o, "http://") || absl::StartsWith(o, "https://")) ||
          absl::EndsWith(o, "/")) {
        p.Error(f.Get("cors_origins")[i].Mark(),
                absl::StrCat("server.cors_origins[", i, "]: \"", o,
                             "\" is not an origin: write scheme://host[:port], e.g. "
                             "\"https://ui.example:8443\", with no path"));
      }
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

  if (YAML::Node n = top.Get("telemetry"); n.IsDefined()) {
    Fields f(p, n, "telemetry");
    f.Opt("otlp_endpoint", &c.telemetry.otlp_endpoint)
        .Opt("traceparent_to_providers", &c.telemetry.traceparent_to_providers)
        .Done();
    const std::string& e = c.telemetry.otlp_endpoint;
    if (f.Get("otlp_endpoint").IsDefined() && !e.empty() &&
        !(absl::StartsWith(e, "http://") || absl::StartsWith(e, "https://"))) {
      p.Error(f.Get("otlp_endpoint").Mark(),
              absl::StrCat("telemetry.otlp_endpoint: \"", e,
                           "\" is not an http:// or https:// URL (e.g. \"http://127.0.0.1:4318\", "
                           "a collector's OTLP/HTTP port)"));
    }
  }

  ForEachNamed(p, top.Get("providers"), "providers", &c.providers,
               [&](const std::string& name, const YAML::Node& n) {
                 std::string path = absl::StrCat("providers.", name);
                 const bool have = c.providers.count(name) > 0;
                 ProviderConfig pc = have ? c.providers[name] : ProviderConfig();
                 Fields f(p, n, path);
                 f.ReqUnless(have, "kind", &pc.kind)
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
                 c.providers[name] = std::move(pc);
               });

  ForEachNamed(p, top.Get("models"), "models", &c.models,
               [&](const std::string& name, const YAML::Node& n) {
                 std::string path = absl::StrCat("models.", name);
                 const bool have = c.models.count(name) > 0;
                 ModelConfig mc = have ? c.models[name] : ModelConfig();
                 Fields f(p, n, path);
                 f.ReqUnless(have, "provider", &mc.provider)
                     .ReqUnless(have, "model", &mc.model)
                     .Opt("temperature", &mc.temperature)
                     .Opt("max_tokens", &mc.max_tokens);
                 if (YAML::Node pn = f.Get("price"); pn.IsDefined()) {
                   Fields pf(p, pn, path + ".price");
                   pf.Opt("input_per_mtok", &mc.price.input_per_mtok)
                       .Opt("output_per_mtok", &mc.price.output_per_mtok)
                       .Done();
                 }
                 f.Done();
                 c.models[name] = std::move(mc);
               });

  ForEachNamed(
      p, top.Get("mcp_servers"), "mcp_servers", &c.mcp_servers,
      [&](const std::string& name, const YAML::Node& n) {
        std::string path = absl::StrCat("mcp_servers.", name);
        McpServerConfig mc = c.mcp_servers.count(name) ? c.mcp_servers[name] : McpServerConfig();
        Fields f(p, n, path);
        f.Opt("command", &mc.command)
            .Opt("args", &mc.args)
            .Opt("url", &mc.url)
            .Opt("env", &mc.env)
            .Opt("headers", &mc.headers)
            .Opt("read_only_paths", &mc.read_only_paths)
            .Opt("network", &mc.network)
            .Opt("timeout", &mc.timeout);
        f.Done();
        if (f.Get("url").IsDefined() && !mc.url.empty() &&
            !(absl::StartsWith(mc.url, "http://") || absl::StartsWith(mc.url, "https://"))) {
          p.Error(f.Get("url").Mark(), absl::StrCat(path, ".url: \"", mc.url,
                                                    "\" is not an http:// or https:// URL (e.g. "
                                                    "\"http://127.0.0.1:3001/mcp\")"));
        }
        if (f.Get("timeout").IsDefined() && mc.timeout <= absl::ZeroDuration()) {
          p.Error(f.Get("timeout").Mark(), path + ".timeout: must be positive");
        }
        for (const char* key : {"env", "headers"}) {
          YAML::Node m = f.Get(key);
          if (!m.IsMap()) continue;
          const auto& entries = std::string_view(key) == "env" ? mc.env : mc.headers;
          for (auto it = m.begin(); it != m.end(); ++it) {
            if (!it->first.IsScalar()) continue;
            const std::string& k = it->first.Scalar();
            bool key_ok = std::string_view(key) == "env" ? IsEnvName(k) : IsHeaderName(k);
            if (!key_ok) {
              p.Error(it->first.Mark(),
                      absl::StrCat(path, ".", key, ": \"", k, "\" is not ",
                                   std::string_view(key) == "env"
                                       ? "an environment variable name"
                                       : "an HTTP header name agentd lets config set (not "
                                         "Accept, Content-Type, Host or an Mcp-* header)"));
            }
            auto v = entries.find(k);
            if (v != entries.end() && !IsEnvName(v->second)) {
              p.Error(it->second.Mark(),
                      absl::StrCat(path, ".", key, ".", k, ": \"", v->second,
                                   "\" is not an environment variable name: write the name of "
                                   "agentd's variable that holds the value, not the value"));
            }
          }
        }
        for (size_t i = 0; f.Get("read_only_paths").IsSequence() && i < mc.read_only_paths.size();
             ++i) {
          if (!absl::StartsWith(mc.read_only_paths[i], "/")) {
            p.Error(f.Get("read_only_paths")[i].Mark(),
                    absl::StrCat(path, ".read_only_paths[", i, "]: \"", mc.read_only_paths[i],
                                 "\" is not an absolute path"));
          }
        }
        c.mcp_servers[name] = std::move(mc);
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
      p, top.Get("roles"), "roles", &c.roles, [&](const std::string& name, const YAML::Node& n) {
        std::string path = absl::StrCat("roles.", name);
        RoleConfig rc = c.roles.count(name) ? c.roles[name] : RoleConfig();
        Fields f(p, n, path);
        f.Opt("command", &rc.command).Opt("env", &rc.env);
        if (YAML::Node reg = f.Get("registers"); reg.IsDefined()) {
          bool v = false;
          p.Read(reg, path + ".registers", &v);
          rc.registers = v;
        }
        f.Opt("model", &rc.model);
        for (size_t i = 0; f.Get("env").IsSequence() && i < rc.env.size(); ++i) {
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
        YAML::Node tools = f.Get("tools");
        for (size_t i = 0; tools.IsSequence() && i < rc.tools.size(); ++i) {
          const auto& known = KnownTools();
          if (auto grant = ParseMcpGrant(rc.tools[i]); grant.has_value()) {
            if (!grant->ok()) {
              p.Error(tools[i].Mark(),
                      absl::StrCat(path, ".tools[", i, "]: ", grant->status().message()));
            }
          } else if (std::find(known.begin(), known.end(), rc.tools[i]) == known.end()) {
            p.Error(tools[i].Mark(),
                    absl::StrCat(path, ".tools[", i, "]: unknown tool \"", rc.tools[i],
                                 "\" (known: ", absl::StrJoin(known, ", "), ")"));
          }
        }
        c.roles[name] = std::move(rc);
      });

  if (YAML::Node n = top.Get("agents"); n.IsDefined()) {
    // A list replaces the one of an earlier layer, whole.
    c.agents.clear();
    p.Forget("agents");
    p.Record("agents", n.Mark());
    if (n.IsNull()) {
      // agents: (nothing) — no always-on agents
    } else if (!n.IsSequence()) {
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
        } else if (ac.id == "agentd") {
          p.Error(f.Get("id").Mark(),
                  absl::StrCat(path, ".id: \"agentd\" is reserved (the daemon's own log)"));
        } else if (!ac.id.empty() && !ids.insert(ac.id).second) {
          p.Error(f.Get("id").Mark(),
                  absl::StrCat(path, ".id: duplicate agent id \"", ac.id, "\""));
        }
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
    }
    f.Done();
    p.OneOf(f.Get("restart"), "supervision.restart", s.restart, {"always", "on-failure", "never"});
    p.OneOf(f.Get("isolation"), "supervision.isolation", s.isolation, {"auto", "required", "off"});
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

  if (YAML::Node n = top.Get("transcripts"); n.IsDefined()) {
    Fields f(p, n, "transcripts");
    f.Bytes("goal_bytes", &c.transcripts.goal_bytes)
        .Bytes("entry_bytes", &c.transcripts.entry_bytes)
        .Done();
    if (c.transcripts.entry_bytes < (int64_t{4} << 10) ||
        c.transcripts.entry_bytes > (int64_t{2} << 20)) {
      p.Error(f.Get("entry_bytes").Mark(),
              "transcripts.entry_bytes: must be between 4KiB and 2MiB (an entry travels in one "
              "gRPC message)");
    }
    if (c.transcripts.goal_bytes < c.transcripts.entry_bytes) {
      p.Error(f.Get("goal_bytes").Mark(),
              "transcripts.goal_bytes: must be at least transcripts.entry_bytes (a goal keeps "
              "at least its newest entry)");
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
}

// The checks that need every layer read: pairs of settings and references between
// sections, each placed where its value was last set.
void Finish(Parser& p, const Config& c) {
  const ServerConfig& srv = c.server;
  if (srv.http_session_ttl < absl::Seconds(1) || srv.http_session_ttl > absl::Hours(24 * 30)) {
    p.ErrorAt("server.http_session_ttl", "server.http_session_ttl: must be between 1s and 720h");
  }
  if (srv.tls_cert_file.empty() != srv.tls_key_file.empty()) {
    p.ErrorAt(srv.tls_cert_file.empty() ? "server.tls_key_file" : "server.tls_cert_file",
              "server: tls_cert_file and tls_key_file must be set together");
  }
  if (!srv.grpc_tcp.empty() && srv.tls_cert_file.empty() && !IsLoopback(srv.grpc_tcp)) {
    p.ErrorAt("server.grpc_tcp",
              absl::StrCat("server.grpc_tcp: \"", srv.grpc_tcp,
                           "\" is not a loopback address; without tls_cert_file and "
                           "tls_key_file the token would cross the network in clear text"));
  }
  for (const auto& [name, pc] : c.providers) {
    if (pc.kind.empty()) {
      p.ErrorAt("providers." + name + ".kind",
                absl::StrCat("providers.", name,
                             ".kind: must be one of: openai, anthropic, ollama, replay (it is "
                             "empty)"));
    }
    if (pc.kind == "replay" && pc.cassette.empty()) {
      p.ErrorAt("providers." + name,
                absl::StrCat("providers.", name, ": a replay provider needs \"cassette\""));
    }
  }
  auto ref = [&](const std::string& path, absl::string_view kind, absl::string_view section,
                 const std::string& name, bool found) {
    if (name.empty() || found) return;
    p.ErrorAt(path, absl::StrCat(path, ": no ", kind, " named \"", name, "\" (define it under ",
                                 section, ")"));
  };
  for (const auto& [name, mc] : c.models) {
    for (auto [key, value] : {std::pair{"provider", &mc.provider}, std::pair{"model", &mc.model}}) {
      if (value->empty()) {
        p.ErrorAt(absl::StrCat("models.", name, ".", key),
                  absl::StrCat("models.", name, ".", key, ": must not be empty"));
      }
    }
    ref("models." + name + ".provider", "provider", "providers", mc.provider,
        c.providers.count(mc.provider) > 0);
  }
  for (const auto& [name, rc] : c.roles) {
    // bootstrapper is built in and needs no model (its limits may still be set here).
    if (rc.command.empty() && rc.model.empty() && name != "bootstrapper") {
      p.ErrorAt("roles." + name,
                absl::StrCat("roles.", name, ": missing required key \"model\" (or \"command\")"));
    }
    ref("roles." + name + ".model", "model", "models", rc.model, c.models.count(rc.model) > 0);
    for (size_t i = 0; i < rc.tools.size(); ++i) {
      auto grant = ParseMcpGrant(rc.tools[i]);
      if (!grant.has_value() || !grant->ok()) continue;
      ref(absl::StrCat("roles.", name, ".tools[", i, "]"), "MCP server", "mcp_servers",
          (*grant)->server, c.mcp_servers.count((*grant)->server) > 0);
    }
  }
  for (const auto& [name, mc] : c.mcp_servers) {
    std::string path = absl::StrCat("mcp_servers.", name);
    if (mc.command.empty() == mc.url.empty()) {
      p.ErrorAt(path, absl::StrCat(path,
                                   ": set either \"command\" (a server over stdio) or \"url\" "
                                   "(Streamable HTTP), not ",
                                   mc.command.empty() ? "neither" : "both"));
    }
    if (!mc.url.empty() && (!mc.env.empty() || !mc.args.empty() || !mc.read_only_paths.empty())) {
      p.ErrorAt(path, absl::StrCat(path,
                                   ": \"args\", \"env\" and \"read_only_paths\" are for a "
                                   "server over stdio (\"command\"), not one at a \"url\""));
    }
    if (!mc.command.empty() && !mc.headers.empty()) {
      p.ErrorAt(path + ".headers",
                absl::StrCat(path,
                             ".headers: headers are for a server at a \"url\"; a server "
                             "over stdio takes \"env\""));
    }
  }
  for (size_t i = 0; i < c.agents.size(); ++i) {
    ref(absl::StrCat("agents[", i, "].role"), "role", "roles", c.agents[i].role,
        c.roles.count(c.agents[i].role) > 0);
  }
  const SupervisionConfig& s = c.supervision;
  // A pair that disagrees is placed at the one a later layer set: the one just changed.
  if (s.heartbeat_ttl <= s.heartbeat_interval) {
    p.ErrorAt(p.LaterOf(c.layers, "supervision.heartbeat.ttl", "supervision.heartbeat.interval"),
              "supervision.heartbeat: ttl must be longer than interval");
  }
  if (s.restart_max_sec < s.restart_sec) {
    p.ErrorAt(p.LaterOf(c.layers, "supervision.restart_max_sec", "supervision.restart_sec"),
              "supervision.restart_max_sec: must not be shorter than restart_sec");
  }
  const PolicyConfig& pol = c.policy;
  if (pol.provider_backoff <= absl::ZeroDuration() ||
      pol.provider_max_backoff < pol.provider_backoff) {
    p.ErrorAt(
        p.LaterOf(c.layers, "policy.provider_retry.backoff", "policy.provider_retry.max_backoff"),
        "policy.provider_retry: backoff must be positive and at most max_backoff");
  }
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](absl::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

// The lines of `text`, without their newlines.
std::vector<absl::string_view> Lines(absl::string_view text) { return absl::StrSplit(text, '\n'); }

// Whether a quote at byte `i` starts a quoted scalar: only where a scalar may start (after
// ": ", "[", "{", ",", "- " or at the start of a line), not inside a plain one (don't).
bool QuoteMayOpen(absl::string_view text, size_t i) {
  while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == '\t')) --i;
  if (i == 0) return true;
  char before = text[i - 1];
  return before == '\n' || before == ':' || before == '[' || before == '{' || before == ',' ||
         before == '-' || before == '?';
}

// Where an unclosed "[" or "{" (kind) opened before byte `end` of `text`, as 0-based
// line and column; nullopt if none is. Skips quoted scalars and comments.
std::optional<std::pair<int, int>> UnclosedOpener(absl::string_view text, size_t end, char kind) {
  struct Open {
    char c;
    int line, col;
  };
  std::vector<Open> stack;
  int line = 0, col = 0;
  char quote = 0;
  bool comment = false;
  end = std::min(end, text.size());
  for (size_t i = 0; i < end; ++i, ++col) {
    const char ch = text[i];
    if (ch == '\n') {
      line++;
      col = -1;
      comment = false;
      continue;
    }
    if (comment) continue;
    if (quote == '"') {
      if (ch == '\\') {
        ++i, ++col;
      } else if (ch == '"') {
        quote = 0;
      }
      continue;
    }
    if (quote == '\'') {
      if (ch == '\'') quote = 0;  // '' is an escaped quote: closes and reopens
      continue;
    }
    if (ch == '#' && (i == 0 || text[i - 1] == ' ' || text[i - 1] == '\t' || text[i - 1] == '\n')) {
      comment = true;
    } else if ((ch == '"' || ch == '\'') && QuoteMayOpen(text, i)) {
      quote = ch;
    } else if (ch == '[' || ch == '{') {
      stack.push_back({ch, line, col});
    } else if ((ch == ']' || ch == '}') && !stack.empty()) {
      stack.pop_back();
    }
  }
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
    if (it->c == kind) return std::pair<int, int>(it->line, it->col);
  }
  return std::nullopt;
}

// A YAML syntax error as "source:line:col: invalid YAML: cause", placed at the cause a
// person has to fix (the tab, the bracket never closed) rather than where yaml-cpp gave up,
// with the offending line quoted.
std::string SyntaxError(absl::string_view text, absl::string_view source,
                        const YAML::Exception& e) {
  std::vector<absl::string_view> lines = Lines(text);
  int line = std::max(0, e.mark.line), col = std::max(0, e.mark.column);
  std::string cause = e.msg;
  // A tab in the indentation of this line or one above it: YAML indents with spaces only,
  // and yaml-cpp reports what the tab broke ("illegal map value"), not the tab.
  for (int i = std::min<int>(line, static_cast<int>(lines.size()) - 1); i >= 0; --i) {
    absl::string_view l = lines[i];
    size_t indent = l.find_first_not_of(" \t");
    absl::string_view lead = l.substr(0, indent == absl::string_view::npos ? l.size() : indent);
    if (size_t tab = lead.find('\t'); tab != absl::string_view::npos) {
      line = i;
      col = static_cast<int>(tab);
      cause = "a tab in the indentation: YAML indents with spaces only";
      break;
    }
    if (line - i >= 1) break;  // only this line and the one above
  }
  if (cause == e.msg) {
    const char kind = absl::StrContains(e.msg, "sequence flow") ? '['
                      : absl::StrContains(e.msg, "map flow")    ? '{'
                                                                : 0;
    if (kind != 0) {
      if (auto open = UnclosedOpener(text, e.mark.pos < 0 ? text.size() : e.mark.pos, kind)) {
        cause = absl::StrCat("this \"", std::string(1, kind), "\" is never closed (expected \"",
                             kind == '[' ? "]" : "}", "\" before line ", line + 1, ")");
        line = open->first;
        col = open->second;
      }
    } else if (e.msg == "end of map not found") {
      cause = "a key here is indented differently from the keys of its mapping above";
    } else if (e.msg == "illegal map value") {
      cause = "illegal map value: a value that holds \": \" must be quoted";
    }
  }
  std::string quoted;
  if (line < static_cast<int>(lines.size())) {
    std::string l = ValidUtf8(Utf8Prefix(lines[line], 120));
    absl::StrReplaceAll({{"\t", "\\t"}}, &l);
    quoted = absl::StrCat("\n    ", l);
  }
  return absl::StrCat(source, ":", line + 1, ":", col + 1, ": invalid YAML: ", cause, quoted);
}

// Reads the file at `path` into `out`; an error names the path and the system's reason.
absl::Status ReadFile(const std::string& path, std::string* out) {
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
  *out = buf.str();
  return absl::OkStatus();
}

}  // namespace

std::string OriginOf(const std::map<std::string, std::string>& origins, absl::string_view path) {
  std::string p(path);
  while (!p.empty()) {
    if (auto it = origins.find(p); it != origins.end()) return it->second;
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) break;
    p.resize(cut);
  }
  return "built-in default";
}

absl::StatusOr<Config> LoadConfigLayers(const std::vector<ConfigLayer>& layers,
                                        const EnvLookup& env) {
  Config c;
  Parser p(env, &c.origins);
  std::vector<std::string> errors;
  for (const ConfigLayer& layer : layers) {
    c.layers.push_back(layer.name);
    c.source = layer.name;
    YAML::Node root;
    try {
      root = YAML::Load(layer.text);
    } catch (const YAML::Exception& e) {
      errors.push_back(SyntaxError(layer.text, layer.name, e));
      continue;
    }
    p.set_source(layer.name);
    try {
      ParseLayer(p, root, c);
    } catch (const YAML::Exception& e) {
      p.Error(e.mark, e.msg);
    }
  }
  if (errors.empty() && p.errors().empty()) Finish(p, c);
  errors.insert(errors.end(), p.errors().begin(), p.errors().end());
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  return c;
}

absl::StatusOr<Config> LoadConfigText(absl::string_view text, absl::string_view source_name,
                                      const EnvLookup& env) {
  return LoadConfigLayers({{std::string(source_name), std::string(text)}}, env);
}

absl::StatusOr<std::vector<std::string>> ConfigDropIns(const std::string& file) {
  std::vector<std::string> out;
  const std::string dir = file + ".d";
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": cannot read drop-in directory: ", ec.message()));
  }
  // increment(ec), not ++: nothing here may throw.
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    // Hidden files and editors' backups (foo.yaml~, .foo.yaml.swp) are not drop-ins.
    if (name.empty() || name[0] == '.' || !absl::EndsWith(name, ".yaml")) continue;
    std::error_code type_ec;
    if (!std::filesystem::is_regular_file(it->path(), type_ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat(it->path().string(), ": a drop-in must be a file"));
    }
    out.push_back(it->path().string());
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": cannot read drop-in directory: ", ec.message()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<Config> LoadLayeredConfig(const std::string& file, const EnvLookup& env) {
  std::vector<ConfigLayer> layers = {{"<embedded default>", std::string(kEmbeddedDefaultConfig)}};
  if (!file.empty()) {
    ConfigLayer main{file, ""};
    if (absl::Status s = ReadFile(file, &main.text); !s.ok()) return s;
    layers.push_back(std::move(main));
    absl::StatusOr<std::vector<std::string>> dropins = ConfigDropIns(file);
    if (!dropins.ok()) return dropins.status();
    for (const std::string& path : *dropins) {
      ConfigLayer d{path, ""};
      if (absl::Status s = ReadFile(path, &d.text); !s.ok()) return s;
      layers.push_back(std::move(d));
    }
  }
  return LoadConfigLayers(layers, env);
}

absl::string_view EmbeddedDefaultConfigText() { return kEmbeddedDefaultConfig; }

absl::StatusOr<Config> LoadDefaultConfig(const EnvLookup& env) {
  return LoadLayeredConfig("", env);
}

const std::vector<std::string>& KnownTools() {
  static const auto* tools = new std::vector<std::string>{
      "fs.read",       "fs.write",   "fs.edit",  "fs.list",    "fs.search",      "shell.run",
      "tests.run",     "git.status", "git.diff", "git.commit", "git.checkpoint", "git.rollback",
      "complete_task", "fail_task",  "message",  "ask_human",  "delegate",       "propose_plan"};
  return *tools;
}

std::optional<absl::StatusOr<McpGrant>> ParseMcpGrant(absl::string_view entry) {
  if (!absl::StartsWith(entry, "mcp:")) return std::nullopt;
  absl::string_view rest = entry.substr(4);
  McpGrant g;
  size_t slash = rest.find('/');
  g.server = std::string(rest.substr(0, slash));
  if (slash != absl::string_view::npos) g.tool = std::string(rest.substr(slash + 1));
  if (!IsIdentifier(g.server)) {
    return absl::StatusOr<McpGrant>(absl::InvalidArgumentError(
        absl::StrCat("\"", entry,
                     "\": expected mcp:<server> or mcp:<server>/<tool>, with the name of a "
                     "server under mcp_servers")));
  }
  // The MCP specification's tool names: 1 to 128 of A-Z a-z 0-9 _ - .
  bool tool_ok = slash == absl::string_view::npos ||
                 (!g.tool.empty() && g.tool.size() <= 128 &&
                  std::all_of(g.tool.begin(), g.tool.end(), [](char ch) {
                    return absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_' ||
                           ch == '-' || ch == '.';
                  }));
  if (!tool_ok) {
    return absl::StatusOr<McpGrant>(absl::InvalidArgumentError(absl::StrCat(
        "\"", entry, "\": a tool name is 1 to 128 of letters, digits, '_', '-' and '.'")));
  }
  return absl::StatusOr<McpGrant>(std::move(g));
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
