#include "manager/ctl/plan_edit.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "common/values.h"
#include "yaml-cpp/yaml.h"

namespace agentd::ctl {
namespace {

std::string Where(const YAML::Mark& m) {
  return m.is_null() ? "" : absl::StrCat(m.line + 1, ":", m.column + 1, ": ");
}

// A scalar field of `node`, or an error naming it and where it is.
absl::StatusOr<std::string> Scalar(const YAML::Node& node, const char* key, bool required) {
  YAML::Node v = node[key];
  if (!v.IsDefined() || v.IsNull()) {
    if (required) {
      return absl::InvalidArgumentError(absl::StrCat(Where(node.Mark()), "a step needs ", key));
    }
    return std::string();
  }
  if (!v.IsScalar()) {
    return absl::InvalidArgumentError(absl::StrCat(Where(v.Mark()), key, " must be a string"));
  }
  return v.Scalar();
}

// The comment block at the top of the file: what it is, and the last try's problems (one
// comment line each: no line break or other control character of a message can end the
// comment and turn the rest of it into YAML).
std::string PlanHeader(const v1::Plan& plan, const std::vector<std::string>& problems) {
  std::string head = absl::StrCat(
      "# Plan ", plan.id(), " (revision ", plan.revision(), ", proposed by ", plan.proposer(),
      " for task ", plan.task_id(), ").\n",
      "# Edit the steps (instructions, role, deps, estimate), remove or add steps, then save\n"
      "# and quit: agentd checks the plan as it checks an agent's, and approves it as a new\n"
      "# revision made by you. Saving it unchanged or empty approves nothing.\n");
  if (!problems.empty()) {
    absl::StrAppend(&head, "#\n# The last version was not approved:\n");
    for (const std::string& p : problems) {
      std::string line = p;
      for (char& c : line) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
      }
      absl::StrAppend(&head, "#   ", line, "\n");
    }
  }
  return head;
}

}  // namespace

std::string PlanToYaml(const v1::Plan& plan, const std::vector<std::string>& problems) {
  YAML::Emitter out;
  out.SetIndent(2);
  out << YAML::BeginMap;
  out << YAML::Key << "summary" << YAML::Value << plan.summary();
  out << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
  for (const v1::PlanStep& s : plan.steps()) {
    out << YAML::BeginMap;
    out << YAML::Key << "id" << YAML::Value << s.id();
    out << YAML::Key << "title" << YAML::Value << s.title();
    out << YAML::Key << "role" << YAML::Value << s.role();
    out << YAML::Key << "instructions" << YAML::Value;
    if (s.instructions().find('\n') != std::string::npos) out << YAML::Literal;
    out << s.instructions();
    out << YAML::Key << "deps" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const std::string& d : s.deps()) out << d;
    out << YAML::EndSeq;
    if (s.max_attempts() > 0) out << YAML::Key << "max_attempts" << YAML::Value << s.max_attempts();
    out << YAML::Key << "estimate" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "tokens" << YAML::Value << s.estimate().tokens();
    out << YAML::Key << "cost_usd" << YAML::Value << s.estimate().cost_usd();
    if (s.estimate().has_duration()) {
      out << YAML::Key << "duration" << YAML::Value
          << agentd::FormatDuration(absl::Seconds(s.estimate().duration().seconds()) +
                                    absl::Nanoseconds(s.estimate().duration().nanos()));
    }
    out << YAML::EndMap;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return absl::StrCat(PlanHeader(plan, problems), out.c_str(), "\n");
}

absl::StatusOr<EditedPlan> PlanFromYaml(const std::string& text) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Where(e.mark), e.msg));
  }
  if (!root.IsMap())
    return absl::InvalidArgumentError("the file must be a map with summary and steps");
  EditedPlan plan;
  try {
    for (const auto& kv : root) {
      std::string key = kv.first.Scalar();
      if (key != "summary" && key != "steps") {
        return absl::InvalidArgumentError(
            absl::StrCat(Where(kv.first.Mark()), "unknown key \"", key, "\" (summary, steps)"));
      }
    }
    absl::StatusOr<std::string> summary = Scalar(root, "summary", false);
    if (!summary.ok()) return summary.status();
    plan.summary = *summary;
    YAML::Node steps = root["steps"];
    if (!steps.IsDefined() || steps.IsNull()) return plan;
    if (!steps.IsSequence()) {
      return absl::InvalidArgumentError(absl::StrCat(Where(steps.Mark()), "steps must be a list"));
    }
    for (const YAML::Node& n : steps) {
      if (!n.IsMap()) {
        return absl::InvalidArgumentError(absl::StrCat(Where(n.Mark()), "a step must be a map"));
      }
      static const char* kKeys[] = {"id",   "title",        "role",    "instructions",
                                    "deps", "max_attempts", "estimate"};
      for (const auto& kv : n) {
        std::string key = kv.first.Scalar();
        if (std::find(std::begin(kKeys), std::end(kKeys), key) == std::end(kKeys)) {
          return absl::InvalidArgumentError(absl::StrCat(Where(kv.first.Mark()),
                                                         "unknown step key \"", key, "\" (",
                                                         absl::StrJoin(kKeys, ", "), ")"));
        }
      }
      v1::PlanStep s;
      for (auto [key, field] : {std::pair{"id", s.mutable_id()},
                                {"title", s.mutable_title()},
                                {"role", s.mutable_role()},
                                {"instructions", s.mutable_instructions()}}) {
        absl::StatusOr<std::string> v = Scalar(n, key, false);
        if (!v.ok()) return v.status();
        *field = *v;
      }
      if (YAML::Node deps = n["deps"]; deps.IsDefined() && !deps.IsNull()) {
        if (!deps.IsSequence()) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(deps.Mark()), "deps must be a list of step ids"));
        }
        for (const YAML::Node& d : deps) s.add_deps(d.as<std::string>());
      }
      if (YAML::Node m = n["max_attempts"]; m.IsDefined() && !m.IsNull()) {
        s.set_max_attempts(m.as<int32_t>());
      }
      if (YAML::Node e = n["estimate"]; e.IsDefined() && !e.IsNull()) {
        if (!e.IsMap()) {
          return absl::InvalidArgumentError(absl::StrCat(
              Where(e.Mark()), "estimate must be a map: {tokens, cost_usd, duration}"));
        }
        if (e["tokens"]) s.mutable_estimate()->set_tokens(e["tokens"].as<int64_t>());
        if (e["cost_usd"]) s.mutable_estimate()->set_cost_usd(e["cost_usd"].as<double>());
        if (e["duration"]) {
          absl::StatusOr<absl::Duration> d = ParseDuration(e["duration"].Scalar());
          if (!d.ok()) {
            return absl::InvalidArgumentError(
                absl::StrCat(Where(e["duration"].Mark()), "duration: ", d.status().message()));
          }
          int64_t ns = absl::ToInt64Nanoseconds(*d);
          s.mutable_estimate()->mutable_duration()->set_seconds(ns / 1000000000);
          s.mutable_estimate()->mutable_duration()->set_nanos(
              static_cast<int32_t>(ns % 1000000000));
        }
      }
      plan.steps.push_back(std::move(s));
    }
  } catch (const YAML::Exception& e) {
    // A value of the wrong type (as<int64_t> of "many"), with where it is.
    return absl::InvalidArgumentError(absl::StrCat(Where(e.mark), e.msg));
  }
  return plan;
}

namespace {

// Runs the person's editor on `path` and waits for it; false when it could not run or
// failed.
bool RunEditor(const std::string& path) {
  const char* editor = std::getenv("VISUAL");
  if (editor == nullptr || *editor == '\0') editor = std::getenv("EDITOR");
  if (editor == nullptr || *editor == '\0') editor = "vi";
  // Through the shell, as git and kubectl do: EDITOR may carry arguments ("code --wait").
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    std::string cmd = absl::StrCat(editor, " \"$1\"");
    execl("/bin/sh", "sh", "-c", cmd.c_str(), "sh", path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int EditAndApprove(const Globals& g, const std::string& plan_id, const std::string& comment) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::GetPlanRequest get;
  get.set_plan_id(plan_id);
  v1::GetPlanResponse got;
  if (grpc::Status s = stub->GetPlan(c->NewContext().get(), get, &got); !s.ok()) {
    return RpcFailed("GetPlan", s);
  }
  if (got.plan().status() != v1::PLAN_STATUS_PROPOSED) {
    return Fail(absl::StrCat("plan ", plan_id,
                             " is not waiting for approval: only a proposed plan "
                             "can be edited"));
  }
  char dir_template[] = "/tmp/agentctl-plan-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return Fail("cannot make a temporary directory");
  const std::string dir = dir_template;
  const std::string path = absl::StrCat(dir, "/", plan_id, ".yaml");
  // The file goes when the plan is approved or the edit given up; when agentd cannot be
  // asked or refuses, the person's work stays where the message says.
  struct Cleanup {
    std::string dir, path;
    bool keep = false;
    ~Cleanup() {
      if (keep) return;
      unlink(path.c_str());
      rmdir(dir.c_str());
    }
  } cleanup{dir, path};
  auto kept = [&](const char* rpc, const grpc::Status& s) {
    cleanup.keep = true;
    int code = RpcFailed(rpc, s);
    std::fprintf(stderr, "agentctl: your edit is kept in %s\n", path.c_str());
    return code;
  };
  std::string text = PlanToYaml(got.plan(), {});
  for (;;) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << text;
      if (!out) return Fail(absl::StrCat("cannot write ", path));
    }
    if (!RunEditor(path)) {
      return Fail("the editor failed ($VISUAL, $EDITOR or vi): nothing was approved");
    }
    std::string edited = ReadAll(path);
    if (edited == text || absl::StripAsciiWhitespace(edited).empty()) {
      std::fprintf(stderr, "agentctl: edit canceled: nothing was approved\n");
      return kFailed;
    }
    std::vector<std::string> problems;
    absl::StatusOr<EditedPlan> plan = PlanFromYaml(edited);
    v1::ApprovePlanRequest req;
    req.set_plan_id(plan_id);
    req.set_comment(comment);
    if (!plan.ok()) {
      problems.push_back(std::string(plan.status().message()));
    } else if (plan->steps.empty()) {
      problems.push_back("a plan needs at least one step (reject it instead: agentctl reject)");
    } else {
      req.set_summary(plan->summary);
      for (v1::PlanStep& s : plan->steps) *req.add_steps() = std::move(s);
      req.set_validate_only(true);
      v1::ApprovePlanResponse checked;
      if (grpc::Status s = stub->ApprovePlan(c->NewContext().get(), req, &checked); !s.ok()) {
        return kept("ApprovePlan", s);
      }
      for (const v1::PlanViolation& v : checked.violations()) {
        problems.push_back(absl::StrCat(
            v.step_id().empty() ? "plan" : absl::StrCat("step ", v.step_id()),
            v.field().empty() ? "" : absl::StrCat(" (", v.field(), ")"), ": ", v.message()));
      }
    }
    if (!problems.empty()) {
      for (const std::string& p : problems) {
        std::fprintf(stderr, "agentctl: %s\n", TerminalText(p).c_str());
      }
      // Opened again with the problems on top, and the person's text below them.
      std::string body = edited;
      while (absl::StartsWith(body, "#")) {
        size_t nl = body.find('\n');
        body = nl == std::string::npos ? "" : body.substr(nl + 1);
      }
      text = absl::StrCat(PlanHeader(got.plan(), problems), body);
      continue;
    }
    req.set_validate_only(false);
    v1::ApprovePlanResponse resp;
    if (grpc::Status s = stub->ApprovePlan(c->NewContext().get(), req, &resp); !s.ok()) {
      return kept("ApprovePlan", s);
    }
    Print(g, resp.plan(),
          absl::StrCat("plan ", plan_id, " edited into plan ", resp.plan().id(), ", approved (",
                       resp.plan().steps_size(), " steps)\n"));
    return kOk;
  }
}

}  // namespace agentd::ctl
