// An MCP server over stdio that misbehaves on request, for agentd's MCP client tests.
// It speaks revision 2025-11-25 (initialize) and lists its tools over two pages; each
// tool's name says what it does to the call:
//   echo     answers {text} with "echo: <text>"
//   crash    exits (status 3) mid-call, without answering
//   hang     never answers
//   garbage  answers with a line that is not JSON
//   stray    writes a plain log line to stdout, then answers "after stray"
//   destroy  (destructiveHint) answers "destroyed <target>"
//   grow     adds tool "extra", says so (notifications/tools/list_changed), answers "grown"
//   env      answers the value of $MCP_TEST_SECRET
//   meta     answers "traceparent=<the request's _meta.traceparent>"
//   pwd      answers its working directory and whether /etc/hostname can be written
//   slow-write  (changes things, not idempotent) writes slow-write-started in its working
//               directory, then never answers
// With --die-on-discover it exits when asked server/discover (an older server that
// cannot bear unknown methods before initialize). Each start is appended to
// $MCP_TEST_STARTS (one line each), so a test can count restarts.
import { appendFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const dieOnDiscover = process.argv.includes('--die-on-discover');
if (process.env.MCP_TEST_STARTS) appendFileSync(process.env.MCP_TEST_STARTS, 'start\n');
process.stderr.write('misbehaving server up\n');

const send = (m) => process.stdout.write(JSON.stringify(m) + '\n');
const schema = (props = {}, required = []) => ({ type: 'object', properties: props, required });
const tools = [
  { name: 'echo', description: 'Echoes text', inputSchema: schema({ text: { type: 'string' } }, ['text']),
    annotations: { readOnlyHint: true } },
  { name: 'crash', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'hang', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'garbage', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'stray', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'destroy', title: 'Destroy', description: 'Destroys a target',
    inputSchema: schema({ target: { type: 'string' } }, ['target']),
    annotations: { readOnlyHint: false, destructiveHint: true } },
  { name: 'grow', inputSchema: schema(), annotations: { readOnlyHint: false, destructiveHint: false } },
  { name: 'env', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'meta', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'pwd', inputSchema: schema(), annotations: { readOnlyHint: true } },
  { name: 'slow-write', inputSchema: schema(),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false } },
  // Not usable: a name agentd refuses, and a schema that is not an object's.
  { name: 'bad name!', inputSchema: schema() },
  { name: 'not-an-object', inputSchema: { type: 'string' } },
];
const text = (t) => ({ content: [{ type: 'text', text: t }] });

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.method === 'server/discover') {
    if (dieOnDiscover) process.exit(4);
    return send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
  }
  if (m.method === 'initialize') {
    return send({ jsonrpc: '2.0', id: m.id, result: {
      protocolVersion: '2025-11-25', capabilities: { tools: { listChanged: true } },
      serverInfo: { name: 'misbehaving', version: '1.0.0' } } });
  }
  if (m.id === undefined) return;  // notifications
  if (m.method === 'tools/list') {
    const half = Math.ceil(tools.length / 2);
    const page = m.params?.cursor === 'page-2' ? tools.slice(half) : tools.slice(0, half);
    const result = { tools: page };
    if (m.params?.cursor !== 'page-2') result.nextCursor = 'page-2';
    return send({ jsonrpc: '2.0', id: m.id, result });
  }
  if (m.method !== 'tools/call') {
    return send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
  }
  const args = m.params?.arguments ?? {};
  switch (m.params?.name) {
    case 'echo': return send({ jsonrpc: '2.0', id: m.id, result: text(`echo: ${args.text}`) });
    case 'crash': process.exit(3);
    case 'hang': return;
    case 'garbage': return process.stdout.write('{"jsonrpc": "2.0", "id": ' + m.id + ', "result": {\n');
    case 'stray':
      process.stdout.write('a log line where it does not belong\n');
      return send({ jsonrpc: '2.0', id: m.id, result: text('after stray') });
    case 'destroy': return send({ jsonrpc: '2.0', id: m.id, result: text(`destroyed ${args.target}`) });
    case 'grow':
      tools.push({ name: 'extra', inputSchema: schema(), annotations: { readOnlyHint: true } });
      send({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
      return send({ jsonrpc: '2.0', id: m.id, result: text('grown') });
    case 'extra': return send({ jsonrpc: '2.0', id: m.id, result: text('extra ran') });
    case 'slow-write': return writeFileSync('slow-write-started', 'started\n');
    case 'meta': return send({ jsonrpc: '2.0', id: m.id, result: text(`traceparent=${m.params?._meta?.traceparent ?? ''}`) });
    case 'env': return send({ jsonrpc: '2.0', id: m.id, result: text(`secret=${process.env.MCP_TEST_SECRET ?? ''}`) });
    case 'pwd': {
      let writable = 'no';
      try { writeFileSync('/etc/hostname', 'x', { flag: 'a' }); writable = 'yes'; } catch {}
      return send({ jsonrpc: '2.0', id: m.id, result: text(`cwd=${process.cwd()} etc-writable=${writable}`) });
    }
    default:
      return send({ jsonrpc: '2.0', id: m.id, result: { ...text(`unknown tool ${m.params?.name}`), isError: true } });
  }
});
