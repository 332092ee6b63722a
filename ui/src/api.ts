// The UI's link to agentd: one gRPC-web transport to the daemon that served the page,
// a client per service, and the long-lived streams the UI keeps open (the change feed,
// consent requests, agent logs), each reconnecting with backoff and resuming from the
// last position it saw.
//
// agentd serves the API at the UI's own origin: POST /agentd.v1.<Service>/<Method>.
// The browser authenticates with the HttpOnly session cookie the login link
// (/login?code=<one-time code>, from `agentctl ui`) sets; without it, or once the
// session expires or is revoked, every call fails UNAUTHENTICATED, which flips the
// whole UI to its login page (see authStore).
//
// agentd's HTTP listener speaks HTTP/1.1, so a browser holds at most six connections to
// it, and each open stream occupies one. The UI keeps two streams open at all times
// (events and consent) and follows at most MAX_LOG_STREAMS agents' logs over streams of
// their own; further agents' logs are polled, so unary calls always find a connection.
import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type DependencyList } from "react";
import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
  type StreamResponse,
} from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { AgentService } from "./gen/agentd/v1/agents_pb";
import { AuditService } from "./gen/agentd/v1/audit_pb";
import { ConsentService, ConsentStatus, type ConsentRequest } from "./gen/agentd/v1/consent_pb";
import { EventService, type Event } from "./gen/agentd/v1/events_pb";
import { LogService, type LogGap, type LogStream } from "./gen/agentd/v1/logs_pb";
import { MessageService } from "./gen/agentd/v1/messages_pb";
import { PlanService } from "./gen/agentd/v1/plans_pb";
import { SystemService } from "./gen/agentd/v1/system_pb";
import { TaskService } from "./gen/agentd/v1/tasks_pb";
import { UsageService } from "./gen/agentd/v1/usage_pb";
import { tsMs } from "./format";

// ---------------------------------------------------------------------------------------
// A minimal observable value, read by components through useStore.

export class Store<T> {
  private value: T;
  private readonly listeners = new Set<() => void>();
  constructor(initial: T) {
    this.value = initial;
  }
  get = (): T => this.value;
  set = (next: T): void => {
    if (Object.is(next, this.value)) return;
    this.value = next;
    for (const l of [...this.listeners]) l();
  };
  update = (fn: (v: T) => T): void => this.set(fn(this.value));
  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };
}

export function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(store.subscribe, store.get, store.get);
}

// ---------------------------------------------------------------------------------------
// Authentication: any UNAUTHENTICATED answer, from any call or stream, shows the login
// page. "unknown" until the first call answers.

export type AuthState = "unknown" | "ok" | "unauthenticated";
export const authStore = new Store<AuthState>("unknown");

/** Converts any error to a ConnectError, and notes an UNAUTHENTICATED one. */
export function noteError(e: unknown): ConnectError {
  const ce = ConnectError.from(e);
  if (ce.code === Code.Unauthenticated) authStore.set("unauthenticated");
  return ce;
}

/** The gRPC message of an error, without the "[code]" prefix ConnectError adds. */
export function errorText(e: unknown): string {
  const ce = ConnectError.from(e);
  return ce.rawMessage || ce.message || Code[ce.code];
}

async function* watchAuth<T>(messages: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (e) {
    noteError(e);
    throw e;
  }
}

const authInterceptor: Interceptor = (next) => async (req) => {
  try {
    const res = await next(req);
    if (!res.stream) {
      if (authStore.get() !== "ok") authStore.set("ok");
      return res;
    }
    const wrapped: StreamResponse = { ...res, message: watchAuth(res.message) };
    return wrapped as typeof res;
  } catch (e) {
    noteError(e);
    throw e;
  }
};

// ---------------------------------------------------------------------------------------
// Transport and clients.

export const transport = createGrpcWebTransport({
  baseUrl: window.location.origin,
  useBinaryFormat: true,
  interceptors: [authInterceptor],
});

function client<T extends DescService>(service: T): Client<T> {
  return createClient(service, transport);
}

export const api = {
  agents: client(AgentService),
  audit: client(AuditService),
  consent: client(ConsentService),
  events: client(EventService),
  logs: client(LogService),
  messages: client(MessageService),
  plans: client(PlanService),
  system: client(SystemService),
  tasks: client(TaskService),
  usage: client(UsageService),
};

/** Follows next_page_token until the last page or until max items were read. */
export async function listAll<R extends { nextPageToken: string }, T>(
  call: (pageToken: string) => Promise<R>,
  pick: (r: R) => T[],
  max = 10000,
): Promise<T[]> {
  const out: T[] = [];
  let token = "";
  for (;;) {
    const r = await call(token);
    out.push(...pick(r));
    token = r.nextPageToken;
    if (!token || out.length >= max) return out;
  }
}

// ---------------------------------------------------------------------------------------
// Toasts: errors from actions, shown with the gRPC message.

export interface Toast {
  id: number;
  kind: "error" | "info";
  text: string;
  detail?: string;
}
export const toastStore = new Store<Toast[]>([]);
let toastSeq = 0;

function pushToast(t: Omit<Toast, "id">, ttlMs: number): void {
  const id = ++toastSeq;
  toastStore.update((ts) => [...ts.slice(-2), { ...t, id }]);
  window.setTimeout(() => dismissToast(id), ttlMs);
}

export function dismissToast(id: number): void {
  toastStore.update((ts) => ts.filter((t) => t.id !== id));
}

export function toastError(e: unknown, what?: string): void {
  const ce = noteError(e);
  if (ce.code === Code.Unauthenticated) return; // the login page says it all
  pushToast({ kind: "error", text: errorText(ce), detail: `${what ? `${what}: ` : ""}${Code[ce.code]}` }, 10000);
}

export function toastInfo(text: string): void {
  pushToast({ kind: "info", text }, 4000);
}

/** Runs an action; on failure shows its error in a toast and returns undefined. */
export async function act<T>(what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    toastError(e, what);
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------
// Reconnecting streams.

export type LinkStatus = "connecting" | "live" | "reconnecting" | "stopped";

export interface StreamOptions<T> {
  /** Opens the stream; called again for every reconnect, so it reads the current cursor. */
  open: (signal: AbortSignal, onHeader: () => void) => AsyncIterable<T>;
  onMessage: (m: T) => void;
  onStatus?: (s: LinkStatus) => void;
  /** Called with each error before the reconnect, e.g. to reset a cursor. */
  onError?: (e: ConnectError) => void;
  /** When set, a stream that ends normally is a poll: it is reopened after this delay. */
  repollMs?: number;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      window.clearTimeout(t);
      resolve();
    };
    const t = window.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Backoff before reconnect attempt n (0-based): 250 ms doubling to 10 s, ±20 % jitter. */
export function backoffMs(attempt: number): number {
  const base = Math.min(10000, 250 * 2 ** Math.min(attempt, 6));
  return base * (0.8 + Math.random() * 0.4);
}

/**
 * A stream that has neither failed nor answered after this long counts as open: a
 * server may hold back a streaming response's headers until its first message, and a
 * refused or broken connection fails well within this time.
 */
const OPEN_GRACE_MS = 1500;

/** Runs a stream until the returned function is called, reconnecting with backoff. */
export function runStream<T>(opts: StreamOptions<T>): () => void {
  const ctrl = new AbortController();
  let status: LinkStatus | undefined;
  const setStatus = (s: LinkStatus) => {
    if (s === status) return;
    status = s;
    opts.onStatus?.(s);
  };
  setStatus("connecting");
  void (async () => {
    let attempt = 0;
    while (!ctrl.signal.aborted) {
      let ended = false;
      const grace = window.setTimeout(() => {
        if (!ctrl.signal.aborted) setStatus("live");
      }, OPEN_GRACE_MS);
      try {
        const onHeader = () => {
          attempt = 0;
          setStatus("live");
        };
        for await (const m of opts.open(ctrl.signal, onHeader)) {
          if (ctrl.signal.aborted) break;
          attempt = 0;
          setStatus("live");
          opts.onMessage(m);
        }
        ended = true;
      } catch (e) {
        if (ctrl.signal.aborted) break;
        const ce = noteError(e);
        if (ce.code === Code.Unauthenticated) {
          setStatus("stopped");
          return;
        }
        opts.onError?.(ce);
      } finally {
        window.clearTimeout(grace);
      }
      if (ctrl.signal.aborted) break;
      if (ended && opts.repollMs !== undefined) {
        setStatus("live");
        await sleep(opts.repollMs, ctrl.signal);
        continue;
      }
      setStatus("reconnecting");
      await sleep(backoffMs(attempt++), ctrl.signal);
    }
    setStatus("stopped");
  })();
  return () => ctrl.abort();
}

// ---------------------------------------------------------------------------------------
// The change feed. One WatchEvents stream for the whole UI; views subscribe and refetch
// what an event touches. A subscriber called with null must refetch everything: the
// stream (re)connected and events may have been missed meanwhile.

type EventListener = (e: Event | null) => void;

class EventHub {
  readonly status = new Store<LinkStatus>("stopped");
  /** The last seq seen, the cursor to resume after; -1 means "from now on". */
  lastSeq = -1n;
  private readonly listeners = new Set<EventListener>();
  private stopFn?: () => void;

  start(): void {
    if (this.stopFn) return;
    this.stopFn = runStream({
      open: (signal, onHeader) => api.events.watchEvents({ afterSeq: this.lastSeq }, { signal, onHeader }),
      onMessage: (r) => {
        const e = r.event;
        if (!e) return;
        if (this.lastSeq >= 0n && e.seq <= this.lastSeq) return; // already seen
        this.lastSeq = e.seq;
        this.emit(e);
      },
      onStatus: (s) => {
        const was = this.status.get();
        this.status.set(s);
        if (s === "live" && was !== "live") this.emit(null);
      },
      onError: (e) => {
        // The cursor fell out of the retained feed: start over from now and resync.
        if (e.code === Code.OutOfRange) this.lastSeq = -1n;
      },
    });
  }

  stop(): void {
    this.stopFn?.();
    this.stopFn = undefined;
  }

  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: Event | null): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        console.error("event listener failed", err);
      }
    }
  }
}

export const eventHub = new EventHub();

/** An event matcher for kinds starting with any of the prefixes, e.g. "task.". */
// Events that change no listed object: a tool call is announced as `task.tool_call` with
// no task in it, and a busy agent makes many; they must not refetch whole lists.
const NOT_A_CHANGE = new Set(["task.tool_call"]);

export function kinds(...prefixes: string[]): (e: Event) => boolean {
  return (e) => !NOT_A_CHANGE.has(e.kind) && prefixes.some((p) => e.kind.startsWith(p));
}

/** Calls handler for each event (and null on resync) while the component is mounted. */
export function useEvents(handler: EventListener): void {
  const ref = useRef(handler);
  ref.current = handler;
  useEffect(() => eventHub.subscribe((e) => ref.current(e)), []);
}

export interface Query<T> {
  data: T | undefined;
  error: ConnectError | undefined;
  loading: boolean;
  refetch: () => void;
}

export interface LiveQueryOptions {
  /** Events that make the query refetch (debounced); none: only resyncs and polls. */
  match?: (e: Event) => boolean;
  /** Also refetch on this interval. */
  pollMs?: number;
  debounceMs?: number;
}

/**
 * Fetches data and keeps it current: refetches (debounced, 150 ms by default) when a
 * matching event arrives or the change feed resyncs, and every pollMs when given.
 */
export function useLiveQuery<T>(
  fetcher: () => Promise<T>,
  deps: DependencyList,
  opts: LiveQueryOptions = {},
): Query<T> {
  const [state, setState] = useState<{ data?: T; error?: ConnectError; loading: boolean }>({ loading: true });
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;
  const optsRef = useRef(opts);
  optsRef.current = opts;
  const reqId = useRef(0);
  const timer = useRef<number | undefined>(undefined);
  const firstPending = useRef<number | undefined>(undefined); // when the pending refetch was first asked for
  const inFlight = useRef(false);
  const again = useRef(false);

  // One fetch at a time, and at most one more queued: answers are never thrown away
  // because a newer request overtook them, however slow the daemon answers.
  const run = useCallback(() => {
    firstPending.current = undefined;
    if (inFlight.current) {
      again.current = true;
      return;
    }
    inFlight.current = true;
    const id = ++reqId.current;
    const done = () => {
      inFlight.current = false;
      if (again.current) {
        again.current = false;
        run();
      }
    };
    fetcherRef.current().then(
      (data) => {
        if (id === reqId.current) setState({ data, loading: false });
        done();
      },
      (e: unknown) => {
        const error = noteError(e);
        if (id === reqId.current) setState((s) => ({ data: s.data, error, loading: false }));
        done();
      },
    );
  }, []);

  // Debounced, but never postponed past one second: a steady stream of events (faster
  // than the debounce) still refreshes the view.
  const schedule = useCallback(() => {
    const now = Date.now();
    firstPending.current ??= now;
    const debounce = optsRef.current.debounceMs ?? 150;
    const wait = Math.max(0, Math.min(debounce, firstPending.current + 1000 - now));
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(run, wait);
  }, [run]);

  useEffect(() => {
    setState({ loading: true });
    run();
    return () => {
      reqId.current++; // drop answers for the previous deps
      window.clearTimeout(timer.current);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  useEffect(
    () =>
      eventHub.subscribe((e) => {
        if (e === null || optsRef.current.match?.(e)) schedule();
      }),
    [schedule],
  );

  const pollMs = opts.pollMs;
  useEffect(() => {
    if (!pollMs) return;
    const t = window.setInterval(run, pollMs);
    return () => window.clearInterval(t);
  }, [pollMs, run]);

  return { data: state.data, error: state.error, loading: state.loading, refetch: schedule };
}

// ---------------------------------------------------------------------------------------
// Consent requests: what waits for a person. WatchConsentRequests with after_seq 0 first
// sends every pending request, then each change; a reconnect resumes after the last seq.

class ConsentWatcher {
  readonly pending = new Store<ReadonlyMap<string, ConsentRequest>>(new Map());
  readonly status = new Store<LinkStatus>("stopped");
  private unsubscribe?: () => void;
  private generation = 0;
  private duringReload?: ConsentRequest[]; // changes seen while the list is being read

  // Consent changes ride on the one event stream (consent.* events carry the request):
  // a stream of its own would cost one of the six connections a browser opens to a host,
  // shared by every tab. The pending list is read at start and after every resync.
  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = eventHub.subscribe((e) => {
      if (e === null) void this.reload();
      else if (e.kind.startsWith("consent.") && e.payload.case === "consentRequest") {
        this.apply(e.payload.value);
        this.duringReload?.push(e.payload.value);
      }
    });
    void this.reload();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.generation++;
    this.status.set("stopped");
  }

  private async reload(): Promise<void> {
    const gen = ++this.generation;
    this.duringReload = [];
    try {
      const all = await listAll(
        (t) => api.consent.listConsentRequests({ pageSize: 1000, pageToken: t }),
        (r) => r.consentRequests,
      );
      if (gen !== this.generation) return;
      this.pending.set(new Map(all.filter((c) => c.status === ConsentStatus.PENDING).map((c) => [c.id, c])));
      // The list may predate a change the event stream already told us about.
      for (const c of this.duringReload ?? []) this.apply(c);
      this.duringReload = undefined;
      this.status.set("live");
    } catch (e) {
      noteError(e);
      if (gen === this.generation) this.status.set("reconnecting");
    }
  }

  /** Records a request as it now stands (from the watch or a decide call). */
  apply(c: ConsentRequest): void {
    this.pending.update((m) => {
      const next = new Map(m);
      if (c.status === ConsentStatus.PENDING) next.set(c.id, c);
      else next.delete(c.id);
      return next;
    });
  }
}

export const consentWatcher = new ConsentWatcher();

// ---------------------------------------------------------------------------------------
// Agent logs. One follower per agent: a StreamLogs stream with follow=true, or (beyond
// MAX_LOG_STREAMS agents) repeated follow=false reads each second. The cursor is the
// last seq received (a record's seq or a gap's to_seq); a reconnect passes it as
// after_seq, and anything at or below it is dropped, so no line is ever shown twice.

export const MAX_LOG_STREAMS = 3;

export interface LogLine {
  /** Unique within the view: "<agent>:<seq>" or "<agent>:gap:<from>". */
  key: string;
  agent: string;
  seq: bigint;
  timeMs: number;
  stream: LogStream;
  text: string;
  /** text in lower case, made on the first search that needs it (then kept). */
  lower?: string;
  truncated: boolean;
  gap?: LogGap;
}

export interface LogFollowerOptions {
  agentId: string;
  /** Records after this seq; 0 starts from the tail. */
  afterSeq: bigint;
  /** With afterSeq 0: how many records before the end to start with. */
  tail: number;
  poll: boolean;
  onLines: (lines: LogLine[]) => void;
  onStatus: (s: LinkStatus) => void;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

export function followLogs(o: LogFollowerOptions): () => void {
  let cursor = o.afterSeq;
  let received = false;
  return runStream({
    repollMs: o.poll ? 1000 : undefined,
    open: (signal, onHeader) =>
      api.logs.streamLogs(
        {
          agentId: o.agentId,
          afterSeq: cursor,
          // Ask for the tail only until something arrived; then resume after the cursor.
          tail: received || cursor > 0n ? 0 : o.tail,
          follow: !o.poll,
        },
        { signal, onHeader },
      ),
    onMessage: (r) => {
      const lines: LogLine[] = [];
      if (r.gap && r.records.length === 0) {
        const g = r.gap;
        if (g.toSeq > cursor) {
          lines.push({
            key: `${o.agentId}:gap:${g.fromSeq}`,
            agent: o.agentId,
            seq: g.fromSeq,
            timeMs: Date.now(),
            stream: 0 as LogStream,
            text: "",
            truncated: false,
            gap: g,
          });
          cursor = g.toSeq;
          received = true;
        }
      }
      for (const rec of r.records) {
        if (received && rec.seq <= cursor) continue; // a duplicate after a reconnect
        if (!received && o.afterSeq > 0n && rec.seq <= o.afterSeq) continue;
        cursor = rec.seq;
        received = true;
        lines.push({
          key: `${o.agentId}:${rec.seq}`,
          agent: o.agentId,
          seq: rec.seq,
          timeMs: tsMs(rec.time) ?? Date.now(),
          stream: rec.stream,
          text: utf8.decode(rec.line),
          truncated: rec.truncated,
        });
      }
      if (lines.length > 0) o.onLines(lines);
    },
    onStatus: o.onStatus,
  });
}

// ---------------------------------------------------------------------------------------
// A clock for relative times: one interval for the whole UI, running while anything
// shows a time.

const nowStore = new Store<number>(Date.now());
let nowTimer: number | undefined;
let nowUsers = 0;

function subscribeNow(l: () => void): () => void {
  const unsub = nowStore.subscribe(l);
  if (nowUsers++ === 0) nowTimer = window.setInterval(() => nowStore.set(Date.now()), 1000);
  return () => {
    unsub();
    if (--nowUsers === 0) window.clearInterval(nowTimer);
  };
}

/** The current time in ms, updated every second. */
export function useNow(): number {
  return useSyncExternalStore(subscribeNow, nowStore.get, nowStore.get);
}
