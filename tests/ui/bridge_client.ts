// Bundled by the bridge test (esbuild) and loaded into a page agentd serves: two
// independent gRPC-web clients calling agentd from inside Chromium —
//   - @connectrpc/connect-web (binary, what agentd's UI uses), and
//   - the official grpc-web client (its default text mode), with no generated stubs:
//     a MethodDescriptor per method whose (de)serializers are protobuf-es's.
// Results are plain JSON so page.evaluate() can return them.
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { GrpcWebClientBase, MethodDescriptor, MethodType, RpcError } from "grpc-web";
import {
  EventService,
  WatchEventsRequestSchema,
  WatchEventsResponseSchema,
} from "../../ui/src/gen/agentd/v1/events_pb";
import {
  GetVersionRequestSchema,
  GetVersionResponseSchema,
  SystemService,
} from "../../ui/src/gen/agentd/v1/system_pb";

const base = window.location.origin;

// --- connect-web ---

function connectClients(token?: string) {
  const transport = createGrpcWebTransport({
    baseUrl: base,
    useBinaryFormat: true,
    interceptors: token
      ? [
          (next) => async (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ]
      : [],
  });
  return { system: createClient(SystemService, transport), events: createClient(EventService, transport) };
}

async function connectVersion(token?: string) {
  try {
    const r = await connectClients(token).system.getVersion({});
    return { ok: true, version: r.version, apiVersion: r.apiVersion };
  } catch (e) {
    const c = ConnectError.from(e);
    return { ok: false, code: c.code, message: c.rawMessage };
  }
}

// The first `n` events from the start of the feed, then the stream is abandoned.
async function connectWatch(n: number) {
  const abort = new AbortController();
  const seqs: string[] = [];
  try {
    for await (const ev of connectClients().events.watchEvents(
      { afterSeq: 0n },
      { signal: abort.signal },
    )) {
      seqs.push(String(ev.event?.seq ?? ""));
      if (seqs.length >= n) break;
    }
  } finally {
    abort.abort();
  }
  return seqs;
}

// --- the official grpc-web client ---

function descriptor<I extends DescMessage, O extends DescMessage>(
  path: string,
  type: string,
  input: I,
  output: O,
) {
  // The client needs constructors only to satisfy its types; the functions do the work.
  const ctor = Object as unknown as new () => unknown;
  return new MethodDescriptor<MessageShape<I>, MessageShape<O>>(
    path,
    type,
    ctor as never,
    ctor as never,
    (m: MessageShape<I>) => toBinary(input, m),
    (bytes: Uint8Array) => fromBinary(output, bytes),
  );
}

const grpcWeb = new GrpcWebClientBase({ format: "text" });

async function grpcWebVersion(method = "/agentd.v1.SystemService/GetVersion", token?: string) {
  const md = descriptor(method, MethodType.UNARY, GetVersionRequestSchema, GetVersionResponseSchema);
  const metadata: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  return new Promise((resolve) => {
    grpcWeb.rpcCall(base + method, create(GetVersionRequestSchema), metadata, md,
      (err: RpcError, r) => {
        if (err) resolve({ ok: false, code: err.code, message: err.message });
        else resolve({ ok: true, version: r.version, apiVersion: r.apiVersion });
      });
  });
}

function grpcWebWatch(n: number): Promise<string[]> {
  const method = "/agentd.v1.EventService/WatchEvents";
  const md = descriptor(method, MethodType.SERVER_STREAMING, WatchEventsRequestSchema,
                        WatchEventsResponseSchema);
  return new Promise((resolve, reject) => {
    const seqs: string[] = [];
    let done = false;
    const stream = grpcWeb.serverStreaming(base + method, create(WatchEventsRequestSchema, { afterSeq: 0n }), {}, md);
    stream.on("data", (ev) => {
      // Events already read from the wire arrive after cancel(): not part of the answer.
      if (done) return;
      seqs.push(String(ev.event?.seq ?? ""));
      if (seqs.length === n) {
        done = true;
        stream.cancel();
        resolve(seqs.slice());
      }
    });
    stream.on("error", (e) => reject(new Error(`grpc-web stream: ${e.code} ${e.message}`)));
    // A stream that ends early returns what it read, for the caller's length check to
    // fail at once instead of waiting out the test's timeout.
    stream.on("end", () => resolve(seqs.slice()));
  });
}

// A stream left open until dropStream() — to watch agentd notice the client going away.
let open: { cancel(): void } | undefined;
function openStream() {
  const method = "/agentd.v1.EventService/WatchEvents";
  const md = descriptor(method, MethodType.SERVER_STREAMING, WatchEventsRequestSchema,
                        WatchEventsResponseSchema);
  open = grpcWeb.serverStreaming(base + method, create(WatchEventsRequestSchema, { afterSeq: -1n }), {}, md);
  open.on("error", () => {});
  return true;
}
function dropStream() {
  open?.cancel();
  open = undefined;
  return true;
}

(window as unknown as { agentdBridge: unknown }).agentdBridge = {
  connectVersion,
  connectWatch,
  grpcWebVersion,
  grpcWebWatch,
  openStream,
  dropStream,
};
