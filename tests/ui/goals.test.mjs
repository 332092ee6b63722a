// Goals through the web UI with real agents and dev/fakellm: a goal submitted in the UI
// whose plan waits for a person, approved in the UI, run to completion, and its spend on
// the usage charts; and a consent-gated tool call decided in the UI's modal.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agentd, env, launchBrowser, newPage, openView, shot, startFakeLlm, waitFor } from "./harness.mjs";

// Roles ceo, manager and coder on fakellm's models, priced so the spend is not zero.
function config(fakeUrl, shellAllow, ceoTools = "delegate, complete_task, fail_task") {
  return `
supervision: {restart_sec: 50ms, heartbeat: {interval: 200ms, ttl: 3s}, stop_timeout: 2s}
providers:
  fake: {kind: openai, base_url: "${fakeUrl}/v1"}
models:
  ceo:     {provider: fake, model: ceo-m, max_tokens: 100, price: {input_per_mtok: 3, output_per_mtok: 15}}
  manager: {provider: fake, model: manager-m, max_tokens: 100, price: {input_per_mtok: 1, output_per_mtok: 5}}
  coder:   {provider: fake, model: coder-m, max_tokens: 100, price: {input_per_mtok: 1, output_per_mtok: 5}}
roles:
  ceo:     {model: ceo, prompt: roles/ceo.md, tools: [${ceoTools}], max_instances: 1}
  manager: {model: manager, prompt: roles/manager.md, tools: [propose_plan, delegate, complete_task, fail_task]}
  coder:   {model: coder, prompt: roles/coder.md, max_instances: 2,
            tools: [fs.read, fs.write, shell.run, complete_task, fail_task]}
agents: []
policy:
  shell: {allow: [${shellAllow}], sandbox: auto}
`;
}

// The CEO hands the goal to the Manager, whose two-step plan waits for a person; the
// Coders write and check a file; summaries go back up.
const planScenario = `
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "hello.txt is written and checked"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply: {tool_calls: [{name: delegate, arguments: {role: manager, instructions: "Plan and run: write hello.txt"}}]}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting for the manager."}
  - name: manager-final
    match: {model: manager-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "2 steps done"}}]}
  - name: manager-plan
    match: {model: manager-m, last_role: user}
    reply:
      tool_calls:
        - name: propose_plan
          arguments:
            summary: "Write the greeting, then check it"
            steps:
              - {id: write, role: coder, title: "Write hello.txt", instructions: "Write hello.txt", estimate_tokens: 1000}
              - {id: check, role: coder, title: "Check hello.txt", instructions: "Check hello.txt", deps: [write], estimate_tokens: 500}
  - name: manager-wait
    match: {model: manager-m, last_role: tool}
    reply: {text: "Waiting for the plan."}
  - name: coder-write
    match: {model: coder-m, last_role: user, contains: "Write hello.txt"}
    reply: {tool_calls: [{name: fs_write, arguments: {path: hello.txt, content: "hello\\n"}}]}
  - name: coder-check
    match: {model: coder-m, last_role: user, contains: "Check hello.txt"}
    reply: {tool_calls: [{name: fs_read, arguments: {path: hello.txt}}]}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "done"}}]}
`;

// The Coder runs a program off the allowlist: the agent asks a person through agentd.
const consentScenario = `
rules:
  - name: ceo-final
    match: {model: ceo-m, contains: "have ended"}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "asked"}}]}
  - name: ceo-delegate
    match: {model: ceo-m, last_role: user}
    reply: {tool_calls: [{name: delegate, arguments: {role: coder, instructions: "Print the year"}}]}
  - name: ceo-wait
    match: {model: ceo-m, last_role: tool}
    reply: {text: "Waiting."}
  - name: coder-date
    match: {model: coder-m, last_role: user}
    reply: {tool_calls: [{name: shell_run, arguments: {argv: ["date", "+%Y \\u202etxt.exe"]}}]}
  - name: coder-done
    match: {model: coder-m, last_role: tool}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "ran date"}}]}
`;

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setUp(scenario, shellAllow, ceoTools) {
  const browser = await launchBrowser();
  cleanups.push(() => browser.close());
  const agentd = new Agentd("");
  const fake = await startFakeLlm(agentd.dir, scenario);
  cleanups.push(async () => fake.stop());
  // fakellm's address is known only now: the config is written again with it.
  writeFileSync(agentd.config, `ui: {dir: "${env.uiDir}", editor: []}\n${config(fake.url, shellAllow, ceoTools)}`);
  await agentd.start();
  cleanups.push(() => agentd.cleanup());
  const page = await newPage(browser);
  await page.goto(agentd.loginUrl);
  await page.getByTestId("view-overview").waitFor({ timeout: 60000 });
  return { agentd, fake, page };
}

// An element's text with its white space collapsed.
async function text(locator) {
  return ((await locator.textContent()) ?? "").replace(/\s+/g, " ").trim();
}

// The cells of a table row, as read.
async function cells(page, rowSelector) {
  return (await page.locator(`${rowSelector} > td`).allTextContents()).map((c) => c.replace(/\s+/g, " ").trim());
}

// Dollars as the UI shows them (ui/src/format.ts fmtUsd).
function usd(n) {
  return n !== 0 && Math.abs(n) < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`;
}

async function goalTasks(agentd) {
  return (await agentd.ctl("get", "tasks", "--goal", "g-1")).tasks ?? [];
}

async function submitGoal(page, goalText, workspace, approval, checks = "") {
  await openView(page, "goals");
  await page.getByTestId("goal-text").fill(goalText);
  if (checks) await page.getByTestId("goal-checks").fill(checks);
  await page.getByTestId("goal-workspace").fill(workspace);
  await page.getByTestId("goal-approval").selectOption(approval);
  await page.getByTestId("goal-submit").click();
  const row = page.getByTestId("goal-row-g-1");
  const error = page.getByTestId("toast-error");
  await waitFor(async () => (await row.count()) > 0 || (await error.count()) > 0, 15000,
    "the goal to be listed").catch(async (e) => {
    throw new Error(`${e.message}; the page shows: ${await page.locator("body").innerText()}`);
  });
  if ((await row.count()) === 0) throw new Error(`SubmitGoal failed: ${await error.first().innerText()}`);
  return row;
}

test("a goal from the UI: its plan waits, is approved in the UI, runs green, and its spend is charted", { timeout: 240000 }, async () => {
  const { agentd, page } = await setUp(planScenario, "ls, cat");
  // With a check from the form: agentd runs it before the goal counts as completed.
  const row = await submitGoal(page, "Write a greeting file", join(agentd.dir, "work"), "manual",
    "test -s hello.txt");

  // The plan appears for approval, with its steps, roles and estimates.
  await openView(page, "plans");
  const plan = page.locator('[data-testid^="plan-row-"]').first();
  await plan.waitFor({ timeout: 60000 });
  await waitFor(async () => (await plan.getAttribute("data-status")) === "PLAN_STATUS_PROPOSED",
    30000, "the plan to wait for a person");
  await plan.click();
  await page.getByTestId("plan-step-write").waitFor({ timeout: 60000 });
  // Each step as proposed: id, title, role, what it waits for, its token estimate.
  assert.deepEqual((await cells(page, '[data-testid="plan-step-write"]')).slice(0, 5),
    ["write", "Write hello.txt", "coder", "—", "1,000"]);
  assert.deepEqual((await cells(page, '[data-testid="plan-step-check"]')).slice(0, 5),
    ["check", "Check hello.txt", "coder", "write", "500"]);
  assert.match(await text(page.getByTestId("plan-total-estimate")), /^1,500 tokens · /);
  await shot(page, "plan-approval");
  // Nothing ran before the approval: the goal's tasks are there, none of them a step.
  const early = await goalTasks(agentd);
  assert.ok(early.some((t) => t.id === "g-1"), `agentd lists the goal's tasks: ${JSON.stringify(early)}`);
  assert.deepEqual(early.filter((t) => t.planStepId).map((t) => t.planStepId), []);
  await page.getByTestId("plan-approve").click();

  await openView(page, "goals");
  await row.click();
  await waitFor(async () => (await row.getAttribute("data-status")) === "TASK_STATUS_COMPLETED",
    120000, () => `goal g-1 to complete (agentd log: ${agentd.log.slice(-2000)})`);
  // After the approval the two steps ran as tasks of their own (which shows that the
  // "none of them a step" above looked at the right field).
  const done = await goalTasks(agentd);
  assert.deepEqual(done.filter((t) => t.planStepId).map((t) => t.planStepId).sort(), ["check", "write"]);
  assert.ok(done.length >= 4, `goal, manager task, two steps: ${done.map((t) => t.id)}`);
  // The tree shows every one of the goal's tasks, each completed.
  const nodes = page.locator('[data-testid^="task-node-"]');
  const expected = done.map((t) => `task-node-${t.id}`).sort();
  await waitFor(async () => {
    const shown = await nodes.evaluateAll((els) =>
      els.map((e) => [e.getAttribute("data-testid"), e.getAttribute("data-status")]));
    return JSON.stringify(shown.map(([id]) => id).sort()) === JSON.stringify(expected) &&
      shown.every(([, status]) => status === "TASK_STATUS_COMPLETED");
  }, 10000, `the tree: ${expected.join(", ")}, all completed`);
  // The plan's DAG: both steps completed, check after write.
  await page.getByTestId("plan-dag").waitFor({ timeout: 60000 });
  await waitFor(async () => {
    const st = await Promise.all(["write", "check"].map((id) => page.getByTestId(`dag-node-${id}`).getAttribute("data-status")));
    return st.every((x) => x === "TASK_STATUS_COMPLETED");
  }, 10000, "the DAG to show both steps completed");
  assert.equal(await page.locator('[data-testid="plan-dag"] .dag-edge[data-from="write"][data-to="check"]').count(), 1);
  // The check ran, in the goal's workspace, and passed.
  const goal = await agentd.ctl("describe", "task", "g-1");
  assert.deepEqual(goal.checks?.map((c) => [c.command, c.passed]), [["test -s hello.txt", true]]);
  await waitFor(async () => /test -s hello\.txt passed/.test(await text(page.getByTestId("goal-checks-state"))),
    10000, "the goal page to show the check passed");
  await shot(page, "goal-completed");

  // The write step's transcript, from its DAG node: the coder's prompt, its model turns
  // with their cost, the fs.write call with its arguments, its diff and its result, and
  // agentd's outcome.
  await page.getByTestId("dag-node-write").click();
  await page.getByTestId("view-transcript").waitFor({ timeout: 10000 });
  await waitFor(async () => (await page.getByTestId("tx-outcome").count()) > 0 &&
    (await page.getByTestId("tx-link").textContent()) === "task ended", 20000, "the transcript to arrive whole");
  assert.match(await text(page.getByTestId("tx-instructions").first()), /Write hello\.txt/);
  const write = page.locator('[data-testid="tx-call"][data-tool="fs.write"]');
  assert.equal(await write.count(), 1);
  assert.equal(await write.getAttribute("data-state"), "ok");
  assert.match(await write.getByTestId("tx-diff").innerText(), /\+\+\+ b\/hello\.txt[\s\S]*\+hello/);
  assert.equal(await write.locator(".diff-add").filter({ hasText: "+hello" }).count(), 1);
  assert.match(await write.getByTestId("tx-args").textContent(), /"path": "hello\.txt"/);
  assert.match(await write.getByTestId("tx-result").textContent(), /wrote 6 bytes to hello\.txt/);
  assert.ok((await page.getByTestId("tx-turn").count()) >= 2, "the coder's model turns");
  assert.match(await text(page.getByTestId("tx-turn-cost").first()), /tokens · \$[0-9.]+ · /);
  assert.equal(await page.getByTestId("tx-outcome").last().getAttribute("data-status"), "COMPLETED");
  // Search: every match counted, and the first one the current.
  await page.getByTestId("tx-search").fill("hello.txt");
  await waitFor(async () => /^1 of [1-9]/.test(await text(page.getByTestId("tx-matches"))), 5000, "search matches");
  await page.getByTestId("tx-next").click();
  assert.match(await text(page.getByTestId("tx-matches")), /^2 of /);
  await shot(page, "transcript");
  // The goal's own, from the task tree: the CEO's delegation.
  await openView(page, "goals");
  await row.click();
  await page.getByTestId("transcript-link-g-1").click();
  await page.locator('[data-testid="tx-call"][data-tool="delegate"]').first().waitFor({ timeout: 20000 });

  await openView(page, "usage");
  // The totals are agentd's ledger's, to the cent and the token, and not zero.
  let ledger;
  await waitFor(async () => {
    ledger = await agentd.ctl("usage");
    const cost = Number(ledger.total?.costUsd ?? 0);
    const tokens = Number(ledger.total?.totalTokens ?? 0);
    return cost > 0 && tokens > 0 &&
      await text(page.getByTestId("usage-total-usd")) === usd(cost) &&
      await text(page.getByTestId("usage-total-tokens")) === tokens.toLocaleString("en-US");
  }, 20000, () => `the spend to show (agentd's ledger: ${JSON.stringify(ledger?.total)})`);
  // The charts drew the calls: recharts' bars or areas for the roles that spent.
  await waitFor(async () => (await page.getByTestId("usage-chart-role")
    .locator("svg path.recharts-rectangle, svg path.recharts-curve, svg .recharts-bar-rectangle path").count()) > 0,
  20000, "marks on the by-role chart");
  // The legend names the roles that spent: those of the ledger, the three of this goal.
  const roles = (ledger.groups ?? []).map((g) => g.role).sort();
  assert.deepEqual(roles, ["ceo", "coder", "manager"]);
  const legend = await page.getByTestId("usage-chart-role").locator(".recharts-legend-item-text").allTextContents();
  assert.deepEqual([...new Set(legend)].sort(), roles);
  await shot(page, "usage");
});

test("a consent-gated tool call raises the modal, and the decision reaches the agent", { timeout: 240000 }, async () => {
  const { agentd, fake, page } = await setUp(consentScenario, "ls, cat");
  await submitGoal(page, "Print the year", join(agentd.dir, "work"), "auto");
  const modal = page.getByTestId("consent-modal");
  await modal.waitFor({ timeout: 60000 });
  assert.match(await page.getByTestId("consent-summary").innerText(), /date \$'\+%Y /);
  // The model's bidi override is shown as its escape wherever the modal shows the request,
  // never acted on (it would make "exe.txt" read "txt.exe").
  for (const id of ["consent-summary", "consent-details"]) {
    const text = await page.getByTestId(id).innerText();
    assert.ok(!text.includes("\u202e"), `${id} holds a raw U+202E: ${JSON.stringify(text)}`);
    assert.ok(text.includes("\\u202e"), `${id} does not show the escape: ${JSON.stringify(text)}`);
  }
  const consentId = await modal.getAttribute("data-consent-id");
  assert.ok(consentId, "the modal names its request");
  await shot(page, "consent");
  // The coder waits: one model call so far.
  const coderCalls = (await fake.requests()).filter((r) => r.model === "coder-m").length;
  assert.equal(coderCalls, 1);
  await page.getByTestId("consent-approve").click();
  await modal.waitFor({ state: "hidden", timeout: 60000 });
  // agentd recorded the person's approval of that very request.
  const consents = (await agentd.ctl("get", "consents", "--all")).consentRequests ?? [];
  const decided = consents.find((c) => c.id === consentId);
  assert.equal(decided?.status, "CONSENT_STATUS_APPROVED", JSON.stringify(consents));
  await waitFor(async () => (await agentd.ctl("describe", "task", "g-1")).status === "TASK_STATUS_COMPLETED",
    60000, "the goal to complete");
  // The approved command ran: the model was shown its output, the year.
  const year = String(new Date().getUTCFullYear());
  const toolResults = (await fake.requests())
    .filter((r) => r.model === "coder-m" && r.body.messages.at(-1).role === "tool")
    .map((r) => String(r.body.messages.at(-1).content));
  assert.ok(toolResults.some((c) => c.includes(year)), `a tool result shows ${year}: ${toolResults}`);
});

// The plan scenario, with the Manager completing once told its plan ran as edited.
const planEditScenario = planScenario.replace("rules:\n", `rules:
  - name: manager-edited
    match: {model: manager-m, contains: "was edited", last_role: user}
    reply: {tool_calls: [{name: complete_task, arguments: {summary: "the edited plan is done"}}]}
`);

test("a person edits a proposed plan in the UI: problems show beside the steps, and the edit runs", { timeout: 240000 }, async () => {
  const { agentd, page } = await setUp(planEditScenario, "ls, cat");
  const row = await submitGoal(page, "Write a greeting file", join(agentd.dir, "work"), "manual");
  await openView(page, "plans");
  const plan = page.locator('[data-testid^="plan-row-"]').first();
  await plan.waitFor({ timeout: 60000 });
  await waitFor(async () => (await plan.getAttribute("data-status")) === "PLAN_STATUS_PROPOSED", 30000,
    "the plan to wait for a person");
  await plan.click();
  await page.getByTestId("plan-edit").click();
  const editor = page.getByTestId("plan-editor");
  await editor.waitFor({ timeout: 10000 });
  await waitFor(async () => (await text(page.getByTestId("plan-edit-check"))) === "valid", 10000, "the plan as proposed to check valid");
  // A dependency on a step that is not there: agentd's problem, beside the step.
  const first = page.getByTestId("plan-edit-step-0");
  await first.getByTestId("plan-edit-deps").fill("nowhere");
  await waitFor(async () => (await first.getByTestId("plan-edit-problem").count()) > 0, 10000, "the problem beside the step");
  assert.match(await text(first.getByTestId("plan-edit-problem").first()), /nowhere/);
  assert.equal(await page.getByTestId("plan-edit-approve").isDisabled(), true);
  await shot(page, "plan-edit-problem");
  // Fixed, the instructions changed, the second step removed.
  await first.getByTestId("plan-edit-deps").fill("");
  await first.getByTestId("plan-edit-instructions").fill("Write hello.txt, in the person's words");
  await page.getByTestId("plan-edit-step-1").getByTestId("plan-edit-remove").click();
  await waitFor(async () => (await text(page.getByTestId("plan-edit-check"))) === "valid", 10000, "the edit to check valid");
  await page.getByTestId("plan-edit-approve").click();

  await openView(page, "goals");
  await row.click();
  await waitFor(async () => (await row.getAttribute("data-status")) === "TASK_STATUS_COMPLETED",
    120000, () => `goal g-1 to complete (agentd log: ${agentd.log.slice(-2000)})`);
  const plans = (await agentd.ctl("get", "plans")).plans ?? [];
  const byId = Object.fromEntries(plans.map((p) => [p.id, p]));
  assert.equal(byId["p-1"]?.status, "PLAN_STATUS_SUPERSEDED");
  assert.equal(byId["p-2"]?.status, "PLAN_STATUS_COMPLETED");
  assert.equal(byId["p-2"]?.previousPlanId, "p-1");
  assert.match(byId["p-2"]?.proposer ?? "", /^human:/);
  const steps = (await goalTasks(agentd)).filter((t) => t.planStepId);
  assert.deepEqual(steps.map((t) => [t.planStepId, t.input?.instructions]),
    [["write", "Write hello.txt, in the person's words"]]);
});

// The CEO lists the workspace five times at 1,100 tokens a call: a goal budget of 3,000
// tokens holds it after two calls.
const budgetScenario = `
rules:
  - name: list
    match: {model: ceo-m}
    times: 5
    reply:
      tool_calls: [{name: fs_list, arguments: {path: "."}}]
      usage: {prompt_tokens: 1000, completion_tokens: 100}
  - name: done
    match: {model: ceo-m}
    reply:
      tool_calls: [{name: complete_task, arguments: {summary: "listed five times"}}]
      usage: {prompt_tokens: 1000, completion_tokens: 100}
`;

test("a goal paused at its budget shows its spend and resumes when raised in the UI", { timeout: 240000 }, async () => {
  const { agentd, page } = await setUp(budgetScenario, "ls", "fs.list, complete_task, fail_task");
  await openView(page, "goals");
  await page.getByTestId("goal-budget-tokens").fill("3000");
  const row = await submitGoal(page, "List five times", join(agentd.dir, "work"), "auto");
  await row.click();
  const held = page.getByTestId("goal-budget-held");
  await held.waitFor({ timeout: 60000 });
  // Two calls of 1,100 tokens were allowed; the third would pass 3,000.
  await waitFor(async () => /2,200 of 3,000 tokens/.test(await text(page.getByTestId("goal-budget-spent"))), 10000,
    "the spend against the budget");
  assert.match(await text(page.getByTestId("goal-budget")), /2,200 of 3,000 tokens/);
  await shot(page, "goal-budget-held");
  await page.getByTestId("goal-budget-raise-tokens").fill("10000");
  await page.getByTestId("goal-budget-raise").click();
  await waitFor(async () => (await row.getAttribute("data-status")) === "TASK_STATUS_COMPLETED",
    60000, () => `goal g-1 to complete once raised (agentd log: ${agentd.log.slice(-2000)})`);
  await waitFor(async () => (await held.count()) === 0, 10000, "the banner to go");
  const budget = await agentd.ctl("budget", "get", "g-1");
  assert.equal(String(budget.maxTokens ?? budget.budget?.maxTokens), "10000", JSON.stringify(budget));
});

test("a project bootstrapped from the UI: a template chosen, its post-check followed live", { timeout: 240000 }, async () => {
  const { agentd, page } = await setUp(planScenario, "ls");
  await openView(page, "bootstrap");
  // The templates as agentd lists them, each with what it checks.
  const card = page.getByTestId("template-python-fastapi");
  await card.waitFor({ timeout: 20000 });
  assert.match(await text(card), /FastAPI/);
  assert.match(await text(card), /checked with .*pytest/);
  const listed = (await agentd.ctl("get", "templates")).templates ?? [];
  assert.deepEqual(
    await page.locator('[data-testid^="template-"]').evaluateAll((els) => els.map((e) => e.getAttribute("data-testid"))),
    listed.map((t) => `template-${t.name}`));
  await card.click();
  await page.getByTestId("bootstrap-name").fill("new api");
  await page.getByTestId("bootstrap-dir").fill(join(agentd.dir, "new-api"));
  await page.getByTestId("bootstrap-submit").click();
  const progress = page.locator('[data-testid^="bootstrap-progress-"]');
  await progress.waitFor({ timeout: 20000 });
  await waitFor(async () => (await progress.getAttribute("data-status")) === "COMPLETED", 120000,
    async () => `the bootstrap to complete (it is ${await progress.getAttribute("data-status")}; log: ${await text(page.getByTestId("bootstrap-log"))})`);
  // The post-check's own output, as the bootstrapper printed it.
  const log = await page.getByTestId("bootstrap-log").innerText();
  assert.match(log, /post-check: \/usr\/bin\/python3 -m pytest -q/);
  assert.match(log, /passed/);
  assert.match(await text(page.getByTestId("bootstrap-result")), /new-api/);
  await shot(page, "bootstrap");
  // Open in editor: agentd asks a person first (or says why it cannot).
  const open = page.getByTestId("bootstrap-open-editor");
  assert.equal(await open.isDisabled(), false);
  await open.click();
  await waitFor(async () => (await page.getByTestId("bootstrap-editor-note").count()) > 0 ||
    (await page.getByTestId("toast-error").count()) > 0, 10000, "an answer to open in editor");
});
