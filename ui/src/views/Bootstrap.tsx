// Bootstrap: a new project from one of agentd's templates (TaskService.ListTemplates),
// rendered by the bootstrapper into a new directory, with the template's post-check (the
// project's own build and tests) followed live from the bootstrapper's log. When it ends,
// "Open in editor" asks for the consent that lets agentd open the folder.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { act, api, followLogs, kinds, toastInfo, useLiveQuery, type LogLine } from "../api";
import { StatusChip } from "../components/StatusChip";
import { tsMs, visible } from "../format";
import { TaskStatus, TaskStatusSchema, WorkspaceKind } from "../gen/agentd/v1/tasks_pb";
import { href, navigate } from "../route";

const FINAL = new Set([TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED]);

export function BootstrapView({ goalId }: { goalId?: string }) {
  return (
    <div className="view" data-testid="view-bootstrap">
      <h1>Bootstrap a project</h1>
      {goalId ? <Progress key={goalId} goalId={goalId} /> : <Form />}
    </div>
  );
}

function Form() {
  const templates = useLiveQuery(() => api.tasks.listTemplates({}).then((r) => r.templates), []);
  const [choice, setChoice] = useState("");
  const [name, setName] = useState("");
  const [dir, setDir] = useState("");
  const [busy, setBusy] = useState(false);
  const list = templates.data ?? [];
  const chosen = list.find((t) => t.name === choice) ?? list[0];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!chosen || !dir.trim()) return;
    setBusy(true);
    const r = await act("bootstrap", () =>
      api.tasks.submitGoal({
        text: `Bootstrap a project from template ${chosen.name} in ${dir.trim()}`,
        title: name.trim() || `bootstrap ${chosen.name}`,
        workspace: { kind: WorkspaceKind.NEW_DIRECTORY, path: dir.trim(), template: chosen.name },
      }),
    );
    setBusy(false);
    if (r?.goal) {
      toastInfo(`Goal ${r.goal.id}: bootstrapping ${chosen.name}`);
      navigate(href("bootstrap", r.goal.id));
    }
  };

  if (templates.error && !templates.data) return <div className="card banner-error">{visible(templates.error.rawMessage, "many")}</div>;
  if (!templates.data) return <div className="card muted">Loading the templates…</div>;
  if (list.length === 0) return <div className="card muted">agentd has no project templates.</div>;
  return (
    <form className="card" onSubmit={(e) => void submit(e)} data-testid="bootstrap-form">
      <div className="template-list" role="radiogroup">
        {list.map((t) => (
          <label
            key={t.name}
            className={`template-card${chosen?.name === t.name ? " selected" : ""}`}
            data-testid={`template-${t.name}`}
          >
            <input type="radio" name="template" checked={chosen?.name === t.name} onChange={() => setChoice(t.name)} />
            <strong>{visible(t.name)}</strong>
            <span className="muted">{visible(t.description)}</span>
            <span className="small muted">
              {t.files.length} files
              {t.variables.length > 0 && <> · fills in {t.variables.map((v) => `{{${v}}}`).join(", ")}</>}
              {t.postCheck.length > 0 && (
                <>
                  {" "}
                  · checked with <code>{visible(t.postCheck.join(" "))}</code>
                </>
              )}
            </span>
          </label>
        ))}
      </div>
      <div className="form-grid">
        <label>
          Name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder={`bootstrap ${chosen?.name ?? ""}`} data-testid="bootstrap-name" />
        </label>
        <label className="span2">
          Directory (new, on agentd's host)
          <input value={dir} onChange={(e) => setDir(e.target.value)} placeholder="/home/me/src/new-project" data-testid="bootstrap-dir" />
        </label>
      </div>
      <div className="form-actions">
        <button className="btn btn-primary" type="submit" disabled={busy || !dir.trim()} data-testid="bootstrap-submit">
          Bootstrap
        </button>
      </div>
    </form>
  );
}

function Progress({ goalId }: { goalId: string }) {
  const goal = useLiveQuery(() => api.tasks.getTask({ taskId: goalId }).then((r) => r.task), [goalId], {
    match: (e) => kinds("task.", "goal.")(e) && e.taskId === goalId,
  });
  const [lines, setLines] = useState<LogLine[]>([]);
  const [note, setNote] = useState<string>();
  const g = goal.data;
  const agent = g?.assignee ?? "";
  const startedMs = tsMs(g?.createTime) ?? 0;
  const logRef = useRef<HTMLPreElement>(null);

  // The bootstrapper's log from the goal's start: the rendering and the post-check's
  // output as it runs (lines of its earlier work are left out by their time).
  useEffect(() => {
    if (!agent) return;
    setLines([]);
    return followLogs({
      agentId: agent,
      afterSeq: 0n,
      tail: 500,
      poll: false,
      onLines: (ls) => setLines((prev) => prev.concat(ls.filter((l) => !l.gap && l.timeMs >= startedMs - 1000)).slice(-5000)),
      onStatus: () => {},
    });
  }, [agent, startedMs]);
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [lines]);

  if (goal.error && !g) return <div className="card banner-error">{visible(goal.error.rawMessage, "many")}</div>;
  if (!g) return <div className="card muted">Loading…</div>;
  const done = FINAL.has(g.status);
  const open = () =>
    act("open in editor", () => api.tasks.openWorkspace({ taskId: goalId })).then((r) => {
      if (r) setNote(`Consent request ${visible(r.consentRequestId)} raised: once approved, agentd runs \`${visible(r.argv.join(" "), "many")}\` on its host.`);
    });
  return (
    <section className="card" data-testid={`bootstrap-progress-${goalId}`} data-status={TaskStatus[g.status]}>
      <div className="detail-head">
        <h2>
          {visible(g.title)} <StatusChip schema={TaskStatusSchema} value={g.status} testId="bootstrap-status" />
        </h2>
        <div className="decide">
          <a className="btn" href={href("goals", goalId)}>
            Goal {goalId}
          </a>
          <button className="btn btn-primary" disabled={!done || g.status !== TaskStatus.COMPLETED} onClick={() => void open()} data-testid="bootstrap-open-editor">
            Open in editor
          </button>
        </div>
      </div>
      <div className="muted small">
        {visible(g.workspace?.template ?? "")} → <code>{visible(g.workspace?.path ?? "")}</code>
        {agent && <> · {visible(agent)}</>}
      </div>
      <pre className="tx-pre bootstrap-log" ref={logRef} data-testid="bootstrap-log">
        {lines.length === 0 ? (done ? "(no output)" : "waiting for the bootstrapper…") : lines.map((l) => visible(l.text, "many")).join("\n")}
      </pre>
      {g.result?.summary && <div className="banner banner-ok" data-testid="bootstrap-result">{visible(g.result.summary, "many")}</div>}
      {g.failure && <div className="banner banner-error" data-testid="bootstrap-failure">{visible(g.failure.message, "many")}</div>}
      {note && <div className="banner banner-info" data-testid="bootstrap-editor-note">{note}</div>}
    </section>
  );
}
