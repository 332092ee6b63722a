#include "common/logging.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/details/null_mutex.h"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

thread_local LogScope::Fields t_fields;
bool g_to_journal = false;
std::atomic<JournalSend> g_journal_send{nullptr};

absl::Mutex g_secrets_mu;
std::vector<std::string>* g_secrets ABSL_GUARDED_BY(g_secrets_mu) = new std::vector<std::string>;

// Writes records to stderr in text or JSON form, redacted. One write(2) per record so
// lines from several threads never interleave.
absl::Mutex g_trace_ids_mu;
std::shared_ptr<const LogTraceIds> g_trace_ids ABSL_GUARDED_BY(g_trace_ids_mu);

bool TraceIdsOf(const LogScope::Fields& f, std::string* trace, std::string* span) {
  if (f.goal_id.empty()) return false;
  std::shared_ptr<const LogTraceIds> ids;
  {
    absl::MutexLock l(&g_trace_ids_mu);
    ids = g_trace_ids;
  }
  return ids != nullptr && (*ids)(f, trace, span);
}

class StderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit StderrSink(bool json) : json_(json) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string line;
    if (json_) {
      auto t = std::chrono::duration_cast<std::chrono::microseconds>(msg.time.time_since_epoch())
                   .count();
      nlohmann::json j = {
          {"ts",
           absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::FromUnixMicros(t), absl::UTCTimeZone())},
          {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                spdlog::level::to_string_view(msg.level).size())},
          {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
          {"msg", RedactSecrets(absl::string_view(msg.payload.data(), msg.payload.size()))},
      };
      const LogScope::Fields& f = LogScope::Current();
      if (!f.agent_id.empty()) j["agent_id"] = f.agent_id;
      if (!f.task_id.empty()) j["task_id"] = f.task_id;
      if (!f.goal_id.empty()) j["goal_id"] = f.goal_id;
      if (std::string trace, span; TraceIdsOf(f, &trace, &span)) {
        j["trace_id"] = trace;
        j["span_id"] = span;
      }
      line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      line.push_back('\n');
    } else {
      spdlog::memory_buf_t buf;
      formatter_->format(msg, buf);
      line = RedactSecrets(absl::string_view(buf.data(), buf.size()));
    }
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(STDERR_FILENO, p, left);
      if (n <= 0) break;  // nowhere left to report a failing stderr
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  void flush_() override {}

 private:
  bool json_;
};

// Hands the tap its records on a thread of its own, in order, so that the tap never runs
// under a lock the logging code holds (a LogStore logging a disk error holds its own) nor
// on a thread that must not wait (the core loop). At most kMaxQueued records wait; beyond
// that they are counted, and the count is handed on when there is room.
class TapQueue {
 public:
  static constexpr size_t kMaxQueued = 10000;

  explicit TapQueue(std::function<void(absl::string_view)> tap)
      : tap_(std::move(tap)), thread_([this] { Run(); }) {}
  // Hands on what is queued, then stops.
  ~TapQueue() {
    {
      absl::MutexLock l(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  void Push(std::string line) {
    absl::MutexLock l(&mu_);
    if (queue_.size() >= kMaxQueued) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(line));
  }

 private:
  void Run();

  std::function<void(absl::string_view)> tap_;
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the members above exist
};

absl::Mutex g_tap_mu;
TapQueue* g_tap ABSL_GUARDED_BY(g_tap_mu) = nullptr;
// Set on the tap's own thread: what the tap logs is not handed back to it.
thread_local bool t_is_tap_thread = false;

void TapQueue::Run() {
  t_is_tap_thread = true;
  for (;;) {
    std::deque<std::string> batch;
    int64_t dropped = 0;
    bool stop = false;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](TapQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return q->stop_ || !q->queue_.empty() || q->dropped_ > 0;
          },
          this));
      batch.swap(queue_);
      std::swap(dropped, dropped_);
      stop = stop_;
    }
    if (dropped > 0) {
      tap_(absl::StrCat("warning ", dropped,
                        " records were left out here: they came faster than they could be "
                        "kept (stderr or the journal has them)"));
    }
    for (const std::string& line : batch) tap_(line);
    if (stop && batch.empty() && dropped == 0) return;
  }
}

// Queues each record for the tap SetLogTap installed, if any. Takes no lock of spdlog's
// (null_mutex): the queue has its own.
class TapSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (t_is_tap_thread) return;
    absl::ReaderMutexLock l(&g_tap_mu);
    if (g_tap == nullptr) return;
    auto level = spdlog::level::to_string_view(msg.level);
    std::string line =
        absl::StrCat(absl::string_view(level.data(), level.size()), " ",
                     RedactSecrets(absl::string_view(msg.payload.data(), msg.payload.size())));
    const LogScope::Fields& f = LogScope::Current();
    std::vector<std::string> fields;
    if (!f.agent_id.empty()) fields.push_back("agent=" + f.agent_id);
    if (!f.task_id.empty()) fields.push_back("task=" + f.task_id);
    if (!f.goal_id.empty()) fields.push_back("goal=" + f.goal_id);
    if (!fields.empty()) absl::StrAppend(&line, " [", absl::StrJoin(fields, " "), "]");
    g_tap->Push(std::move(line));
  }
  void flush_() override {}
};

// Writes records to journald with sd_journal_sendv: MESSAGE (redacted), PRIORITY from
// the level, SYSLOG_IDENTIFIER, and the LogScope's AGENT_ID, TASK_ID, GOAL_ID. (spdlog's
// own systemd_sink sends only the message and priority: no fields of ours, no redaction.)
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::vector<std::string> fields;
    fields.push_back(absl::StrCat(
        "MESSAGE=", RedactSecrets(absl::string_view(msg.payload.data(), msg.payload.size()))));
    fields.push_back(absl::StrCat("PRIORITY=", Priority(msg.level)));
    fields.push_back("SYSLOG_IDENTIFIER=agentd");
    const LogScope::Fields& f = LogScope::Current();
    if (!f.agent_id.empty()) fields.push_back(absl::StrCat("AGENT_ID=", f.agent_id));
    if (!f.task_id.empty()) fields.push_back(absl::StrCat("TASK_ID=", f.task_id));
    if (!f.goal_id.empty()) fields.push_back(absl::StrCat("GOAL_ID=", f.goal_id));
    if (std::string trace, span; TraceIdsOf(f, &trace, &span)) {
      fields.push_back(absl::StrCat("TRACE_ID=", trace));
      fields.push_back(absl::StrCat("SPAN_ID=", span));
    }
    std::vector<iovec> iov;
    for (std::string& field : fields) iov.push_back({field.data(), field.size()});
    if (JournalSend send = g_journal_send.load(); send != nullptr) {
      send(iov.data(), static_cast<int>(iov.size()));
    }
  }
  void flush_() override {}

 private:
  static int Priority(spdlog::level::level_enum l) {
    switch (l) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        return LOG_DEBUG;
      case spdlog::level::info:
        return LOG_INFO;
      case spdlog::level::warn:
        return LOG_WARNING;
      case spdlog::level::err:
        return LOG_ERR;
      default:
        return LOG_CRIT;
    }
  }
};

// Whether stderr is the journal's stream: JOURNAL_STREAM is "DEVICE:INODE" of it (systemd
// sets it for a service whose output goes to the journal; a child whose stderr was
// redirected inherits the variable but not the stream, hence the comparison).
bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

absl::StatusOr<spdlog::level::level_enum> ParseLevel(absl::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  if (l == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log level \"", level,
                     "\" (expected trace, debug, info, warn, error, critical, off)"));
  }
  return l;
}

}  // namespace

absl::Status SetupLogging(absl::string_view format, absl::string_view level) {
  if (format != "text" && format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown log format \"", format, "\" (expected text or json)"));
  }
  auto l = ParseLevel(level);
  if (!l.ok()) return l.status();
  spdlog::sink_ptr sink;
  g_to_journal = format == "text" && g_journal_send.load() != nullptr && StderrIsJournal();
  if (g_to_journal) sink = std::make_shared<JournalSink>();
  if (sink == nullptr) sink = std::make_shared<StderrSink>(format == "json");
  spdlog::sinks_init_list sinks = {std::move(sink), std::make_shared<TapSink>()};
  auto logger = std::make_shared<spdlog::logger>("agentd", sinks);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->set_level(*l);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

bool LoggingToJournal() { return g_to_journal; }

void SetJournalSend(JournalSend send) { g_journal_send.store(send); }

void SetLogTap(std::function<void(absl::string_view line)> tap) {
  TapQueue* next = tap ? new TapQueue(std::move(tap)) : nullptr;
  TapQueue* old;
  {
    absl::MutexLock l(&g_tap_mu);  // waits for records being queued to the old tap
    old = g_tap;
    g_tap = next;
  }
  delete old;  // hands on what it holds, then its thread ends
}

void SetLogTraceIds(LogTraceIds ids) {
  auto p = ids ? std::make_shared<const LogTraceIds>(std::move(ids)) : nullptr;
  absl::MutexLock l(&g_trace_ids_mu);
  g_trace_ids = std::move(p);
}

LogScope::LogScope(absl::string_view agent_id, absl::string_view task_id, absl::string_view goal_id)
    : saved_(t_fields) {
  if (!agent_id.empty()) t_fields.agent_id = std::string(agent_id);
  if (!task_id.empty()) t_fields.task_id = std::string(task_id);
  if (!goal_id.empty()) t_fields.goal_id = std::string(goal_id);
}

LogScope::~LogScope() { t_fields = std::move(saved_); }

const LogScope::Fields& LogScope::Current() { return t_fields; }

absl::Status SetLogLevel(absl::string_view level) {
  auto l = ParseLevel(level);
  if (!l.ok()) return l.status();
  spdlog::set_level(*l);
  return absl::OkStatus();
}

void AddLogSecret(std::string secret) {
  if (secret.size() < 8) return;  // short strings would redact ordinary words
  absl::MutexLock lock(&g_secrets_mu);
  g_secrets->push_back(std::move(secret));
}

std::string RedactSecrets(absl::string_view text) {
  absl::MutexLock lock(&g_secrets_mu);
  std::string out(text);
  for (const std::string& s : *g_secrets) {
    if (out.find(s) != std::string::npos) out = absl::StrReplaceAll(out, {{s, "[REDACTED]"}});
  }
  return out;
}

}  // namespace agentd
