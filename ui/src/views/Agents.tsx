// Agents: every agent process under agentd's supervision, live, with stop, restart and
// start. Uptime and heartbeat age count on between refreshes; the list refreshes on
// each agent.* event and every 5 s (heartbeats themselves are not events).
import { useState, type FormEvent } from "react";
import { act, api, kinds, listAll, toastInfo, useLiveQuery, useNow } from "../api";
import { RelTime } from "../components/RelTime";
import { StatusChip } from "../components/StatusChip";
import { durMs, enumName, enumShort, fmtDuration, tsMs } from "../format";
import { AgentState, AgentStateSchema, type Agent } from "../gen/agentd/v1/agents_pb";

// States in which a process exists, so uptime and heartbeat age grow with time.
const ALIVE = new Set([AgentState.STARTING, AgentState.RUNNING, AgentState.IDLE, AgentState.BUSY, AgentState.UNRESPONSIVE]);

export function AgentsView() {
  const q = useLiveQuery(
    async () => ({
      agents: await listAll((t) => api.agents.listAgents({ pageSize: 1000, pageToken: t }), (r) => r.agents),
      at: Date.now(),
    }),
    [],
    { match: kinds("agent."), pollMs: 5000 },
  );
  const now = useNow();
  const [selected, setSelected] = useState<string>();
  const agents = q.data?.agents ?? [];
  const since = q.data ? Math.max(0, now - q.data.at) : 0;
  const info = useLiveQuery(() => api.system.getInfo({}), [], { match: kinds("config.") });
  const configured = info.data?.roles.map((r) => r.name) ?? [];
  const roles = [...new Set([...configured, ...agents.map((a) => a.role)])].sort();
  const sel = agents.find((a) => a.id === selected);

  const stop = (a: Agent) =>
    act(`stop ${a.id}`, () => api.agents.stopAgent({ agentId: a.id })).then((r) => {
      if (r) toastInfo(`Stopping ${a.id}`);
      q.refetch();
    });
  const restart = (a: Agent) =>
    act(`restart ${a.id}`, () => api.agents.restartAgent({ agentId: a.id })).then((r) => {
      if (r) toastInfo(`Restarting ${a.id}`);
      q.refetch();
    });
  const startAgain = (a: Agent) =>
    act(`start ${a.id}`, () => api.agents.startAgent({ agentId: a.id, role: a.role })).then((r) => {
      if (r) toastInfo(`Starting ${a.id}`);
      q.refetch();
    });

  return (
    <div className="view" data-testid="view-agents">
      <header className="view-head">
        <h1>
          Agents <span className="muted">{q.data ? agents.length : "…"}</span>
        </h1>
        <StartForm roles={roles} onStarted={q.refetch} />
      </header>
      {q.error && <div className="banner banner-error">{q.error.rawMessage}</div>}

      <div className="table-wrap">
        <table className="table" data-testid="agents-table">
          <thead>
            <tr>
              <th>Agent</th>
              <th>Role</th>
              <th>State</th>
              <th className="num">PID</th>
              <th className="num">Uptime</th>
              <th className="num">Restarts</th>
              <th className="num">Heartbeat</th>
              <th>Task / progress</th>
              <th>Model</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {agents.map((a) => {
              const alive = ALIVE.has(a.state);
              const up = durMs(a.uptime);
              const hb = durMs(a.heartbeatAge);
              return (
                <tr
                  key={a.id}
                  data-testid={`agent-row-${a.id}`}
                  data-state={enumName(AgentStateSchema, a.state)}
                  className={a.id === selected ? "selected" : undefined}
                  onClick={() => setSelected(a.id === selected ? undefined : a.id)}
                >
                  <td>
                    <strong>{a.id}</strong>
                    {a.host && a.host !== "localhost" && <span className="muted small"> @{a.host}</span>}
                  </td>
                  <td>{a.role}</td>
                  <td data-testid="agent-state" title={a.stateDetail || enumName(AgentStateSchema, a.state)}>
                    <StatusChip schema={AgentStateSchema} value={a.state} agent />
                  </td>
                  <td className="num" data-testid="agent-pid">
                    {a.pid > 0n ? String(a.pid) : "—"}
                  </td>
                  <td className="num" data-testid="agent-uptime">
                    {up !== undefined ? fmtDuration(up + (alive ? since : 0)) : "—"}
                  </td>
                  <td className="num" data-testid="agent-restarts">
                    {a.restarts}
                  </td>
                  <td
                    className={`num ${hb !== undefined && hb + since > 30000 && alive ? "text-amber" : ""}`}
                    data-testid="agent-heartbeat"
                  >
                    {hb !== undefined && alive ? `${fmtDuration(hb + since)} ago` : "—"}
                  </td>
                  <td className="ellipsis">
                    {a.currentTaskId && <code>{a.currentTaskId}</code>} {a.progress && <span className="muted">{a.progress}</span>}
                    {a.state === AgentState.BACKOFF && a.nextRestartTime && (
                      <span className="muted">
                        restarts <RelTime ts={a.nextRestartTime} />
                      </span>
                    )}
                  </td>
                  <td className="muted small">{a.model}</td>
                  <td className="actions" onClick={(e) => e.stopPropagation()}>
                    {(a.state === AgentState.STOPPED || a.state === AgentState.FAILED) && (
                      <button className="btn btn-small" onClick={() => void startAgain(a)} data-testid="agent-start">
                        Start
                      </button>
                    )}
                    <button className="btn btn-small" onClick={() => void restart(a)} data-testid="agent-restart">
                      Restart
                    </button>
                    <button className="btn btn-small btn-danger" onClick={() => void stop(a)} data-testid="agent-stop">
                      Stop
                    </button>
                  </td>
                </tr>
              );
            })}
            {q.data && agents.length === 0 && (
              <tr>
                <td colSpan={10} className="empty">
                  No agents. Start one with the form above.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </div>

      {sel && <AgentDetail agent={sel} />}
    </div>
  );
}

function StartForm(props: { roles: string[]; onStarted: () => void }) {
  const [role, setRole] = useState("");
  const [id, setId] = useState("");
  const [model, setModel] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const r = await act("start agent", () =>
      api.agents.startAgent({ role: role.trim(), agentId: id.trim(), model: model.trim() }),
    );
    setBusy(false);
    if (r?.agent) {
      toastInfo(`Started ${r.agent.id} (${enumShort(AgentStateSchema, r.agent.state)})`);
      setId("");
      props.onStarted();
    }
  };
  // The role is typed, with the configured roles (GetInfo) suggested.
  return (
    <form className="inline-form" onSubmit={(e) => void submit(e)}>
      <input
        list="known-roles"
        placeholder="role, e.g. coder"
        value={role}
        onChange={(e) => setRole(e.target.value)}
        data-testid="start-role"
      />
      <datalist id="known-roles">
        {props.roles.map((r) => (
          <option key={r} value={r} />
        ))}
      </datalist>
      <input placeholder="id (optional)" value={id} onChange={(e) => setId(e.target.value)} data-testid="start-id" />
      <input placeholder="model (optional)" value={model} onChange={(e) => setModel(e.target.value)} data-testid="start-model" />
      <button className="btn btn-primary" type="submit" disabled={busy} data-testid="start-submit">
        Start agent
      </button>
    </form>
  );
}

function AgentDetail({ agent: a }: { agent: Agent }) {
  const exit = a.lastExit;
  return (
    <section className="card detail" data-testid={`agent-detail-${a.id}`}>
      <h2>
        {a.id} <StatusChip schema={AgentStateSchema} value={a.state} agent />
        <a className="small" href={`#/logs?agents=${encodeURIComponent(a.id)}`}>
          logs
        </a>
      </h2>
      <dl className="kv">
        {a.stateDetail && (
          <>
            <dt>Detail</dt>
            <dd>{a.stateDetail}</dd>
          </>
        )}
        <dt>Role</dt>
        <dd>{a.role}</dd>
        <dt>Model</dt>
        <dd>{a.model || "—"}</dd>
        <dt>Host</dt>
        <dd>{a.host || "—"}</dd>
        <dt>Started</dt>
        <dd>
          <RelTime ts={a.startTime} />
        </dd>
        <dt>Runtime</dt>
        <dd>{a.runtimeVersion || "—"}</dd>
        <dt>Workspace</dt>
        <dd>{a.workspace ? <code>{a.workspace.path}</code> : "each task's"}</dd>
        <dt>Current task</dt>
        <dd>{a.currentTaskId ? <code>{a.currentTaskId}</code> : "—"}</dd>
        {a.nextRestartTime && (
          <>
            <dt>Next restart</dt>
            <dd>
              <RelTime ts={a.nextRestartTime} />
            </dd>
          </>
        )}
      </dl>
      {exit && (
        <>
          <h3>Last exit</h3>
          <p>
            {exit.status.case === "exitCode" && <>exit code {exit.status.value}</>}
            {exit.status.case === "signal" && <>killed by signal {exit.status.value}</>} {exit.reason && <>— {exit.reason}</>}{" "}
            <span className="muted">
              (<RelTime ms={tsMs(exit.time)} />)
            </span>
          </p>
          {exit.lastLogLines.length > 0 && <pre className="pre">{exit.lastLogLines.join("\n")}</pre>}
        </>
      )}
    </section>
  );
}
