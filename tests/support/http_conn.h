// A hand-written HTTP/1.1 client for tests and benchmarks of agentd's HTTP listener: a
// raw TCP connection, so the caller controls every byte and when the socket closes, and
// the gRPC-web framing (so what is checked is the wire, not a library's reading of it).
// Not thread-safe: one connection per thread.
#ifndef AGENTD_TESTS_SUPPORT_HTTP_CONN_H_
#define AGENTD_TESTS_SUPPORT_HTTP_CONN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/message.h"

namespace agentd::testing {

// A connection to 127.0.0.1:port. Chunked and Content-Length bodies are read as they
// arrive; a connection serves several requests in turn (keep-alive) with Reset().
class HttpConn {
 public:
  explicit HttpConn(int port);
  ~HttpConn();
  HttpConn(const HttpConn&) = delete;
  HttpConn& operator=(const HttpConn&) = delete;

  bool connected() const { return connected_; }
  void Close();

  // Writes one request (Host: 127.0.0.1 unless `headers` has a Host, and, for POST or a
  // body, Content-Length are added).
  // Returns false when the write fails.
  bool Send(const std::string& method, const std::string& path,
            const std::vector<std::string>& headers, const std::string& body = "");
  // Writes `bytes` as they are (a partial request, say); false when the write fails.
  bool SendRaw(const std::string& bytes);
  // Reads until the response head is complete; false on EOF or timeout.
  bool ReadHead(absl::Duration timeout = absl::Seconds(10));
  // Reads body bytes until `pred(body())` holds (true) or EOF / timeout (false).
  bool ReadUntil(const std::function<bool(const std::string&)>& pred,
                 absl::Duration timeout = absl::Seconds(10));
  // The whole body: until the last chunk, Content-Length bytes, or EOF.
  bool ReadAll(absl::Duration timeout = absl::Seconds(10));
  // Forgets the last response, to read the next one on this connection.
  void Reset();

  int status() const { return status_; }
  const std::string& head() const { return head_; }
  const std::string& body() const { return body_; }
  bool done() const { return done_; }

 private:
  bool Fill(absl::Time deadline);
  void Dechunk();

  int fd_ = -1;
  bool connected_ = false;
  std::string raw_, head_, body_;
  int status_ = 0;
  long content_length_ = -1;
  bool chunked_ = false, done_ = false;
};

// gRPC-web frames.
struct Frame {
  uint8_t flags;
  std::string payload;
};
// The frames of a response body; `text`: the body is base64, a padded segment per frame.
std::vector<Frame> Frames(std::string body, bool text = false);
// grpc-status from the trailer frame (and grpc-message into `message`), or -1.
int GrpcStatus(const std::vector<Frame>& frames, std::string* message = nullptr);
// `m` as one data frame.
std::string DataFrame(const google::protobuf::Message& m);

}  // namespace agentd::testing

#endif  // AGENTD_TESTS_SUPPORT_HTTP_CONN_H_
