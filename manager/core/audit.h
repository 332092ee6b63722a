// AuditLog: the append-only, hash-chained record of every side effect an agent made,
// every consent decision and every administrative action.
//
// The chain. Each entry's hash is HMAC-SHA256 over the previous entry's hash and the
// entry's own fields (each length-prefixed, details in key order), keyed with a secret
// that only agentd reads (audit.key). Changing, inserting or removing an entry anywhere
// breaks the chain from there on, and without the key nobody can write an entry that
// fits. Verify recomputes the chain and names the first entry that does not match, and
// why. Entries written before the chain was keyed (by an agentd without audit.key) keep
// their plain SHA-256 hashes; audit.key records the first keyed seq.
//
// The head. Deleting the newest entries leaves a valid chain, so the newest entry's seq
// and hash are also kept outside agentd.db, in audit.head, rewritten after every append
// commits; Verify compares the database's newest entry with it.
//
// The files live in the state dir next to agentd.db, each a single line:
//   audit.key   "agentd-audit-key 1 keyed_from=<seq> key=<64 hex digits>", mode 0600,
//               made once, at the first start (refused, like admin.token, when others
//               can read it or it belongs to another user).
//   audit.head  "agentd-audit-head 1 seq=<seq> hash=<hex> mac=<64 hex digits>", mode
//               0600; mac is the HMAC of the line up to " mac=", so the head cannot be
//               moved back without the key either.
// Both are written to a temporary file, fsynced, renamed over the old one, and the
// directory fsynced. An entry is synced in agentd.db before the head names it, so after
// a crash the head is either current or exactly one entry behind. One behind is what a
// crash between the two writes leaves: Recover moves the head on and Verify accepts it.
// A head ahead of agentd.db means entries were deleted from the end: Verify reports
// them, and Recover leaves the head as it is and continues the chain after it, so that
// the gap stays in the chain for good. Any other disagreement at start (head missing
// while keyed entries exist, malformed, a wrong mac, another hash at its seq, more than
// one entry behind) cannot be told apart from tampering: Recover records what it found
// as an "audit.head_mismatch" entry and writes a new head, and Verify reports that
// entry as the break, so the evidence outlives the restart.
//
// Someone who can read the state dir can read audit.key and forge anything; the key and
// the head protect against changes to agentd.db alone (an edit through SQL, an older
// copy put back).
//
// Details never carry secrets: callers pass what a person needs (a path, a command line,
// an exit code), and tokens are masked like in logs.
//
// Thread-safety: core loop thread only (Recover may run before the loop starts). Append
// waits for three syncs: the entry's commit, the head file and its directory.
#ifndef AGENTD_MANAGER_CORE_AUDIT_H_
#define AGENTD_MANAGER_CORE_AUDIT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agentd/v1/audit.pb.h"
#include "manager/core/event_loop.h"
#include "manager/store/store.h"

namespace agentd {

// Where the audit log keeps what must not live in agentd.db.
struct AuditFiles {
  std::string key;   // the chain's secret and first keyed seq
  std::string head;  // the newest entry's seq and hash
};

// An entry to append: who did what to what.
struct AuditIntent {
  v1::ActorKind kind = v1::ACTOR_KIND_DAEMON;
  std::string actor, action, target, goal_id, task_id;
  std::map<std::string, std::string> details;
};

class AuditLog {
 public:
  // `by` as the API layer names callers ("human:local", an agent id, "daemon", "policy").
  static AuditIntent By(const std::string& by, const std::string& action, const std::string& target,
                        const std::string& goal_id = "", const std::string& task_id = "",
                        const std::map<std::string, std::string>& details = {});

  // The action of the entry Recover appends when audit.head disagrees with agentd.db.
  static constexpr char kHeadMismatchAction[] = "audit.head_mismatch";

  // audit.key and audit.head in `state_dir`.
  static AuditFiles FilesIn(const std::string& state_dir);

  // Neither pointer is owned; both must outlive the log.
  AuditLog(EventLoop* loop, Store* store, AuditFiles files)
      : loop_(loop), store_(store), files_(std::move(files)) {}

  // Reads the key (making it on the first start) and the chain's head, and reconciles
  // the head with agentd.db as the file comment says. Call once, before Append, List or
  // Verify. Errors, naming the file: PermissionDenied for a key file that others can read
  // or that is not this user's, FailedPrecondition for one agentd did not write; errors
  // reading or writing the files or the store. Tampering is not an error: Verify says.
  absl::Status Recover();

  // Appends an entry now. A store failure is logged (the action it records has
  // happened); so is a failure to write audit.head, which the next append retries.
  void Append(v1::ActorKind kind, const std::string& actor, const std::string& action,
              const std::string& target, const std::string& goal_id = "",
              const std::string& task_id = "",
              const std::map<std::string, std::string>& details = {});
  // `by` as the API layer names callers ("human:local", an agent id, "daemon").
  void AppendBy(const std::string& by, const std::string& action, const std::string& target,
                const std::string& goal_id = "", const std::string& task_id = "",
                const std::map<std::string, std::string>& details = {});

  // For an entry that goes in the transaction of the change it records (Store::SaveTask,
  // AppendEvent): Prepare makes the next entry's row; once that transaction committed,
  // Committed makes it the chain's head. A row not committed is simply dropped (the next
  // Prepare makes the same seq again). Prepare fails only before Recover.
  absl::StatusOr<AuditRecord> Prepare(const AuditIntent& intent) const;
  void Committed(const AuditRecord& record);

  absl::StatusOr<v1::ListAuditEntriesResponse> List(const v1::ListAuditEntriesRequest& req) const;
  // Checks the chain from req.from_seq through req.to_seq and, when to_seq is 0 (through
  // the end), the newest entry against audit.head. A broken chain is a response with ok
  // false, first_broken_seq and a reason that says what broke; errors are only for
  // failures to read.
  absl::StatusOr<v1::VerifyAuditChainResponse> Verify(const v1::VerifyAuditChainRequest& req) const;

  // The hash of `row` given its prev_hash, in hex: HMAC-SHA256 with `key`, or plain
  // SHA-256 when `key` is empty (entries written before the chain was keyed).
  static std::string Hash(const AuditRow& row, absl::string_view key);

 private:
  struct Head {
    int64_t seq = 0;
    std::string hash;
  };
  // How audit.head compares with agentd.db's newest entry.
  struct HeadCheck {
    enum Kind { kCurrent, kOneBehind, kAhead, kMismatch } kind = kCurrent;
    std::string problem;  // for kMismatch: what is wrong, as a clause
    int64_t seq = 0;      // for kAhead and kMismatch: the first entry it concerns
  };

  absl::Status AppendEntry(v1::ActorKind kind, const std::string& actor, const std::string& action,
                           const std::string& target, const std::string& goal_id,
                           const std::string& task_id,
                           const std::map<std::string, std::string>& details);
  // NotFound when there is no head; DataLoss when it is malformed or its mac is wrong.
  absl::StatusOr<Head> ReadHead() const;
  absl::Status WriteHead() const;
  absl::StatusOr<HeadCheck> CheckHead(const absl::StatusOr<Head>& head, int64_t newest_seq,
                                      const std::string& newest_hash) const;
  std::string Mac(absl::string_view text) const;
  // The key entry `seq` is hashed with: empty before keyed_from_.
  absl::string_view KeyFor(int64_t seq) const;

  EventLoop* loop_;
  Store* store_;
  const AuditFiles files_;
  std::string key_;  // raw bytes; empty until Recover
  int64_t keyed_from_ = 1;
  int64_t last_seq_ = 0;
  std::string last_hash_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_AUDIT_H_
