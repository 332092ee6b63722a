// Conversion from absl::Status (core) to grpc::Status (api). The codes are the same
// canonical set; the message is kept as it is.
#ifndef AGENTD_MANAGER_API_STATUS_H_
#define AGENTD_MANAGER_API_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace agentd {

inline grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_STATUS_H_
