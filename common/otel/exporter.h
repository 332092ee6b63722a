// SpanExporter: sends finished spans to an OpenTelemetry collector over OTLP/HTTP
// (POST <endpoint>, application/x-protobuf), in batches, from a thread of its own.
//
// opentelemetry-cpp is not packaged by Debian, and agentd needs little of it: finished
// spans in, protobuf batches out. So this is a small exporter on libcurl and the
// protocol's messages (proto/otlp), with the SDK's batch processor semantics: a bounded
// queue (spans beyond it are dropped and counted, never waited for), a batch sent when
// it is full or when the schedule delay passes, and a flush at shutdown.
//
// Thread-safety: every method may be called from any thread. Add* never blocks on the
// network: the core loop and agents' turns hand spans over and go on.
#ifndef AGENTD_COMMON_OTEL_EXPORTER_H_
#define AGENTD_COMMON_OTEL_EXPORTER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "otlp/trace.pb.h"

namespace agentd::otel {

struct ExporterOptions {
  std::string endpoint;  // the whole URL spans are POSTed to, e.g. http://host:4318/v1/traces
  std::vector<std::pair<std::string, std::string>> headers;
  absl::Duration timeout = absl::Seconds(10);  // one export request
  int max_queue = 2048;                        // spans waiting
  int max_batch = 512;                         // spans per request
  absl::Duration schedule_delay = absl::Seconds(5);
  // The resource of agentd's own spans (service.name, …), and of each agent's: the same
  // with service.name `<service.name>-agent`… see ResourceOf.
  std::vector<std::pair<std::string, std::string>> resource;
  std::string schema_url;
  std::string scope_version;  // agentd's version
};

// The options from the configured endpoint and the standard environment: an empty
// `config_endpoint` is filled from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or
// OTEL_EXPORTER_OTLP_ENDPOINT (+ "/v1/traces"); a configured one is a base URL as
// well, unless it already ends in /v1/traces. Headers, timeout, batching, service name
// and resource come from OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, …_TIMEOUT,
// OTEL_BSP_*, OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. `getenv` is injectable for
// tests. An empty endpoint (nowhere to send to, or OTEL_SDK_DISABLED=true, or
// OTEL_TRACES_EXPORTER=none) means tracing is off. Errors name the variable and what is
// wrong with its value (a protocol other than http/protobuf, a number that is not one).
absl::StatusOr<ExporterOptions> ExporterOptionsFrom(
    const std::string& config_endpoint, const std::string& default_service_name,
    const std::function<const char*(const char*)>& getenv);

// Where an agent may record spans: the traces of the tasks agentd handed it, and not with
// the span ids agentd made for them (its tasks' own spans). 16- and 8-byte ids.
struct AgentGrant {
  std::set<std::string> traces;
  std::set<std::string> reserved_spans;
};

// An agent's batch (an encoded ScopeSpans, untrusted): the spans fit to export, with
// attributes, events and arrays beyond the limits cut and fields agentd does not know
// discarded; `*dropped` counts the rest (all of it when the batch does not decode; spans
// with missing or zero ids, no name, an end before the start, outside `grant` when it is
// given (then a span must have a parent: an agent's spans hang under its task's), and
// those past 1,000).
std::vector<otlp::Span> DecodeAgentSpans(const std::string& scope_spans, const AgentGrant* grant,
                                         int64_t* dropped);

class SpanExporter {
 public:
  explicit SpanExporter(ExporterOptions options);
  // Sends what is queued for at most one export timeout in all, counts what is left as
  // dropped, and stops.
  ~SpanExporter();

  // Queues one of agentd's own spans; false (and counted as dropped) when the queue is full.
  bool Add(otlp::Span span);
  // Queues spans an agent recorded: `scope_spans` is a protobuf-encoded ScopeSpans, at
  // most 1 MiB. It is decoded and checked on the exporter's thread (DecodeAgentSpans,
  // with `grant`); what fails is dropped and counted. One agent holds at most a quarter of
  // the queue, so that it cannot crowd out agentd's spans and the other agents'.
  // `dropped_by_agent` (what the agent says it lost, at most 1,000 a batch) is counted too.
  // `agent_id` and `role` go into the spans' resource.
  bool AddFromAgent(const std::string& agent_id, const std::string& role, std::string scope_spans,
                    int64_t dropped_by_agent, AgentGrant grant);

  // Waits until everything queued before the call was sent (or failed), up to `timeout`.
  bool Flush(absl::Duration timeout);

  int64_t exported() const { return exported_.load(); }
  int64_t dropped() const { return dropped_.load(); }  // queue full, undecodable, refused
  const ExporterOptions& options() const { return options_; }

 private:
  struct Item {
    std::string agent_id, role;  // empty: agentd's own
    otlp::Span span;             // one of agentd's, or
    std::string scope_spans;     // an agent's batch, still encoded
    AgentGrant grant;
  };
  void Run();
  void Send(std::vector<Item> batch);
  bool Post(const std::string& body, std::string* error, bool* retryable, std::string* response);

  const ExporterOptions options_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int> queued_by_agent_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time stop_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int64_t added_ ABSL_GUARDED_BY(mu_) = 0;  // items ever queued
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;   // items sent or given up on
  int flushing_ ABSL_GUARDED_BY(mu_) = 0;   // Flush calls waiting
  std::atomic<int64_t> exported_{0};
  std::atomic<int64_t> dropped_{0};
  std::thread thread_;
};

}  // namespace agentd::otel

#endif  // AGENTD_COMMON_OTEL_EXPORTER_H_
