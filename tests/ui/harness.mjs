// What agentd's browser tests share: a real agentd (with dev/fakellm when a scenario is
// given) on a temp state dir, socket and free HTTP port; Debian's chromium driven by
// playwright-core; polling with deadlines; screenshots under the build directory.
//
// CTest passes the binaries' paths in the environment (tests/CMakeLists.txt):
// AGENTD_BINARY, AGENTCTL_BINARY, FAKELLM_SCRIPT, AGENTD_UI_DIR (the built ui/dist),
// AGENTD_UI_SHOTS (where screenshots go).
import { spawn, execFile, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

const run = promisify(execFile);

export const env = {
  agentd: must("AGENTD_BINARY"),
  agentctl: must("AGENTCTL_BINARY"),
  fakellm: must("FAKELLM_SCRIPT"),
  uiDir: must("AGENTD_UI_DIR"),
  shots: process.env.AGENTD_UI_SHOTS || join(tmpdir(), "agentd-ui-shots"),
  chromium: process.env.CHROMIUM || "/usr/bin/chromium",
};

function must(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests through ctest (label ui)`);
  return v;
}

// Polls `fn` (sync or async) until it returns a truthy value, which is returned; throws
// naming `what` once `ms` have passed. `what` may be a function, called then, so the
// message can show the state at the timeout (e.g. a log's tail) rather than at the call.
export async function waitFor(fn, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const named = typeof what === "function" ? what() : what;
      throw new Error(`timed out after ${ms} ms waiting for ${named} (last: ${last})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startFakeLlm(dir, scenario) {
  writeFileSync(join(dir, "scenario.yaml"), scenario);
  const child = spawn("node", [env.fakellm, "--scenario", join(dir, "scenario.yaml"), "--port", "0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const url = await waitFor(() => {
    const m = out.match(/fakellm listening on (\S+)/);
    return m && m[1];
  }, 30000, "fakellm to listen");
  return {
    url,
    async requests() {
      const r = await fetch(`${url}/_fakellm/requests`);
      return r.json();
    },
    stop() {
      child.kill("SIGTERM");
    },
  };
}

// A real agentd. `config` is YAML (the HTTP listener's port is chosen here and kept
// across restart(), so a browser tab reconnects to the same address).
export class Agentd {
  constructor(config) {
    this.dir = mkdtempSync(join(tmpdir(), "agentd-ui-"));
    this.config = join(this.dir, "agentd.yaml");
    writeFileSync(this.config, `ui:\n  dir: "${env.uiDir}"\n  editor: []\n${config}`);
    this.socket = join(this.dir, "run", "agentd.sock");
    this.state = join(this.dir, "state");
  }

  async start() {
    if (!this.port) this.port = await freePort();
    this.log = "";
    this.child = spawn(
      env.agentd,
      ["--config", this.config, "--state-dir", this.state, "--socket", this.socket, "--http",
       `127.0.0.1:${this.port}`],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child.stderr.on("data", (d) => (this.log += d));
    this.exited = new Promise((resolve) => this.child.on("exit", resolve));
    await waitFor(async () => {
      const r = await fetch(`${this.base}/healthz`).catch(() => null);
      return r && r.ok;
    }, 20000, () => `agentd to serve (log: ${this.log})`);
    this.token = readFileSync(join(this.state, "admin.token"), "utf8").trim();
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }
  // A fresh login link from `agentctl ui` (a one-time code: each read makes a new one,
  // good for one page.goto).
  get loginUrl() {
    const out = execFileSync(env.agentctl, ["--socket", this.socket, "ui"], { encoding: "utf8" });
    const url = out.trim();
    if (!url.startsWith(`${this.base}/login?code=`)) throw new Error(`agentctl ui printed ${out}`);
    return url;
  }

  // SIGTERM and wait; then start again on the same port, state and socket.
  async restart() {
    await this.stop();
    await this.start();
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill("SIGTERM");
    await this.exited;
  }

  async cleanup() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  // agentctl -o json …, parsed.
  async ctl(...args) {
    const { stdout } = await run(env.agentctl, ["--socket", this.socket, "-o", "json", ...args]);
    return stdout.trim() ? JSON.parse(stdout) : {};
  }

  // One series of /metrics (e.g. 'agentd_http_grpc_web_calls'), or undefined.
  async metric(series) {
    const r = await fetch(`${this.base}/metrics`, { headers: { authorization: `Bearer ${this.token}` } });
    for (const line of (await r.text()).split("\n")) {
      if (line.startsWith(series + " ")) return Number(line.slice(series.length + 1));
    }
    return undefined;
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: env.chromium,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run",
    ],
  });
}

// A page whose console errors and failed requests are kept for failure messages.
export async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.agentdConsole = [];
  page.on("console", (m) => {
    if (m.type() === "error") page.agentdConsole.push(m.text());
  });
  page.on("pageerror", (e) => page.agentdConsole.push(String(e)));
  return page;
}

export async function shot(page, name) {
  mkdirSync(env.shots, { recursive: true });
  await page.screenshot({ path: join(env.shots, `${name}.png`), fullPage: true });
}

// Goes to a view through the sidebar.
export async function openView(page, name) {
  await page.getByTestId(`nav-${name}`).click();
  await page.getByTestId(`view-${name}`).waitFor({ timeout: 60000 });
}

export function exists(path) {
  return existsSync(path);
}
