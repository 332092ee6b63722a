#include "agents/runtime/task_spans.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace agentd::agent {
namespace {

// The status's code as error.type: "deadline_exceeded", "unavailable", …
std::string ErrorType(const absl::Status& s) {
  std::string t = absl::StatusCodeToString(s.code());
  for (char& c : t) c = c == ' ' ? '_' : absl::ascii_tolower(c);
  return t;
}

}  // namespace

TaskSpans::TaskSpans(HostSession* host, const otel::TraceContext& parent,
                     const v1::AgentTelemetry& telemetry, const v1::ModelRef& model,
                     std::string task_id)
    : host_(host),
      parent_(parent),
      telemetry_(telemetry),
      model_(model),
      task_id_(std::move(task_id)),
      conventions_{telemetry.gen_ai_latest_conventions()},
      next_model_call_(otel::RandomSpanId()) {}

std::string TaskSpans::NextModelCall() {
  next_model_call_ = otel::RandomSpanId();
  if (!telemetry_.traceparent_to_providers()) return "";
  otel::TraceContext c = parent_;
  c.span_id = next_model_call_;
  return otel::FormatTraceparent(c);
}

void TaskSpans::ModelCall(const llm::ChatRequest& req, absl::Time start,
                          const absl::StatusOr<llm::ChatResult>& result,
                          const llm::CallStats& stats) {
  otlp::Span s = otel::NewSpan(absl::StrCat("chat ", req.model), otlp::Span::SPAN_KIND_CLIENT,
                               parent_.trace_id, next_model_call_, parent_.span_id, start);
  next_model_call_ = otel::RandomSpanId();  // a call made without NextModelCall gets its own
  otel::SetAttribute(&s, "gen_ai.operation.name", "chat");
  otel::SetAttribute(&s, conventions_.provider_key(),
                     model_.provider_kind().empty() ? model_.provider() : model_.provider_kind());
  otel::SetAttribute(&s, "gen_ai.request.model", req.model);
  if (req.temperature.has_value()) {
    otel::SetAttribute(&s, "gen_ai.request.temperature", *req.temperature);
  }
  if (req.max_tokens.has_value()) {
    otel::SetAttribute(&s, "gen_ai.request.max_tokens", static_cast<int64_t>(*req.max_tokens));
  }
  // server.address and server.port, from the provider's base URL.
  absl::string_view url = model_.base_url();
  if (size_t scheme = url.find("://"); scheme != absl::string_view::npos) {
    absl::string_view host = url.substr(scheme + 3);
    host = host.substr(0, host.find_first_of("/?#"));
    if (size_t at = host.rfind('@'); at != absl::string_view::npos) {
      host = host.substr(at + 1);  // never the credentials
    }
    int port = absl::StartsWith(url, "https") ? 443 : 80;
    if (size_t colon = host.rfind(':');
        colon != absl::string_view::npos && host.find(']', colon) == absl::string_view::npos) {
      (void)absl::SimpleAtoi(host.substr(colon + 1), &port);
      host = host.substr(0, colon);
    }
    if (!host.empty()) {
      otel::SetAttribute(&s, "server.address", host);
      otel::SetAttribute(&s, "server.port", static_cast<int64_t>(port));
    }
  }
  otel::SetAttribute(&s, "agentd.task.id", task_id_);
  otel::SetAttribute(&s, "agentd.llm.attempts", static_cast<int64_t>(stats.attempts));
  if (result.ok()) {
    otel::SetAttribute(&s, "gen_ai.response.model", req.model);
    if (!result->finish_reason.empty()) {
      otel::SetAttribute(&s, "gen_ai.response.finish_reasons",
                         std::vector<std::string>{result->finish_reason});
    }
    otel::SetAttribute(&s, "gen_ai.usage.input_tokens", result->usage.prompt_tokens);
    otel::SetAttribute(&s, "gen_ai.usage.output_tokens", result->usage.completion_tokens);
    otel::SetAttribute(&s, "agentd.llm.tool_calls",
                       static_cast<int64_t>(result->tool_calls.size()));
    otel::EndSpan(&s, start + stats.latency);
  } else {
    otel::EndSpan(&s, absl::Now(), result.status().message(), ErrorType(result.status()));
  }
  Send(s);
}

std::string TaskSpans::ToolStarted(const llm::ToolCall& call) {
  Open& o = tools_[call.id];
  o.id = otel::RandomSpanId();
  o.start = absl::Now();
  otel::TraceContext c = parent_;
  c.span_id = o.id;
  return otel::FormatTraceparent(c);
}

void TaskSpans::ToolEnded(const llm::ToolCall& call, const tools::ToolResult& r) {
  auto it = tools_.find(call.id);
  if (it == tools_.end()) return;  // its start was not seen: a replayed result
  otlp::Span s =
      otel::NewSpan(absl::StrCat("execute_tool ", call.name), otlp::Span::SPAN_KIND_INTERNAL,
                    parent_.trace_id, it->second.id, parent_.span_id, it->second.start);
  tools_.erase(it);
  otel::SetAttribute(&s, "gen_ai.operation.name", "execute_tool");
  otel::SetAttribute(&s, "gen_ai.tool.name", call.name);
  otel::SetAttribute(&s, "gen_ai.tool.call.id", call.id);
  otel::SetAttribute(&s, "gen_ai.tool.type",
                     absl::StartsWith(call.name, "mcp:") ? "extension" : "function");
  otel::SetAttribute(&s, "agentd.task.id", task_id_);
  otel::SetAttribute(&s, "agentd.tool.outcome", r.error ? "error" : "ok");
  otel::SetAttribute(&s, "agentd.tool.output_bytes", static_cast<int64_t>(r.content.size()));
  if (r.error) {
    otel::EndSpan(&s, absl::Now(), r.content.substr(0, r.content.find('\n')), "tool_error");
  } else {
    otel::EndSpan(&s, absl::Now());
  }
  Send(s);
}

void TaskSpans::Send(const otlp::Span& span) {
  otlp::ScopeSpans batch;
  *batch.add_spans() = span;
  host_->SendSpans(batch.SerializeAsString());
}

}  // namespace agentd::agent
