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

async function loggedIn() {
  const page = await newPage(browser);
  await page.goto(agentd.loginUrl);
  await page.getByTestId("view-overview").waitFor({ timeout: 15000 });
  return page;
}

test("without the token: the login page, and no data; the login link: the overview", { timeout: 120000 }, async () => {
  const anonymous = await newPage(browser);
  await anonymous.goto(agentd.base);
  await anonymous.getByTestId("login-page").waitFor({ timeout: 15000 });
  assert.equal(await anonymous.getByTestId("view-overview").count(), 0);
  // The page's own API calls were refused: the agent it would list is nowhere.
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
  await row.waitFor({ timeout: 15000 });
  await waitFor(async () => (await row.getByTestId("agent-state").innerText()).includes("RUNNING"),
    15000, "flood-1 to run");
  const before = await agentd.ctl("describe", "agent", "flood-1");
  const pid = Number(before.pid);
  assert.ok(pid > 0, JSON.stringify(before));
  assert.equal((await row.getByTestId("agent-restarts").innerText()).trim(), "0");

  process.kill(pid, "SIGKILL");
  await waitFor(async () => (await row.getByTestId("agent-restarts").innerText()).trim() === "1",
    20000, "the row to show one restart");
  await waitFor(async () => {
    const shown = Number((await row.getByTestId("agent-pid").innerText()).trim());
    return shown > 0 && shown !== pid &&
      (await row.getByTestId("agent-state").innerText()).includes("RUNNING");
  }, 20000, "the row to show the new process running");
  await shot(page, "agents");
  await page.context().close();
});

test("the logs view follows a writer live and resumes after a reconnect with no duplicates", { timeout: 180000 }, async () => {
  const page = await loggedIn();
  await openView(page, "logs");
  await page.getByTestId("logs-agent-flood-0").click();
  const lines = page.locator('[data-testid="log-line"][data-agent="flood-0"]');
  const seqs = async () =>
    lines.evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-seq"))));
  await waitFor(async () => (await page.getByTestId("logs-status").innerText()).includes("live"),
    15000, "the log stream to be live");
  await waitFor(async () => (await lines.count()) >= 40, 20000, "40 lines");
  const first = await seqs();
  // Live: more lines arrive while we watch.
  await waitFor(async () => (await lines.count()) >= first.length + 20, 20000, "new lines");

  // A reconnect: agentd restarts under the open tab; its agents start again and write on.
  await agentd.restart();
  const beforeMax = Math.max(...(await seqs()));
  await waitFor(async () => Math.max(...(await seqs())) >= beforeMax + 40, 60000,
    "lines after the restart");
  await waitFor(async () => (await page.getByTestId("logs-status").innerText()).includes("live"),
    15000, "the stream to be live again");
  const all = await seqs();
  assert.equal(new Set(all).size, all.length, "no line is shown twice");
  for (let i = 1; i < all.length; i++) {
    assert.equal(all[i], all[i - 1] + 1, `seq ${all[i - 1]} is followed by ${all[i]}: nothing lost or repeated`);
  }
  await shot(page, "logs");
  await page.context().close();
});

test("chat reaches an agent, every other view renders, and the audit chain verifies from the UI", { timeout: 120000 }, async () => {
  const page = await loggedIn();
  await openView(page, "chat");
  await page.getByTestId("chat-to").selectOption("flood-0");
  await page.getByTestId("chat-input").fill("hello from the browser");
  await page.getByTestId("chat-send").click();
  await page.locator('[data-testid="chat-message"][data-to="flood-0"]').first().waitFor({ timeout: 15000 });
  const sent = await agentd.ctl("messages");
  assert.ok((sent.envelopes ?? []).some((m) => m.to === "flood-0" && m.body === "hello from the browser"),
    JSON.stringify(sent));
  await shot(page, "chat");
  for (const view of ["goals", "plans", "usage"]) {
    await openView(page, view);
    await shot(page, view);
  }
  await openView(page, "audit");
  await waitFor(async () => (await page.getByTestId("audit-row").count()) > 0, 15000,
    "audit entries (the agent started from the UI)");
  await page.getByTestId("audit-verify").click();
  await waitFor(async () => /ok/i.test(await page.getByTestId("audit-verify-result").innerText()),
    15000, "the chain to verify");
  await shot(page, "audit");
  assert.deepEqual(page.agentdConsole.filter((m) => !/favicon|Failed to load resource/.test(m)), [],
    "no errors in the page's console");
  await page.context().close();
});
