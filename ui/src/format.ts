// Formatting shared by the views: protobuf times and durations, enum names, money,
// token counts, and the colour ("tone") a status is shown in.
import type { DescEnum } from "@bufbuild/protobuf";
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";

/** Milliseconds since the epoch of a protobuf Timestamp, or undefined when unset. */
export function tsMs(t: Timestamp | undefined): number | undefined {
  if (!t) return undefined;
  return Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
}

/** Milliseconds of a protobuf Duration, or undefined when unset. */
export function durMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

/** "45 s", "3 min 12 s", "2 h 05 min", "3 d 4 h". */
export function fmtDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  const d = Math.floor(h / 24);
  return `${d} d ${h % 24} h`;
}

/** "3 s ago", "5 min ago", "in 20 s". */
export function fmtAgo(ms: number | undefined, now: number): string {
  if (ms === undefined) return "—";
  // Clocks of browser and daemon differ a little: a moment "in the future" is now.
  const diff = now - ms > -2000 ? Math.max(0, now - ms) : now - ms;
  const future = diff < 0;
  const s = Math.floor(Math.abs(diff) / 1000);
  let text: string;
  if (s < 60) text = `${s} s`;
  else if (s < 3600) text = `${Math.floor(s / 60)} min`;
  else if (s < 86400) text = `${Math.floor(s / 3600)} h`;
  else text = `${Math.floor(s / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/** Absolute local date and time, for hover titles. */
export function fmtAbsolute(ms: number | undefined): string {
  if (ms === undefined) return "";
  const d = new Date(ms);
  return `${d.toLocaleString()} (${d.toISOString()})`;
}

/** Local clock time with milliseconds, for log lines: "14:03:22.187". */
export function fmtClock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** US dollars: "$0.0042" below a cent, "$12.34" otherwise. */
export function fmtUsd(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "—";
  if (n !== 0 && Math.abs(n) < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toFixed(2)}`;
}

/** A count with thousands separators; accepts int64 (bigint) fields. */
export function fmtInt(n: bigint | number | undefined): string {
  if (n === undefined) return "—";
  return typeof n === "bigint" ? n.toLocaleString("en-US") : Math.round(n).toLocaleString("en-US");
}

/** Compact token count: "950", "12.3k", "4.1M". */
export function fmtTokens(n: bigint | number | undefined): string {
  if (n === undefined) return "—";
  const v = Number(n);
  if (Math.abs(v) < 1000) return String(v);
  if (Math.abs(v) < 1e6) return `${(v / 1000).toFixed(v < 1e4 ? 2 : 1)}k`;
  return `${(v / 1e6).toFixed(2)}M`;
}

/** The full protobuf name of an enum value, e.g. "TASK_STATUS_COMPLETED". */
export function enumName(schema: DescEnum, value: number): string {
  return schema.value[value]?.name ?? `${schema.name}_${value}`;
}

/** The enum value's name without the enum's prefix, e.g. "COMPLETED". */
export function enumShort(schema: DescEnum, value: number): string {
  const full = enumName(schema, value);
  // sharedPrefix is in lower case, e.g. "agent_state_" for AgentState.
  const prefix = schema.sharedPrefix;
  if (prefix && full.toLowerCase().startsWith(prefix.toLowerCase())) return full.slice(prefix.length);
  return full;
}

/** The values of an enum other than its zero (UNSPECIFIED) value. */
export function enumValues(schema: DescEnum): number[] {
  return schema.values.map((v) => v.number).filter((n) => n !== 0);
}

export type Tone = "green" | "red" | "grey" | "amber" | "blue";

// Short status names (enum names without their prefix) and their colour: green for
// done or healthy, blue for work in progress, amber for waiting, red for failure, grey
// for canceled or inactive.
const TONES: Record<string, Tone> = {
  // agents
  STARTING: "blue",
  RUNNING: "blue",
  IDLE: "green",
  BUSY: "blue",
  UNRESPONSIVE: "amber",
  BACKOFF: "amber",
  STOPPING: "grey",
  STOPPED: "grey",
  // tasks
  PENDING: "amber",
  READY: "amber",
  ASSIGNED: "blue",
  BLOCKED: "amber",
  COMPLETED: "green",
  FAILED: "red",
  CANCELED: "grey",
  // plans
  PROPOSED: "amber",
  APPROVED: "green",
  REJECTED: "red",
  SUPERSEDED: "grey",
  EXECUTING: "blue",
  // consent
  DENIED: "red",
  EXPIRED: "grey",
  // daemon
  SERVING: "green",
  DRAINING: "amber",
};

/** The colour of a status given by its short or full enum name. */
export function toneOf(name: string, agent = false): Tone {
  const short = name.replace(/^(AGENT_STATE|TASK_STATUS|PLAN_STATUS|CONSENT_STATUS|DAEMON_STATE)_/, "");
  // An agent that is RUNNING (registered, heartbeating) is healthy: green. A task that
  // is RUNNING is work in progress: blue.
  if (agent && short === "RUNNING") return "green";
  return TONES[short] ?? "grey";
}

/** Splits text around case-insensitive occurrences of query, for highlighting. */
export function splitMatches(text: string, query: string): { text: string; hit: boolean }[] {
  if (!query) return [{ text, hit: false }];
  const lower = text.toLowerCase();
  const q = query.toLowerCase();
  const parts: { text: string; hit: boolean }[] = [];
  let at = 0;
  for (;;) {
    const i = lower.indexOf(q, at);
    if (i < 0) break;
    if (i > at) parts.push({ text: text.slice(at, i), hit: false });
    parts.push({ text: text.slice(i, i + q.length), hit: true });
    at = i + q.length;
  }
  if (at < text.length) parts.push({ text: text.slice(at), hit: false });
  return parts;
}

/** Truncates text to n characters with an ellipsis. */
export function clip(text: string, n: number): string {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// Characters that change how the text around them is shown rather than showing
// themselves: C0 and C1 controls, DEL, the bidirectional marks, embeddings, overrides and
// isolates (U+202E makes "exe.txt" read "txt.exe"), and the zero-width ones. A model, a
// program or a file chose these strings; at an approval point the person must see every
// character that is there, so each of these is shown as its escape, as agentctl does.
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;
const INVISIBLE_ONE_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  if (c === "\n") return "\\n";
  if (c === "\t") return "\\t";
  if (c === "\r") return "\\r";
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * `text` with every control, bidi and zero-width character shown as its escape
 * ("\u202e", "\x1b", "\r"). With `lines` "many", newlines and tabs are kept.
 */
export function visible(text: string, lines: "one" | "many" = "one"): string {
  return text.replace(lines === "one" ? INVISIBLE_ONE_LINE : INVISIBLE, escapeChar);
}
