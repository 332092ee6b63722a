#include "common/logging.h"

#include <unistd.h>

#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/base_sink.h"
#include "spdlog/spdlog.h"

namespace agentd {
namespace {

absl::Mutex g_secrets_mu;
std::vector<std::string>* g_secrets ABSL_GUARDED_BY(g_secrets_mu) = new std::vector<std::string>;

// Writes records to stderr in text or JSON form, redacted. One write(2) per record so
// lines from several threads never interleave.
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
  auto sink = std::make_shared<StderrSink>(format == "json");
  auto logger = std::make_shared<spdlog::logger>("agentd", std::move(sink));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->set_level(*l);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

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
