// A plan's steps drawn as a DAG: one box per step, laid out in columns by dependency
// depth (a step sits right of everything it depends on), arrows from each dependency to
// the step that waits for it. A box's colour is the status of the task the step became
// once the plan executes; steps without a task yet are outlined in grey.
import { clip, enumName, enumShort, toneOf } from "../format";
import { PlanStatusSchema, type Plan, type PlanStep } from "../gen/agentd/v1/plans_pb";
import { TaskStatusSchema, type TaskStatus } from "../gen/agentd/v1/tasks_pb";
import { href, navigate } from "../route";

const W = 184;
const H = 46;
const GAP_X = 56;
const GAP_Y = 14;
const PAD = 10;
const LABEL_H = 24;

interface Placed {
  step: PlanStep;
  x: number;
  y: number;
}

interface Laid {
  plan: Plan;
  nodes: Placed[];
  byId: Map<string, Placed>;
  width: number;
  height: number;
}

function layout(plan: Plan): Laid {
  const steps = plan.steps;
  const index = new Map(steps.map((s, i) => [s.id, i] as const));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (s: PlanStep): number => {
    const known = depth.get(s.id);
    if (known !== undefined) return known;
    if (visiting.has(s.id)) return 0; // a cycle (the daemon rejects these); draw flat
    visiting.add(s.id);
    let d = 0;
    for (const dep of s.deps) {
      const i = index.get(dep);
      if (i !== undefined) d = Math.max(d, depthOf(steps[i]!) + 1);
    }
    visiting.delete(s.id);
    depth.set(s.id, d);
    return d;
  };
  const layers: PlanStep[][] = [];
  for (const s of steps) (layers[depthOf(s)] ??= []).push(s);

  // Order each column by the mean row of the steps it depends on, so arrows cross less.
  const row = new Map<string, number>();
  layers.forEach((layer, d) => {
    if (d > 0) {
      const key = (s: PlanStep) => {
        const rows = s.deps.map((x) => row.get(x)).filter((r): r is number => r !== undefined);
        return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : Number.MAX_SAFE_INTEGER;
      };
      layer.sort((a, b) => key(a) - key(b) || (index.get(a.id) ?? 0) - (index.get(b.id) ?? 0));
    }
    layer.forEach((s, r) => row.set(s.id, r));
  });

  const nodes: Placed[] = [];
  layers.forEach((layer, d) =>
    layer.forEach((s, r) => nodes.push({ step: s, x: PAD + d * (W + GAP_X), y: r * (H + GAP_Y) })),
  );
  const rows = Math.max(1, ...layers.map((l) => l.length));
  return {
    plan,
    nodes,
    byId: new Map(nodes.map((n) => [n.step.id, n] as const)),
    width: PAD * 2 + Math.max(1, layers.length) * (W + GAP_X) - GAP_X,
    height: rows * (H + GAP_Y) - GAP_Y,
  };
}

export function PlanDag(props: {
  plans: Plan[];
  taskStatus: (taskId: string) => TaskStatus | undefined;
  testId?: string;
}) {
  const laid = props.plans.map(layout);
  let y = PAD;
  const blocks = laid.map((l) => {
    const top = y;
    y += LABEL_H + l.height + PAD * 2;
    return { l, top };
  });
  const width = Math.max(320, ...laid.map((l) => l.width));
  const height = Math.max(y, 60);

  return (
    <div className="dag-wrap">
      <svg
        className="dag"
        data-testid={props.testId ?? "plan-dag"}
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label="Plan steps and their dependencies"
      >
        <defs>
          <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
            <path d="M 0 0 L 10 5 L 0 10 z" className="dag-arrowhead" />
          </marker>
        </defs>
        {blocks.map(({ l, top }) => {
          const oy = top + LABEL_H;
          return (
            <g key={l.plan.id} data-plan-id={l.plan.id}>
              <text x={PAD} y={top + 14} className="dag-label">
                {`Plan ${l.plan.id} · revision ${l.plan.revision} · ${enumShort(PlanStatusSchema, l.plan.status)}`}
                {l.plan.proposer ? ` · proposed by ${l.plan.proposer}` : ""}
              </text>
              {l.nodes.flatMap((n) =>
                n.step.deps.map((dep) => {
                  const from = l.byId.get(dep);
                  if (!from) return null;
                  const x1 = from.x + W;
                  const y1 = oy + from.y + H / 2;
                  const x2 = n.x;
                  const y2 = oy + n.y + H / 2;
                  const mx = (x1 + x2) / 2;
                  return (
                    <path
                      key={`${dep}->${n.step.id}`}
                      className="dag-edge"
                      d={`M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`}
                      markerEnd="url(#dag-arrow)"
                      data-from={dep}
                      data-to={n.step.id}
                    />
                  );
                }),
              )}
              {l.nodes.map((n) => {
                const st = n.step.taskId ? props.taskStatus(n.step.taskId) : undefined;
                const statusName = st !== undefined ? enumName(TaskStatusSchema, st) : "NOT_STARTED";
                const short = st !== undefined ? enumShort(TaskStatusSchema, st) : "not started";
                const tone = st !== undefined ? toneOf(short) : "none";
                return (
                  <g
                    key={n.step.id}
                    className={`dag-node dag-${tone}`}
                    transform={`translate(${n.x} ${oy + n.y})`}
                    data-testid={`dag-node-${n.step.id}`}
                    data-status={statusName}
                    data-task-id={n.step.taskId || undefined}
                    // A started step opens its task's transcript.
                    onClick={n.step.taskId ? () => navigate(href("transcript", n.step.taskId)) : undefined}
                    style={n.step.taskId ? { cursor: "pointer" } : undefined}
                  >
                    <title>
                      {`${n.step.id}: ${n.step.title}\nrole: ${n.step.role}\nstatus: ${short}` +
                        (n.step.deps.length ? `\nafter: ${n.step.deps.join(", ")}` : "") +
                        (n.step.instructions ? `\n\n${clip(n.step.instructions, 400)}` : "")}
                    </title>
                    <rect width={W} height={H} rx={6} />
                    <text x={10} y={18} className="dag-title">
                      {clip(n.step.title || n.step.id, 26)}
                    </text>
                    <text x={10} y={35} className="dag-sub">
                      {clip(`${n.step.role} · ${short}`, 30)}
                    </text>
                  </g>
                );
              })}
            </g>
          );
        })}
      </svg>
    </div>
  );
}
