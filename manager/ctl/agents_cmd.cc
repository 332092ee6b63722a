#include "manager/ctl/agents_cmd.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/config.h"
#include "common/config_view.h"
#include "common/json_dump.h"
#include "common/values.h"
#include "common/version.h"
#include "manager/ctl/connection.h"
#include "manager/ctl/output.h"
#include "manager/ctl/watch.h"
#include "nlohmann/json.hpp"

namespace agentd::ctl {
namespace {

// "3 (2 idle, 1 failed)"
std::string AgentCounts(const v1::DaemonCounters& c) {
  std::vector<std::string> parts;
  std::map<std::string, int64_t> sorted(c.agents_by_state().begin(), c.agents_by_state().end());
  for (const auto& [state, n] : sorted) parts.push_back(absl::StrCat(n, " ", state));
  if (parts.empty()) return absl::StrCat(c.agents());
  return absl::StrCat(c.agents(), " (", absl::StrJoin(parts, ", "), ")");
}

// "auto: 2 bwrap" or "auto: FALLBACK, 1 agent runs tools UNCONFINED (coder-1: …)": the
// policy and the sandbox the registered agents found on their hosts.
std::string SandboxLine(const v1::DaemonCounters& c) {
  std::string policy = c.sandbox_policy().empty() ? "auto" : c.sandbox_policy();
  std::map<std::string, int64_t> by(c.agents_by_sandbox().begin(), c.agents_by_sandbox().end());
  std::vector<std::string> parts;
  if (by["unconfined"] > 0) {
    parts.push_back(absl::StrCat("FALLBACK: ", by["unconfined"], " agent(s) run tools UNCONFINED"));
  }
  if (by["refused"] > 0) {
    parts.push_back(
        absl::StrCat("NOT WORKING: ", by["refused"], " agent(s) fail tasks that run programs"));
  }
  if (by["bwrap"] > 0) parts.push_back(absl::StrCat(by["bwrap"], " agent(s) in bwrap"));
  if (by["off"] > 0) parts.push_back(absl::StrCat(by["off"], " agent(s) unsandboxed by policy"));
  if (parts.empty()) parts.push_back("no agent registered yet");
  std::string line = absl::StrCat(policy, ": ", absl::StrJoin(parts, "; "));
  for (const std::string& p : c.sandbox_problems()) absl::StrAppend(&line, " (", p, ")");
  return line;  // KeyValues escapes it for the terminal
}

// "auto: namespaces" or "auto: NONE, agents run as agentd's user with its state in reach
// (why)": the isolation agent processes start with.
std::string IsolationLine(const v1::DaemonCounters& c) {
  std::string policy = c.isolation_policy().empty() ? "auto" : c.isolation_policy();
  std::string line;
  if (c.agent_isolation() == "namespaces") {
    line = absl::StrCat(policy,
                        ": user, mount and PID namespaces (state dir and admin socket "
                        "out of agents' sight)");
  } else if (c.agent_isolation() == "refused") {
    line = absl::StrCat(policy, ": NOT WORKING: agents do not start");
  } else if (policy == "off") {
    line = "off: agents run as agentd's user, with its state dir and admin socket in reach";
  } else {
    line = absl::StrCat(policy,
                        ": FALLBACK: agents run as agentd's user, with its state dir "
                        "and admin socket in reach");
  }
  if (!c.isolation_problem().empty()) absl::StrAppend(&line, " (", c.isolation_problem(), ")");
  if (!c.isolation_caveat().empty()) absl::StrAppend(&line, "; CAVEAT: ", c.isolation_caveat());
  return line;  // KeyValues escapes it for the terminal
}

// GetInfo from the daemon; kOk, or the exit code after saying what failed.
int FetchInfo(const Globals& g, v1::GetInfoResponse* info) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::SystemService::NewStub(c->channel());
  grpc::Status s = stub->GetInfo(c->NewContext().get(), v1::GetInfoRequest(), info);
  return s.ok() ? kOk : RpcFailed("GetInfo", s);
}

int Status(const Globals& g, const NoOpts&) {
  v1::GetInfoResponse info;
  if (int rc = FetchInfo(g, &info); rc != kOk) return rc;
  const v1::DaemonPaths& p = info.paths();
  std::string state = v1::DaemonState_Name(info.state());
  if (absl::StartsWith(state, "DAEMON_STATE_")) state = absl::AsciiStrToLower(state.substr(13));
  if (!info.failure().empty()) {
    absl::StrAppend(&state, ": ", info.failure(),
                    " (every change is refused; fix it, then restart agentd)");
  }
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
      {"workspaces", p.workspaces_dir()},
      {"agent cgroups", p.agent_cgroup().empty() ? "off" : p.agent_cgroup()},
      {"isolation", IsolationLine(info.counters())},
      {"sandbox", SandboxLine(info.counters())},
      {"database", absl::StrCat(p.database(), " (schema ", info.schema_version(), ")")},
      {"config", p.config_file().empty() ? "<embedded default>" : p.config_file()},
      {"config loaded", TimeString(info.config_loaded_time())},
      {"agents", AgentCounts(info.counters())},
      {"agent restarts", absl::StrCat(info.counters().agent_restarts())},
      {"agent logs", absl::StrCat(FormatByteSize(info.counters().log_bytes()), " written, ",
                                  FormatByteSize(info.counters().log_dropped_bytes()), " dropped")},
      {"active goals", absl::StrCat(info.counters().active_goals())},
      {"events", absl::StrCat(info.counters().last_event_seq())},
      {"rpcs served", absl::StrCat(info.counters().rpcs_served())},
  });
  Print(g, info, table);
  return kOk;
}

// The login link: a one-time code from the daemon (SystemService.CreateLoginCode), good
// for one browser, once, for minutes; the admin token never goes into a link. With
// --revoke-all, ends every web session and voids the unused codes instead.
struct UiOpts {
  bool revoke_all = false;
};

int UiCmd(const Globals& g, const UiOpts& o) {
  const bool revoke = o.revoke_all;
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::SystemService::NewStub(c->channel());
  if (revoke) {
    v1::RevokeWebSessionsResponse resp;
    grpc::Status s =
        stub->RevokeWebSessions(c->NewContext().get(), v1::RevokeWebSessionsRequest(), &resp);
    if (!s.ok()) return RpcFailed("RevokeWebSessions", s);
    Print(g, resp,
          absl::StrCat("revoked ", resp.revoked_sessions(), " web session(s) and ",
                       resp.revoked_codes(), " unused login code(s)\n"));
    return kOk;
  }
  v1::CreateLoginCodeResponse resp;
  grpc::Status s =
      stub->CreateLoginCode(c->NewContext().get(), v1::CreateLoginCodeRequest(), &resp);
  if (!s.ok()) return RpcFailed("CreateLoginCode", s);
  // Printed, not opened: a browser started from here would carry the link in its
  // command line, which every local user can read (and the code is good once anyway).
  if (g.format == Format::kJson) {
    std::printf("%s\n", DumpJson(nlohmann::json{{"url", resp.url()}}).c_str());
  } else {
    std::printf("%s\n", resp.url().c_str());
  }
  return kOk;
}

int Version(const Globals& g, const NoOpts&) {
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
    std::printf("agentd   %s (%s, %s, API %s)\n", TerminalText(server.version()).c_str(),
                TerminalText(server.git_revision()).c_str(),
                TerminalText(server.build_type()).c_str(),
                TerminalText(server.api_version()).c_str());
  } else {
    nlohmann::json both = {{"client", nlohmann::json::parse(ToJson(client))},
                           {"server", nlohmann::json::parse(ToJson(server))}};
    std::fputs(
        g.format == Format::kJson
            ? (both.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n").c_str()
            : JsonToYaml(both).c_str(),
        stdout);
  }
  return kOk;
}

struct ConfigValidateOpts {
  std::string file;
};

int ConfigValidate(const Globals&, const ConfigValidateOpts& o) {
  absl::StatusOr<Config> c = LoadLayeredConfig(o.file);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
    return kFailed;
  }
  std::string dropins;
  if (c->layers.size() > 2) dropins = absl::StrCat(" with ", c->layers.size() - 2, " drop-ins");
  std::string mcp = c->mcp_servers.empty()
                        ? ""
                        : absl::StrCat(", ", c->mcp_servers.size(), " MCP server",
                                       c->mcp_servers.size() == 1 ? "" : "s");
  std::printf("%s%s: valid (%zu providers, %zu models, %zu roles, %zu agents%s)\n", o.file.c_str(),
              dropins.c_str(), c->providers.size(), c->models.size(), c->roles.size(),
              c->agents.size(), mcp.c_str());
  return kOk;
}

struct ConfigViewOpts {
  std::string file;
  bool no_origins = false;
};

// The configuration in force (the daemon's, from GetConfig), or the one FILE would give:
// every layer merged, each value beside where it came from.
int ConfigView(const Globals& g, const ConfigViewOpts& o) {
  v1::GetConfigResponse r;
  if (!o.file.empty()) {
    absl::StatusOr<Config> c = LoadLayeredConfig(o.file);
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", std::string(c.status().message()).c_str());
      return kFailed;
    }
    r.set_yaml(RenderConfigYaml(*c, !o.no_origins));
    for (const std::string& layer : c->layers) r.add_layers(layer);
  } else {
    absl::StatusOr<Connection> c = Connection::Connect(g.conn);
    if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
    auto stub = v1::SystemService::NewStub(c->channel());
    v1::GetConfigRequest req;
    req.set_without_origins(o.no_origins);
    grpc::Status s = stub->GetConfig(c->NewContext().get(), req, &r);
    if (!s.ok()) return RpcFailed("GetConfig", s);
  }
  if (g.format == Format::kJson) {
    std::printf("%s\n", ToJson(r).c_str());
  } else {
    std::fwrite(r.yaml().data(), 1, r.yaml().size(), stdout);
  }
  return kOk;
}

int ConfigDefault(const Globals&, const NoOpts&) {
  std::fwrite(EmbeddedDefaultConfigText().data(), 1, EmbeddedDefaultConfigText().size(), stdout);
  return kOk;
}

int ConfigReload(const Globals& g, const NoOpts&) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::SystemService::NewStub(c->channel());
  v1::ReloadConfigResponse r;
  grpc::Status s = stub->ReloadConfig(c->NewContext().get(), v1::ReloadConfigRequest(), &r);
  if (!s.ok()) return RpcFailed("ReloadConfig", s);
  Print(
      g, r,
      KeyValues(
          {{"reloaded", r.config_file().empty() ? "<embedded default>" : r.config_file()},
           {"applied", r.applied().empty() ? "(no changes)" : absl::StrJoin(r.applied(), ", ")},
           {"restart required",
            r.restart_required().empty() ? "(none)" : absl::StrJoin(r.restart_required(), ", ")}}));
  return kOk;
}

std::string AgentStateName(v1::AgentState s) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::AgentState_Name(s), "AGENT_STATE_"));
}

std::string ExitText(const v1::Agent& a) {
  if (!a.has_last_exit()) return "-";
  const v1::AgentExit& e = a.last_exit();
  if (!e.reason().empty()) return e.reason();
  return e.has_signal() ? absl::StrCat("signal ", e.signal())
                        : absl::StrCat("exit ", e.exit_code());
}

std::string DescribeAgent(const v1::Agent& a) {
  std::vector<std::pair<std::string, std::string>> kv = {
      {"id", a.id()},
      {"role", a.role()},
      {"state", AgentStateName(a.state())},
      {"detail", a.state_detail().empty() ? "-" : a.state_detail()},
      {"pid", a.pid() ? absl::StrCat(a.pid()) : "-"},
      {"started", a.has_start_time() ? TimeString(a.start_time()) : "-"},
      {"uptime", a.has_uptime() ? ShortDuration(a.uptime()) : "-"},
      {"restarts", absl::StrCat(a.restarts())},
      {"heartbeat age",
       a.has_heartbeat_age()
           ? absl::FormatDuration(absl::Seconds(a.heartbeat_age().seconds()) +
                                  absl::Milliseconds(a.heartbeat_age().nanos() / 1000000))
           : "-"},
      {"last exit", ExitText(a)},
      {"last exit at", a.has_last_exit() ? TimeString(a.last_exit().time()) : "-"},
      {"model", a.model().empty() ? "-" : a.model()},
  };
  if (a.has_next_restart_time()) kv.push_back({"next restart", TimeString(a.next_restart_time())});
  std::string out = KeyValues(kv);
  if (a.last_exit().last_log_lines_size() > 0) {
    absl::StrAppend(&out, "last output before the exit (agentctl logs ", a.id(), " has it all):\n");
    for (const std::string& line : a.last_exit().last_log_lines()) {
      absl::StrAppend(&out, "  ", TerminalText(line, Lines::kMany), "\n");
    }
  }
  return out;
}

std::string ConsentStatusName(v1::ConsentStatus s) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::ConsentStatus_Name(s), "CONSENT_STATUS_"));
}

struct GetConsentsOpts {
  bool all = false;
  std::string agent;
  bool watch = false;
};

std::vector<std::string> ConsentRow(const v1::ConsentRequest& r) {
  return {r.id(), r.agent_id(), r.tool(), ConsentStatusName(r.status()), r.summary()};
}

int GetConsents(const Globals& g, const GetConsentsOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::ConsentService::NewStub(c->channel());
  absl::StatusOr<int64_t> seq = o.watch ? CurrentSeq(*c) : 0;
  if (!seq.ok()) return Fail(std::string(seq.status().message()));
  v1::ListConsentRequestsRequest req;
  req.set_include_decided(o.all);
  req.set_agent_id(std::string(absl::StripPrefix(o.agent, "@")));
  v1::ListConsentRequestsResponse all;
  for (;;) {
    v1::ListConsentRequestsResponse page;
    grpc::Status s = stub->ListConsentRequests(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("ListConsentRequests", s);
    for (auto& r : *page.mutable_consent_requests()) *all.add_consent_requests() = std::move(r);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "AGENT", "TOOL", "STATUS", "ASKS"}};
  for (const v1::ConsentRequest& r : all.consent_requests()) rows.push_back(ConsentRow(r));
  if (o.watch) {
    if (g.format != Format::kTable) Print(g, all, "");
    v1::EventFilter filter;
    filter.add_kinds("consent.");
    filter.set_agent_id(req.agent_id());
    // New requests, and what becomes of them (approved, denied, expired).
    return WatchRows(g, *seq, filter, rows,
                     [](const v1::Event& e, std::vector<std::string>* row,
                        const google::protobuf::Message** resource) {
                       if (!e.has_consent_request()) return false;
                       *row = ConsentRow(e.consent_request());
                       *resource = &e.consent_request();
                       return true;
                     });
  }
  Print(g, all,
        all.consent_requests().empty()
            ? (req.include_decided() ? "No consent requests.\n"
                                     : "No pending consent requests (--all shows decided ones).\n")
            : Table(rows));
  return kOk;
}

struct DecideOpts {
  bool approve = false;
  std::string id, reason;
  bool remember = false;
};

int ConsentCmd(const Globals& g, const DecideOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::ConsentService::NewStub(c->channel());
  v1::DecideConsentRequestRequest req;
  req.set_consent_request_id(o.id);
  req.set_decision(o.approve ? v1::CONSENT_DECISION_APPROVE : v1::CONSENT_DECISION_DENY);
  req.set_reason(o.reason);
  req.set_remember_for_goal(o.remember);
  v1::DecideConsentRequestResponse resp;
  grpc::Status s = stub->DecideConsentRequest(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("DecideConsentRequest", s);
  Print(g, resp.consent_request(),
        absl::StrCat("consent request ", resp.consent_request().id(), " ",
                     ConsentStatusName(resp.consent_request().status()), "\n"));
  return kOk;
}

// One request in full, as a person should read it before deciding: the daemon's summary,
// then every detail it was built from, each escaped on its own line.
int DescribeConsent(const Globals& g, const IdOpts& o) {
  const std::string& id = o.id;
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::ConsentService::NewStub(c->channel());
  v1::GetConsentRequestRequest req;
  req.set_consent_request_id(id);
  v1::GetConsentRequestResponse resp;
  grpc::Status s = stub->GetConsentRequest(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("GetConsentRequest", s);
  const v1::ConsentRequest& r = resp.consent_request();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"id", r.id()},
      {"status", ConsentStatusName(r.status())},
      {"asks", r.summary()},
      {"tool", r.tool()},
      {"kind",
       absl::AsciiStrToLower(absl::StripPrefix(v1::ConsentKind_Name(r.kind()), "CONSENT_KIND_"))},
      {"agent", r.agent_id()},
      {"task", r.task_id()},
      {"goal", r.goal_id()},
      {"asked", TimeString(r.create_time())},
  };
  if (r.has_deadline()) kv.push_back({"expires", TimeString(r.deadline())});
  if (r.has_decide_time()) {
    kv.push_back({"decided", absl::StrCat(TimeString(r.decide_time()), " by ", r.decided_by())});
  }
  if (!r.decision_reason().empty()) kv.push_back({"reason", r.decision_reason()});
  if (r.remember_for_goal()) kv.push_back({"remembered", "for the rest of the goal"});
  std::string out = KeyValues(kv);
  std::vector<std::pair<std::string, std::string>> details(r.details().begin(), r.details().end());
  std::sort(details.begin(), details.end());
  out += "details:\n";
  for (const auto& [key, value] : details) {
    absl::StrAppend(&out, "  ", TerminalText(key), ": ", TerminalText(value), "\n");
  }
  Print(g, r, out);
  return kOk;
}

struct GetAgentsOpts {
  std::string role;
  bool watch = false;
};

std::vector<std::string> AgentRow(const v1::Agent& a) {
  return {a.id(),
          a.role(),
          AgentStateName(a.state()),
          a.pid() ? absl::StrCat(a.pid()) : "-",
          a.has_uptime() ? ShortDuration(a.uptime()) : "-",
          absl::StrCat(a.restarts()),
          ExitText(a)};
}

int GetAgents(const Globals& g, const GetAgentsOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  absl::StatusOr<int64_t> seq = o.watch ? CurrentSeq(*c) : 0;
  if (!seq.ok()) return Fail(std::string(seq.status().message()));
  v1::ListAgentsRequest req;
  req.set_role(o.role);
  v1::ListAgentsResponse all;
  for (;;) {
    v1::ListAgentsResponse page;
    grpc::Status s = stub->ListAgents(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("ListAgents", s);
    for (auto& a : *page.mutable_agents()) *all.add_agents() = std::move(a);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ROLE", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT"}};
  for (const v1::Agent& a : all.agents()) rows.push_back(AgentRow(a));
  if (o.watch) {
    if (g.format != Format::kTable) Print(g, all, "");
    v1::EventFilter filter;
    filter.add_kinds("agent.");
    return WatchRows(g, *seq, filter, rows,
                     [&](const v1::Event& e, std::vector<std::string>* row,
                         const google::protobuf::Message** resource) {
                       // agent.activity is a heartbeat's news (what it works on), not a
                       // change of the row.
                       if (!e.has_agent() || e.kind() == "agent.activity" ||
                           (!o.role.empty() && e.agent().role() != o.role)) {
                         return false;
                       }
                       *row = AgentRow(e.agent());
                       *resource = &e.agent();
                       return true;
                     });
  }
  Print(g, all, all.agents().empty() ? "No agents.\n" : Table(rows));
  return kOk;
}

struct DeleteAgentOpts {
  std::string id;
  bool force = false;
};

int DeleteAgentCmd(const Globals& g, const DeleteAgentOpts& o) {
  Globals gg = g;
  // --force waits for the stop, up to the stop timeout (supervision.stop_timeout, which
  // this client does not know): give the call room for a long one.
  if (o.force) gg.conn.timeout = std::max(g.conn.timeout, absl::Minutes(15));
  absl::StatusOr<Connection> c = Connection::Connect(gg.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  v1::DeleteAgentRequest req;
  req.set_agent_id(o.id);
  req.set_force(o.force);
  v1::DeleteAgentResponse resp;
  grpc::Status s =
      v1::AgentService::NewStub(c->channel())->DeleteAgent(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("DeleteAgent", s);
  Print(g, resp.agent(), absl::StrCat("agent ", resp.agent().id(), " deleted\n"));
  return kOk;
}

int DescribeAgentCmd(const Globals& g, const IdOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  v1::GetAgentRequest req;
  req.set_agent_id(o.id);
  v1::GetAgentResponse resp;
  grpc::Status s = stub->GetAgent(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("GetAgent", s);
  Print(g, resp.agent(), DescribeAgent(resp.agent()));
  return kOk;
}

struct StartOpts {
  std::string role, id;
};

int StartCmd(const Globals& g, const StartOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  v1::StartAgentRequest req;
  req.set_role(o.role);
  req.set_agent_id(o.id);
  v1::StartAgentResponse resp;
  grpc::Status s = stub->StartAgent(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("StartAgent", s);
  Print(g, resp.agent(),
        absl::StrCat("agent ", resp.agent().id(), " ", AgentStateName(resp.agent().state()),
                     resp.agent().pid() ? absl::StrCat(", pid ", resp.agent().pid()) : "", "\n"));
  return kOk;
}

struct StopOpts {
  bool restart = false;
  std::string id, timeout;
  bool no_wait = false;
};

int StopCmd(const Globals& g, const StopOpts& o) {
  const bool restart = o.restart;
  absl::Duration timeout = o.timeout.empty() ? absl::ZeroDuration() : DurationValue(o.timeout);
  Globals gg = g;
  // Waiting for a stop takes up to the stop timeout: give the call room for it.
  gg.conn.timeout = std::max(g.conn.timeout, timeout + absl::Minutes(1));
  absl::StatusOr<Connection> c = Connection::Connect(gg.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  google::protobuf::Duration pd;
  pd.set_seconds(absl::ToInt64Seconds(timeout));
  pd.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(timeout) % 1000000000));
  v1::Agent agent;
  grpc::Status s;
  if (restart) {
    v1::RestartAgentRequest req;
    req.set_agent_id(o.id);
    *req.mutable_timeout() = pd;
    v1::RestartAgentResponse resp;
    s = stub->RestartAgent(c->NewContext().get(), req, &resp);
    agent = resp.agent();
  } else {
    v1::StopAgentRequest req;
    req.set_agent_id(o.id);
    *req.mutable_timeout() = pd;
    req.set_wait(!o.no_wait);
    v1::StopAgentResponse resp;
    s = stub->StopAgent(c->NewContext().get(), req, &resp);
    agent = resp.agent();
  }
  if (!s.ok()) return RpcFailed(restart ? "RestartAgent" : "StopAgent", s);
  Print(g, agent,
        absl::StrCat("agent ", agent.id(), " ", AgentStateName(agent.state()),
                     agent.pid() ? absl::StrCat(", pid ", agent.pid()) : "", "\n"));
  return kOk;
}

}  // namespace

void AddAgentCommands(const CommandTree& t) {
  {
    CLI::App* cmd = AddCommand(t.root, "status", "the daemon's state, uptime, paths and counters",
                               "Examples:\n  agentctl status\n"
                               "  agentctl status -o json | jq .paths");
    OnRun(t, cmd, Status);
  }
  {
    CLI::App* cmd = AddCommand(t.root, "version", "agentctl's and agentd's versions",
                               "agentctl --version prints agentctl's alone, with no daemon.");
    OnRun(t, cmd, Version);
  }
  {
    CLI::App* cmd = AddCommand(
        t.root, "ui", "a web UI login link",
        "The link carries a one-time code: good for one browser, once, within 10 minutes;\n"
        "the admin token never goes into a link. It is printed, not opened: a browser\n"
        "started from here would show the link in its command line to every local user.\n\n"
        "Examples:\n  agentctl ui\n  agentctl ui --revoke-all   # log every browser out");
    auto o = OnRun(t, cmd, UiCmd);
    cmd->add_flag("--revoke-all", o->revoke_all,
                  "end every web session and void the unused login codes");
  }
  {
    CLI::App* config = AddCommand(t.root, "config", "check, print or reload the configuration");
    config->require_subcommand(1);
    CLI::App* validate =
        AddCommand(config, "validate", "check a configuration file (no daemon needed)",
                   "FILE is read over the embedded default, and FILE.d/*.yaml over it in name\n"
                   "order, as agentd --config FILE reads them. Every problem is reported as\n"
                   "FILE:LINE:COL: what is wrong.\n\n"
                   "Example:\n  agentctl config validate /etc/agentd/agentd.yaml");
    auto v = OnRun(t, validate, ConfigValidate);
    validate->add_option("FILE", v->file, "the YAML file")->required()->check(CLI::ExistingFile);
    CLI::App* view = AddCommand(
        config, "view", "the configuration in force, each value with where it came from",
        "Without FILE, agentd's own: the embedded default, its --config file and that file's\n"
        "drop-ins (FILE.d/*.yaml, in name order) merged, and its command-line flags applied.\n"
        "With FILE, what agentd would run with given --config FILE (no daemon needed).\n"
        "Each value is followed by its origin: FILE:LINE:COL, a flag, or \"default\".\n\n"
        "Examples:\n  agentctl config view\n"
        "  agentctl config view /etc/agentd/agentd.yaml | grep -A3 '^  coder:'");
    auto vo = OnRun(t, view, ConfigView);
    view->add_option("FILE", vo->file, "a configuration file")->check(CLI::ExistingFile);
    view->add_flag("--no-origins", vo->no_origins, "leave out the origin comments");
    OnRun(t,
          AddCommand(config, "default", "print the built-in default configuration",
                     "Example:\n  agentctl config default > my-agentd.yaml"),
          ConfigDefault);
    OnRun(t,
          AddCommand(config, "reload", "make agentd re-read its configuration file",
                     "The same as kill -HUP <agentd pid>; what needs a restart is listed."),
          ConfigReload);
  }
  {
    CLI::App* cmd =
        AddCommand(t.get, "agents", "the supervised agents: state, pid, uptime, restarts",
                   "Examples:\n  agentctl get agents\n  agentctl get agents --role coder -o yaml\n"
                   "  agentctl get agents -w   # then each change, until Ctrl-C");
    cmd->alias("agent");
    auto o = OnRun(t, cmd, GetAgents);
    cmd->add_option("--role", o->role, "only agents of this role")->type_name("ROLE");
    cmd->add_flag("-w,--watch", o->watch, "after the list, print each agent as it changes");
  }
  {
    CLI::App* cmd = AddCommand(t.describe, "agent", "one agent in full, with its last exit",
                               "Example:\n  agentctl describe agent coder-1");
    auto o = OnRun(t, cmd, DescribeAgentCmd);
    cmd->add_option("AGENT", o->id, "the agent's id")->required()->type_name("AGENT");
  }
  {
    CLI::App* cmd =
        AddCommand(t.root, "start", "start an agent of ROLE, or start a stopped agent again",
                   "A new agent is named ROLE-N unless --id says otherwise.\n\n"
                   "Examples:\n  agentctl start coder\n  agentctl start coder --id coder-fast");
    auto o = OnRun(t, cmd, StartCmd);
    cmd->add_option("ROLE", o->role, "a role from the config, or a stopped agent's id")
        ->required()
        ->type_name("ROLE");
    cmd->add_option("--id", o->id, "the new agent's id");
  }
  {
    CLI::App* del = AddCommand(t.root, "delete", "remove a stopped agent from agentd's records");
    del->require_subcommand(1);
    CLI::App* cmd = AddCommand(
        del, "agent", "remove a stopped agent from agentd's records",
        "A running agent is refused unless --force, which stops it first. An agent the\n"
        "configuration's agents: lists cannot be deleted. Its log and sessions go with it.\n\n"
        "Examples:\n  agentctl delete agent coder-3\n  agentctl delete agent coder-3 --force");
    auto o = OnRun(t, cmd, DeleteAgentCmd);
    cmd->add_option("AGENT", o->id, "the agent's id")->required()->type_name("AGENT");
    cmd->add_flag("--force", o->force, "stop it first if it runs");
  }
  for (bool restart : {false, true}) {
    CLI::App* cmd = AddCommand(
        t.root, restart ? "restart" : "stop",
        restart ? "stop an agent and start it again" : "stop an agent: SIGTERM, then SIGKILL",
        restart
            ? "Example:\n  agentctl restart coder-1"
            : "SIGTERM to the agent, SIGKILL to everything it started (its cgroup or process\n"
              "group) after the stop timeout (supervision.stop_timeout, or --timeout).\n\n"
              "Examples:\n  agentctl stop coder-1\n  agentctl stop coder-1 --timeout 2s --no-wait");
    auto o = OnRun(t, cmd, StopCmd);
    o->restart = restart;
    cmd->add_option("AGENT", o->id, "the agent's id")->required()->type_name("AGENT");
    cmd->add_option("--timeout", o->timeout, "SIGKILL after D (default: supervision.stop_timeout)")
        ->check(kPositiveDuration)
        ->type_name("DURATION");
    if (!restart) cmd->add_flag("--no-wait", o->no_wait, "return once SIGTERM is sent");
  }
  {
    CLI::App* cmd = AddCommand(
        t.get, "consents", "agents' requests for what only a person may grant",
        "Examples:\n  agentctl get consents\n  agentctl get consents --all --agent coder-1");
    cmd->alias("consent");
    auto o = OnRun(t, cmd, GetConsents);
    cmd->add_flag("--all", o->all, "decided and expired ones too");
    cmd->add_option("--agent", o->agent, "only this agent's")->type_name("AGENT");
    cmd->add_flag("-w,--watch", o->watch,
                  "after the list, print each request as it comes and is decided");
  }
  {
    CLI::App* cmd =
        AddCommand(t.describe, "consent", "one request in full: what it asks and every detail",
                   "Example:\n  agentctl describe consent consent-3");
    auto o = OnRun(t, cmd, DescribeConsent);
    cmd->add_option("CONSENT", o->id, "the request's id")->required()->type_name("CONSENT");
  }
  {
    CLI::App* consent = AddCommand(t.root, "consent", "approve or deny an agent's request");
    consent->require_subcommand(1);
    for (bool approve : {true, false}) {
      CLI::App* cmd = AddCommand(
          consent, approve ? "approve" : "deny",
          approve ? "grant the request" : "refuse the request",
          approve ? "A request nobody decides expires, denied. --remember also approves the same\n"
                    "request (same tool and details) for the rest of its goal.\n\n"
                    "Example:\n  agentctl consent approve consent-3 --reason \"once\""
                  : "Example:\n  agentctl consent deny consent-3 --reason \"no network\"");
      auto o = OnRun(t, cmd, ConsentCmd);
      o->approve = approve;
      cmd->add_option("CONSENT", o->id, "the request's id")->required()->type_name("CONSENT");
      cmd->add_option("--reason", o->reason, "recorded with the decision, shown to the agent");
      if (approve) cmd->add_flag("--remember", o->remember, "for the rest of the goal");
    }
  }
}

}  // namespace agentd::ctl
