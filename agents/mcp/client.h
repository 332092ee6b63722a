// McpClient: the MCP protocol over a Connection — which revision to speak, the tools a
// server offers, and calling them.
//
// Revisions: 2026-07-28 (stateless: `server/discover`, every request carrying the version
// and the client's capabilities in `_meta`) and 2025-11-25 (the `initialize` handshake;
// 2025-06-18 and 2025-03-26 servers are accepted too). Open() asks `server/discover`
// first, as the specification's backward-compatibility rules say: a server that answers
// it speaks the new revision; any other answer, or none within a few seconds, means an
// older server, and `initialize` follows. A server that dies on the probe is started
// again by the caller (Open reports kRetryLegacy). The client offers no capabilities
// (sampling, roots, elicitation): a server's requests for them are refused.
//
// Thread-safety: Open once, before anything else; then every method may be called from
// any thread.
#ifndef AGENTD_AGENTS_MCP_CLIENT_H_
#define AGENTD_AGENTS_MCP_CLIENT_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agents/mcp/connection.h"
#include "nlohmann/json.hpp"

namespace agentd::mcp {

inline constexpr char kModernRevision[] = "2026-07-28";
inline constexpr char kLegacyRevision[] = "2025-11-25";

// One tool a server lists, as agentd uses it.
struct ToolInfo {
  std::string name;         // the server's name for it
  std::string description;  // title and description, as the model reads them
  nlohmann::json input_schema = nlohmann::json::object();  // type object
  bool read_only = false;                                  // annotations.readOnlyHint
  bool destructive = true;  // annotations.destructiveHint (the protocol's default: true)
  bool idempotent = false;  // annotations.idempotentHint
};

// What a call returned, as text for the model.
struct CallResult {
  std::string text;
  bool is_error = false;  // the tool itself reported an error (isError)
};

class McpClient {
 public:
  // `connection` is owned. `name` is the server's name under mcp_servers.
  // `generation` tells clients of the same server apart (each start is a new one).
  McpClient(std::string name, std::unique_ptr<Connection> connection, int64_t generation = 0);
  ~McpClient();

  enum class Era { kModern, kLegacy };
  struct OpenOptions {
    absl::Duration timeout = absl::Seconds(30);       // the whole handshake
    absl::Duration probe_timeout = absl::Seconds(5);  // server/discover's answer
    bool probe = true;  // false: straight to initialize (an older server, known already)
  };
  // Agrees on a revision. Errors: UNAVAILABLE (the server is gone; when it died on the
  // server/discover probe, the message says so and `*died_on_probe` is set — start it
  // again and Open with probe = false), FAILED_PRECONDITION (no revision in common),
  // DEADLINE_EXCEEDED.
  // CANCELLED when `cancel` is (the task was canceled while the server started).
  absl::Status Open(const OpenOptions& options, bool* died_on_probe = nullptr,
                    const llm::CancelToken* cancel = nullptr);

  // Every tool it lists (tools/list, page by page; at most 1,000 tools and 100 pages).
  // Errors: as Connection::Request, and DATA_LOSS for a list that is not one.
  absl::StatusOr<std::vector<ToolInfo>> ListTools(absl::Duration timeout,
                                                  const llm::CancelToken* cancel);
  // Calls tool `tool` with `arguments` (an object). A result the tool marks as an error is
  // a CallResult with is_error; the Status is for everything else (the server is gone,
  // the call timed out or was cancelled, a malformed answer). `output_cap` bounds the
  // text kept (its start, cut on a character boundary, with a note).
  // `traceparent`, when not empty, goes in the request's `_meta` (the W3C trace context
  // of the caller's span, as MCP's tracing convention carries it).
  absl::StatusOr<CallResult> CallTool(const std::string& tool, const nlohmann::json& arguments,
                                      absl::Duration timeout, const llm::CancelToken* cancel,
                                      size_t output_cap, const std::string& traceparent = "");

  // Whether the server said its tools changed (notifications/tools/list_changed) since
  // the last ListTools.
  bool tools_changed() const { return tools_changed_->load(); }
  bool alive() const { return connection_->alive(); }
  std::string why() const { return connection_->why(); }
  Era era() const { return era_; }
  int64_t generation() const { return generation_; }
  const std::string& revision() const { return revision_; }
  const std::string& name() const { return name_; }
  void Close() { connection_->Close(); }

  // The handler a Connection is given, to be told of list changes; `flag` is the
  // client's (TakeChangeFlag hands one out before the connection exists).
  static NotificationHandler ChangeHandler(std::shared_ptr<std::atomic<bool>> flag,
                                           std::string server);
  void set_change_flag(std::shared_ptr<std::atomic<bool>> flag) {
    tools_changed_ = std::move(flag);
  }

 private:
  // `params` with the new revision's `_meta` added when the modern revision is spoken.
  nlohmann::json WithMeta(nlohmann::json params) const;

  std::string name_;
  std::unique_ptr<Connection> connection_;
  Era era_ = Era::kLegacy;
  std::string revision_;
  std::shared_ptr<std::atomic<bool>> tools_changed_;
  int64_t generation_;
};

namespace internal {
// The parts of a server's answers that the fuzz target reaches: a tools/list page into
// tools (those that cannot be used are skipped, with the reason in `skipped`), and a
// tools/call result into text.
absl::Status ParseToolsPage(const nlohmann::json& result, std::vector<ToolInfo>* tools,
                            std::vector<std::string>* skipped, std::string* next_cursor);
absl::StatusOr<CallResult> ParseCallResult(const nlohmann::json& result, size_t output_cap);
}  // namespace internal

}  // namespace agentd::mcp

#endif  // AGENTD_AGENTS_MCP_CLIENT_H_
