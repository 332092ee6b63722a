#include "agents/runtime/daemon_tools.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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
  explicit ProposePlanTool(HostSession* host) : host_(host) {}
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
    return {absl::StrCat("plan ", r->plan().id(),
                         " proposed; its steps run once it is approved, "
                         "and their results come back to you. End your turn to wait.")};
  }

 private:
  HostSession* host_;
};

// message and ask_human reach the bus, which this agentd does not serve yet: the tool
// says so plainly rather than pretending the message went out.
class BusTool final : public tools::Tool {
 public:
  explicit BusTool(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string description() const override {
    return name_ == "ask_human"
               ? "Ask a person a question and wait for the answer."
               : "Send a message to another agent (its id, or role:<name>) or to \"human\".";
  }
  json schema() const override {
    if (name_ == "ask_human") {
      return {{"type", "object"},
              {"properties", {{"question", {{"type", "string"}}}}},
              {"required", {"question"}}};
    }
    return {{"type", "object"},
            {"properties", {{"to", {{"type", "string"}}}, {"text", {{"type", "string"}}}}},
            {"required", {"to", "text"}}};
  }
  bool side_effect() const override { return false; }
  tools::ToolResult Run(const json&, const tools::ToolContext&) const override {
    return {absl::StrCat(name_,
                         ": messages are not delivered by this agentd yet; carry on without "
                         "it, or say what you need in your task's result"),
            true};
  }

 private:
  std::string name_;
};

}  // namespace

std::vector<std::unique_ptr<tools::Tool>> DaemonTools(const std::vector<std::string>& names,
                                                      HostSession* host, Delegations* delegations) {
  auto has = [&](const char* n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  std::vector<std::unique_ptr<tools::Tool>> out;
  if (has("delegate")) out.push_back(std::make_unique<DelegateTool>(host, delegations));
  if (has("propose_plan")) out.push_back(std::make_unique<ProposePlanTool>(host));
  if (has("message")) out.push_back(std::make_unique<BusTool>("message"));
  if (has("ask_human")) out.push_back(std::make_unique<BusTool>("ask_human"));
  return out;
}

}  // namespace agentd::agent
