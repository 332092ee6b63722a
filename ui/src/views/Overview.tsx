// Overview: how many agents are in each state, the goals still in progress, what was
// spent since local midnight, and what waits for a person (plans, consent requests).
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { api, consentWatcher, kinds, listAll, useLiveQuery, useStore } from "../api";
import { RelTime } from "../components/RelTime";
import { StatusChip } from "../components/StatusChip";
import { enumName, enumShort, enumValues, fmtDuration, fmtInt, fmtUsd, durMs, toneOf } from "../format";
import { AgentStateSchema } from "../gen/agentd/v1/agents_pb";
import { PlanStatus } from "../gen/agentd/v1/plans_pb";
import { DaemonStateSchema } from "../gen/agentd/v1/system_pb";
import { TaskStatus, TaskStatusSchema } from "../gen/agentd/v1/tasks_pb";
import { UsageGroupBy } from "../gen/agentd/v1/usage_pb";
import { href } from "../route";

const ACTIVE = [TaskStatus.PENDING, TaskStatus.READY, TaskStatus.ASSIGNED, TaskStatus.RUNNING, TaskStatus.BLOCKED];

function localMidnight(): Date {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  return d;
}

export function OverviewView() {
  const agents = useLiveQuery(
    () => listAll((t) => api.agents.listAgents({ pageSize: 1000, pageToken: t }), (r) => r.agents),
    [],
    { match: kinds("agent.") },
  );
  const goals = useLiveQuery(
    () =>
      listAll(
        (t) => api.tasks.listTasks({ goalsOnly: true, statuses: ACTIVE, pageSize: 1000, pageToken: t }),
        (r) => r.tasks,
      ),
    [],
    { match: kinds("task.") },
  );
  const spend = useLiveQuery(
    () => api.usage.getUsage({ filter: { startTime: timestampFromDate(localMidnight()) } }),
    [],
    { match: kinds("usage."), pollMs: 60000 },
  );
  const plans = useLiveQuery(
    () => api.plans.listPlans({ statuses: [PlanStatus.PROPOSED], pageSize: 1000 }),
    [],
    { match: kinds("plan.") },
  );
  // Cost per goal over the goal's whole tree (a task's own usage excludes its subtasks).
  const goalUsage = useLiveQuery(
    () => api.usage.getUsage({ groupBy: [UsageGroupBy.GOAL] }),
    [],
    { match: kinds("usage.") },
  );
  const goalCost = new Map((goalUsage.data?.groups ?? []).map((g) => [g.goalId, g.totals?.costUsd ?? 0] as const));
  const info = useLiveQuery(() => api.system.getInfo({}), [], { pollMs: 10000 });
  const consents = useStore(consentWatcher.pending);

  const counts = new Map<number, number>();
  for (const a of agents.data ?? []) counts.set(a.state, (counts.get(a.state) ?? 0) + 1);
  // An empty ledger answers with no total: that is zero spent, not still loading.
  const total = spend.data ? (spend.data.total ?? { costUsd: 0, totalTokens: 0n, calls: 0n }) : undefined;

  return (
    <div className="view" data-testid="view-overview">
      <header className="view-head">
        <h1>Overview</h1>
        {info.data && (
          <div className="muted small">
            <StatusChip schema={DaemonStateSchema} value={info.data.state} /> up{" "}
            {fmtDuration(durMs(info.data.uptime))} · {fmtInt(info.data.counters?.tasks)} tasks ·{" "}
            {fmtInt(info.data.counters?.rpcsServed)} calls served
          </div>
        )}
      </header>

      <div className="cards">
        <section className="card" data-testid="overview-agents">
          <h2>
            Agents <span className="muted">{agents.data ? agents.data.length : "…"}</span>
          </h2>
          {agents.error && <div className="text-red">{agents.error.rawMessage}</div>}
          <div className="state-grid">
            {enumValues(AgentStateSchema).map((s) => {
              const n = counts.get(s) ?? 0;
              const short = enumShort(AgentStateSchema, s);
              return (
                <a
                  key={s}
                  href="#/agents"
                  className={`state-cell ${n === 0 ? "zero" : ""}`}
                  title={enumName(AgentStateSchema, s)}
                >
                  <span className={`dot dot-${toneOf(short, true)}`} />
                  <span className="state-name">{short}</span>
                  <span className="state-count" data-testid={`overview-state-${enumName(AgentStateSchema, s)}`}>
                    {n}
                  </span>
                </a>
              );
            })}
          </div>
        </section>

        <section className="card" data-testid="overview-spend">
          <h2>Spend today</h2>
          {spend.error && <div className="text-red">{spend.error.rawMessage}</div>}
          <div className="big-numbers">
            <div>
              <div className="big" data-testid="overview-spend-usd">
                {total ? fmtUsd(total.costUsd) : "…"}
              </div>
              <div className="muted small">US dollars</div>
            </div>
            <div>
              <div className="big" data-testid="overview-spend-tokens">
                {total ? fmtInt(total.totalTokens) : "…"}
              </div>
              <div className="muted small">tokens</div>
            </div>
            <div>
              <div className="big">{total ? fmtInt(total.calls) : "…"}</div>
              <div className="muted small">LLM calls</div>
            </div>
          </div>
          <div className="muted small">Since local midnight · <a href="#/usage">details</a></div>
        </section>

        <section className="card">
          <h2>Waiting for you</h2>
          <ul className="plain">
            <li>
              <a href="#/plans">{plans.data ? plans.data.plans.length : "…"} plan(s) awaiting approval</a>
            </li>
            <li>{consents.size} consent request(s) pending</li>
          </ul>
        </section>
      </div>

      <section className="card" data-testid="overview-goals">
        <h2>
          Goals in progress <span className="muted">{goals.data ? goals.data.length : "…"}</span>
        </h2>
        {goals.error && <div className="text-red">{goals.error.rawMessage}</div>}
        {goals.data && goals.data.length === 0 && (
          <div className="empty">
            No goal in progress. <a href="#/goals">Submit one</a>.
          </div>
        )}
        {goals.data && goals.data.length > 0 && (
          <table className="table">
            <thead>
              <tr>
                <th>Goal</th>
                <th>Status</th>
                <th>Cost</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {goals.data.map((g) => (
                <tr key={g.id} data-testid={`overview-goal-${g.id}`} data-status={enumName(TaskStatusSchema, g.status)}>
                  <td>
                    <a href={href("goals", g.id)}>{g.title || g.id}</a>
                    {g.paused && <span className="chip chip-amber">paused</span>}
                  </td>
                  <td>
                    <StatusChip schema={TaskStatusSchema} value={g.status} />
                  </td>
                  <td>{fmtUsd(goalCost.get(g.id) ?? 0)}</td>
                  <td>
                    <RelTime ts={g.updateTime} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
