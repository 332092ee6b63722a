// The web UI against a real agentd in Chromium: login, the overview, live agents (start
// from the UI, kill -9 from outside), live logs across a daemon restart, and a screenshot
// of every view.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Agentd, launchBrowser, newPage, openView, shot, waitFor } from "./harness.mjs";

// Two writers of numbered lines: flood-0 always on (the logs test), and the role the
// agents test starts from the UI.
const config = `
supervision: {restart_sec: 100ms, stop_timeout: 2s}
roles:
  flood: {command: [sh, -c, 'i=0; while :; do echo "line $i"; i=$((i+1)); sleep 0.02; done'], max_instances: 3}
  bulk: {command: [sh, -c, 'seq -f "bulk line %g" 1 100000; exec sleep 3600']}
agents: [{id: flood-0, role: flood}]
`;

let agentd, browser;

before(async () => {
  agentd = new Agentd(config);
  await agentd.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await agentd?.cleanup();
});

// Two animation frames: the virtualized list has rendered what its scroll position shows.
async function settled(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

// The seqs of `agent`'s lines the logs view holds, in order: its pane scrolled from top
// to bottom, a screen at a time, reading the rows each position puts in the page.
async function shownSeqs(page, agent) {
  const pane = page.locator(".logs-pane");
  await pane.evaluate((el) => { el.scrollTop = 0; });
  const byIndex = new Map();
  for (let step = 0; step < 5000; step++) {
    await settled(page);
    const rows = await page.locator(".logs-row").evaluateAll((els) => els.map((e) => {
      const line = e.querySelector('[data-testid="log-line"]');
      return [Number(e.getAttribute("data-index")), line?.getAttribute("data-agent"), Number(line?.getAttribute("data-seq"))];
    }));
    for (const [i, a, seq] of rows) if (a === agent) byIndex.set(i, seq);
    const end = await pane.evaluate((el) => el.scrollTop + el.clientHeight >= el.scrollHeight - 2);
    if (end) break;
    await pane.evaluate((el) => { el.scrollTop += Math.max(1, Math.floor(el.clientHeight * 0.8)); });
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, s]) => s);
}

// An element's text with its white space collapsed: what a person reads.
async function text(locator) {
  return ((await locator.textContent()) ?? "").replace(/\s+/g, " ").trim();
}

async function loggedIn() {
  const page = await newPage(browser);
  await page.goto(agentd.loginUrl);
  await page.getByTestId("view-overview").waitFor({ timeout: 60000 });
  return page;
}

test("without the token: the login page, and no data; the login link: the overview", { timeout: 120000 }, async () => {
  const refused = 'agentd_http_requests_total{route="grpc-web",code="UNAUTHENTICATED"}';
  const refusedBefore = (await agentd.metric(refused)) ?? 0;
  const anonymous = await newPage(browser);
  await anonymous.goto(agentd.base);
  await anonymous.getByTestId("login-page").waitFor({ timeout: 60000 });
  assert.equal(await anonymous.getByTestId("view-overview").count(), 0);
  // The page's own API calls reached agentd and were refused there (not merely never
  // made), and the agent they would have listed is nowhere on the page.
  await waitFor(async () => ((await agentd.metric(refused)) ?? 0) > refusedBefore, 10000,
    "agentd to count the anonymous page's calls as UNAUTHENTICATED");
  assert.equal(await anonymous.getByText("flood-0").count(), 0);
  await shot(anonymous, "login");
  await anonymous.context().close();

  const page = await loggedIn();
  assert.ok(!page.url().includes("token="), `the token left the address bar: ${page.url()}`);
  // The running daemon's one agent is counted (running or idle; a command agent runs).
  await waitFor(async () => {
    const running = page.getByTestId("overview-state-AGENT_STATE_RUNNING");
    return (await running.count()) > 0 && (await running.innerText()).trim() === "1";
  }, 15000, "the overview to count flood-0 as running");
  await shot(page, "overview");
  await page.context().close();
});

test("an agent started from the UI appears live, and its row shows a kill -9's restart", { timeout: 120000 }, async () => {
  const page = await loggedIn();
  await openView(page, "agents");
  await page.getByTestId("start-role").fill("flood");
  await page.getByTestId("start-id").fill("flood-1");
  await page.getByTestId("start-submit").click();
  const row = page.getByTestId("agent-row-flood-1");
  await row.waitFor({ timeout: 60000 });
  const state = async () => [await row.getAttribute("data-state"), await text(row.getByTestId("agent-state"))];
  await waitFor(async () => (await state()).join() === "AGENT_STATE_RUNNING,RUNNING", 15000, "flood-1 to run");
  const before = await agentd.ctl("describe", "agent", "flood-1");
  const pid = Number(before.pid);
  assert.ok(pid > 0, JSON.stringify(before));
  assert.equal(before.role, "flood");
  // The row shows the process agentd supervises, and that it has not restarted.
  await waitFor(async () => await text(row.getByTestId("agent-pid")) === String(pid), 10000,
    `the row to show pid ${pid}`);
  assert.equal(await text(row.getByTestId("agent-restarts")), "0");

  process.kill(pid, "SIGKILL");
  await waitFor(async () => await text(row.getByTestId("agent-restarts")) === "1",
    20000, "the row to show one restart");
  // The new process, as agentd knows it, is the one the row shows, running.
  await waitFor(async () => {
    const now = Number((await agentd.ctl("describe", "agent", "flood-1")).pid);
    return now > 0 && now !== pid && await text(row.getByTestId("agent-pid")) === String(now) &&
      (await state()).join() === "AGENT_STATE_RUNNING,RUNNING";
  }, 20000, "the row to show the new process running");
  assert.equal(await text(row.getByTestId("agent-restarts")), "1", "one kill, one restart");
  await shot(page, "agents");
  await page.context().close();
});

test("the logs view follows a writer live and resumes after a reconnect with no duplicates", { timeout: 180000 }, async () => {
  const page = await loggedIn();
  await openView(page, "logs");
  await page.getByTestId("logs-agent-flood-0").click();
  // Only the rows in view are in the page: the view's count, and every line read by
  // scrolling the paused view from top to bottom.
  const count = async () => Number(await page.getByTestId("logs-rows").getAttribute("data-count"));
  const seqs = async () => {
    await page.getByTestId("logs-pause").click();
    const all = await shownSeqs(page, "flood-0");
    await page.getByTestId("logs-pause").click();
    return all;
  };
  const status = () => text(page.getByTestId("logs-status"));
  await waitFor(async () => await status() === "live", 15000, "the log stream to be live");
  await waitFor(async () => (await count()) >= 40, 20000, "40 lines");
  const first = await seqs();
  assert.ok(first.length >= 40 && first.every((n) => Number.isInteger(n) && n > 0), `seqs: ${first}`);
  // Live: more lines arrive while we watch.
  await waitFor(async () => (await count()) >= first.length + 20, 20000, "new lines");
  // Highest seq shown before the restart; the lines after it must come over a new stream.
  const beforeMax = Math.max(...(await seqs()));
  assert.ok(Number.isInteger(beforeMax) && beforeMax >= first.at(-1) + 20, `highest seq ${beforeMax}`);

  // A reconnect: agentd stops under the open tab (the page notices: it is no longer
  // live), then starts again; its agents start again and write on.
  await agentd.stop();
  await waitFor(async () => await status() === "reconnecting", 15000,
    "the page to notice that agentd went away");
  await agentd.start();
  await waitFor(async () => Math.max(...(await seqs())) >= beforeMax + 40, 60000,
    "lines after the restart");
  await waitFor(async () => await status() === "live", 15000, "the stream to be live again");
  const all = await seqs();
  // The lines shown before the restart are still there, followed by every later one.
  assert.equal(all[0], first[0], "the lines from before the restart are kept");
  assert.ok(all.length >= first.length + 60, `${all.length} lines shown`);
  assert.equal(new Set(all).size, all.length, "no line is shown twice");
  for (let i = 1; i < all.length; i++) {
    assert.equal(all[i], all[i - 1] + 1, `seq ${all[i - 1]} is followed by ${all[i]}: nothing lost or repeated`);
  }
  assert.equal(await page.getByTestId("log-gap").count(), 0, "no gap line: nothing was lost");
  await shot(page, "logs");
  await page.context().close();
});

test("chat reaches an agent, every other view shows the daemon's data, and the audit chain verifies from the UI", { timeout: 120000 }, async () => {
  const page = await loggedIn();
  await openView(page, "chat");
  await page.getByTestId("chat-to").selectOption("flood-0");
  await page.getByTestId("chat-input").fill("hello from the browser");
  await page.getByTestId("chat-send").click();
  const shown = page.locator('[data-testid="chat-message"][data-to="flood-0"]');
  await shown.first().waitFor({ timeout: 60000 });
  // Stored once, as typed, and the thread shows that very message.
  const sent = (await agentd.ctl("messages")).envelopes ?? [];
  const mine = sent.filter((m) => m.to === "flood-0" && m.body === "hello from the browser");
  assert.equal(mine.length, 1, JSON.stringify(sent));
  assert.equal(await shown.count(), 1);
  assert.equal(await shown.getAttribute("data-id"), mine[0].id);
  assert.equal(await text(shown.locator(".msg-body")), "hello from the browser");
  await shot(page, "chat");

  // Each view with what this daemon's state guarantees: its heading, and counts read
  // from agentd beside it (no LLM is configured here, so no goal, plan or spend).
  const heading = (view, name, level) =>
    page.getByTestId(`view-${view}`).getByRole("heading", { name, exact: true, level });
  const seen = (locator, what) => locator.waitFor({ timeout: 60000 }).catch((e) => {
    throw new Error(`${what}: ${e.message}`);
  });

  const agents = (await agentd.ctl("get", "agents")).agents ?? [];
  const ids = agents.map((a) => a.id);
  assert.ok(ids.includes("flood-0"), `agentd lists flood-0: ${ids}`);
  const running = agents.filter((a) => a.state === "AGENT_STATE_RUNNING").length;
  assert.ok(running >= 1, JSON.stringify(agents));
  const tasks = (await agentd.ctl("get", "tasks")).tasks ?? [];
  const plans = (await agentd.ctl("get", "plans")).plans ?? [];
  const usage = await agentd.ctl("usage");
  assert.deepEqual([tasks.length, plans.length, Number(usage.total?.calls ?? 0)], [0, 0, 0],
    "this daemon has no goal, plan or LLM call");

  await openView(page, "overview");
  await seen(heading("overview", "Overview", 1), "the overview's heading");
  await seen(heading("overview", `Agents ${agents.length}`, 2), `the overview counting ${agents.length} agents`);
  await waitFor(async () => await text(page.getByTestId("overview-state-AGENT_STATE_RUNNING")) === String(running),
    15000, `the overview to count ${running} running`);
  await seen(heading("overview", "Goals in progress 0", 2), "the overview counting no goal in progress");
  await seen(page.getByTestId("overview-goals").getByText("No goal in progress.", { exact: false }), "no goal in progress");
  await seen(page.getByText("0 plan(s) awaiting approval", { exact: true }), "no plan awaiting approval");

  await openView(page, "agents");
  await seen(heading("agents", `Agents ${agents.length}`, 1), `the agents view counting ${agents.length}`);
  for (const id of ids) await seen(page.getByTestId(`agent-row-${id}`), `the row of ${id}`);
  assert.equal(await page.locator('[data-testid^="agent-row-"]').count(), agents.length);

  await openView(page, "goals");
  await seen(heading("goals", "Goals", 1), "the goals view's heading");
  await seen(heading("goals", "All goals 0", 2), "the goals view counting no goal");
  await seen(page.getByTestId("view-goals").getByText("No goals yet.", { exact: true }), "the goals view's empty list");
  await seen(page.getByTestId("goal-submit"), "the goal form");
  await shot(page, "goals");

  await openView(page, "plans");
  await seen(heading("plans", "Plans", 1), "the plans view's heading");
  await seen(heading("plans", "Awaiting approval 0", 2), "the plans view counting none awaiting approval");
  await seen(heading("plans", "Past plans 0", 2), "the plans view counting no past plan");
  await seen(page.getByTestId("view-plans").getByText("Nothing to approve.", { exact: true }), "the plans view's empty list");
  await shot(page, "plans");

  await openView(page, "usage");
  await seen(heading("usage", "Usage", 1), "the usage view's heading");
  // "0 charted" appears only once the ledger was read (before: "reading the ledger…").
  await seen(page.getByTestId("view-usage").getByText("0 charted", { exact: true }), "the usage view's ledger, read");
  for (const chart of ["usage-chart-role", "usage-chart-model"]) {
    await seen(page.getByTestId(chart).getByText("No LLM calls in this window.", { exact: true }), `${chart} empty`);
  }
  assert.equal(await page.getByTestId("view-usage").locator(".banner-error").count(), 0, "no error banner");
  await shot(page, "usage");

  // The audit log: every entry agentd holds, flood-1's start (from the UI) among them.
  await openView(page, "audit");
  const rows = page.getByTestId("audit-row");
  let entries = [];
  await waitFor(async () => {
    entries = (await agentd.ctl("audit")).entries ?? [];
    return entries.length > 0 && (await rows.count()) === entries.length;
  }, 15000, "one audit row per entry agentd holds");
  const start = entries.find((e) => e.action === "agent.start" && e.target === "flood-1");
  assert.ok(start, `agentd audited flood-1's start: ${JSON.stringify(entries)}`);
  const cells = (await page.locator(`[data-testid="audit-row"][data-seq="${start.seq}"] > td`).allTextContents())
    .map((c) => c.replace(/\s+/g, " ").trim());
  // #, when, actor, action, target, goal / task, details.
  assert.equal(cells.length, 7, JSON.stringify(cells));
  assert.deepEqual([cells[0], cells[3], cells[4]], [String(start.seq), "agent.start", "flood-1"], JSON.stringify(cells));
  assert.ok(start.actor?.id && cells[2].endsWith(start.actor.id), `actor ${JSON.stringify(start.actor)} in ${cells[2]}`);
  assert.equal(cells[6], "role=flood");
  const n = entries.length;
  await seen(heading("audit", `Audit log ${n.toLocaleString("en-US")}`, 1), `the audit view counting ${n} entries`);

  // Verify: the banner says the chain is intact, how many entries were checked (all of
  // them), and the head of the chain: the last entry's hash.
  await page.getByTestId("audit-verify").click();
  const result = page.getByTestId("audit-verify-result");
  await seen(result, "the verification's outcome");
  assert.equal(await result.getAttribute("data-ok"), "true", await text(result));
  const head = entries.at(-1).hash;
  assert.match(head, /^[0-9a-f]{64}$/);
  assert.equal(await text(result),
    `Chain ok: ${n.toLocaleString("en-US")} entries checked; last hash ${head.slice(0, 16)}…`);
  const cli = await agentd.ctl("audit", "--verify");
  assert.deepEqual([cli.ok, Number(cli.entriesChecked), cli.lastHash], [true, n, head], "agentctl agrees");
  await shot(page, "audit");
  assert.deepEqual(page.agentdConsole.filter((m) => !/favicon|Failed to load resource/.test(m)), [],
    "no errors in the page's console");
  await page.context().close();
});

test("the logs view follows 100,000 lines: only the rows in view are in the page, and search jumps between matches", { timeout: 180000 }, async () => {
  await agentd.ctl("start", "bulk", "--id", "bulk-0");
  // All written and captured: agentd has the last line.
  await waitFor(async () => {
    try {
      return (await agentd.ctl("logs", "bulk-0", "--tail", "1", "--stream", "stdout")).line === "bulk line 100000";
    } catch {
      return false; // not started yet
    }
  }, 60000, "bulk-0 to write its 100,000 lines");
  const page = await loggedIn();
  await page.goto(`${agentd.base}/#/logs?agents=bulk-0`);
  await page.getByTestId("view-logs").waitFor({ timeout: 30000 });
  const count = async () => Number(await page.getByTestId("logs-rows").getAttribute("data-count"));
  await waitFor(async () => (await count()) > 0, 20000, "the tail");
  // From the first record on: every line through the stream.
  await page.getByTestId("logs-jump-seq").fill("1");
  await page.getByTestId("logs-jump-go").click();
  await waitFor(async () => (await count()) >= 100000, 90000, async () => `100,000 lines (${await count()} so far)`);
  // The page holds a window of rows, not the 100,000.
  await settled(page);
  const inPage = await page.locator(".logs-row").count();
  assert.ok(inPage > 0 && inPage < 400, `${inPage} rows in the page`);
  // Top and bottom: the first and the last line, each where it belongs.
  const pane = page.locator(".logs-pane");
  await pane.evaluate((el) => { el.scrollTop = 0; });
  await settled(page);
  // (after the supervisor's own notes on the agent's start)
  assert.match(await text(page.locator(".logs-row").filter({ hasText: /bulk line/ }).first()), /bulk line 1$/);
  await pane.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await settled(page);
  await settled(page);
  assert.match(await page.locator(".logs-row").last().innerText(), /bulk line 100000/);
  // The middle: the rows in view are consecutive lines.
  await pane.evaluate((el) => { el.scrollTop = el.scrollHeight / 2; });
  await settled(page);
  const middle = await page.locator(".logs-row").evaluateAll((els) =>
    els.map((e) => Number(/bulk line (\d+)/.exec(e.textContent ?? "")?.[1])).filter(Number.isFinite).sort((a, b) => a - b));
  assert.ok(middle.length > 10 && middle[0] > 30000 && middle.at(-1) < 70000, `middle rows ${middle[0]}…${middle.at(-1)}`);
  for (let i = 1; i < middle.length; i++) assert.equal(middle[i], middle[i - 1] + 1);
  // Search: every match counted; next jumps to each in turn.
  await page.getByTestId("logs-search").fill("bulk line 7777");
  await waitFor(async () => /^1 of 11$/.test(await text(page.getByTestId("logs-matches"))), 10000, "11 matches (7777, 77770…77779)");
  await page.getByTestId("logs-match-next").click();
  await settled(page);
  assert.match(await text(page.getByTestId("logs-matches")), /^2 of 11$/);
  assert.match(await text(page.locator(".log-hl")), /bulk line 77770/);
  await shot(page, "logs-100k");
  await page.context().close();
});
