// `npm run check-gen`: generates the code into a temporary folder and compares it with
// the checked-in src/gen. Exits 1, naming the stale files, when they differ; 0 when
// src/gen is up to date.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { bufGenerate, uiDir } from "./buf.mjs";

function listFiles(root) {
  const out = [];
  if (!existsSync(root)) return out;
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

const tmp = mkdtempSync(join(tmpdir(), "agentd-ui-gen-"));
try {
  bufGenerate(tmp);
  const fresh = join(tmp, "src", "gen");
  const checked = join(uiDir, "src", "gen");
  const freshFiles = listFiles(fresh);
  const checkedFiles = listFiles(checked);
  const stale = [];
  for (const f of freshFiles) {
    const p = join(checked, f);
    if (!existsSync(p)) stale.push(`src/gen/${f} (missing)`);
    else if (!readFileSync(p).equals(readFileSync(join(fresh, f)))) stale.push(`src/gen/${f} (differs)`);
  }
  for (const f of checkedFiles) {
    if (!freshFiles.includes(f)) stale.push(`src/gen/${f} (no longer generated)`);
  }
  if (stale.length > 0) {
    console.error("ui/src/gen is stale against proto/:");
    for (const s of stale) console.error(`  ${s}`);
    console.error("run `npm run gen` in ui/ and commit the result.");
    process.exit(1);
  }
  console.log(`ui/src/gen is up to date (${freshFiles.length} files).`);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
