// The five-role workflow of dev/bench/workflow_bench, written with the OpenAI Agents SDK
// for JavaScript (@openai/agents) against the same dev/fakellm endpoint: a CEO hands
// the goal to a Manager, who asks a Specialist, a Coder and a Tester (agents as tools)
// and sums up. Prints one JSON line: {workflows, calls, ms_per_workflow, peak_rss_kb}.
//
//   node dev/bench/peers/agents_workflow.mjs BASE_URL N
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { Agent, run, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } from '@openai/agents';

const [baseUrl, nText] = process.argv.slice(2);
const n = Number(nText ?? 20);
setDefaultOpenAIClient(new OpenAI({ baseURL: `${baseUrl}/v1`, apiKey: 'bench' }));
setOpenAIAPI('chat_completions');  // the API dev/fakellm and local servers speak
setTracingDisabled(true);

const leaf = (name) => new Agent({ name, model: `${name}-sdk`, instructions: `You are the ${name}.` });
const manager = new Agent({
  name: 'manager',
  model: 'manager-sdk',
  instructions: 'You plan and aggregate.',
  tools: ['specialist', 'coder', 'tester'].map((r) =>
    leaf(r).asTool({ toolName: r, toolDescription: `Ask the ${r}` })),
});
const ceo = new Agent({
  name: 'ceo',
  model: 'ceo-sdk',
  instructions: 'You take goals and delegate.',
  tools: [manager.asTool({ toolName: 'manager', toolDescription: 'Ask the manager' })],
});

function peakRssKb() {
  const m = readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/);
  return m ? Number(m[1]) : 0;
}

const before = await (await fetch(`${baseUrl}/_fakellm/requests`)).json();
await run(ceo, 'Add mul() with tests');  // warm-up
const t0 = performance.now();
for (let i = 0; i < n; i++) await run(ceo, 'Add mul() with tests');
const ms = (performance.now() - t0) / n;
const after = await (await fetch(`${baseUrl}/_fakellm/requests`)).json();
console.log(JSON.stringify({
  workflows: n,
  calls: (after.length - before.length) / (n + 1),
  ms_per_workflow: ms,
  peak_rss_kb: peakRssKb(),
}));
