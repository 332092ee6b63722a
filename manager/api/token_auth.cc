#include "manager/api/token_auth.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/token.h"

namespace agentd {

grpc::Status TokenAuthProcessor::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* consumed_auth_metadata, OutputMetadata*) {
  auto it = auth_metadata.find("authorization");
  if (it == auth_metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this listener needs the admin token: send `authorization: Bearer "
                        "<admin token>` (`agentctl status` on the daemon's host shows where it "
                        "is kept; agentctl takes it with --token-file)");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kBearer = "Bearer ";
  if (absl::StartsWithIgnoreCase(value, kBearer) && !a2a_token_.empty() &&
      TokenEquals(value.substr(kBearer.size()), a2a_token_)) {
    // Not consumed: the services see it, and all but A2A's refuse it.
    context->AddProperty("agentd_principal", "a2a");
    return grpc::Status::OK;
  }
  if (!absl::StartsWithIgnoreCase(value, kBearer) ||
      !TokenEquals(value.substr(kBearer.size()), admin_token_)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        a2a_token_.empty()
                            ? "the bearer token is not this daemon's admin token"
                            : "the bearer token is neither this daemon's admin token nor, for "
                              "A2A, its A2A token");
  }
  consumed_auth_metadata->insert({std::string(it->first.data(), it->first.size()),
                                  std::string(it->second.data(), it->second.size())});
  context->AddProperty("agentd_principal", "admin");
  return grpc::Status::OK;
}

}  // namespace agentd
