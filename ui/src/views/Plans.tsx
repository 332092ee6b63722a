// Plans: what agents propose to do, step by step, and the person's approval. Plans
// awaiting approval (PROPOSED) are listed first, then past ones newest first. The
// selected plan shows its steps with their roles, dependencies and estimates, the
// plan's total estimate, its DAG, and approve / reject (the reason goes back to the
// proposing agent, which may propose a revision).
import { useState } from "react";
import { act, api, kinds, listAll, toastInfo, useLiveQuery } from "../api";
import { PlanDag } from "../components/PlanDag";
import { PlanEditor } from "../components/PlanEditor";
import { RelTime } from "../components/RelTime";
import { StatusChip } from "../components/StatusChip";
import { durMs, enumName, fmtDuration, fmtInt, fmtUsd, tsMs, visible } from "../format";
import { PlanStatus, PlanStatusSchema, type Plan, type PlanEstimate } from "../gen/agentd/v1/plans_pb";
import { TaskStatusSchema } from "../gen/agentd/v1/tasks_pb";
import { href, navigate } from "../route";

function newestFirst(a: Plan, b: Plan): number {
  return (tsMs(b.createTime) ?? 0) - (tsMs(a.createTime) ?? 0) || b.id.localeCompare(a.id);
}

export function PlansView({ selected }: { selected?: string }) {
  const q = useLiveQuery(
    () => listAll((t) => api.plans.listPlans({ pageSize: 1000, pageToken: t }), (r) => r.plans, 3000),
    [],
    { match: kinds("plan.") },
  );
  const plans = q.data ?? [];
  const pending = plans.filter((p) => p.status === PlanStatus.PROPOSED).sort(newestFirst);
  const past = plans.filter((p) => p.status !== PlanStatus.PROPOSED).sort(newestFirst);
  const sel = plans.find((p) => p.id === selected);

  const row = (p: Plan) => (
    <li
      key={p.id}
      className={p.id === selected ? "selected" : undefined}
      data-testid={`plan-row-${p.id}`}
      data-status={enumName(PlanStatusSchema, p.status)}
      onClick={() => navigate(href("plans", p.id))}
    >
      <div className="row-main">
        <span className="ellipsis">
          <code>{p.id}</code> {p.summary ? `— ${visible(p.summary)}` : ""}
        </span>
        <StatusChip schema={PlanStatusSchema} value={p.status} />
      </div>
      <div className="row-sub muted small">
        {p.steps.length} steps · rev {p.revision} · by {p.proposer || "—"} · goal <code>{p.goalId}</code> ·{" "}
        <RelTime ts={p.createTime} />
      </div>
    </li>
  );

  return (
    <div className="view" data-testid="view-plans">
      <header className="view-head">
        <h1>Plans</h1>
      </header>
      {q.error && <div className="banner banner-error">{q.error.rawMessage}</div>}
      <div className="split">
        <section className="card list-pane">
          <h2>
            Awaiting approval <span className="muted">{q.data ? pending.length : "…"}</span>
          </h2>
          {q.data && pending.length === 0 && <div className="empty">Nothing to approve.</div>}
          <ul className="rows" data-testid="plans-pending">
            {pending.map(row)}
          </ul>
          <h2>
            Past plans <span className="muted">{q.data ? past.length : "…"}</span>
          </h2>
          <ul className="rows" data-testid="plans-past">
            {past.map(row)}
          </ul>
        </section>
        <div className="detail-pane">
          {sel ? (
            <PlanDetail key={sel.id} plan={sel} onDecided={q.refetch} />
          ) : (
            <div className="empty card">{selected && q.data ? `Plan ${selected} not found.` : "Select a plan."}</div>
          )}
        </div>
      </div>
    </div>
  );
}

function estimateText(e: PlanEstimate | undefined): { tokens: string; cost: string; duration: string } {
  return {
    tokens: e && e.tokens > 0n ? fmtInt(e.tokens) : "—",
    cost: e && e.costUsd > 0 ? fmtUsd(e.costUsd) : "—",
    duration: e?.duration ? fmtDuration(durMs(e.duration)) : "—",
  };
}

function PlanDetail({ plan: p, onDecided }: { plan: Plan; onDecided: () => void }) {
  const [reason, setReason] = useState("");
  const [editing, setEditing] = useState(false);
  const [busy, setBusy] = useState(false);
  // Statuses of the tasks the steps became, once the plan executes.
  const executing = p.steps.some((s) => s.taskId);
  const tasks = useLiveQuery(
    () =>
      executing
        ? listAll((t) => api.tasks.listTasks({ goalId: p.goalId, pageSize: 1000, pageToken: t }), (r) => r.tasks)
        : Promise.resolve([]),
    [p.goalId, executing],
    { match: (e) => e.kind.startsWith("task.") && e.goalId === p.goalId },
  );
  const statusOf = new Map((tasks.data ?? []).map((t) => [t.id, t.status] as const));
  const proposed = p.status === PlanStatus.PROPOSED;

  // The daemon sums the steps' estimates; summed here too should it leave them out.
  const total: PlanEstimate | undefined =
    p.totalEstimate ??
    ({
      tokens: p.steps.reduce((a, s) => a + (s.estimate?.tokens ?? 0n), 0n),
      costUsd: p.steps.reduce((a, s) => a + (s.estimate?.costUsd ?? 0), 0),
    } as PlanEstimate);
  const tot = estimateText(total);

  const approve = async () => {
    setBusy(true);
    const r = await act("approve plan", () => api.plans.approvePlan({ planId: p.id }));
    setBusy(false);
    if (r) {
      toastInfo(`Plan ${p.id} approved`);
      onDecided();
    }
  };
  const reject = async () => {
    setBusy(true);
    const r = await act("reject plan", () => api.plans.rejectPlan({ planId: p.id, reason: reason.trim() }));
    setBusy(false);
    if (r) {
      toastInfo(`Plan ${p.id} rejected`);
      setReason("");
      onDecided();
    }
  };

  return (
    <div className="plan-detail" data-testid={`plan-detail-${p.id}`}>
      <section className="card">
        <div className="detail-head">
          <h2>
            Plan <code>{p.id}</code> <StatusChip schema={PlanStatusSchema} value={p.status} testId="plan-status" />
          </h2>
        </div>
        {p.summary && <p className="pre-line">{visible(p.summary, "many")}</p>}
        <dl className="kv">
          <dt>Goal</dt>
          <dd>
            <a href={href("goals", p.goalId)}>{p.goalId}</a>
          </dd>
          <dt>Proposed by</dt>
          <dd>
            {p.proposer || "—"} for task <code>{p.taskId}</code>, <RelTime ts={p.createTime} />
          </dd>
          <dt>Revision</dt>
          <dd>
            {p.revision}
            {p.previousPlanId && (
              <>
                {" "}
                (replaces <a href={href("plans", p.previousPlanId)}>{p.previousPlanId}</a>)
              </>
            )}
          </dd>
          {p.decidedBy && (
            <>
              <dt>Decided</dt>
              <dd>
                by {p.decidedBy}, <RelTime ts={p.decideTime} />
              </dd>
            </>
          )}
          {p.rejectionReason && (
            <>
              <dt>Rejected because</dt>
              <dd className="text-red">{p.rejectionReason}</dd>
            </>
          )}
          <dt>Estimate</dt>
          <dd data-testid="plan-total-estimate">
            {tot.tokens} tokens · {tot.cost} · {tot.duration}
          </dd>
        </dl>

        <div className="decide">
          <button className="btn btn-primary" disabled={!proposed || busy} onClick={() => void approve()} data-testid="plan-approve">
            Approve
          </button>
          <button className="btn" disabled={!proposed || busy} onClick={() => setEditing(!editing)} data-testid="plan-edit">
            {editing ? "Stop editing" : "Edit…"}
          </button>
          <input
            className="grow"
            placeholder="Reason for rejecting (sent to the proposing agent)"
            value={reason}
            disabled={!proposed}
            onChange={(e) => setReason(e.target.value)}
            data-testid="plan-reject-reason"
          />
          <button className="btn btn-danger" disabled={!proposed || busy} onClick={() => void reject()} data-testid="plan-reject">
            Reject
          </button>
        </div>
        {editing && proposed && (
          <PlanEditor
            plan={p}
            onCancel={() => setEditing(false)}
            onDone={() => {
              setEditing(false);
              onDecided();
            }}
          />
        )}
      </section>

      <section className="card">
        <h2>
          Steps <span className="muted">{p.steps.length}</span>
        </h2>
        <div className="table-wrap">
          <table className="table" data-testid="plan-steps">
            <thead>
              <tr>
                <th>Step</th>
                <th>Title</th>
                <th>Role</th>
                <th>After</th>
                <th className="num">Tokens</th>
                <th className="num">Cost</th>
                <th className="num">Duration</th>
                <th>Task</th>
              </tr>
            </thead>
            <tbody>
              {p.steps.map((s) => {
                const e = estimateText(s.estimate);
                const st = s.taskId ? statusOf.get(s.taskId) : undefined;
                return (
                  <tr key={s.id} data-testid={`plan-step-${s.id}`}>
                    <td>
                      <code>{s.id}</code>
                    </td>
                    <td title={visible(s.instructions, "many")}>{visible(s.title)}</td>
                    <td>{visible(s.role)}</td>
                    <td>{s.deps.length ? s.deps.join(", ") : "—"}</td>
                    <td className="num">{e.tokens}</td>
                    <td className="num">{e.cost}</td>
                    <td className="num">{e.duration}</td>
                    <td>
                      {s.taskId ? (
                        <>
                          <a href={href("transcript", s.taskId)} title="the task's transcript">
                            <code>{s.taskId}</code>
                          </a>{" "}
                          {st !== undefined && <StatusChip schema={TaskStatusSchema} value={st} />}
                        </>
                      ) : (
                        "—"
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
            <tfoot>
              <tr>
                <th colSpan={4}>Total</th>
                <th className="num">{tot.tokens}</th>
                <th className="num">{tot.cost}</th>
                <th className="num">{tot.duration}</th>
                <th />
              </tr>
            </tfoot>
          </table>
        </div>
        {p.steps.length > 0 && <PlanDag plans={[p]} taskStatus={(id) => statusOf.get(id)} />}
      </section>
    </div>
  );
}
