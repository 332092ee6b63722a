// TaskSpans: the OpenTelemetry spans an agent records for one run of a task, under the
// trace context agentd delivered with it (the task's invoke_agent span): a CLIENT span
// per model call ("chat {model}", GenAI attributes: request, response, usage, finish
// reasons) and an INTERNAL span per tool call ("execute_tool {tool}", its outcome). Each
// span goes to agentd as it ends (HostSession::SendSpans), which exports it with its own.
//
// Thread-safety: one task's thread (the agent loop's); not shared.
#ifndef AGENTD_AGENTS_RUNTIME_TASK_SPANS_H_
#define AGENTD_AGENTS_RUNTIME_TASK_SPANS_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agentd/v1/agents.pb.h"
#include "agents/llm/types.h"
#include "agents/runtime/host_session.h"
#include "agents/tools/tool.h"
#include "common/otel/trace_context.h"

namespace agentd::agent {

class TaskSpans {
 public:
  // `host` is not owned and must outlive it.
  TaskSpans(HostSession* host, const otel::TraceContext& parent,
            const v1::AgentTelemetry& telemetry, const v1::ModelRef& model, std::string task_id);

  // The trace context of the model call about to be made, for its traceparent header
  // (empty unless the definition says to send it); the call's span takes that id.
  std::string NextModelCall();
  // The model call that began at `start` ended with `result`.
  void ModelCall(const llm::ChatRequest& req, absl::Time start,
                 const absl::StatusOr<llm::ChatResult>& result, const llm::CallStats& stats);
  // A tool call is about to run; its span's trace context, for the tool to pass on.
  std::string ToolStarted(const llm::ToolCall& call);
  void ToolEnded(const llm::ToolCall& call, const tools::ToolResult& r);

 private:
  struct Open {
    otel::SpanId id;
    absl::Time start;
  };
  void Send(const otlp::Span& span);

  HostSession* host_;
  const otel::TraceContext parent_;
  const v1::AgentTelemetry telemetry_;
  const v1::ModelRef model_;
  const std::string task_id_;
  const otel::Conventions conventions_;
  otel::SpanId next_model_call_;
  std::map<std::string, Open> tools_;  // by tool call id, while running
};

}  // namespace agentd::agent

#endif  // AGENTD_AGENTS_RUNTIME_TASK_SPANS_H_
