// A test OTLP/HTTP trace receiver: decodes what agentd exports with OpenTelemetry JS's
// own protobuf definitions (@opentelemetry/otlp-transformer's generated decoder, an
// implementation agentd shares nothing with) and writes each span as a JSON line.
//   node otlp_receiver.mjs OUT.jsonl
// Prints "port N" once listening on 127.0.0.1 (an ephemeral port). POST /v1/traces with
// Content-Type application/x-protobuf gets 200 and an empty ExportTraceServiceResponse;
// anything else 400/404, written to OUT as {"error": …} so that a test sees it.
import { createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
import http from 'node:http';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const proto = root.opentelemetry.proto;
const Request = proto.collector.trace.v1.ExportTraceServiceRequest;
const Response = proto.collector.trace.v1.ExportTraceServiceResponse;
const out = process.argv[2];

const hex = (b) => Buffer.from(b ?? []).toString('hex');
function value(v) {
  if (v == null) return null;
  if (v.stringValue != null) return v.stringValue;
  if (v.boolValue != null) return v.boolValue;
  if (v.intValue != null) return Number(v.intValue);
  if (v.doubleValue != null) return v.doubleValue;
  if (v.arrayValue != null) return (v.arrayValue.values ?? []).map(value);
  return null;
}
const attrs = (list) => Object.fromEntries((list ?? []).map((kv) => [kv.key, value(kv.value)]));

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') {
      appendFileSync(out, JSON.stringify({ error: `${req.method} ${req.url}` }) + '\n');
      res.writeHead(404).end();
      return;
    }
    if (req.headers['content-type'] !== 'application/x-protobuf') {
      appendFileSync(out, JSON.stringify({ error: `content-type ${req.headers['content-type']}` }) + '\n');
      res.writeHead(400).end();
      return;
    }
    let msg;
    try {
      msg = Request.toObject(Request.decode(Buffer.concat(chunks)), { longs: String, enums: String, bytes: Array });
    } catch (e) {
      appendFileSync(out, JSON.stringify({ error: `decode: ${e.message}` }) + '\n');
      res.writeHead(400).end();
      return;
    }
    let lines = '';
    for (const rs of msg.resourceSpans ?? []) {
      const resource = attrs(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          lines += JSON.stringify({
            trace_id: hex(s.traceId),
            span_id: hex(s.spanId),
            parent_span_id: hex(s.parentSpanId),
            name: s.name,
            kind: s.kind,
            start: s.startTimeUnixNano,
            end: s.endTimeUnixNano,
            attributes: attrs(s.attributes),
            status: { code: s.status?.code ?? 'STATUS_CODE_UNSET', message: s.status?.message ?? '' },
            resource,
            scope: ss.scope?.name ?? '',
            schema_url: ss.schemaUrl ?? rs.schemaUrl ?? '',
            traceparent_header: req.headers['traceparent'] ?? '',
            authorization: req.headers['authorization'] ?? '',
          }) + '\n';
        }
      }
    }
    appendFileSync(out, lines);
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end(Buffer.from(Response.encode(Response.create({})).finish()));
  });
}).listen(0, '127.0.0.1', function () {
  process.stdout.write(`port ${this.address().port}\n`);
});
