#include "agents/runtime/daemon_tools.h"

#include <algorithm>
#include <climits>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace agentd::agent {
namespace {

using nlohmann::json;

std::string StatusText(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kUnimplemented) {
    return absl::StrCat("this agentd does not serve it yet (", s.message(), ")");
  }
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

std::string Str(const json& args, const char* key) {
  return args.contains(key) && args[key].is_string() ? args[key].get<std::string>() : "";
}

class DelegateTool final : public tools::Tool {
 public:
  DelegateTool(HostSession* host, Delegations* delegations)
      : host_(host), delegations_(delegations) {}
  std::string name() const override { return "delegate"; }
  std::string description() const override {
    return "Hand a piece of your task to an agent of another role. It works in the same "
           "workspace and reports back a summary. Delegate everything that can run in "
           "parallel, then end your turn without calling a tool: you get the results of "
           "all delegated tasks together when they have ended.";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"role", {{"type", "string"}, {"description", "Role to do it, e.g. coder"}}},
              {"title", {{"type", "string"}, {"description", "Short title"}}},
              {"instructions",
               {{"type", "string"}, {"description", "What to do, completely and precisely"}}},
              {"context", {{"type", "string"}, {"description", "Background it needs, if any"}}},
              {"deps",
               {{"type", "array"},
                {"items", {{"type", "string"}}},
                {"description", "Ids of tasks you delegated that must finish first"}}}}},
            {"required", {"role", "instructions"}}};
  }
  bool side_effect() const override { return true; }
  bool idempotent() const override { return true; }
  tools::ToolResult Run(const json& args, const tools::ToolContext& ctx) const override {
    v1::DelegateRequest req;
    req.set_parent_task_id(ctx.task_id);
    req.set_role(Str(args, "role"));
    req.set_title(Str(args, "title"));
    req.mutable_input()->set_instructions(Str(args, "instructions"));
    req.mutable_input()->set_context(Str(args, "context"));
    if (args.contains("deps")) {
      for (const json& d : args["deps"]) {
        if (d.is_string()) req.add_deps(d.get<std::string>());
      }
    }
    req.set_request_id(ctx.call_id);
    absl::StatusOr<v1::Task> t = host_->Delegate(req);
    if (!t.ok()) return {absl::StrCat("delegate: ", StatusText(t.status())), true};
    delegations_->Opened(t->id());
    return {absl::StrCat("delegated as task ", t->id(), " to role ", t->role(),
                         ". Its result comes back to you when it ends.")};
  }

 private:
  HostSession* host_;
  Delegations* delegations_;
};

class ProposePlanTool final : public tools::Tool {
 public:
  ProposePlanTool(HostSession* host, Delegations* delegations)
      : host_(host), delegations_(delegations) {}
  std::string name() const override { return "propose_plan"; }
  std::string description() const override {
    return "Propose a plan for your task: steps, each for a role, with the ids of the steps "
           "it depends on and estimates. It is checked (no cycles, known roles) and approved "
           "by a person or by policy; the steps then run as tasks, in parallel where deps "
           "allow, and you get their results.";
  }
  json schema() const override {
    json step = {{"type", "object"},
                 {"properties",
                  {{"id", {{"type", "string"}}},
                   {"title", {{"type", "string"}}},
                   {"role", {{"type", "string"}}},
                   {"instructions", {{"type", "string"}}},
                   {"deps", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                   {"max_attempts", {{"type", "integer"}, {"minimum", 0}, {"maximum", 20}}},
                   {"estimate_tokens", {{"type", "integer"}}},
                   {"estimate_usd", {{"type", "number"}}}}},
                 {"required", {"id", "role", "instructions"}}};
    return {{"type", "object"},
            {"properties",
             {{"summary", {{"type", "string"}, {"description", "The approach, for the approver"}}},
              {"steps", {{"type", "array"}, {"items", step}}}}},
            {"required", {"steps"}}};
  }
  bool side_effect() const override { return true; }
  bool idempotent() const override { return true; }
  tools::ToolResult Run(const json& args, const tools::ToolContext& ctx) const override {
    v1::ProposePlanRequest req;
    req.set_task_id(ctx.task_id);
    req.set_summary(Str(args, "summary"));
    req.set_request_id(ctx.call_id);
    for (const json& s : args["steps"]) {
      if (!s.is_object()) return {"propose_plan: each step must be an object", true};
      v1::PlanStep* step = req.add_steps();
      step->set_id(Str(s, "id"));
      step->set_title(Str(s, "title"));
      step->set_role(Str(s, "role"));
      step->set_instructions(Str(s, "instructions"));
      if (s.contains("deps") && s["deps"].is_array()) {
        for (const json& d : s["deps"]) {
          if (d.is_string()) step->add_deps(d.get<std::string>());
        }
      }
      if (s.contains("max_attempts") && s["max_attempts"].is_number_integer()) {
        // Saturated, not wrapped: 4294967297 stays out of range (agentd says so) instead
        // of turning into 1.
        int64_t n = s["max_attempts"].is_number_unsigned()
                        ? static_cast<int64_t>(
                              std::min<uint64_t>(s["max_attempts"].get<uint64_t>(), INT32_MAX))
                        : s["max_attempts"].get<int64_t>();
        step->set_max_attempts(static_cast<int32_t>(std::clamp<int64_t>(n, INT32_MIN, INT32_MAX)));
      }
      if (s.contains("estimate_tokens") && s["estimate_tokens"].is_number_integer()) {
        step->mutable_estimate()->set_tokens(s["estimate_tokens"].get<int64_t>());
      }
      if (s.contains("estimate_usd") && s["estimate_usd"].is_number()) {
        step->mutable_estimate()->set_cost_usd(s["estimate_usd"].get<double>());
      }
    }
    absl::StatusOr<v1::ProposePlanResponse> r = host_->ProposePlan(req);
    if (!r.ok()) return {absl::StrCat("propose_plan: ", StatusText(r.status())), true};
    if (r->has_invalid()) {
      std::vector<std::string> why;
      for (const v1::PlanViolation& v : r->invalid().violations()) {
        why.push_back(v.step_id().empty() ? v.message()
                                          : absl::StrCat("step ", v.step_id(), ": ", v.message()));
      }
      return {absl::StrCat("propose_plan: the plan is invalid: ", absl::StrJoin(why, "; ")), true};
    }
    // Until it is decided and its steps have run, the task waits for it.
    delegations_->Opened(absl::StrCat("plan:", r->plan().id()));
    return {absl::StrCat("plan ", r->plan().id(), " proposed (", r->plan().steps_size(),
                         " steps); its steps run once it is approved, and their results come "
                         "back to you (or the reason, if it is rejected). End your turn to wait.")};
  }

 private:
  HostSession* host_;
  Delegations* delegations_;
};

class MessageTool final : public tools::Tool {
 public:
  explicit MessageTool(HostSession* host) : host_(host) {}
  std::string name() const override { return "message"; }
  std::string description() const override {
    return "Send a message to another agent (its id), to any agent of a role (\"role:<name>\") "
           "or to the people watching (\"human\"). It does not wait for an answer.";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties",
             {{"to", {{"type", "string"}, {"description", "Agent id, role:<name> or human"}}},
              {"text", {{"type", "string"}}}}},
            {"required", {"to", "text"}}};
  }
  bool side_effect() const override { return true; }
  bool idempotent() const override { return true; }
  tools::ToolResult Run(const json& args, const tools::ToolContext& ctx) const override {
    v1::SendRequest req;
    req.set_to(Str(args, "to"));
    req.set_body(Str(args, "text"));
    req.set_task_id(ctx.task_id);
    req.set_request_id(ctx.call_id);
    absl::StatusOr<v1::Envelope> e = host_->Send(req);
    if (!e.ok()) return {absl::StrCat("message: ", StatusText(e.status())), true};
    return {absl::StrCat("sent as message ", e->id())};
  }

 private:
  HostSession* host_;
};

class AskHumanTool final : public tools::Tool {
 public:
  AskHumanTool(HostSession* host, Mailbox* mailbox) : host_(host), mailbox_(mailbox) {}
  std::string name() const override { return "ask_human"; }
  std::string description() const override {
    return "Ask the people watching a question and wait for their answer (agentctl send, or "
           "the UI). Ask only what you cannot find out yourself.";
  }
  json schema() const override {
    return {{"type", "object"},
            {"properties", {{"question", {{"type", "string"}}}}},
            {"required", {"question"}}};
  }
  bool side_effect() const override { return true; }
  bool idempotent() const override { return true; }
  tools::ToolResult Run(const json& args, const tools::ToolContext& ctx) const override {
    v1::SendRequest req;
    req.set_to("human");
    req.set_type(v1::ENVELOPE_TYPE_QUERY);
    req.set_body(Str(args, "question"));
    req.set_task_id(ctx.task_id);
    req.set_request_id(ctx.call_id);
    absl::StatusOr<v1::Envelope> q = host_->Send(req);
    if (!q.ok()) return {absl::StrCat("ask_human: ", StatusText(q.status())), true};
    std::optional<v1::Envelope> answer = mailbox_->WaitReply(q->id(), ctx.cancel);
    if (!answer.has_value()) return {"ask_human: canceled while waiting for an answer", true};
    return {absl::StrCat("answer from ", answer->from(), ": ", answer->body())};
  }

 private:
  HostSession* host_;
  Mailbox* mailbox_;
};

}  // namespace

std::vector<std::unique_ptr<tools::Tool>> DaemonTools(const std::vector<std::string>& names,
                                                      HostSession* host, Delegations* delegations,
                                                      Mailbox* mailbox) {
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  std::vector<std::unique_ptr<tools::Tool>> out;
  if (has("delegate")) out.push_back(std::make_unique<DelegateTool>(host, delegations));
  if (has("propose_plan")) out.push_back(std::make_unique<ProposePlanTool>(host, delegations));
  if (has("message")) out.push_back(std::make_unique<MessageTool>(host));
  if (has("ask_human")) out.push_back(std::make_unique<AskHumanTool>(host, mailbox));
  return out;
}

absl::Status Mailbox::Persist(const std::string& session_path) {
  absl::StatusOr<std::unique_ptr<session::SessionStore>> store =
      session::SessionStore::Open(session_path);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kept = (*store)->Kept();
  if (!kept.ok()) return kept.status();
  absl::MutexLock l(&mu_);
  store_ = *std::move(store);
  for (const auto& [id, body] : *kept) {
    v1::Envelope m;
    if (!m.ParseFromString(body) || !seen_.insert(id).second) continue;
    inbox_.push_back(std::move(m));
  }
  if (!kept->empty()) spdlog::info("{} message(s) kept from before the restart", kept->size());
  return absl::OkStatus();
}

bool Mailbox::Put(const v1::Envelope& m) {
  absl::MutexLock l(&mu_);
  if (!seen_.insert(m.id()).second) return false;
  if (store_ != nullptr) {
    if (absl::StatusOr<bool> kept = store_->Keep(m.id(), m.SerializeAsString()); !kept.ok()) {
      // Still delivered to this run; only a restart before it is read would lose it.
      spdlog::error("message {}: keeping it in the session: {}", m.id(), kept.status().message());
    }
  }
  if (!m.reply_to_id().empty() && waiting_.count(m.reply_to_id()) != 0) {
    replies_[m.reply_to_id()] = m;
  } else {
    inbox_.push_back(m);
  }
  return true;
}

std::vector<v1::Envelope> Mailbox::TakeInbox(const std::string& task_id) {
  absl::MutexLock l(&mu_);
  std::vector<v1::Envelope> out, kept;
  for (v1::Envelope& m : inbox_) {
    bool for_another_task = m.from() == "agentd" && !m.task_id().empty() && m.task_id() != task_id;
    (for_another_task ? kept : out).push_back(std::move(m));
  }
  // Notes for tasks this agent does not come back to would pile up: the oldest go (agentd
  // keeps every message; `agentctl messages` shows them).
  constexpr size_t kMaxKept = 64;
  if (kept.size() > kMaxKept) {
    for (auto it = kept.begin(); it != kept.end() - kMaxKept; ++it) {
      if (store_ != nullptr) (void)store_->Drop(it->id());
    }
    kept.erase(kept.begin(), kept.end() - kMaxKept);
  }
  inbox_.swap(kept);
  return out;
}

std::optional<v1::Envelope> Mailbox::WaitReply(const std::string& query_id,
                                               const llm::CancelToken* cancel) {
  absl::MutexLock l(&mu_);
  waiting_.insert(query_id);
  // An answer that came before the wait began sits in the inbox.
  for (auto it = inbox_.begin(); it != inbox_.end(); ++it) {
    if (it->reply_to_id() == query_id) {
      replies_[query_id] = *it;
      inbox_.erase(it);
      break;
    }
  }
  std::pair<Mailbox*, const std::string*> arg(this, &query_id);
  for (;;) {
    if (auto it = replies_.find(query_id); it != replies_.end()) {
      v1::Envelope answer = it->second;
      replies_.erase(it);
      waiting_.erase(query_id);
      // Taken by the call that asked: the call's own result carries it from here.
      if (store_ != nullptr) (void)store_->Drop(answer.id());
      return answer;
    }
    if (cancel != nullptr && cancel->cancelled()) {
      waiting_.erase(query_id);
      return std::nullopt;
    }
    // Woken by Put (the mutex's condition is re-checked on unlock) or after a while to
    // look at the cancel token.
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::pair<Mailbox*, const std::string*>* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return a->first->replies_.count(*a->second) != 0;
            },
            &arg),
        absl::Milliseconds(200));
  }
}

}  // namespace agentd::agent
