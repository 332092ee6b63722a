// Logs: follow the stdout, stderr and supervisor notes of one or several agents at once,
// interleaved by time. Each agent's stream resumes after the last record shown when it
// reconnects, and a record already shown (same agent and seq) is never shown again.
// Records lost to retention appear as a gap line. Pause freezes the display while lines
// keep arriving; search highlights and jumps between matches (or shows only them);
// "jump" scrolls to a seq, or restarts the streams from it when it is no longer (or not
// yet) in the buffer. Only the rows in view are in the page (@tanstack/react-virtual,
// which measures each row, as lines wrap): 200,000 lines stay smooth.
import { memo, useEffect, useLayoutEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useVirtualizer } from "@tanstack/react-virtual";
import {
  MAX_LOG_STREAMS,
  api,
  followLogs,
  kinds,
  listAll,
  useLiveQuery,
  type LinkStatus,
  type LogLine,
} from "../api";
import { enumShort, fmtAbsolute, fmtClock, fmtInt, splitMatches, visible as visibleText } from "../format";
import { AgentStateSchema } from "../gen/agentd/v1/agents_pb";
import { LogGapReasonSchema, LogStream } from "../gen/agentd/v1/logs_pb";
import { navigate } from "../route";

/** Lines kept in memory across all followed agents; the oldest go first. */
const MAX_LINES = 200000;
/** Records shown from before "now" when an agent is first followed. */
const TAIL = 500;

interface Follower {
  stop: () => void;
  poll: boolean;
  /** Tells this follower's callbacks from those of one it replaced. */
  gen: number;
}

let followerGen = 0;

function agentHue(id: string): number {
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) % 360;
  return h;
}

function byTime(a: LogLine, b: LogLine): number {
  if (a.agent === b.agent) return a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0;
  return a.timeMs - b.timeMs || a.agent.localeCompare(b.agent);
}

export function LogsView({ query }: { query: URLSearchParams }) {
  const selected = (query.get("agents") ?? "").split(",").filter(Boolean);
  const selectedKey = selected.join(",");
  const agentsQ = useLiveQuery(
    () => listAll((t) => api.agents.listAgents({ pageSize: 1000, pageToken: t }), (r) => r.agents),
    [],
    { match: kinds("agent.") },
  );

  const [, setVersion] = useState(0);
  const [paused, setPaused] = useState(false);
  const [search, setSearch] = useState("");
  const [jumpText, setJumpText] = useState("");
  const [statuses, setStatuses] = useState<Record<string, LinkStatus>>({});
  const [highlight, setHighlight] = useState<string>();
  const [onlyMatching, setOnlyMatching] = useState(false);
  const [match, setMatch] = useState(0);

  const lines = useRef<LogLine[]>([]); // replaced, never mutated: a paused view keeps its array
  const frozen = useRef<LogLine[] | null>(null);
  const arrivedWhilePaused = useRef(0);
  const incoming = useRef<LogLine[]>([]);
  const flushTimer = useRef<number | undefined>(undefined);
  const lastShown = useRef(new Map<string, bigint>()); // per agent: highest seq shown
  const followers = useRef(new Map<string, Follower>());
  const pendingJump = useRef<bigint | undefined>(undefined);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  const flush = () => {
    flushTimer.current = undefined;
    const batch = incoming.current;
    incoming.current = [];
    const fresh: LogLine[] = [];
    for (const l of batch) {
      if (!followers.current.has(l.agent)) continue; // unfollowed meanwhile
      const top = l.gap ? l.gap.toSeq : l.seq;
      const last = lastShown.current.get(l.agent);
      if (last !== undefined && top <= last) continue; // shown already: never twice
      lastShown.current.set(l.agent, top);
      fresh.push(l);
    }
    if (fresh.length === 0) return;
    let next = lines.current.concat(fresh);
    const prev = lines.current[lines.current.length - 1];
    if (prev && fresh.some((l) => l.timeMs < prev.timeMs)) next.sort(byTime);
    if (next.length > MAX_LINES) next = next.slice(next.length - MAX_LINES);
    lines.current = next;
    if (frozen.current) arrivedWhilePaused.current += fresh.length;
    setVersion((v) => v + 1);
  };

  const enqueue = (ls: LogLine[]) => {
    incoming.current.push(...ls);
    if (flushTimer.current === undefined) flushTimer.current = window.setTimeout(flush, 100);
  };

  const startFollower = (agentId: string, poll: boolean, afterSeq: bigint, tail: number) => {
    const gen = ++followerGen;
    const current = () => followers.current.get(agentId)?.gen === gen;
    followers.current.set(agentId, {
      poll,
      gen,
      stop: followLogs({
        agentId,
        afterSeq,
        tail,
        poll,
        onLines: (ls) => {
          if (current()) enqueue(ls);
        },
        onStatus: (s) => {
          if (current()) setStatuses((p) => ({ ...p, [agentId]: s }));
        },
      }),
    });
  };

  // Forgets an agent's lines, shown and not yet shown.
  const dropAgentLines = (agentId: string) => {
    lines.current = lines.current.filter((l) => l.agent !== agentId);
    incoming.current = incoming.current.filter((l) => l.agent !== agentId);
    lastShown.current.delete(agentId);
  };

  // Follow exactly the selected agents: the first MAX_LOG_STREAMS over streams, the rest
  // by polling (see MAX_LOG_STREAMS in api.ts).
  useEffect(() => {
    const want = new Set(selected);
    for (const [id, f] of followers.current) {
      if (!want.has(id)) {
        f.stop();
        followers.current.delete(id);
        dropAgentLines(id);
        setStatuses(({ [id]: _gone, ...rest }) => rest);
      }
    }
    selected.forEach((id, i) => {
      const poll = i >= MAX_LOG_STREAMS;
      const f = followers.current.get(id);
      if (f && f.poll === poll) return;
      f?.stop();
      const last = lastShown.current.get(id);
      startFollower(id, poll, last ?? 0n, last === undefined ? TAIL : 0);
    });
    setVersion((v) => v + 1);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [selectedKey]);

  useEffect(
    () => () => {
      for (const f of followers.current.values()) f.stop();
      followers.current.clear();
      window.clearTimeout(flushTimer.current);
      flushTimer.current = undefined;
    },
    [],
  );

  const togglePause = () => {
    if (paused) {
      frozen.current = null;
      arrivedWhilePaused.current = 0;
      stick.current = true;
    } else {
      frozen.current = lines.current;
    }
    setPaused(!paused);
  };

  // Rows are in the page only while in view: a line is found in the list, and the list
  // scrolled to it.
  const scrollToLine = (key: string): boolean => {
    const i = rowsRef.current.findIndex((l) => l.key === key);
    if (i < 0) return false;
    stick.current = false;
    virtualizer.scrollToIndex(i, { align: "center" });
    setHighlight(key);
    return true;
  };

  const findSeq = (seq: bigint): LogLine | undefined =>
    lines.current.find(
      (l) => selected.includes(l.agent) && (l.gap ? l.gap.fromSeq <= seq && seq <= l.gap.toSeq : l.seq === seq),
    );

  const jump = (e: FormEvent) => {
    e.preventDefault();
    let seq: bigint;
    try {
      seq = BigInt(jumpText.trim());
    } catch {
      return;
    }
    if (seq < 1n || selected.length === 0) return;
    if (paused) togglePause();
    const hit = findSeq(seq);
    if (hit) {
      // Rendered after the state change above when paused; scroll once it is.
      window.setTimeout(() => scrollToLine(hit.key), 0);
      return;
    }
    // Not in the buffer: restart every selected agent's stream just before that seq.
    pendingJump.current = seq;
    stick.current = false;
    selected.forEach((id, i) => {
      followers.current.get(id)?.stop();
      dropAgentLines(id);
      lastShown.current.set(id, seq - 1n);
      startFollower(id, i >= MAX_LOG_STREAMS, seq - 1n, 0);
    });
    setVersion((v) => v + 1);
  };

  const shown = paused && frozen.current ? frozen.current : lines.current;
  const q = search.trim();
  // The lines that contain the search, by index in `shown`.
  const matches = useMemo(() => {
    if (!q) return [] as number[];
    const lq = q.toLowerCase();
    const out: number[] = [];
    shown.forEach((l, i) => {
      if (!l.gap && (l.lower ??= l.text.toLowerCase()).includes(lq)) out.push(i);
    });
    return out;
  }, [shown, q]);
  const visible = useMemo(
    () => (q && onlyMatching ? shown.filter((l) => l.gap || (l.lower ??= l.text.toLowerCase()).includes(q.toLowerCase())) : shown),
    [shown, q, onlyMatching],
  );
  const rowsRef = useRef<LogLine[]>(visible);
  rowsRef.current = visible;
  const virtualizer = useVirtualizer({
    count: visible.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 18,
    overscan: 40,
    getItemKey: (i) => visible[i]?.key ?? i,
  });
  useEffect(() => setMatch(0), [q]);
  const goToMatch = (n: number) => {
    if (matches.length === 0) return;
    const k = ((n % matches.length) + matches.length) % matches.length;
    setMatch(k);
    scrollToLine(shown[matches[k]].key);
  };

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (pendingJump.current !== undefined) {
      const hit = findSeq(pendingJump.current);
      if (hit && scrollToLine(hit.key)) pendingJump.current = undefined;
      return;
    }
    if (stick.current && !paused && visible.length > 0) virtualizer.scrollToIndex(visible.length - 1, { align: "end" });
  });

  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
  };

  const allLive = selected.length > 0 && selected.every((id) => statuses[id] === "live");
  const statusText = selected.length === 0 ? "idle" : allLive ? "live" : "reconnecting";

  const toggleAgent = (id: string, on: boolean) => {
    const next = on ? [...selected.filter((x) => x !== id), id] : selected.filter((x) => x !== id);
    navigate(next.length ? `#/logs?agents=${next.map(encodeURIComponent).join(",")}` : "#/logs");
  };

  const known = agentsQ.data ?? [];
  const ids = [...new Set([...known.map((a) => a.id), ...selected])].sort();
  const stateOf = new Map(known.map((a) => [a.id, a.state] as const));

  return (
    <div className="view view-logs" data-testid="view-logs">
      <header className="view-head">
        <h1>Logs</h1>
        <div className="toolbar">
          <span
            className={`chip chip-${statusText === "live" ? "green" : statusText === "idle" ? "grey" : "amber"}`}
            data-testid="logs-status"
            title={selected.map((id) => `${id}: ${statuses[id] ?? "connecting"}`).join("\n")}
          >
            {statusText}
          </span>
          <input
            type="search"
            placeholder="Search (substring)"
            value={search}
            onChange={(e) => setSearch(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter") goToMatch(match + (e.shiftKey ? -1 : 1));
            }}
            data-testid="logs-search"
          />
          {q && (
            <>
              <span className="muted small" data-testid="logs-matches">
                {matches.length ? `${match + 1} of ${fmtInt(matches.length)}` : "no match"}
              </span>
              <button className="btn btn-small" disabled={!matches.length} onClick={() => goToMatch(match - 1)} data-testid="logs-match-prev">
                ↑
              </button>
              <button className="btn btn-small" disabled={!matches.length} onClick={() => goToMatch(match + 1)} data-testid="logs-match-next">
                ↓
              </button>
              <label className="check small">
                <input type="checkbox" checked={onlyMatching} onChange={(e) => setOnlyMatching(e.target.checked)} data-testid="logs-only-matching" />
                only these
              </label>
            </>
          )}
          <form className="inline-form" onSubmit={jump}>
            <input
              className="narrow"
              inputMode="numeric"
              placeholder="seq"
              value={jumpText}
              onChange={(e) => setJumpText(e.target.value)}
              data-testid="logs-jump-seq"
            />
            <button className="btn" type="submit" data-testid="logs-jump-go">
              Jump
            </button>
          </form>
          <button
            className={`btn ${paused ? "btn-primary" : ""}`}
            onClick={togglePause}
            aria-pressed={paused}
            data-testid="logs-pause"
          >
            {paused ? `Resume${arrivedWhilePaused.current ? ` (${fmtInt(arrivedWhilePaused.current)} new)` : ""}` : "Pause"}
          </button>
        </div>
      </header>

      <div className="logs-layout">
        <aside className="logs-agents">
          <div className="muted small">Follow</div>
          {ids.length === 0 && <div className="muted small">No agents yet.</div>}
          {ids.map((id) => {
            const st = stateOf.get(id);
            return (
              <label key={id} className="check" title={st !== undefined ? enumShort(AgentStateSchema, st) : ""}>
                <input
                  type="checkbox"
                  checked={selected.includes(id)}
                  onChange={(e) => toggleAgent(id, e.target.checked)}
                  data-testid={`logs-agent-${id}`}
                />
                <span className="agent-swatch" style={{ background: `hsl(${agentHue(id)} 55% 45%)` }} />
                {id}
                {selected.includes(id) && statuses[id] !== "live" && <span className="dot dot-amber" />}
              </label>
            );
          })}
          {selected.length > MAX_LOG_STREAMS && (
            <p className="muted small">
              Beyond {MAX_LOG_STREAMS} agents, logs are polled each second (the browser allows few connections per
              server).
            </p>
          )}
        </aside>
        <div className="logs-pane" ref={scroller} onScroll={onScroll}>
          {selected.length === 0 && <div className="empty">Tick one or more agents to follow their logs.</div>}
          {selected.length > 0 && shown.length === 0 && <div className="empty">No log records yet.</div>}
          <div className="logs-rows" style={{ height: virtualizer.getTotalSize() }} data-testid="logs-rows" data-count={visible.length}>
            {virtualizer.getVirtualItems().map((vi) => {
              const l = visible[vi.index];
              return (
                <div
                  key={vi.key}
                  data-index={vi.index}
                  ref={virtualizer.measureElement}
                  className="logs-row"
                  style={{ transform: `translateY(${vi.start}px)` }}
                >
                  {l.gap ? (
                    <GapRow line={l} highlighted={highlight === l.key} />
                  ) : (
                    <LogRow line={l} query={q} highlighted={highlight === l.key} />
                  )}
                </div>
              );
            })}
          </div>
        </div>
      </div>
      <div className="muted small logs-foot" data-testid="logs-foot">
        {fmtInt(visible.length)} of {fmtInt(lines.current.length)} lines
        {paused && " · paused: new lines are buffered"}
        {lines.current.length >= MAX_LINES && ` · keeping the last ${fmtInt(MAX_LINES)}`}
      </div>
    </div>
  );
}

const STREAM_CLASS: Record<number, string> = {
  [LogStream.STDOUT]: "out",
  [LogStream.STDERR]: "err",
  [LogStream.SYSTEM]: "sys",
};

const LogRow = memo(function LogRow(props: { line: LogLine; query: string; highlighted: boolean }) {
  const l = props.line;
  return (
    <div
      className={`log-line log-${STREAM_CLASS[l.stream] ?? "out"}${props.highlighted ? " log-hl" : ""}`}
      data-testid="log-line"
      data-agent={l.agent}
      data-seq={String(l.seq)}
      data-key={l.key}
    >
      <span className="log-time" title={`${fmtAbsolute(l.timeMs)} · seq ${l.seq}`}>
        {fmtClock(l.timeMs)}
      </span>
      <span className="log-agent" style={{ color: `hsl(${agentHue(l.agent)} 55% 40%)` }}>
        {l.agent}
      </span>
      <span className="log-text">
        {/* A program's output may hold control and bidi characters: shown as escapes, tabs kept. */}
        {splitMatches(l.text, props.query).map((p, i) =>
          p.hit ? <mark key={i}>{visibleText(p.text, "many")}</mark> : visibleText(p.text, "many"),
        )}
        {l.truncated && <span className="muted" title="continues in the next record"> ↩</span>}
      </span>
    </div>
  );
});

const GapRow = memo(function GapRow(props: { line: LogLine; highlighted: boolean }) {
  const g = props.line.gap!;
  return (
    <div
      className={`log-gap${props.highlighted ? " log-hl" : ""}`}
      data-testid="log-gap"
      data-agent={props.line.agent}
      data-seq={String(g.fromSeq)}
      data-from={String(g.fromSeq)}
      data-to={String(g.toSeq)}
      data-key={props.line.key}
    >
      ⋯ {props.line.agent}: records {String(g.fromSeq)}–{String(g.toSeq)} are missing (
      {enumShort(LogGapReasonSchema, g.reason).toLowerCase().replace(/_/g, " ")}
      {g.bytesLost > 0n ? `, ${fmtInt(g.bytesLost)} bytes lost` : ""}) ⋯
    </div>
  );
});
