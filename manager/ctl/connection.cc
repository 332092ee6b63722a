#include "manager/ctl/connection.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/paths.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace agentd::ctl {
namespace {

std::string SocketProblem(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? "no socket there (agentd is not running, or uses another socket)"
                           : std::strerror(errno);
  }
  if (!S_ISSOCK(st.st_mode)) return "that path is not a socket";
  if (access(path.c_str(), R_OK | W_OK) != 0) {
    return absl::StrCat("permission denied (the socket is ", absl::Hex(st.st_mode & 0777),
                        " and belongs to uid ", st.st_uid, ")");
  }
  return "connection refused (a stale socket: agentd is not running)";
}

}  // namespace

absl::StatusOr<Connection> Connection::Connect(const ConnectionOptions& o) {
  Connection c;
  c.timeout_ = o.timeout;
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (o.addr.empty()) {
    std::string socket = o.socket.empty() ? DefaultSocketPath() : o.socket;
    c.target_ = absl::StrCat("unix:", socket);
  } else {
    c.target_ = o.addr;
    c.token_ = o.token;
    if (!o.tls_ca.empty()) {
      std::ifstream in(o.tls_ca);
      if (!in) {
        return absl::InvalidArgumentError(
            absl::StrCat("--tls-ca ", o.tls_ca, ": cannot read: ", std::strerror(errno)));
      }
      std::stringstream pem;
      pem << in.rdbuf();
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = pem.str();
      creds = grpc::SslCredentials(ssl);
    }
  }
  c.channel_ = grpc::CreateCustomChannel(c.target_, creds, args);
  if (!c.channel_->WaitForConnected(absl::ToChronoTime(absl::Now() + o.timeout))) {
    std::string why =
        o.addr.empty() ? SocketProblem(c.target_.substr(5)) : "no answer within the timeout";
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to agentd at ", c.target_, ": ", why,
        ".\nStart it with `agentd` (or `systemctl --user start agentd`), or point agentctl at "
        "it with --socket PATH, or --addr HOST:PORT --token TOKEN."));
  }
  return c;
}

std::unique_ptr<grpc::ClientContext> Connection::NewContext(bool deadline) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (deadline) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  if (!token_.empty()) ctx->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  return ctx;
}

}  // namespace agentd::ctl
