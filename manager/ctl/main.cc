// agentctl: the command-line client for agentd. See `agentctl --help`.
//
// Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 cannot connect to agentd.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agentd/v1/agents.grpc.pb.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/logs.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "common/config.h"
#include "common/json_dump.h"
#include "common/token.h"
#include "common/values.h"
#include "common/version.h"
#include "manager/ctl/cli.h"
#include "manager/ctl/connection.h"
#include "manager/ctl/output.h"
#include "manager/ctl/tasks_cmd.h"
#include "nlohmann/json.hpp"

namespace agentd::ctl {
namespace {

constexpr char kUsageText[] = R"(usage: agentctl [global flags] COMMAND [args]

Commands:
  status                    the daemon's state, uptime, paths and counters
  ui [--revoke-all]         a web UI login link (a one-time code: one browser, once, within
                            10 minutes); --revoke-all logs every browser out
  version                   agentctl's and agentd's versions
  config validate FILE      check a configuration file (no daemon needed)
  config default            print the built-in default configuration
  config reload             make agentd re-read its configuration file
  get agents [--role R]     the supervised agents: state, pid, uptime, restarts
  describe agent ID         one agent in full, with its last exit
  start ROLE [--id ID]      start an agent of ROLE (or start a stopped agent again)
  stop ID [--no-wait] [--timeout D]
                            SIGTERM, then SIGKILL after the stop timeout
  restart ID                stop and start again
  get consents [--all] [--agent ID]
                            agents' requests for what only a person may grant
  describe consent C        one request in full: what it asks and every detail
  consent approve|deny ID [--reason TEXT] [--remember]
                            decide one (a request nobody decides expires: denied);
                            --remember also approves the same request (same tool and
                            details) for the rest of its goal
  logs ID [-f] [--tail N] [--after-seq N] [--stream S] [--timestamps]
                            an agent's output (S: stdout, stderr or agentd); -f follows;
                            -o json prints one record per line, with its seq
  goal "TEXT" [--workspace DIR] [--approve auto|manual] [--budget USD] [--tokens N]
       [--title T] [--check CMD]... [--check-rounds N] [--wait] [--timeout D]
                            give the team a goal (DIR: a git repo, worked on in a branch
                            of its own, or a new directory); --check CMD: a command agentd
                            runs in the workspace (sandboxed) once the goal is done; it
                            completes only if every check exits 0, a failure goes back
                            to the CEO up to N times (policy.max_check_rounds); --wait
                            shows progress on stderr and the result on stdout, exit 0
                            only if completed (and checked)
  get tasks [--goal G] [--tree]
                            goals and the tasks under them
  describe task T           one task in full, with its result or failure
  get plans [--goal G]      plans agents proposed, with their estimates
  describe plan P           one plan's steps, deps and estimates
  approve P [--comment C]   approve a proposed plan: its steps become tasks
  reject P --reason TEXT    reject it; the reason goes back to the proposer to revise
  cancel T [--reason TEXT]  cancel a task (or goal) and everything under it
  pause GOAL | resume GOAL  hold or release the scheduling of a goal's tasks
  retry T                   make a failed or canceled task ready again
  usage [--by role|model|goal|agent|task] [--goal G]
                            LLM tokens and cost
  budget get|set GOAL | --role R | --global [--usd N] [--tokens N]
                            a budget's limits and use; set changes the limits given, and
                            a goal held at its budget (BUDGET_REACHED) goes on
  bootstrap TEMPLATE DIR [--no-wait] [--timeout D]
                            a new project from a template (python-fastapi, cpp-cmake…)
                            with its own tests run; no model involved
  audit [--goal G] [--actor A] [--action X] [--verify]
                            the hash-chained record of side effects, grants and admin
                            actions; --verify recomputes the chain (exit 1 if broken)
  send @AGENT|role:NAME|human "TEXT" [--task T] [--reply-to ID]
                            a message on the bus (answer an agent's question with
                            --reply-to its message id)
  messages [--goal G] [--task T] [--agent A]
                            the messages on the bus

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

int Status(const Globals& g, const std::vector<std::string>& args) {
  if (!args.empty()) return Usage("status takes no arguments");
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
int UiCmd(const Globals& g, const std::vector<std::string>& args) {
  bool revoke = false;
  for (const std::string& a : args) {
    if (a == "--revoke-all") {
      revoke = true;
    } else {
      return Usage(absl::StrCat("ui: unknown argument \"", a, "\" (ui [--revoke-all])"));
    }
  }
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
    std::printf("agentd   %s (%s, %s, API %s)\n", TerminalText(server.version()).c_str(),
                TerminalText(server.git_revision()).c_str(),
                TerminalText(server.build_type()).c_str(),
                TerminalText(server.api_version()).c_str());
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

int GetConsents(const Globals& g, const CmdArgs& args) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::ConsentService::NewStub(c->channel());
  v1::ListConsentRequestsRequest req;
  req.set_include_decided(args.flags.count("--all") > 0);
  req.set_agent_id(args.flags.count("--agent") ? args.flags.at("--agent") : "");
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
  for (const v1::ConsentRequest& r : all.consent_requests()) {
    rows.push_back({r.id(), r.agent_id(), r.tool(), ConsentStatusName(r.status()), r.summary()});
  }
  Print(g, all,
        all.consent_requests().empty()
            ? (req.include_decided() ? "No consent requests.\n"
                                     : "No pending consent requests (--all shows decided ones).\n")
            : Table(rows));
  return kOk;
}

int ConsentCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--reason"}, {"--remember"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 2 ||
      (parsed->positional[0] != "approve" && parsed->positional[0] != "deny")) {
    return Usage("usage: agentctl consent approve|deny ID [--reason TEXT] [--remember]");
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::ConsentService::NewStub(c->channel());
  v1::DecideConsentRequestRequest req;
  req.set_consent_request_id(parsed->positional[1]);
  req.set_decision(parsed->positional[0] == "approve" ? v1::CONSENT_DECISION_APPROVE
                                                      : v1::CONSENT_DECISION_DENY);
  if (auto r = parsed->flags.find("--reason"); r != parsed->flags.end()) req.set_reason(r->second);
  req.set_remember_for_goal(parsed->flags.count("--remember") > 0);
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
int DescribeConsent(const Globals& g, const std::string& id) {
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

int Get(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--role", "--agent", "--goal"}, {"--all", "--tree"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() == 1 &&
      (parsed->positional[0] == "consents" || parsed->positional[0] == "consent")) {
    return GetConsents(g, *parsed);
  }
  if (parsed->positional.size() == 1 &&
      (parsed->positional[0] == "tasks" || parsed->positional[0] == "task")) {
    return GetTasks(g, *parsed);
  }
  if (parsed->positional.size() == 1 &&
      (parsed->positional[0] == "plans" || parsed->positional[0] == "plan")) {
    return GetPlans(g, *parsed);
  }
  if (parsed->positional.size() != 1 ||
      (parsed->positional[0] != "agents" && parsed->positional[0] != "agent")) {
    return Usage(
        "usage: agentctl get agents [--role ROLE] | get consents [--all] [--agent ID] | get "
        "tasks [--goal G] [--tree]");
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  v1::ListAgentsRequest req;
  req.set_role(parsed->flags["--role"]);
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
  for (const v1::Agent& a : all.agents()) {
    rows.push_back({a.id(), a.role(), AgentStateName(a.state()),
                    a.pid() ? absl::StrCat(a.pid()) : "-",
                    a.has_uptime() ? ShortDuration(a.uptime()) : "-", absl::StrCat(a.restarts()),
                    ExitText(a)});
  }
  Print(g, all, all.agents().empty() ? "No agents.\n" : Table(rows));
  return kOk;
}

int Describe(const Globals& g, const std::vector<std::string>& args) {
  if (args.size() == 2 && args[0] == "task") return DescribeTask(g, args[1]);
  if (args.size() == 2 && args[0] == "plan") return DescribePlan(g, args[1]);
  if (args.size() == 2 && args[0] == "consent") return DescribeConsent(g, args[1]);
  if (args.size() != 2 || args[0] != "agent") {
    return Usage(
        "usage: agentctl describe agent ID | describe task T | describe plan P | describe "
        "consent C");
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  v1::GetAgentRequest req;
  req.set_agent_id(args[1]);
  v1::GetAgentResponse resp;
  grpc::Status s = stub->GetAgent(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("GetAgent", s);
  Print(g, resp.agent(), DescribeAgent(resp.agent()));
  return kOk;
}

int StartCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--id"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 1) return Usage("usage: agentctl start ROLE [--id ID]");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AgentService::NewStub(c->channel());
  v1::StartAgentRequest req;
  req.set_role(parsed->positional[0]);
  req.set_agent_id(parsed->flags["--id"]);
  v1::StartAgentResponse resp;
  grpc::Status s = stub->StartAgent(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("StartAgent", s);
  Print(g, resp.agent(),
        absl::StrCat("agent ", resp.agent().id(), " ", AgentStateName(resp.agent().state()),
                     resp.agent().pid() ? absl::StrCat(", pid ", resp.agent().pid()) : "", "\n"));
  return kOk;
}

int StopCmd(const Globals& g, const std::vector<std::string>& args, bool restart) {
  auto parsed = ParseCmdArgs(args, {"--timeout"}, {"--no-wait"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  const char* usage = restart ? "usage: agentctl restart ID [--timeout D]"
                              : "usage: agentctl stop ID [--no-wait] [--timeout D]";
  if (parsed->positional.size() != 1) return Usage(usage);
  absl::Duration timeout = absl::ZeroDuration();
  if (auto t = parsed->flags.find("--timeout"); t != parsed->flags.end()) {
    absl::StatusOr<absl::Duration> d = ParseDuration(t->second);
    if (!d.ok()) return Usage(absl::StrCat("--timeout: ", d.status().message()));
    timeout = *d;
  }
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
    req.set_agent_id(parsed->positional[0]);
    *req.mutable_timeout() = pd;
    v1::RestartAgentResponse resp;
    s = stub->RestartAgent(c->NewContext().get(), req, &resp);
    agent = resp.agent();
  } else {
    v1::StopAgentRequest req;
    req.set_agent_id(parsed->positional[0]);
    *req.mutable_timeout() = pd;
    req.set_wait(parsed->flags.count("--no-wait") == 0);
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

int Logs(const Globals& g, const std::vector<std::string>& args) {
  std::vector<std::string> expanded;
  for (const std::string& a : args) expanded.push_back(a == "-f" ? "--follow" : a);
  auto parsed =
      ParseCmdArgs(expanded, {"--tail", "--after-seq", "--stream"}, {"--follow", "--timestamps"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 1) {
    return Usage(
        "usage: agentctl logs ID [-f] [--tail N] [--after-seq N] [--stream stdout|stderr|agentd] "
        "[--timestamps]");
  }
  v1::StreamLogsRequest req;
  req.set_agent_id(parsed->positional[0]);
  req.set_follow(parsed->flags.count("--follow") > 0);
  for (const char* flag : {"--tail", "--after-seq"}) {
    auto it = parsed->flags.find(flag);
    if (it == parsed->flags.end()) continue;
    int64_t n = 0;
    if (!absl::SimpleAtoi(it->second, &n) || n < 0 || (flag[2] == 't' && n > INT32_MAX)) {
      return Usage(absl::StrCat(flag, " takes a whole number, not \"", it->second, "\""));
    }
    if (flag[2] == 't') {
      req.set_tail(static_cast<int32_t>(n));
    } else {
      req.set_after_seq(n);
    }
  }
  if (auto it = parsed->flags.find("--stream"); it != parsed->flags.end()) {
    for (absl::string_view s : absl::StrSplit(it->second, ',')) {
      if (s == "stdout") {
        req.add_streams(v1::LOG_STREAM_STDOUT);
      } else if (s == "stderr") {
        req.add_streams(v1::LOG_STREAM_STDERR);
      } else if (s == "agentd" || s == "system") {
        req.add_streams(v1::LOG_STREAM_SYSTEM);
      } else {
        return Usage(absl::StrCat("--stream takes stdout, stderr or agentd, not \"", s, "\""));
      }
    }
  }
  bool timestamps = parsed->flags.count("--timestamps") > 0;
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::LogService::NewStub(c->channel());
  std::unique_ptr<grpc::ClientContext> ctx = c->NewContext(/*deadline=*/false);
  std::unique_ptr<grpc::ClientReader<v1::StreamLogsResponse>> reader =
      stub->StreamLogs(ctx.get(), req);
  v1::StreamLogsResponse resp;
  std::string out;
  bool line_start = true;  // false while a line split over several records is printed
  while (reader->Read(&resp)) {
    if (resp.has_gap()) {
      const v1::LogGap& gap = resp.gap();
      std::fflush(stdout);
      std::fprintf(
          stderr, "agentctl: records %lld-%lld are missing (%s%s)\n",
          static_cast<long long>(gap.from_seq()), static_cast<long long>(gap.to_seq()),
          gap.reason() == v1::LOG_GAP_REASON_RETENTION     ? "deleted by retention"
          : gap.reason() == v1::LOG_GAP_REASON_WRITE_ERROR ? "agentd could not write them"
                                                           : "not recorded",
          gap.bytes_lost() > 0 ? absl::StrCat(", ", gap.bytes_lost(), " bytes").c_str() : "");
    }
    out.clear();
    for (const v1::LogRecord& r : resp.records()) {
      if (g.format != Format::kTable) {
        absl::StrAppend(&out, ToJson(r, /*multiline=*/false), "\n");
        continue;
      }
      if (timestamps && line_start) {
        absl::StrAppend(&out, absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ ",
                                               absl::FromUnixSeconds(r.time().seconds()) +
                                                   absl::Nanoseconds(r.time().nanos()),
                                               absl::UTCTimeZone()));
      }
      if (r.stream() == v1::LOG_STREAM_SYSTEM && line_start) out += "[agentd] ";
      out += TerminalText(r.line(), Lines::kMany);
      // A record that goes on in the next one (a line over agentd's line limit) is joined.
      if (!r.truncated()) out += '\n';
      line_start = !r.truncated();
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (req.follow()) std::fflush(stdout);
  }
  grpc::Status s = reader->Finish();
  std::fflush(stdout);
  if (!s.ok()) return RpcFailed("StreamLogs", s);
  return kOk;
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
    // After the command word, flags that are not global belong to the command; so does
    // --timeout for stop and restart (their stop timeout).
    bool command_flag =
        !rest.empty() && (std::find(kValued.begin(), kValued.end(), name) == kValued.end() ||
                          (name == "--timeout" && (rest[0] == "stop" || rest[0] == "restart" ||
                                                   rest[0] == "goal" || rest[0] == "bootstrap")));
    if (command_flag || !absl::StartsWith(arg, "-") || arg == "-") {
      rest.push_back(arg);
      continue;
    }
    if (std::find(kValued.begin(), kValued.end(), name) == kValued.end()) {
      return Usage(absl::StrCat("unknown flag \"", arg, "\""));
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
      kCommands = {
          {"status", Status},
          {"version", Version},
          {"ui", UiCmd},
          {"config", ConfigCmd},
          {"get", Get},
          {"describe", Describe},
          {"logs", Logs},
          {"consent", ConsentCmd},
          {"start", StartCmd},
          {"goal", GoalCmd},
          {"cancel", CancelCmd},
          {"retry", RetryCmd},
          {"usage", UsageCmd},
          {"send", SendCmd},
          {"audit", AuditCmd},
          {"budget", BudgetCmd},
          {"bootstrap", BootstrapCmd},
          {"approve", ApproveCmd},
          {"reject", RejectCmd},
          {"messages", MessagesCmd},
          {"pause", [](const Globals& gl,
                       const std::vector<std::string>& a) { return PauseCmd(gl, a, true); }},
          {"resume", [](const Globals& gl,
                        const std::vector<std::string>& a) { return PauseCmd(gl, a, false); }},
          {"stop", [](const Globals& gl,
                      const std::vector<std::string>& a) { return StopCmd(gl, a, false); }},
          {"restart", [](const Globals& gl, const std::vector<std::string>& a) {
             return StopCmd(gl, a, true);
           }}};
  auto it = kCommands.find(rest[0]);
  if (it == kCommands.end()) return Usage(absl::StrCat("unknown command \"", rest[0], "\""));
  return it->second(g, std::vector<std::string>(rest.begin() + 1, rest.end()));
}

}  // namespace
}  // namespace agentd::ctl

int main(int argc, char** argv) { return agentd::ctl::Main(argc, argv); }
