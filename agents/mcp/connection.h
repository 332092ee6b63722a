// The JSON-RPC 2.0 side of an MCP connection, as the client sees it: requests that get
// answers, notifications both ways, and the server's own requests answered for it.
//
// A Connection is one transport to one server: StdioConnection (a child process speaking
// newline-delimited JSON on its stdin and stdout) or HttpConnection (Streamable HTTP).
// Nothing the server sends is trusted: a message that is not JSON-RPC, an answer to no
// request, an oversized line, a server that stops reading or dies mid-call, each ends as
// a Status for the caller — never a crash, never a wait past the deadline.
//
// Thread-safety: every method may be called from any thread; Request blocks its caller
// until the answer, the deadline or the cancel token, whichever comes first.
#ifndef AGENTD_AGENTS_MCP_CONNECTION_H_
#define AGENTD_AGENTS_MCP_CONNECTION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agents/llm/http.h"
#include "nlohmann/json.hpp"

namespace agentd::mcp {

// The JSON-RPC error code a Status from Request carries when the server answered with
// an error (-32601: method not found, …); nullopt for every other failure.
std::optional<int64_t> RpcErrorCode(const absl::Status& s);

// A notification the server sent: its method and params (an object, possibly empty).
using NotificationHandler =
    std::function<void(const std::string& method, const nlohmann::json& params)>;

class Connection {
 public:
  virtual ~Connection() = default;

  // Sends request `method` with `params` (an object) and waits for its answer's result.
  // `meta`, when not null, is merged into params' "_meta". On timeout or cancel the
  // server is told (notifications/cancelled) and the request forgotten.
  // Errors: DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE (the server is gone or cannot be
  // reached, saying why), UNKNOWN (the server answered with an error: RpcErrorCode),
  // DATA_LOSS (the answer is not JSON-RPC).
  virtual absl::StatusOr<nlohmann::json> Request(const std::string& method, nlohmann::json params,
                                                 absl::Duration timeout,
                                                 const llm::CancelToken* cancel) = 0;
  // Sends notification `method`. Errors: UNAVAILABLE.
  virtual absl::Status Notify(const std::string& method, nlohmann::json params) = 0;
  // False once the server is gone (exited, hung up, broke the protocol); why() says how.
  virtual bool alive() const = 0;
  virtual std::string why() const = 0;
  // Ends the connection: a stdio server gets its stdin closed, then SIGTERM, then SIGKILL
  // (two seconds each); an HTTP session is ended with DELETE. Idempotent.
  virtual void Close() = 0;
  // The protocol revision agreed on, sent with every later request where the transport
  // carries it (the MCP-Protocol-Version header).
  virtual void set_protocol_version(const std::string& version) = 0;
};

// How a stdio server is started: argv and environment as tools::SandboxCommand makes
// them, in `cwd`.
struct StdioOptions {
  std::string name;  // the server's name under mcp_servers, for logs and errors
  std::vector<std::string> argv;
  std::vector<std::string> env;  // NAME=value
  std::string cwd;
  NotificationHandler on_notification;
  // Bytes of one message from the server at most; a longer one ends the connection.
  size_t max_message_bytes = 16u << 20;
};

// Starts the server. Its stderr goes to this process's log, line by line, marked with the
// server's name. Errors: UNAVAILABLE (it could not be started, saying why).
absl::StatusOr<std::unique_ptr<Connection>> StartStdio(StdioOptions options);

struct HttpOptions {
  std::string name;
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  NotificationHandler on_notification;
  size_t max_message_bytes = 16u << 20;
  absl::Duration connect_timeout = absl::Seconds(10);
};

// A Streamable HTTP connection to `options.url` (nothing is sent until the first request).
std::unique_ptr<Connection> NewHttpConnection(HttpOptions options);

namespace internal {
// Splits a JSON-RPC message a server sent into what the connection does with it; exposed
// for the fuzz target. `message` is one line of stdio or one SSE event's data.
struct Incoming {
  enum class Kind { kResponse, kNotification, kRequest, kInvalid } kind = Kind::kInvalid;
  int64_t id = 0;          // kResponse: the request it answers (agentd's ids are integers)
  nlohmann::json id_json;  // kRequest: the server's id, echoed back
  std::string method;      // kNotification, kRequest
  nlohmann::json params;   // kNotification, kRequest: an object
  absl::Status error;      // kResponse: the server's error, or DATA_LOSS
  nlohmann::json result;   // kResponse, when ok
  std::string why;         // kInvalid: what is wrong with it
};
Incoming Classify(const nlohmann::json& message);
}  // namespace internal

}  // namespace agentd::mcp

#endif  // AGENTD_AGENTS_MCP_CONNECTION_H_
