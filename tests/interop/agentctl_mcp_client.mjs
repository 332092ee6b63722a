// Drives agentd through `agentctl mcp` with the official MCP TypeScript SDK's clients, as an
// editor or an assistant would. The 2.x client, pinned to revision 2026-07-28, lists the
// tools and calls one statelessly. The 1.x client (revision 2025-11-25) lists the tools,
// submits a goal with manual plan approval,
// approves the plan, approves the consent request its Coder raises, and waits for the
// goal with progress notifications. Prints one JSON object with what it saw; exits
// non-zero, saying why on stderr, when a step fails.
//   node agentctl_mcp_client.mjs AGENTCTL SOCKET
import { Client as ModernClient } from '@modelcontextprotocol/client';
import { StdioClientTransport as ModernStdio } from '@modelcontextprotocol/client/stdio';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [agentctl, socket] = process.argv.slice(2);
const fail = (msg) => { process.stderr.write(`agentctl_mcp_client: ${msg}\n`); process.exit(1); };
const seen = {};

{
  const modern = new ModernClient({ name: 'agentd-interop-test', version: '2.0.0' },
                                  { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await modern.connect(new ModernStdio({ command: agentctl, args: ['--socket', socket, 'mcp'],
                                         stderr: 'inherit' }));
  const { tools } = await modern.listTools();
  const r = await modern.callTool({ name: 'list_plans', arguments: { all: true } });
  seen.modern = { protocol: modern.getNegotiatedProtocolVersion(), tools: tools.length,
                  plans: r.structuredContent?.plans?.length, isError: r.isError ?? false };
  await modern.close();
}

const transport = new StdioClientTransport({ command: agentctl, args: ['--socket', socket, 'mcp'],
                                             stderr: 'inherit' });
const client = new Client({ name: 'agentd-interop-test', version: '1.0.0' });
await client.connect(transport);

const call = async (name, args, extra = {}) => {
  const r = await client.callTool({ name, arguments: args }, undefined, extra);
  if (r.isError) fail(`${name}: ${r.content?.[0]?.text}`);
  if (!r.structuredContent) fail(`${name}: no structured content`);
  const text = JSON.parse(r.content[0].text);
  if (JSON.stringify(text) !== JSON.stringify(r.structuredContent)) fail(`${name}: text and structure differ`);
  return r.structuredContent;
};
// Polls `get` until `done` holds, for up to 60 s.
const until = async (what, get, done) => {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await get();
    if (done(v)) return v;
    if (Date.now() > deadline) fail(`${what}: not within 60 s; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
};

seen.server = client.getServerVersion();
const { tools } = await client.listTools();
seen.tools = tools.map((t) => t.name).sort();

// A wrong call is the tool's error for the model, not a protocol failure.
const bad = await client.callTool({ name: 'get_goal', arguments: { goal_id: 'g-404' } });
seen.missingGoal = { isError: bad.isError, text: bad.content?.[0]?.text };

const goal = await call('submit_goal', { text: 'Print the year', approval: 'manual' });
seen.goal = goal.id;
const plans = await until('a plan to approve', () => call('list_plans', {}), (p) => p.plans.length > 0);
seen.plan = plans.plans[0].id;
seen.planStatus = plans.plans[0].status;
await call('approve_plan', { plan_id: seen.plan, comment: 'fine' });
const consents = await until('a consent request', () => call('list_consent_requests', {}),
                             (c) => c.consentRequests.length > 0);
seen.consent = { kind: consents.consentRequests[0].kind, summary: consents.consentRequests[0].summary };
await call('decide_consent', { consent_request_id: consents.consentRequests[0].id, approve: true });
let progress = 0;
const done = await call('wait_goal', { goal_id: goal.id, timeout_seconds: 120 },
                        { onprogress: () => { progress += 1; }, timeout: 150_000 });
seen.status = done.goal.status;
seen.summary = done.goal.result?.summary;
seen.tasks = done.tasks.length;
seen.progress = progress;
await client.close();
process.stdout.write(JSON.stringify(seen) + '\n');
