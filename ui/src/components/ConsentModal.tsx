// The consent modal: shown over any view while an agent waits for a person to grant a
// permission (network access, a path outside the workspace, a command off the
// allowlist, opening an editor). Requests queue, oldest first; each shows what is asked,
// its particulars, who asked for which task and goal, and the time left before it
// expires (an expired request counts as denied). Every string a model or a workspace
// could have chosen passes through visible(): a bidi override or a control character in
// an argument is shown as its escape, never acted on.
import { useEffect, useState } from "react";
import { act, api, consentWatcher, toastInfo, useNow, useStore } from "../api";
import { enumShort, fmtDuration, tsMs, visible } from "../format";
import { ConsentDecision, ConsentKindSchema, type ConsentRequest } from "../gen/agentd/v1/consent_pb";
import { href, useRoute } from "../route";
import { RelTime } from "./RelTime";

function byCreateTime(a: ConsentRequest, b: ConsentRequest): number {
  return (tsMs(a.createTime) ?? 0) - (tsMs(b.createTime) ?? 0) || a.id.localeCompare(b.id);
}

export function ConsentModal() {
  const pendingMap = useStore(consentWatcher.pending);
  const pending = [...pendingMap.values()].sort(byCreateTime);
  // The request shown, by id: when another is decided elsewhere or expires, the one in
  // view does not change under the person's hand.
  const [selectedId, setSelectedId] = useState<string>();
  const [reason, setReason] = useState("");
  const [remember, setRemember] = useState(false);
  const [busy, setBusy] = useState(false);
  const now = useNow();

  // "?consent=<id>" in the address (a desktop notification's link) brings that request
  // to the front (each opening has its own address, so the same request twice works).
  const query = useRoute().query;
  const asked = query.get("consent") ?? undefined;
  const opening = query.toString();
  useEffect(() => {
    if (asked) setSelectedId(asked);
  }, [asked, opening]);

  const found = pending.findIndex((p) => p.id === selectedId);
  const i = found >= 0 ? found : 0;
  const currentId = pending[i]?.id;
  // What was typed for one request never carries over to another.
  useEffect(() => {
    setReason("");
    setRemember(false);
  }, [currentId]);

  if (pending.length === 0) return null;
  const c = pending[i]!;
  const select = (next: number) => setSelectedId(pending[next]!.id);
  const deadline = tsMs(c.deadline);
  const left = deadline !== undefined ? deadline - now : undefined;

  const decide = async (decision: ConsentDecision) => {
    setBusy(true);
    const r = await act(decision === ConsentDecision.APPROVE ? "approve consent" : "deny consent", () =>
      api.consent.decideConsentRequest({
        consentRequestId: c.id,
        decision,
        reason,
        rememberForGoal: decision === ConsentDecision.APPROVE && remember,
      }),
    );
    setBusy(false);
    if (r?.consentRequest) {
      consentWatcher.apply(r.consentRequest);
      toastInfo(`${decision === ConsentDecision.APPROVE ? "Approved" : "Denied"}: ${visible(c.summary)}`);
      setReason("");
      setRemember(false);
    }
  };

  const details = Object.entries(c.details).sort(([a], [b]) => a.localeCompare(b));

  return (
    <div className="modal-backdrop">
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="consent-title" data-testid="consent-modal" data-consent-id={c.id}>
        <div className="modal-head">
          <h2 id="consent-title">Permission requested</h2>
          <span className="muted">
            {i + 1} of {pending.length} pending
          </span>
        </div>
        <p className="consent-summary" data-testid="consent-summary">
          {visible(c.summary) || "(no summary)"}
        </p>
        <dl className="kv">
          <dt>Kind</dt>
          <dd>{enumShort(ConsentKindSchema, c.kind)}</dd>
          <dt>Tool</dt>
          <dd>
            <code>{visible(c.tool) || "—"}</code>
          </dd>
          <dt>Agent</dt>
          <dd data-testid="consent-agent">
            <a href={`#/logs?agents=${encodeURIComponent(c.agentId)}`}>{visible(c.agentId) || "—"}</a>
          </dd>
          <dt>Task</dt>
          <dd>{c.taskId ? <code>{visible(c.taskId)}</code> : "—"}</dd>
          <dt>Goal</dt>
          <dd>{c.goalId ? <a href={href("goals", c.goalId)}>{visible(c.goalId)}</a> : "—"}</dd>
          <dt>Asked</dt>
          <dd>
            <RelTime ts={c.createTime} />
          </dd>
          <dt>Deadline</dt>
          <dd data-testid="consent-deadline">
            {left === undefined ? (
              "waits until decided"
            ) : left > 0 ? (
              <span className={left < 30000 ? "text-red" : undefined}>expires in {fmtDuration(left)}</span>
            ) : (
              <span className="text-red">expired (counts as denied)</span>
            )}
          </dd>
        </dl>
        {details.length > 0 && (
          <table className="table details-table" data-testid="consent-details">
            <tbody>
              {details.map(([k, v]) => (
                <tr key={k}>
                  <th>{visible(k)}</th>
                  <td>
                    <code className="wrap">{visible(v)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <div className="form-row">
          <input
            className="grow"
            placeholder="Reason (optional, sent to the agent)"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            data-testid="consent-reason"
          />
        </div>
        <label className="check">
          <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.target.checked)} data-testid="consent-remember" />
          Also approve identical requests for the rest of this goal
        </label>
        <div className="modal-actions">
          {pending.length > 1 && (
            <>
              <button className="btn" disabled={i === 0} onClick={() => select(i - 1)}>
                ‹ Previous
              </button>
              <button className="btn" disabled={i >= pending.length - 1} onClick={() => select(i + 1)}>
                Next ›
              </button>
              <span className="grow" />
            </>
          )}
          <button className="btn btn-danger" disabled={busy} onClick={() => void decide(ConsentDecision.DENY)} data-testid="consent-deny">
            Deny
          </button>
          <button className="btn btn-primary" disabled={busy} onClick={() => void decide(ConsentDecision.APPROVE)} data-testid="consent-approve">
            Approve
          </button>
        </div>
      </div>
    </div>
  );
}
