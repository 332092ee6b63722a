// Usage: what the agents' LLM calls cost, over a time window. Charts of tokens and
// dollars per time bucket, stacked by role and by model, are built from the ledger's
// individual calls (UsageService.ListUsageRecords, read page by page and extended by
// each usage.recorded event); the totals and per-group tables come from GetUsage.
import { useEffect, useState } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { api, kinds, listAll, noteError, useEvents, useLiveQuery } from "../api";
import { fmtInt, fmtTokens, fmtUsd, tsMs } from "../format";
import { UsageGroupBy, type UsageGroup, type UsageRecord } from "../gen/agentd/v1/usage_pb";

interface Window {
  label: string;
  spanMs: number;
  bucketMs: number;
}

const H = 3600_000;
const WINDOWS: Record<string, Window> = {
  "1h": { label: "last hour", spanMs: H, bucketMs: 5 * 60_000 },
  "24h": { label: "last 24 hours", spanMs: 24 * H, bucketMs: H },
  "7d": { label: "last 7 days", spanMs: 7 * 24 * H, bucketMs: 6 * H },
  "30d": { label: "last 30 days", spanMs: 30 * 24 * H, bucketMs: 24 * H },
};

/** Records read at most for the charts. */
const MAX_RECORDS = 100000;
/** Series drawn at most per chart; the rest are summed as "other". */
const MAX_SERIES = 8;
const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#64748b"];

const tz = () => -new Date().getTimezoneOffset() * 60_000;
function bucketOf(t: number, size: number): number {
  return Math.floor((t + tz()) / size) * size - tz();
}

function bucketLabel(t: number, w: Window): string {
  const d = new Date(t);
  const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  if (w.spanMs <= 24 * H) return hm;
  const md = `${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  return w.bucketMs >= 24 * H ? md : `${md} ${hm}`;
}

interface Row {
  t: number;
  label: string;
  tokens: Record<string, number>;
  cost: Record<string, number>;
}

interface Series {
  rows: Row[];
  keys: string[];
}

function series(records: UsageRecord[], keyOf: (r: UsageRecord) => string, w: Window, start: number, end: number): Series {
  const totals = new Map<string, number>();
  for (const r of records) {
    const k = keyOf(r);
    totals.set(k, (totals.get(k) ?? 0) + Number(r.promptTokens + r.completionTokens) + r.costUsd * 1e6);
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([k]) => k);
  const top = new Set(ranked.slice(0, MAX_SERIES));
  const keys = ranked.length > MAX_SERIES ? [...top, "other"] : ranked;

  const rows = new Map<number, Row>();
  for (let t = bucketOf(start, w.bucketMs); t <= end; t += w.bucketMs) {
    rows.set(t, { t, label: bucketLabel(t, w), tokens: {}, cost: {} });
  }
  for (const r of records) {
    const ms = tsMs(r.time);
    if (ms === undefined) continue;
    const row = rows.get(bucketOf(ms, w.bucketMs));
    if (!row) continue;
    const raw = keyOf(r);
    const k = top.has(raw) ? raw : "other";
    row.tokens[k] = (row.tokens[k] ?? 0) + Number(r.promptTokens + r.completionTokens);
    row.cost[k] = (row.cost[k] ?? 0) + r.costUsd;
  }
  return { rows: [...rows.values()].sort((a, b) => a.t - b.t), keys };
}

const roleKey = (r: UsageRecord) => r.role || "(none)";
const modelKey = (r: UsageRecord) => (r.provider ? `${r.provider}/${r.model}` : r.model || "(none)");

export function UsageView() {
  const [win, setWin] = useState("24h");
  const w = WINDOWS[win]!;
  const [start, setStart] = useState(() => Date.now() - w.spanMs);
  const [records, setRecords] = useState<Map<string, UsageRecord>>(new Map());
  const [capped, setCapped] = useState(false);
  const [loadError, setLoadError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [reload, setReload] = useState(0);

  // Read the window's calls, newest first, page by page.
  useEffect(() => {
    let live = true;
    const s = Date.now() - w.spanMs;
    setStart(s);
    setLoading(true);
    listAll(
      (t) => api.usage.listUsageRecords({ filter: { startTime: timestampFromDate(new Date(s)) }, pageSize: 1000, pageToken: t }),
      (r) => r.records,
      MAX_RECORDS,
    ).then(
      (all) => {
        if (!live) return;
        setRecords(new Map(all.map((r) => [r.id, r] as const)));
        setCapped(all.length >= MAX_RECORDS);
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
  }, [win, reload, w.spanMs]);

  // Each recorded call arrives as an event carrying it; a resync reads everything again.
  useEvents((e) => {
    if (e === null) {
      setReload((n) => n + 1);
      return;
    }
    if (e.payload.case === "usageRecord") {
      const r = e.payload.value;
      setRecords((prev) => (prev.has(r.id) ? prev : new Map(prev).set(r.id, r)));
    }
  });

  const filter = { startTime: timestampFromDate(new Date(start)) };
  const totals = useLiveQuery(
    () =>
      Promise.all([
        api.usage.getUsage({ filter, groupBy: [UsageGroupBy.ROLE] }),
        api.usage.getUsage({ filter, groupBy: [UsageGroupBy.MODEL] }),
      ]),
    [start],
    { match: kinds("usage."), debounceMs: 500 },
  );
  const byRole = totals.data?.[0];
  const byModel = totals.data?.[1];

  const list = [...records.values()];
  const end = Date.now();
  const roleSeries = series(list, roleKey, w, start, end);
  const modelSeries = series(list, modelKey, w, start, end);

  return (
    <div className="view" data-testid="view-usage">
      <header className="view-head">
        <h1>Usage</h1>
        <select value={win} onChange={(e) => setWin(e.target.value)} data-testid="usage-window">
          {Object.entries(WINDOWS).map(([k, v]) => (
            <option key={k} value={k}>
              {v.label}
            </option>
          ))}
        </select>
      </header>
      {(loadError || totals.error) && <div className="banner banner-error">{loadError ?? totals.error?.rawMessage}</div>}

      <div className="cards">
        <section className="card">
          <h2>Cost</h2>
          <div className="big" data-testid="usage-total-usd">
            {byRole?.total ? fmtUsd(byRole.total.costUsd) : "…"}
          </div>
          <div className="muted small">{w.label}</div>
        </section>
        <section className="card">
          <h2>Tokens</h2>
          <div className="big" data-testid="usage-total-tokens">
            {byRole?.total ? fmtInt(byRole.total.totalTokens) : "…"}
          </div>
          <div className="muted small">
            {byRole?.total
              ? `${fmtInt(byRole.total.promptTokens)} prompt · ${fmtInt(byRole.total.completionTokens)} completion`
              : ""}
          </div>
        </section>
        <section className="card">
          <h2>Calls</h2>
          <div className="big">{byRole?.total ? fmtInt(byRole.total.calls) : "…"}</div>
          <div className="muted small">
            {loading ? "reading the ledger…" : `${fmtInt(list.length)} charted${capped ? " (capped)" : ""}`}
          </div>
        </section>
      </div>

      <UsageCharts title="By role" testId="usage-chart-role" s={roleSeries} />
      <GroupTable title="Totals by role" groups={byRole?.groups ?? []} name={(g) => g.role || "(none)"} />
      <UsageCharts title="By model" testId="usage-chart-model" s={modelSeries} />
      <GroupTable
        title="Totals by model"
        groups={byModel?.groups ?? []}
        name={(g) => (g.provider ? `${g.provider}/${g.model}` : g.model || "(none)")}
      />
    </div>
  );
}

function UsageCharts(props: { title: string; testId: string; s: Series }) {
  const { rows, keys } = props.s;
  return (
    <section className="card" data-testid={props.testId}>
      <h2>{props.title}</h2>
      {keys.length === 0 ? (
        <div className="empty">No LLM calls in this window.</div>
      ) : (
        <div className="chart-pair">
          <Chart rows={rows} keys={keys} metric="tokens" />
          <Chart rows={rows} keys={keys} metric="cost" />
        </div>
      )}
    </section>
  );
}

/** Dollars on an axis: enough digits that small ticks stay distinct. */
function usdTick(v: number): string {
  if (v === 0) return "$0";
  if (Math.abs(v) < 0.1) return `$${v.toFixed(3)}`;
  if (Math.abs(v) < 100) return `$${v.toFixed(2)}`;
  return `$${Math.round(v)}`;
}

function Chart(props: { rows: Row[]; keys: string[]; metric: "tokens" | "cost" }) {
  const fmt = props.metric === "cost" ? usdTick : (v: number) => fmtTokens(v);
  return (
    <div className="chart">
      <div className="muted small">{props.metric === "cost" ? "Cost (USD)" : "Tokens"}</div>
      <ResponsiveContainer width="100%" height={220}>
        <BarChart data={props.rows} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" vertical={false} />
          <XAxis dataKey="label" tick={{ fontSize: 11 }} minTickGap={16} />
          <YAxis tick={{ fontSize: 11 }} tickFormatter={(v: number) => fmt(v)} width={56} />
          <Tooltip formatter={(v) => fmt(Number(v))} />
          <Legend wrapperStyle={{ fontSize: 12 }} />
          {props.keys.map((k, i) => (
            <Bar
              key={k}
              name={k}
              dataKey={(row: Row) => row[props.metric][k] ?? 0}
              stackId="a"
              fill={PALETTE[i % PALETTE.length]}
              isAnimationActive={false}
            />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

function GroupTable(props: { title: string; groups: UsageGroup[]; name: (g: UsageGroup) => string }) {
  if (props.groups.length === 0) return null;
  return (
    <section className="card">
      <h2>{props.title}</h2>
      <table className="table">
        <thead>
          <tr>
            <th />
            <th className="num">Calls</th>
            <th className="num">Prompt</th>
            <th className="num">Completion</th>
            <th className="num">Tokens</th>
            <th className="num">Cost</th>
          </tr>
        </thead>
        <tbody>
          {props.groups.map((g) => (
            <tr key={props.name(g)}>
              <td>{props.name(g)}</td>
              <td className="num">{fmtInt(g.totals?.calls)}</td>
              <td className="num">{fmtInt(g.totals?.promptTokens)}</td>
              <td className="num">{fmtInt(g.totals?.completionTokens)}</td>
              <td className="num">{fmtInt(g.totals?.totalTokens)}</td>
              <td className="num">{fmtUsd(g.totals?.costUsd)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
