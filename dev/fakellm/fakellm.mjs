#!/usr/bin/env node
// fakellm — a scripted fake LLM provider for agentd's tests and demos.
//
// A real HTTP server (Node's built-in `http`) that speaks three wire formats:
//   OpenAI Chat Completions  POST /v1/chat/completions   (JSON or SSE)
//   Anthropic Messages       POST /v1/messages           (JSON or SSE)
//   Ollama native chat       POST /api/chat              (JSON or NDJSON)
// and answers from a YAML scenario of rules (see README.md next to this file).
//
//   node dev/fakellm/fakellm.mjs --scenario FILE.yaml [--host 127.0.0.1] [--port 0]
//                                [--exit-on-stdin-close]
//
// Exit codes: 0 after SIGTERM/SIGINT, 1 when the server cannot listen,
// 2 for a bad command line or a bad scenario file.

import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------
// Resolving `yaml`.
//
// The only npm dependency, `yaml`, is installed in dev/tools/node_modules (its
// package.json is the one place dev tooling pins npm packages). ESM ignores
// NODE_PATH, and a bare `import 'yaml'` would search dev/fakellm/node_modules,
// dev/node_modules, ... which do not exist. So we build a CommonJS `require`
// anchored at dev/tools/package.json, located relative to THIS file
// (import.meta.url), not to the working directory: the script works from any
// cwd, needs no environment variable, and still honours the package's own
// "exports" map (we never hard-code a file inside the package).
// ---------------------------------------------------------------------------
const requireFromTools = createRequire(new URL('../tools/package.json', import.meta.url));
let YAML;
try {
  YAML = requireFromTools('yaml');
} catch (err) {
  process.stderr.write(
    'fakellm: cannot load the "yaml" package from dev/tools/node_modules ' +
      `(run "npm install" in dev/tools): ${err.message}\n`,
  );
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Scenario loading and validation
// ---------------------------------------------------------------------------

const PROVIDERS = ['openai', 'anthropic', 'ollama'];
const ROLES = ['user', 'assistant', 'tool', 'system'];
const FAULT_KINDS = ['status', 'stall', 'drop', 'malformed', 'truncate'];

class ScenarioError extends Error {}

function isMapping(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// Reads and validates a scenario file. Throws ScenarioError whose message names
// the file and, where known, the line:col of the offending node.
export function loadScenario(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ScenarioError(`${file}: cannot read the scenario: ${err.message}`);
  }
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const where = Array.isArray(err.pos) ? lineCounter.linePos(err.pos[0]) : null;
    const msg = String(err.message).split('\n')[0];
    throw new ScenarioError(where ? `${file}:${where.line}:${where.col}: ${msg}` : `${file}: ${msg}`);
  }

  // Position of the deepest node that exists along `path`.
  const located = (path) => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (node && Array.isArray(node.range)) {
        const p = lineCounter.linePos(node.range[0]);
        return `${file}:${p.line}:${p.col}`;
      }
    }
    return file;
  };
  const fail = (path, msg) => {
    const label = path.length ? path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('').replace(/^\./, '') : 'top level';
    throw new ScenarioError(`${located(path)}: ${label}: ${msg}`);
  };
  const onlyKeys = (obj, path, allowed) => {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) fail([...path, key], `unknown key "${key}" (allowed: ${allowed.join(', ')})`);
    }
  };
  const optString = (obj, key, path) => {
    if (obj[key] === undefined || obj[key] === null) return undefined;
    if (typeof obj[key] !== 'string') fail([...path, key], 'must be a string (quote it)');
    return obj[key];
  };
  const optNumber = (obj, key, path, { integer = false, min = 0 } = {}) => {
    const v = obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min) {
      fail([...path, key], `must be ${integer ? 'an integer' : 'a number'} >= ${min}`);
    }
    return v;
  };
  const oneOf = (v, path, allowed) => {
    if (v !== undefined && !allowed.includes(v)) fail(path, `must be one of ${allowed.join(' | ')}`);
    return v;
  };

  const data = doc.toJS();
  if (!isMapping(data)) fail([], 'a scenario is a mapping with a "rules" list');
  onlyKeys(data, [], ['rules', 'models']);
  if (!Array.isArray(data.rules)) fail(['rules'], 'must be a list of rules');
  if (data.models !== undefined && (!Array.isArray(data.models) || !data.models.every((m) => typeof m === 'string'))) {
    fail(['models'], 'must be a list of model names');
  }

  const rules = data.rules.map((raw, i) => {
    const p = ['rules', i];
    if (!isMapping(raw)) fail(p, 'a rule must be a mapping');
    onlyKeys(raw, p, ['name', 'match', 'times', 'reply', 'fault']);
    const rule = { index: i, name: optString(raw, 'name', p) ?? `rule ${i + 1}`, match: {}, times: undefined, reply: undefined, fault: undefined };

    if (raw.match !== undefined && raw.match !== null) {
      const mp = [...p, 'match'];
      if (!isMapping(raw.match)) fail(mp, 'must be a mapping');
      onlyKeys(raw.match, mp, ['provider', 'model', 'contains', 'last_role']);
      rule.match.provider = oneOf(optString(raw.match, 'provider', mp), [...mp, 'provider'], PROVIDERS);
      rule.match.model = optString(raw.match, 'model', mp);
      rule.match.contains = optString(raw.match, 'contains', mp);
      rule.match.last_role = oneOf(optString(raw.match, 'last_role', mp), [...mp, 'last_role'], ROLES);
    }
    rule.times = optNumber(raw, 'times', p, { integer: true, min: 1 });

    if (raw.reply !== undefined && raw.reply !== null) {
      const rp = [...p, 'reply'];
      if (!isMapping(raw.reply)) fail(rp, 'must be a mapping');
      onlyKeys(raw.reply, rp, ['text', 'reasoning', 'tool_calls', 'usage', 'raw_usage', 'delay_ms', 'chunk_delay_ms']);
      const reply = {
        text: optString(raw.reply, 'text', rp) ?? '',
        reasoning: optString(raw.reply, 'reasoning', rp) ?? '',
        tool_calls: [],
        usage: {},
        delay_ms: optNumber(raw.reply, 'delay_ms', rp) ?? 0,
        chunk_delay_ms: optNumber(raw.reply, 'chunk_delay_ms', rp) ?? 0,
      };
      if (raw.reply.tool_calls !== undefined && raw.reply.tool_calls !== null) {
        if (!Array.isArray(raw.reply.tool_calls)) fail([...rp, 'tool_calls'], 'must be a list');
        reply.tool_calls = raw.reply.tool_calls.map((tc, j) => {
          const tp = [...rp, 'tool_calls', j];
          if (!isMapping(tc)) fail(tp, 'a tool call must be a mapping {name, arguments}');
          onlyKeys(tc, tp, ['name', 'arguments', 'raw_arguments', 'id']);
          const name = optString(tc, 'name', tp);
          if (!name) fail([...tp, 'name'], 'is required');
          const args = tc.arguments ?? {};
          if (!isMapping(args)) fail([...tp, 'arguments'], 'must be a mapping (the tool input object)');
          return { name, arguments: args, raw_arguments: optString(tc, 'raw_arguments', tp), id: optString(tc, 'id', tp) };
        });
      }
      if (raw.reply.usage !== undefined && raw.reply.usage !== null) {
        const up = [...rp, 'usage'];
        if (!isMapping(raw.reply.usage)) fail(up, 'must be a mapping {prompt_tokens, completion_tokens}');
        onlyKeys(raw.reply.usage, up, ['prompt_tokens', 'completion_tokens']);
        reply.usage.prompt_tokens = optNumber(raw.reply.usage, 'prompt_tokens', up, { integer: true });
        reply.usage.completion_tokens = optNumber(raw.reply.usage, 'completion_tokens', up, { integer: true });
      }
      if (raw.reply.raw_usage !== undefined && raw.reply.raw_usage !== null) {
        // Sent as written, wrong types included (`prompt_tokens: null`): for clients' tests.
        if (!isMapping(raw.reply.raw_usage)) fail([...rp, 'raw_usage'], 'must be a mapping');
        reply.raw_usage = raw.reply.raw_usage;
      }
      rule.reply = reply;
    }

    if (raw.fault !== undefined && raw.fault !== null) {
      const fp = [...p, 'fault'];
      if (!isMapping(raw.fault)) fail(fp, 'must be a mapping');
      onlyKeys(raw.fault, fp, ['kind', 'status', 'retry_after', 'after_chunks', 'message', 'delay_ms']);
      const kind = oneOf(optString(raw.fault, 'kind', fp), [...fp, 'kind'], FAULT_KINDS);
      if (!kind) fail([...fp, 'kind'], `is required (${FAULT_KINDS.join(' | ')})`);
      const fault = {
        kind,
        status: optNumber(raw.fault, 'status', fp, { integer: true, min: 100 }),
        retry_after: optNumber(raw.fault, 'retry_after', fp),
        after_chunks: optNumber(raw.fault, 'after_chunks', fp, { integer: true }),
        message: optString(raw.fault, 'message', fp),
        delay_ms: optNumber(raw.fault, 'delay_ms', fp),
      };
      if (kind === 'status') {
        if (fault.status === undefined) fail([...fp, 'status'], 'is required for kind status');
        if (fault.status > 599) fail([...fp, 'status'], 'must be an HTTP status (100..599)');
      } else if (fault.status !== undefined || fault.retry_after !== undefined) {
        fail([...fp, fault.status !== undefined ? 'status' : 'retry_after'], 'only applies to kind status');
      }
      rule.fault = fault;
    }

    if (!rule.reply && !rule.fault) fail(p, 'needs a "reply" or a "fault"');
    return rule;
  });
  // What GET /v1/models and /api/tags list: `models:`, else every model a rule matches on.
  rules.models = data.models ?? [...new Set(rules.map((r) => r.match.model).filter(Boolean))];
  return rules;
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Splits text into word-sized pieces whose concatenation is exactly `text`.
function splitText(text) {
  if (!text) return [];  // '' or absent (a context made without reasoning)
  const words = text.match(/\s*\S+/g);
  if (!words) return [text];
  const joined = words.join('');
  if (joined.length < text.length) words[words.length - 1] += text.slice(joined.length);
  return words;
}

// Splits a string into about `parts` pieces (at least one character each).
function splitInto(str, parts = 3) {
  if (str.length <= 1) return [str];
  const size = Math.max(1, Math.ceil(str.length / parts));
  const out = [];
  for (let i = 0; i < str.length; i += size) out.push(str.slice(i, i + size));
  return out;
}

const roughTokens = (chars) => Math.ceil(chars / 4);

// Text of an OpenAI/Anthropic/Ollama content value: a string or a list of parts.
function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const parts = [];
  for (const part of content) {
    if (typeof part === 'string') parts.push(part);
    else if (isMapping(part)) {
      if (typeof part.text === 'string') parts.push(part.text);
      else if (part.type === 'tool_result') parts.push(contentText(part.content));
    }
  }
  return parts.join('\n');
}

// ---------------------------------------------------------------------------
// Provider adapters: validation, conversation view, error shape, rendering
// ---------------------------------------------------------------------------

function openaiErrorType(status) {
  if (status === 429) return ['requests', 'rate_limit_exceeded'];
  if (status === 401) return ['invalid_request_error', 'invalid_api_key'];
  if (status >= 500) return ['server_error', null];
  return ['invalid_request_error', null];
}

function anthropicErrorType(status) {
  const table = {
    400: 'invalid_request_error',
    401: 'authentication_error',
    402: 'billing_error',
    403: 'permission_error',
    404: 'not_found_error',
    413: 'request_too_large',
    429: 'rate_limit_error',
    504: 'timeout_error',
    529: 'overloaded_error',
  };
  return table[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

const adapters = {
  openai: {
    validate(body) {
      const bad = (message, code = null, param = null) => ({ message, code, param });
      if (typeof body.model !== 'string' || body.model === '') return bad('you must provide a model parameter', null, 'model');
      if (body.messages === undefined) return bad("Missing required parameter: 'messages'.", 'missing_required_parameter', 'messages');
      if (!Array.isArray(body.messages)) return bad("Invalid type for 'messages': expected an array of objects.", 'invalid_type', 'messages');
      if (body.messages.length === 0) {
        return bad("Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", 'empty_array', 'messages');
      }
      for (let i = 0; i < body.messages.length; i++) {
        const m = body.messages[i];
        if (!isMapping(m) || typeof m.role !== 'string') {
          return bad(`Missing required parameter: 'messages[${i}].role'.`, 'missing_required_parameter', `messages[${i}].role`);
        }
      }
      return null;
    },
    conversation(body) {
      return body.messages.map((m) => {
        let role = m.role;
        if (role === 'function' || role === 'tool') role = 'tool';
        else if (role === 'developer') role = 'system';
        return { role, text: contentText(m.content) };
      });
    },
    errorBody(status, message, extra = {}) {
      const [type, code] = openaiErrorType(status);
      return { error: { message, type: extra.type ?? type, param: extra.param ?? null, code: extra.code !== undefined ? extra.code : code } };
    },
    streamContentType: 'text/event-stream; charset=utf-8',
    renderJson(c) {
      const message = { role: 'assistant', content: c.text === '' && c.toolCalls.length ? null : c.text, refusal: null };
      if (c.reasoning) message.reasoning_content = c.reasoning;
      if (c.toolCalls.length) {
        message.tool_calls = c.toolCalls.map((tc) => ({ id: tc.id('call'), type: 'function', function: { name: tc.name, arguments: tc.argString } }));
      }
      return {
        id: `chatcmpl-fake${c.seq}`,
        object: 'chat.completion',
        created: c.created,
        model: c.model,
        choices: [{ index: 0, message, logprobs: null, finish_reason: c.toolCalls.length ? 'tool_calls' : 'stop' }],
        usage: c.rawUsage ?? { prompt_tokens: c.usage.prompt, completion_tokens: c.usage.completion, total_tokens: c.usage.prompt + c.usage.completion },
        system_fingerprint: 'fakellm',
      };
    },
    // Returns the list of wire chunks; the last one is the final event.
    renderStream(c) {
      const includeUsage = isMapping(c.body.stream_options) && c.body.stream_options.include_usage === true;
      const base = { id: `chatcmpl-fake${c.seq}`, object: 'chat.completion.chunk', created: c.created, model: c.model, system_fingerprint: 'fakellm' };
      const chunk = (delta, finish = null) => {
        const obj = { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
        if (includeUsage) obj.usage = null;
        return `data: ${JSON.stringify(obj)}\n\n`;
      };
      const out = [chunk({ role: 'assistant', content: '', refusal: null })];
      for (const piece of splitText(c.reasoning)) out.push(chunk({ reasoning_content: piece }));
      for (const piece of splitText(c.text)) out.push(chunk({ content: piece }));
      c.toolCalls.forEach((tc, index) => {
        out.push(chunk({ tool_calls: [{ index, id: tc.id('call'), type: 'function', function: { name: tc.name, arguments: '' } }] }));
        for (const piece of splitInto(tc.argString)) out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
      });
      out.push(chunk({}, c.toolCalls.length ? 'tool_calls' : 'stop'));
      if (includeUsage) {
        const usage = c.rawUsage ?? { prompt_tokens: c.usage.prompt, completion_tokens: c.usage.completion, total_tokens: c.usage.prompt + c.usage.completion };
        out.push(`data: ${JSON.stringify({ ...base, choices: [], usage })}\n\n`);
      }
      out.push('data: [DONE]\n\n');
      return out;
    },
    malformedStream: 'data: {"id":"chatcmpl-fake","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":\n\n',
    malformedJson: '{"id":"chatcmpl-fake","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"',
  },

  anthropic: {
    validate(body) {
      const bad = (message) => ({ message });
      if (typeof body.model !== 'string' || body.model === '') return bad('model: Field required');
      if (body.max_tokens === undefined) return bad('max_tokens: Field required');
      if (!Number.isInteger(body.max_tokens) || body.max_tokens < 1) return bad('max_tokens: Input should be a valid integer greater than or equal to 1');
      if (body.messages === undefined) return bad('messages: Field required');
      if (!Array.isArray(body.messages)) return bad('messages: Input should be a valid list');
      if (body.messages.length === 0) return bad('messages: at least one message is required');
      for (let i = 0; i < body.messages.length; i++) {
        const m = body.messages[i];
        if (!isMapping(m) || (m.role !== 'user' && m.role !== 'assistant')) {
          return bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
        }
        if (m.content === undefined) return bad(`messages.${i}.content: Field required`);
      }
      return null;
    },
    conversation(body) {
      return body.messages.map((m) => {
        const hasToolResult = Array.isArray(m.content) && m.content.some((b) => isMapping(b) && b.type === 'tool_result');
        return { role: m.role === 'user' && hasToolResult ? 'tool' : m.role, text: contentText(m.content) };
      });
    },
    errorBody(status, message) {
      return { type: 'error', error: { type: anthropicErrorType(status), message } };
    },
    streamContentType: 'text/event-stream; charset=utf-8',
    blocks(c) {
      const blocks = [];
      if (c.reasoning) blocks.push({ type: 'thinking', thinking: c.reasoning, signature: 'fakellm' });
      if (c.text !== '' || c.toolCalls.length === 0) blocks.push({ type: 'text', text: c.text });
      for (const tc of c.toolCalls) blocks.push({ type: 'tool_use', id: tc.id('toolu'), name: tc.name, input: tc.arguments, raw: tc.argString });
      return blocks;
    },
    renderJson(c) {
      return {
        id: `msg_fake${c.seq}`,
        type: 'message',
        role: 'assistant',
        model: c.model,
        content: this.blocks(c).map(({ raw, ...b }) => b),
        stop_reason: c.toolCalls.length ? 'tool_use' : 'end_turn',
        stop_sequence: null,
        usage: c.rawUsage ?? { input_tokens: c.usage.prompt, output_tokens: c.usage.completion },
      };
    },
    renderStream(c) {
      const ev = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
      const out = [
        ev('message_start', {
          message: {
            id: `msg_fake${c.seq}`, type: 'message', role: 'assistant', model: c.model, content: [],
            stop_reason: null, stop_sequence: null, usage: c.rawUsage ?? { input_tokens: c.usage.prompt, output_tokens: 1 },
          },
        }),
        ev('ping', {}),
      ];
      const blocks = this.blocks(c);
      blocks.forEach((b, index) => {
        if (b.type === 'thinking') {
          out.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '' } }));
          for (const piece of splitText(b.thinking)) out.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: piece } }));
          out.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } }));
        } else if (b.type === 'text') {
          out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
          for (const piece of splitText(b.text)) out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }));
        } else {
          out.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } }));
          for (const piece of splitInto(b.raw)) out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } }));
        }
        out.push(ev('content_block_stop', { index }));
        if (index < blocks.length - 1) out.push(ev('ping', {}));
      });
      out.push(ev('message_delta', {
        delta: { stop_reason: c.toolCalls.length ? 'tool_use' : 'end_turn', stop_sequence: null },
        usage: c.rawUsage ?? { output_tokens: c.usage.completion },
      }));
      out.push(ev('message_stop', {}));
      return out;
    },
    malformedStream: 'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":\n\n',
    malformedJson: '{"id":"msg_fake","type":"message","role":"assistant","content":[{"type":"text","text":"',
  },

  ollama: {
    streamDefault: true,
    validate(body) {
      if (typeof body.model !== 'string' || body.model === '') return { message: 'model is required' };
      if (body.messages === undefined) return { message: 'messages is required' };
      if (!Array.isArray(body.messages)) return { message: 'json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message' };
      for (const m of body.messages) {
        if (!isMapping(m) || typeof m.role !== 'string') return { message: 'each message needs a role' };
      }
      return null;
    },
    conversation(body) {
      return body.messages.map((m) => ({ role: m.role === 'tool' ? 'tool' : m.role, text: contentText(m.content) }));
    },
    errorBody(status, message) {
      return { error: message };
    },
    streamContentType: 'application/x-ndjson',
    finalFields(c) {
      const ns = 1_000_000;
      return {
        done_reason: 'stop',
        done: true,
        total_duration: 5 * ns,
        load_duration: 1 * ns,
        prompt_eval_count: c.usage.prompt,
        prompt_eval_duration: 1 * ns,
        eval_count: c.usage.completion,
        eval_duration: 3 * ns,
        ...(c.rawUsage ?? {}),
      };
    },
    toolCalls(c) {
      return c.toolCalls.map((tc) => ({ function: { name: tc.name, arguments: tc.arguments } }));
    },
    renderJson(c) {
      const message = { role: 'assistant', content: c.text };
      if (c.reasoning) message.thinking = c.reasoning;
      if (c.toolCalls.length) message.tool_calls = this.toolCalls(c);
      return { model: c.model, created_at: c.createdAt, message, ...this.finalFields(c) };
    },
    renderStream(c) {
      const line = (obj) => `${JSON.stringify(obj)}\n`;
      const out = splitText(c.reasoning).map((piece) =>
        line({ model: c.model, created_at: c.createdAt, message: { role: 'assistant', content: '', thinking: piece }, done: false }),
      );
      out.push(...splitText(c.text).map((piece) =>
        line({ model: c.model, created_at: c.createdAt, message: { role: 'assistant', content: piece }, done: false }),
      ));
      const message = { role: 'assistant', content: '' };
      if (c.toolCalls.length) message.tool_calls = this.toolCalls(c);
      out.push(line({ model: c.model, created_at: c.createdAt, message, ...this.finalFields(c) }));
      return out;
    },
    malformedStream: '{"model":"fake","message":{"role":"assistant","content":\n',
    malformedJson: '{"model":"fake","message":{"role":"assistant","content":"',
  },
};

const ENDPOINTS = {
  '/v1/chat/completions': 'openai',
  '/chat/completions': 'openai',
  '/v1/messages': 'anthropic',
  '/api/chat': 'ollama',
};

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

const MAX_BODY = 64 * 1024 * 1024;

export function createFakeLLM(rules, { log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  let requestLog = [];
  let used = new Map(); // rule index -> answers given
  let seq = 0;

  const sendJson = (res, status, obj, headers = {}) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };

  const readBody = (req) =>
    new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (c) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(Object.assign(new Error('request body too large'), { status: 413 }));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const pickRule = (provider, body, conv) => {
    const lastRole = conv.length ? conv[conv.length - 1].role : undefined;
    let lastUser = '';
    for (let i = conv.length - 1; i >= 0; i--) {
      if (conv[i].role === 'user') {
        lastUser = conv[i].text;
        break;
      }
    }
    for (const rule of rules) {
      const m = rule.match;
      if (m.provider !== undefined && m.provider !== provider) continue;
      if (m.model !== undefined && m.model !== body.model) continue;
      if (m.last_role !== undefined && m.last_role !== lastRole) continue;
      if (m.contains !== undefined && !lastUser.includes(m.contains)) continue;
      if (rule.times !== undefined && (used.get(rule.index) ?? 0) >= rule.times) continue;
      used.set(rule.index, (used.get(rule.index) ?? 0) + 1);
      return rule;
    }
    return null;
  };

  // Builds the rendering context shared by the provider adapters.
  const makeContext = (provider, body, reply, n) => {
    const toolCalls = reply.tool_calls.map((tc, i) => {
      const argString = tc.raw_arguments ?? JSON.stringify(tc.arguments);
      return { name: tc.name, arguments: tc.arguments, argString, id: (prefix) => tc.id ?? `${prefix}_fake${n}_${i}` };
    });
    const promptChars = JSON.stringify([body.system ?? null, body.messages, body.tools ?? null]).length;
    const completionChars = reply.text.length + toolCalls.reduce((s, tc) => s + tc.name.length + tc.argString.length, 0);
    return {
      provider, body, seq: n,
      model: body.model,
      created: Math.floor(Date.now() / 1000),
      createdAt: new Date().toISOString(),
      text: reply.text,
      reasoning: reply.reasoning,
      toolCalls,
      rawUsage: reply.raw_usage,
      usage: {
        prompt: reply.usage.prompt_tokens ?? Math.max(1, roughTokens(promptChars)),
        completion: reply.usage.completion_tokens ?? roughTokens(completionChars),
      },
    };
  };

  const EMPTY_REPLY = { text: '', tool_calls: [], usage: {}, delay_ms: 0, chunk_delay_ms: 0 };

  async function answer(req, res, provider, body, stream, rule, n) {
    const adapter = adapters[provider];
    const fault = rule.fault;
    const reply = rule.reply ?? EMPTY_REPLY;
    let closed = false;
    res.on('close', () => {
      closed = true;
    });

    const delay = fault?.delay_ms ?? reply.delay_ms;
    if (delay > 0) await sleep(delay);
    if (closed) return;

    if (fault?.kind === 'status') {
      const headers = {};
      if (fault.retry_after !== undefined) headers['retry-after'] = String(fault.retry_after);
      const message = fault.message ?? `fakellm: injected HTTP ${fault.status} (rule "${rule.name}")`;
      sendJson(res, fault.status, adapter.errorBody(fault.status, message), headers);
      return;
    }

    const ctx = makeContext(provider, body, reply, n);
    // "drop": flush what was written, close our side, and make sure the socket goes.
    const drop = () => {
      const sock = res.socket;
      if (!sock) return;
      sock.end();
      setTimeout(() => sock.destroy(), 1000).unref();
    };

    if (!stream) {
      const full = JSON.stringify(adapter.renderJson(ctx));
      const kind = fault?.kind;
      if (kind === 'malformed') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(adapter.malformedJson) });
        res.end(adapter.malformedJson);
      } else if (kind === 'truncate') {
        const cut = full.slice(0, Math.floor(full.length / 2));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(cut) });
        res.end(cut);
      } else if (kind === 'stall' || kind === 'drop') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) });
        res.flushHeaders();
        if (kind === 'drop') drop();
        // stall: send nothing more; the client gives up (or we exit).
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) });
        res.end(full);
      }
      return;
    }

    const chunks = adapter.renderStream(ctx);
    let count = chunks.length;
    if (fault) {
      const last = chunks.length - 1; // index of the final event
      if (fault.kind === 'truncate') count = Math.min(fault.after_chunks ?? last, last);
      else if (fault.kind === 'malformed') count = Math.min(fault.after_chunks ?? 0, last);
      else count = Math.min(fault.after_chunks ?? 0, chunks.length);
    }
    res.writeHead(200, { 'content-type': adapter.streamContentType, 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    for (let i = 0; i < count; i++) {
      if (i > 0 && reply.chunk_delay_ms > 0) await sleep(reply.chunk_delay_ms);
      if (closed) return;
      res.write(chunks[i]);
    }
    if (closed) return;
    switch (fault?.kind) {
      case 'stall':
        return; // keep the connection open, send nothing more
      case 'drop':
        drop();
        return;
      case 'malformed':
        if (reply.chunk_delay_ms > 0 && count > 0) await sleep(reply.chunk_delay_ms);
        if (closed) return;
        res.end(adapter.malformedStream);
        return;
      default:
        res.end(); // complete, or truncate: a clean end without the final event
    }
  }

  async function handleProvider(req, res, provider, path) {
    const adapter = adapters[provider];
    const n = ++seq;
    const hasAuth = req.headers.authorization !== undefined || req.headers['x-api-key'] !== undefined;
    const entry = { provider, path, model: null, stream: false, body: null, has_authorization: hasAuth, rule: null };
    requestLog.push(entry);
    const head = `fakellm: #${n} ${req.method} ${path} ${provider}`;

    if (req.method !== 'POST') {
      log(`${head} -> 405`);
      sendJson(res, 405, adapter.errorBody(405, `fakellm: ${req.method} is not allowed on ${path}; use POST`), { allow: 'POST' });
      return;
    }
    let raw;
    try {
      raw = await readBody(req);
    } catch (err) {
      const status = err.status ?? 400;
      log(`${head} -> ${status} (${err.message})`);
      if (!res.headersSent && !res.destroyed) sendJson(res, status, adapter.errorBody(status, `fakellm: ${err.message}`));
      return;
    }
    let body;
    try {
      body = JSON.parse(raw);
    } catch (err) {
      log(`${head} -> 400 (body is not JSON)`);
      sendJson(res, 400, adapter.errorBody(400, `fakellm: the request body is not valid JSON: ${err.message}`));
      return;
    }
    if (!isMapping(body)) {
      log(`${head} -> 400 (body is not an object)`);
      sendJson(res, 400, adapter.errorBody(400, 'fakellm: the request body must be a JSON object'));
      return;
    }
    const stream = adapter.streamDefault ? body.stream !== false : body.stream === true;
    Object.assign(entry, { model: typeof body.model === 'string' ? body.model : null, stream, body });

    const invalid = adapter.validate(body);
    if (invalid) {
      log(`${head} model=${entry.model} -> 400 (${invalid.message})`);
      sendJson(res, 400, adapter.errorBody(400, invalid.message, { code: invalid.code, param: invalid.param }));
      return;
    }

    const conv = adapter.conversation(body);
    const rule = pickRule(provider, body, conv);
    const what = `${head} model=${body.model} stream=${stream}`;
    if (!rule) {
      let last = conv.length ? conv[conv.length - 1].text : '';
      if (last.length > 200) last = `${last.slice(0, 200)}…`;
      const message = `fakellm: no rule matched (last message: ${JSON.stringify(last)})`;
      log(`${what} -> 400 no rule matched`);
      sendJson(res, 400, adapter.errorBody(400, message));
      return;
    }
    entry.rule = rule.name;
    const outcome = rule.fault
      ? `fault ${rule.fault.kind}${rule.fault.kind === 'status' ? ` ${rule.fault.status}` : ''}`
      : 'reply';
    log(`${what} -> rule "${rule.name}" (${outcome})`);
    await answer(req, res, provider, body, stream, rule, n);
  }

  async function handle(req, res) {
    const path = new URL(req.url, 'http://fakellm').pathname;
    const provider = ENDPOINTS[path];
    if (provider) return handleProvider(req, res, provider, path);

    // Model listings, as agentctl doctor reads them: OpenAI's (and Anthropic's) shape at
    // /v1/models, Ollama's at /api/tags.
    if ((path === '/v1/models' || path === '/models') && req.method === 'GET') {
      req.resume();
      log(`fakellm: GET ${path} -> ${(rules.models ?? []).length} models`);
      sendJson(res, 200, { object: 'list', data: (rules.models ?? []).map((id) => ({ id, object: 'model', owned_by: 'fakellm' })) });
      return;
    }
    if (path === '/api/tags' && req.method === 'GET') {
      req.resume();
      log(`fakellm: GET ${path} -> ${(rules.models ?? []).length} models`);
      sendJson(res, 200, { models: (rules.models ?? []).map((name) => ({ name, model: name })) });
      return;
    }
    if (path === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 2 });
      res.end(req.method === 'HEAD' ? undefined : 'ok');
      return;
    }
    if (path === '/_fakellm/requests' && req.method === 'GET') {
      sendJson(res, 200, requestLog);
      return;
    }
    if (path === '/_fakellm/reset' && req.method === 'POST') {
      req.resume();
      requestLog = [];
      used = new Map();
      log('fakellm: reset (request log and rule counters cleared)');
      sendJson(res, 200, { ok: true });
      return;
    }
    req.resume();
    log(`fakellm: ${req.method} ${path} -> 404`);
    sendJson(res, 404, { error: { message: `fakellm: no such endpoint: ${req.method} ${path}`, type: 'invalid_request_error', code: 'unknown_url' } });
  }

  const server = http.createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch((err) => {
      log(`fakellm: internal error: ${err.stack ?? err}`);
      if (!res.headersSent) sendJson(res, 500, { error: `fakellm internal error: ${err.message}` });
      else res.destroy();
    });
  });
  return server;
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

const USAGE =
  'usage: node dev/fakellm/fakellm.mjs --scenario FILE.yaml [--host 127.0.0.1] [--port 0] [--exit-on-stdin-close]';

function parseArgs(argv) {
  const opts = { scenario: undefined, host: '127.0.0.1', port: 0, exitOnStdinClose: false };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--scenario':
        opts.scenario = next();
        break;
      case '--host':
        opts.host = next();
        break;
      case '--port': {
        const v = next();
        if (!/^\d+$/.test(v) || Number(v) > 65535) throw new Error(`--port: not a port number: ${v}`);
        opts.port = Number(v);
        break;
      }
      case '--exit-on-stdin-close':
        if (value !== undefined) throw new Error(`${arg} takes no value`);
        opts.exitOnStdinClose = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new Error(`unknown argument: ${arg}`);
    }
  }
  if (!opts.scenario) throw new Error('--scenario FILE.yaml is required');
  return opts;
}

function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fakellm: ${err.message}\n${USAGE}\n`);
    process.exit(2);
  }
  let rules;
  try {
    rules = loadScenario(opts.scenario);
  } catch (err) {
    if (!(err instanceof ScenarioError)) throw err;
    process.stderr.write(`fakellm: bad scenario: ${err.message}\n`);
    process.exit(2);
  }

  const server = createFakeLLM(rules);
  server.on('error', (err) => {
    process.stderr.write(`fakellm: cannot listen on ${opts.host}:${opts.port}: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const { address, port } = server.address();
    const host = address.includes(':') ? `[${address}]` : address;
    // The one and only stdout line; tests and scripts wait for it.
    process.stdout.write(`fakellm listening on http://${host}:${port}\n`);
    process.stderr.write(`fakellm: ${rules.length} rule(s) from ${opts.scenario}\n`);
  });

  const shutdown = (sig) => {
    process.stderr.write(`fakellm: ${sig}, exiting\n`);
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  if (opts.exitOnStdinClose) {
    // For harnesses: give us a pipe as stdin and we go away with our parent,
    // even when it dies without signalling us.
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
}

// Run only when executed as a program, so the module can also be imported.
if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) main();
