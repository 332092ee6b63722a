// Tracing: the OpenTelemetry spans agentd makes itself — a goal (invoke_workflow), each
// task (invoke_agent {role}), each plan's wait for approval and each consent request's
// wait for a person — and the trace context it hands its agents, under which they record
// their model calls (chat {model}) and tool calls (execute_tool {tool}).
//
// Spans are built from the change feed once the change is committed (a task's span when
// it ends, from its stored times), so nothing is kept in memory for work under way and a
// restart of agentd loses nothing: a goal's trace id and its tasks' span ids are derived
// from their ids and a random salt kept in agentd.db, and come out the same after it.
// The tree: invoke_workflow (the goal) → invoke_agent (the goal's root task, the CEO's)
// → invoke_agent of each task it delegated or planned, and so on down; plan and consent
// waits, and the agents' own spans, under the task they concern.
//
// Thread-safety: core loop only, but Traceparent and FromAgent, which any thread may call.
#ifndef AGENTD_MANAGER_CORE_TRACING_H_
#define AGENTD_MANAGER_CORE_TRACING_H_

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "agentd/v1/events.pb.h"
#include "common/otel/exporter.h"
#include "common/otel/trace_context.h"
#include "manager/core/events.h"

namespace agentd {

class Tracing {
 public:
  // Null when tracing is off (no endpoint): then nothing subscribes and nothing is built.
  // `store` gives the salt (kept in its meta table); `feed` and `exporter` are not owned
  // and must outlive it.
  static absl::StatusOr<std::unique_ptr<Tracing>> Start(Store* store, EventFeed* feed,
                                                        otel::SpanExporter* exporter,
                                                        otel::Conventions conventions);
  ~Tracing();

  // The trace context of task `task_id` of goal `goal_id` ("00-…-…-01"), for agent
  // `agent_id`, which may from now on record spans in that trace (FromAgent), but not
  // under the ids agentd makes itself. An agent keeps the grants of its last 16 tasks.
  std::string Grant(const std::string& agent_id, const std::string& goal_id,
                    const std::string& task_id);
  // The ids the JSON log carries for a record about the task (or, with no task, the goal).
  otel::TraceContext ContextOf(const std::string& goal_id, const std::string& task_id) const;

  // The same, from the salt alone (for the log, which outlives the Tracing).
  static otel::TraceContext Derive(const std::string& salt, const std::string& goal_id,
                                   const std::string& task_id);
  const std::string& salt() const { return salt_; }

  // Spans agent `agent_id` (of `role`) recorded, handed to the exporter with what the
  // agent was granted: spans in other traces are dropped.
  void FromAgent(const std::string& agent_id, const std::string& role, std::string scope_spans,
                 int64_t dropped);

  const otel::Conventions& conventions() const { return conventions_; }

 private:
  Tracing(Store* store, EventFeed* feed, otel::SpanExporter* exporter,
          otel::Conventions conventions, std::string salt);
  void OnCommit();
  void OnEvent(const v1::Event& e);
  void TaskEnded(const v1::Task& t);
  otel::TraceId TraceOf(const std::string& goal_id) const { return TraceOf(salt_, goal_id); }
  otel::SpanId SpanOf(const std::string& goal_id, const std::string& what) const {
    return SpanOf(salt_, goal_id, what);
  }
  static otel::TraceId TraceOf(const std::string& salt, const std::string& goal_id);
  static otel::SpanId SpanOf(const std::string& salt, const std::string& goal_id,
                             const std::string& what);

  EventFeed* feed_;
  otel::SpanExporter* exporter_;
  const otel::Conventions conventions_;
  const std::string salt_;
  int subscription_ = 0;
  int64_t cursor_ = 0;
  v1::EventFilter filter_;
  // What each agent was granted (its last 16 tasks'): trace ids, and the span ids agentd
  // made for them, which the agent must not reuse.
  struct Granted {
    std::deque<std::pair<std::string, std::string>> tasks;  // (trace id, task span id)
  };
  std::map<std::string, Granted> granted_;
  // Tasks whose span was sent since agentd started: one that ends again (a person retried
  // it) gets a span id of its own, not the same one twice. Cleared at 100,000.
  std::set<std::string> ended_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_TRACING_H_
