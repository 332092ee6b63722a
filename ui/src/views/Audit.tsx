// Audit: the append-only, hash-chained record of every side effect, grant and
// administrative action, newest first, with a substring filter over every field and a
// check of the hash chain (VerifyAuditChain).
import { useEffect, useState } from "react";
import { act, api, listAll, noteError, useEvents } from "../api";
import { RelTime } from "../components/RelTime";
import { enumShort, fmtInt } from "../format";
import { ActorKindSchema, type AuditEntry, type VerifyAuditChainResponse } from "../gen/agentd/v1/audit_pb";
import { href } from "../route";

/** Entries read at most (the newest are kept). */
const MAX_ENTRIES = 50000;
/** Rows rendered at most; the filter narrows down the rest. */
const MAX_ROWS = 2000;

function haystack(e: AuditEntry): string {
  return [
    String(e.seq),
    e.actor?.id ?? "",
    e.actor ? enumShort(ActorKindSchema, e.actor.kind) : "",
    e.action,
    e.target,
    e.goalId,
    e.taskId,
    ...Object.entries(e.details).map(([k, v]) => `${k}=${v}`),
  ]
    .join(" ")
    .toLowerCase();
}

export function AuditView() {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [loadError, setLoadError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [reload, setReload] = useState(0);
  const [filter, setFilter] = useState("");
  const [verify, setVerify] = useState<VerifyAuditChainResponse>();
  const [verifying, setVerifying] = useState(false);

  useEffect(() => {
    let live = true;
    listAll((t) => api.audit.listAuditEntries({ pageSize: 1000, pageToken: t }), (r) => r.entries, 1_000_000).then(
      (all) => {
        if (!live) return;
        setEntries(all.slice(-MAX_ENTRIES));
        setLoadError(undefined);
        setLoading(false);
      },
      (e: unknown) => {
        if (!live) return;
        setLoadError(noteError(e).rawMessage);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [reload]);

  // New entries arrive as audit.appended events carrying the entry.
  useEvents((e) => {
    if (e === null) {
      setReload((n) => n + 1);
      return;
    }
    if (e.payload.case === "auditEntry") {
      const a = e.payload.value;
      setEntries((prev) => {
        const last = prev[prev.length - 1];
        if (last && a.seq <= last.seq) return prev;
        const next = [...prev, a];
        return next.length > MAX_ENTRIES ? next.slice(next.length - MAX_ENTRIES) : next;
      });
    }
  });

  const runVerify = async () => {
    setVerifying(true);
    const r = await act("verify audit chain", () => api.audit.verifyAuditChain({}));
    setVerifying(false);
    if (r) setVerify(r);
  };

  const q = filter.trim().toLowerCase();
  const matched = (q ? entries.filter((e) => haystack(e).includes(q)) : entries).slice().reverse();
  const rows = matched.slice(0, MAX_ROWS);

  return (
    <div className="view" data-testid="view-audit">
      <header className="view-head">
        <h1>
          Audit log <span className="muted">{loading ? "…" : fmtInt(entries.length)}</span>
        </h1>
        <div className="toolbar">
          <input
            type="search"
            placeholder="Filter: actor, action, target, goal, details…"
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            data-testid="audit-filter"
          />
          <button className="btn" onClick={() => void runVerify()} disabled={verifying} data-testid="audit-verify">
            {verifying ? "Verifying…" : "Verify chain"}
          </button>
        </div>
      </header>
      {loadError && <div className="banner banner-error">{loadError}</div>}
      {verify && (
        <div
          className={`banner ${verify.ok ? "banner-ok" : "banner-error"}`}
          data-testid="audit-verify-result"
          data-ok={verify.ok ? "true" : "false"}
        >
          {verify.ok ? (
            <>
              Chain ok: {fmtInt(verify.entriesChecked)} entries checked; last hash <code>{verify.lastHash.slice(0, 16)}…</code>
            </>
          ) : (
            <>
              Chain INVALID at entry #{String(verify.firstBrokenSeq)}: {verify.reason} ({fmtInt(verify.entriesChecked)} entries
              checked)
            </>
          )}
        </div>
      )}
      <div className="table-wrap">
        <table className="table" data-testid="audit-table">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>When</th>
              <th>Actor</th>
              <th>Action</th>
              <th>Target</th>
              <th>Goal / task</th>
              <th>Details</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => {
              const broken = verify && !verify.ok && e.seq === verify.firstBrokenSeq;
              return (
                <tr key={String(e.seq)} data-testid="audit-row" data-seq={String(e.seq)} className={broken ? "row-bad" : undefined}>
                  <td className="num">{String(e.seq)}</td>
                  <td>
                    <RelTime ts={e.time} />
                  </td>
                  <td>
                    {e.actor && <span className="muted small">{enumShort(ActorKindSchema, e.actor.kind).toLowerCase()} </span>}
                    {e.actor?.id}
                  </td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td className="wrap-cell">{e.target}</td>
                  <td className="small">
                    {e.goalId && <a href={href("goals", e.goalId)}>{e.goalId}</a>}
                    {e.taskId && e.taskId !== e.goalId && <div className="muted">{e.taskId}</div>}
                  </td>
                  <td className="small wrap-cell" title={`hash ${e.hash}\nprev ${e.prevHash}`}>
                    {Object.entries(e.details)
                      .sort(([a], [b]) => a.localeCompare(b))
                      .map(([k, v]) => (
                        <span key={k} className="kvpair">
                          {k}=<code>{v}</code>
                        </span>
                      ))}
                  </td>
                </tr>
              );
            })}
            {!loading && rows.length === 0 && (
              <tr>
                <td colSpan={7} className="empty">
                  {q ? "No entry matches the filter." : "The audit log is empty."}
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {matched.length > MAX_ROWS && (
        <div className="muted small">
          Showing the newest {fmtInt(MAX_ROWS)} of {fmtInt(matched.length)} matching entries; narrow the filter to see
          older ones.
        </div>
      )}
    </div>
  );
}
