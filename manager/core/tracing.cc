#include "manager/core/tracing.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agentd/v1/consent.pb.h"
#include "agentd/v1/plans.pb.h"
#include "agentd/v1/tasks.pb.h"
#include "common/sha256.h"
#include "manager/core/proto_time.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

// "TASK_STATUS_COMPLETED" → "completed": enum names as attribute values.
std::string Lower(absl::string_view enum_name, absl::string_view prefix) {
  return absl::AsciiStrToLower(absl::StripPrefix(enum_name, prefix));
}

absl::Time TimeOf(const google::protobuf::Timestamp& t) { return FromProto(t); }

}  // namespace

absl::StatusOr<std::unique_ptr<Tracing>> Tracing::Start(Store* store, EventFeed* feed,
                                                        otel::SpanExporter* exporter,
                                                        otel::Conventions conventions) {
  // 128 random bits, kept: a goal's trace id is the same after a restart, and differs
  // from that of the goal of the same id in another state directory.
  otel::TraceId r = otel::RandomTraceId();
  absl::StatusOr<std::string> salt = store->MetaOrInsert("trace_salt", otel::Hex(r));
  if (!salt.ok()) return salt.status();
  return std::unique_ptr<Tracing>(new Tracing(store, feed, exporter, conventions, *salt));
}

Tracing::Tracing(Store* /*store*/, EventFeed* feed, otel::SpanExporter* exporter,
                 otel::Conventions conventions, std::string salt)
    : feed_(feed), exporter_(exporter), conventions_(conventions), salt_(std::move(salt)) {
  for (const char* k :
       {"task.completed", "task.failed", "task.canceled", "plan.approved", "plan.rejected",
        "plan.superseded", "consent.approved", "consent.denied", "consent.expired"}) {
    filter_.add_kinds(k);
  }
  cursor_ = feed_->last_seq();
  subscription_ = feed_->Subscribe([this] { OnCommit(); });
}

Tracing::~Tracing() { feed_->Unsubscribe(subscription_); }

otel::TraceId Tracing::TraceOf(const std::string& salt, const std::string& goal_id) {
  std::string in = absl::StrCat(salt, std::string(1, '\0'), "trace", std::string(1, '\0'), goal_id);
  Sha256Digest md = Sha256(in);
  otel::TraceId id;
  std::memcpy(id.data(), md.data(), id.size());
  if (id == otel::TraceId{}) id[15] = 1;
  return id;
}

otel::SpanId Tracing::SpanOf(const std::string& salt, const std::string& goal_id,
                             const std::string& what) {
  std::string in = absl::StrCat(salt, std::string(1, '\0'), "span", std::string(1, '\0'), goal_id,
                                std::string(1, '\0'), what);
  Sha256Digest md = Sha256(in);
  otel::SpanId id;
  std::memcpy(id.data(), md.data(), id.size());
  if (id == otel::SpanId{}) id[7] = 1;
  return id;
}

otel::TraceContext Tracing::Derive(const std::string& salt, const std::string& goal_id,
                                   const std::string& task_id) {
  otel::TraceContext c;
  c.trace_id = TraceOf(salt, goal_id);
  c.span_id = SpanOf(salt, goal_id, task_id.empty() ? std::string("goal") : "task:" + task_id);
  return c;
}

otel::TraceContext Tracing::ContextOf(const std::string& goal_id,
                                      const std::string& task_id) const {
  return Derive(salt_, goal_id, task_id);
}

std::string Tracing::Grant(const std::string& agent_id, const std::string& goal_id,
                           const std::string& task_id) {
  otel::TraceContext c = ContextOf(goal_id, task_id);
  auto& tasks = granted_[agent_id].tasks;
  std::pair<std::string, std::string> g(std::string(c.trace_id.begin(), c.trace_id.end()),
                                        std::string(c.span_id.begin(), c.span_id.end()));
  if (std::find(tasks.begin(), tasks.end(), g) == tasks.end()) {
    tasks.push_back(std::move(g));
    if (tasks.size() > 16) tasks.pop_front();
  }
  return otel::FormatTraceparent(c);
}

void Tracing::FromAgent(const std::string& agent_id, const std::string& role,
                        std::string scope_spans, int64_t dropped) {
  otel::AgentGrant grant;
  if (auto it = granted_.find(agent_id); it != granted_.end()) {
    for (const auto& [trace, span] : it->second.tasks) {
      grant.traces.insert(trace);
      grant.reserved_spans.insert(span);
    }
  }
  exporter_->AddFromAgent(agent_id, role, std::move(scope_spans), dropped, std::move(grant));
}

void Tracing::OnCommit() {
  for (int rounds = 0; rounds < 64; ++rounds) {
    int64_t scanned = cursor_;
    absl::StatusOr<std::vector<v1::Event>> events = feed_->Read(cursor_, filter_, 256, &scanned);
    if (!events.ok()) {
      spdlog::warn("tracing: reading the change feed: {}", events.status().ToString());
      return;  // tried again after the next commit
    }
    for (const v1::Event& e : *events) OnEvent(e);
    if (scanned <= cursor_) return;
    cursor_ = scanned;
  }
}

void Tracing::OnEvent(const v1::Event& e) {
  if (e.has_task()) {
    TaskEnded(e.task());
    return;
  }
  if (e.has_plan()) {
    const v1::Plan& p = e.plan();
    const std::string& goal = p.goal_id().empty() ? e.goal_id() : p.goal_id();
    if (goal.empty() || p.task_id().empty()) return;
    absl::Time end = p.has_decide_time() ? TimeOf(p.decide_time()) : TimeOf(e.time());
    otlp::Span s = otel::NewSpan("await_plan_approval", otlp::Span::SPAN_KIND_INTERNAL,
                                 TraceOf(goal), otel::RandomSpanId(),
                                 SpanOf(goal, "task:" + p.task_id()), TimeOf(p.create_time()));
    otel::SetAttribute(&s, "agentd.plan.id", p.id());
    otel::SetAttribute(&s, "agentd.plan.steps", static_cast<int64_t>(p.steps_size()));
    otel::SetAttribute(&s, "agentd.plan.decision",
                       Lower(v1::PlanStatus_Name(p.status()), "PLAN_STATUS_"));
    if (!p.decided_by().empty()) otel::SetAttribute(&s, "agentd.plan.decided_by", p.decided_by());
    otel::SetAttribute(&s, "agentd.task.id", p.task_id());
    otel::SetAttribute(&s, "agentd.goal.id", goal);
    otel::EndSpan(&s, end);
    exporter_->Add(std::move(s));
    return;
  }
  if (e.has_consent_request()) {
    const v1::ConsentRequest& c = e.consent_request();
    // Consent events name no goal of their own: the request does.
    const std::string& goal = c.goal_id().empty() ? e.goal_id() : c.goal_id();
    if (goal.empty() || c.task_id().empty()) return;
    std::string kind = Lower(v1::ConsentKind_Name(c.kind()), "CONSENT_KIND_");
    absl::Time end = c.has_decide_time() ? TimeOf(c.decide_time()) : TimeOf(e.time());
    otlp::Span s = otel::NewSpan(
        absl::StrCat("await_consent ", kind), otlp::Span::SPAN_KIND_INTERNAL, TraceOf(goal),
        otel::RandomSpanId(), SpanOf(goal, "task:" + c.task_id()), TimeOf(c.create_time()));
    otel::SetAttribute(&s, "agentd.consent.id", c.id());
    otel::SetAttribute(&s, "agentd.consent.kind", kind);
    otel::SetAttribute(&s, "agentd.consent.decision",
                       Lower(v1::ConsentStatus_Name(c.status()), "CONSENT_STATUS_"));
    if (!c.tool().empty()) otel::SetAttribute(&s, "gen_ai.tool.name", c.tool());
    if (!c.decided_by().empty())
      otel::SetAttribute(&s, "agentd.consent.decided_by", c.decided_by());
    otel::SetAttribute(&s, "agentd.agent.id", c.agent_id());
    otel::SetAttribute(&s, "agentd.task.id", c.task_id());
    otel::SetAttribute(&s, "agentd.goal.id", goal);
    otel::EndSpan(&s, end);
    exporter_->Add(std::move(s));
  }
}

void Tracing::TaskEnded(const v1::Task& t) {
  const std::string& goal = t.goal_id().empty() ? t.id() : t.goal_id();
  const bool root = t.parent_id().empty();
  const otel::TraceId trace = TraceOf(goal);
  absl::Time start = TimeOf(t.has_start_time() ? t.start_time() : t.create_time());
  absl::Time end = t.has_end_time() ? TimeOf(t.end_time()) : absl::Now();
  std::string status = Lower(v1::TaskStatus_Name(t.status()), "TASK_STATUS_");
  std::string error, error_type;
  if (t.status() == v1::TASK_STATUS_FAILED) {
    error = t.failure().message().empty() ? "failed" : t.failure().message();
    error_type = Lower(v1::TaskFailureCode_Name(t.failure().code()), "TASK_FAILURE_CODE_");
  }
  auto common = [&](otlp::Span* s) {
    otel::SetAttribute(s, "agentd.goal.id", goal);
    otel::SetAttribute(s, "agentd.task.status", status);
  };

  // A task that ends again (a person retried it) gets a span of its own: the first end's
  // id is taken. Its agents' spans hang under the first.
  if (ended_.size() >= 100000) ended_.clear();
  const bool again = !ended_.insert(t.id()).second;
  otlp::Span agent =
      otel::NewSpan(absl::StrCat("invoke_agent ", t.role()), otlp::Span::SPAN_KIND_INTERNAL, trace,
                    again ? otel::RandomSpanId() : SpanOf(goal, "task:" + t.id()),
                    root ? SpanOf(goal, "goal") : SpanOf(goal, "task:" + t.parent_id()), start);
  otel::SetAttribute(&agent, "gen_ai.operation.name", "invoke_agent");
  otel::SetAttribute(&agent, "gen_ai.agent.name", t.role());
  if (!t.assignee().empty()) otel::SetAttribute(&agent, "gen_ai.agent.id", t.assignee());
  otel::SetAttribute(&agent, "agentd.task.id", t.id());
  otel::SetAttribute(&agent, "agentd.task.title", t.title());
  otel::SetAttribute(&agent, "agentd.task.attempts", static_cast<int64_t>(t.attempts()));
  if (!t.plan_id().empty()) otel::SetAttribute(&agent, "agentd.plan.id", t.plan_id());
  common(&agent);
  otel::EndSpan(&agent, end, error, error_type);
  if (again) otel::SetAttribute(&agent, "agentd.task.ended_again", true);
  exporter_->Add(std::move(agent));

  if (!root) return;
  otlp::Span goal_span = otel::NewSpan("invoke_workflow", otlp::Span::SPAN_KIND_INTERNAL, trace,
                                       again ? otel::RandomSpanId() : SpanOf(goal, "goal"),
                                       std::nullopt, TimeOf(t.create_time()));
  otel::SetAttribute(&goal_span, "gen_ai.operation.name", "invoke_workflow");
  // The conventions name a workflow by what it is: for agentd, a goal given to its team.
  otel::SetAttribute(&goal_span, "gen_ai.workflow.name", "agentd");
  otel::SetAttribute(&goal_span, "agentd.goal.title", t.title());
  if (!t.created_by().empty())
    otel::SetAttribute(&goal_span, "agentd.goal.created_by", t.created_by());
  common(&goal_span);
  otel::EndSpan(&goal_span, end, error, error_type);
  exporter_->Add(std::move(goal_span));
}

}  // namespace agentd
