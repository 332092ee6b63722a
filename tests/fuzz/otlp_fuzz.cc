// What OpenTelemetry tracing reads from outside: a traceparent, an agent's span batch
// (any bytes a compromised agent sends), and the OTEL_* variables. Parsed traceparents
// format back to themselves; kept spans are well formed and serialize; the options parser
// never lets a header carry a line break.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/otel/exporter.h"
#include "common/otel/trace_context.h"
#include "common/text.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0] % 3;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  namespace otel = agentd::otel;
  if (mode == 0) {
    std::optional<otel::TraceContext> c = otel::ParseTraceparent(bytes);
    if (c.has_value()) {
      std::string again = otel::FormatTraceparent(*c);
      std::optional<otel::TraceContext> d = otel::ParseTraceparent(again);
      FUZZ_CHECK(d.has_value() && d->trace_id == c->trace_id && d->span_id == c->span_id &&
                 d->flags == c->flags);
      FUZZ_CHECK(c->trace_id != otel::TraceId{} && c->span_id != otel::SpanId{});
    }
  } else if (mode == 1) {
    int64_t dropped = 0;
    // Without a grant: every well-formed span, whatever trace it claims.
    std::vector<agentd::otlp::Span> spans = otel::DecodeAgentSpans(bytes, nullptr, &dropped);
    FUZZ_CHECK(spans.size() <= 1000 && dropped >= 0);
    for (const agentd::otlp::Span& s : spans) {
      FUZZ_CHECK(s.trace_id().size() == 16 && s.span_id().size() == 8);
      FUZZ_CHECK(s.end_time_unix_nano() >= s.start_time_unix_nano());
      FUZZ_CHECK(s.attributes_size() <= 128 && s.events_size() <= 128);
      FUZZ_CHECK(agentd::IsValidUtf8(s.name()));  // proto3 parsing refuses other strings
      for (const agentd::otlp::KeyValue& kv : s.attributes()) {
        FUZZ_CHECK(agentd::IsValidUtf8(kv.key()));
        if (kv.value().has_array_value()) {
          FUZZ_CHECK(kv.value().array_value().values_size() <= 128);
        }
      }
    }
  } else {
    // Lines "NAME=value" become the environment the options are read from.
    std::vector<std::pair<std::string, std::string>> env;
    for (absl::string_view line : absl::StrSplit(bytes, '\n')) {
      size_t eq = line.find('=');
      if (eq == absl::string_view::npos) continue;
      env.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    }
    absl::StatusOr<otel::ExporterOptions> o = otel::ExporterOptionsFrom(
        "http://127.0.0.1:4318", "agentd", [&](const char* name) -> const char* {
          for (const auto& [k, v] : env) {
            if (k == name) return v.c_str();
          }
          return nullptr;
        });
    if (o.ok()) {
      for (const auto& [k, v] : o->headers) {
        FUZZ_CHECK(k.find_first_of("\r\n:") == std::string::npos && !k.empty());
        FUZZ_CHECK(v.find_first_of("\r\n") == std::string::npos);
      }
      FUZZ_CHECK(o->max_batch <= o->max_queue && o->max_batch > 0);
      FUZZ_CHECK(o->timeout > absl::ZeroDuration());
    }
  }
  return 0;
}
