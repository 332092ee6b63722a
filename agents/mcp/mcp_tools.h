// McpHub: the MCP tool servers an agent's role grants, and their tools as the model sees
// them.
//
// A stdio server is a child of the agent, started in the task's workspace inside the
// tool sandbox (tools::SandboxCommand: the system read-only, the workspace writable, no
// network unless the server's config grants it) — so it lives in the agent's cgroup and
// under its limits, and goes when the agent goes. A server that dies is started again
// when a call next needs it, after a backoff that doubles from 1 s to 30 s while it keeps
// dying. Servers are kept across tasks in the same workspace and stopped when a task in
// another workspace starts (an agent works one task at a time).
//
// Each granted tool becomes a tools::Tool named "mcp:<server>/<tool>" (the model sees
// "mcp_<server>_<tool>"), with the server's description and input schema. A tool that is
// not marked readOnlyHint is a side effect: journaled, and on resume after a cut-off
// call reported as uncertain unless it is marked idempotentHint. A tool marked
// destructiveHint (the protocol's default for tools that are not read-only) asks a person
// first, unless the role's grant names the tool itself ("mcp:<server>/<tool>"). A server
// that crashes, hangs or answers nonsense gives the model an error that says so; the
// agent goes on.
//
// Thread-safety: ToolsFor and CloseAll from the task thread; the tools it returns may be
// run from any thread, and keep the servers they need alive.
#ifndef AGENTD_AGENTS_MCP_MCP_TOOLS_H_
#define AGENTD_AGENTS_MCP_MCP_TOOLS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agents/llm/http.h"
#include "agents/tools/tool.h"

namespace agentd::mcp {

// How to reach one server (the agent definition's McpServerDefinition).
struct ServerSpec {
  std::string name;
  std::string command;  // stdio
  std::vector<std::string> args;
  std::string url;                             // Streamable HTTP
  std::map<std::string, std::string> env;      // variable → key name
  std::map<std::string, std::string> headers;  // header → key name
  std::vector<std::string> read_only_paths;
  bool network = false;
  absl::Duration call_timeout = absl::Seconds(60);
};

class McpHub {
 public:
  // `keys`: secret values by key name (the agent's keys descriptor): env and headers
  // name them.
  explicit McpHub(std::map<std::string, std::string> keys);
  ~McpHub();

  // The tools `grants` ("mcp:<server>" or "mcp:<server>/<tool>", other entries ignored)
  // name, for a task in `workspace` with the sandbox of `shell`. Servers are started (or
  // listed again after notifications/tools/list_changed) as needed. What cannot be
  // offered — a server that does not start, a granted tool it does not list, a name that
  // would clash on the wire — is left out, and said in `problems`, one sentence each.
  // `existing_wire_names`: the model's names already taken by other tools. A server at a
  // URL whose config does not grant the network is reached only after a person consents
  // (through `consent`, for this task; agentd remembers the decision for the goal).
  std::vector<std::unique_ptr<tools::Tool>> ToolsFor(
      const std::vector<ServerSpec>& servers, const std::vector<std::string>& grants,
      const std::string& workspace, const tools::ShellOptions& shell,
      const std::vector<std::string>& existing_wire_names, const tools::ConsentAsker* consent,
      const llm::CancelToken* cancel, std::vector<std::string>* problems);

  // Stops every server (the agent is stopping).
  void CloseAll();

  class Server;  // one server: its connection, restarts and tools (mcp_tools.cc)

 private:
  std::map<std::string, std::string> keys_;
  std::map<std::string, std::shared_ptr<Server>> servers_;
};

}  // namespace agentd::mcp

#endif  // AGENTD_AGENTS_MCP_MCP_TOOLS_H_
