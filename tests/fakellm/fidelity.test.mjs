// Fidelity tests for dev/fakellm: the fake provider must look real to the
// OFFICIAL clients (`openai`, `@anthropic-ai/sdk`, from dev/tools/node_modules)
// and to a plain NDJSON reader for Ollama.
//
//   cd /work/main && node --test tests/fakellm/
//
// One fakellm child process serves the whole file (started on port 0; the URL
// is read from its first stdout line). Every test resets its request log and
// rule counters first, so tests are independent of each other's order.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, test } from 'node:test';

// The clients live in dev/tools/node_modules (pinned in dev/tools/package.json).
const requireFromTools = createRequire(new URL('../../dev/tools/package.json', import.meta.url));
const { OpenAI } = requireFromTools('openai');
const { Anthropic } = requireFromTools('@anthropic-ai/sdk');

const FAKELLM = fileURLToPath(new URL('../../dev/fakellm/fakellm.mjs', import.meta.url));
const API_KEY = 'sk-fakellm-secret-test-key';

const HELLO_TEXT = 'Hello from the fake model, streaming in several pieces.';
const TOOL_TEXT = 'Reading two things.';
const TOOL_CALLS = [
  { name: 'fs_read', arguments: { path: 'README.md', limit: 40 } },
  { name: 'shell_exec', arguments: { argv: ['ls', '-l'], env: { LANG: 'C' }, dry_run: false } },
];

const SCENARIO = `
rules:
  - name: after-tool
    match: {last_role: tool}
    reply: {text: "Tool result received."}
  - name: hello
    match: {contains: "say-hello"}
    reply:
      text: "${HELLO_TEXT}"
      usage: {prompt_tokens: 12, completion_tokens: 7}
  - name: tools
    match: {contains: "use-tools"}
    reply:
      text: "${TOOL_TEXT}"
      tool_calls:
        - {name: fs_read, arguments: {path: "README.md", limit: 40}}
        - name: shell_exec
          arguments:
            argv: [ls, -l]
            env: {LANG: C}
            dry_run: false
      usage: {prompt_tokens: 30, completion_tokens: 11}
  - name: rate-limited
    match: {contains: "flaky"}
    times: 1
    fault: {kind: status, status: 429, retry_after: 1}
  - name: flaky-ok
    match: {contains: "flaky"}
    reply: {text: "Recovered."}
  - name: boom
    match: {contains: "boom"}
    fault: {kind: status, status: 500}
  - name: truncate
    match: {contains: "truncate-me"}
    reply: {text: "one two three four five"}
    fault: {kind: truncate}
  - name: drop
    match: {contains: "drop-me"}
    reply: {text: "one two three four five"}
    fault: {kind: drop, after_chunks: 2}
  - name: garble
    match: {contains: "garble"}
    reply: {text: "never seen"}
    fault: {kind: malformed}
  - name: stall
    match: {contains: "stall-me"}
    reply: {text: "one two three four"}
    fault: {kind: stall, after_chunks: 2}
  - name: ollama-only
    match: {provider: ollama, contains: "which-provider"}
    reply: {text: "ollama rule"}
  - name: special-model
    match: {model: special-model, contains: "which-provider"}
    reply: {text: "model rule"}
  - name: any-provider
    match: {contains: "which-provider"}
    reply: {text: "generic rule"}
`;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

// Starts fakellm on port 0 with `scenarioText`; resolves once it printed its URL.
async function startFakellm(scenarioText) {
  const dir = await mkdtemp(join(tmpdir(), 'fakellm-test-'));
  const file = join(dir, 'scenario.yaml');
  await writeFile(file, scenarioText);
  // stdin is a pipe and --exit-on-stdin-close is set: should this process die
  // without running after() (e.g. killed by the test runner), the pipe closes
  // and the server exits too.
  const child = spawn(process.execPath, [FAKELLM, '--scenario', file, '--port', '0', '--exit-on-stdin-close'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout });
  const first = once(lines, 'line').then(([line]) => line);
  const line = await Promise.race([
    first,
    exited.then(([code, signal]) => {
      throw new Error(`fakellm exited early (code ${code}, signal ${signal}): ${stderr}`);
    }),
  ]);
  const m = /^fakellm listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
  assert.ok(m, `unexpected first stdout line: ${JSON.stringify(line)}`);
  return {
    url: m[1],
    child,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      await rm(dir, { recursive: true, force: true });
      return { code, signal };
    },
  };
}

// Runs fakellm to completion (for scenarios that must be rejected).
async function runFakellm(args) {
  const child = spawn(process.execPath, [FAKELLM, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const [code] = await once(child, 'exit');
  return { code, stdout, stderr };
}

let fake;
const openai = (opts = {}) => new OpenAI({ apiKey: API_KEY, baseURL: `${fake.url}/v1`, maxRetries: 0, timeout: 5000, ...opts });
const anthropic = (opts = {}) => new Anthropic({ apiKey: API_KEY, baseURL: fake.url, maxRetries: 0, timeout: 5000, ...opts });
const requests = async () => (await fetch(`${fake.url}/_fakellm/requests`)).json();
const post = (path, body, init = {}) =>
  fetch(`${fake.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...init });
const user = (text) => [{ role: 'user', content: text }];

// Whether `err` is what a client sees when the server cuts the connection: fetch's
// TypeError ("terminated", from undici) or the SDKs' APIConnectionError wrapping it; not
// a parse error (SyntaxError), an HTTP status error, or a failed assertion.
function isConnectionCut(err) {
  if (err instanceof OpenAI.APIConnectionError || err instanceof Anthropic.APIConnectionError) return true;
  return err instanceof TypeError && (err.message === 'terminated' || /^UND_ERR_/.test(err.cause?.code ?? ''));
}

// Parses an SSE body into [{event, data}] (data left as a string).
function parseSSE(text) {
  const events = [];
  for (const block of text.split('\n\n')) {
    if (block.trim() === '') continue;
    const ev = { event: null, data: '' };
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) ev.event = line.slice(7);
      else if (line.startsWith('data: ')) ev.data += line.slice(6);
    }
    events.push(ev);
  }
  return events;
}

before(async () => {
  fake = await startFakellm(SCENARIO);
});

after(async () => {
  const { code, signal } = await fake.stop();
  assert.equal(signal, null, 'fakellm should exit by itself on SIGTERM');
  assert.equal(code, 0, `fakellm exit code after SIGTERM; stderr:\n${fake.stderr()}`);
});

beforeEach(async () => {
  const res = await fetch(`${fake.url}/_fakellm/reset`, { method: 'POST' });
  assert.equal(res.status, 200);
});

// ---------------------------------------------------------------------------
// OpenAI Chat Completions, with the official `openai` client
// ---------------------------------------------------------------------------

describe('openai', () => {
  test('non-streaming text and scripted usage', async () => {
    const r = await openai().chat.completions.create({ model: 'test-model', messages: user('please say-hello') });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'test-model');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, HELLO_TEXT);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 });
  });

  test('streaming text in several chunks, usage with include_usage', async () => {
    const stream = await openai().chat.completions.create({
      model: 'test-model',
      messages: user('say-hello please'),
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces = [];
    let role;
    let finish;
    let usage;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.role) role = choice.delta.role;
      if (choice.delta.content) pieces.push(choice.delta.content);
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(role, 'assistant');
    assert.ok(pieces.length >= 3, `expected several content chunks, got ${pieces.length}`);
    assert.equal(pieces.join(''), HELLO_TEXT);
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 });
  });

  test('streaming without include_usage sends no usage chunk', async () => {
    const res = await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('say-hello') });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const events = parseSSE(await res.text());
    assert.equal(events.at(-1).data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    // The role chunk, several content chunks and the finish chunk, so the per-chunk
    // checks below cannot pass on an empty list.
    assert.ok(chunks.length >= 5, `expected role, >= 3 content and finish chunks, got ${chunks.length}`);
    assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), HELLO_TEXT);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
    for (const [i, c] of chunks.entries()) {
      assert.equal(c.choices.length, 1, `chunk ${i} has one choice`);
      assert.ok(!('usage' in c), `chunk ${i} carries no usage field: ${JSON.stringify(c)}`);
    }
  });

  test('non-streaming tool calls: names and JSON-string arguments', async () => {
    const r = await openai().chat.completions.create({ model: 'test-model', messages: user('use-tools now') });
    const msg = r.choices[0].message;
    assert.equal(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(msg.content, TOOL_TEXT);
    assert.equal(msg.tool_calls.length, 2);
    msg.tool_calls.forEach((tc, i) => {
      assert.equal(tc.type, 'function');
      assert.match(tc.id, /^call_/);
      assert.equal(tc.function.name, TOOL_CALLS[i].name);
      assert.equal(typeof tc.function.arguments, 'string');
      assert.deepEqual(JSON.parse(tc.function.arguments), TOOL_CALLS[i].arguments);
    });
    assert.notEqual(msg.tool_calls[0].id, msg.tool_calls[1].id);
    assert.deepEqual(r.usage, { prompt_tokens: 30, completion_tokens: 11, total_tokens: 41 });
  });

  test('streaming tool calls: arguments arrive in pieces and reassemble', async () => {
    const stream = await openai().chat.completions.create({ model: 'test-model', messages: user('use-tools'), stream: true });
    const calls = [];
    const argDeltas = [0, 0];
    let text = '';
    let finish;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.content) text += choice.delta.content;
      for (const d of choice.delta.tool_calls ?? []) {
        calls[d.index] ??= { id: undefined, name: undefined, args: '' };
        if (d.id) calls[d.index].id = d.id;
        if (d.function?.name) calls[d.index].name = d.function.name;
        if (d.function?.arguments) {
          calls[d.index].args += d.function.arguments;
          argDeltas[d.index]++;
        }
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(text, TOOL_TEXT);
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.length, 2);
    calls.forEach((c, i) => {
      assert.match(c.id, /^call_/);
      assert.equal(c.name, TOOL_CALLS[i].name);
      assert.ok(argDeltas[i] >= 2, `arguments of call ${i} should be split, got ${argDeltas[i]} deltas`);
      assert.deepEqual(JSON.parse(c.args), TOOL_CALLS[i].arguments);
    });
  });

  test('a conversation ending with a tool message matches last_role: tool', async () => {
    const r = await openai().chat.completions.create({
      model: 'test-model',
      messages: [
        { role: 'user', content: 'use-tools' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'fs_read', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'file contents' },
      ],
    });
    assert.equal(r.choices[0].message.content, 'Tool result received.');
    assert.deepEqual((await requests()).map((q) => q.rule), ['after-tool']);
  });

  test('429 with Retry-After is retried by the client, then succeeds', async () => {
    const t0 = Date.now();
    const r = await openai({ maxRetries: 2 }).chat.completions.create({ model: 'test-model', messages: user('flaky') });
    const elapsed = Date.now() - t0;
    assert.equal(r.choices[0].message.content, 'Recovered.');
    assert.deepEqual((await requests()).map((q) => q.rule), ['rate-limited', 'flaky-ok']);
    // The client waited for Retry-After: 1 (its own default backoff is ~0.5 s).
    assert.ok(elapsed >= 900, `client should honour Retry-After: 1, retried after ${elapsed} ms`);
  });

  test('a 500 fault raises an APIError with status 500 when maxRetries is 0', async () => {
    await assert.rejects(
      openai({ maxRetries: 0 }).chat.completions.create({ model: 'test-model', messages: user('boom') }),
      (err) => {
        assert.ok(err instanceof OpenAI.APIError, `expected APIError, got ${err?.constructor?.name}`);
        assert.equal(err.status, 500);
        assert.equal(err.error?.type, 'server_error');
        assert.match(err.message, /injected HTTP 500/);
        return true;
      },
    );
    assert.equal((await requests()).length, 1, 'no retry with maxRetries 0');
  });

  test('missing model is a 400 BadRequestError in OpenAI shape', async () => {
    const res = await post('/v1/chat/completions', { messages: user('say-hello') });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.error.type, 'invalid_request_error');
    assert.equal(typeof body.error.message, 'string');
    assert.ok('code' in body.error);
    await assert.rejects(openai().chat.completions.create({ model: 'm', messages: [] }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      assert.equal(err.status, 400);
      return true;
    });
  });

  test('no matching rule is a 400 naming the last message', async () => {
    await assert.rejects(openai().chat.completions.create({ model: 'm', messages: user('nothing matches this') }), (err) => {
      assert.equal(err.status, 400);
      assert.match(err.message, /fakellm: no rule matched \(last message: "nothing matches this"\)/);
      return true;
    });
  });

  test('a malformed stream makes the client raise', async () => {
    // logLevel 'off': the client would log the unparseable line to stderr.
    const stream = await openai({ logLevel: 'off' }).chat.completions.create({ model: 'm', messages: user('garble'), stream: true });
    await assert.rejects(
      async () => {
        for await (const chunk of stream) void chunk;
      },
      (err) => err instanceof SyntaxError,
    );
  });

  test('a dropped stream makes the client raise after the first chunks', async () => {
    const stream = await openai().chat.completions.create({ model: 'm', messages: user('drop-me'), stream: true });
    let seen = 0;
    await assert.rejects(
      async () => {
        for await (const chunk of stream) {
          void chunk;
          seen++;
        }
      },
      (err) => {
        assert.ok(isConnectionCut(err), `expected a connection error, got ${err?.constructor?.name}: ${err?.message}`);
        return true;
      },
    );
    assert.equal(seen, 2, 'after_chunks: 2 chunks should arrive before the drop');
  });
});

// ---------------------------------------------------------------------------
// Anthropic Messages, with the official `@anthropic-ai/sdk` client
// ---------------------------------------------------------------------------

describe('anthropic', () => {
  test('non-streaming text and scripted usage', async () => {
    const m = await anthropic().messages.create({ model: 'claude-test', max_tokens: 100, messages: user('say-hello') });
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'claude-test');
    assert.deepEqual(m.content, [{ type: 'text', text: HELLO_TEXT }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.input_tokens, 12);
    assert.equal(m.usage.output_tokens, 7);
  });

  test('streaming text via messages.stream()', async () => {
    const stream = anthropic().messages.stream({ model: 'claude-test', max_tokens: 100, messages: user('say-hello') });
    const deltas = [];
    stream.on('text', (t) => deltas.push(t));
    const m = await stream.finalMessage();
    assert.ok(deltas.length >= 3, `expected several text deltas, got ${deltas.length}`);
    assert.equal(deltas.join(''), HELLO_TEXT);
    assert.equal(m.content[0].text, HELLO_TEXT);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.usage.input_tokens, 12);
    assert.equal(m.usage.output_tokens, 7);
  });

  test('non-streaming tool_use blocks carry the scripted input', async () => {
    const m = await anthropic().messages.create({ model: 'claude-test', max_tokens: 100, messages: user('use-tools') });
    assert.equal(m.stop_reason, 'tool_use');
    assert.deepEqual(m.content[0], { type: 'text', text: TOOL_TEXT });
    const uses = m.content.filter((b) => b.type === 'tool_use');
    assert.equal(uses.length, 2);
    uses.forEach((b, i) => {
      assert.match(b.id, /^toolu_/);
      assert.equal(b.name, TOOL_CALLS[i].name);
      assert.deepEqual(b.input, TOOL_CALLS[i].arguments);
    });
    assert.deepEqual([m.usage.input_tokens, m.usage.output_tokens], [30, 11]);
  });

  test('streaming tool_use: input_json_delta pieces reassemble into the input', async () => {
    const stream = anthropic().messages.stream({ model: 'claude-test', max_tokens: 100, messages: user('use-tools') });
    let jsonDeltas = 0;
    stream.on('streamEvent', (ev) => {
      if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') jsonDeltas++;
    });
    const m = await stream.finalMessage();
    assert.equal(m.stop_reason, 'tool_use');
    const uses = m.content.filter((b) => b.type === 'tool_use');
    assert.deepEqual(uses.map((b) => b.name), TOOL_CALLS.map((t) => t.name));
    assert.deepEqual(uses.map((b) => b.input), TOOL_CALLS.map((t) => t.arguments));
    assert.ok(jsonDeltas >= 4, `expected the inputs split over several deltas, got ${jsonDeltas}`);
    assert.equal(m.usage.output_tokens, 11);
  });

  test('raw SSE has event: lines, pings and the documented order', async () => {
    const res = await post('/v1/messages', { model: 'c', max_tokens: 10, stream: true, messages: user('use-tools') });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const events = parseSSE(await res.text());
    for (const e of events) assert.equal(JSON.parse(e.data).type, e.event, 'event: name equals data.type');
    const names = events.map((e) => e.event);
    assert.equal(names[0], 'message_start');
    assert.ok(names.includes('ping'));
    assert.equal(names.at(-2), 'message_delta');
    assert.equal(names.at(-1), 'message_stop');
    const starts = names.filter((n) => n === 'content_block_start').length;
    const stops = names.filter((n) => n === 'content_block_stop').length;
    assert.equal(starts, 3);
    assert.equal(stops, 3);
  });

  test('a user message of tool_result blocks matches last_role: tool', async () => {
    const m = await anthropic().messages.create({
      model: 'claude-test',
      max_tokens: 100,
      messages: [
        { role: 'user', content: 'use-tools' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'fs_read', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'file contents' }] },
      ],
    });
    assert.deepEqual(m.content, [{ type: 'text', text: 'Tool result received.' }]);
    assert.deepEqual((await requests()).map((q) => q.rule), ['after-tool']);
  });

  test('429 with Retry-After is retried by the client, then succeeds', async () => {
    const t0 = Date.now();
    const m = await anthropic({ maxRetries: 2 }).messages.create({ model: 'claude-test', max_tokens: 10, messages: user('flaky') });
    const elapsed = Date.now() - t0;
    assert.equal(m.content[0].text, 'Recovered.');
    assert.deepEqual((await requests()).map((q) => q.rule), ['rate-limited', 'flaky-ok']);
    // The client waited for Retry-After: 1 (its own default backoff is ~0.5 s).
    assert.ok(elapsed >= 900, `client should honour Retry-After: 1, retried after ${elapsed} ms`);
  });

  test('a 500 fault raises an APIError with status 500 when maxRetries is 0', async () => {
    await assert.rejects(anthropic().messages.create({ model: 'claude-test', max_tokens: 10, messages: user('boom') }), (err) => {
      assert.ok(err instanceof Anthropic.APIError, `expected APIError, got ${err?.constructor?.name}`);
      assert.equal(err.status, 500);
      assert.equal(err.error?.type, 'error');
      assert.equal(err.error?.error?.type, 'api_error');
      return true;
    });
    assert.equal((await requests()).length, 1);
  });

  test('validation errors use the Anthropic error shape', async () => {
    const res = await post('/v1/messages', { model: 'c', max_tokens: 10 });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.type, 'error');
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /messages/);
    const noModel = await (await post('/v1/messages', { max_tokens: 10, messages: user('x') })).json();
    assert.match(noModel.error.message, /model/);
  });

  test('a malformed non-streaming body makes the client raise', async () => {
    await assert.rejects(
      anthropic({ logLevel: 'off' }).messages.create({ model: 'c', max_tokens: 10, messages: user('garble') }),
      (err) => err instanceof SyntaxError,
    );
  });
});

// ---------------------------------------------------------------------------
// Ollama /api/chat, with plain fetch
// ---------------------------------------------------------------------------

describe('ollama', () => {
  test('streams NDJSON by default; the final line has counts and tool_calls', async () => {
    const res = await post('/api/chat', { model: 'llama-test', messages: user('use-tools') });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/x-ndjson/);
    const text = await res.text();
    assert.ok(text.endsWith('\n'));
    const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 3);
    const body = lines.slice(0, -1);
    const last = lines.at(-1);
    for (const l of body) {
      assert.equal(l.done, false);
      assert.equal(l.model, 'llama-test');
      assert.equal(l.message.role, 'assistant');
      assert.ok(!Number.isNaN(Date.parse(l.created_at)));
    }
    assert.equal(body.map((l) => l.message.content).join(''), TOOL_TEXT);
    assert.equal(last.done, true);
    assert.equal(last.done_reason, 'stop');
    assert.equal(last.prompt_eval_count, 30);
    assert.equal(last.eval_count, 11);
    assert.deepEqual(last.message.tool_calls, TOOL_CALLS.map((t) => ({ function: { name: t.name, arguments: t.arguments } })));
  });

  test('stream: false gives one object with done: true', async () => {
    const res = await post('/api/chat', { model: 'llama-test', stream: false, messages: user('say-hello') });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const r = await res.json();
    assert.equal(r.done, true);
    assert.equal(r.message.content, HELLO_TEXT);
    assert.equal(r.message.tool_calls, undefined);
    assert.deepEqual([r.prompt_eval_count, r.eval_count], [12, 7]);
  });

  test('non-streaming tool_calls have object arguments', async () => {
    const r = await (await post('/api/chat', { model: 'llama-test', stream: false, messages: user('use-tools') })).json();
    assert.equal(r.message.content, TOOL_TEXT);
    assert.deepEqual(r.message.tool_calls.map((t) => t.function), TOOL_CALLS);
  });

  test('a role "tool" message matches last_role: tool', async () => {
    const r = await (
      await post('/api/chat', {
        model: 'llama-test',
        stream: false,
        messages: [
          { role: 'user', content: 'use-tools' },
          { role: 'assistant', content: '', tool_calls: [{ function: { name: 'fs_read', arguments: {} } }] },
          { role: 'tool', content: 'file contents' },
        ],
      })
    ).json();
    assert.equal(r.message.content, 'Tool result received.');
    assert.deepEqual((await requests()).map((q) => q.rule), ['after-tool']);
  });

  test('errors use {"error": "..."}', async () => {
    const res = await post('/api/chat', { messages: user('say-hello') });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: 'model is required' });
    const boom = await post('/api/chat', { model: 'l', messages: user('boom') });
    assert.equal(boom.status, 500);
    assert.deepEqual(await boom.json(), { error: 'fakellm: injected HTTP 500 (rule "boom")' });
  });
});

// ---------------------------------------------------------------------------
// Matching, faults on the raw wire, control endpoints, the command line
// ---------------------------------------------------------------------------

describe('rules', () => {
  test('provider and model matches pick the right rule', async () => {
    const viaOllama = await (await post('/api/chat', { model: 'x', stream: false, messages: user('which-provider') })).json();
    assert.equal(viaOllama.message.content, 'ollama rule');
    const special = await openai().chat.completions.create({ model: 'special-model', messages: user('which-provider') });
    assert.equal(special.choices[0].message.content, 'model rule');
    const other = await openai().chat.completions.create({ model: 'other-model', messages: user('which-provider') });
    assert.equal(other.choices[0].message.content, 'generic rule');
  });

  test('times is counted, and reset restores it', async () => {
    const first = await post('/v1/chat/completions', { model: 'm', messages: user('flaky') });
    assert.equal(first.status, 429);
    assert.equal(first.headers.get('retry-after'), '1');
    const firstBody = await first.json();
    assert.equal(firstBody.error.code, 'rate_limit_exceeded');
    const second = await post('/v1/chat/completions', { model: 'm', messages: user('flaky') });
    assert.equal(second.status, 200);
    await second.arrayBuffer();
    await fetch(`${fake.url}/_fakellm/reset`, { method: 'POST' });
    const third = await post('/v1/chat/completions', { model: 'm', messages: user('flaky') });
    assert.equal(third.status, 429);
    await third.arrayBuffer();
  });

  test('truncate ends each stream cleanly without its final event', async () => {
    const oa = await (await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('truncate-me') })).text();
    const oaEvents = parseSSE(oa);
    assert.ok(!oa.includes('[DONE]'));
    // Every chunk before [DONE] is there and parses: the role chunk, the text in several
    // pieces, the finish chunk.
    const oaChunks = oaEvents.map((e) => JSON.parse(e.data));
    assert.ok(oaChunks.length >= 5, `expected role, >= 3 content and finish chunks, got ${oaChunks.length}`);
    for (const c of oaChunks) assert.equal(c.object, 'chat.completion.chunk');
    assert.equal(oaChunks.map((c) => c.choices[0].delta.content ?? '').join(''), 'one two three four five');
    assert.equal(oaChunks.at(-1).choices[0].finish_reason, 'stop');

    const an = await (await post('/v1/messages', { model: 'c', max_tokens: 5, stream: true, messages: user('truncate-me') })).text();
    const anNames = parseSSE(an).map((e) => e.event);
    assert.equal(anNames[0], 'message_start');
    assert.equal(anNames.at(-1), 'message_delta', `the stream ends just before message_stop: ${anNames}`);
    assert.ok(!anNames.includes('message_stop'));

    const ol = await (await post('/api/chat', { model: 'l', messages: user('truncate-me') })).text();
    const olLines = ol.trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.ok(olLines.length >= 3, `expected the text in several lines, got ${olLines.length}`);
    assert.equal(olLines.map((l) => l.message.content).join(''), 'one two three four five');
    for (const [i, l] of olLines.entries()) assert.equal(l.done, false, `line ${i} is not the final line`);
  });

  test('drop cuts the connection after after_chunks chunks', async () => {
    const res = await post('/api/chat', { model: 'l', messages: user('drop-me') });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let got = '';
    const decoder = new TextDecoder();
    await assert.rejects(
      async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          got += decoder.decode(value, { stream: true });
        }
      },
      (err) => {
        assert.ok(isConnectionCut(err), `expected a connection error, got ${err?.constructor?.name}: ${err?.message}`);
        return true;
      },
    );
    const lines = got.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    for (const l of lines) assert.equal(l.done, false);
  });

  test('non-streaming drop sends headers, then closes before the body', async () => {
    const res = await post('/v1/chat/completions', { model: 'm', messages: user('drop-me') });
    assert.equal(res.status, 200);
    assert.ok(Number(res.headers.get('content-length')) > 0);
    await assert.rejects(res.text(), (err) => {
      assert.ok(isConnectionCut(err), `expected a connection error, got ${err?.constructor?.name}: ${err?.message}`);
      return true;
    });
    await assert.rejects(openai().chat.completions.create({ model: 'm', messages: user('drop-me') }), (err) => {
      assert.ok(isConnectionCut(err), `expected a connection error, got ${err?.constructor?.name}: ${err?.message}`);
      return true;
    });
  });

  test('stall sends after_chunks chunks, then nothing until the client gives up', async () => {
    const res = await post('/v1/chat/completions', { model: 'm', stream: true, messages: user('stall-me') }, { signal: AbortSignal.timeout(400) });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    let got = '';
    const decoder = new TextDecoder();
    await assert.rejects(
      async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          got += decoder.decode(value, { stream: true });
        }
      },
      (err) => err.name === 'TimeoutError' || err.name === 'AbortError',
    );
    assert.equal(parseSSE(got).length, 2);
  });
});

describe('control endpoints', () => {
  test('GET /healthz', async () => {
    const res = await fetch(`${fake.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok');
  });

  test('the request log records every request without credentials; reset clears it', async () => {
    await openai().chat.completions.create({ model: 'gpt-x', messages: user('say-hello'), stream: true }).then(async (s) => {
      for await (const c of s) void c;
    });
    await anthropic().messages.create({ model: 'claude-x', max_tokens: 5, messages: user('say-hello') });
    await (await post('/api/chat', { model: 'llama-x', messages: user('say-hello') })).text();
    await (await post('/api/chat', { messages: user('say-hello') })).text(); // invalid: logged too

    const log = await requests();
    assert.equal(log.length, 4);
    assert.deepEqual(
      log.map(({ provider, path, model, stream, has_authorization }) => ({ provider, path, model, stream, has_authorization })),
      [
        { provider: 'openai', path: '/v1/chat/completions', model: 'gpt-x', stream: true, has_authorization: true },
        { provider: 'anthropic', path: '/v1/messages', model: 'claude-x', stream: false, has_authorization: true },
        { provider: 'ollama', path: '/api/chat', model: 'llama-x', stream: true, has_authorization: false },
        { provider: 'ollama', path: '/api/chat', model: null, stream: true, has_authorization: false },
      ],
    );
    assert.deepEqual(log[0].body.messages, user('say-hello'));
    assert.equal(log[1].body.max_tokens, 5);
    assert.ok(!JSON.stringify(log).includes(API_KEY), 'the API key must never be echoed');

    const reset = await fetch(`${fake.url}/_fakellm/reset`, { method: 'POST' });
    assert.equal(reset.status, 200);
    assert.deepEqual(await requests(), []);
  });

  test('unknown paths are 404', async () => {
    const res = await fetch(`${fake.url}/v1/nope`);
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });
});

describe('command line', () => {
  test('--exit-on-stdin-close: the server exits when its stdin closes', async () => {
    const other = await startFakellm('rules: []\n');
    const health = await fetch(`${other.url}/healthz`);
    assert.equal(await health.text(), 'ok');
    const exited = once(other.child, 'exit');
    other.child.stdin.end();
    const [code, signal] = await exited;
    assert.deepEqual([code, signal], [0, null]);
    await other.stop();
  });

  test('a bad scenario exits 2 naming the file and line:col', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fakellm-bad-'));
    try {
      const syntax = join(dir, 'syntax.yaml');
      await writeFile(syntax, 'rules:\n  - reply: {text: "hi"\n  - reply: {text: ok}\n');
      const a = await runFakellm(['--scenario', syntax, '--port', '0']);
      assert.equal(a.code, 2);
      assert.equal(a.stdout, '');
      assert.match(a.stderr, new RegExp(`${syntax.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));

      const semantic = join(dir, 'semantic.yaml');
      await writeFile(semantic, 'rules:\n  - name: x\n    fault: {kind: explode}\n');
      const b = await runFakellm(['--scenario', semantic]);
      assert.equal(b.code, 2);
      assert.match(b.stderr, /semantic\.yaml:3:\d+: rules\[0\]\.fault\.kind: must be one of status \| stall \| drop \| malformed \| truncate/);

      const missing = await runFakellm(['--scenario', join(dir, 'absent.yaml')]);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /absent\.yaml: cannot read/);

      const noArgs = await runFakellm([]);
      assert.equal(noArgs.code, 2);
      assert.equal(noArgs.stdout, '');
      assert.match(noArgs.stderr, /--scenario FILE\.yaml is required/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
