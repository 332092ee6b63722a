#include "manager/core/web_sessions.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/paths.h"
#include "common/sha256.h"
#include "common/token.h"
#include "spdlog/spdlog.h"

namespace agentd {

WebSessions::WebSessions(Options options, Clock* clock)
    : options_(std::move(options)), clock_(clock != nullptr ? clock : Clock::Real()) {
  absl::MutexLock l(&mu_);
  LoadLocked();
}

// The file: one session a line, "<hex digest> <expiry, unix seconds>".
void WebSessions::LoadLocked() {
  if (options_.file.empty()) return;
  absl::StatusOr<std::string> text = ReadSmallFile(options_.file, 1 << 20);
  if (!text.ok()) return;  // none yet, or unreadable: browsers log in again
  absl::Time now = clock_->Now();
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> f = absl::StrSplit(line, ' ');
    int64_t expiry = 0;
    if (f.first.size() != 64 ||
        !std::all_of(f.first.begin(), f.first.end(), absl::ascii_isxdigit) ||
        !absl::SimpleAtoi(f.second, &expiry)) {
      continue;
    }
    std::string digest = absl::HexStringToBytes(f.first);
    absl::Time at = absl::FromUnixSeconds(expiry);
    if (at > now) sessions_[digest] = std::min(at, now + options_.session_ttl);
  }
  Bound(&sessions_, options_.max_sessions);
}

void WebSessions::SaveLocked() {
  if (options_.file.empty()) return;
  std::string text;
  for (const auto& [digest, expiry] : sessions_) {
    absl::StrAppend(&text, absl::BytesToHexString(digest), " ", absl::ToUnixSeconds(expiry), "\n");
  }
  // Written beside and renamed over: a crash leaves the old file or the new, never half.
  std::string tmp = options_.file + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  bool ok = fd >= 0 && write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (fd >= 0) ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp.c_str(), options_.file.c_str()) != 0) {
    spdlog::warn("{}: cannot save web sessions: {} (they still hold until agentd restarts)",
                 options_.file, std::strerror(errno));
    unlink(tmp.c_str());
  }
}

std::string WebSessions::Digest(const std::string& secret) { return DigestBytes(Sha256(secret)); }

void WebSessions::PruneLocked(absl::Time now) {
  for (auto* table : {&codes_, &sessions_}) {
    for (auto it = table->begin(); it != table->end();) {
      it = it->second <= now ? table->erase(it) : std::next(it);
    }
  }
}

void WebSessions::Bound(std::map<std::string, absl::Time>* table, size_t max) {
  while (table->size() > max) {
    auto oldest = table->begin();
    for (auto it = table->begin(); it != table->end(); ++it) {
      if (it->second < oldest->second) oldest = it;
    }
    table->erase(oldest);
  }
}

WebSessions::Grant WebSessions::CreateLoginCode() {
  // 128 bits: a code lives minutes and is good once; short enough to copy by hand.
  Grant g{NewToken().substr(7, 32), clock_->Now() + options_.code_ttl};
  absl::MutexLock l(&mu_);
  PruneLocked(clock_->Now());
  codes_[Digest(g.secret)] = g.expire_time;
  Bound(&codes_, options_.max_codes);
  return g;
}

std::optional<WebSessions::Grant> WebSessions::Redeem(const std::string& code) {
  absl::Time now = clock_->Now();
  absl::MutexLock l(&mu_);
  auto it = codes_.find(Digest(code));
  if (it == codes_.end()) return std::nullopt;
  bool good = it->second > now;
  codes_.erase(it);  // once, whatever the outcome
  if (!good) return std::nullopt;
  PruneLocked(now);
  Grant g{NewToken().substr(7), now + options_.session_ttl};
  sessions_[Digest(g.secret)] = g.expire_time;
  Bound(&sessions_, options_.max_sessions);
  SaveLocked();
  return g;
}

bool WebSessions::Valid(const std::string& session_id) {
  if (session_id.empty()) return false;
  absl::Time now = clock_->Now();
  absl::MutexLock l(&mu_);
  auto it = sessions_.find(Digest(session_id));
  if (it == sessions_.end()) return false;
  if (it->second <= now) {
    sessions_.erase(it);
    return false;
  }
  return true;
}

WebSessions::Revoked WebSessions::RevokeAll() {
  absl::MutexLock l(&mu_);
  PruneLocked(clock_->Now());
  Revoked r{static_cast<int64_t>(sessions_.size()), static_cast<int64_t>(codes_.size())};
  sessions_.clear();
  codes_.clear();
  SaveLocked();
  return r;
}

void WebSessions::SetBaseUrl(std::string url) {
  absl::MutexLock l(&mu_);
  base_url_ = std::move(url);
}

std::string WebSessions::base_url() {
  absl::MutexLock l(&mu_);
  return base_url_;
}

}  // namespace agentd
