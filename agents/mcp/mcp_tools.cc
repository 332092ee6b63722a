#include "agents/mcp/mcp_tools.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "agents/llm/types.h"
#include "agents/mcp/client.h"
#include "agents/mcp/connection.h"
#include "agents/tools/shell.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "spdlog/spdlog.h"

namespace agentd::mcp {

using nlohmann::json;

namespace {

constexpr absl::Duration kFirstBackoff = absl::Seconds(1);
constexpr absl::Duration kMaxBackoff = absl::Seconds(30);
// A server that stayed up this long starts its backoff over when it dies.
constexpr absl::Duration kStableAfter = absl::Seconds(30);
// A call waits this long at most for a restart whose backoff has not passed; longer, and
// it fails at once saying when the server comes back.
constexpr absl::Duration kWaitForRestart = absl::Seconds(5);
constexpr absl::Duration kListTimeout = absl::Seconds(30);
// The arguments of a destructive call a person is shown, at most (agentd takes 4,096
// bytes of one consent detail).
constexpr size_t kMaxConsentArguments = 4000;

}  // namespace

class McpHub::Server {
 public:
  Server(ServerSpec spec, std::string workspace, tools::ShellOptions shell,
         const std::map<std::string, std::string>& keys)
      : spec_(std::move(spec)), workspace_(std::move(workspace)), shell_(std::move(shell)) {
    for (const auto& [var, key] : spec_.env) {
      auto it = keys.find(key);
      if (it == keys.end()) {
        spdlog::warn("MCP server {}: ${} is not set in agentd's environment; {} is left unset",
                     spec_.name, key, var);
        continue;
      }
      env_.push_back(absl::StrCat(var, "=", it->second));
    }
    for (const auto& [header, key] : spec_.headers) {
      auto it = keys.find(key);
      if (it == keys.end()) {
        spdlog::warn("MCP server {}: ${} is not set in agentd's environment; header {} is not sent",
                     spec_.name, key, header);
        continue;
      }
      headers_.push_back(absl::StrCat(header, ": ", it->second));
    }
  }
  ~Server() { Close(); }

  const ServerSpec& spec() const { return spec_; }
  const std::string& workspace() const { return workspace_; }
  bool Serves(const ServerSpec& spec, const std::string& workspace,
              const tools::ShellOptions& shell) const {
    return workspace == workspace_ && spec.command == spec_.command && spec.args == spec_.args &&
           spec.url == spec_.url && spec.env == spec_.env && spec.headers == spec_.headers &&
           spec.read_only_paths == spec_.read_only_paths && spec.network == spec_.network &&
           shell.sandbox == shell_.sandbox && shell.sandbox_broken == shell_.sandbox_broken;
  }

  // The running client: started, or started again after it died (waiting out a short
  // backoff). Errors: UNAVAILABLE saying why and when it is tried again; CANCELLED.
  absl::StatusOr<std::shared_ptr<McpClient>> Client(const llm::CancelToken* cancel) {
    absl::MutexLock l(&mu_);
    for (;;) {
      if (closed_)
        return absl::UnavailableError(absl::StrCat("MCP server ", spec_.name, " was stopped"));
      if (client_ != nullptr && client_->alive()) return client_;
      absl::Time now = absl::Now();
      if (client_ != nullptr) {
        // It died since it was last used.
        if (now - started_ > kStableAfter) failures_ = 0;
        Failed(client_->why(), now);
        client_.reset();
      }
      if (now >= retry_after_) break;
      absl::Duration wait = retry_after_ - now;
      if (wait > kWaitForRestart) {
        return absl::UnavailableError(absl::StrCat(
            "MCP server ", spec_.name, " is down (", last_error_, "); it is started again in ",
            absl::FormatDuration(absl::Ceil(wait, absl::Seconds(1)))));
      }
      mu_.Unlock();
      bool cancelled = cancel != nullptr ? cancel->WaitFor(wait) : (absl::SleepFor(wait), false);
      mu_.Lock();
      if (cancelled) return absl::CancelledError("the task was canceled");
      // Looked at again: another call may have started it, or failed and pushed the next
      // try further out, meanwhile.
    }
    absl::Status s = Start(cancel);
    if (s.code() == absl::StatusCode::kCancelled) return s;  // not the server's failure
    if (!s.ok()) {
      Failed(std::string(s.message()), absl::Now());
      return absl::UnavailableError(s.message());
    }
    return client_;
  }

  // The server's tools, listed again when it said they changed or it was restarted.
  absl::StatusOr<std::vector<ToolInfo>> Tools(const llm::CancelToken* cancel) {
    absl::StatusOr<std::shared_ptr<McpClient>> c = Client(cancel);
    if (!c.ok()) return c.status();
    absl::MutexLock l(&list_mu_);
    if (listed_for_ == (*c)->generation() && !(*c)->tools_changed()) return tools_;
    absl::StatusOr<std::vector<ToolInfo>> t = (*c)->ListTools(kListTimeout, cancel);
    if (!t.ok()) {
      return absl::Status(t.status().code(), absl::StrCat("MCP server ", spec_.name,
                                                          ": tools/list: ", t.status().message()));
    }
    tools_ = *std::move(t);
    listed_for_ = (*c)->generation();
    return tools_;
  }

  void Close() {
    std::shared_ptr<McpClient> c;
    {
      absl::MutexLock l(&mu_);
      closed_ = true;
      c = std::move(client_);
    }
    if (c != nullptr) c->Close();
  }

 private:
  void Failed(const std::string& why, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_error_ = why;
    absl::Duration backoff = kFirstBackoff;
    for (int i = 0; i < failures_ && backoff < kMaxBackoff; ++i) backoff *= 2;
    backoff = std::min(backoff, kMaxBackoff);
    ++failures_;
    retry_after_ = now + backoff;
    spdlog::warn("MCP server {} is down: {} (tried again after {})", spec_.name, why,
                 absl::FormatDuration(backoff));
  }

  absl::StatusOr<std::unique_ptr<Connection>> Connect() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    changed_ = std::make_shared<std::atomic<bool>>(false);
    NotificationHandler on_note = McpClient::ChangeHandler(changed_, spec_.name);
    if (!spec_.url.empty()) {
      HttpOptions o;
      o.name = spec_.name;
      o.url = spec_.url;
      o.headers = headers_;
      o.on_notification = on_note;
      return NewHttpConnection(std::move(o));
    }
    std::vector<std::string> argv = {spec_.command};
    argv.insert(argv.end(), spec_.args.begin(), spec_.args.end());
    tools::ShellOptions o = shell_;
    o.network = spec_.network;
    o.read_only_binds = spec_.read_only_paths;
    o.env = env_;
    absl::StatusOr<tools::SandboxedCommand> cmd = tools::SandboxCommand(argv, workspace_, o);
    if (!cmd.ok()) {
      return absl::UnavailableError(
          absl::StrCat("MCP server ", spec_.name, " is not started: ", cmd.status().message()));
    }
    if (!cmd->sandboxed && shell_.sandbox != "off") {
      spdlog::warn("MCP server {} runs NOT SANDBOXED: {}", spec_.name, cmd->unconfined_why);
    }
    StdioOptions so;
    so.name = spec_.name;
    so.argv = std::move(cmd->argv);
    so.env = std::move(cmd->env);
    so.cwd = workspace_;
    so.on_notification = on_note;
    return StartStdio(std::move(so));
  }

  absl::Status Start(const llm::CancelToken* cancel) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (int round = 0; round < 2; ++round) {
      absl::StatusOr<std::unique_ptr<Connection>> conn = Connect();
      if (!conn.ok()) return conn.status();
      auto client = std::make_shared<McpClient>(spec_.name, *std::move(conn), ++generation_);
      client->set_change_flag(changed_);
      McpClient::OpenOptions oo;
      oo.probe = !legacy_known_;
      bool died_on_probe = false;
      absl::Status s = client->Open(oo, &died_on_probe, cancel);
      if (!s.ok()) {
        client->Close();
        if (died_on_probe) {
          legacy_known_ = true;  // and once more, straight to initialize
          continue;
        }
        return s;
      }
      if (client->era() == McpClient::Era::kLegacy) legacy_known_ = true;
      client_ = std::move(client);
      started_ = absl::Now();
      return absl::OkStatus();
    }
    return absl::UnavailableError(
        absl::StrCat("MCP server ", spec_.name, " keeps ending at start"));
  }

  const ServerSpec spec_;
  const std::string workspace_;
  const tools::ShellOptions shell_;
  std::vector<std::string> env_;      // NAME=value, secrets
  std::vector<std::string> headers_;  // "Name: value", secrets

  absl::Mutex mu_;
  std::shared_ptr<McpClient> client_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<std::atomic<bool>> changed_ ABSL_GUARDED_BY(mu_);
  bool legacy_known_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // of the clients started
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time retry_after_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time started_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);

  absl::Mutex list_mu_;
  int64_t listed_for_ ABSL_GUARDED_BY(list_mu_) = 0;  // the client generation tools_ came from
  std::vector<ToolInfo> tools_ ABSL_GUARDED_BY(list_mu_);
};

namespace {

class McpTool final : public tools::Tool {
 public:
  McpTool(std::shared_ptr<McpHub::Server> server, ToolInfo info, bool named_in_grant)
      : server_(std::move(server)), info_(std::move(info)), named_in_grant_(named_in_grant) {
    name_ = absl::StrCat("mcp:", server_->spec().name, "/", info_.name);
    schema_ = info_.input_schema;
    // JSON Schema allows what it does not name unless it says otherwise; agentd's own
    // argument check is strict unless the schema says so.
    if (!schema_.contains("additionalProperties")) schema_["additionalProperties"] = true;
  }

  std::string name() const override { return name_; }
  std::string description() const override {
    return info_.description.empty()
               ? absl::StrCat("Tool ", info_.name, " of MCP server ", server_->spec().name)
               : info_.description;
  }
  json schema() const override { return schema_; }
  bool side_effect() const override { return !info_.read_only; }
  bool idempotent() const override { return info_.idempotent; }

  tools::ToolResult Run(const json& args, const tools::ToolContext& ctx) const override {
    if (!info_.read_only && info_.destructive && !named_in_grant_) {
      // The server marks it destructive and the role granted the whole server, not this
      // tool by name: a person decides, on exactly these arguments.
      if (ctx.consent == nullptr) {
        return {absl::StrCat(name_,
                             ": not run: the server marks it destructive, and no person "
                             "can be asked here"),
                true};
      }
      std::string shown = DumpJson(args);
      if (shown.size() > kMaxConsentArguments) {
        // A person decides on what they are shown, and the decision binds to it: a cut
        // would let what follows the cut through unseen.
        return {absl::StrCat(name_,
                             ": not run: the server marks it destructive, and its "
                             "arguments (",
                             shown.size(),
                             " bytes) are too long to show a person "
                             "(at most ",
                             kMaxConsentArguments, "); pass less"),
                true};
      }
      tools::ConsentAsk ask;
      ask.tool = name_;
      ask.kind = tools::ConsentKind::kDestructiveTool;
      ask.summary = absl::StrCat("call ", name_, " (marked destructive by its server)");
      ask.details = {{"server", server_->spec().name}, {"tool", info_.name}, {"arguments", shown}};
      ask.request_id = ctx.call_id;
      absl::StatusOr<bool> ok = ctx.consent->Ask(ask, ctx.cancel);
      if (!ok.ok()) {
        return {absl::StrCat(name_, ": not run: ", ok.status().message()), true};
      }
      if (!*ok) {
        return {absl::StrCat(name_,
                             ": not run: a person declined it (the server marks the tool "
                             "destructive). Do the work another way, or fail the task saying "
                             "why."),
                true};
      }
    }
    absl::StatusOr<std::shared_ptr<McpClient>> client = server_->Client(ctx.cancel);
    if (!client.ok()) return {absl::StrCat(name_, ": not run: ", client.status().message()), true};
    size_t cap = ctx.shell != nullptr ? ctx.shell->output_cap : size_t{64} << 10;
    absl::StatusOr<CallResult> r = (*client)->CallTool(
        info_.name, args, server_->spec().call_timeout, ctx.cancel, cap, ctx.traceparent);
    if (r.ok()) return {r->text, r->is_error};
    const absl::Status& s = r.status();
    switch (s.code()) {
      case absl::StatusCode::kDeadlineExceeded:
        return {absl::StrCat(name_, ": the server gave no answer within ",
                             absl::FormatDuration(server_->spec().call_timeout),
                             "; the call was cancelled (it may have done part of its work)"),
                true};
      case absl::StatusCode::kCancelled:
        return {absl::StrCat(name_, ": cancelled: ", s.message()), true};
      case absl::StatusCode::kUnavailable:
        return {absl::StrCat(name_, ": the server failed during the call (", s.message(),
                             "); it is started again for the next call, and the call may have "
                             "done part of its work"),
                true};
      case absl::StatusCode::kDataLoss:
        return {absl::StrCat(name_, ": the server's answer is malformed: ", s.message()), true};
      default:
        return {absl::StrCat(name_, ": ", s.message()), true};
    }
  }

 private:
  std::shared_ptr<McpHub::Server> server_;
  ToolInfo info_;
  bool named_in_grant_;
  std::string name_;
  json schema_;
};

}  // namespace

McpHub::McpHub(std::map<std::string, std::string> keys) : keys_(std::move(keys)) {}

McpHub::~McpHub() { CloseAll(); }

void McpHub::CloseAll() {
  for (auto& [name, s] : servers_) s->Close();
  servers_.clear();
}

std::vector<std::unique_ptr<tools::Tool>> McpHub::ToolsFor(
    const std::vector<ServerSpec>& servers, const std::vector<std::string>& grants,
    const std::string& workspace, const tools::ShellOptions& shell,
    const std::vector<std::string>& existing_wire_names, const tools::ConsentAsker* consent,
    const llm::CancelToken* cancel, std::vector<std::string>* problems) {
  // What the role grants, per server: every tool, and the tools it names.
  std::map<std::string, std::pair<bool, std::set<std::string>>> granted;
  for (const std::string& g : grants) {
    if (!absl::StartsWith(g, "mcp:")) continue;
    std::string rest = g.substr(4);
    size_t slash = rest.find('/');
    auto& entry = granted[rest.substr(0, slash)];
    if (slash == std::string::npos) {
      entry.first = true;
    } else {
      entry.second.insert(rest.substr(slash + 1));
    }
  }
  // Servers of another workspace or setup are stopped (one task at a time).
  for (auto it = servers_.begin(); it != servers_.end();) {
    const ServerSpec* spec = nullptr;
    for (const ServerSpec& s : servers) {
      if (s.name == it->first) spec = &s;
    }
    if (spec == nullptr || granted.count(it->first) == 0 ||
        !it->second->Serves(*spec, workspace, shell)) {
      it->second->Close();
      it = servers_.erase(it);
    } else {
      ++it;
    }
  }
  std::set<std::string> wire(existing_wire_names.begin(), existing_wire_names.end());
  std::vector<std::unique_ptr<tools::Tool>> out;
  for (const auto& [server, grant] : granted) {
    const ServerSpec* spec = nullptr;
    for (const ServerSpec& s : servers) {
      if (s.name == server) spec = &s;
    }
    if (spec == nullptr) {
      problems->push_back(
          absl::StrCat("MCP server ", server, " is granted but agentd did not describe it"));
      continue;
    }
    if (!spec->url.empty() && !spec->network) {
      // The agent reaching out over the network: a person's decision, unless config
      // grants it (mcp_servers.<name>.network).
      if (consent == nullptr) {
        problems->push_back(absl::StrCat("MCP server ", server, " at ", spec->url,
                                         " needs network access, and no person can be asked"));
        continue;
      }
      tools::ConsentAsk ask;
      ask.tool = absl::StrCat("mcp:", server);
      ask.kind = tools::ConsentKind::kNetwork;
      ask.summary = absl::StrCat("connect to MCP server ", server, " at ", spec->url);
      ask.details = {{"server", server}, {"url", spec->url}};
      ask.request_id = absl::StrCat("mcp-network/", server);
      absl::StatusOr<bool> ok = consent->Ask(ask, cancel);
      if (!ok.ok() || !*ok) {
        problems->push_back(absl::StrCat("MCP server ", server, " at ", spec->url, " is not used: ",
                                         ok.ok() ? "a person declined network access to it"
                                                 : std::string(ok.status().message())));
        continue;
      }
    }
    std::shared_ptr<Server>& srv = servers_[server];
    if (srv == nullptr) srv = std::make_shared<Server>(*spec, workspace, shell, keys_);
    absl::StatusOr<std::vector<ToolInfo>> tools = srv->Tools(cancel);
    if (!tools.ok()) {
      problems->push_back(std::string(tools.status().message()));
      continue;
    }
    std::set<std::string> listed;
    for (const ToolInfo& t : *tools) {
      listed.insert(t.name);
      bool named = grant.second.count(t.name) != 0;
      if (!grant.first && !named) continue;
      auto tool = std::make_unique<McpTool>(srv, t, named);
      std::string w = llm::WireToolName(tool->name());
      if (!wire.insert(w).second) {
        problems->push_back(absl::StrCat(tool->name(), " is left out: the model would know it as ",
                                         w, ", the name of another tool"));
        continue;
      }
      out.push_back(std::move(tool));
    }
    for (const std::string& t : grant.second) {
      if (listed.count(t) == 0) {
        problems->push_back(absl::StrCat("MCP server ", server, " lists no tool \"", t,
                                         "\" (the role grants mcp:", server, "/", t, ")"));
      }
    }
  }
  return out;
}

}  // namespace agentd::mcp
