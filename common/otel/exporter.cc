#include "common/otel/exporter.h"

#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/curl_library.h"
#include "common/text.h"
#include "spdlog/spdlog.h"

namespace agentd::otel {
namespace {

constexpr size_t kMaxAgentBatchBytes = 1 << 20;  // one ScopeSpans from an agent
constexpr size_t kMaxQueuedBytes = 16 << 20;     // agents' batches waiting, in all
constexpr int kMaxSpansPerAgentBatch = 1000;
constexpr int kMaxAttributes = 128;
constexpr int kMaxEvents = 128;
constexpr int kAttempts = 3;

std::string PercentDecode(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(s[i + 1]) &&
        absl::ascii_isxdigit(s[i + 2])) {
      auto v = [](char c) {
        return absl::ascii_isdigit(c) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
      };
      out.push_back(static_cast<char>(v(s[i + 1]) << 4 | v(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// "k1=v1,k2=v2" with percent-encoded values (the W3C Baggage shape the OTLP variables use).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParsePairs(const char* var,
                                                                            absl::string_view v) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view item : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
    size_t eq = item.find('=');
    std::string key(absl::StripAsciiWhitespace(item.substr(0, eq)));
    if (eq == absl::string_view::npos || key.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(var, ": \"", ValidUtf8(item), "\" is not key=value"));
    }
    std::string value = PercentDecode(absl::StripAsciiWhitespace(item.substr(eq + 1)));
    out.emplace_back(PercentDecode(key), std::move(value));
  }
  return out;
}

bool HeaderNameOk(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!(absl::ascii_isalnum(c) ||
          absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos)) {
      return false;
    }
  }
  return true;
}

// No control characters (a line break would start another header; a NUL would cut it).
bool HeaderValueOk(absl::string_view value) {
  for (char c : value) {
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

// The first of `names` that is set (and not empty), or null.
const char* First(const std::function<const char*(const char*)>& getenv,
                  std::initializer_list<const char*> names, const char** which) {
  for (const char* n : names) {
    const char* v = getenv(n);
    if (v != nullptr && *v != 0) {
      *which = n;
      return v;
    }
  }
  return nullptr;
}

absl::Status Millis(const std::function<const char*(const char*)>& getenv,
                    std::initializer_list<const char*> names, absl::Duration* out) {
  const char* which = nullptr;
  const char* v = First(getenv, names, &which);
  if (v == nullptr) return absl::OkStatus();
  int64_t ms = 0;
  if (!absl::SimpleAtoi(v, &ms) || ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(which, ": \"", ValidUtf8(v), "\" is not a number of milliseconds"));
  }
  *out = absl::Milliseconds(ms);
  return absl::OkStatus();
}

absl::Status Count(const std::function<const char*(const char*)>& getenv, const char* name,
                   int* out) {
  const char* v = getenv(name);
  if (v == nullptr || *v == 0) return absl::OkStatus();
  int n = 0;
  if (!absl::SimpleAtoi(v, &n) || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": \"", ValidUtf8(v), "\" is not a positive number"));
  }
  *out = n;
  return absl::OkStatus();
}

bool SpanOk(const otlp::Span& s) {
  auto nonzero = [](const std::string& b) {
    return b.find_first_not_of('\0') != std::string::npos;
  };
  return s.trace_id().size() == 16 && nonzero(s.trace_id()) && s.span_id().size() == 8 &&
         nonzero(s.span_id()) && (s.parent_span_id().empty() || s.parent_span_id().size() == 8) &&
         !s.name().empty() && s.end_time_unix_nano() >= s.start_time_unix_nano();
}

void SetResource(otlp::Resource* r, const std::vector<std::pair<std::string, std::string>>& kv) {
  for (const auto& [k, v] : kv) {
    otlp::KeyValue* a = r->add_attributes();
    a->set_key(ValidUtf8(k));
    a->mutable_value()->set_string_value(ValidUtf8(v));
  }
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  auto* s = static_cast<std::string*>(out);
  size_t len = size * n;
  if (s->size() < (64 << 10)) s->append(data, std::min(len, (64u << 10) - s->size()));
  return len;
}

}  // namespace

std::vector<otlp::Span> DecodeAgentSpans(const std::string& scope_spans, const AgentGrant* grant,
                                         int64_t* dropped) {
  std::vector<otlp::Span> out;
  otlp::ScopeSpans in;
  if (scope_spans.size() > kMaxAgentBatchBytes || !in.ParseFromString(scope_spans)) {
    ++*dropped;
    return out;
  }
  in.DiscardUnknownFields();
  auto trim = [](google::protobuf::RepeatedPtrField<otlp::KeyValue>* kv) {
    int cut = 0;
    if (kv->size() > kMaxAttributes) {
      cut = kv->size() - kMaxAttributes;
      kv->DeleteSubrange(kMaxAttributes, cut);
    }
    for (otlp::KeyValue& a : *kv) {
      if (!a.value().has_array_value()) continue;
      auto* values = a.mutable_value()->mutable_array_value()->mutable_values();
      if (values->size() > kMaxAttributes) {
        values->DeleteSubrange(kMaxAttributes, values->size() - kMaxAttributes);
      }
      for (otlp::AnyValue& v : *values) v.clear_array_value();  // no nesting
    }
    return cut;
  };
  for (otlp::Span& s : *in.mutable_spans()) {
    if (out.size() == static_cast<size_t>(kMaxSpansPerAgentBatch) || !SpanOk(s) ||
        (grant != nullptr &&
         (grant->traces.count(s.trace_id()) == 0 || s.parent_span_id().empty() ||
          grant->reserved_spans.count(s.span_id()) != 0))) {
      ++*dropped;
      continue;
    }
    s.set_dropped_attributes_count(static_cast<uint32_t>(trim(s.mutable_attributes())));
    if (s.events_size() > kMaxEvents) {
      s.mutable_events()->DeleteSubrange(kMaxEvents, s.events_size() - kMaxEvents);
    }
    for (otlp::Span::Event& e : *s.mutable_events()) trim(e.mutable_attributes());
    if (s.trace_state().size() > 512) s.clear_trace_state();
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<ExporterOptions> ExporterOptionsFrom(
    const std::string& config_endpoint, const std::string& default_service_name,
    const std::function<const char*(const char*)>& getenv) {
  ExporterOptions o;
  auto is = [&](const char* name, absl::string_view value) {
    const char* v = getenv(name);
    return v != nullptr && absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(v), value);
  };
  if (is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none")) return o;
  const char* which = nullptr;
  if (const char* p = First(
          getenv, {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"}, &which);
      p != nullptr && absl::StripAsciiWhitespace(p) != "http/protobuf") {
    return absl::InvalidArgumentError(
        absl::StrCat(which, ": \"", ValidUtf8(p),
                     "\" is not supported: agentd exports traces over OTLP/HTTP with protobuf "
                     "(http/protobuf; a collector listens for it on port 4318)"));
  }
  auto base = [](absl::string_view url) {
    std::string u(absl::StripSuffix(url, "/"));
    return absl::EndsWith(u, "/v1/traces") ? u : absl::StrCat(u, "/v1/traces");
  };
  if (!config_endpoint.empty()) {
    o.endpoint = base(config_endpoint);
  } else if (const char* t = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); t != nullptr && *t) {
    o.endpoint = t;
  } else if (const char* e = getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != nullptr && *e) {
    // The specification's rule for the signal-less variable: always append the path.
    o.endpoint = absl::StrCat(absl::StripSuffix(e, "/"), "/v1/traces");
  }
  if (o.endpoint.empty()) return o;
  if (!absl::StartsWith(o.endpoint, "http://") && !absl::StartsWith(o.endpoint, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("the OTLP endpoint \"", ValidUtf8(o.endpoint),
                                                   "\" is not an http:// or https:// URL"));
  }
  for (const char* var : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    const char* v = getenv(var);
    if (v == nullptr) continue;
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> h = ParsePairs(var, v);
    if (!h.ok()) return h.status();
    for (auto& header : *h) {
      const std::string& name = header.first;
      if (!HeaderNameOk(name) || !HeaderValueOk(header.second)) {
        return absl::InvalidArgumentError(
            absl::StrCat(var, ": \"", ValidUtf8(name), "\" is not a valid header"));
      }
      // The traces-specific variable, read second, wins for a name both set.
      std::erase_if(o.headers,
                    [&name](const auto& p) { return absl::EqualsIgnoreCase(p.first, name); });
      o.headers.push_back(std::move(header));
    }
  }
  if (absl::Status s = Millis(
          getenv, {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"}, &o.timeout);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Millis(getenv, {"OTEL_BSP_SCHEDULE_DELAY"}, &o.schedule_delay); !s.ok()) {
    return s;
  }
  o.schedule_delay = std::max(o.schedule_delay, absl::Milliseconds(1));
  absl::Duration bsp_timeout = absl::ZeroDuration();
  if (absl::Status s = Millis(getenv, {"OTEL_BSP_EXPORT_TIMEOUT"}, &bsp_timeout); !s.ok()) return s;
  if (bsp_timeout > absl::ZeroDuration()) o.timeout = std::min(o.timeout, bsp_timeout);
  if (absl::Status s = Count(getenv, "OTEL_BSP_MAX_QUEUE_SIZE", &o.max_queue); !s.ok()) return s;
  if (absl::Status s = Count(getenv, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &o.max_batch); !s.ok()) {
    return s;
  }
  o.max_batch = std::min(o.max_batch, o.max_queue);
  if (o.timeout <= absl::ZeroDuration()) o.timeout = absl::Seconds(10);

  std::string service = default_service_name;
  if (const char* r = getenv("OTEL_RESOURCE_ATTRIBUTES"); r != nullptr) {
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> kv =
        ParsePairs("OTEL_RESOURCE_ATTRIBUTES", r);
    if (!kv.ok()) return kv.status();
    for (auto& [k, v] : *kv) {
      if (k == "service.name") {
        service = v;
      } else {
        o.resource.emplace_back(std::move(k), std::move(v));
      }
    }
  }
  if (const char* n = getenv("OTEL_SERVICE_NAME"); n != nullptr && *n) service = n;
  o.resource.insert(o.resource.begin(), {"service.name", service});
  return o;
}

SpanExporter::SpanExporter(ExporterOptions options) : options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

SpanExporter::~SpanExporter() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
    stop_deadline_ = absl::Now() + options_.timeout;
  }
  thread_.join();
}

bool SpanExporter::Add(otlp::Span span) {
  absl::MutexLock l(&mu_);
  if (stop_ || queue_.size() >= static_cast<size_t>(options_.max_queue)) {
    dropped_.fetch_add(1);
    return false;
  }
  queue_.push_back(Item{"", "", std::move(span), "", {}});
  ++added_;
  return true;
}

bool SpanExporter::AddFromAgent(const std::string& agent_id, const std::string& role,
                                std::string scope_spans, int64_t dropped_by_agent,
                                AgentGrant grant) {
  if (dropped_by_agent > 0) dropped_.fetch_add(std::min<int64_t>(dropped_by_agent, 1000));
  if (scope_spans.empty()) return true;
  absl::MutexLock l(&mu_);
  int& mine = queued_by_agent_[agent_id];
  if (stop_ || scope_spans.size() > kMaxAgentBatchBytes ||
      queue_.size() >= static_cast<size_t>(options_.max_queue) ||
      mine >= std::max(1, options_.max_queue / 4) ||
      queued_bytes_ + scope_spans.size() > kMaxQueuedBytes) {
    if (mine == 0) queued_by_agent_.erase(agent_id);
    dropped_.fetch_add(1);
    return false;
  }
  ++mine;
  queued_bytes_ += scope_spans.size();
  queue_.push_back(Item{agent_id, role, {}, std::move(scope_spans), std::move(grant)});
  ++added_;
  return true;
}

bool SpanExporter::Flush(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  const int64_t target = added_;
  ++flushing_;
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return done_ >= target; };
  bool ok = mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  --flushing_;
  return ok;
}

void SpanExporter::Run() {
  for (;;) {
    std::vector<Item> batch;
    {
      absl::MutexLock l(&mu_);
      // Nothing queued: sleep until something is (or the end), not a delay at a time.
      auto some = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&some));
      // A batch goes when full, when asked to (a flush, the end), or after the delay.
      auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || flushing_ > 0 || queue_.size() >= static_cast<size_t>(options_.max_batch);
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.schedule_delay);
      if (queue_.empty()) {
        if (stop_) return;
        continue;
      }
      if (stop_ && absl::Now() >= stop_deadline_) {
        // Out of time at shutdown: what is left is lost, and counted.
        dropped_.fetch_add(static_cast<int64_t>(queue_.size()));
        done_ += static_cast<int64_t>(queue_.size());
        queue_.clear();
        queued_by_agent_.clear();
        queued_bytes_ = 0;
        return;
      }
      // At most max_batch spans, and about 1 MiB of agents' batches, per request: a
      // collector's body limit is not hit, nor the memory of decoding them.
      size_t raw = 0;
      while (!queue_.empty() && batch.size() < static_cast<size_t>(options_.max_batch) &&
             raw < kMaxAgentBatchBytes) {
        Item& front = queue_.front();
        raw += front.scope_spans.size();
        queued_bytes_ -= front.scope_spans.size();
        if (!front.agent_id.empty()) {
          auto it = queued_by_agent_.find(front.agent_id);
          if (it != queued_by_agent_.end() && --it->second <= 0) queued_by_agent_.erase(it);
        }
        batch.push_back(std::move(front));
        queue_.pop_front();
      }
    }
    const int64_t n = static_cast<int64_t>(batch.size());
    Send(std::move(batch));
    absl::MutexLock l(&mu_);
    done_ += n;
  }
}

void SpanExporter::Send(std::vector<Item> batch) {
  otlp::ExportTraceServiceRequest req;
  std::map<std::string, otlp::ScopeSpans*> scopes;  // by agent id; "" for agentd's own
  auto scope_of = [&](const Item& it) {
    otlp::ScopeSpans*& s = scopes[it.agent_id];
    if (s == nullptr) {
      otlp::ResourceSpans* rs = req.add_resource_spans();
      std::vector<std::pair<std::string, std::string>> attrs = options_.resource;
      auto name = std::find_if(attrs.begin(), attrs.end(),
                               [](const auto& a) { return a.first == "service.name"; });
      if (name == attrs.end()) name = attrs.insert(attrs.begin(), {"service.name", "agentd"});
      if (!it.agent_id.empty()) {
        name->second += "-agent";
        attrs.emplace_back("service.instance.id", it.agent_id);
        attrs.emplace_back("agentd.agent.id", it.agent_id);
        attrs.emplace_back("agentd.agent.role", it.role);
      } else {
        attrs.emplace_back("service.version", options_.scope_version);
        attrs.emplace_back("process.pid", std::to_string(getpid()));
      }
      SetResource(rs->mutable_resource(), attrs);
      rs->set_schema_url(options_.schema_url);
      s = rs->add_scope_spans();
      s->mutable_scope()->set_name(it.agent_id.empty() ? "agentd" : "agentd-agent");
      s->mutable_scope()->set_version(options_.scope_version);
      s->set_schema_url(options_.schema_url);
    }
    return s;
  };
  int64_t spans = 0;
  for (Item& it : batch) {
    if (it.agent_id.empty()) {
      *scope_of(it)->add_spans() = std::move(it.span);
      ++spans;
      continue;
    }
    int64_t bad = 0;
    for (otlp::Span& s : DecodeAgentSpans(it.scope_spans, &it.grant, &bad)) {
      *scope_of(it)->add_spans() = std::move(s);
      ++spans;
    }
    if (bad > 0) {
      dropped_.fetch_add(bad);
      spdlog::debug("agent {} sent {} spans that could not be used: dropped", it.agent_id, bad);
    }
  }
  if (spans == 0) return;
  std::string body;
  if (!req.SerializeToString(&body)) {
    dropped_.fetch_add(spans);
    return;
  }
  std::string error, response;
  for (int attempt = 1;; ++attempt) {
    bool retryable = false;
    if (Post(body, &error, &retryable, &response)) {
      otlp::ExportTraceServiceResponse r;
      int64_t rejected = 0;
      if (r.ParseFromString(response) && r.has_partial_success()) {
        rejected = std::clamp<int64_t>(r.partial_success().rejected_spans(), 0, spans);
        if (rejected > 0) {
          spdlog::warn("the OTLP collector rejected {} of {} spans: {}", rejected, spans,
                       ValidUtf8(r.partial_success().error_message()));
        }
      }
      dropped_.fetch_add(rejected);
      exported_.fetch_add(spans - rejected);
      return;
    }
    if (!retryable || attempt == kAttempts) break;
    // The collector's back-off (1 s, then 2 s), cut short by the end: not a sync.
    absl::MutexLock l(&mu_);
    auto stopping = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Seconds(1 << (attempt - 1)))) break;
  }
  dropped_.fetch_add(spans);
  spdlog::warn("exporting {} spans to {} failed: {}", spans, options_.endpoint, error);
}

bool SpanExporter::Post(const std::string& body, std::string* error, bool* retryable,
                        std::string* response) {
  absl::StatusOr<const CurlLibrary*> loaded = Curl();
  if (!loaded.ok()) {
    *error = std::string(loaded.status().message());
    return false;
  }
  const CurlLibrary& lib = **loaded;
  CURL* curl = lib.easy_init();
  if (curl == nullptr) {
    *error = "libcurl could not start a request";
    return false;
  }
  curl_slist* headers = lib.slist_append(nullptr, "Content-Type: application/x-protobuf");
  for (const auto& [k, v] : options_.headers) {
    headers = lib.slist_append(headers, absl::StrCat(k, ": ", v).c_str());
  }
  response->clear();
  lib.easy_setopt(curl, CURLOPT_URL, options_.endpoint.c_str());
  lib.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  lib.easy_setopt(curl, CURLOPT_POST, 1L);
  lib.easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  lib.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  lib.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  absl::Duration timeout = options_.timeout;
  {
    absl::MutexLock l(&mu_);  // at shutdown, no longer than the time left
    if (stop_) timeout = std::min(timeout, stop_deadline_ - absl::Now());
  }
  if (timeout <= absl::ZeroDuration()) {
    lib.slist_free_all(headers);
    lib.easy_cleanup(curl);
    *error = "no time left at shutdown";
    return false;
  }
  lib.easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                  std::max(1L, static_cast<long>(absl::ToInt64Milliseconds(timeout))));
  lib.easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  lib.easy_setopt(curl, CURLOPT_WRITEDATA, response);
  lib.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode rc = lib.easy_perform(curl);
  long status = 0;
  lib.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  lib.slist_free_all(headers);
  lib.easy_cleanup(curl);
  if (rc != CURLE_OK) {
    *error = lib.easy_strerror(rc);
    *retryable = true;
    return false;
  }
  if (status >= 200 && status < 300) return true;
  *error = absl::StrCat("HTTP ", status);
  *retryable = status == 429 || status == 502 || status == 503 || status == 504;
  return false;
}

}  // namespace agentd::otel
