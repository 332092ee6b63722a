// agentctl: the command-line client for agentd. See `agentctl --help`.
//
// Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 cannot connect to agentd.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/config.h"
#include "common/token.h"
#include "common/values.h"
#include "common/version.h"
#include "manager/ctl/connection.h"
#include "manager/ctl/output.h"
#include "nlohmann/json.hpp"

namespace agentd::ctl {
namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2, kNoConnection = 3;

constexpr char kUsageText[] = R"(usage: agentctl [global flags] COMMAND [args]

Commands:
  status                    the daemon's state, uptime, paths and counters
  version                   agentctl's and agentd's versions
  config validate FILE      check a configuration file (no daemon needed)
  config default            print the built-in default configuration
  config reload             make agentd re-read its configuration file

Global flags:
  --socket PATH             agentd's unix socket (default: $AGENTD_SOCKET, else the
                            same default agentd uses)
  --addr HOST:PORT          use agentd's TCP listener instead ($AGENTD_ADDR)
  --token TOKEN             admin token for --addr ($AGENTD_TOKEN)
  --token-file FILE         read the admin token from FILE (0600), e.g. STATE_DIR/admin.token
  --tls-ca FILE             use TLS on --addr, trusting this CA certificate
  -o, --output FORMAT       table (default), json or yaml
  --timeout DURATION        per-call deadline (default 10s)

Exit codes: 0 ok, 1 failed, 2 usage error, 3 cannot connect to agentd.
)";

struct Globals {
  ConnectionOptions conn;
  Format format = Format::kTable;
};

int Usage(const std::string& msg) {
  std::fprintf(stderr, "agentctl: %s\n(agentctl --help lists the commands)\n", msg.c_str());
  return kUsage;
}

int Fail(const std::string& msg, int code = kFailed) {
  std::fprintf(stderr, "agentctl: %s\n", msg.c_str());
  return code;
}

int RpcFailed(const char* what, const grpc::Status& s) {
  return Fail(absl::StrCat(
      what, " failed: ", absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
      ": ", s.error_message()));
}

std::string TimeString(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S %Z",
                          absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos()),
                          absl::LocalTimeZone());
}

void Print(const Globals& g, const google::protobuf::Message& msg, const std::string& table) {
  switch (g.format) {
    case Format::kJson:
      std::fputs((ToJson(msg) + "\n").c_str(), stdout);
      break;
    case Format::kYaml:
      std::fputs(ToYaml(msg).c_str(), stdout);
      break;
    case Format::kTable:
      std::fputs(table.c_str(), stdout);
      break;
  }
}

int Status(const Globals& g, const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("status takes no arguments");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::SystemService::NewStub(c->channel());
  v1::GetInfoResponse info;
  grpc::Status s = stub->GetInfo(c->NewContext().get(), v1::GetInfoRequest(), &info);
  if (!s.ok()) return RpcFailed("GetInfo", s);
  const v1::DaemonPaths& p = info.paths();
  std::string state = v1::DaemonState_Name(info.state());
  if (absl::StartsWith(state, "DAEMON_STATE_")) state = absl::AsciiStrToLower(state.substr(13));
  std::string table = KeyValues({
      {"agentd", absl::StrCat(info.version().version(), " (", info.version().git_revision(), ", ",
                              info.version().build_type(), ")")},
      {"state", state},
      {"pid", absl::StrCat(info.pid())},
      {"started", TimeString(info.start_time())},
      {"uptime", absl::FormatDuration(absl::Seconds(info.uptime().seconds()))},
      {"socket", p.socket()},
      {"grpc tcp", p.grpc_tcp().empty() ? "off" : p.grpc_tcp()},
      {"http", p.http().empty() ? "off" : p.http()},
      {"state dir", p.state_dir()},
      {"database", absl::StrCat(p.database(), " (schema ", info.schema_version(), ")")},
      {"config", p.config_file().empty() ? "<embedded default>" : p.config_file()},
      {"config loaded", TimeString(info.config_loaded_time())},
      {"agents", absl::StrCat(info.counters().agents())},
      {"active goals", absl::StrCat(info.counters().active_goals())},
      {"events", absl::StrCat(info.counters().last_event_seq())},
      {"rpcs served", absl::StrCat(info.counters().rpcs_served())},
  });
  Print(g, info, table);
  return kOk;
}

int Version(const Globals& g, const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("version takes no arguments");
  v1::GetVersionResponse client;
  client.set_version(kVersion);
  client.set_git_revision(kGitRevision);
  client.set_api_version(kApiVersion);
  client.set_build_type(kBuildType);
  std::string client_line = absl::StrCat("agentctl ", kVersion, " (", kGitRevision, ", ",
                                         kBuildType, ", API ", kApiVersion, ")\n");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) {
    Print(g, client, client_line);
    return Fail(std::string(c.status().message()), kNoConnection);
  }
  auto stub = v1::SystemService::NewStub(c->channel());
  v1::GetVersionResponse server;
  grpc::Status s = stub->GetVersion(c->NewContext().get(), v1::GetVersionRequest(), &server);
  if (!s.ok()) return RpcFailed("GetVersion", s);
  // One document holding both, for json/yaml: {"client": …, "server": …}.
  if (g.format == Format::kTable) {
    std::fputs(client_line.c_str(), stdout);
    std::printf("agentd   %s (%s, %s, API %s)\n", server.version().c_str(),
                server.git_revision().c_str(), server.build_type().c_str(),
                server.api_version().c_str());
  } else {
    nlohmann::json both = {{"client", nlohmann::json::parse(ToJson(client))},
                           {"server", nlohmann::json::parse(ToJson(server))}};
    std::fputs(g.format == Format::kJson ? (both.dump(2) + "\n").c_str() : JsonToYaml(both).c_str(),
               stdout);
  }
  return kOk;
}

int ConfigCmd(const Globals& g, const std::vector<std::string>& args) {
  if (args.empty()) return Usage("config needs a subcommand: validate FILE, default, reload");
  const std::string& sub = args[0];
  if (sub == "validate") {
    if (args.size() != 2) return Usage("usage: agentctl config validate FILE");
    absl::StatusOr<Config> c = LoadConfigFile(args[1]);
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
      return kFailed;
    }
    std::printf("%s: valid (%zu providers, %zu models, %zu roles, %zu agents)\n", args[1].c_str(),
                c->providers.size(), c->models.size(), c->roles.size(), c->agents.size());
    return kOk;
  }
  if (sub == "default") {
    if (args.size() != 1) return Usage("usage: agentctl config default");
    std::fwrite(EmbeddedDefaultConfigText().data(), 1, EmbeddedDefaultConfigText().size(), stdout);
    return kOk;
  }
  if (sub == "reload") {
    if (args.size() != 1) return Usage("usage: agentctl config reload");
    absl::StatusOr<Connection> c = Connection::Connect(g.conn);
    if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
    auto stub = v1::SystemService::NewStub(c->channel());
    v1::ReloadConfigResponse r;
    grpc::Status s = stub->ReloadConfig(c->NewContext().get(), v1::ReloadConfigRequest(), &r);
    if (!s.ok()) return RpcFailed("ReloadConfig", s);
    Print(g, r,
          KeyValues(
              {{"reloaded", r.config_file().empty() ? "<embedded default>" : r.config_file()},
               {"applied", r.applied().empty() ? "(no changes)" : absl::StrJoin(r.applied(), ", ")},
               {"restart required", r.restart_required().empty()
                                        ? "(none)"
                                        : absl::StrJoin(r.restart_required(), ", ")}}));
    return kOk;
  }
  return Usage(absl::StrCat("unknown config subcommand \"", sub, "\""));
}

int Main(int argc, char** argv) {
  Globals g;
  if (const char* v = std::getenv("AGENTD_SOCKET")) g.conn.socket = v;
  if (const char* v = std::getenv("AGENTD_ADDR")) g.conn.addr = v;
  if (const char* v = std::getenv("AGENTD_TOKEN")) g.conn.token = v;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      std::fputs(kUsageText, stdout);
      return kOk;
    }
    std::string name = arg, value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); absl::StartsWith(arg, "--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inline_value = true;
    }
    static const std::vector<std::string> kValued = {
        "--socket", "--addr", "--token", "--token-file", "--tls-ca", "-o", "--output", "--timeout"};
    if (std::find(kValued.begin(), kValued.end(), name) == kValued.end()) {
      if (absl::StartsWith(arg, "-") && arg != "-")
        return Usage(absl::StrCat("unknown flag \"", arg, "\""));
      rest.push_back(arg);
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) return Usage(absl::StrCat(name, " needs a value"));
      value = argv[++i];
    }
    if (name == "--socket")
      g.conn.socket = value;
    else if (name == "--addr")
      g.conn.addr = value;
    else if (name == "--token")
      g.conn.token = value;
    else if (name == "--tls-ca")
      g.conn.tls_ca = value;
    else if (name == "--token-file") {
      absl::StatusOr<std::string> t = ReadTokenFile(value);
      if (!t.ok()) return Fail(std::string(t.status().message()));
      g.conn.token = *t;
    } else if (name == "-o" || name == "--output") {
      absl::StatusOr<Format> f = ParseFormat(value);
      if (!f.ok()) return Usage(std::string(f.status().message()));
      g.format = *f;
    } else if (name == "--timeout") {
      absl::StatusOr<absl::Duration> d = ParseDuration(value);
      if (!d.ok() || *d <= absl::ZeroDuration()) {
        return Usage(
            absl::StrCat("--timeout: ", d.ok() ? "must be positive" : d.status().message()));
      }
      g.conn.timeout = *d;
    }
  }
  if (rest.empty()) return Usage("no command given");
  if (!g.conn.addr.empty() && g.conn.token.empty()) {
    return Usage("--addr needs the admin token: --token TOKEN, --token-file FILE or $AGENTD_TOKEN");
  }
  static const std::map<std::string,
                        std::function<int(const Globals&, const std::vector<std::string>&)>>
      kCommands = {{"status", Status}, {"version", Version}, {"config", ConfigCmd}};
  auto it = kCommands.find(rest[0]);
  if (it == kCommands.end()) return Usage(absl::StrCat("unknown command \"", rest[0], "\""));
  return it->second(g, std::vector<std::string>(rest.begin() + 1, rest.end()));
}

}  // namespace
}  // namespace agentd::ctl

int main(int argc, char** argv) { return agentd::ctl::Main(argc, argv); }
