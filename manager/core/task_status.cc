#include "manager/core/task_status.h"

#include "absl/strings/ascii.h"

namespace agentd {

bool Final(v1::TaskStatus s) {
  return s == v1::TASK_STATUS_COMPLETED || s == v1::TASK_STATUS_FAILED ||
         s == v1::TASK_STATUS_CANCELED;
}

bool Held(v1::TaskStatus s) {
  return s == v1::TASK_STATUS_ASSIGNED || s == v1::TASK_STATUS_RUNNING;
}

std::string StatusName(v1::TaskStatus s) {
  std::string name = absl::AsciiStrToLower(v1::TaskStatus_Name(s));
  return name.substr(name.rfind('_') + 1);
}

bool TransitionAllowed(v1::TaskStatus from, v1::TaskStatus to) {
  using S = v1::TaskStatus;
  if (from == to) return true;
  if (to == v1::TASK_STATUS_UNSPECIFIED || from == v1::TASK_STATUS_UNSPECIFIED) return false;
  switch (from) {
    case S::TASK_STATUS_PENDING:
      return to == v1::TASK_STATUS_READY || to == v1::TASK_STATUS_FAILED ||
             to == v1::TASK_STATUS_CANCELED;
    case S::TASK_STATUS_READY:
      return to == v1::TASK_STATUS_ASSIGNED || to == v1::TASK_STATUS_FAILED ||
             to == v1::TASK_STATUS_CANCELED;
    case S::TASK_STATUS_ASSIGNED:
    case S::TASK_STATUS_RUNNING:
      return to != v1::TASK_STATUS_PENDING &&
             (to != v1::TASK_STATUS_ASSIGNED || from == v1::TASK_STATUS_ASSIGNED);
    case S::TASK_STATUS_BLOCKED:
      return to == v1::TASK_STATUS_READY || Final(to);
    case S::TASK_STATUS_FAILED:
    case S::TASK_STATUS_CANCELED:
      return to == v1::TASK_STATUS_READY;  // a person's retry
    case S::TASK_STATUS_COMPLETED:
    default:
      return false;
  }
}

}  // namespace agentd
