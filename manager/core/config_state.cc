#include "manager/core/config_state.h"

#include <limits.h>
#include <unistd.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/paths.h"

namespace agentd {
namespace {

// `dir` without trailing slashes, and absolute: a relative one is taken from the working
// directory, once, so that a later chdir changes nothing.
std::string AbsoluteDir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (!dir.empty() && dir.front() != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) dir = absl::StrCat(cwd, "/", dir);
  }
  return dir;
}

}  // namespace

absl::StatusOr<Config> ConfigState::Read(const std::string& file,
                                         const ConfigOverrides& overrides) {
  absl::StatusOr<Config> c = LoadLayeredConfig(file);
  if (!c.ok()) return c.status();
  auto set = [&c](const std::optional<std::string>& flag, const char* path, const char* name,
                  std::string* field) {
    if (!flag.has_value()) return;
    *field = *flag;
    c->origins[path] = name;
  };
  set(overrides.state_dir, "state_dir", "--state-dir", &c->state_dir);
  set(overrides.socket, "server.socket", "--socket", &c->server.socket);
  set(overrides.http, "server.http", "--http", &c->server.http);
  set(overrides.grpc_tcp, "server.grpc_tcp", "--grpc-tcp", &c->server.grpc_tcp);
  set(overrides.log_format, "logging.format", "--log-format", &c->logging.format);
  set(overrides.log_level, "logging.level", "--log-level", &c->logging.level);
  // bootstrapper is built in: agentd-agent renders project templates with no model. A
  // configuration may still give it limits or more instances under roles.bootstrapper.
  if (c->roles.count("bootstrapper") == 0) {
    RoleConfig b;
    b.max_instances = 2;
    c->roles["bootstrapper"] = b;
  }
  if (c->server.socket.empty()) c->server.socket = DefaultSocketPath();
  if (c->state_dir.empty()) c->state_dir = DefaultStateDir();
  c->state_dir = AbsoluteDir(c->state_dir);
  // Beside the state directory rather than in it: agents see nothing of the state
  // directory but their own session, and every goal's workspace is seen by its agents.
  if (c->workspaces_dir.empty()) c->workspaces_dir = c->state_dir + "-workspaces";
  c->workspaces_dir = AbsoluteDir(c->workspaces_dir);
  if (c->server.socket.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("server.socket: \"", c->server.socket, "\" must be an absolute path"));
  }
  // sockaddr_un.sun_path holds 108 bytes, the terminating NUL included.
  if (c->server.socket.size() > 107) {
    return absl::InvalidArgumentError(
        absl::StrCat("server.socket: \"", c->server.socket, "\" is ", c->server.socket.size(),
                     " bytes long; a unix socket path may have at most 107"));
  }
  if (c->logging.format != "text" && c->logging.format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("--log-format: \"", c->logging.format, "\" is not one of: text, json"));
  }
  return c;
}

absl::StatusOr<ConfigState> ConfigState::Load(std::string file, ConfigOverrides overrides) {
  absl::StatusOr<Config> c = Read(file, overrides);
  if (!c.ok()) return c.status();
  ConfigState st;
  st.file_ = std::move(file);
  st.overrides_ = std::move(overrides);
  st.config_ = *std::move(c);
  st.loaded_time_ = absl::Now();
  return st;
}

absl::StatusOr<ReloadResult> ConfigState::Reload() {
  absl::StatusOr<Config> next = Read(file_, overrides_);
  if (!next.ok()) return next.status();
  if (absl::Status s = SetLogLevel(next->logging.level); !s.ok()) return s;

  ReloadResult r;
  const Config& a = config_;
  const Config& b = *next;
  auto diff = [](bool changed, const char* name, std::vector<std::string>* into) {
    if (changed) into->push_back(name);
  };
  diff(a.server.socket != b.server.socket, "server.socket", &r.restart_required);
  diff(a.server.socket_group != b.server.socket_group, "server.socket_group", &r.restart_required);
  diff(a.server.http != b.server.http, "server.http", &r.restart_required);
  diff(a.server.grpc_tcp != b.server.grpc_tcp, "server.grpc_tcp", &r.restart_required);
  diff(a.server.tls_cert_file != b.server.tls_cert_file ||
           a.server.tls_key_file != b.server.tls_key_file,
       "server.tls", &r.restart_required);
  diff(a.state_dir != b.state_dir, "state_dir", &r.restart_required);
  diff(a.workspaces_dir != b.workspaces_dir, "workspaces_dir", &r.restart_required);
  diff(a.logging.format != b.logging.format, "logging.format", &r.restart_required);
  diff(a.telemetry != b.telemetry, "telemetry", &r.restart_required);  // the exporter, at start
  diff(a.ui.dir != b.ui.dir, "ui.dir", &r.restart_required);  // the HTTP listener's, at start
  // The HTTP listener takes these at start.
  diff(a.server.cors_origins != b.server.cors_origins, "server.cors_origins", &r.restart_required);
  diff(a.server.http_hosts != b.server.http_hosts, "server.http_hosts", &r.restart_required);
  diff(a.server.http_session_ttl != b.server.http_session_ttl, "server.http_session_ttl",
       &r.restart_required);
  diff(a.server.shutdown_timeout != b.server.shutdown_timeout, "server.shutdown_timeout",
       &r.applied);
  diff(a.logging.level != b.logging.level, "logging.level", &r.applied);
  diff(a.providers != b.providers, "providers", &r.applied);
  diff(a.models != b.models, "models", &r.applied);
  diff(a.roles != b.roles, "roles", &r.applied);
  diff(a.agents != b.agents, "agents", &r.applied);
  diff(a.supervision != b.supervision, "supervision", &r.applied);
  // The log store's limits are fixed at start (its drain thread reads them unlocked).
  diff(a.logs != b.logs, "logs", &r.restart_required);
  diff(a.policy != b.policy, "policy", &r.applied);

  // Settings bound at start keep their running values until a restart, so what the
  // daemon reports (`agentctl config view`) stays what it does: the value and where it
  // came from, elements and sub-keys included.
  Config merged = *std::move(next);
  auto keep = [&a, &merged](const std::string& path, auto&& field) {
    field(merged) = field(a);
    auto under = [&path](const std::string& key) {
      return key == path || absl::StartsWith(key, path + ".") || absl::StartsWith(key, path + "[");
    };
    std::erase_if(merged.origins, [&](const auto& kv) { return under(kv.first); });
    for (const auto& [key, origin] : a.origins) {
      if (under(key)) merged.origins[key] = origin;
    }
  };
  keep(
      "server.socket", [](auto& c) -> auto& { return c.server.socket; });
  keep(
      "server.socket_group", [](auto& c) -> auto& { return c.server.socket_group; });
  keep(
      "server.http", [](auto& c) -> auto& { return c.server.http; });
  keep(
      "server.grpc_tcp", [](auto& c) -> auto& { return c.server.grpc_tcp; });
  keep(
      "server.tls_cert_file", [](auto& c) -> auto& { return c.server.tls_cert_file; });
  keep(
      "server.tls_key_file", [](auto& c) -> auto& { return c.server.tls_key_file; });
  keep(
      "server.cors_origins", [](auto& c) -> auto& { return c.server.cors_origins; });
  keep(
      "server.http_hosts", [](auto& c) -> auto& { return c.server.http_hosts; });
  keep(
      "server.http_session_ttl", [](auto& c) -> auto& { return c.server.http_session_ttl; });
  keep(
      "state_dir", [](auto& c) -> auto& { return c.state_dir; });
  keep(
      "workspaces_dir", [](auto& c) -> auto& { return c.workspaces_dir; });
  keep(
      "logging.format", [](auto& c) -> auto& { return c.logging.format; });
  keep(
      "logs", [](auto& c) -> auto& { return c.logs; });
  keep(
      "ui.dir", [](auto& c) -> auto& { return c.ui.dir; });
  config_ = std::move(merged);
  loaded_time_ = absl::Now();
  return r;
}

}  // namespace agentd
