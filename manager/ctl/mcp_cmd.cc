#include "manager/ctl/mcp_cmd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "common/version.h"
#include "manager/ctl/watch.h"
#include "nlohmann/json.hpp"

namespace agentd::ctl {
namespace {

using nlohmann::json;

constexpr char kModern[] = "2026-07-28";
const std::vector<std::string>& LegacyRevisions() {
  static const auto* v = new std::vector<std::string>{"2025-11-25", "2025-06-18", "2025-03-26"};
  return *v;
}
constexpr char kMetaVersion[] = "io.modelcontextprotocol/protocolVersion";
// JSON-RPC's codes, and 2026-07-28's for a revision the server does not speak.
constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601,
              kInvalidParams = -32602, kUnsupportedVersion = -32022;
// A line from the client longer than this is refused (a runaway client), and so is a call
// beyond this many at once.
constexpr size_t kMaxLine = 4u << 20;
constexpr int kMaxCalls = 32;

constexpr char kInstructions[] =
    "agentd runs a team of LLM agents (CEO, Manager, Coders, Testers…) on goals. Submit a "
    "goal with submit_goal, follow it with get_goal or wait_goal, and act as the person in "
    "the loop: plans that wait for approval (list_plans, approve_plan, reject_plan) and "
    "consent requests (list_consent_requests, decide_consent).";

json Schema(json properties, std::vector<std::string> required) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

json Tools() {
  auto tool = [](const char* name, const char* title, const char* description, json schema,
                 bool read_only, bool destructive) {
    return json{{"name", name},
                {"title", title},
                {"description", description},
                {"inputSchema", std::move(schema)},
                {"annotations",
                 {{"readOnlyHint", read_only},
                  {"destructiveHint", destructive},
                  {"idempotentHint", read_only},
                  {"openWorldHint", false}}}};
  };
  json id = {{"type", "string"}};
  return json::array({
      tool("submit_goal", "Submit a goal",
           "Hands agentd's team a goal. Returns the goal (its id, e.g. g-1, and workspace).",
           Schema({{"text", {{"type", "string"}, {"description", "what to do"}}},
                   {"workspace",
                    {{"type", "string"},
                     {"description", "absolute path of a git repository or a new directory"}}},
                   {"checks",
                    {{"type", "array"},
                     {"items", {{"type", "string"}}},
                     {"description", "commands agentd runs before the goal counts as done"}}},
                   {"approval",
                    {{"type", "string"},
                     {"enum", {"auto", "manual"}},
                     {"description", "who approves plans: policy (auto) or a person"}}},
                   {"budget_usd", {{"type", "number"}, {"description", "spend limit"}}}},
                  {"text"}),
           false, false),
      tool("get_goal", "Get a goal", "The goal and every task under it, as they stand now.",
           Schema({{"goal_id", id}}, {"goal_id"}), true, false),
      tool("wait_goal", "Wait for a goal",
           "Waits until the goal ends (completed, failed or canceled) or timeout_seconds pass; "
           "returns the goal. Sends progress notifications when given a progress token.",
           Schema({{"goal_id", id},
                   {"timeout_seconds",
                    {{"type", "integer"}, {"description", "default 600, at most 3600"}}}},
                  {"goal_id"}),
           true, false),
      tool("cancel_goal", "Cancel a goal", "Cancels the goal and every task under it.",
           Schema({{"goal_id", id}, {"reason", {{"type", "string"}}}}, {"goal_id"}), false, true),
      tool("list_plans", "List plans",
           "Plans the agents proposed; by default those that wait for a person's approval.",
           Schema({{"goal_id", id},
                   {"all",
                    {{"type", "boolean"},
                     {"description",
                      "every plan, not only those "
                      "that wait"}}}},
                  {}),
           true, false),
      // The decisions below are a person's: marked destructive, so that an MCP host asks
      // its user before a model makes them.
      tool("approve_plan", "Approve a plan", "Approves a proposed plan: its steps start.",
           Schema({{"plan_id", id}, {"comment", {{"type", "string"}}}}, {"plan_id"}), false, true),
      tool("reject_plan", "Reject a plan",
           "Rejects a proposed plan with a reason; the agent that proposed it plans again.",
           Schema({{"plan_id", id}, {"reason", {{"type", "string"}}}}, {"plan_id", "reason"}),
           false, true),
      tool("list_consent_requests", "List consent requests",
           "What agents ask a person to allow (a command off the allowlist, network, a path "
           "outside the workspace, a destructive tool); by default those still pending.",
           Schema({{"goal_id", id}, {"all", {{"type", "boolean"}}}}, {}), true, false),
      tool("decide_consent", "Decide a consent request",
           "Approves or denies a consent request; the agent goes on either way.",
           Schema({{"consent_request_id", id},
                   {"approve", {{"type", "boolean"}}},
                   {"reason", {{"type", "string"}}},
                   {"remember_for_goal",
                    {{"type", "boolean"},
                     {"description", "the same request later in the same goal is decided alike"}}}},
                  {"consent_request_id", "approve"}),
           false, true),
  });
}

// The JSON of a message, as agentctl -o json prints it.
json AsJson(const google::protobuf::Message& m) { return json::parse(ToJson(m, false)); }

bool Final(v1::TaskStatus s) {
  return s == v1::TASK_STATUS_COMPLETED || s == v1::TASK_STATUS_FAILED ||
         s == v1::TASK_STATUS_CANCELED;
}

// What a tool call returned: structured content, shown as text too; or an error for the
// model to read.
struct ToolOutput {
  json structured;
  std::string error;
};

ToolOutput RpcError(const char* what, const grpc::Status& s) {
  return {json(),
          absl::StrCat(what, " failed: ",
                       absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
                       ": ", s.error_message())};
}

std::string Str(const json& args, const char* key) {
  auto it = args.find(key);
  return it != args.end() && it->is_string() ? it->get<std::string>() : std::string();
}
bool Bool(const json& args, const char* key) {
  auto it = args.find(key);
  return it != args.end() && it->is_boolean() && it->get<bool>();
}

class Server {
 public:
  explicit Server(const Globals& g) : g_(g) {}

  int Run() {
    std::string line;
    bool too_long = false;
    while (ReadLine(&line, &too_long)) {
      if (too_long) {
        Send({{"jsonrpc", "2.0"},
              {"id", nullptr},
              {"error", {{"code", kInvalidRequest}, {"message", "message too long"}}}});
        continue;
      }
      if (!IsValidUtf8(line)) line = ValidUtf8(line);
      if (!JsonNestingWithin(line, kMaxJsonNesting)) {
        Send({{"jsonrpc", "2.0"},
              {"id", nullptr},
              {"error", {{"code", kInvalidRequest}, {"message", "message nested too deep"}}}});
        continue;
      }
      json m = json::parse(line, nullptr, false);
      if (m.is_discarded()) {
        if (!absl::StripAsciiWhitespace(line).empty()) {
          Send({{"jsonrpc", "2.0"},
                {"id", nullptr},
                {"error", {{"code", kParseError}, {"message", "not JSON"}}}});
        }
        continue;
      }
      try {
        Handle(m);
      } catch (const std::exception& e) {  // a shape no check foresaw: this message fails alone
        Send({{"jsonrpc", "2.0"},
              {"id", nullptr},
              {"error", {{"code", kInvalidRequest}, {"message", Utf8Prefix(e.what(), 200, "…")}}}});
      }
    }
    // stdin closed: the client is done. Calls still running are cancelled and awaited.
    absl::MutexLock l(&mu_);
    for (auto& [id, c] : calls_) {
      if (!c->HasBeenNotified()) c->Notify();
    }
    mu_.Await(absl::Condition(
        +[](int* n) { return *n == 0; }, &running_));
    return kOk;
  }

 private:
  // The next line of stdin, read in blocks: a line over kMaxLine is skipped to its end
  // (`*too_long`) instead of being held whole. False at the end of input.
  bool ReadLine(std::string* line, bool* too_long) {
    line->clear();
    *too_long = false;
    for (;;) {
      size_t nl = in_.find('\n', in_pos_);
      if (nl != std::string::npos) {
        if (!*too_long) line->append(in_, in_pos_, nl - in_pos_);
        in_pos_ = nl + 1;
        return true;
      }
      if (!*too_long) line->append(in_, in_pos_, std::string::npos);
      in_.clear();
      in_pos_ = 0;
      if (line->size() > kMaxLine) {
        *too_long = true;
        line->clear();
      }
      char buf[64 << 10];
      ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return !line->empty() && !*too_long;  // a last line without its newline
      in_.assign(buf, static_cast<size_t>(n));
    }
  }

  void Send(const json& m) {
    std::string out = DumpJson(m);
    out.push_back('\n');
    absl::MutexLock l(&out_mu_);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  // `modern`: the request was of revision 2026-07-28, whose results say their type.
  void Reply(const json& id, json result, bool modern) {
    if (modern && result.is_object()) {
      result["resultType"] = "complete";
      if (!result.contains("_meta")) {
        result["_meta"] = {{"io.modelcontextprotocol/serverInfo", ServerInfo()}};
      }
    }
    Send({{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}});
  }
  void Error(const json& id, int code, const std::string& message, json data = nullptr) {
    json e = {{"code", code}, {"message", message}};
    if (!data.is_null()) e["data"] = std::move(data);
    Send({{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(e)}});
  }

  json ServerInfo() const {
    return {{"name", "agentd"}, {"title", "agentd"}, {"version", kVersion}};
  }

  void Handle(const json& m) {
    if (!m.is_object() || Str(m, "jsonrpc") != "2.0") {
      Send({{"jsonrpc", "2.0"},
            {"id", nullptr},
            {"error", {{"code", kInvalidRequest}, {"message", "not a JSON-RPC 2.0 message"}}}});
      return;
    }
    auto method_it = m.find("method");
    if (method_it == m.end() || !method_it->is_string()) return;  // a response: none expected
    const std::string method = method_it->get<std::string>();
    json params = m.contains("params") && m["params"].is_object() ? m["params"] : json::object();
    auto id_it = m.find("id");
    if (id_it == m.end()) {  // a notification
      if (method == "notifications/cancelled") {
        json rid = params.contains("requestId") ? params["requestId"] : json();
        absl::MutexLock l(&mu_);
        if (auto c = calls_.find(DumpJson(rid));
            c != calls_.end() && !c->second->HasBeenNotified()) {
          c->second->Notify();
        }
      }
      return;
    }
    const json id = *id_it;
    if (!id.is_string() && !id.is_number_integer()) {
      Error(nullptr, kInvalidRequest, "a request's id must be a string or an integer");
      return;
    }
    // The new revision names itself in every request.
    const json meta =
        params.contains("_meta") && params["_meta"].is_object() ? params["_meta"] : json::object();
    bool modern = false;
    if (meta.contains(kMetaVersion)) {
      json v = meta[kMetaVersion];
      if (!v.is_string() || v.get<std::string>() != kModern) {
        Error(id, kUnsupportedVersion, "unsupported protocol version",
              {{"supported", {kModern}}, {"requested", v}});
        return;
      }
      modern = true;
    } else if (method == "server/discover") {
      Error(id, kInvalidParams,
            absl::StrCat("server/discover needs _meta[\"", kMetaVersion, "\"]"));
      return;
    }
    if (method == "initialize") {
      std::string asked = Str(params, "protocolVersion");
      std::string version = LegacyRevisions().front();
      for (const std::string& r : LegacyRevisions()) {
        if (r == asked) version = r;
      }
      Reply(id,
            {{"protocolVersion", version},
             {"capabilities", {{"tools", {{"listChanged", false}}}}},
             {"serverInfo", ServerInfo()},
             {"instructions", kInstructions}},
            false);
    } else if (method == "server/discover") {
      Reply(id,
            {{"supportedVersions", {kModern}},
             {"capabilities", {{"tools", json::object()}}},
             {"instructions", kInstructions},
             {"ttlMs", 3600000},
             {"cacheScope", "public"},
             {"_meta", {{"io.modelcontextprotocol/serverInfo", ServerInfo()}}}},
            true);
    } else if (method == "ping") {
      Reply(id, json::object(), modern);
    } else if (method == "tools/list") {
      json result = {{"tools", Tools()}};
      if (modern) {
        // The new revision's lists say how long they may be cached: these tools are fixed
        // for this binary.
        result["ttlMs"] = 3600000;
        result["cacheScope"] = "public";
      }
      Reply(id, std::move(result), modern);
    } else if (method == "tools/call") {
      StartCall(id, params, modern);
    } else {
      Error(id, kMethodNotFound, absl::StrCat("method not found: ", Utf8Prefix(method, 100, "…")));
    }
  }

  void StartCall(const json& id, const json& params, bool modern) {
    std::string name = Str(params, "name");
    json args = params.contains("arguments") ? params["arguments"] : json::object();
    if (args.is_null()) args = json::object();
    if (!args.is_object()) {
      Error(id, kInvalidParams, "arguments must be an object");
      return;
    }
    bool known = false;
    for (const json& t : Tools()) known = known || t["name"] == name;
    if (!known) {
      Error(id, kInvalidParams, absl::StrCat("unknown tool: ", Utf8Prefix(name, 100, "…")));
      return;
    }
    json progress;
    if (params.contains("_meta") && params["_meta"].is_object() &&
        params["_meta"].contains("progressToken")) {
      progress = params["_meta"]["progressToken"];
      if (!progress.is_string() && !progress.is_number_integer()) progress = json();
    }
    auto cancel = std::make_shared<absl::Notification>();
    std::string key = DumpJson(id);
    {
      absl::MutexLock l(&mu_);
      if (running_ >= kMaxCalls) {
        Error(id, kInvalidRequest,
              absl::StrCat("too many calls at once (", kMaxCalls, "); wait for one to end"));
        return;
      }
      if (calls_.count(key) != 0) {
        Error(id, kInvalidRequest, "a call with this id is still running");
        return;
      }
      calls_[key] = cancel;
      ++running_;
    }
    std::thread([this, id, key, name, args, progress, cancel, modern] {
      ToolOutput out = Call(name, args, progress, *cancel);
      if (!cancel->HasBeenNotified()) {  // a cancelled request gets no answer
        if (!out.error.empty()) {
          Reply(id, {{"content", {{{"type", "text"}, {"text", out.error}}}}, {"isError", true}},
                modern);
        } else {
          json structured =
              out.structured.is_object() ? out.structured : json{{"result", out.structured}};
          Reply(id,
                {{"content", {{{"type", "text"}, {"text", DumpJson(structured)}}}},
                 {"structuredContent", structured}},
                modern);
        }
      }
      absl::MutexLock l(&mu_);
      calls_.erase(key);
      --running_;
    }).detach();
  }

  ToolOutput Call(const std::string& name, const json& args, const json& progress,
                  const absl::Notification& cancel) {
    absl::StatusOr<Connection> c = Connection::Connect(g_.conn);
    if (!c.ok()) return {json(), std::string(c.status().message())};
    if (name == "submit_goal") {
      v1::SubmitGoalRequest req;
      req.set_text(Str(args, "text"));
      if (std::string ws = Str(args, "workspace"); !ws.empty()) {
        if (ws[0] != '/') return {json(), "workspace must be an absolute path"};
        struct stat st {};
        bool repo = stat((ws + "/.git").c_str(), &st) == 0;
        req.mutable_workspace()->set_kind(repo ? v1::WORKSPACE_KIND_EXISTING_REPO
                                               : v1::WORKSPACE_KIND_NEW_DIRECTORY);
        req.mutable_workspace()->set_path(ws);
      }
      if (args.contains("checks") && args["checks"].is_array()) {
        for (const json& ch : args["checks"]) {
          if (ch.is_string()) req.add_checks(ch.get<std::string>());
        }
      }
      std::string approval = Str(args, "approval");
      if (approval == "auto") req.set_approval_policy(v1::APPROVAL_POLICY_AUTO);
      if (approval == "manual") req.set_approval_policy(v1::APPROVAL_POLICY_MANUAL);
      if (args.contains("budget_usd") && args["budget_usd"].is_number()) {
        req.mutable_budget()->set_max_cost_usd(args["budget_usd"].get<double>());
      }
      v1::SubmitGoalResponse resp;
      grpc::Status s =
          v1::TaskService::NewStub(c->channel())->SubmitGoal(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("SubmitGoal", s);
      return {AsJson(resp.goal()), ""};
    }
    if (name == "get_goal") return GetGoal(*c, Str(args, "goal_id"));
    if (name == "wait_goal") {
      int64_t secs = args.contains("timeout_seconds") && args["timeout_seconds"].is_number_integer()
                         ? args["timeout_seconds"].get<int64_t>()
                         : 600;
      secs = std::clamp<int64_t>(secs, 1, 3600);
      return WaitGoal(*c, Str(args, "goal_id"), absl::Seconds(secs), progress, cancel);
    }
    if (name == "cancel_goal") {
      v1::CancelTaskRequest req;
      req.set_task_id(Str(args, "goal_id"));
      req.set_reason(Str(args, "reason").empty() ? "canceled through agentctl mcp"
                                                 : Str(args, "reason"));
      v1::CancelTaskResponse resp;
      grpc::Status s =
          v1::TaskService::NewStub(c->channel())->CancelTask(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("CancelTask", s);
      return {AsJson(resp.task()), ""};
    }
    if (name == "list_plans") {
      v1::ListPlansRequest req;
      req.set_goal_id(Str(args, "goal_id"));
      if (!Bool(args, "all")) req.add_statuses(v1::PLAN_STATUS_PROPOSED);
      req.set_page_size(100);
      v1::ListPlansResponse resp;
      grpc::Status s =
          v1::PlanService::NewStub(c->channel())->ListPlans(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("ListPlans", s);
      json out = AsJson(resp);
      if (!out.contains("plans")) out["plans"] = json::array();
      return {out, ""};
    }
    if (name == "approve_plan") {
      v1::ApprovePlanRequest req;
      req.set_plan_id(Str(args, "plan_id"));
      req.set_comment(Str(args, "comment"));
      v1::ApprovePlanResponse resp;
      grpc::Status s =
          v1::PlanService::NewStub(c->channel())->ApprovePlan(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("ApprovePlan", s);
      return {AsJson(resp), ""};
    }
    if (name == "reject_plan") {
      v1::RejectPlanRequest req;
      req.set_plan_id(Str(args, "plan_id"));
      req.set_reason(Str(args, "reason"));
      v1::RejectPlanResponse resp;
      grpc::Status s =
          v1::PlanService::NewStub(c->channel())->RejectPlan(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("RejectPlan", s);
      return {AsJson(resp), ""};
    }
    if (name == "list_consent_requests") {
      v1::ListConsentRequestsRequest req;
      req.set_goal_id(Str(args, "goal_id"));
      req.set_include_decided(Bool(args, "all"));
      req.set_page_size(100);
      v1::ListConsentRequestsResponse resp;
      grpc::Status s = v1::ConsentService::NewStub(c->channel())
                           ->ListConsentRequests(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("ListConsentRequests", s);
      json out = AsJson(resp);
      if (!out.contains("consentRequests")) out["consentRequests"] = json::array();
      return {out, ""};
    }
    if (name == "decide_consent") {
      v1::DecideConsentRequestRequest req;
      req.set_consent_request_id(Str(args, "consent_request_id"));
      req.set_decision(Bool(args, "approve") ? v1::CONSENT_DECISION_APPROVE
                                             : v1::CONSENT_DECISION_DENY);
      req.set_reason(Str(args, "reason"));
      req.set_remember_for_goal(Bool(args, "remember_for_goal"));
      v1::DecideConsentRequestResponse resp;
      grpc::Status s = v1::ConsentService::NewStub(c->channel())
                           ->DecideConsentRequest(c->NewContext().get(), req, &resp);
      if (!s.ok()) return RpcError("DecideConsentRequest", s);
      return {AsJson(resp), ""};
    }
    return {json(), absl::StrCat("unknown tool ", name)};
  }

  ToolOutput GetGoal(const Connection& c, const std::string& goal_id) {
    auto stub = v1::TaskService::NewStub(c.channel());
    v1::GetTaskRequest get;
    get.set_task_id(goal_id);
    v1::GetTaskResponse goal;
    grpc::Status s = stub->GetTask(c.NewContext().get(), get, &goal);
    if (!s.ok()) return RpcError("GetTask", s);
    v1::ListTasksRequest list;
    list.set_goal_id(goal_id);
    list.set_page_size(500);
    v1::ListTasksResponse tasks;
    s = stub->ListTasks(c.NewContext().get(), list, &tasks);
    if (!s.ok()) return RpcError("ListTasks", s);
    json out = {{"goal", AsJson(goal.task())}, {"tasks", json::array()}};
    for (const v1::Task& t : tasks.tasks()) {
      out["tasks"].push_back({{"id", t.id()},
                              {"parentId", t.parent_id()},
                              {"role", t.role()},
                              {"title", t.title()},
                              {"status", v1::TaskStatus_Name(t.status())},
                              {"assignee", t.assignee()}});
    }
    return {out, ""};
  }

  // Follows the goal on the change feed, a second at a time (so that a cancel is seen
  // within one), until it ends or `timeout` passes.
  ToolOutput WaitGoal(const Connection& c, const std::string& goal_id, absl::Duration timeout,
                      const json& progress, const absl::Notification& cancel) {
    absl::StatusOr<int64_t> seq = CurrentSeq(c);
    if (!seq.ok()) return {json(), std::string(seq.status().message())};
    ToolOutput now = GetGoal(c, goal_id);
    if (!now.error.empty()) return now;
    absl::Time deadline = absl::Now() + timeout;
    int64_t after = *seq, events = 0;
    v1::EventFilter filter;
    filter.set_goal_id(goal_id);
    filter.add_kinds("task.");
    filter.add_kinds("goal.");
    bool ended = false;
    auto is_final = [&](const json& goal) {
      v1::TaskStatus st = v1::TASK_STATUS_UNSPECIFIED;
      v1::TaskStatus_Parse(goal.value("status", ""), &st);
      return Final(st);
    };
    ended = is_final(now.structured["goal"]);
    while (!ended && !cancel.HasBeenNotified() && absl::Now() < deadline) {
      absl::Time until = std::min(deadline, absl::Now() + absl::Seconds(1));
      absl::Status s = FollowEvents(g_.conn, after, filter, until, [&](const v1::Event& e) {
        after = e.seq();
        if (!e.has_task()) return true;
        ++events;
        if (!progress.is_null()) {
          Send({{"jsonrpc", "2.0"},
                {"method", "notifications/progress"},
                {"params",
                 {{"progressToken", progress},
                  {"progress", events},
                  {"message",
                   absl::StrCat(e.task().id(), " ", v1::TaskStatus_Name(e.task().status()), ": ",
                                Utf8Prefix(e.task().title(), 200, "…"))}}}});
        }
        if (e.task().id() == goal_id && Final(e.task().status())) ended = true;
        return !ended;
      });
      if (!s.ok() && s.code() != absl::StatusCode::kDeadlineExceeded) {
        return {json(), absl::StrCat("following goal ", goal_id, ": ", s.message())};
      }
    }
    ToolOutput out = GetGoal(c, goal_id);
    if (out.error.empty() && !is_final(out.structured["goal"])) {
      out.structured["stillRunning"] = true;
    }
    return out;
  }

  const Globals& g_;
  absl::Mutex out_mu_;
  absl::Mutex mu_;
  // Calls running, by their request id's JSON: each one's cancel.
  std::map<std::string, std::shared_ptr<absl::Notification>> calls_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::string in_;     // stdin read and not yet split into lines
  size_t in_pos_ = 0;  // where in in_ the next line starts
};

int McpCmd(const Globals& g, const NoOpts&) {
  // Nothing but messages may reach stdout; a client that goes away leaves a broken pipe.
  signal(SIGPIPE, SIG_IGN);
  Server server(g);
  return server.Run();
}

}  // namespace

void AddMcpCommands(const CommandTree& tree) {
  CLI::App* cmd = AddCommand(
      tree.root, "mcp", "serve agentd to MCP clients over stdio",
      "agentd as an MCP server (stdio; revisions 2026-07-28 and 2025-11-25): tools to submit\n"
      "a goal and follow it, list and approve or reject plans, and answer consent requests.\n"
      "Give it to an MCP client as a stdio server, e.g.\n"
      "  {\"command\": \"agentctl\", \"args\": [\"mcp\"]}\n"
      "It uses agentctl's connection (--socket, or --addr with the token).");
  OnRun<NoOpts>(tree, cmd, McpCmd);
}

}  // namespace agentd::ctl
