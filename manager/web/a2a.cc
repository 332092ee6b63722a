#include "manager/web/a2a.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "agentd/v1/consent.grpc.pb.h"
#include "agentd/v1/events.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/system.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "common/json_dump.h"
#include "common/text.h"
#include "grpcpp/client_context.h"
#include "spdlog/spdlog.h"

namespace agentd::web {

using nlohmann::json;

namespace {

// A2A v1.0's error codes (specification §5.4), and JSON-RPC's own.
constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601,
              kInvalidParams = -32602, kInternal = -32603, kTaskNotFound = -32001,
              kTaskNotCancelable = -32002, kPushNotSupported = -32003,
              kUnsupportedOperation = -32004, kExtendedCardNotConfigured = -32007;
constexpr size_t kMaxText = 64 << 10;  // of a goal given over A2A

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  absl::Time at = absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", at, absl::UTCTimeZone());
}

json Error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}
json Result(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

// The text of a message's parts: text parts as they are, data parts as JSON.
std::string TextOf(const json& message) {
  std::vector<std::string> out;
  const json& parts = message.is_object() && message.contains("parts") ? message["parts"] : json();
  if (!parts.is_array()) return "";
  for (const json& p : parts) {
    if (!p.is_object()) continue;
    if (p.contains("text") && p["text"].is_string()) out.push_back(p["text"].get<std::string>());
    if (p.contains("data")) out.push_back(DumpJson(p["data"]));
  }
  return absl::StrJoin(out, "\n");
}

// The first data part's object, if any.
json DataOf(const json& message) {
  const json& parts = message.is_object() && message.contains("parts") ? message["parts"] : json();
  if (!parts.is_array()) return json();
  for (const json& p : parts) {
    if (p.is_object() && p.contains("data") && p["data"].is_object()) return p["data"];
  }
  return json();
}

json AgentMessage(const std::string& task_id, const std::string& message_id,
                  const std::string& text) {
  return {{"messageId", message_id},
          {"contextId", task_id},
          {"taskId", task_id},
          {"role", "ROLE_AGENT"},
          {"parts", json::array({{{"text", text}}})}};
}

}  // namespace

namespace a2a_internal {

std::string StateOf(int task_status, bool input_required) {
  switch (task_status) {
    case v1::TASK_STATUS_COMPLETED:
      return "TASK_STATE_COMPLETED";
    case v1::TASK_STATUS_FAILED:
      return "TASK_STATE_FAILED";
    case v1::TASK_STATUS_CANCELED:
      return "TASK_STATE_CANCELED";
    default:
      break;
  }
  if (input_required) return "TASK_STATE_INPUT_REQUIRED";
  if (task_status == v1::TASK_STATUS_PENDING || task_status == v1::TASK_STATUS_READY) {
    return "TASK_STATE_SUBMITTED";
  }
  return "TASK_STATE_WORKING";
}

bool Approves(absl::string_view text) {
  // The whole answer, not its start: "okay, but do not touch main" is not a yes.
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  while (!t.empty() && (t.back() == '.' || t.back() == '!')) t.pop_back();
  for (absl::string_view yes : {"approve", "approved", "yes", "ok", "allow", "lgtm"}) {
    if (t == yes) return true;
  }
  return false;
}

}  // namespace a2a_internal

// A goal as A2A shows it, with what it waits for.
struct A2aServer::View {
  v1::Task goal;
  std::optional<v1::Plan> plan;               // awaiting approval
  std::optional<v1::ConsentRequest> consent;  // pending
  bool input_required() const { return plan.has_value() || consent.has_value(); }
  std::string state() const { return a2a_internal::StateOf(goal.status(), input_required()); }
  bool terminal() const {
    return goal.status() == v1::TASK_STATUS_COMPLETED || goal.status() == v1::TASK_STATUS_FAILED ||
           goal.status() == v1::TASK_STATUS_CANCELED;
  }
  // What a person is asked, in words.
  std::string Question() const {
    if (plan.has_value()) {
      std::vector<std::string> steps;
      for (const v1::PlanStep& s : plan->steps()) {
        steps.push_back(absl::StrCat("- ", s.id(), " (", s.role(),
                                     "): ", s.title().empty() ? s.instructions() : s.title()));
      }
      return absl::StrCat("Plan ", plan->id(), " awaits approval",
                          plan->summary().empty() ? "" : absl::StrCat(": ", plan->summary()), "\n",
                          absl::StrJoin(steps, "\n"),
                          "\nReply \"approve\", or anything else to reject it (your words are "
                          "the reason).");
    }
    if (consent.has_value()) {
      return absl::StrCat("An agent asks to ", consent->summary(), " (consent request ",
                          consent->id(),
                          "). Reply \"approve\" to allow it, or anything else to "
                          "deny it.");
    }
    return "";
  }
  // The A2A Task.
  json Task() const {
    json status = {{"state", state()}};
    if (goal.has_update_time()) status["timestamp"] = TimeText(goal.update_time());
    std::string question = Question();
    if (!question.empty()) {
      status["message"] = AgentMessage(
          goal.id(), absl::StrCat(goal.id(), "-question-", plan ? plan->id() : consent->id()),
          question);
    } else if (goal.status() == v1::TASK_STATUS_FAILED && goal.has_failure()) {
      status["message"] =
          AgentMessage(goal.id(), absl::StrCat(goal.id(), "-failure"), goal.failure().message());
    }
    json history =
        json::array({{{"messageId", absl::StrCat(goal.id(), "-goal")},
                      {"contextId", goal.id()},
                      {"taskId", goal.id()},
                      {"role", "ROLE_USER"},
                      {"parts", json::array({{{"text", goal.input().instructions()}}})}}});
    if (status.contains("message")) history.push_back(status["message"]);
    json task = {
        {"id", goal.id()}, {"contextId", goal.id()}, {"status", status}, {"history", history}};
    if (goal.status() == v1::TASK_STATUS_COMPLETED) {
      json artifacts =
          json::array({{{"artifactId", absl::StrCat(goal.id(), "-result")},
                        {"name", "result"},
                        {"parts", json::array({{{"text", goal.result().summary()}}})}}});
      int n = 0;
      for (const v1::Artifact& a : goal.result().artifacts()) {
        artifacts.push_back({{"artifactId", absl::StrCat(goal.id(), "-artifact-", ++n)},
                             {"name", a.kind().empty() ? "artifact" : a.kind()},
                             {"description", a.description()},
                             {"parts", json::array({{{"text", a.path()}}})}});
      }
      task["artifacts"] = artifacts;
    }
    task["metadata"] = {{"agentd",
                         {{"goalStatus", v1::TaskStatus_Name(goal.status())},
                          {"workspace", goal.workspace().path()}}}};
    return task;
  }
};

A2aServer::A2aServer(A2aOptions options) : o_(std::move(options)) {}

std::string A2aServer::AgentCard(absl::string_view base_url) const {
  json skills = json::array();
  if (o_.roles) {
    for (const auto& [role, description] : o_.roles()) {
      skills.push_back(
          {{"id", role},
           {"name", role},
           {"description", description.empty() ? absl::StrCat("agentd's ", role) : description},
           {"tags", json::array({"agentd", role})}});
    }
  }
  json interfaces = json::array({{{"url", absl::StrCat(base_url, "/a2a")},
                                  {"protocolBinding", "JSONRPC"},
                                  {"protocolVersion", "1.0"}}});
  if (!o_.grpc_address.empty()) {
    interfaces.push_back(
        {{"url", o_.grpc_address}, {"protocolBinding", "GRPC"}, {"protocolVersion", "1.0"}});
  }
  json card = {
      {"name", o_.name},
      {"description", o_.description.empty()
                          ? "A team of LLM agents (CEO, Manager, Specialists, Coders, Testers) "
                            "that takes a goal, plans it, does it and checks it."
                          : o_.description},
      {"version", o_.version},
      {"supportedInterfaces", interfaces},
      {"capabilities", {{"streaming", true}, {"pushNotifications", false}}},
      {"defaultInputModes", json::array({"text/plain", "application/json"})},
      {"defaultOutputModes", json::array({"text/plain"})},
      {"skills", skills},
      {"securitySchemes", {{"bearer", {{"httpAuthSecurityScheme", {{"scheme", "Bearer"}}}}}}},
      {"securityRequirements",
       json::array({{{"schemes", {{"bearer", {{"list", json::array()}}}}}}})}};
  return DumpJson(card);
}

namespace {

// The in-process API, as the admin.
class Api {
 public:
  Api(std::shared_ptr<grpc::Channel> channel, std::string token)
      : channel_(std::move(channel)), token_(std::move(token)) {}

  std::unique_ptr<grpc::ClientContext> Ctx(absl::Duration timeout = absl::Seconds(10)) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return ctx;
  }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
};

}  // namespace

void A2aServer::Handle(const std::string& body, bool authorized, A2aResponder* out) {
  auto reply = [&](int status, const json& j) { out->Json(status, DumpJson(j)); };
  if (!authorized) {
    return reply(401, Error(nullptr, kInvalidRequest,
                            "unauthenticated: send `Authorization: Bearer <token>` with agentd's "
                            "A2A token (STATE_DIR/a2a.token) or its admin token"));
  }
  std::string text = IsValidUtf8(body) ? body : ValidUtf8(body);
  if (!JsonNestingWithin(text, kMaxJsonNesting)) {
    return reply(200, Error(nullptr, kInvalidRequest, "request nested too deep"));
  }
  json req = json::parse(text, nullptr, false);
  if (req.is_discarded()) return reply(200, Error(nullptr, kParseError, "not JSON"));
  if (!req.is_object() || Str(req, "jsonrpc") != "2.0" || !req.contains("method") ||
      !req["method"].is_string()) {
    return reply(200, Error(nullptr, kInvalidRequest, "not a JSON-RPC 2.0 request"));
  }
  json id = req.contains("id") ? req["id"] : json();
  if (!id.is_null() && !id.is_string() && !id.is_number_integer()) {
    return reply(200, Error(nullptr, kInvalidRequest, "id must be a string or an integer"));
  }
  const std::string method = req["method"].get<std::string>();
  const json params =
      req.contains("params") && req["params"].is_object() ? req["params"] : json::object();
  Api api(o_.channel, o_.admin_token);
  auto tasks = v1::TaskService::NewStub(api.channel());

  // The goal `goal_id` as A2A shows it. NOT_FOUND when there is no such goal.
  auto view_of = [&](const std::string& goal_id) -> absl::StatusOr<View> {
    View v;
    v1::GetTaskRequest get;
    get.set_task_id(goal_id);
    v1::GetTaskResponse got;
    grpc::Status s = tasks->GetTask(api.Ctx().get(), get, &got);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    if (got.task().id() != got.task().goal_id() && !got.task().goal_id().empty()) {
      return absl::NotFoundError(absl::StrCat("\"", goal_id, "\" is a task of goal ",
                                              got.task().goal_id(), ", not a goal"));
    }
    v.goal = got.task();
    if (v.terminal()) return v;
    v1::ListPlansRequest lp;
    lp.set_goal_id(goal_id);
    lp.add_statuses(v1::PLAN_STATUS_PROPOSED);
    v1::ListPlansResponse plans;
    if (v1::PlanService::NewStub(api.channel())->ListPlans(api.Ctx().get(), lp, &plans).ok() &&
        plans.plans_size() > 0) {
      v.plan = plans.plans(0);
    }
    v1::ListConsentRequestsRequest lc;
    lc.set_goal_id(goal_id);
    v1::ListConsentRequestsResponse consents;
    if (!v.plan && v1::ConsentService::NewStub(api.channel())
                       ->ListConsentRequests(api.Ctx().get(), lc, &consents)
                       .ok()) {
      for (const v1::ConsentRequest& c : consents.consent_requests()) {
        if (c.status() == v1::CONSENT_STATUS_PENDING) {
          v.consent = c;
          break;
        }
      }
    }
    return v;
  };
  auto not_found = [&](const absl::Status& s, const std::string& task_id) {
    int code = s.code() == absl::StatusCode::kNotFound ? kTaskNotFound : kInternal;
    return Error(id, code,
                 code == kTaskNotFound
                     ? absl::StrCat("task \"", Utf8Prefix(task_id, 100, "…"), "\" not found")
                     : std::string(s.message()));
  };
  // The newest event's seq: a wait that starts after it misses nothing.
  auto current_seq = [&]() -> int64_t {
    v1::GetInfoResponse info;
    if (!v1::SystemService::NewStub(api.channel())
             ->GetInfo(api.Ctx().get(), v1::GetInfoRequest(), &info)
             .ok()) {
      return 0;
    }
    return info.counters().last_event_seq();
  };
  // Calls `changed` with each new view of the goal until it returns false, the goal ends or
  // needs input (`until_interrupted`), or the client goes away. Follows the goal's events a
  // second at a time, so that a client that left is noticed.
  auto follow = [&](const std::string& goal_id, int64_t after, View v, bool until_interrupted,
                    const std::function<void(const View&)>& changed) -> View {
    auto events = v1::EventService::NewStub(api.channel());
    std::string shown = DumpJson(v.Task()["status"]);
    while (!v.terminal() && !(until_interrupted && v.input_required()) && !out->gone()) {
      v1::WatchEventsRequest w;
      w.set_after_seq(after);
      w.mutable_filter()->set_goal_id(goal_id);
      absl::Time slice_start = absl::Now();
      auto ctx = api.Ctx(absl::Seconds(1));
      std::unique_ptr<grpc::ClientReader<v1::WatchEventsResponse>> r =
          events->WatchEvents(ctx.get(), w);
      v1::WatchEventsResponse ev;
      bool any = false;
      while (r->Read(&ev)) {
        after = std::max(after, ev.event().seq());
        any = true;
        break;  // one event is enough to look again
      }
      ctx->TryCancel();
      (void)r->Finish();
      if (!any) {
        // A feed that ended at once (agentd stopping, a store error) is not spun on.
        absl::Duration rest = absl::Seconds(1) - (absl::Now() - slice_start);
        if (rest > absl::ZeroDuration()) absl::SleepFor(rest);
      }
      // Looked at again every second as well as on the goal's events: a consent
      // request's events do not name the goal.
      absl::StatusOr<View> next = view_of(goal_id);
      if (!next.ok()) break;
      v = *std::move(next);
      std::string now = DumpJson(v.Task()["status"]);
      if (now != shown) {
        shown = now;
        changed(v);
      }
    }
    return v;
  };

  // A stream's event for the goal's status as `v` shows it.
  auto status_update = [&](const View& v) {
    return DumpJson(Result(
        id,
        {{"statusUpdate",
          {{"taskId", v.goal.id()}, {"contextId", v.goal.id()}, {"status", v.Task()["status"]}}}}));
  };

  if (method == "SendMessage" || method == "SendStreamingMessage") {
    const json message = params.contains("message") ? params["message"] : json();
    if (!message.is_object())
      return reply(200, Error(id, kInvalidParams, "params.message is required"));
    const json config = params.contains("configuration") && params["configuration"].is_object()
                            ? params["configuration"]
                            : json::object();
    bool return_now = config.contains("returnImmediately") &&
                      config["returnImmediately"].is_boolean() &&
                      config["returnImmediately"].get<bool>();
    std::string task_id = Str(message, "taskId");
    int64_t after = current_seq();
    View v;
    if (task_id.empty()) {
      // A new goal.
      std::string goal_text = TextOf(message);
      if (absl::StripAsciiWhitespace(goal_text).empty()) {
        return reply(200,
                     Error(id, kInvalidParams, "the message has no text: say what the goal is"));
      }
      v1::SubmitGoalRequest sg;
      sg.set_text(Utf8Prefix(goal_text, kMaxText, "…"));
      // The same message sent again (a retry) is the same goal.
      std::string mid = Str(message, "messageId");
      if (!mid.empty()) sg.set_request_id(absl::StrCat("a2a:", Utf8Prefix(mid, 200, "")));
      v1::SubmitGoalResponse resp;
      grpc::Status s = tasks->SubmitGoal(api.Ctx().get(), sg, &resp);
      if (!s.ok()) return reply(200, Error(id, kInvalidParams, s.error_message()));
      absl::StatusOr<View> got = view_of(resp.goal().id());
      if (!got.ok()) return reply(200, not_found(got.status(), resp.goal().id()));
      v = *std::move(got);
    } else {
      absl::StatusOr<View> got = view_of(task_id);
      if (!got.ok()) return reply(200, not_found(got.status(), task_id));
      v = *std::move(got);
      std::string ctx_id = Str(message, "contextId");
      if (!ctx_id.empty() && ctx_id != v.goal.id()) {
        return reply(
            200, Error(id, kInvalidParams,
                       absl::StrCat("contextId \"", Utf8Prefix(ctx_id, 100, "…"), "\" is not task ",
                                    task_id, "'s (", v.goal.id(), ")")));
      }
      if (v.terminal()) {
        return reply(200, Error(id, kUnsupportedOperation,
                                absl::StrCat("task ", task_id, " has ended (", v.state(),
                                             "): it takes no more messages")));
      }
      if (!v.input_required()) {
        return reply(200, Error(id, kUnsupportedOperation,
                                absl::StrCat("task ", task_id,
                                             " is not waiting for input; send a new message "
                                             "without taskId for a new goal")));
      }
      // The answer to the question the task waits on.
      json data = DataOf(message);
      std::string words = TextOf(message);
      bool approve = data.is_object() && data.contains("decision")
                         ? Str(data, "decision") == "approve"
                         : a2a_internal::Approves(words);
      std::string reason =
          data.is_object() && data.contains("reason") ? Str(data, "reason") : words;
      reason = Utf8Prefix(reason, 2000, "…");
      grpc::Status s;
      if (v.plan) {
        auto plans = v1::PlanService::NewStub(api.channel());
        if (approve) {
          v1::ApprovePlanRequest ap;
          ap.set_plan_id(v.plan->id());
          ap.set_comment(reason);
          v1::ApprovePlanResponse apr;
          s = plans->ApprovePlan(api.Ctx().get(), ap, &apr);
        } else {
          v1::RejectPlanRequest rp;
          rp.set_plan_id(v.plan->id());
          rp.set_reason(reason.empty() ? "rejected over A2A" : reason);
          v1::RejectPlanResponse rpr;
          s = plans->RejectPlan(api.Ctx().get(), rp, &rpr);
        }
      } else {
        v1::DecideConsentRequestRequest dc;
        dc.set_consent_request_id(v.consent->id());
        dc.set_decision(approve ? v1::CONSENT_DECISION_APPROVE : v1::CONSENT_DECISION_DENY);
        dc.set_reason(reason);
        v1::DecideConsentRequestResponse dcr;
        s = v1::ConsentService::NewStub(api.channel())
                ->DecideConsentRequest(api.Ctx().get(), dc, &dcr);
      }
      if (!s.ok()) return reply(200, Error(id, kInvalidParams, s.error_message()));
      absl::StatusOr<View> again = view_of(task_id);
      if (!again.ok()) return reply(200, not_found(again.status(), task_id));
      v = *std::move(again);
    }
    if (method == "SendMessage") {
      if (!return_now) v = follow(v.goal.id(), after, v, true, [](const View&) {});
      return reply(200, Result(id, {{"task", v.Task()}}));
    }
    // A stream: the task, then each change of its status, until it ends or needs input.
    bool done = v.terminal() || v.input_required();
    out->Event(DumpJson(Result(id, {{"task", v.Task()}})), done);
    if (done) return;
    View last = follow(v.goal.id(), after, v, true, [&](const View& now) {
      bool end = now.terminal() || now.input_required();
      if (end && now.goal.status() == v1::TASK_STATUS_COMPLETED) {
        json task = now.Task();
        for (const json& a : task["artifacts"]) {
          out->Event(DumpJson(Result(id, {{"artifactUpdate",
                                           {{"taskId", now.goal.id()},
                                            {"contextId", now.goal.id()},
                                            {"artifact", a},
                                            {"lastChunk", true}}}})),
                     false);
        }
      }
      out->Event(status_update(now), end);
    });
    if (!last.terminal() && !last.input_required() && !out->gone()) {
      // Followed until the goal could not be read: a stream ends with its last event.
      out->Event(status_update(last), true);
    }
    return;
  }
  if (method == "GetTask" || method == "SubscribeToTask") {
    std::string task_id = Str(params, "id");
    int64_t after = method == "SubscribeToTask" ? current_seq() : 0;  // before the view
    absl::StatusOr<View> v = view_of(task_id);
    if (!v.ok()) return reply(200, not_found(v.status(), task_id));
    if (method == "GetTask") return reply(200, Result(id, v->Task()));
    if (v->terminal()) {
      return reply(200, Error(id, kUnsupportedOperation,
                              absl::StrCat("task ", task_id, " has ended: nothing to follow")));
    }
    out->Event(DumpJson(Result(id, {{"task", v->Task()}})), false);
    View last = follow(task_id, after, *v, false,
                       [&](const View& now) { out->Event(status_update(now), now.terminal()); });
    if (!last.terminal() && !out->gone()) {
      // Followed until the client left or the goal ended: a stream must end with its last event.
      out->Event(status_update(last), true);
    }
    return;
  }
  if (method == "CancelTask") {
    std::string task_id = Str(params, "id");
    absl::StatusOr<View> v = view_of(task_id);
    if (!v.ok()) return reply(200, not_found(v.status(), task_id));
    if (v->terminal()) {
      return reply(200, Error(id, kTaskNotCancelable,
                              absl::StrCat("task ", task_id, " has ended (", v->state(), ")")));
    }
    v1::CancelTaskRequest c;
    c.set_task_id(task_id);
    c.set_reason("canceled over A2A");
    v1::CancelTaskResponse cr;
    grpc::Status s = tasks->CancelTask(api.Ctx().get(), c, &cr);
    if (!s.ok()) return reply(200, Error(id, kTaskNotCancelable, s.error_message()));
    absl::StatusOr<View> after = view_of(task_id);
    if (!after.ok()) return reply(200, not_found(after.status(), task_id));
    return reply(200, Result(id, after->Task()));
  }
  if (method == "ListTasks") {
    v1::ListTasksRequest lt;
    lt.set_goals_only(true);
    int64_t size = params.contains("pageSize") && params["pageSize"].is_number_integer()
                       ? params["pageSize"].get<int64_t>()
                       : 50;
    lt.set_page_size(static_cast<int32_t>(std::clamp<int64_t>(size, 1, 100)));
    lt.set_page_token(Str(params, "pageToken"));
    v1::ListTasksResponse lr;
    grpc::Status s = tasks->ListTasks(api.Ctx().get(), lt, &lr);
    if (!s.ok()) return reply(200, Error(id, kInvalidParams, s.error_message()));
    json list = json::array();
    for (const v1::Task& t : lr.tasks()) {
      absl::StatusOr<View> v = view_of(t.id());
      if (v.ok()) list.push_back(v->Task());
    }
    return reply(200, Result(id, {{"tasks", list},
                                  {"nextPageToken", lr.next_page_token()},
                                  {"pageSize", lt.page_size()},
                                  {"totalSize", static_cast<int64_t>(list.size())}}));
  }
  if (absl::StrContains(method, "PushNotificationConfig")) {
    return reply(200, Error(id, kPushNotSupported, "agentd does not send push notifications"));
  }
  if (method == "GetExtendedAgentCard") {
    return reply(200, Error(id, kExtendedCardNotConfigured, "agentd has no extended card"));
  }
  reply(200, Error(id, kMethodNotFound,
                   absl::StrCat("method not found: ", Utf8Prefix(method, 100, "…"))));
}

}  // namespace agentd::web
