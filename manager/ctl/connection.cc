#include "manager/ctl/connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/paths.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace agentd::ctl {
namespace {

constexpr absl::string_view kHowToStart =
    ".\nStart it with `agentd` (or `systemctl --user start agentd`), or point agentctl at it "
    "with --socket PATH, or --addr HOST:PORT --token TOKEN.";

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

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// One attempt to connect, waiting at most `timeout`: 0 when something accepted, else the
// errno (ETIMEDOUT when nothing answered in time).
int TryConnect(int family, const sockaddr* addr, socklen_t len, absl::Duration timeout) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return errno;
  int err = 0;
  if (connect(fd, addr, len) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int n = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
      socklen_t l = sizeof(err);
      if (n == 0) {
        err = ETIMEDOUT;
      } else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) {
        err = errno;
      }
    }
  }
  close(fd);
  return err;
}

// "host:port" or "[v6]:port" (gRPC's other target forms, "dns:///…", "ipv4:…", are left to
// gRPC): the refusal of every address it resolves to, or "" when one accepted, did not
// answer in time, or the form is not one agentctl checks.
std::string TcpRefusal(const std::string& addr, absl::Duration timeout) {
  std::string host, port;
  if (absl::StartsWith(addr, "[")) {
    size_t close = addr.find("]:");
    if (close == std::string::npos) return "";
    host = addr.substr(1, close - 1);
    port = addr.substr(close + 2);
  } else {
    size_t colon = addr.rfind(':');
    if (colon == std::string::npos || addr.find(':') != colon) return "";
    host = addr.substr(0, colon);
    port = addr.substr(colon + 1);
  }
  int port_number = 0;
  if (host.empty() || !absl::SimpleAtoi(port, &port_number)) return "";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc));
  }
  std::string refused;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int err = TryConnect(a->ai_family, a->ai_addr, a->ai_addrlen, timeout);
    if (err == 0 || err == ETIMEDOUT) {
      refused.clear();
      break;
    }
    refused = std::strerror(err);
  }
  freeaddrinfo(found);
  return refused.empty() ? ""
                         : absl::StrCat(absl::AsciiStrToLower(refused),
                                        " (is agentd's "
                                        "TCP listener on? it is server.grpc_tcp in config)");
}

}  // namespace

absl::Status CheckSocketTrust(const std::string& socket) {
  struct stat st;
  if (lstat(socket.c_str(), &st) != 0) {
    return absl::UnavailableError(SocketProblem(socket));
  }
  if (S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(socket,
                     " is a symbolic link: agentctl connects only to the socket itself (give its "
                     "real path with --socket)"));
  }
  if (!S_ISSOCK(st.st_mode)) return absl::UnavailableError("that path is not a socket");
  std::string dir = Dirname(socket);
  struct stat d;
  if (lstat(dir.c_str(), &d) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot check the socket's directory ", dir, ": ", std::strerror(errno)));
  }
  std::string refuse = absl::StrCat("agentctl does not trust the socket's directory ", dir, ": ");
  if (S_ISLNK(d.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(refuse, "it is a symbolic link, which whoever owns it can point anywhere"));
  }
  if ((d.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%sits mode is %04o: others may write there, so anyone could have put this socket "
        "there to read your commands and answer for agentd (agentd keeps its socket in a "
        "0700 directory of its own)",
        refuse, d.st_mode & 07777));
  }
  if (d.st_uid == geteuid() || d.st_uid == 0) return absl::OkStatus();
  // A system service's directory (e.g. /run/agentd of the `agentd` user): owned by a system
  // account (Debian's SYS_UID_MAX is 999), the socket its own, in a directory only root may
  // write, so only a privileged set-up could have made it. A person's directory is not.
  std::string parent = Dirname(dir);
  struct stat p;
  if (d.st_uid < 1000 && st.st_uid == d.st_uid && stat(parent.c_str(), &p) == 0 && p.st_uid == 0 &&
      (p.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      refuse, "it belongs to uid ", d.st_uid,
      ", which is neither you, root nor a system service's account in a directory only root "
      "may write: someone else may have made it to pose as agentd"));
}

absl::StatusOr<Connection> Connection::Connect(const ConnectionOptions& o) {
  Connection c;
  c.timeout_ = o.timeout;
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!o.addr.empty() && o.token.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to agentd at ", o.addr,
        ": its TCP listener needs the admin token: --token TOKEN, --token-file FILE or "
        "$AGENTD_TOKEN"));
  }
  if (o.addr.empty()) {
    std::string socket = o.socket.empty() ? DefaultSocketPath() : o.socket;
    c.target_ = absl::StrCat("unix:", socket);
    // Checked before connecting: a socket in a directory someone else controls may be
    // theirs, and would be sent every command (and every approval) meant for agentd.
    if (absl::Status trust = CheckSocketTrust(socket); !trust.ok()) {
      return absl::UnavailableError(absl::StrCat("cannot connect to agentd at ", c.target_, ": ",
                                                 trust.message(),
                                                 absl::IsUnavailable(trust) ? kHowToStart : ""));
    }
    // A refused connection (a stale socket) answers at once rather than after the timeout.
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (socket.size() < sizeof(sun.sun_path)) {
      std::memcpy(sun.sun_path, socket.data(), socket.size());
      if (int err =
              TryConnect(AF_UNIX, reinterpret_cast<const sockaddr*>(&sun), sizeof(sun), o.timeout);
          err != 0 && err != ETIMEDOUT && err != EAGAIN) {  // EAGAIN: a full backlog
        return absl::UnavailableError(absl::StrCat("cannot connect to agentd at ", c.target_, ": ",
                                                   SocketProblem(socket), kHowToStart));
      }
    }
  } else {
    c.target_ = o.addr;
    c.token_ = o.token;
    if (std::string refused = TcpRefusal(o.addr, o.timeout); !refused.empty()) {
      return absl::UnavailableError(
          absl::StrCat("cannot connect to agentd at ", o.addr, ": ", refused, kHowToStart));
    }
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
    return absl::UnavailableError(
        absl::StrCat("cannot connect to agentd at ", c.target_, ": ", why, kHowToStart));
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
