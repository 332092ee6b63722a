// Goals: submit a goal for the CEO role, follow the goals in the list, and for the
// selected goal watch its task tree and the DAG of its plans live. Cancel, pause and
// resume act on the whole goal; "open in editor" asks (through a consent request) to
// open the goal's workspace in the editor configured as ui.editor on the daemon's host.
import { useState, type FormEvent } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { act, api, kinds, listAll, toastInfo, useLiveQuery } from "../api";
import { PlanDag } from "../components/PlanDag";
import { RelTime } from "../components/RelTime";
import { StatusChip } from "../components/StatusChip";
import { clip, enumName, enumShort, fmtInt, fmtUsd, visible } from "../format";
import type { Event } from "../gen/agentd/v1/events_pb";
import { PlanStatus, PlanStatusSchema, type Plan } from "../gen/agentd/v1/plans_pb";
import {
  ApprovalPolicy,
  ApprovalPolicySchema,
  BlockReason,
  BlockReasonSchema,
  TaskFailureCodeSchema,
  TaskStatus,
  TaskStatusSchema,
  WorkspaceKind,
  WorkspaceKindSchema,
  type SubmitGoalRequestSchema,
  type Task,
} from "../gen/agentd/v1/tasks_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { BudgetScope, type Budget } from "../gen/agentd/v1/usage_pb";
import { href, navigate } from "../route";
import { TranscriptLink } from "./Transcript";

const FINAL = new Set([TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED]);

export function GoalsView({ selected }: { selected?: string }) {
  const goals = useLiveQuery(
    () =>
      listAll((t) => api.tasks.listTasks({ goalsOnly: true, pageSize: 1000, pageToken: t }), (r) => r.tasks, 2000),
    [],
    { match: (e) => e.kind.startsWith("task.") && (e.payload.case !== "task" || e.payload.value.parentId === "") },
  );

  return (
    <div className="view" data-testid="view-goals">
      <header className="view-head">
        <h1>Goals</h1>
      </header>
      <SubmitGoalForm onSubmitted={(id) => navigate(href("goals", id))} />
      <div className="split">
        <section className="card list-pane">
          <h2>
            All goals <span className="muted">{goals.data ? goals.data.length : "…"}</span>
          </h2>
          {goals.error && <div className="text-red">{goals.error.rawMessage}</div>}
          {goals.data?.length === 0 && <div className="empty">No goals yet.</div>}
          <ul className="rows">
            {(goals.data ?? []).map((g) => (
              <li
                key={g.id}
                className={g.id === selected ? "selected" : undefined}
                data-testid={`goal-row-${g.id}`}
                data-status={enumName(TaskStatusSchema, g.status)}
                onClick={() => navigate(href("goals", g.id))}
              >
                <div className="row-main">
                  <span className="ellipsis">{g.title || clip(g.input?.instructions ?? g.id, 60)}</span>
                  <StatusChip schema={TaskStatusSchema} value={g.status} />
                </div>
                <div className="row-sub muted small">
                  <code>{g.id}</code>
                  {g.paused && <span className="chip chip-amber">paused</span>} · <RelTime ts={g.createTime} />
                </div>
              </li>
            ))}
          </ul>
        </section>
        <div className="detail-pane">
          {selected ? <GoalDetail key={selected} goalId={selected} /> : <div className="empty card">Select a goal.</div>}
        </div>
      </div>
    </div>
  );
}

type WsChoice = "auto" | "existing" | "new";

function SubmitGoalForm(props: { onSubmitted: (goalId: string) => void }) {
  const [text, setText] = useState("");
  const [title, setTitle] = useState("");
  const [workspace, setWorkspace] = useState("");
  const [wsKind, setWsKind] = useState<WsChoice>("auto");
  const [approval, setApproval] = useState("");
  const [budgetUsd, setBudgetUsd] = useState("");
  const [budgetTokens, setBudgetTokens] = useState("");
  const [checks, setChecks] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const usd = Number.parseFloat(budgetUsd);
    const tokens = Number.parseInt(budgetTokens, 10);
    const base: MessageInitShape<typeof SubmitGoalRequestSchema> = {
      text,
      title: title.trim(),
      approvalPolicy:
        approval === "auto" ? ApprovalPolicy.AUTO : approval === "manual" ? ApprovalPolicy.MANUAL : ApprovalPolicy.UNSPECIFIED,
      requestId: crypto.randomUUID(),
      // One command per line: agentd runs them in the workspace once the goal is done.
      checks: checks
        .split("\n")
        .map((c) => c.trim())
        .filter((c) => c !== ""),
    };
    if (usd > 0 || tokens > 0) {
      base.budget = { maxCostUsd: usd > 0 ? usd : 0, maxTokens: tokens > 0 ? BigInt(tokens) : 0n };
    }
    const path = workspace.trim();
    const withKind = (kind: WorkspaceKind): MessageInitShape<typeof SubmitGoalRequestSchema> => ({
      ...base,
      workspace: { kind, path },
    });
    setBusy(true);
    const r = await act("submit goal", async () => {
      if (!path) return api.tasks.submitGoal(base);
      if (wsKind === "existing") return api.tasks.submitGoal(withKind(WorkspaceKind.EXISTING_REPO));
      if (wsKind === "new") return api.tasks.submitGoal(withKind(WorkspaceKind.NEW_DIRECTORY));
      // No kind: agentd looks at the path on its host. An existing git repository is
      // worked on in a worktree of its own; anything else becomes a new directory.
      return api.tasks.submitGoal(withKind(WorkspaceKind.UNSPECIFIED));
    });
    setBusy(false);
    if (r?.goal) {
      toastInfo(`Goal ${r.goal.id} submitted`);
      setText("");
      setTitle("");
      setChecks("");
      props.onSubmitted(r.goal.id);
    }
  };

  return (
    <form className="card goal-form" onSubmit={(e) => void submit(e)}>
      <h2>New goal</h2>
      <textarea
        rows={3}
        placeholder="What should the agents achieve? e.g. Add a --json flag to the report command, with tests."
        value={text}
        onChange={(e) => setText(e.target.value)}
        data-testid="goal-text"
      />
      <div className="form-grid">
        <label>
          Title
          <input placeholder="derived from the text when empty" value={title} onChange={(e) => setTitle(e.target.value)} data-testid="goal-title" />
        </label>
        <label className="span2">
          Workspace
          <span className="form-row">
            <input
              className="grow"
              placeholder="/abs/path of a git repository or a new directory; empty: a new directory in the state dir"
              value={workspace}
              onChange={(e) => setWorkspace(e.target.value)}
              data-testid="goal-workspace"
            />
            <select value={wsKind} onChange={(e) => setWsKind(e.target.value as WsChoice)} data-testid="goal-workspace-kind">
              <option value="auto">repo if it is one, else new</option>
              <option value="existing">existing repository</option>
              <option value="new">new directory</option>
            </select>
          </span>
        </label>
        <label>
          Plan approval
          <select value={approval} onChange={(e) => setApproval(e.target.value)} data-testid="goal-approval">
            <option value="">configured default</option>
            <option value="auto">auto</option>
            <option value="manual">manual</option>
          </select>
        </label>
        <label>
          Budget (USD)
          <input
            type="number"
            min="0"
            step="0.01"
            placeholder="configured"
            value={budgetUsd}
            onChange={(e) => setBudgetUsd(e.target.value)}
            data-testid="goal-budget-usd"
          />
        </label>
        <label>
          Budget (tokens)
          <input
            type="number"
            min="0"
            step="1000"
            placeholder="configured"
            value={budgetTokens}
            onChange={(e) => setBudgetTokens(e.target.value)}
            data-testid="goal-budget-tokens"
          />
        </label>
        <label className="span2">
          Checks
          <textarea
            rows={2}
            placeholder="optional, one command per line, e.g. pytest -q: agentd runs them in the workspace when the goal is done, and it completes only if they pass"
            value={checks}
            onChange={(e) => setChecks(e.target.value)}
            data-testid="goal-checks"
          />
        </label>
      </div>
      <div className="form-actions">
        <button className="btn btn-primary" type="submit" disabled={busy} data-testid="goal-submit">
          Submit goal
        </button>
      </div>
    </form>
  );
}

interface GoalData {
  goal: Task;
  tasks: Task[];
  plans: Plan[];
}

function GoalDetail({ goalId }: { goalId: string }) {
  const touches = (e: Event) =>
    (kinds("task.", "plan.")(e) &&
      (e.goalId === goalId ||
        ((e.payload.case === "task" || e.payload.case === "plan") && e.payload.value.goalId === goalId))) ||
    e.taskId === goalId;
  const q = useLiveQuery<GoalData>(
    async () => {
      const [goal, tasks, plans] = await Promise.all([
        api.tasks.getTask({ taskId: goalId }).then((r) => r.task),
        listAll((t) => api.tasks.listTasks({ goalId, pageSize: 1000, pageToken: t }), (r) => r.tasks),
        listAll((t) => api.plans.listPlans({ goalId, pageSize: 1000, pageToken: t }), (r) => r.plans),
      ]);
      if (!goal) throw new ConnectError(`goal ${goalId} not found`, Code.NotFound);
      return { goal, tasks, plans };
    },
    [goalId],
    { match: touches },
  );
  const [editorNote, setEditorNote] = useState<string>();
  // Usage over the goal's whole tree (a task's own usage excludes its subtasks).
  const usage = useLiveQuery(() => api.usage.getUsage({ filter: { goalId } }), [goalId], {
    match: (e) => e.kind.startsWith("usage.") && e.goalId === goalId,
  });
  // The goal's budget, as agentd enforces it: spent against its limits.
  const budget = useLiveQuery(
    () => api.usage.getBudget({ scope: BudgetScope.GOAL, scopeId: goalId }).then((r) => r.budget),
    [goalId],
    { match: (e) => (e.kind.startsWith("budget.") || e.kind.startsWith("usage.")) && (e.goalId === goalId || !e.goalId) },
  );

  if (q.error && !q.data) return <div className="card banner-error">{q.error.rawMessage}</div>;
  if (!q.data) return <div className="card muted">Loading…</div>;
  const { goal, tasks, plans } = q.data;
  const final = FINAL.has(goal.status);
  const statusOf = new Map(tasks.map((t) => [t.id, t.status] as const));

  const cancel = () =>
    act("cancel goal", () => api.tasks.cancelTask({ taskId: goalId, reason: "canceled from the web UI" })).then((r) => {
      if (r) toastInfo(`Canceled ${r.canceledCount} task(s)`);
      q.refetch();
    });
  const pause = () =>
    act("pause goal", () => api.tasks.pauseGoal({ goalId, reason: "paused from the web UI" })).then((r) => {
      if (r) toastInfo("Goal paused: no new tasks will be assigned");
      q.refetch();
    });
  const resume = () =>
    act("resume goal", () => api.tasks.resumeGoal({ goalId })).then((r) => {
      if (r) toastInfo("Goal resumed");
      q.refetch();
    });
  const openEditor = () =>
    act("open in editor", () => api.tasks.openWorkspace({ taskId: goalId })).then((r) => {
      if (!r) return;
      setEditorNote(
        `Consent request ${r.consentRequestId} raised: once approved, agentd runs \`${r.argv.join(" ")}\` on its host.`,
      );
    });

  // Plans still in force: revisions that were replaced or rejected are left out of the
  // DAG (the Plans view lists them).
  const current = plans.filter((p) => p.status !== PlanStatus.SUPERSEDED && p.status !== PlanStatus.REJECTED);
  const dagPlans = current.length > 0 ? current : plans.slice(0, 1);

  return (
    <div className="goal-detail" data-testid={`goal-detail-${goalId}`}>
      <section className="card">
        <div className="detail-head">
          <h2>
            {goal.title || goal.id} <StatusChip schema={TaskStatusSchema} value={goal.status} testId="goal-status" />
            {goal.paused && <span className="chip chip-amber">paused</span>}
          </h2>
          <div className="actions">
            <button className="btn" disabled={final} onClick={() => void pause()} data-testid="goal-pause">
              Pause
            </button>
            <button className="btn" disabled={final} onClick={() => void resume()} data-testid="goal-resume">
              Resume
            </button>
            <button className="btn" onClick={() => void openEditor()} data-testid="goal-open-editor">
              Open in editor
            </button>
            <button className="btn btn-danger" disabled={final} onClick={() => void cancel()} data-testid="goal-cancel">
              Cancel goal
            </button>
          </div>
        </div>
        {editorNote && (
          <div className="banner banner-info" data-testid="goal-editor-note">
            {editorNote} Approve it in the consent dialog.
          </div>
        )}
        <p className="goal-text">{goal.input?.instructions}</p>
        <dl className="kv">
          <dt>Id</dt>
          <dd>
            <code>{goal.id}</code>
          </dd>
          <dt>Workspace</dt>
          <dd>
            {goal.workspace ? (
              <>
                <code>{goal.workspace.path}</code>
                {goal.workspace.branch && <span className="muted"> on {goal.workspace.branch}</span>}
                <span className="muted"> ({enumShort(WorkspaceKindSchema, goal.workspace.kind).toLowerCase().replace(/_/g, " ")})</span>
              </>
            ) : (
              "—"
            )}
          </dd>
          <dt>Approval</dt>
          <dd>{enumShort(ApprovalPolicySchema, goal.approvalPolicy).toLowerCase()}</dd>
          {goal.checks.length > 0 && (
            <>
              <dt>Checks</dt>
              <dd data-testid="goal-checks-state">
                {goal.checks.map((c, i) => (
                  <div key={i}>
                    <code>{visible(c.command)}</code>{" "}
                    <span className={c.runTime ? (c.passed ? "text-green" : "text-red") : "muted"}>
                      {!c.runTime ? "not run yet" : c.passed ? "passed" : c.exitCode >= 0 ? `failed (exit ${c.exitCode})` : "failed (did not finish)"}
                    </span>
                  </div>
                ))}
                {goal.checkRounds > 0 && (
                  <span className="muted">
                    {goal.checkRounds} of {goal.maxCheckRounds} failed rounds sent back to the CEO
                  </span>
                )}
              </dd>
            </>
          )}
          <dt>Created</dt>
          <dd>
            <RelTime ts={goal.createTime} /> by {goal.createdBy || "—"}
          </dd>
          {budget.data && (budget.data.maxCostUsd > 0 || budget.data.maxTokens > 0n) && (
            <>
              <dt>Budget</dt>
              <dd data-testid="goal-budget">
                {budget.data.maxCostUsd > 0 && (
                  <>
                    {fmtUsd(budget.data.usedCostUsd)} of {fmtUsd(budget.data.maxCostUsd)}
                  </>
                )}
                {budget.data.maxCostUsd > 0 && budget.data.maxTokens > 0n && " · "}
                {budget.data.maxTokens > 0n && (
                  <>
                    {fmtInt(budget.data.usedTokens)} of {fmtInt(budget.data.maxTokens)} tokens
                  </>
                )}
              </dd>
            </>
          )}
          <dt>Spent</dt>
          <dd data-testid="goal-spend">
            {usage.data === undefined
              ? "…"
              : usage.data.total
                ? `${fmtUsd(usage.data.total.costUsd)} · ${fmtInt(usage.data.total.totalTokens)} tokens · ${fmtInt(usage.data.total.calls)} calls`
                : "nothing yet"}
          </dd>
          {goal.result && (
            <>
              <dt>Result</dt>
              <dd className="pre-line">{goal.result.summary}</dd>
            </>
          )}
          {goal.failure && (
            <>
              <dt>Failure</dt>
              <dd className="text-red">
                {enumShort(TaskFailureCodeSchema, goal.failure.code)}: {goal.failure.message}
                {goal.failure.by && <span className="muted"> (by {goal.failure.by})</span>}
              </dd>
            </>
          )}
        </dl>
      </section>

      {budget.data && tasks.some((t) => t.status === TaskStatus.BLOCKED && t.blockedReason === BlockReason.BUDGET) && (
        <RaiseBudget goalId={goalId} budget={budget.data} onRaised={() => budget.refetch()} />
      )}

      <section className="card">
        <h2>
          Tasks <span className="muted">{tasks.length}</span>
        </h2>
        <TaskTree goalId={goalId} tasks={tasks} onChanged={q.refetch} />
      </section>

      <section className="card">
        <h2>
          Plan <span className="muted">{plans.length > 0 ? `${plans.length} proposal(s)` : ""}</span>
        </h2>
        {plans.length === 0 ? (
          <div className="empty">No plan proposed yet.</div>
        ) : (
          <>
            <PlanDag plans={dagPlans} taskStatus={(id) => statusOf.get(id)} />
            <div className="muted small">
              {plans.map((p) => (
                <a key={p.id} href={href("plans", p.id)} className="plan-link">
                  {p.id} (rev {p.revision}, {enumShort(PlanStatusSchema, p.status).toLowerCase()})
                </a>
              ))}
            </div>
          </>
        )}
      </section>
    </div>
  );
}

function TaskTree(props: { goalId: string; tasks: Task[]; onChanged: () => void }) {
  const byId = new Map(props.tasks.map((t) => [t.id, t] as const));
  const children = new Map<string, Task[]>();
  const roots: Task[] = [];
  for (const t of props.tasks) {
    if (t.parentId && byId.has(t.parentId)) {
      const list = children.get(t.parentId) ?? [];
      list.push(t);
      children.set(t.parentId, list);
    } else {
      roots.push(t);
    }
  }
  const order = (a: Task, b: Task) =>
    Number((a.createTime?.seconds ?? 0n) - (b.createTime?.seconds ?? 0n)) || a.id.localeCompare(b.id);
  roots.sort((a, b) => (a.id === props.goalId ? -1 : b.id === props.goalId ? 1 : order(a, b)));
  const rows: { t: Task; depth: number }[] = [];
  const visit = (t: Task, depth: number, seen: Set<string>) => {
    if (seen.has(t.id)) return;
    seen.add(t.id);
    rows.push({ t, depth });
    for (const c of (children.get(t.id) ?? []).sort(order)) visit(c, depth + 1, seen);
  };
  const seen = new Set<string>();
  for (const r of roots) visit(r, 0, seen);

  const retry = (t: Task) =>
    act(`retry ${t.id}`, () => api.tasks.retryTask({ taskId: t.id, reason: "retried from the web UI" })).then((r) => {
      if (r) toastInfo(`Task ${t.id} is ${enumShort(TaskStatusSchema, r.task?.status ?? 0).toLowerCase()} again`);
      props.onChanged();
    });

  return (
    <div className="task-tree" data-testid="task-tree">
      {rows.map(({ t, depth }) => (
        <div
          key={t.id}
          className="task-node"
          style={{ paddingLeft: 8 + depth * 20 }}
          data-testid={`task-node-${t.id}`}
          data-status={enumName(TaskStatusSchema, t.status)}
          data-parent={t.parentId || undefined}
          data-depth={depth}
        >
          <div className="task-line">
            {depth > 0 && <span className="tree-branch">└</span>}
            <StatusChip schema={TaskStatusSchema} value={t.status} />
            <span className="task-title" title={t.input?.instructions}>
              {t.title || t.id}
            </span>
            <span className="muted small">
              {t.role}
              {t.assignee && <> · {t.assignee}</>}
              {t.attempts > 0 && (
                <>
                  {" "}
                  · attempt {t.attempts}/{t.maxAttempts || "∞"}
                </>
              )}
              {t.usage && t.usage.calls > 0n && <> · {fmtUsd(t.usage.costUsd)}</>} · <RelTime ts={t.updateTime} />
            </span>
            <TranscriptLink taskId={t.id} />
            {(t.status === TaskStatus.FAILED || t.status === TaskStatus.CANCELED) && (
              <button className="btn btn-small" onClick={() => void retry(t)} data-testid="task-retry">
                Retry
              </button>
            )}
          </div>
          {t.status === TaskStatus.BLOCKED && (
            <div className="task-note text-amber">
              waiting for {enumShort(BlockReasonSchema, t.blockedReason).toLowerCase().replace(/_/g, " ")}
              {t.blockedDetail && <>: {t.blockedDetail}</>}
            </div>
          )}
          {t.failure && (
            <div className="task-note text-red">
              {enumShort(TaskFailureCodeSchema, t.failure.code).toLowerCase().replace(/_/g, " ")}: {t.failure.message}
            </div>
          )}
          {t.result?.summary && t.id !== props.goalId && <div className="task-note muted">{clip(t.result.summary, 300)}</div>}
        </div>
      ))}
    </div>
  );
}

/**
 * A goal held at its budget: what it spent against its limits, and "raise to … and
 * resume". Raising the budget is all it takes: agentd hands the held tasks back where
 * they stopped (the outcomes issue's BUDGET_REACHED pause).
 */
function RaiseBudget(props: { goalId: string; budget: Budget; onRaised: () => void }) {
  const b = props.budget;
  const [usd, setUsd] = useState(() => (b.maxCostUsd > 0 ? String(Math.max(b.maxCostUsd * 2, b.usedCostUsd + 1).toFixed(2)) : ""));
  const [tokens, setTokens] = useState(() => (b.maxTokens > 0n ? String(b.maxTokens * 2n > b.usedTokens ? b.maxTokens * 2n : b.usedTokens * 2n) : ""));
  const [busy, setBusy] = useState(false);
  // Exactly a number (separators as the page shows them are allowed): anything else is
  // refused, never read as something smaller or as "no limit".
  const cleanTokens = tokens.replace(/[,\s_]/g, "");
  const cleanUsd = usd.replace(/[$,\s]/g, "");
  const tokensOk = b.maxTokens === 0n || /^\d+$/.test(cleanTokens);
  const usdOk = b.maxCostUsd === 0 || /^\d+(\.\d+)?$/.test(cleanUsd);
  const raise = async () => {
    if (!tokensOk || !usdOk) return;
    const maxCostUsd = b.maxCostUsd > 0 ? Number(cleanUsd) : 0;
    const maxTokens = b.maxTokens > 0n ? BigInt(cleanTokens) : 0n;
    setBusy(true);
    const r = await act("raise the budget", () =>
      api.usage.setBudget({
        scope: BudgetScope.GOAL,
        scopeId: props.goalId,
        limit: { maxCostUsd, maxTokens },
      }),
    );
    setBusy(false);
    if (r) {
      toastInfo(`Budget of ${props.goalId} raised: its held tasks resume`);
      props.onRaised();
    }
  };
  return (
    <section className="card banner banner-warn" data-testid="goal-budget-held">
      <strong>Paused at its budget.</strong>{" "}
      <span data-testid="goal-budget-spent">
        Spent {fmtUsd(b.usedCostUsd)}
        {b.maxCostUsd > 0 && <> of {fmtUsd(b.maxCostUsd)}</>} · {fmtInt(b.usedTokens)}
        {b.maxTokens > 0n && <> of {fmtInt(b.maxTokens)}</>} tokens.
      </span>
      <div className="decide">
        {b.maxCostUsd > 0 && (
          <label>
            raise to $ <input value={usd} onChange={(e) => setUsd(e.target.value)} size={8} data-testid="goal-budget-raise-usd" />
          </label>
        )}
        {b.maxTokens > 0n && (
          <label>
            tokens <input value={tokens} onChange={(e) => setTokens(e.target.value)} size={10} data-testid="goal-budget-raise-tokens" />
          </label>
        )}
        <button className="btn btn-primary" disabled={busy || !tokensOk || !usdOk} onClick={() => void raise()} data-testid="goal-budget-raise">
          Raise and resume
        </button>
      </div>
    </section>
  );
}
