// Finds the buf binary agentd's dev tools install (dev/setup puts it in
// dev/tools/node_modules) and runs `buf generate` for the UI.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export function findBuf() {
  if (process.env.BUF) return process.env.BUF;
  const local = join(uiDir, "..", "dev", "tools", "node_modules", ".bin", "buf");
  if (existsSync(local)) return local;
  return "buf"; // on PATH
}

// Runs `buf generate` from ui/ (buf.gen.yaml's paths are relative to it); outDir, when
// given, is the base folder the plugin's `out` is placed under.
export function bufGenerate(outDir) {
  const plugin = join(uiDir, "node_modules", ".bin", "protoc-gen-es");
  if (!existsSync(plugin)) {
    console.error("protoc-gen-es is not installed: run `npm ci` in ui/ first.");
    process.exit(2);
  }
  const args = ["generate"];
  if (outDir) args.push("--output", outDir);
  const r = spawnSync(findBuf(), args, { cwd: uiDir, stdio: "inherit" });
  if (r.error) {
    console.error(`could not run buf (${r.error.message}); run dev/setup, or set BUF to its path.`);
    process.exit(2);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}
