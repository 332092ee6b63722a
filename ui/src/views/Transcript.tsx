// A task's transcript: what its agent was told, what the model said and what each tool
// call did, attempt by attempt, live while the task runs (TaskService.WatchTranscript from
// a cursor; a dropped stream resumes after the last entry shown). A tool call's start and
// end are one card; results and diffs fold; search highlights and jumps between matches.
import { useEffect, useMemo, useRef, useState } from "react";
import { Code } from "@connectrpc/connect";
import { api, backoffMs, errorText, noteError } from "../api";
import { durMs, enumShort, fmtClock, fmtDuration, fmtUsd, splitMatches, tsMs, visible } from "../format";
import { ConsentStatusSchema } from "../gen/agentd/v1/consent_pb";
import {
  TaskFailureCodeSchema,
  TaskStatus,
  TaskStatusSchema,
  ToolCallPhase,
  TranscriptNoteKindSchema,
  type TranscriptEntry,
  type TranscriptToolCall,
} from "../gen/agentd/v1/tasks_pb";
import { href } from "../route";

type Link = "loading" | "live" | "ended" | "reconnecting";

/**
 * Follows a task's transcript from the start; returns what has arrived, the model's text
 * streaming now (live pieces since the last stored turn), and the link.
 */
function useTranscript(taskId: string): { entries: TranscriptEntry[]; streaming: string; link: Link; error?: string } {
  const [entries, setEntries] = useState<TranscriptEntry[]>([]);
  const [streaming, setStreaming] = useState("");
  const [link, setLink] = useState<Link>("loading");
  const [error, setError] = useState<string>();
  useEffect(() => {
    setEntries([]);
    setStreaming("");
    setLink("loading");
    setError(undefined);
    const ctrl = new AbortController();
    let cursor = 0n;
    void (async () => {
      let attempt = 0;
      while (!ctrl.signal.aborted) {
        try {
          const batch: TranscriptEntry[] = [];
          let flush = 0;
          // Entries arrive in bursts (a whole transcript at first): one render a frame.
          const push = () => {
            flush = 0;
            const take = batch.splice(0);
            if (take.length > 0) setEntries((prev) => prev.concat(take));
          };
          setStreaming(""); // a new stream sends the text of the call under way from its start
          for await (const r of api.tasks.watchTranscript({ taskId, afterSeq: cursor }, { signal: ctrl.signal })) {
            if (!r.entry) continue;
            const e = r.entry;
            if (e.live) {
              // Text as it streams: not stored, not a cursor. "discarded" starts it over.
              const t = e.entry.case === "modelTurn" ? e.entry.value : undefined;
              if (t?.error === "discarded") setStreaming("");
              else if (t) setStreaming((s) => s + t.text);
              setLink("live");
              continue;
            }
            cursor = e.seq;
            if (e.entry.case === "modelTurn" || e.entry.case === "outcome") setStreaming("");
            batch.push(e);
            attempt = 0;
            setLink("live");
            if (!flush) flush = window.requestAnimationFrame(push);
          }
          if (flush) window.cancelAnimationFrame(flush);
          push();
          setLink("ended"); // the task ended and everything was sent
          return;
        } catch (e) {
          if (ctrl.signal.aborted) return;
          const ce = noteError(e);
          if (ce.code === Code.NotFound || ce.code === Code.InvalidArgument || ce.code === Code.Unauthenticated) {
            setError(errorText(ce));
            setLink("ended");
            return;
          }
          setLink("reconnecting");
          await new Promise((res) => window.setTimeout(res, backoffMs(attempt++)));
        }
      }
    })();
    return () => ctrl.abort();
  }, [taskId]);
  return { entries, streaming, link, error };
}

/** A tool call's start and end, merged; the end is missing while it runs. */
interface Call {
  started?: TranscriptEntry;
  finished?: TranscriptEntry;
}

type Row =
  | { kind: "entry"; entry: TranscriptEntry }
  | { kind: "call"; id: string; call: Call; seq: bigint };

function rowsOf(entries: TranscriptEntry[]): Row[] {
  const rows: Row[] = [];
  const calls = new Map<string, Call>();
  for (const e of entries) {
    if (e.entry.case === "toolCall") {
      const tc = e.entry.value;
      const key = `${e.attempt}/${tc.toolCallId}`;
      let c = calls.get(key);
      if (!c) {
        c = {};
        calls.set(key, c);
        rows.push({ kind: "call", id: key, call: c, seq: e.seq });
      }
      if (tc.phase === ToolCallPhase.STARTED) c.started = e;
      else c.finished = e;
      continue;
    }
    rows.push({ kind: "entry", entry: e });
  }
  return rows;
}

/** The text search looks in, per row. */
function searchText(r: Row): string {
  if (r.kind === "call") {
    const s = r.call.started?.entry.value as TranscriptToolCall | undefined;
    const f = r.call.finished?.entry.value as TranscriptToolCall | undefined;
    return [s?.tool, s?.argumentsJson, f?.result, f?.diff, f?.summary].join("\n");
  }
  const e = r.entry.entry;
  switch (e.case) {
    case "prompt":
      return `${e.value.systemPrompt}\n${e.value.instructions}`;
    case "modelTurn":
      return `${e.value.text}\n${e.value.reasoning}\n${e.value.error}\n${e.value.toolCalls.map((c) => `${c.tool} ${c.argumentsJson}`).join("\n")}`;
    case "note":
      return e.value.text;
    case "consent":
      return e.value.summary;
    case "outcome":
      return e.value.summary;
    default:
      return "";
  }
}

function Hl({ text, query }: { text: string; query: string }) {
  return (
    <>
      {splitMatches(visible(text, "many"), query).map((p, i) =>
        p.hit ? (
          <mark key={i} className="hit">
            {p.text}
          </mark>
        ) : (
          <span key={i}>{p.text}</span>
        ),
      )}
    </>
  );
}

function Pre({ text, query, testid }: { text: string; query: string; testid?: string }) {
  return (
    <pre className="tx-pre" data-testid={testid}>
      <Hl text={text} query={query} />
    </pre>
  );
}

/** A unified diff, each line coloured by what it is. */
function Diff({ text, query }: { text: string; query: string }) {
  return (
    <pre className="tx-pre tx-diff" data-testid="tx-diff">
      {text.replace(/\n$/, "").split("\n").map((line, i) => {
        const cls = line.startsWith("+++") || line.startsWith("---")
          ? "diff-file"
          : line.startsWith("@@")
            ? "diff-hunk"
            : line.startsWith("+")
              ? "diff-add"
              : line.startsWith("-")
                ? "diff-del"
                : undefined;
        return (
          <div key={i} className={cls}>
            <Hl text={line || " "} query={query} />
          </div>
        );
      })}
    </pre>
  );
}

function When({ e }: { e: TranscriptEntry }) {
  const ms = tsMs(e.time);
  return <span className="muted small tx-when">{ms !== undefined ? fmtClock(ms) : ""}</span>;
}

function CallCard({ call, query }: { call: Call; query: string }) {
  const s = call.started?.entry.value as TranscriptToolCall | undefined;
  const f = call.finished?.entry.value as TranscriptToolCall | undefined;
  const tool = s?.tool ?? f?.tool ?? "?";
  const state = !f ? "running" : f.ok ? "ok" : "failed";
  const first = call.started ?? call.finished;
  return (
    <div className={`tx-card tx-call tx-${state}`} data-testid="tx-call" data-tool={tool} data-state={state}>
      <div className="tx-head">
        {first && <When e={first} />}
        <span className="tx-kind">tool</span>
        <strong>{visible(tool)}</strong>
        {s?.summary && <span className="muted"> {visible(s.summary)}</span>}
        <span className={`tx-state tx-state-${state}`}>
          {state}
          {f && <> · {fmtDuration(durMs(f.duration))}</>}
        </span>
      </div>
      {s?.argumentsJson && (
        <details className="tx-fold" open={false}>
          <summary>arguments</summary>
          <Pre text={prettyJson(s.argumentsJson)} query={query} testid="tx-args" />
        </details>
      )}
      {f?.diff && (
        <details className="tx-fold" open>
          <summary>diff</summary>
          <Diff text={f.diff} query={query} />
        </details>
      )}
      {f && (
        <details className="tx-fold" open={!f.ok}>
          <summary>{f.ok ? "result" : "error"}</summary>
          <Pre text={f.result} query={query} testid="tx-result" />
        </details>
      )}
    </div>
  );
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function EntryCard({ e, query }: { e: TranscriptEntry; query: string }) {
  const x = e.entry;
  switch (x.case) {
    case "prompt":
      return (
        <div className="tx-card tx-prompt" data-testid="tx-prompt">
          <div className="tx-head">
            <When e={e} />
            <span className="tx-kind">attempt {e.attempt}</span>
            <strong>{visible(e.agentId)}</strong>
            <span className="muted">
              {" "}
              · {visible(x.value.provider)}/{visible(x.value.model)} · tools: {visible(x.value.tools.join(", "))}
            </span>
          </div>
          <details className="tx-fold">
            <summary>system prompt</summary>
            <Pre text={x.value.systemPrompt} query={query} />
          </details>
          <div className="tx-label">task</div>
          <Pre text={x.value.instructions} query={query} testid="tx-instructions" />
        </div>
      );
    case "modelTurn": {
      const t = x.value;
      return (
        <div className={`tx-card tx-turn${t.error ? " tx-failed" : ""}`} data-testid="tx-turn">
          <div className="tx-head">
            <When e={e} />
            <span className="tx-kind">model</span>
            {t.error ? (
              <span className="text-red">failed after {t.attempts} attempt(s)</span>
            ) : (
              <span className="muted" data-testid="tx-turn-cost">
                {String(t.promptTokens)}+{String(t.completionTokens)} tokens · {fmtUsd(t.costUsd)} ·{" "}
                {fmtDuration(durMs(t.latency))}
                {t.attempts > 1 && <> · {t.attempts} attempts</>}
              </span>
            )}
          </div>
          {t.retryReasons.map((r, i) => (
            <div key={i} className="task-note text-amber">
              retried: {visible(r)}
            </div>
          ))}
          {t.error && <Pre text={t.error} query={query} />}
          {t.reasoning && (
            <details className="tx-fold">
              <summary>reasoning</summary>
              <Pre text={t.reasoning} query={query} />
            </details>
          )}
          {t.text && <Pre text={t.text} query={query} testid="tx-text" />}
          {t.toolCalls.length > 0 && (
            <div className="muted small">calls {visible(t.toolCalls.map((c) => c.tool).join(", "))}</div>
          )}
        </div>
      );
    }
    case "note":
      return (
        <div className="tx-card tx-note" data-testid="tx-note">
          <div className="tx-head">
            <When e={e} />
            <span className="tx-kind">{enumShort(TranscriptNoteKindSchema, x.value.kind).toLowerCase().replace(/_/g, " ")}</span>
          </div>
          <Pre text={x.value.text} query={query} />
        </div>
      );
    case "consent":
      return (
        <div className="tx-card tx-consent" data-testid="tx-consent">
          <div className="tx-head">
            <When e={e} />
            <span className="tx-kind">consent</span>
            <strong>{enumShort(ConsentStatusSchema, x.value.status).toLowerCase()}</strong>
            {x.value.decidedBy && <span className="muted"> by {visible(x.value.decidedBy)}</span>}
          </div>
          <Pre text={x.value.summary} query={query} />
        </div>
      );
    case "outcome": {
      const o = x.value;
      const tone = o.status === TaskStatus.COMPLETED ? "green" : o.status === TaskStatus.BLOCKED ? "amber" : "red";
      return (
        <div className={`tx-card tx-outcome tx-outcome-${tone}`} data-testid="tx-outcome" data-status={enumShort(TaskStatusSchema, o.status)}>
          <div className="tx-head">
            <When e={e} />
            <span className="tx-kind">attempt {e.attempt}</span>
            <strong>{enumShort(TaskStatusSchema, o.status).toLowerCase()}</strong>
            {o.failureCode !== 0 && (
              <span className="muted"> ({enumShort(TaskFailureCodeSchema, o.failureCode).toLowerCase().replace(/_/g, " ")})</span>
            )}
          </div>
          {o.summary && <Pre text={o.summary} query={query} />}
        </div>
      );
    }
    default:
      return null;
  }
}

export function TranscriptView({ taskId }: { taskId?: string }) {
  if (!taskId) {
    return (
      <div className="view" data-testid="view-transcript">
        <h1>Transcript</h1>
        <div className="card muted">Open a task from a goal to see its transcript.</div>
      </div>
    );
  }
  return <Transcript key={taskId} taskId={taskId} />;
}

function Transcript({ taskId }: { taskId: string }) {
  const { entries, streaming, link, error } = useTranscript(taskId);
  const [query, setQuery] = useState("");
  const [current, setCurrent] = useState(0);
  const rows = useMemo(() => rowsOf(entries), [entries]);
  const matches = useMemo(() => {
    if (!query) return [] as number[];
    const q = query.toLowerCase();
    return rows.flatMap((r, i) => (searchText(r).toLowerCase().includes(q) ? [i] : []));
  }, [rows, query]);
  const refs = useRef(new Map<number, HTMLDivElement>());
  const jump = (to: number) => {
    if (matches.length === 0) return;
    const n = ((to % matches.length) + matches.length) % matches.length;
    setCurrent(n);
    refs.current.get(matches[n])?.scrollIntoView({ block: "center" });
  };
  useEffect(() => setCurrent(0), [query]);
  let cost = 0;
  let tokens = 0n;
  for (const e of entries) {
    if (e.entry.case === "modelTurn") {
      cost += e.entry.value.costUsd;
      tokens += e.entry.value.promptTokens + e.entry.value.completionTokens;
    }
  }
  return (
    <div className="view" data-testid="view-transcript">
      <div className="view-head">
        <h1>
          Transcript <span className="muted">{visible(taskId)}</span>
        </h1>
        <span className={`tx-link tx-link-${link}`} data-testid="tx-link">
          {link === "live" ? "● live" : link === "ended" ? "task ended" : link}
        </span>
      </div>
      <div className="tx-bar">
        <span className="muted" data-testid="tx-total">
          {rows.length} steps · {String(tokens)} tokens · {fmtUsd(cost)}
        </span>
        <input
          className="tx-search"
          placeholder="search the transcript"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter") jump(current + (e.shiftKey ? -1 : 1));
          }}
          data-testid="tx-search"
        />
        <span className="muted small" data-testid="tx-matches">
          {query ? `${matches.length ? current + 1 : 0} of ${matches.length}` : ""}
        </span>
        <button className="btn btn-small" disabled={!matches.length} onClick={() => jump(current - 1)}>
          ↑
        </button>
        <button className="btn btn-small" disabled={!matches.length} onClick={() => jump(current + 1)} data-testid="tx-next">
          ↓
        </button>
      </div>
      {error && <div className="card banner-error">{error}</div>}
      {!error && link === "loading" && <div className="card muted">Loading…</div>}
      {!error && link !== "loading" && rows.length === 0 && (
        <div className="card muted">No transcript yet: the task has not been worked on.</div>
      )}
      <div className="tx-list">
        {rows.map((r, i) => (
          <div
            key={r.kind === "call" ? r.id : String(r.entry.seq)}
            ref={(el) => {
              if (el) refs.current.set(i, el);
              else refs.current.delete(i);
            }}
            className={matches[current] === i && query ? "tx-row tx-current" : "tx-row"}
          >
            {r.kind === "call" ? <CallCard call={r.call} query={query} /> : <EntryCard e={r.entry} query={query} />}
          </div>
        ))}
        {streaming && (
          <div className="tx-card tx-turn tx-streaming" data-testid="tx-streaming">
            <div className="tx-head">
              <span className="tx-kind">model</span>
              <span className="muted">writing…</span>
            </div>
            <Pre text={streaming} query={query} />
          </div>
        )}
      </div>
    </div>
  );
}

/** A link to a task's transcript. */
export function TranscriptLink({ taskId }: { taskId: string }) {
  return (
    <a className="btn btn-small" href={href("transcript", taskId)} data-testid={`transcript-link-${taskId}`}>
      Transcript
    </a>
  );
}
