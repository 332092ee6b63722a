#include "tests/support/http_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace agentd::testing {

HttpConn::HttpConn(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
}

HttpConn::~HttpConn() { Close(); }

void HttpConn::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool HttpConn::Send(const std::string& method, const std::string& path,
                    const std::vector<std::string>& headers, const std::string& body) {
  std::string req = absl::StrCat(method, " ", path, " HTTP/1.1\r\n");
  bool has_host = false;
  for (const std::string& h : headers) {
    has_host = has_host || absl::StartsWithIgnoreCase(h, "host:");
    absl::StrAppend(&req, h, "\r\n");
  }
  if (!has_host) absl::StrAppend(&req, "Host: 127.0.0.1\r\n");
  if (!body.empty() || method == "POST") {
    absl::StrAppend(&req, "Content-Length: ", body.size(), "\r\n");
  }
  absl::StrAppend(&req, "\r\n", body);
  return SendRaw(req);
}

bool HttpConn::SendRaw(const std::string& bytes) {
  size_t at = 0;
  while (at < bytes.size()) {
    // MSG_NOSIGNAL: a server that answers early and closes (413) is an EPIPE, not a signal.
    ssize_t n = send(fd_, bytes.data() + at, bytes.size() - at, MSG_NOSIGNAL);
    if (n <= 0) return false;
    at += static_cast<size_t>(n);
  }
  return true;
}

void HttpConn::Reset() {
  head_.clear();
  body_.clear();
  status_ = 0;
  content_length_ = -1;
  chunked_ = done_ = false;
}

bool HttpConn::ReadHead(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (raw_.find("\r\n\r\n") == std::string::npos) {
    if (!Fill(deadline)) return false;
  }
  size_t end = raw_.find("\r\n\r\n");
  head_ = raw_.substr(0, end);
  raw_.erase(0, end + 4);
  std::vector<std::string> first = absl::StrSplit(head_.substr(0, head_.find("\r\n")), ' ');
  status_ = first.size() > 1 ? std::atoi(first[1].c_str()) : 0;
  std::string lower = absl::AsciiStrToLower(head_);
  chunked_ = absl::StrContains(lower, "transfer-encoding: chunked");
  if (size_t at = lower.find("content-length: "); at != std::string::npos) {
    content_length_ = std::atol(lower.c_str() + at + 16);
  }
  return true;
}

bool HttpConn::ReadUntil(const std::function<bool(const std::string&)>& pred,
                         absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    Dechunk();
    if (pred(body_)) return true;
    if (done_ || !Fill(deadline)) return pred(body_);
  }
}

bool HttpConn::ReadAll(absl::Duration timeout) {
  return ReadUntil([this](const std::string&) { return done_; }, timeout);
}

bool HttpConn::Fill(absl::Time deadline) {
  int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
  if (ms <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return false;
  char buf[16384];
  ssize_t n = read(fd_, buf, sizeof(buf));
  if (n <= 0) {
    if (!chunked_ && content_length_ < 0) done_ = true;
    return false;
  }
  raw_.append(buf, static_cast<size_t>(n));
  return true;
}

void HttpConn::Dechunk() {
  if (!chunked_) {
    size_t want = content_length_ < 0
                      ? raw_.size()
                      : std::min(raw_.size(), static_cast<size_t>(content_length_) - body_.size());
    body_ += raw_.substr(0, want);
    raw_.erase(0, want);
    if (content_length_ >= 0 && static_cast<long>(body_.size()) >= content_length_) done_ = true;
    return;
  }
  while (!done_) {
    size_t eol = raw_.find("\r\n");
    if (eol == std::string::npos) return;
    size_t n = std::stoul(raw_.substr(0, eol), nullptr, 16);
    if (raw_.size() < eol + 2 + n + 2) return;
    body_ += raw_.substr(eol + 2, n);
    raw_.erase(0, eol + 2 + n + 2);
    if (n == 0) done_ = true;
  }
}

std::vector<Frame> Frames(std::string body, bool text) {
  if (text) {
    std::string decoded;
    size_t start = 0;
    while (start < body.size()) {
      size_t end = body.size();
      for (size_t q = start; q + 4 <= body.size(); q += 4) {
        if (body[q + 3] == '=') {
          end = q + 4;
          break;
        }
      }
      std::string part;
      if (!absl::Base64Unescape(body.substr(start, end - start), &part)) return {};
      decoded += part;
      start = end;
    }
    body = decoded;
  }
  std::vector<Frame> out;
  size_t at = 0;
  while (at + 5 <= body.size()) {
    uint32_t n = (uint32_t{static_cast<uint8_t>(body[at + 1])} << 24) |
                 (uint32_t{static_cast<uint8_t>(body[at + 2])} << 16) |
                 (uint32_t{static_cast<uint8_t>(body[at + 3])} << 8) |
                 uint32_t{static_cast<uint8_t>(body[at + 4])};
    if (at + 5 + n > body.size()) break;
    out.push_back({static_cast<uint8_t>(body[at]), body.substr(at + 5, n)});
    at += 5 + n;
  }
  return out;
}

int GrpcStatus(const std::vector<Frame>& frames, std::string* message) {
  for (const Frame& f : frames) {
    if (!(f.flags & 0x80)) continue;
    int code = -1;
    for (absl::string_view line : absl::StrSplit(f.payload, "\r\n")) {
      if (absl::ConsumePrefix(&line, "grpc-status:")) (void)absl::SimpleAtoi(line, &code);
      if (absl::ConsumePrefix(&line, "grpc-message:") && message) *message = std::string(line);
    }
    return code;
  }
  return -1;
}

std::string DataFrame(const google::protobuf::Message& m) {
  std::string payload = m.SerializeAsString();
  std::string f(5, '\0');
  f[1] = static_cast<char>(payload.size() >> 24);
  f[2] = static_cast<char>(payload.size() >> 16);
  f[3] = static_cast<char>(payload.size() >> 8);
  f[4] = static_cast<char>(payload.size());
  return f + payload;
}

}  // namespace agentd::testing
