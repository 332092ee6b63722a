#include "manager/ctl/events_cmd.h"

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "agentd/v1/events.grpc.pb.h"
#include "common/text.h"
#include "manager/ctl/watch.h"

namespace agentd::ctl {
namespace {

struct GetEventsOpts {
  std::string goal, task, agent;
  std::vector<std::string> kinds;
  int64_t after_seq = 0;
  bool watch = false;
};

std::string Lower(absl::string_view name, absl::string_view prefix) {
  return absl::AsciiStrToLower(absl::StripPrefix(name, prefix));
}

// One line on what the event's resource became.
std::string EventSummary(const v1::Event& e) {
  switch (e.payload_case()) {
    case v1::Event::kTask: {
      const v1::Task& t = e.task();
      std::string s =
          absl::StrCat(Lower(v1::TaskStatus_Name(t.status()), "TASK_STATUS_"), ": ", t.title());
      if (!t.blocked_detail().empty()) absl::StrAppend(&s, " (", t.blocked_detail(), ")");
      if (t.has_failure()) absl::StrAppend(&s, " (", t.failure().message(), ")");
      return s;
    }
    case v1::Event::kAgent:
      return absl::StrCat(e.agent().role(), " ",
                          Lower(v1::AgentState_Name(e.agent().state()), "AGENT_STATE_"),
                          e.agent().state_detail().empty() ? "" : ": ", e.agent().state_detail());
    case v1::Event::kPlan:
      return absl::StrCat(Lower(v1::PlanStatus_Name(e.plan().status()), "PLAN_STATUS_"), ", ",
                          e.plan().steps_size(), " steps, revision ", e.plan().revision());
    case v1::Event::kEnvelope:
      return absl::StrCat(e.envelope().from(), " → ", e.envelope().to(), ": ",
                          e.envelope().body().substr(0, e.envelope().body().find('\n')));
    case v1::Event::kUsageRecord: {
      const v1::UsageRecord& u = e.usage_record();
      return absl::StrFormat("%s/%s: %d+%d tokens, $%.4f", u.provider(), u.model(),
                             u.prompt_tokens(), u.completion_tokens(), u.cost_usd());
    }
    case v1::Event::kConsentRequest:
      return absl::StrCat(
          Lower(v1::ConsentStatus_Name(e.consent_request().status()), "CONSENT_STATUS_"), ": ",
          e.consent_request().summary());
    case v1::Event::kAuditEntry:
      return absl::StrCat(e.audit_entry().actor().id(), " ", e.audit_entry().action(), " ",
                          e.audit_entry().target());
    case v1::Event::kBudget:
      return absl::StrFormat("$%.4f of $%.2f, %d of %d tokens", e.budget().used_cost_usd(),
                             e.budget().max_cost_usd(), e.budget().used_tokens(),
                             e.budget().max_tokens());
    case v1::Event::PAYLOAD_NOT_SET:
      break;
  }
  return "";
}

std::vector<std::string> EventRow(const v1::Event& e) {
  // What models and programs wrote may be anything: cut on a character, never inside one.
  std::string summary = Utf8Prefix(EventSummary(e), 100, "...");
  return {absl::StrCat(e.seq()),
          absl::FormatTime(
              "%H:%M:%S",
              absl::FromUnixSeconds(e.time().seconds()) + absl::Nanoseconds(e.time().nanos()),
              absl::LocalTimeZone()),
          e.kind(),
          e.goal_id().empty() ? "-" : e.goal_id(),
          e.task_id().empty() ? "-" : e.task_id(),
          e.agent_id().empty() ? "-" : e.agent_id(),
          summary};
}

int GetEvents(const Globals& g, const GetEventsOpts& o) {
  v1::EventFilter filter;
  filter.set_goal_id(o.goal);
  filter.set_task_id(o.task);
  filter.set_agent_id(std::string(absl::StripPrefix(o.agent, "@")));
  for (const std::string& k : o.kinds) filter.add_kinds(k);
  std::vector<std::vector<std::string>> header = {
      {"SEQ", "TIME", "KIND", "GOAL", "TASK", "AGENT", "WHAT"}};
  if (o.watch) {
    // The feed itself: what is recorded after --after-seq, then each event as it is
    // committed.
    if (g.format == Format::kTable) {
      return WatchRows(g, o.after_seq, filter, header,
                       [](const v1::Event& e, std::vector<std::string>* row,
                          const google::protobuf::Message** resource) {
                         *row = EventRow(e);
                         *resource = &e;
                         return true;
                       });
    }
    return WatchRows(g, o.after_seq, filter, {},
                     [](const v1::Event& e, std::vector<std::string>* row,
                        const google::protobuf::Message** resource) {
                       *resource = &e;
                       return true;
                     });
  }
  absl::StatusOr<Connection> c = Connection::Connect(g.conn);
  if (!c.ok()) return Fail(std::string(c.status().message()), kNoConnection);
  auto stub = v1::EventService::NewStub(c->channel());
  v1::ListEventsRequest req;
  req.set_after_seq(o.after_seq);
  *req.mutable_filter() = filter;
  req.set_page_size(1000);
  v1::ListEventsResponse all;
  for (;;) {
    v1::ListEventsResponse page;
    grpc::Status s = stub->ListEvents(c->NewContext().get(), req, &page);
    if (!s.ok()) return RpcFailed("ListEvents", s);
    for (auto& e : *page.mutable_events()) *all.add_events() = std::move(e);
    if (page.next_page_token().empty()) break;
    req.set_page_token(page.next_page_token());
  }
  std::vector<std::vector<std::string>> rows = header;
  for (const v1::Event& e : all.events()) rows.push_back(EventRow(e));
  Print(g, all, all.events().empty() ? "No events.\n" : Table(rows));
  return kOk;
}

}  // namespace

void AddEventCommands(const CommandTree& t) {
  CLI::App* cmd = AddCommand(
      t.get, "events", "agentd's record of changes: agents, tasks, plans, messages, usage…",
      "Every change agentd commits is an event with a seq; -w prints those after\n"
      "--after-seq and then each new one as it happens (and resumes after a restart of\n"
      "agentd). --kind takes a kind (task.completed) or a prefix ending in a dot (task.).\n\n"
      "Examples:\n  agentctl get events --goal g-1\n"
      "  agentctl get events -w --kind task. --kind plan.\n"
      "  agentctl get events -w --after-seq 1200 -o json   # one event a line");
  cmd->alias("event");
  auto o = OnRun(t, cmd, GetEvents);
  cmd->add_option("--goal", o->goal, "only this goal's")->type_name("GOAL");
  cmd->add_option("--task", o->task, "only this task's")->type_name("TASK");
  cmd->add_option("--agent", o->agent, "only this agent's")->type_name("AGENT");
  cmd->add_option("--kind", o->kinds, "only these kinds (repeat)")->allow_extra_args(false);
  cmd->add_option("--after-seq", o->after_seq, "only events after this seq")
      ->check(kCount)
      ->type_name("N");
  cmd->add_flag("-w,--watch", o->watch, "then each new event, until Ctrl-C");
}

}  // namespace agentd::ctl
