// Metrics: counters, gauges and histograms with labels, rendered in Prometheus' text
// exposition format (version 0.0.4) for the HTTP listener's /metrics.
//
// Written here rather than taken from a library. Debian does ship one (prometheus-cpp-dev
// 1.0), but its registry owns the HTTP exposition (civetweb) or wants its own serializer
// wiring, while agentd serves /metrics from its own listener with its own authentication;
// what agentd needs — a few families with labels, rendered as text — is small, and is
// checked against Prometheus' own parser (promtool check metrics) in the tests.
//
// Families are created once, at start (Add*), and live as long as the registry. Every
// method is safe from any thread: each family has its own mutex, held to update one entry
// (recording on a hot path costs one uncontended lock) or to copy the family's series
// for rendering.
#ifndef AGENTD_MANAGER_CORE_METRICS_H_
#define AGENTD_MANAGER_CORE_METRICS_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace agentd {

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class MetricFamily {
 public:
  virtual ~MetricFamily() = default;
  // Appends "# HELP", "# TYPE" and one line per series (per bucket for histograms).
  virtual void Render(std::string* out) const = 0;
};

// Families of one value per label set; the base of counters and gauges.
class ValueFamily : public MetricFamily {
 public:
  void Render(std::string* out) const override;

 protected:
  ValueFamily(std::string name, std::string help, std::vector<std::string> labels, const char* type)
      : name_(std::move(name)), help_(std::move(help)), labels_(std::move(labels)), type_(type) {}

  std::string name_, help_;
  std::vector<std::string> labels_;
  const char* type_;
  mutable std::mutex mu_;
  std::map<LabelValues, double> series_;  // guarded by mu_
};

// A value that only goes up (reset at daemon start, as Prometheus expects).
class CounterFamily final : public ValueFamily {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> labels)
      : ValueFamily(std::move(name), std::move(help), std::move(labels), "counter") {}
  // `values` must have one entry per label name. `v` < 0 is ignored.
  void Add(const LabelValues& values, double v = 1);
  // Sets the total from a source that counts by itself (a monotonic snapshot).
  void SetTotal(const LabelValues& values, double total);
  // Every series at once, from such a source: a series it no longer has (an agent
  // deleted) goes.
  void ReplaceTotals(std::map<LabelValues, double> totals);
};

// A value that goes up and down; Replace() swaps all series at once (a scrape-time
// snapshot, e.g. agents by state, where a state nobody is in must disappear or read 0).
class GaugeFamily final : public ValueFamily {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> labels)
      : ValueFamily(std::move(name), std::move(help), std::move(labels), "gauge") {}
  void Set(const LabelValues& values, double v);
  void Replace(std::map<LabelValues, double> series);
};

// Observations counted into cumulative buckets (upper bounds ascending, +Inf implied),
// with their sum and count.
class HistogramFamily final : public MetricFamily {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labels,
                  std::vector<double> bounds)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        bounds_(std::move(bounds)) {}
  void Observe(const LabelValues& values, double v);
  void Render(std::string* out) const override;

  // One series' counts. Opaque to callers, who keep a pointer from SeriesFor() to record
  // into it again and again without building and looking up its labels each time (an
  // RPC's duration, on every call).
  struct Series {
    std::vector<uint64_t> buckets;  // per bound, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  // The series of `values` (one per label name), made when new; valid as long as the family.
  Series* SeriesFor(const LabelValues& values);
  void Observe(Series* series, double v);

 private:
  // With mu_ held: the series of `values`, made when new; and `v` counted into one.
  Series& SeriesLocked(const LabelValues& values);
  void Count(Series& series, double v) const;

  std::string name_, help_;
  std::vector<std::string> labels_;
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<LabelValues, Series> series_;
};

class MetricsRegistry {
 public:
  // Names follow Prometheus' conventions (agentd_…_total for counters, _seconds, _bytes).
  // The returned family is owned by the registry.
  CounterFamily* AddCounter(std::string name, std::string help,
                            std::vector<std::string> labels = {});
  GaugeFamily* AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  HistogramFamily* AddHistogram(std::string name, std::string help, std::vector<std::string> labels,
                                std::vector<double> bounds);
  // Every family, in the order added.
  std::string Render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_;
};

// The families agentd's components record into; created by Create() on one registry.
// Components get a pointer to this (or null, in tests that do not look at metrics).
struct DaemonMetrics {
  static std::unique_ptr<DaemonMetrics> Create();

  MetricsRegistry registry;
  GaugeFamily* agents = nullptr;            // {state}: agents in each state (scrape time)
  CounterFamily* agent_restarts = nullptr;  // {agent, role}: restarts since the agent was added
  GaugeFamily* build_info = nullptr;        // {version, revision}: 1
  // The process: the standard process_* series (scrape time, from /proc/self).
  CounterFamily* process_cpu_seconds = nullptr;
  GaugeFamily* process_resident_memory = nullptr;
  GaugeFamily* process_virtual_memory = nullptr;
  GaugeFamily* process_open_fds = nullptr;
  GaugeFamily* process_max_fds = nullptr;
  GaugeFamily* process_start_time = nullptr;
  GaugeFamily* agent_isolation = nullptr;      // {mode, policy}: 1 for the mode in force
  GaugeFamily* agents_sandbox = nullptr;       // {mode, policy}: registered agents by tool sandbox
  CounterFamily* restarts = nullptr;           // {role}: automatic restarts by the supervisor
  CounterFamily* heartbeats = nullptr;         // {role}
  HistogramFamily* rpc_seconds = nullptr;      // {method ("unknown" off the API), code}: unary
  CounterFamily* rpc_streams = nullptr;        // {method, code}: streaming RPCs, when they end
  CounterFamily* log_bytes = nullptr;          // log record bytes written since start
  CounterFamily* log_dropped_bytes = nullptr;  // log bytes lost to write errors
  CounterFamily* trace_spans_exported = nullptr;  // spans a collector took (when tracing)
  CounterFamily* trace_spans_dropped = nullptr;   // spans lost: queue full, refused, failed
  CounterFamily* tokens = nullptr;                // {role, model, kind=input|output}
  CounterFamily* cost_usd = nullptr;              // {role, model}
  // {provider, model, role, outcome}: every call, failed ones too (outcome "ok",
  // "timeout", "unavailable", "rate_limited", "refused", "error", "canceled").
  CounterFamily* llm_calls = nullptr;
  HistogramFamily* llm_call_seconds = nullptr;         // {provider, model, outcome}
  HistogramFamily* llm_first_token_seconds = nullptr;  // {provider, model}: streamed calls
  CounterFamily* llm_retries = nullptr;                // {provider, model}: attempts beyond 1
  // {goal}: what is left of each open goal's budget (scrape time; none when unlimited).
  GaugeFamily* goal_budget_remaining_usd = nullptr;
  GaugeFamily* goal_budget_remaining_tokens = nullptr;
  CounterFamily* task_transitions = nullptr;  // {status}: transitions into each status
  CounterFamily* http_requests = nullptr;     // {route, code}: the HTTP listener's answers
  GaugeFamily* http_streams = nullptr;        // gRPC-web streams open now
};

// Sets the process_* series from /proc/self (CPU time, memory, descriptors, start time).
// Linux only; a series it cannot read keeps its last value. Thread-safe.
void RefreshProcessMetrics(DaemonMetrics* m);

// The method label of RPCs whose method is not part of agentd's API (a name a client
// made up): one series for all of them, so clients cannot grow /metrics without bound.
inline constexpr char kUnknownMethodLabel[] = "unknown";

// A gRPC status code as a label value: "OK", "NOT_FOUND", … (absl's names match gRPC's).
std::string GrpcCodeName(int code);

// Escapes a label value for the text format (backslash, double quote, newline).
std::string EscapeLabelValue(absl::string_view v);

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_METRICS_H_
