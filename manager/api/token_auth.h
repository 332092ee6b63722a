// TokenAuthProcessor: the admin-token check on the TCP gRPC listener.
//
// Every call must carry `authorization: Bearer <token>` with the daemon's admin token;
// otherwise it fails with UNAUTHENTICATED before any handler runs, with a message that
// says where the token is. The unix socket does not use it: there, filesystem
// permissions (socket 0600 in a 0700 directory) are the authentication.
// Process() runs inline on gRPC's thread (IsBlocking() is false): it only compares bytes.
#ifndef AGENTD_MANAGER_API_TOKEN_AUTH_H_
#define AGENTD_MANAGER_API_TOKEN_AUTH_H_

#include <string>

#include "grpcpp/security/auth_metadata_processor.h"

namespace agentd {

class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  TokenAuthProcessor(std::string admin_token, std::string token_file)
      : admin_token_(std::move(admin_token)), token_file_(std::move(token_file)) {}

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  std::string admin_token_;
  std::string token_file_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_TOKEN_AUTH_H_
