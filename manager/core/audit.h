// AuditLog: the append-only, hash-chained record of every side effect an agent made,
// every consent decision and every administrative action.
//
// Each entry's hash is SHA-256 over the previous entry's hash and the entry's own fields
// (each length-prefixed, details in key order), so changing, inserting or removing an
// entry anywhere breaks the chain from there on; Verify recomputes it and names the
// first entry that does not match, and why.
//
// Entries live in agentd.db only; the chain's head (last seq and hash) is kept in memory
// and read back at start. Details never carry secrets: callers pass what a person needs
// (a path, a command line, an exit code), and tokens are masked like in logs.
//
// Thread-safety: core loop thread only.
#ifndef AGENTD_MANAGER_CORE_AUDIT_H_
#define AGENTD_MANAGER_CORE_AUDIT_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "agentd/v1/audit.pb.h"
#include "manager/core/event_loop.h"
#include "manager/store/store.h"

namespace agentd {

class AuditLog {
 public:
  // Neither pointer is owned.
  AuditLog(EventLoop* loop, Store* store) : loop_(loop), store_(store) {}

  // Reads the chain's head.
  absl::Status Recover();

  // Appends an entry now. A store failure is logged (the action it records has happened).
  void Append(v1::ActorKind kind, const std::string& actor, const std::string& action,
              const std::string& target, const std::string& goal_id = "",
              const std::string& task_id = "",
              const std::map<std::string, std::string>& details = {});
  // `by` as the API layer names callers ("human:local", an agent id, "daemon").
  void AppendBy(const std::string& by, const std::string& action, const std::string& target,
                const std::string& goal_id = "", const std::string& task_id = "",
                const std::map<std::string, std::string>& details = {});

  absl::StatusOr<v1::ListAuditEntriesResponse> List(const v1::ListAuditEntriesRequest& req) const;
  absl::StatusOr<v1::VerifyAuditChainResponse> Verify(const v1::VerifyAuditChainRequest& req) const;

  // The hash of `e` given its prev_hash (hex SHA-256).
  static std::string Hash(const v1::AuditEntry& e);

 private:
  EventLoop* loop_;
  Store* store_;
  int64_t last_seq_ = 0;
  std::string last_hash_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_AUDIT_H_
