// Hands agentd goals over A2A v1.0 with the official JS SDK's client (@a2a-js/sdk), as
// another agent system would: reads the Agent Card, streams a goal's updates until it
// needs input (its plan awaits approval), answers that and the consent request that
// follows, gets the finished task, cancels a second goal, and tries a wrong token. Prints
// one JSON object with what it saw; exits non-zero, saying why on stderr, when a step fails.
// When the card lists the gRPC binding (agentd's TCP listener), the same client is used
// over gRPC too: the finished task, a goal returned at once and canceled, a wrong token.
//   node a2a_client.mjs BASE_URL TOKEN
import * as grpc from '@grpc/grpc-js';
import { Role, TaskState } from '@a2a-js/sdk';
import {
  ClientFactory, ClientFactoryOptions, DefaultAgentCardResolver, JsonRpcTransportFactory,
} from '@a2a-js/sdk/client';
import { GrpcTransportFactory } from '@a2a-js/sdk/client/grpc';

const [base, token] = process.argv.slice(2);
const fail = (msg) => { process.stderr.write(`a2a_client: ${msg}\n`); process.exit(1); };
const seen = {};

const fetchWith = (bearer) => (url, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set('Authorization', `Bearer ${bearer}`);
  return fetch(url, { ...init, headers });
};
const clientWith = async (bearer) => {
  const f = fetchWith(bearer);
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new JsonRpcTransportFactory({ fetchImpl: f })],
    cardResolver: new DefaultAgentCardResolver({ fetchImpl: f }),
    preferredTransports: ['JSONRPC'],
  }));
  return factory.createFromUrl(base);
};
const stateName = (s) => TaskState[s];
// A message with every field set, as the SDK's gRPC encoder wants it.
const text = (t, taskId) => ({
  messageId: `m-${Math.random().toString(36).slice(2)}`,
  contextId: '',
  taskId: taskId ?? '',
  role: Role.ROLE_USER,
  parts: [{ content: { $case: 'text', value: t }, filename: '', mediaType: '' }],
  extensions: [],
  referenceTaskIds: [],
});
const textOf = (msg) => (msg?.parts ?? []).map((p) => p.content?.value ?? '').join('\n');

// The card, as anyone may read it.
const card = await (await fetch(`${base}/.well-known/agent-card.json`)).json();
seen.card = { name: card.name, binding: card.supportedInterfaces?.[0]?.protocolBinding,
              streaming: card.capabilities?.streaming, skills: (card.skills ?? []).map((s) => s.id) };

const client = await clientWith(token);

// A goal, streamed until it needs input.
const states = [];
let task;
let question = '';
for await (const ev of client.sendMessageStream({ message: text('Print the year') })) {
  const p = ev.payload;
  if (p?.$case === 'task') { task = p.value; states.push(stateName(p.value.status.state)); }
  if (p?.$case === 'statusUpdate') {
    states.push(stateName(p.value.status.state));
    question = textOf(p.value.status.message);
  }
}
if (!task) fail('the stream carried no task');
seen.taskId = task.id;
seen.streamStates = states;
seen.question = question;

// Approve the plan: a blocking SendMessage returns at the next question (the consent).
const afterPlan = await client.sendMessage({ message: text('approve', task.id) });
if (!afterPlan.status) fail(`SendMessage did not answer a task: ${JSON.stringify(afterPlan)}`);
seen.afterPlan = { state: stateName(afterPlan.status.state), question: textOf(afterPlan.status.message) };

// Grant the consent: it returns once the goal has ended.
const done = await client.sendMessage({ message: text('approve', task.id) });
seen.done = { state: stateName(done.status.state),
              artifacts: (done.artifacts ?? []).map((a) => textOf(a)) };
const got = await client.getTask({ id: task.id });
seen.got = stateName(got.status.state);

// A message to a task that has ended is refused.
try {
  await client.sendMessage({ message: text('more', task.id) });
  seen.toEnded = 'accepted';
} catch (e) {
  seen.toEnded = String(e.message ?? e);
}

// A second goal, returned at once and canceled.
const second = await client.sendMessage({ message: text('Print the year again'),
                                          configuration: { returnImmediately: true } });
seen.second = { id: second.id, state: stateName(second.status.state) };
const canceled = await client.cancelTask({ id: second.id });
seen.canceled = stateName(canceled.status.state);

// Unknown tasks and wrong tokens get the protocol's errors.
try { await client.getTask({ id: 'g-404' }); seen.missing = 'found'; } catch (e) { seen.missing = String(e.message ?? e); }
try {
  const bad = await clientWith('not-the-token');
  await bad.getTask({ id: task.id });
  seen.wrongToken = 'accepted';
} catch (e) {
  seen.wrongToken = String(e.message ?? e);
}
// The gRPC binding, when the card offers it.
if ((card.supportedInterfaces ?? []).some((i) => i.protocolBinding === 'GRPC')) {
  const auth = (t) => ({ serviceParameters: { authorization: `Bearer ${t}` } });
  const factory = new ClientFactory(ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
    transports: [new GrpcTransportFactory({ grpcChannelCredentials: grpc.credentials.createInsecure() })],
    preferredTransports: ['GRPC'],
  }));
  const g = await factory.createFromUrl(base);
  const viaGrpc = {};
  viaGrpc.got = stateName((await g.getTask({ id: task.id }, auth(token))).status.state);
  const third = await g.sendMessage({ message: text('Print the year once more'),
                                      configuration: { returnImmediately: true } }, auth(token));
  viaGrpc.third = third.id;
  viaGrpc.canceled = stateName((await g.cancelTask({ id: third.id }, auth(token))).status.state);
  try { await g.getTask({ id: 'g-404' }, auth(token)); viaGrpc.missing = 'found'; } catch (e) { viaGrpc.missing = String(e.message ?? e); }
  try { await g.getTask({ id: task.id }, auth('not-the-token')); viaGrpc.wrongToken = 'accepted'; } catch (e) { viaGrpc.wrongToken = String(e.message ?? e); }
  seen.grpc = viaGrpc;
}
process.stdout.write(JSON.stringify(seen) + '\n');
