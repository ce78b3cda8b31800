#!/usr/bin/env node
// Builds GraphiQL into dist/ (committed; the router embeds it), or with --check
// builds it into a temporary directory and fails when the committed dist/ is not
// exactly what the lockfile and sources build to.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";

const HERE = dirname(fileURLToPath(import.meta.url));
const DIST = join(HERE, "dist");
/** What the build depends on; their digest is written next to the build. */
const INPUTS = ["package-lock.json", "vite.config.js", "src/main.js", "src/page.css"];
const STAMP = "SOURCES.sha256";
const EXPECTED_FILES = ["graphiql.css", "graphiql.js", STAMP].sort();

function stamp() {
  return INPUTS.map((file) => `${createHash("sha256").update(readFileSync(join(HERE, file))).digest("hex")}  ${file}\n`).join("");
}

async function buildInto(outDir) {
  process.env.GRAPHIQL_OUT = outDir;
  await build({ root: HERE, configFile: join(HERE, "vite.config.js"), logLevel: "error" });
  writeFileSync(join(outDir, STAMP), stamp());
  const files = readdirSync(outDir).sort();
  if (files.join() !== EXPECTED_FILES.join()) {
    throw new Error(`the build made ${files.join(", ")}; the router embeds exactly ${EXPECTED_FILES.join(", ")}`);
  }
}

async function check() {
  const out = mkdtempSync(join(tmpdir(), "graphiql-"));
  let stale;
  try {
    await buildInto(out);
    stale = EXPECTED_FILES.filter((file) => {
      let committed;
      try {
        committed = readFileSync(join(DIST, file));
      } catch {
        return true;
      }
      return !committed.equals(readFileSync(join(out, file)));
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  if (stale.length > 0) {
    console.error(
      `router/graphiql/dist is stale (${stale.join(", ")} differ from a fresh build of the lockfile): run \`npm run build\` in router/graphiql/`,
    );
    process.exit(1);
  }
  console.log("router/graphiql/dist is what its lockfile and sources build to.");
}

if (process.argv.includes("--check")) await check();
else {
  await buildInto(DIST);
  console.log(`Built router/graphiql/dist (${EXPECTED_FILES.join(", ")}).`);
}
