// The gRPC-web bridge as browsers use it: connect-web (binary) and the official grpc-web
// client (text mode) calling a real agentd from inside Chromium, unary and streaming;
// wrong tokens, unknown methods, and a client that goes away.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { Agentd, launchBrowser, waitFor } from "./harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));
let agentd, browser, bundle;

before(async () => {
  // One always-on agent, so the event feed holds its start.
  agentd = new Agentd('roles:\n  idler: {command: [sleep, "3600"]}\nagents: [{id: idler-1, role: idler}]\n');
  await agentd.start();
  browser = await launchBrowser();
  // The generated code and connect-web resolve from ui/node_modules, so the page runs
  // the same protobuf runtime the UI ships.
  const out = await build({
    entryPoints: [join(here, "bridge_client.ts")],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: "es2022",
    nodePaths: [join(here, "..", "..", "ui", "node_modules")],
    logLevel: "error",
  });
  bundle = out.outputFiles[0].text;
});

after(async () => {
  await browser?.close();
  await agentd?.cleanup();
});

// A page on agentd's origin (a plain one, so no UI streams run beside the test's) with
// the two clients loaded; logged in unless `login` is false.
async function bridgePage({ login = true } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (login) await page.goto(agentd.loginUrl);
  await page.goto(`${agentd.base}/healthz`);
  await page.addScriptTag({ content: bundle });
  return page;
}

test("connect-web and the official grpc-web client call unary and streaming methods", { timeout: 120000 }, async () => {
  const page = await bridgePage();
  const viaConnect = await page.evaluate(() => window.agentdBridge.connectVersion());
  const viaGrpcWeb = await page.evaluate(() => window.agentdBridge.grpcWebVersion());
  assert.equal(viaConnect.ok, true, JSON.stringify(viaConnect));
  assert.equal(viaConnect.apiVersion, "agentd.v1");
  assert.deepEqual(viaGrpcWeb, viaConnect);

  // Both read the feed from its start: wait until it holds two events (the daemon and its agent starting).
  await waitFor(async () => Number((await agentd.ctl("status")).counters?.lastEventSeq ?? 0) >= 2,
    20000, "two events in the feed");
  const seqsConnect = await page.evaluate(() => window.agentdBridge.connectWatch(2));
  const seqsGrpcWeb = await page.evaluate(() => window.agentdBridge.grpcWebWatch(2));
  assert.equal(seqsConnect.length, 2);
  assert.deepEqual(seqsGrpcWeb, seqsConnect, "both clients read the same feed from its start");
  // From its start: the fresh daemon's first two events (a seq that failed to decode
  // would read as 0 here).
  assert.deepEqual(seqsConnect.map(Number), [1, 2]);
  await page.context().close();
});

test("a wrong token, or none, is UNAUTHENTICATED", { timeout: 120000 }, async () => {
  const page = await bridgePage();
  const wrongGrpcWeb = await page.evaluate(() =>
    window.agentdBridge.grpcWebVersion("/agentd.v1.SystemService/GetVersion", "agentd_wrong"));
  assert.equal(wrongGrpcWeb.code, 16, JSON.stringify(wrongGrpcWeb));
  const wrongConnect = await page.evaluate(() => window.agentdBridge.connectVersion("agentd_wrong"));
  assert.equal(wrongConnect.code, 16, JSON.stringify(wrongConnect));
  await page.context().close();

  const anonymous = await bridgePage({ login: false });
  const none = await anonymous.evaluate(() => window.agentdBridge.connectVersion());
  assert.equal(none.ok, false);
  assert.equal(none.code, 16);
  assert.match(none.message, /admin token/);
  await anonymous.context().close();
});

test("an unknown method is UNIMPLEMENTED", { timeout: 120000 }, async () => {
  const page = await bridgePage();
  const r = await page.evaluate(() =>
    window.agentdBridge.grpcWebVersion("/agentd.v1.SystemService/NoSuchMethod"));
  assert.equal(r.code, 12, JSON.stringify(r));
  await page.context().close();
});

test("a client that goes away cancels its server stream", { timeout: 120000 }, async () => {
  const page = await bridgePage();
  const cancelled = 'agentd_rpc_streams_total{method="agentd.v1.EventService/WatchEvents",code="CANCELLED"}';
  // The earlier tests' streams end when their pages close; wait for that, so the count
  // below moves for this stream alone.
  await waitFor(async () => (await agentd.metric("agentd_http_grpc_web_calls")) === 0, 10000,
    "the earlier tests' streams to end");
  const before = (await agentd.metric(cancelled)) ?? 0;
  await page.evaluate(() => window.agentdBridge.openStream());
  await waitFor(async () => (await agentd.metric("agentd_http_grpc_web_calls")) === 1, 10000,
    "the stream to be open");
  await page.evaluate(() => window.agentdBridge.dropStream());
  await waitFor(async () => (await agentd.metric("agentd_http_grpc_web_calls")) === 0, 10000,
    "agentd to end the abandoned stream");
  await waitFor(async () => (await agentd.metric(cancelled)) === before + 1, 10000,
    "the stream to end CANCELLED");
  await page.context().close();
});
