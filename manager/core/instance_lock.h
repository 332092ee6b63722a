// InstanceLock: one agentd per state directory and per socket.
//
// Acquire() takes an exclusive flock(2) on `path` (created 0600) and writes this pid into
// it. When another process holds it the error says which pid and what to do, so a second
// agentd exits instead of stealing the first one's socket or database. The kernel drops
// the lock when the process dies, kill -9 included: no stale-lock cleanup is needed.
// The lock is released on destruction; the file stays (see the .cc for why).
#ifndef AGENTD_MANAGER_CORE_INSTANCE_LOCK_H_
#define AGENTD_MANAGER_CORE_INSTANCE_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace agentd {

class InstanceLock {
 public:
  // `what` names the resource in errors, e.g. "state directory /var/lib/agentd".
  static absl::StatusOr<std::unique_ptr<InstanceLock>> Acquire(const std::string& path,
                                                               const std::string& what);
  ~InstanceLock();
  InstanceLock(const InstanceLock&) = delete;
  InstanceLock& operator=(const InstanceLock&) = delete;

 private:
  InstanceLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_CORE_INSTANCE_LOCK_H_
