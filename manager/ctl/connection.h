// Connection: how agentctl reaches agentd — the unix socket (default), or TCP with the
// admin token (and TLS when a CA file is given).
//
// Connect() waits (up to the timeout) for the channel to be ready, so "cannot connect"
// is told apart from an RPC's own failure: that is exit code 3, with a message that says
// where agentctl tried and how to start agentd. A missing socket or a refused connection
// answers at once, not after the timeout.
//
// The unix socket is the admin's credential, so agentctl checks it as OpenSSH checks its
// files before trusting them (CheckSocketTrust): a socket in a directory that another
// user controls could be theirs, posing as agentd to collect commands and approvals.
#ifndef AGENTD_MANAGER_CTL_CONNECTION_H_
#define AGENTD_MANAGER_CTL_CONNECTION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace agentd::ctl {

struct ConnectionOptions {
  std::string socket;  // used when addr is empty; empty: the default socket path
  std::string addr;    // host:port of agentd's TCP listener
  std::string token;   // admin token for TCP
  std::string tls_ca;  // PEM file: use TLS and trust this CA
  absl::Duration timeout = absl::Seconds(10);
};

// OK when `socket` is a socket (not a symlink) in a directory (not a symlink) that no one
// but its owner may write, owned by the caller or root, or by a system account (uid <
// 1000) that owns the socket too, inside a directory only root may write (a system
// service's /run/agentd). Otherwise
// FAILED_PRECONDITION saying what is wrong and why it matters; UNAVAILABLE when there is
// no socket at all. Reads the filesystem only; thread-safe.
absl::Status CheckSocketTrust(const std::string& socket);

class Connection {
 public:
  // Unavailable (exit 3) when agentd cannot be reached; the message is for a person.
  static absl::StatusOr<Connection> Connect(const ConnectionOptions& options);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // A context with the deadline (unless `deadline` is false: a stream that lasts as long
  // as the user wants) and, over TCP, the token.
  std::unique_ptr<grpc::ClientContext> NewContext(bool deadline = true) const;
  // Where it connected, e.g. "unix:/run/user/1000/agentd/agentd.sock".
  const std::string& target() const { return target_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string target_;
  std::string token_;
  absl::Duration timeout_;
};

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_CONNECTION_H_
