// Editing a proposed plan before approving it: each step's title, role, instructions,
// deps and token estimate, steps added and removed. agentd checks the edit as it checks
// an agent's plan (ApprovePlan with validate_only) as the person types, and the problems
// show beside the steps they concern; approving records a new revision made by the person.
import { useEffect, useMemo, useState } from "react";
import { create } from "@bufbuild/protobuf";
import { act, api, errorText, toastInfo } from "../api";
import { visible } from "../format";
import { PlanStepSchema, type Plan, type PlanStep, type PlanViolation } from "../gen/agentd/v1/plans_pb";

interface Draft {
  id: string;
  title: string;
  role: string;
  instructions: string;
  deps: string; // comma-separated step ids
  tokens: string;
  /** The proposed step it was, to keep what the form does not show (cost, duration). */
  from?: PlanStep;
}

function draftOf(s: PlanStep): Draft {
  return {
    id: s.id,
    title: s.title,
    role: s.role,
    instructions: s.instructions,
    deps: s.deps.join(", "),
    tokens: s.estimate?.tokens ? String(s.estimate.tokens) : "",
    from: s,
  };
}

function stepOf(d: Draft): PlanStep {
  const clean = d.tokens.replace(/[,\s_]/g, "");
  const tokens = /^\d+$/.test(clean) ? Number(clean) : Number.NaN;
  return create(PlanStepSchema, {
    id: d.id.trim(),
    title: d.title,
    role: d.role.trim(),
    instructions: d.instructions,
    deps: d.deps
      .split(",")
      .map((x) => x.trim())
      .filter(Boolean),
    maxAttempts: d.from?.maxAttempts ?? 0,
    estimate: {
      tokens: Number.isFinite(tokens) && tokens > 0 ? BigInt(tokens) : 0n,
      costUsd: d.from?.estimate?.costUsd ?? 0,
      duration: d.from?.estimate?.duration,
    },
  });
}

export function PlanEditor(props: { plan: Plan; onDone: () => void; onCancel: () => void }) {
  const [drafts, setDrafts] = useState<Draft[]>(() => props.plan.steps.map(draftOf));
  const [summary, setSummary] = useState(props.plan.summary);
  const [violations, setViolations] = useState<PlanViolation[]>([]);
  const [checkError, setCheckError] = useState<string>();
  const [checked, setChecked] = useState(false);
  const [busy, setBusy] = useState(false);
  const steps = useMemo(() => drafts.map(stepOf), [drafts]);

  // Checked by agentd as the person types (debounced): the problems are agentd's, never
  // the UI's guess.
  useEffect(() => {
    setChecked(false);
    if (steps.length === 0) {
      setViolations([]);
      return;
    }
    let live = true;
    const t = window.setTimeout(() => {
      api.plans.approvePlan({ planId: props.plan.id, steps, summary, validateOnly: true }).then(
        (r) => {
          if (!live) return;
          setViolations(r.violations);
          setCheckError(undefined);
          setChecked(true);
        },
        (e: unknown) => {
          if (!live) return;
          setCheckError(errorText(e));
        },
      );
    }, 250);
    return () => {
      live = false;
      window.clearTimeout(t);
    };
  }, [steps, summary, props.plan.id]);

  const set = (i: number, patch: Partial<Draft>) =>
    setDrafts((ds) => ds.map((d, k) => (k === i ? { ...d, ...patch } : d)));
  const remove = (i: number) => setDrafts((ds) => ds.filter((_, k) => k !== i));
  const add = () =>
    setDrafts((ds) => {
      let n = ds.length + 1;
      while (ds.some((d) => d.id === `step${n}`)) n++;
      return [...ds, { id: `step${n}`, title: "", role: ds[ds.length - 1]?.role ?? "", instructions: "", deps: "", tokens: "" }];
    });
  const forStep = (id: string) => violations.filter((v) => v.stepId === id);
  const general = violations.filter((v) => !v.stepId || !drafts.some((d) => d.id.trim() === v.stepId));

  const approve = async () => {
    setBusy(true);
    const r = await act("approve the edited plan", () =>
      api.plans.approvePlan({ planId: props.plan.id, steps, summary, comment: "edited in the web UI" }),
    );
    setBusy(false);
    if (r) {
      toastInfo(`Plan ${props.plan.id} edited into ${r.plan?.id ?? "a new revision"} and approved`);
      props.onDone();
    }
  };

  return (
    <div className="plan-editor" data-testid="plan-editor">
      <label className="span2">
        Summary
        <textarea rows={2} value={summary} onChange={(e) => setSummary(e.target.value)} data-testid="plan-edit-summary" />
      </label>
      {drafts.map((d, i) => {
        const problems = forStep(d.id.trim());
        return (
          <div key={i} className={`plan-edit-step${problems.length ? " has-problems" : ""}`} data-testid={`plan-edit-step-${i}`}>
            <div className="plan-edit-row">
              <input value={d.id} onChange={(e) => set(i, { id: e.target.value })} placeholder="id" className="plan-edit-id" data-testid="plan-edit-id" />
              <input value={d.title} onChange={(e) => set(i, { title: e.target.value })} placeholder="title" className="grow" data-testid="plan-edit-title" />
              <input value={d.role} onChange={(e) => set(i, { role: e.target.value })} placeholder="role" className="plan-edit-role" data-testid="plan-edit-role" />
              <input value={d.deps} onChange={(e) => set(i, { deps: e.target.value })} placeholder="after (ids, comma-separated)" data-testid="plan-edit-deps" />
              <input value={d.tokens} onChange={(e) => set(i, { tokens: e.target.value })} placeholder="tokens" className="plan-edit-tokens" data-testid="plan-edit-tokens" />
              <button className="btn btn-small btn-danger" onClick={() => remove(i)} title="remove this step" data-testid="plan-edit-remove">
                ✕
              </button>
            </div>
            <textarea rows={3} value={d.instructions} onChange={(e) => set(i, { instructions: e.target.value })} placeholder="instructions" data-testid="plan-edit-instructions" />
            {problems.map((v, k) => (
              <div key={k} className="task-note text-red" data-testid="plan-edit-problem">
                {v.field && <code>{visible(v.field)}</code>} {visible(v.message)}
              </div>
            ))}
          </div>
        );
      })}
      {general.map((v, k) => (
        <div key={k} className="task-note text-red" data-testid="plan-edit-problem">
          {v.stepId && <code>{visible(v.stepId)}</code>} {visible(v.message)}
        </div>
      ))}
      {drafts.length === 0 && <div className="task-note text-red">A plan needs at least one step: reject it instead.</div>}
      {checkError && <div className="task-note text-red">{visible(checkError, "many")}</div>}
      <div className="form-actions">
        <button className="btn" onClick={add} data-testid="plan-edit-add">
          Add a step
        </button>
        <span className="muted small" data-testid="plan-edit-check">
          {drafts.length === 0 ? "" : !checked ? "checking…" : violations.length ? `${violations.length} problem(s)` : "valid"}
        </span>
        <button className="btn" onClick={props.onCancel}>
          Cancel
        </button>
        <button
          className="btn btn-primary"
          disabled={busy || !checked || violations.length > 0 || drafts.length === 0}
          onClick={() => void approve()}
          data-testid="plan-edit-approve"
        >
          Approve edited plan
        </button>
      </div>
    </div>
  );
}
