#include "common/otel/trace_context.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/text.h"
#include "common/token.h"

namespace agentd::otel {
namespace {

// An attribute value is cut to this many bytes: spans are for finding where time went,
// not for carrying documents.
constexpr size_t kMaxValueBytes = 4096;

bool ParseHex(absl::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;  // upper case is not allowed
  };
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
    any |= out[i] != 0;
  }
  return any;
}

void Random(uint8_t* out, size_t n) {
  for (;;) {
    if (!FillRandom(out, n)) continue;  // as before: ids are never made up without it
    for (size_t i = 0; i < n; ++i) {
      if (out[i] != 0) return;
    }
  }
}

otlp::KeyValue* Attribute(otlp::Span* span, absl::string_view key) {
  for (otlp::KeyValue& kv : *span->mutable_attributes()) {
    if (kv.key() == key) return &kv;  // set again: replaced
  }
  otlp::KeyValue* kv = span->add_attributes();
  kv->set_key(ValidUtf8(key));
  return kv;
}

std::string Value(absl::string_view v) { return Utf8Prefix(ValidUtf8(v), kMaxValueBytes, "…"); }

}  // namespace

std::optional<TraceContext> ParseTraceparent(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  std::vector<absl::string_view> parts = absl::StrSplit(value, '-');
  if (parts.size() < 4) return std::nullopt;
  uint8_t version = 0;
  if (!ParseHex(parts[0], &version, 1) && parts[0] != "00") return std::nullopt;
  if (version == 0xff) return std::nullopt;
  if (version == 0 && parts.size() != 4) return std::nullopt;
  TraceContext c;
  uint8_t flags = 0;
  if (!ParseHex(parts[1], c.trace_id.data(), 16) || !ParseHex(parts[2], c.span_id.data(), 8)) {
    return std::nullopt;
  }
  if (parts[3].size() != 2 || (!ParseHex(parts[3], &flags, 1) && parts[3] != "00")) {
    return std::nullopt;
  }
  c.flags = flags;
  return c;
}

std::string FormatTraceparent(const TraceContext& c) {
  return "00-" + Hex(c.trace_id) + "-" + Hex(c.span_id) + "-" + Hex(&c.flags, 1);
}

TraceId RandomTraceId() {
  TraceId id;
  Random(id.data(), id.size());
  return id;
}

SpanId RandomSpanId() {
  SpanId id;
  Random(id.data(), id.size());
  return id;
}

std::string Hex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

uint64_t UnixNanos(absl::Time t) {
  int64_t ns = absl::ToUnixNanos(t);
  return ns > 0 ? static_cast<uint64_t>(ns) : 0;
}

otlp::Span NewSpan(std::string name, otlp::Span::SpanKind kind, const TraceId& trace,
                   const SpanId& id, const std::optional<SpanId>& parent, absl::Time start) {
  otlp::Span s;
  s.set_trace_id(trace.data(), trace.size());
  s.set_span_id(id.data(), id.size());
  if (parent.has_value()) s.set_parent_span_id(parent->data(), parent->size());
  s.set_name(Value(name));
  s.set_kind(kind);
  s.set_start_time_unix_nano(UnixNanos(start));
  s.set_flags(0x01);  // W3C trace flags: sampled (agentd records every span it makes)
  return s;
}

void SetAttribute(otlp::Span* span, absl::string_view key, absl::string_view value) {
  Attribute(span, key)->mutable_value()->set_string_value(Value(value));
}
void SetAttribute(otlp::Span* span, absl::string_view key, const char* value) {
  SetAttribute(span, key, absl::string_view(value));
}
void SetAttribute(otlp::Span* span, absl::string_view key, int64_t value) {
  Attribute(span, key)->mutable_value()->set_int_value(value);
}
void SetAttribute(otlp::Span* span, absl::string_view key, double value) {
  Attribute(span, key)->mutable_value()->set_double_value(value);
}
void SetAttribute(otlp::Span* span, absl::string_view key, bool value) {
  Attribute(span, key)->mutable_value()->set_bool_value(value);
}
void SetAttribute(otlp::Span* span, absl::string_view key, const std::vector<std::string>& values) {
  otlp::ArrayValue* a = Attribute(span, key)->mutable_value()->mutable_array_value();
  a->Clear();
  for (const std::string& v : values) a->add_values()->set_string_value(Value(v));
}

void EndSpan(otlp::Span* span, absl::Time end, absl::string_view error,
             absl::string_view error_type) {
  uint64_t ns = UnixNanos(end);
  span->set_end_time_unix_nano(std::max(ns, span->start_time_unix_nano()));
  if (!error.empty()) {
    span->mutable_status()->set_code(otlp::Status::STATUS_CODE_ERROR);
    span->mutable_status()->set_message(Utf8Prefix(ValidUtf8(error), 512, "…"));
    SetAttribute(span, "error.type", error_type.empty() ? absl::string_view("_OTHER") : error_type);
  }
}

const char* Conventions::schema_url() const {
  return latest ? "https://opentelemetry.io/schemas/1.41.0"
                : "https://opentelemetry.io/schemas/1.36.0";
}

const char* Conventions::provider_key() const {
  return latest ? "gen_ai.provider.name" : "gen_ai.system";
}

bool LatestConventionsRequested(const char* opt_in) {
  if (opt_in == nullptr) return false;
  for (absl::string_view v : absl::StrSplit(opt_in, ',')) {
    if (absl::StripAsciiWhitespace(v) == "gen_ai_latest_experimental") return true;
  }
  return false;
}

Conventions ConventionsFromEnv() {
  return Conventions{LatestConventionsRequested(std::getenv("OTEL_SEMCONV_STABILITY_OPT_IN"))};
}

}  // namespace agentd::otel
