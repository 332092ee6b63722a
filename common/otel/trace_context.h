// W3C Trace Context (traceparent) and the OTLP span helpers agentd and its agents share.
//
// A traceparent is "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"; the ids are
// not all zero. Ids are random unless a caller derives them (agentd derives a goal's
// trace and its tasks' spans from the goal, so that they survive its restarts).
#ifndef AGENTD_COMMON_OTEL_TRACE_CONTEXT_H_
#define AGENTD_COMMON_OTEL_TRACE_CONTEXT_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "otlp/trace.pb.h"

namespace agentd::otel {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};
  uint8_t flags = 1;  // sampled
};

// Parses a traceparent header value; nullopt when it is not one (any version but 00
// is read by its first four fields, as the specification asks, and ids of all zeros
// are refused).
std::optional<TraceContext> ParseTraceparent(absl::string_view value);
std::string FormatTraceparent(const TraceContext& context);

// Random ids from getrandom(2); never all zeros.
TraceId RandomTraceId();
SpanId RandomSpanId();

std::string Hex(const uint8_t* data, size_t size);
template <size_t N>
std::string Hex(const std::array<uint8_t, N>& id) {
  return Hex(id.data(), N);
}

// Span building, on the protocol's message.
uint64_t UnixNanos(absl::Time t);
// A span of `context`'s trace, with `context`'s span id and `parent` (may be empty).
otlp::Span NewSpan(std::string name, otlp::Span::SpanKind kind, const TraceId& trace,
                   const SpanId& id, const std::optional<SpanId>& parent, absl::Time start);
void SetAttribute(otlp::Span* span, absl::string_view key, absl::string_view value);
void SetAttribute(otlp::Span* span, absl::string_view key, const char* value);
void SetAttribute(otlp::Span* span, absl::string_view key, int64_t value);
void SetAttribute(otlp::Span* span, absl::string_view key, double value);
void SetAttribute(otlp::Span* span, absl::string_view key, bool value);
void SetAttribute(otlp::Span* span, absl::string_view key, const std::vector<std::string>& values);
// Ends the span at `end`; a non-empty `error` marks it ERROR with that message (cut to a
// readable length) and sets error.type to `error_type` (or "_OTHER").
void EndSpan(otlp::Span* span, absl::Time end, absl::string_view error = "",
             absl::string_view error_type = "");

// Which GenAI semantic conventions to emit: the current experimental ones when
// OTEL_SEMCONV_STABILITY_OPT_IN lists gen_ai_latest_experimental, else those of v1.36
// (gen_ai.system rather than gen_ai.provider.name). The schema URL pins the version.
struct Conventions {
  bool latest = false;
  const char* schema_url() const;
  const char* provider_key() const;  // gen_ai.provider.name or gen_ai.system
};
Conventions ConventionsFromEnv();
bool LatestConventionsRequested(const char* opt_in);  // the variable's value, may be null

}  // namespace agentd::otel

#endif  // AGENTD_COMMON_OTEL_TRACE_CONTEXT_H_
