// WebSessions: how a browser logs in to agentd's HTTP listener without the admin token
// ever entering an address bar, a history or a cookie.
//
//   1. An admin (agentctl ui, over the unix socket) asks for a login code
//      (SystemService.CreateLoginCode): 128 random bits, good once, for `code_ttl`.
//   2. The browser opens /login?code=…; the listener redeems the code — it is gone from
//      then on, whether or not it was still good — for a session id (256 random bits) that
//      it sets as an HttpOnly, SameSite=Strict cookie with Max-Age `session_ttl`.
//   3. Each request's cookie is checked with Valid(); a session ends at its expiry or when
//      revoked (RevokeAll: agentctl ui --revoke-all, SystemService.RevokeWebSessions).
//
// Only SHA-256 digests of codes and session ids are kept, and looked up by digest, so the
// time a lookup takes says nothing about a stored secret. With `Options::file`, the
// sessions' digests and expiries are also kept in that file (0600, in the state dir,
// rewritten whole on each change), so a browser stays logged in across a restart of
// agentd; a copy of the file gives no one a cookie (it holds digests only). Without it,
// sessions live in memory only and a restart logs every browser out. Login codes are
// never written down: they live minutes. Both tables are bounded (the oldest entry goes
// first), so no caller can grow agentd without limit.
//
// Thread-safe: every method may be called from any thread.
#ifndef AGENTD_MANAGER_CORE_WEB_SESSIONS_H_
#define AGENTD_MANAGER_CORE_WEB_SESSIONS_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "manager/core/clock.h"

namespace agentd {

class WebSessions {
 public:
  struct Options {
    absl::Duration code_ttl = absl::Minutes(10);
    absl::Duration session_ttl = absl::Hours(12);
    size_t max_codes = 256;
    size_t max_sessions = 4096;
    // Where sessions survive a restart; empty: memory only. A file that cannot be read
    // at start is ignored (browsers log in again); write failures are logged.
    std::string file;
  };
  struct Grant {
    std::string secret;  // the code, or the session id
    absl::Time expire_time;
  };

  // `clock` (not owned; null: the real clock) must outlive this.
  explicit WebSessions(Options options, Clock* clock = nullptr);

  // A new one-time login code.
  Grant CreateLoginCode();
  // Redeems `code` (at most once, ever): a new session, or nullopt when the code is
  // unknown, used already, expired or revoked.
  std::optional<Grant> Redeem(const std::string& code);
  // Whether `session_id` names a session that has neither expired nor been revoked.
  bool Valid(const std::string& session_id);

  struct Revoked {
    int64_t sessions = 0;  // sessions that were still valid
    int64_t codes = 0;     // codes not yet used
  };
  // Ends every session and voids every unused code.
  Revoked RevokeAll();

  // The listener's base URL ("http://127.0.0.1:7878"), set once it is bound; empty while
  // there is no HTTP listener. Login links are <base>/login?code=<code>.
  void SetBaseUrl(std::string url);
  std::string base_url();
  static std::string LoginPath(const std::string& code) { return "/login?code=" + code; }

  absl::Duration session_ttl() const { return options_.session_ttl; }

 private:
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::string Digest(const std::string& secret);
  // Drops the entry that expires first while `table` holds more than `max`.
  static void Bound(std::map<std::string, absl::Time>* table, size_t max);

  const Options options_;
  Clock* clock_;
  absl::Mutex mu_;
  std::map<std::string, absl::Time> codes_ ABSL_GUARDED_BY(mu_);     // digest -> expiry
  std::map<std::string, absl::Time> sessions_ ABSL_GUARDED_BY(mu_);  // digest -> expiry
  std::string base_url_ ABSL_GUARDED_BY(mu_);
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_WEB_SESSIONS_H_
