#include "manager/ctl/tasks_cmd.h"

#include "manager/ctl/plan_edit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

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
#include "manager/ctl/watch.h"

namespace agentd::ctl {
namespace {

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

std::vector<std::string> TaskRow(const v1::Task& t, int depth = 0) {
  return {std::string(2 * depth, ' ') + t.id(), t.role(), StatusName(t.status()),
          t.assignee().empty() ? "-" : t.assignee(), t.title()};
}

// One line per task, children under their parent.
void Tree(const std::vector<v1::Task>& tasks, const std::string& parent, int depth,
          std::vector<std::vector<std::string>>* rows) {
  // Oldest first within a parent: the order work was handed out.
  for (auto it = tasks.rbegin(); it != tasks.rend(); ++it) {
    const v1::Task& t = *it;
    if (t.parent_id() != parent) continue;
    rows->push_back(TaskRow(t, depth));
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

// One task's progress line for `goal --wait`: its status and, while it waits, why
// ("blocked: provider local unreachable at localhost:11434; retry 2 of 5").
std::string ProgressLine(const v1::Task& t) {
  std::string line =
      absl::StrFormat("  %s %-8s %-9s %s", TerminalText(t.id()), TerminalText(t.role()),
                      StatusName(t.status()), TerminalText(t.title()));
  if (t.status() == v1::TASK_STATUS_BLOCKED && !t.blocked_detail().empty()) {
    absl::StrAppend(&line, " (", TerminalText(t.blocked_detail()), ")");
  }
  // Titles and failures are the agents' words: one escaped line each.
  if (t.has_failure()) absl::StrAppend(&line, " (", TerminalText(FailureText(t)), ")");
  return line;
}

// Submits the goal and, with `wait`, follows it to its end on the change feed: progress
// on stderr, the result on stdout; the exit code says how it ended. A restart of agentd
// while it waits is ridden out (the feed resumes where it stopped).
int SubmitAndWait(const Globals& g, const v1::SubmitGoalRequest& req, bool wait,
                  absl::Duration wait_for) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  // The feed's position before the goal exists: following from there misses none of it.
  absl::StatusOr<int64_t> seq = wait ? CurrentSeq(*c) : 0;
  if (!seq.ok()) return Fail(std::string(seq.status().message()));
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
  absl::Time until =
      wait_for == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + wait_for;
  std::map<std::string, std::string> shown;  // task id → the last line printed for it
  auto show = [&](const v1::Task& t) {
    std::string line = ProgressLine(t);
    if (shown[t.id()] == line) return;
    shown[t.id()] = line;
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  show(goal);
  v1::EventFilter filter;
  filter.set_goal_id(goal.id());
  filter.add_kinds("task.");
  filter.add_kinds("goal.");
  std::optional<v1::Task> ended;
  absl::Status followed = FollowEvents(g.conn, *seq, filter, until, [&](const v1::Event& e) {
    if (!e.has_task()) return true;
    show(e.task());
    if (e.task().id() == goal.id() && Final(e.task().status())) ended = e.task();
    return !ended.has_value();
  });
  if (ended.has_value()) {
    const v1::Task& root = *ended;
    Print(g, root,
          root.status() == v1::TASK_STATUS_COMPLETED
              ? absl::StrCat(root.result().summary(), "\n")
              : absl::StrCat("goal ", root.id(), " ", StatusName(root.status()), ": ",
                             FailureText(root), "\n"));
    return root.status() == v1::TASK_STATUS_COMPLETED ? kOk : kFailed;
  }
  if (followed.code() == absl::StatusCode::kDeadlineExceeded) {
    return Fail(
        absl::StrCat("goal ", goal.id(), " is still running after ", absl::FormatDuration(wait_for),
                     " (agentctl get tasks --goal ", goal.id(), " --tree)"),
        kStillRunning);
  }
  return Fail(absl::StrCat("following goal ", goal.id(), ": ", followed.message()),
              followed.code() == absl::StatusCode::kUnavailable ? kNoConnection : kFailed);
}

struct GoalOpts {
  std::string text, workspace, approve, budget, title, timeout;
  int64_t tokens = 0;
  int32_t check_rounds = 0;
  std::vector<std::string> checks;
  bool wait = false, init_existing = false;
};

int GoalCmd(const Globals& g, const GoalOpts& o) {
  v1::SubmitGoalRequest req;
  req.set_text(o.text);
  req.set_title(o.title);
  if (!o.workspace.empty()) {
    std::string dir = Absolute(o.workspace);
    struct stat st {};
    bool repo = stat((dir + "/.git").c_str(), &st) == 0;
    req.mutable_workspace()->set_kind(repo ? v1::WORKSPACE_KIND_EXISTING_REPO
                                           : v1::WORKSPACE_KIND_NEW_DIRECTORY);
    req.mutable_workspace()->set_path(dir);
    // A folder with files that is not a repository becomes one (git init) only when the
    // person says so.
    req.mutable_workspace()->set_init_existing(o.init_existing);
  }
  if (o.approve == "auto") req.set_approval_policy(v1::APPROVAL_POLICY_AUTO);
  if (o.approve == "manual") req.set_approval_policy(v1::APPROVAL_POLICY_MANUAL);
  if (!o.budget.empty()) {
    double usd = UsdValue(o.budget);
    if (usd <= 0) return Usage(absl::StrCat("--budget: \"", o.budget, "\" must be above zero"));
    req.mutable_budget()->set_max_cost_usd(usd);
  }
  if (o.tokens > 0) req.mutable_budget()->set_max_tokens(o.tokens);
  for (const std::string& check : o.checks) req.add_checks(check);
  if (o.check_rounds > 0) req.set_max_check_rounds(o.check_rounds);
  absl::Duration wait_for = o.timeout.empty() ? absl::InfiniteDuration() : DurationValue(o.timeout);
  return SubmitAndWait(g, req, o.wait, wait_for);
}

struct GetTasksOpts {
  std::string goal;
  bool tree = false, watch = false;
};

int GetTasks(const Globals& g, const GetTasksOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  absl::StatusOr<int64_t> seq = o.watch ? CurrentSeq(*c) : 0;
  if (!seq.ok()) return Fail(std::string(seq.status().message()));
  v1::ListTasksRequest req;
  req.set_goal_id(o.goal);
  absl::StatusOr<std::vector<v1::Task>> tasks = ListAll(*c, req);
  if (!tasks.ok()) return Fail(std::string(tasks.status().message()));
  v1::ListTasksResponse all;
  for (const v1::Task& t : *tasks) *all.add_tasks() = t;
  std::vector<std::vector<std::string>> rows = {{"ID", "ROLE", "STATUS", "ASSIGNEE", "TITLE"}};
  if (o.tree) {
    // Roots are goals, or (with --goal) the goal itself.
    Tree(*tasks, "", 0, &rows);
  } else {
    for (const v1::Task& t : *tasks) rows.push_back(TaskRow(t));
  }
  if (o.watch) {
    if (g.format != Format::kTable) Print(g, all, "");
    v1::EventFilter filter;
    filter.add_kinds("task.");
    filter.add_kinds("goal.");
    filter.set_goal_id(o.goal);
    return WatchRows(g, *seq, filter, rows,
                     [](const v1::Event& e, std::vector<std::string>* row,
                        const google::protobuf::Message** resource) {
                       if (!e.has_task()) return false;
                       *row = TaskRow(e.task());
                       *resource = &e.task();
                       return true;
                     });
  }
  Print(g, all, tasks->empty() ? "No tasks.\n" : Table(rows));
  return kOk;
}

int DescribeTask(const Globals& g, const IdOpts& o) {
  const std::string& id = o.id;
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

struct IdReasonOpts {
  std::string id, reason;
};

int CancelCmd(const Globals& g, const IdReasonOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::CancelTaskRequest req;
  req.set_task_id(o.id);
  req.set_reason(o.reason);
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

int PauseOrResume(const Globals& g, const std::string& goal_id, bool pause) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::Task goal;
  grpc::Status s;
  if (pause) {
    v1::PauseGoalRequest req;
    req.set_goal_id(goal_id);
    v1::PauseGoalResponse resp;
    s = stub->PauseGoal(c->NewContext().get(), req, &resp);
    goal = resp.goal();
  } else {
    v1::ResumeGoalRequest req;
    req.set_goal_id(goal_id);
    v1::ResumeGoalResponse resp;
    s = stub->ResumeGoal(c->NewContext().get(), req, &resp);
    goal = resp.goal();
  }
  if (!s.ok()) return RpcFailed(pause ? "PauseGoal" : "ResumeGoal", s);
  Print(g, goal, absl::StrCat("goal ", goal.id(), pause ? " paused\n" : " resumed\n"));
  return kOk;
}

int PauseCmd(const Globals& g, const IdOpts& o) { return PauseOrResume(g, o.id, true); }
int ResumeCmd(const Globals& g, const IdOpts& o) { return PauseOrResume(g, o.id, false); }

int RetryCmd(const Globals& g, const IdOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::TaskService::NewStub(c->channel());
  v1::RetryTaskRequest req;
  req.set_task_id(o.id);
  v1::RetryTaskResponse resp;
  grpc::Status s = stub->RetryTask(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("RetryTask", s);
  Print(g, resp.task(),
        absl::StrCat("task ", resp.task().id(), " ", StatusName(resp.task().status()), "\n"));
  return kOk;
}

struct UsageOpts {
  std::string by = "role", goal;
};

int UsageCmd(const Globals& g, const UsageOpts& o) {
  v1::GetUsageRequest req;
  req.mutable_filter()->set_goal_id(o.goal);
  const std::string& by = o.by;
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

struct SendOpts {
  std::string to, text, task, reply_to;
};

int SendCmd(const Globals& g, const SendOpts& o) {
  v1::SendMessageRequest req;
  req.set_to(std::string(absl::StripPrefix(o.to, "@")));
  req.set_body(o.text);
  req.set_task_id(o.task);
  req.set_reply_to_id(o.reply_to);
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

struct MessagesOpts {
  std::string goal, task, agent;
};

int MessagesCmd(const Globals& g, const MessagesOpts& o) {
  v1::ListMessagesRequest req;
  req.set_goal_id(o.goal);
  req.set_task_id(o.task);
  req.set_agent_id(std::string(absl::StripPrefix(o.agent, "@")));
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

struct GetPlansOpts {
  std::string goal;
  bool watch = false;
};

std::vector<std::string> PlanRow(const v1::Plan& p) {
  return {p.id(),
          p.task_id(),
          absl::StrCat(p.revision()),
          PlanStatusName(p.status()),
          absl::StrCat(p.steps_size()),
          p.proposer(),
          Estimate(p.total_estimate())};
}

int GetPlans(const Globals& g, const GetPlansOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  absl::StatusOr<int64_t> seq = o.watch ? CurrentSeq(*c) : 0;
  if (!seq.ok()) return Fail(std::string(seq.status().message()));
  v1::ListPlansRequest req;
  req.set_goal_id(o.goal);
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
  for (const v1::Plan& p : all.plans()) rows.push_back(PlanRow(p));
  if (o.watch) {
    if (g.format != Format::kTable) Print(g, all, "");
    v1::EventFilter filter;
    filter.add_kinds("plan.");
    filter.set_goal_id(o.goal);
    return WatchRows(g, *seq, filter, rows,
                     [](const v1::Event& e, std::vector<std::string>* row,
                        const google::protobuf::Message** resource) {
                       if (!e.has_plan()) return false;
                       *row = PlanRow(e.plan());
                       *resource = &e.plan();
                       return true;
                     });
  }
  Print(g, all, all.plans().empty() ? "No plans.\n" : Table(rows));
  return kOk;
}

int DescribePlan(const Globals& g, const IdOpts& o) {
  const std::string& id = o.id;
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

struct ApproveOpts {
  std::string id, comment;
  bool edit = false;
};

int ApproveCmd(const Globals& g, const ApproveOpts& o) {
  if (o.edit) return EditAndApprove(g, o.id, o.comment);
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::ApprovePlanRequest req;
  req.set_plan_id(o.id);
  req.set_comment(o.comment);
  v1::ApprovePlanResponse resp;
  grpc::Status s = stub->ApprovePlan(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("ApprovePlan", s);
  Print(g, resp.plan(),
        absl::StrCat("plan ", resp.plan().id(), " ", PlanStatusName(resp.plan().status()), "\n"));
  return kOk;
}

int RejectCmd(const Globals& g, const IdReasonOpts& o) {
  if (o.reason.empty()) return Usage("reject: --reason must say why (it goes to the proposer)");
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::PlanService::NewStub(c->channel());
  v1::RejectPlanRequest req;
  req.set_plan_id(o.id);
  req.set_reason(o.reason);
  v1::RejectPlanResponse resp;
  grpc::Status s = stub->RejectPlan(c->NewContext().get(), req, &resp);
  if (!s.ok()) return RpcFailed("RejectPlan", s);
  Print(g, resp.plan(), absl::StrCat("plan ", resp.plan().id(), " rejected\n"));
  return kOk;
}

struct BudgetOpts {
  bool set = false;
  std::string goal, role, usd;
  bool global = false;
  int64_t tokens = -1;
};

// `budget get|set GOAL | --role R | --global [--usd N] [--tokens N]`. set changes only the
// limits given (the others stay as they are); a goal held at its budget goes on once the
// new limit allows its next call.
int BudgetCmd(const Globals& g, const BudgetOpts& o) {
  int scopes = (o.goal.empty() ? 0 : 1) + (o.role.empty() ? 0 : 1) + (o.global ? 1 : 0);
  if (scopes != 1) {
    return Usage(absl::StrCat("budget ", o.set ? "set" : "get",
                              ": name one budget: a GOAL, --role R or --global"));
  }
  if (o.set && o.usd.empty() && o.tokens < 0) {
    return Usage("budget set needs --usd N and/or --tokens N (0 removes that limit)");
  }
  const bool set = o.set;
  v1::BudgetScope scope = o.global          ? v1::BUDGET_SCOPE_GLOBAL
                          : !o.role.empty() ? v1::BUDGET_SCOPE_ROLE
                                            : v1::BUDGET_SCOPE_GOAL;
  std::string scope_id = scope == v1::BUDGET_SCOPE_ROLE   ? o.role
                         : scope == v1::BUDGET_SCOPE_GOAL ? o.goal
                                                          : "";
  double usd = o.usd.empty() ? -1 : UsdValue(o.usd);
  int64_t tokens = o.tokens;
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

struct AuditOpts {
  std::string goal, actor, action;
  bool verify = false;
};

int AuditCmd(const Globals& g, const AuditOpts& o) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::AuditService::NewStub(c->channel());
  if (o.verify) {
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
  req.set_goal_id(o.goal);
  req.set_actor_id(o.actor);
  req.set_action(o.action);
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

int GetTemplates(const Globals& g, const NoOpts&) {
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  v1::ListTemplatesResponse resp;
  grpc::Status s = v1::TaskService::NewStub(c->channel())
                       ->ListTemplates(c->NewContext().get(), v1::ListTemplatesRequest(), &resp);
  if (!s.ok()) return RpcFailed("ListTemplates", s);
  std::vector<std::vector<std::string>> rows = {{"NAME", "FILES", "POST-CHECK", "DESCRIPTION"}};
  for (const v1::ProjectTemplate& t : resp.templates()) {
    rows.push_back({t.name(), absl::StrCat(t.files_size()),
                    t.post_check().empty() ? "-" : absl::StrJoin(t.post_check(), " "),
                    t.description()});
  }
  Print(g, resp, resp.templates().empty() ? "No project templates.\n" : Table(rows));
  return kOk;
}

struct BootstrapOpts {
  std::string template_name, dir, timeout = "30m";
  bool no_wait = false;
};

int BootstrapCmd(const Globals& g, const BootstrapOpts& o) {
  v1::SubmitGoalRequest req;
  const std::string& name = o.template_name;
  std::string dir = Absolute(o.dir);
  req.set_text(absl::StrCat("Bootstrap a project from template ", name, " in ", dir));
  req.set_title(absl::StrCat("bootstrap ", name));
  req.mutable_workspace()->set_kind(v1::WORKSPACE_KIND_NEW_DIRECTORY);
  req.mutable_workspace()->set_path(dir);
  req.mutable_workspace()->set_template_(name);
  return SubmitAndWait(g, req, !o.no_wait, DurationValue(o.timeout));
}

}  // namespace

void AddTaskCommands(const CommandTree& t) {
  {
    CLI::App* cmd = AddCommand(
        t.root, "goal", "give the team a goal; --wait follows it to its end",
        "A goal goes to the CEO, who delegates; a plan is approved by a person (agentctl\n"
        "approve) unless --approve auto. DIR is a git repository, worked in a worktree and\n"
        "branch of its own, or a new directory. Each --check CMD is run by agentd in the\n"
        "workspace (sandboxed) once the CEO completes the goal: it completes only if every\n"
        "check exits 0; failures go back to the CEO up to --check-rounds times.\n"
        "With --wait: progress on stderr, the result on stdout; exit 0 only if the goal\n"
        "completed (and its checks passed), 1 if it failed or was canceled, 4 if it is\n"
        "still running when --timeout runs out.\n\n"
        "Examples:\n"
        "  agentctl goal \"Add mul() with tests\" --workspace ~/src/calc --check \"pytest -q\" "
        "--wait\n"
        "  agentctl goal \"Write a README\" --approve auto --budget 0.50 --wait --timeout 20m");
    auto o = OnRun(t, cmd, GoalCmd);
    cmd->add_option("TEXT", o->text, "what the team should do")->required();
    cmd->add_option("--workspace", o->workspace, "a git repository or a new directory")
        ->type_name("DIR");
    cmd->add_flag("--init-existing", o->init_existing,
                  "make a folder that holds files but is not a repository one (git init)");
    cmd->add_option("--approve", o->approve, "who approves its plans (default: policy)")
        ->check(CLI::IsMember({"auto", "manual"}));
    cmd->add_option("--budget", o->budget, "the goal's budget in USD")
        ->check(kUsd)
        ->type_name("USD");
    cmd->add_option("--tokens", o->tokens, "the goal's budget in tokens")
        ->check(CLI::PositiveNumber);
    cmd->add_option("--title", o->title, "a short title (default: from TEXT)");
    cmd->add_option("--check", o->checks,
                    "a command that must exit 0 for the goal to count as done")
        ->type_name("CMD")
        ->allow_extra_args(false);
    cmd->add_option("--check-rounds", o->check_rounds,
                    "failed check rounds before the goal fails (policy.max_check_rounds)")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--wait", o->wait, "follow the goal to its end; the exit code says how it ended");
    cmd->add_option("--timeout", o->timeout, "with --wait: stop waiting after D (exit 4)")
        ->check(kPositiveDuration)
        ->type_name("DURATION");
  }
  {
    CLI::App* cmd = AddCommand(t.get, "tasks", "goals and the tasks under them",
                               "Examples:\n  agentctl get tasks --goal g-1 --tree\n"
                               "  agentctl get tasks -o json | jq '.tasks[].status'");
    cmd->alias("task");
    auto o = OnRun(t, cmd, GetTasks);
    cmd->add_option("--goal", o->goal, "only this goal's tasks")->type_name("GOAL");
    cmd->add_flag("--tree", o->tree, "children under their parent");
    cmd->add_flag("-w,--watch", o->watch, "after the list, print each task as it changes");
  }
  {
    CLI::App* cmd = AddCommand(t.describe, "task", "one task in full, with its result or failure",
                               "Example:\n  agentctl describe task t-4");
    auto o = OnRun(t, cmd, DescribeTask);
    cmd->add_option("TASK", o->id, "the task's id")->required()->type_name("TASK");
  }
  {
    CLI::App* cmd = AddCommand(t.root, "cancel", "cancel a task or goal and everything under it",
                               "Example:\n  agentctl cancel g-1 --reason \"wrong repository\"");
    auto o = OnRun(t, cmd, CancelCmd);
    cmd->add_option("TASK", o->id, "a task or goal id")->required()->type_name("TASK");
    cmd->add_option("--reason", o->reason, "recorded with the cancellation");
  }
  for (bool pause : {true, false}) {
    CLI::App* cmd =
        AddCommand(t.root, pause ? "pause" : "resume",
                   pause ? "hold the scheduling of a goal's tasks" : "release a paused goal",
                   pause ? "Running tasks finish; no new one is handed out until resume.\n\n"
                           "Example:\n  agentctl pause g-1"
                         : "Example:\n  agentctl resume g-1");
    auto o = OnRun(t, cmd, pause ? PauseCmd : ResumeCmd);
    cmd->add_option("GOAL", o->id, "the goal's id")->required()->type_name("GOAL");
  }
  {
    CLI::App* cmd = AddCommand(t.root, "retry", "make a failed or canceled task ready again",
                               "Example:\n  agentctl retry t-7");
    auto o = OnRun(t, cmd, RetryCmd);
    cmd->add_option("TASK", o->id, "the task's id")->required()->type_name("TASK");
  }
  {
    CLI::App* cmd = AddCommand(t.root, "usage", "LLM tokens and cost",
                               "Examples:\n  agentctl usage --by model\n"
                               "  agentctl usage --by task --goal g-1");
    auto o = OnRun(t, cmd, UsageCmd);
    cmd->add_option("--by", o->by, "group by (default role)")
        ->check(CLI::IsMember({"role", "model", "goal", "agent", "task"}));
    cmd->add_option("--goal", o->goal, "only this goal")->type_name("GOAL");
  }
  {
    CLI::App* cmd = AddCommand(
        t.root, "send", "a message on the bus, to an agent, a role or a person",
        "TO is @AGENT (an agent's id), role:NAME (any agent of the role) or human.\n"
        "Answer an agent's question with --reply-to its message id (agentctl messages).\n"
        "Put -- before TEXT that starts with a dash.\n\n"
        "Examples:\n  agentctl send @ceo \"prefer short names\"\n"
        "  agentctl send @coder-1 \"yes, use pytest\" --reply-to m-3\n"
        "  agentctl send @ceo -- \"-1 is a valid input\"");
    auto o = OnRun(t, cmd, SendCmd);
    cmd->add_option("TO", o->to, "@AGENT, role:NAME or human")->required()->type_name("AGENT");
    cmd->add_option("TEXT", o->text, "the message")->required();
    cmd->add_option("--task", o->task, "the task it is about")->type_name("TASK");
    cmd->add_option("--reply-to", o->reply_to, "the message it answers")->type_name("MESSAGE");
  }
  {
    CLI::App* cmd = AddCommand(t.root, "messages", "the messages on the bus",
                               "Example:\n  agentctl messages --goal g-1");
    auto o = OnRun(t, cmd, MessagesCmd);
    cmd->add_option("--goal", o->goal, "only this goal's")->type_name("GOAL");
    cmd->add_option("--task", o->task, "only this task's")->type_name("TASK");
    cmd->add_option("--agent", o->agent, "only to or from this agent")->type_name("AGENT");
  }
  {
    CLI::App* tmpl = AddCommand(t.get, "templates", "project templates a goal can start from",
                                "Example:\n  agentctl get templates\n"
                                "  agentctl bootstrap python-fastapi ~/src/new-api");
    tmpl->alias("template");
    OnRun(t, tmpl, GetTemplates);
  }
  {
    CLI::App* cmd = AddCommand(t.get, "plans", "plans agents proposed, with their estimates",
                               "Example:\n  agentctl get plans --goal g-1");
    cmd->alias("plan");
    auto o = OnRun(t, cmd, GetPlans);
    cmd->add_option("--goal", o->goal, "only this goal's")->type_name("GOAL");
    cmd->add_flag("-w,--watch", o->watch, "after the list, print each plan as it changes");
  }
  {
    CLI::App* cmd = AddCommand(t.describe, "plan", "one plan's steps, deps and estimates",
                               "Example:\n  agentctl describe plan p-1");
    auto o = OnRun(t, cmd, DescribePlan);
    cmd->add_option("PLAN", o->id, "the plan's id")->required()->type_name("PLAN");
  }
  {
    CLI::App* cmd = AddCommand(
        t.root, "approve", "approve a proposed plan: its steps become tasks",
        "With --edit the plan opens as YAML in $VISUAL or $EDITOR: change steps'\n"
        "instructions, roles, deps and estimates, add or remove steps, save and quit.\n"
        "agentd checks the edit as it checks an agent's plan; problems are shown and the\n"
        "file opens again with them on top. A valid edit is approved as a new revision.\n"
        "Saving the file unchanged approves nothing.\n\n"
        "Examples:\n  agentctl approve p-1 --comment \"go ahead\"\n  agentctl approve p-1 --edit");
    auto o = OnRun(t, cmd, ApproveCmd);
    cmd->add_option("PLAN", o->id, "the plan's id")->required()->type_name("PLAN");
    cmd->add_option("--comment", o->comment, "recorded with the approval");
    cmd->add_flag("-e,--edit", o->edit, "edit the plan in $EDITOR before approving it");
  }
  {
    CLI::App* cmd = AddCommand(t.root, "reject", "reject a proposed plan, saying why",
                               "The reason goes back to the proposer, who revises the plan.\n\n"
                               "Example:\n  agentctl reject p-1 --reason \"run the tests too\"");
    auto o = OnRun(t, cmd, RejectCmd);
    cmd->add_option("PLAN", o->id, "the plan's id")->required()->type_name("PLAN");
    cmd->add_option("--reason", o->reason, "why (required)")->required();
  }
  {
    CLI::App* budget = AddCommand(t.root, "budget", "a budget's limits and use; raise or lower it");
    budget->require_subcommand(1);
    for (bool set : {false, true}) {
      CLI::App* cmd = AddCommand(
          budget, set ? "set" : "get",
          set ? "change a budget's limits (only those given)" : "a budget's limits and use",
          set ? "A goal held at its budget (BUDGET_REACHED) goes on once the new limit allows\n"
                "its next call. 0 removes a limit.\n\n"
                "Examples:\n  agentctl budget set g-1 --usd 10\n"
                "  agentctl budget set --role coder --tokens 500000"
              : "Examples:\n  agentctl budget get g-1\n  agentctl budget get --global");
      auto o = OnRun(t, cmd, BudgetCmd);
      o->set = set;
      cmd->add_option("GOAL", o->goal, "a goal's budget")->type_name("GOAL");
      cmd->add_option("--role", o->role, "a role's budget")->type_name("ROLE");
      cmd->add_flag("--global", o->global, "the global budget");
      if (set) {
        cmd->add_option("--usd", o->usd, "the limit in USD")->check(kUsd)->type_name("USD");
        cmd->add_option("--tokens", o->tokens, "the limit in tokens")
            ->check(CLI::NonNegativeNumber);
      }
    }
  }
  {
    CLI::App* cmd = AddCommand(
        t.root, "audit", "the hash-chained record of side effects, grants and admin actions",
        "Examples:\n  agentctl audit --goal g-1\n  agentctl audit --verify   # exit 1 if broken");
    auto o = OnRun(t, cmd, AuditCmd);
    cmd->add_option("--goal", o->goal, "only this goal's")->type_name("GOAL");
    cmd->add_option("--actor", o->actor, "only this actor's (an agent id, or admin)");
    cmd->add_option("--action", o->action, "only this action");
    cmd->add_flag("--verify", o->verify, "recompute the chain; exit 1 if it is broken");
  }
  {
    CLI::App* cmd = AddCommand(
        t.root, "bootstrap", "a new project from a template, its own tests run; no model",
        "Templates: templates/projects (python-fastapi, cpp-cmake...). Waits like goal\n"
        "--wait unless --no-wait: exit 0 only if the template's post-check passed, 4 if it\n"
        "is still running at --timeout.\n\n"
        "Example:\n  agentctl bootstrap python-fastapi ~/src/new-api");
    auto o = OnRun(t, cmd, BootstrapCmd);
    cmd->add_option("TEMPLATE", o->template_name, "the template's name")
        ->required()
        ->type_name("TEMPLATE");
    cmd->add_option("DIR", o->dir, "a new directory")->required();
    cmd->add_flag("--no-wait", o->no_wait, "return once submitted");
    cmd->add_option("--timeout", o->timeout, "stop waiting after D (default 30m; exit 4)")
        ->check(kPositiveDuration)
        ->type_name("DURATION");
  }
}
}  // namespace agentd::ctl
