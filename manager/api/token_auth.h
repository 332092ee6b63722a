// TokenAuthProcessor: the admin-token check on the TCP gRPC listener.
//
// Every call must carry `authorization: Bearer <token>` with the daemon's admin token (or
// its A2A token, which is left in the call's metadata: every agentd.v1 service refuses it
// there, and only lf.a2a.v1.A2AService takes it);
// otherwise it fails with UNAUTHENTICATED before any handler runs, with a message that
// says what to send and how to get the token, but not where agentd keeps its files: the
// caller is not known yet, and a path tells a stranger about the host. The unix socket does not use
// it: there, filesystem permissions (socket 0600 in a 0700 directory) are the authentication.
// Process() runs inline on gRPC's thread (IsBlocking() is false): it only compares bytes.
#ifndef AGENTD_MANAGER_API_TOKEN_AUTH_H_
#define AGENTD_MANAGER_API_TOKEN_AUTH_H_

#include <string>

#include "grpcpp/security/auth_metadata_processor.h"

namespace agentd {

class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  TokenAuthProcessor(std::string admin_token, std::string a2a_token = "")
      : admin_token_(std::move(admin_token)), a2a_token_(std::move(a2a_token)) {}

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  std::string admin_token_;
  std::string a2a_token_;
};

}  // namespace agentd

#endif  // AGENTD_MANAGER_API_TOKEN_AUTH_H_
