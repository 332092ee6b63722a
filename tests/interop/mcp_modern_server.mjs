// An MCP server on the official 2.x TypeScript SDK (@modelcontextprotocol/server) that
// speaks revision 2026-07-28 (stateless: server/discover, no initialize) alongside the
// older revisions, over stdio: agentd's tests check that its client picks the new one.
// Its one tool, `add`, answers the sum of a and b, and says which revision it was called in.
import { McpServer } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod';

serveStdio(() => {
  const server = new McpServer({ name: 'modern-test-server', version: '1.0.0' },
                               { capabilities: { tools: {} } });
  server.registerTool('add', {
    description: 'Adds two numbers',
    inputSchema: z.object({ a: z.number(), b: z.number() }),
    annotations: { readOnlyHint: true },
  }, async ({ a, b }, ctx) => ({
    content: [{ type: 'text', text: `sum=${a + b}` }],
  }));
  return server;
});
