#include "manager/core/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace agentd {
namespace {

// Integers (the common case: bytes, counts) print without an exponent up to 2^53.
std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    return absl::StrFormat("%.0f", v);
  }
  // The shortest of 15–17 significant digits that reads back as the same double.
  for (int precision = 15; precision < 17; ++precision) {
    std::string s = absl::StrFormat("%.*g", precision, v);
    if (std::strtod(s.c_str(), nullptr) == v) return s;
  }
  return absl::StrFormat("%.17g", v);
}

void Header(std::string* out, const std::string& name, const std::string& help, const char* type) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// {a="x",b="y"} (with `extra` appended, e.g. le="0.5"), or nothing without labels.
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     absl::string_view extra = "") {
  if (names.empty() && extra.empty()) return "";
  std::string s = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) s += ",";
    absl::StrAppend(&s, names[i], "=\"", EscapeLabelValue(i < values.size() ? values[i] : ""),
                    "\"");
  }
  if (!extra.empty()) absl::StrAppend(&s, names.empty() ? "" : ",", extra);
  s += "}";
  return s;
}

void RenderSeries(std::string* out, const std::string& name, const std::vector<std::string>& labels,
                  const std::map<LabelValues, double>& series) {
  for (const auto& [values, v] : series) {
    absl::StrAppend(out, name, LabelSet(labels, values), " ", Number(v), "\n");
  }
}

}  // namespace

std::string GrpcCodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::string EscapeLabelValue(absl::string_view v) {
  std::string s;
  s.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      s += "\\\\";
    } else if (c == '"') {
      s += "\\\"";
    } else if (c == '\n') {
      s += "\\n";
    } else {
      s += c;
    }
  }
  return s;
}

void CounterFamily::Add(const LabelValues& values, double v) {
  if (!(v >= 0)) return;
  std::lock_guard lock(mu_);
  series_[values] += v;
}

void CounterFamily::SetTotal(const LabelValues& values, double total) {
  std::lock_guard lock(mu_);
  series_[values] = total;
}

void GaugeFamily::Set(const LabelValues& values, double v) {
  std::lock_guard lock(mu_);
  series_[values] = v;
}

void CounterFamily::ReplaceTotals(std::map<LabelValues, double> totals) {
  std::lock_guard lock(mu_);
  series_ = std::move(totals);
}

void GaugeFamily::Replace(std::map<LabelValues, double> series) {
  std::lock_guard lock(mu_);
  series_ = std::move(series);
}

void ValueFamily::Render(std::string* out) const {
  Header(out, name_, help_, type_);
  std::map<LabelValues, double> copy;
  {
    std::lock_guard lock(mu_);
    copy = series_;
  }
  RenderSeries(out, name_, labels_, copy);
}

HistogramFamily::Series& HistogramFamily::SeriesLocked(const LabelValues& values) {
  Series& s = series_[values];  // a map's entries stay where they are
  if (s.buckets.empty()) s.buckets.resize(bounds_.size() + 1);
  return s;
}

void HistogramFamily::Count(Series& series, double v) const {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++series.buckets[i];
  series.sum += v;
  ++series.count;
}

void HistogramFamily::Observe(const LabelValues& values, double v) {
  std::lock_guard lock(mu_);
  Count(SeriesLocked(values), v);
}

HistogramFamily::Series* HistogramFamily::SeriesFor(const LabelValues& values) {
  std::lock_guard lock(mu_);
  return &SeriesLocked(values);
}

void HistogramFamily::Observe(Series* series, double v) {
  std::lock_guard lock(mu_);
  Count(*series, v);
}

void HistogramFamily::Render(std::string* out) const {
  Header(out, name_, help_, "histogram");
  std::map<LabelValues, Series> copy;
  {
    std::lock_guard lock(mu_);
    copy = series_;
  }
  for (const auto& [values, s] : copy) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      cumulative += s.buckets[i];
      std::string le =
          absl::StrCat("le=\"", i < bounds_.size() ? Number(bounds_[i]) : "+Inf", "\"");
      absl::StrAppend(out, name_, "_bucket", LabelSet(labels_, values, le), " ", cumulative, "\n");
    }
    absl::StrAppend(out, name_, "_sum", LabelSet(labels_, values), " ", Number(s.sum), "\n");
    absl::StrAppend(out, name_, "_count", LabelSet(labels_, values), " ", s.count, "\n");
  }
}

CounterFamily* MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<std::string> labels) {
  auto f = std::make_unique<CounterFamily>(std::move(name), std::move(help), std::move(labels));
  CounterFamily* p = f.get();
  std::lock_guard lock(mu_);
  families_.push_back(std::move(f));
  return p;
}

GaugeFamily* MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<std::string> labels) {
  auto f = std::make_unique<GaugeFamily>(std::move(name), std::move(help), std::move(labels));
  GaugeFamily* p = f.get();
  std::lock_guard lock(mu_);
  families_.push_back(std::move(f));
  return p;
}

HistogramFamily* MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> labels,
                                               std::vector<double> bounds) {
  auto f = std::make_unique<HistogramFamily>(std::move(name), std::move(help), std::move(labels),
                                             std::move(bounds));
  HistogramFamily* p = f.get();
  std::lock_guard lock(mu_);
  families_.push_back(std::move(f));
  return p;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& f : families_) f->Render(&out);
  return out;
}

std::unique_ptr<DaemonMetrics> DaemonMetrics::Create() {
  auto m = std::make_unique<DaemonMetrics>();
  MetricsRegistry& r = m->registry;
  m->agents = r.AddGauge("agentd_agents", "Agents by state.", {"state"});
  m->agent_isolation = r.AddGauge(
      "agentd_agent_isolation",
      "1 for the isolation agent processes start with: namespaces (user, mount, PID: the "
      "state dir and admin socket out of sight), none (supervision.isolation off, or auto "
      "where it does not work), refused (required where it does not work: agents do not "
      "start).",
      {"mode", "policy"});
  m->agents_sandbox = r.AddGauge(
      "agentd_agents_sandbox",
      "Registered agents by the sandbox their tools run in: bwrap; unconfined (policy auto, "
      "and the sandbox does not work on the agent's host); refused (policy required, and it "
      "does not work: their tasks that run programs fail); off.",
      {"mode", "policy"});
  m->agent_restarts = r.AddCounter("agentd_agent_restarts_total",
                                   "Restarts of each agent since it was added.", {"agent", "role"});
  m->build_info = r.AddGauge("agentd_build_info", "agentd's version and git revision (1).",
                             {"version", "revision"});
  m->process_cpu_seconds =
      r.AddCounter("process_cpu_seconds_total", "User and system CPU time spent in seconds.", {});
  m->process_resident_memory =
      r.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.", {});
  m->process_virtual_memory =
      r.AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {});
  m->process_open_fds = r.AddGauge("process_open_fds", "Number of open file descriptors.", {});
  m->process_max_fds =
      r.AddGauge("process_max_fds", "Maximum number of open file descriptors.", {});
  m->process_start_time = r.AddGauge("process_start_time_seconds",
                                     "Start time of the process since unix epoch in seconds.", {});
  m->restarts = r.AddCounter("agentd_restarts_total",
                             "Automatic restarts of crashed agents by the supervisor.", {"role"});
  m->heartbeats =
      r.AddCounter("agentd_heartbeats_total", "Heartbeats received from agents.", {"role"});
  m->rpc_seconds = r.AddHistogram(
      "agentd_rpc_duration_seconds", "Unary gRPC calls served, by method and status code.",
      {"method", "code"},
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5});
  m->rpc_streams =
      r.AddCounter("agentd_rpc_streams_total",
                   "Streaming gRPC calls ended, by method and status code.", {"method", "code"});
  m->log_bytes = r.AddCounter("agentd_log_bytes_written_total",
                              "Log record bytes written to disk since agentd started.");
  m->log_dropped_bytes = r.AddCounter("agentd_log_dropped_bytes_total",
                                      "Log bytes lost to write errors since agentd started.");
  m->trace_spans_exported = r.AddCounter(
      "agentd_trace_spans_exported_total",
      "OpenTelemetry spans a collector accepted since agentd started (0 when not tracing).");
  m->trace_spans_dropped = r.AddCounter(
      "agentd_trace_spans_dropped_total",
      "OpenTelemetry spans lost since agentd started: the export queue was full, an agent's "
      "batch did not decode, or the collector refused or could not be reached.");
  m->tokens = r.AddCounter("agentd_llm_tokens_total", "LLM tokens reported by agents.",
                           {"role", "model", "kind"});
  m->cost_usd =
      r.AddCounter("agentd_llm_cost_usd_total",
                   "LLM cost in US dollars, from the configured price table.", {"role", "model"});
  m->llm_calls = r.AddCounter("agentd_llm_calls_total",
                              "LLM calls made by agents, by how they ended (after retries).",
                              {"provider", "model", "role", "outcome"});
  m->llm_call_seconds = r.AddHistogram(
      "agentd_llm_call_duration_seconds",
      "Time an LLM call took, its retries included, from the agent's first request to the end.",
      {"provider", "model", "outcome"}, {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600});
  m->llm_first_token_seconds = r.AddHistogram(
      "agentd_llm_time_to_first_token_seconds",
      "Time from a streamed LLM call's request to its first token (the attempt that answered).",
      {"provider", "model"}, {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120});
  m->llm_retries = r.AddCounter("agentd_llm_retries_total",
                                "LLM call attempts beyond the first (the agent retried).",
                                {"provider", "model"});
  m->goal_budget_remaining_usd =
      r.AddGauge("agentd_goal_budget_remaining_usd",
                 "USD left in each open goal's budget (goals with a cost limit).", {"goal"});
  m->goal_budget_remaining_tokens =
      r.AddGauge("agentd_goal_budget_remaining_tokens",
                 "Tokens left in each open goal's budget (goals with a token limit).", {"goal"});
  m->task_transitions = r.AddCounter("agentd_task_transitions_total",
                                     "Task status transitions, by the status entered.", {"status"});
  m->http_requests = r.AddCounter("agentd_http_requests_total",
                                  "Requests answered by the HTTP listener.", {"route", "code"});
  m->http_streams =
      r.AddGauge("agentd_http_grpc_web_calls", "gRPC-web calls in flight on the HTTP listener.");
  return m;
}

void RefreshProcessMetrics(DaemonMetrics* m) {
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the command, which is in parentheses and may hold spaces: state is 3.
  size_t close = text.rfind(')');
  if (close != std::string::npos && close + 2 <= text.size()) {
    std::vector<std::string> f = absl::StrSplit(text.substr(close + 2), ' ');
    // utime 14, stime 15, starttime 22, vsize 23, rss 24 (1-based, as proc(5) counts).
    auto field = [&f](size_t n) {
      double v = 0;
      return n - 3 < f.size() && absl::SimpleAtod(f[n - 3], &v) ? v : -1.0;
    };
    double utime = field(14), stime = field(15), start = field(22), vsize = field(23),
           rss = field(24);
    if (utime >= 0 && stime >= 0) m->process_cpu_seconds->SetTotal({}, (utime + stime) / ticks);
    if (vsize >= 0) m->process_virtual_memory->Set({}, vsize);
    if (rss >= 0) m->process_resident_memory->Set({}, rss * page);
    std::ifstream boot("/proc/stat");
    for (std::string line; start >= 0 && std::getline(boot, line);) {
      double btime = 0;
      if (absl::StartsWith(line, "btime ") && absl::SimpleAtod(line.substr(6), &btime)) {
        m->process_start_time->Set({}, btime + start / ticks);
      }
    }
  }
  std::error_code ec;
  double fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  if (!ec) m->process_open_fds->Set({}, fds);
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    m->process_max_fds->Set({}, static_cast<double>(nofile.rlim_cur));
  }
}

}  // namespace agentd
