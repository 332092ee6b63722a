// agentctl mcp: agentd as an MCP server over stdio, so that any MCP client (an editor, an
// assistant, another agent) can hand agentd goals, follow them, approve plans and answer
// consent requests — each tool one or two calls of agentd's API, over agentctl's usual
// connection (the admin socket, or TCP with the token).
//
// Revisions: 2026-07-28 (server/discover; every request carrying its revision in
// `_meta`) and 2025-11-25 (initialize; 2025-06-18 and 2025-03-26 are accepted). Messages
// are newline-delimited JSON-RPC on stdin and stdout; nothing else is written to stdout,
// and diagnostics go to stderr. Tool calls run on threads of their own, so that a long
// wait_goal does not hold up the others and notifications/cancelled stops it.
#ifndef AGENTD_MANAGER_CTL_MCP_CMD_H_
#define AGENTD_MANAGER_CTL_MCP_CMD_H_

#include "manager/ctl/cli.h"

namespace agentd::ctl {

// Adds `mcp` to the tree.
void AddMcpCommands(const CommandTree& tree);

}  // namespace agentd::ctl

#endif  // AGENTD_MANAGER_CTL_MCP_CMD_H_
