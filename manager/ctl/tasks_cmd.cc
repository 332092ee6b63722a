#include "manager/ctl/tasks_cmd.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agentd/v1/audit.grpc.pb.h"
#include "agentd/v1/messages.grpc.pb.h"
#include "agentd/v1/plans.grpc.pb.h"
#include "agentd/v1/tasks.grpc.pb.h"
#include "agentd/v1/usage.grpc.pb.h"
#include "common/values.h"

namespace agentd::ctl {
namespace {

// Exit code of `goal --wait` when the goal is still going at the timeout.
constexpr int kStillRunning = 4;

std::string StatusName(v1::TaskStatus s) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::TaskStatus_Name(s), "TASK_STATUS_"));
}

bool Final(v1::TaskStatus s) {
  return s == v1::TASK_STATUS_COMPLETED || s == v1::TASK_STATUS_FAILED ||
         s == v1::TASK_STATUS_CANCELED;
}

std::string FailureText(const v1::Task& t) {
  if (!t.has_failure()) return "";
  std::string code = absl::StrCat(
      absl::StripPrefix(v1::TaskFailureCode_Name(t.failure().code()), "TASK_FAILURE_CODE_"));
  return absl::StrCat(code, ": ", t.failure().message());
}

// The directory as an absolute path; it need not exist.
std::string Absolute(const std::string& dir) {
  if (!dir.empty() && dir[0] == '/') return dir;
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return dir;
  return absl::StrCat(cwd, "/", dir);
}

absl::StatusOr<std::vector<v1::Task>> ListAll(const Connection& c, v1::ListTasksRequest req) {
  auto stub = v1::TaskService::NewStub(c.channel());
  std::vector<v1::Task> out;
  for (;;) {
    v1::ListTasksResponse page;
    grpc::Status s = stub->ListTasks(c.NewContext().get(), req, &page);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat("ListTasks: ", s.error_message()));
    }
    for (v1::Task& t : *page.mutable_tasks()) out.push_back(std::move(t));
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  return out;
}

// One line per task, children under their parent.
void Tree(const std::vector<v1::Task>& tasks, const std::string& parent, int depth,
          std::vector<std::vector<std::string>>* rows) {
  // Oldest first within a parent: the order work was handed out.
  for (auto it = tasks.rbegin(); it != tasks.rend(); ++it) {
    const v1::Task& t = *it;
    if (t.parent_id() != parent) continue;
    rows->push_back({std::string(2 * depth, ' ') + t.id(), t.role(), StatusName(t.status()),
                     t.assignee().empty() ? "-" : t.assignee(), t.title()});
    Tree(tasks, t.id(), depth + 1, rows);
  }
}

std::string PlanStatusName(v1::PlanStatus s) {
  return absl::AsciiStrToLower(absl::StripPrefix(v1::PlanStatus_Name(s), "PLAN_STATUS_"));
}

std::string Estimate(const v1::PlanEstimate& e) {
  std::vector<std::string> parts;
  if (e.tokens() > 0) parts.push_back(absl::StrCat(e.tokens(), " tokens"));
  if (e.cost_usd() > 0) parts.push_back(absl::StrFormat("$%.4f", e.cost_usd()));
  if (e.has_duration() && e.duration().seconds() > 0) parts.push_back(ShortDuration(e.duration()));
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

}  // namespace

// Submits the goal and, with `wait`, follows it to its end: progress on stderr, the
// result on stdout; the exit code says how it ended.
int SubmitAndWait(const Globals& g, const v1::SubmitGoalRequest& req, bool wait,
                  absl::Duration wait_for) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::SubmitGoalResponse resp;
  grpc::Status s = stub->SubmitGoal(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("SubmitGoal", s);
  const v1::Task& goal = resp.goal();
  if (!wait) {
    Print(g, goal,
          absl::StrCat(
              "goal ", goal.id(), " submitted (workspace ", goal.workspace().path(),
              goal.workspace().branch().empty() ? "" : ", branch " + goal.workspace().branch(),
              ")\n"));
    return kOk;
  }
  std::fprintf(stderr, "goal %s submitted; workspace %s\n", TerminalText(goal.id()).c_str(),
               TerminalText(goal.workspace().path()).c_str());
  // Progress: every task's status as it changes, on stderr.
  absl::Time until =
      wait_for == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + wait_for;
  std::map<std::string, v1::TaskStatus> seen;
  v1::ListTasksRequest list;
  list.set_goal_id(goal.id());
  for (;;) {
    absl::StatusOr<std::vector<v1::Task>> tasks = ListAll(*c, list);
    if (!tasks.ok()) return Fail(std::string(tasks.status().message()));
    const v1::Task* root = nullptr;
    for (auto it = tasks->rbegin(); it != tasks->rend(); ++it) {
      if (seen[it->id()] != it->status()) {
        seen[it->id()] = it->status();
        // Titles and failures are the agents' words: one escaped line each.
        std::string failure = it->has_failure() ? absl::StrCat(" (", FailureText(*it), ")") : "";
        std::fprintf(stderr, "  %s %-8s %-9s %s%s\n", TerminalText(it->id()).c_str(),
                     TerminalText(it->role()).c_str(), StatusName(it->status()).c_str(),
                     TerminalText(it->title()).c_str(), TerminalText(failure).c_str());
      }
      if (it->id() == goal.id()) root = &*it;
    }
    if (root != nullptr && Final(root->status())) {
      Print(g, *root,
            root->status() == v1::TASK_STATUS_COMPLETED
                ? absl::StrCat(root->result().summary(), "\n")
                : absl::StrCat("goal ", root->id(), " ", StatusName(root->status()), ": ",
                               FailureText(*root), "\n"));
      return root->status() == v1::TASK_STATUS_COMPLETED ? kOk : kFailed;
    }
    if (absl::Now() >= until) {
      return Fail(absl::StrCat("goal ", goal.id(), " is still running after ",
                               absl::FormatDuration(wait_for), " (agentctl get tasks --goal ",
                               goal.id(), " --tree)"),
                  kStillRunning);
    }
    // A CLI watching one goal: a status poll every quarter second is cheap for agentd.
    absl::SleepFor(absl::Milliseconds(250));
  }
}

int GoalCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args,
                             {"--workspace", "--approve", "--budget", "--tokens", "--title",
                              "--timeout", "--check", "--check-rounds"},
                             {"--wait", "--init-existing"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 1) {
    return Usage(
        "usage: agentctl goal \"TEXT\" [--workspace DIR [--init-existing]] [--approve "
        "auto|manual] [--budget USD] [--tokens N] [--title T] [--check CMD]... "
        "[--check-rounds N] [--wait] [--timeout D]");
  }
  v1::SubmitGoalRequest req;
  req.set_text(parsed->positional[0]);
  auto& f = parsed->flags;
  if (f.count("--title")) req.set_title(f["--title"]);
  if (f.count("--workspace")) {
    std::string dir = Absolute(f["--workspace"]);
    struct stat st {};
    bool repo = stat((dir + "/.git").c_str(), &st) == 0;
    req.mutable_workspace()->set_kind(repo ? v1::WORKSPACE_KIND_EXISTING_REPO
                                           : v1::WORKSPACE_KIND_NEW_DIRECTORY);
    req.mutable_workspace()->set_path(dir);
    // A folder with files that is not a repository becomes one (git init) only when the
    // person says so.
    req.mutable_workspace()->set_init_existing(f.count("--init-existing") > 0);
  }
  if (f.count("--approve")) {
    if (f["--approve"] == "auto") {
      req.set_approval_policy(v1::APPROVAL_POLICY_AUTO);
    } else if (f["--approve"] == "manual") {
      req.set_approval_policy(v1::APPROVAL_POLICY_MANUAL);
    } else {
      return Usage(absl::StrCat("--approve: \"", f["--approve"], "\" is not auto or manual"));
    }
  }
  if (f.count("--budget")) {
    double usd = 0;
    if (!absl::SimpleAtod(absl::StripPrefix(f["--budget"], "$"), &usd) || usd <= 0) {
      return Usage(
          absl::StrCat("--budget: \"", f["--budget"], "\" is not a positive amount of USD"));
    }
    req.mutable_budget()->set_max_cost_usd(usd);
  }
  if (f.count("--tokens")) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(f["--tokens"], &n) || n <= 0) {
      return Usage(absl::StrCat("--tokens: \"", f["--tokens"], "\" is not a positive number"));
    }
    req.mutable_budget()->set_max_tokens(n);
  }
  for (const std::string& check : parsed->repeated["--check"]) req.add_checks(check);
  if (f.count("--check-rounds")) {
    int32_t n = 0;
    if (!absl::SimpleAtoi(f["--check-rounds"], &n) || n < 1) {
      return Usage(
          absl::StrCat("--check-rounds: \"", f["--check-rounds"], "\" is not a positive number"));
    }
    req.set_max_check_rounds(n);
  }
  absl::Duration wait_for = absl::InfiniteDuration();
  if (f.count("--timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDuration(f["--timeout"]);
    if (!d.ok() || *d <= absl::ZeroDuration()) {
      return Usage(absl::StrCat("--timeout: ", d.ok() ? "must be positive" : d.status().message()));
    }
    wait_for = *d;
  }
  return SubmitAndWait(g, req, f.count("--wait") > 0, wait_for);
}

int GetTasks(const Globals& g, const CmdArgs& args) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  v1::ListTasksRequest req;
  if (auto it = args.flags.find("--goal"); it != args.flags.end()) req.set_goal_id(it->second);
  absl::StatusOr<std::vector<v1::Task>> tasks = ListAll(*c, req);
  if (!tasks.ok()) return Fail(std::string(tasks.status().message()));
  v1::ListTasksResponse all;
  for (const v1::Task& t : *tasks) *all.add_tasks() = t;
  std::vector<std::vector<std::string>> rows = {{"ID", "ROLE", "STATUS", "ASSIGNEE", "TITLE"}};
  if (args.flags.count("--tree")) {
    // Roots are goals, or (with --goal) the goal itself.
    Tree(*tasks, "", 0, &rows);
  } else {
    for (const v1::Task& t : *tasks) {
      rows.push_back({t.id(), t.role(), StatusName(t.status()),
                      t.assignee().empty() ? "-" : t.assignee(), t.title()});
    }
  }
  Print(g, all, tasks->empty() ? "No tasks.\n" : Table(rows));
  return kOk;
}

int DescribeTask(const Globals& g, const std::string& id) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::GetTaskRequest req;
  req.set_task_id(id);
  v1::GetTaskResponse resp;
  grpc::Status s = stub->GetTask(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("GetTask", s);
  const v1::Task& t = resp.task();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"id", t.id()},
      {"goal", t.goal_id()},
      {"parent", t.parent_id().empty() ? "-" : t.parent_id()},
      {"title", t.title()},
      {"role", t.role()},
      {"status", StatusName(t.status())},
      {"assignee", t.assignee().empty() ? "-" : t.assignee()},
      {"attempts", absl::StrCat(t.attempts(), " of ", t.max_attempts())},
      {"workspace", t.workspace().path()},
      {"branch", t.workspace().branch().empty() ? "-" : t.workspace().branch()},
      {"created", absl::StrCat(TimeString(t.create_time()), " by ", t.created_by())},
  };
  if (t.paused()) kv.push_back({"paused", "yes"});
  if (t.status() == v1::TASK_STATUS_BLOCKED) kv.push_back({"blocked on", t.blocked_detail()});
  if (t.has_end_time()) kv.push_back({"ended", TimeString(t.end_time())});
  if (t.has_failure()) kv.push_back({"failure", FailureText(t)});
  std::string out = KeyValues(kv);
  absl::StrAppend(&out, "instructions:\n  ", Indented(t.input().instructions()), "\n");
  if (t.has_result()) absl::StrAppend(&out, "result:\n  ", Indented(t.result().summary()), "\n");
  if (t.checks_size() > 0) {
    absl::StrAppend(&out, "checks (", t.check_rounds(), " of ", t.max_check_rounds(),
                    " failed rounds used):\n");
    for (const v1::GoalCheck& check : t.checks()) {
      std::string state = !check.has_run_time() ? "not run yet"
                          : check.passed()      ? "passed"
                          : check.exit_code() >= 0
                              ? absl::StrCat("failed (exit ", check.exit_code(), ")")
                              : std::string("failed (did not finish)");
      absl::StrAppend(&out, "  ", TerminalText(check.command()), ": ", state, "\n");
    }
  }
  Print(g, t, out);
  return kOk;
}

int CancelCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--reason"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 1) return Usage("usage: agentctl cancel TASK [--reason TEXT]");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::CancelTaskRequest req;
  req.set_task_id(parsed->positional[0]);
  req.set_reason(parsed->flags["--reason"]);
  v1::CancelTaskResponse resp;
  grpc::Status s = stub->CancelTask(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("CancelTask", s);
  Print(g, resp,
        resp.canceled_count() == 0
            ? absl::StrCat("task ", resp.task().id(), " had already ended (",
                           StatusName(resp.task().status()), ")\n")
            : absl::StrCat("canceled ", resp.canceled_count(), " task(s)\n"));
  return kOk;
}

int PauseCmd(const Globals& g, const std::vector<std::string>& args, bool pause) {
  if (args.size() != 1)
    return Usage(pause ? "usage: agentctl pause GOAL" : "usage: agentctl resume GOAL");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::Task goal;
  grpc::Status s;
  if (pause) {
    v1::PauseGoalRequest req;
    req.set_goal_id(args[0]);
    v1::PauseGoalResponse resp;
    s = stub->PauseGoal(c->NewContext().get(), req, &resp);
    goal = resp.goal();
  } else {
    v1::ResumeGoalRequest req;
    req.set_goal_id(args[0]);
    v1::ResumeGoalResponse resp;
    s = stub->ResumeGoal(c->NewContext().get(), req, &resp);
    goal = resp.goal();
  }
  if (!s.ok()) return RpcFailed(pause ? "PauseGoal" : "ResumeGoal", s);
  Print(g, goal, absl::StrCat("goal ", goal.id(), pause ? " paused\n" : " resumed\n"));
  return kOk;
}

int RetryCmd(const Globals& g, const std::vector<std::string>& args) {
  if (args.size() != 1) return Usage("usage: agentctl retry TASK");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::RetryTaskRequest req;
  req.set_task_id(args[0]);
  v1::RetryTaskResponse resp;
  grpc::Status s = stub->RetryTask(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("RetryTask", s);
  Print(g, resp.task(),
        absl::StrCat("task ", resp.task().id(), " ", StatusName(resp.task().status()), "\n"));
  return kOk;
}

int UsageCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--by", "--goal"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (!parsed->positional.empty()) {
    return Usage("usage: agentctl usage [--by role|model|goal|agent|task] [--goal G]");
  }
  v1::GetUsageRequest req;
  req.mutable_filter()->set_goal_id(parsed->flags["--goal"]);
  std::string by = parsed->flags.count("--by") ? parsed->flags["--by"] : "role";
  static const std::map<std::string, v1::UsageGroupBy> kBy = {{"role", v1::USAGE_GROUP_BY_ROLE},
                                                              {"model", v1::USAGE_GROUP_BY_MODEL},
                                                              {"goal", v1::USAGE_GROUP_BY_GOAL},
                                                              {"agent", v1::USAGE_GROUP_BY_AGENT},
                                                              {"task", v1::USAGE_GROUP_BY_TASK}};
  auto it = kBy.find(by);
  if (it == kBy.end())
    return Usage(absl::StrCat("--by: \"", by, "\" is not role, model, goal, agent or task"));
  req.add_group_by(it->second);
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::UsageService::NewStub(c->channel());
  v1::GetUsageResponse resp;
  grpc::Status s = stub->GetUsage(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("GetUsage", s);
  std::string header = absl::AsciiStrToUpper(by);
  std::vector<std::vector<std::string>> rows = {{header, "CALLS", "PROMPT", "COMPLETION", "COST"}};
  auto row = [&](const std::string& name, const v1::UsageTotals& t) {
    rows.push_back({name.empty() ? "-" : name, absl::StrCat(t.calls()),
                    absl::StrCat(t.prompt_tokens()), absl::StrCat(t.completion_tokens()),
                    absl::StrFormat("$%.4f", t.cost_usd())});
  };
  for (const v1::UsageGroup& grp : resp.groups()) {
    std::string name = by == "role"    ? grp.role()
                       : by == "model" ? absl::StrCat(grp.provider(), "/", grp.model())
                       : by == "goal"  ? grp.goal_id()
                       : by == "agent" ? grp.agent_id()
                                       : grp.task_id();
    row(name, grp.totals());
  }
  row("TOTAL", resp.total());
  Print(g, resp, Table(rows));
  return kOk;
}

int SendCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--task", "--reply-to"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 2) {
    return Usage("usage: agentctl send @AGENT|role:NAME|human \"TEXT\" [--task T] [--reply-to ID]");
  }
  v1::SendMessageRequest req;
  req.set_to(std::string(absl::StripPrefix(parsed->positional[0], "@")));
  req.set_body(parsed->positional[1]);
  req.set_task_id(parsed->flags["--task"]);
  req.set_reply_to_id(parsed->flags["--reply-to"]);
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::MessageService::NewStub(c->channel());
  v1::SendMessageResponse resp;
  grpc::Status s = stub->SendMessage(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("SendMessage", s);
  Print(g, resp.envelope(),
        absl::StrCat("sent message ", resp.envelope().id(), " to ", resp.envelope().to(), "\n"));
  return kOk;
}

int MessagesCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--goal", "--task", "--agent"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (!parsed->positional.empty()) {
    return Usage("usage: agentctl messages [--goal G] [--task T] [--agent A]");
  }
  v1::ListMessagesRequest req;
  req.set_goal_id(parsed->flags["--goal"]);
  req.set_task_id(parsed->flags["--task"]);
  req.set_agent_id(std::string(absl::StripPrefix(parsed->flags["--agent"], "@")));
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::MessageService::NewStub(c->channel());
  v1::ListMessagesResponse all;
  for (;;) {
    v1::ListMessagesResponse page;
    grpc::Status s = stub->ListMessages(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("ListMessages", s);
    for (auto& m : *page.mutable_envelopes()) *all.add_envelopes() = std::move(m);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::vector<std::vector<std::string>> rows = {{"ID", "FROM", "TO", "TYPE", "TASK", "BODY"}};
  for (const v1::Envelope& m : all.envelopes()) {
    std::string type =
        absl::AsciiStrToLower(absl::StripPrefix(v1::EnvelopeType_Name(m.type()), "ENVELOPE_TYPE_"));
    std::string to =
        m.delivered_to().empty() ? m.to() : absl::StrCat(m.to(), "→", m.delivered_to());
    std::string body = m.body().substr(0, m.body().find('\n'));
    if (body.size() > 60) body = body.substr(0, 57) + "...";
    rows.push_back({m.id(), m.from(), to, type, m.task_id().empty() ? "-" : m.task_id(), body});
  }
  Print(g, all, all.envelopes().empty() ? "No messages.\n" : Table(rows));
  return kOk;
}

int GetPlans(const Globals& g, const CmdArgs& args) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::ListPlansRequest req;
  if (auto it = args.flags.find("--goal"); it != args.flags.end()) req.set_goal_id(it->second);
  v1::ListPlansResponse all;
  for (;;) {
    v1::ListPlansResponse page;
    grpc::Status s = stub->ListPlans(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("ListPlans", s);
    for (auto& p : *page.mutable_plans()) *all.add_plans() = std::move(p);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "TASK", "REV", "STATUS", "STEPS", "PROPOSER", "ESTIMATE"}};
  for (const v1::Plan& p : all.plans()) {
    rows.push_back({p.id(), p.task_id(), absl::StrCat(p.revision()), PlanStatusName(p.status()),
                    absl::StrCat(p.steps_size()), p.proposer(), Estimate(p.total_estimate())});
  }
  Print(g, all, all.plans().empty() ? "No plans.\n" : Table(rows));
  return kOk;
}

int DescribePlan(const Globals& g, const std::string& id) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::GetPlanRequest req;
  req.set_plan_id(id);
  v1::GetPlanResponse resp;
  grpc::Status s = stub->GetPlan(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("GetPlan", s);
  const v1::Plan& p = resp.plan();
  std::vector<std::pair<std::string, std::string>> kv = {
      {"id", p.id()},
      {"task", p.task_id()},
      {"goal", p.goal_id()},
      {"proposer", p.proposer()},
      {"revision",
       absl::StrCat(p.revision(), p.previous_plan_id().empty()
                                      ? ""
                                      : absl::StrCat(" (revises ", p.previous_plan_id(), ")"))},
      {"status", PlanStatusName(p.status())},
      {"estimate", Estimate(p.total_estimate())},
  };
  if (!p.decided_by().empty()) kv.push_back({"decided by", p.decided_by()});
  if (!p.rejection_reason().empty()) kv.push_back({"rejected because", p.rejection_reason()});
  std::string out = KeyValues(kv);
  if (!p.summary().empty()) absl::StrAppend(&out, "summary:\n  ", Indented(p.summary()), "\n");
  std::vector<std::vector<std::string>> rows = {
      {"STEP", "ROLE", "DEPS", "ESTIMATE", "TASK", "TITLE"}};
  for (const v1::PlanStep& st : p.steps()) {
    rows.push_back({st.id(), st.role(), st.deps().empty() ? "-" : absl::StrJoin(st.deps(), ","),
                    Estimate(st.estimate()), st.task_id().empty() ? "-" : st.task_id(),
                    st.title().empty() ? st.instructions().substr(0, 60) : st.title()});
  }
  absl::StrAppend(&out, "steps:\n", Table(rows));
  Print(g, p, out);
  return kOk;
}

int ApproveCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--comment"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 1) return Usage("usage: agentctl approve PLAN [--comment TEXT]");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::ApprovePlanRequest req;
  req.set_plan_id(parsed->positional[0]);
  req.set_comment(parsed->flags["--comment"]);
  v1::ApprovePlanResponse resp;
  grpc::Status s = stub->ApprovePlan(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("ApprovePlan", s);
  Print(g, resp.plan(),
        absl::StrCat("plan ", resp.plan().id(), " ", PlanStatusName(resp.plan().status()), "\n"));
  return kOk;
}

int RejectCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--reason"}, {});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 1 || parsed->flags["--reason"].empty()) {
    return Usage("usage: agentctl reject PLAN --reason TEXT (the reason goes to the proposer)");
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::RejectPlanRequest req;
  req.set_plan_id(parsed->positional[0]);
  req.set_reason(parsed->flags["--reason"]);
  v1::RejectPlanResponse resp;
  grpc::Status s = stub->RejectPlan(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("RejectPlan", s);
  Print(g, resp.plan(), absl::StrCat("plan ", resp.plan().id(), " rejected\n"));
  return kOk;
}

// `budget get|set GOAL | --role R | --global [--usd N] [--tokens N]`. set changes only the
// limits given (the others stay as they are); a goal held at its budget goes on once the
// new limit allows its next call.
int BudgetCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--role", "--usd", "--tokens"}, {"--global"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  auto& f = parsed->flags;
  const char* usage =
      "usage: agentctl budget get|set GOAL | --role R | --global [--usd N] [--tokens N]";
  size_t scopes =
      (parsed->positional.size() == 2 ? 1 : 0) + f.count("--role") + f.count("--global");
  if (parsed->positional.empty() || scopes != 1 ||
      (parsed->positional[0] != "get" && parsed->positional[0] != "set")) {
    return Usage(usage);
  }
  bool set = parsed->positional[0] == "set";
  if (set != (f.count("--usd") + f.count("--tokens") > 0)) {
    return Usage(set ? "budget set needs --usd N and/or --tokens N (0 removes that limit)" : usage);
  }
  v1::BudgetScope scope = f.count("--global") ? v1::BUDGET_SCOPE_GLOBAL
                          : f.count("--role") ? v1::BUDGET_SCOPE_ROLE
                                              : v1::BUDGET_SCOPE_GOAL;
  std::string scope_id = scope == v1::BUDGET_SCOPE_ROLE   ? f["--role"]
                         : scope == v1::BUDGET_SCOPE_GOAL ? parsed->positional[1]
                                                          : "";
  double usd = -1;
  int64_t tokens = -1;
  if (f.count("--usd") &&
      (!absl::SimpleAtod(absl::StripPrefix(f["--usd"], "$"), &usd) || usd < 0)) {
    return Usage(absl::StrCat("--usd: \"", f["--usd"], "\" is not an amount of USD"));
  }
  if (f.count("--tokens") && (!absl::SimpleAtoi(f["--tokens"], &tokens) || tokens < 0)) {
    return Usage(absl::StrCat("--tokens: \"", f["--tokens"], "\" is not a number"));
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::UsageService::NewStub(c->channel());
  v1::GetBudgetRequest get;
  get.set_scope(scope);
  get.set_scope_id(scope_id);
  v1::GetBudgetResponse now;
  grpc::Status s = stub->GetBudget(c->NewContext().get(), get, &now);
  if (!s.ok()) return RpcFailed("GetBudget", s);
  v1::Budget b = now.budget();
  if (set) {
    v1::SetBudgetRequest req;
    req.set_scope(scope);
    req.set_scope_id(scope_id);
    req.mutable_limit()->set_max_cost_usd(usd >= 0 ? usd : b.max_cost_usd());
    req.mutable_limit()->set_max_tokens(tokens >= 0 ? tokens : b.max_tokens());
    v1::SetBudgetResponse changed;
    s = stub->SetBudget(c->NewContext().get(), req, &changed);
    if (!s.ok()) return RpcFailed("SetBudget", s);
    b = changed.budget();
  }
  auto limit = [](bool has, const std::string& text) { return has ? text : std::string("none"); };
  Print(
      g, b,
      KeyValues({{"budget", scope == v1::BUDGET_SCOPE_GLOBAL ? "global"
                            : scope == v1::BUDGET_SCOPE_ROLE ? absl::StrCat("role ", scope_id)
                                                             : absl::StrCat("goal ", scope_id)},
                 {"usd", absl::StrCat(absl::StrFormat("$%.4f", b.used_cost_usd()), " used of ",
                                      limit(b.max_cost_usd() > 0,
                                            absl::StrFormat("$%.2f", b.max_cost_usd())))},
                 {"tokens", absl::StrCat(b.used_tokens(), " used of ",
                                         limit(b.max_tokens() > 0, absl::StrCat(b.max_tokens())))},
                 {"updated", b.updated_by().empty() ? "-" : b.updated_by()}}));
  return kOk;
}

int AuditCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--goal", "--actor", "--action"}, {"--verify"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (!parsed->positional.empty()) {
    return Usage("usage: agentctl audit [--goal G] [--actor A] [--action X] [--verify]");
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AuditService::NewStub(c->channel());
  if (parsed->flags.count("--verify")) {
    v1::VerifyAuditChainResponse resp;
    grpc::Status s =
        stub->VerifyAuditChain(c->NewContext().get(), v1::VerifyAuditChainRequest(), &resp);
    if (!s.ok()) return RpcFailed("VerifyAuditChain", s);
    Print(g, resp,
          resp.ok()
              ? absl::StrCat("audit chain intact: ", resp.entries_checked(), " entries, last hash ",
                             resp.last_hash(), "\n")
              : absl::StrCat("audit chain BROKEN at entry ", resp.first_broken_seq(), ": ",
                             resp.reason(), " (", resp.entries_checked(), " entries checked)\n"));
    return resp.ok() ? kOk : kFailed;
  }
  v1::ListAuditEntriesRequest req;
  req.set_goal_id(parsed->flags["--goal"]);
  req.set_actor_id(parsed->flags["--actor"]);
  req.set_action(parsed->flags["--action"]);
  v1::ListAuditEntriesResponse all;
  for (;;) {
    v1::ListAuditEntriesResponse page;
    grpc::Status s = stub->ListAuditEntries(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("ListAuditEntries", s);
    for (auto& e : *page.mutable_entries()) *all.add_entries() = std::move(e);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::vector<std::vector<std::string>> rows = {
      {"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "GOAL"}};
  for (const v1::AuditEntry& e : all.entries()) {
    std::string target = e.target();
    if (target.size() > 60) target = target.substr(0, 57) + "...";
    rows.push_back({absl::StrCat(e.seq()), TimeString(e.time()), e.actor().id(), e.action(),
                    target.empty() ? "-" : target, e.goal_id().empty() ? "-" : e.goal_id()});
  }
  Print(g, all, all.entries().empty() ? "No audit entries.\n" : Table(rows));
  return kOk;
}

int BootstrapCmd(const Globals& g, const std::vector<std::string>& args) {
  auto parsed = ParseCmdArgs(args, {"--timeout"}, {"--no-wait"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  if (parsed->positional.size() != 2) {
    return Usage("usage: agentctl bootstrap TEMPLATE DIR [--no-wait] [--timeout D]");
  }
  absl::Duration wait_for = absl::Minutes(30);
  if (parsed->flags.count("--timeout")) {
    absl::StatusOr<absl::Duration> d = ParseDuration(parsed->flags["--timeout"]);
    if (!d.ok() || *d <= absl::ZeroDuration()) {
      return Usage(absl::StrCat("--timeout: ", d.ok() ? "must be positive" : d.status().message()));
    }
    wait_for = *d;
  }
  v1::SubmitGoalRequest req;
  const std::string& name = parsed->positional[0];
  std::string dir = Absolute(parsed->positional[1]);
  req.set_text(absl::StrCat("Bootstrap a project from template ", name, " in ", dir));
  req.set_title(absl::StrCat("bootstrap ", name));
  req.mutable_workspace()->set_kind(v1::WORKSPACE_KIND_NEW_DIRECTORY);
  req.mutable_workspace()->set_path(dir);
  req.mutable_workspace()->set_template_(name);
  return SubmitAndWait(g, req, parsed->flags.count("--no-wait") == 0, wait_for);
}

}  // namespace agentd::ctl
