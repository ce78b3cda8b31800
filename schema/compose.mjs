#!/usr/bin/env node
// Composes the subgraph SDL files listed in subgraphs.json into the Apollo
// Federation v2 supergraph schema (supergraph.graphql) used by the router, and
// prints its public API schema (api.graphql: what clients see, from which the
// front end generates its types).
//
//   node compose.mjs           compose and write supergraph.graphql and api.graphql
//   node compose.mjs --check   compose in memory; exit 1 if either file is stale
//   node compose.mjs --stdin   compose {"subgraphs":[{name,url,sdl}]} read from stdin; print
//                              the supergraph to stdout (tests compose subgraphs they start)
//
// All paths are resolved relative to this file, so it works from any cwd.

import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Kind, parse, specifiedDirectives } from "graphql";
import { composeServices, compositionHasErrors } from "@theguild/federation-composition";

const HERE = dirname(fileURLToPath(import.meta.url));
const CONFIG_FILE = "subgraphs.json";
const OUTPUT_FILE = "supergraph.graphql";
const API_FILE = "api.graphql";
const NAME_PATTERN = /^[a-z][a-z0-9_]*$/;
const ENTRY_KEYS = new Set(["name", "schema", "url"]);
// Built-in GraphQL directives (@include, @skip, @deprecated, @specifiedBy, @oneOf).
const BUILT_IN_DIRECTIVES = new Set(specifiedDirectives.map((directive) => directive.name));

class UsageError extends Error {}
class ConfigError extends Error {}

function parseArgs(argv) {
  const options = { check: false, stdin: false };
  for (const arg of argv) {
    if (arg === "--check") options.check = true;
    else if (arg === "--stdin") options.stdin = true;
    else if (arg === "-h" || arg === "--help") {
      console.log("usage: node compose.mjs [--check]");
      process.exit(0);
    } else throw new UsageError(`unknown argument: ${arg} (usage: node compose.mjs [--check])`);
  }
  return options;
}

/** Reads and validates subgraphs.json; returns [{ name, schema, url, path }]. */
function loadConfig() {
  const configPath = join(HERE, CONFIG_FILE);
  const where = `schema/${CONFIG_FILE}`;
  let raw;
  try {
    raw = readFileSync(configPath, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read ${where}: ${err.message}`);
  }
  let config;
  try {
    config = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`${where} is not valid JSON: ${err.message}`);
  }
  if (config === null || typeof config !== "object" || !Array.isArray(config.subgraphs)) {
    throw new ConfigError(`${where} must be an object with a "subgraphs" array`);
  }
  if (config.subgraphs.length === 0) {
    throw new ConfigError(`${where}: "subgraphs" must list at least one subgraph`);
  }

  const problems = [];
  const names = new Set();
  const entries = [];
  config.subgraphs.forEach((entry, index) => {
    const at = `${where}: subgraphs[${index}]`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      problems.push(`${at} must be an object with "name", "schema" and "url"`);
      return;
    }
    const label = typeof entry.name === "string" ? `${at} ("${entry.name}")` : at;
    for (const key of Object.keys(entry)) {
      if (!ENTRY_KEYS.has(key)) problems.push(`${label}: unknown key "${key}" (allowed: name, schema, url)`);
    }

    const { name, schema, url } = entry;
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      problems.push(`${label}: "name" must be a string matching ${NAME_PATTERN} (got ${JSON.stringify(name)})`);
    } else if (names.has(name)) {
      problems.push(`${label}: duplicate subgraph name "${name}"`);
    } else {
      names.add(name);
    }

    let path;
    if (typeof schema !== "string" || schema.length === 0) {
      problems.push(`${label}: "schema" must be the path of an SDL file relative to schema/ (got ${JSON.stringify(schema)})`);
    } else {
      path = resolve(HERE, schema);
      if (!existsSync(path) || !statSync(path).isFile()) {
        problems.push(`${label}: schema file "${schema}" does not exist (looked for ${path})`);
      }
    }

    let parsedUrl;
    try {
      parsedUrl = typeof url === "string" ? new URL(url) : undefined;
    } catch {
      parsedUrl = undefined;
    }
    if (!parsedUrl || (parsedUrl.protocol !== "http:" && parsedUrl.protocol !== "https:")) {
      problems.push(`${label}: "url" must be an absolute http(s) URL (got ${JSON.stringify(url)})`);
    }

    entries.push({ name, schema, url, path });
  });

  if (problems.length > 0) {
    throw new ConfigError(`invalid ${where}:\n  - ${problems.join("\n  - ")}`);
  }
  return entries;
}

/**
 * async-graphql prints definitions of the built-in directives (@include, @skip,
 * @specifiedBy, ...) into its SDL. They are not part of a subgraph's contract and
 * the composer would copy some of them into the supergraph as redefinitions of
 * built-ins, so they are dropped before composing.
 */
function withoutBuiltInDirectiveDefinitions(document) {
  return {
    ...document,
    definitions: document.definitions.filter(
      (def) => !(def.kind === Kind.DIRECTIVE_DEFINITION && BUILT_IN_DIRECTIVES.has(def.name.value)),
    ),
  };
}

/** Parses every subgraph SDL; returns { services, errors }. */
function loadServices(entries) {
  const services = [];
  const errors = [];
  for (const { name, schema, url, path } of entries) {
    try {
      services.push({ name, url, typeDefs: withoutBuiltInDirectiveDefinitions(parse(readFileSync(path, "utf8"))) });
    } catch (err) {
      errors.push(`[${name}] cannot parse ${schema}: ${err.message}`);
    }
  }
  return { services, errors };
}

function formatCompositionError(error) {
  const subgraph = error.extensions?.subgraphName;
  const code = error.extensions?.code;
  let message = error.message;
  if (subgraph && !message.startsWith(`[${subgraph}]`)) message = `[${subgraph}] ${message}`;
  return code ? `${message} (${code})` : message;
}

function fail(lines) {
  for (const line of lines) console.error(line);
  process.exit(1);
}

/** `--stdin`: compose subgraphs given inline, print the supergraph. */
function composeStdin() {
  let input;
  try {
    input = JSON.parse(readFileSync(0, "utf8"));
  } catch (err) {
    fail([`--stdin expects JSON {"subgraphs":[{"name","url","sdl"}]}: ${err.message}`]);
  }
  const services = [];
  for (const { name, url, sdl } of input.subgraphs ?? []) {
    try {
      services.push({ name, url, typeDefs: withoutBuiltInDirectiveDefinitions(parse(sdl)) });
    } catch (err) {
      fail([`[${name}] cannot parse its SDL: ${err.message}`]);
    }
  }
  const result = composeServices(services);
  if (compositionHasErrors(result)) {
    fail([`composition failed:`, ...result.errors.map((error) => `  ${formatCompositionError(error)}`)]);
  }
  process.stdout.write(result.supergraphSdl.replace(/\s*$/, "") + "\n");
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.stdin) return composeStdin();
  const entries = loadConfig();

  const { services, errors: parseErrors } = loadServices(entries);
  if (parseErrors.length > 0) {
    fail([`composition failed: ${parseErrors.length} subgraph schema(s) could not be parsed`, ...parseErrors]);
  }

  const result = composeServices(services);
  if (compositionHasErrors(result)) {
    fail([
      `composition failed with ${result.errors.length} error(s):`,
      ...result.errors.map((error) => `  ${formatCompositionError(error)}`),
    ]);
  }

  const supergraph = result.supergraphSdl.replace(/\s*$/, "") + "\n";
  const api = result.publicSdl.replace(/\s*$/, "") + "\n";
  const outputs = [
    { file: OUTPUT_FILE, text: supergraph },
    { file: API_FILE, text: api },
  ].map((output) => ({ ...output, ...compare(output) }));
  const subgraphList = services.map((s) => s.name).join(", ");
  const joinVersion = /specs\.apollo\.dev\/join\/(v[0-9.]+)/.exec(supergraph)?.[1] ?? "unknown";

  if (options.check) {
    const stale = outputs.filter((output) => !output.upToDate);
    if (stale.length > 0) {
      fail(stale.map(({ file, missing }) => `schema/${file} ${missing ? "is missing" : "is stale"}: run \`npm run compose\` in schema/`));
    }
    const files = outputs.map(({ file }) => `schema/${file}`).join(" and ");
    console.log(`${files} are up to date (${services.length} subgraph(s): ${subgraphList}).`);
    return;
  }

  for (const { file, text, upToDate } of outputs) {
    if (!upToDate) {
      const path = join(HERE, file);
      const tmpPath = `${path}.tmp-${process.pid}`;
      writeFileSync(tmpPath, text);
      renameSync(tmpPath, path);
    }
    const lines = text.split("\n").length - 1;
    const what = file === OUTPUT_FILE ? `${services.length} subgraph(s) (${subgraphList}), join/${joinVersion}` : "public API";
    console.log(`${upToDate ? "Unchanged" : "Wrote"} schema/${file}: ${what}, ${lines} lines.`);
  }
}

/** Whether the committed file already holds `text` (line endings normalised, so a CRLF checkout is not stale). */
function compare({ file, text }) {
  const path = join(HERE, file);
  const current = existsSync(path) ? readFileSync(path, "utf8") : null;
  return { missing: current === null, upToDate: current !== null && current.replace(/\r\n/g, "\n") === text };
}

try {
  main();
} catch (err) {
  if (err instanceof UsageError) {
    console.error(err.message);
    process.exit(2);
  }
  if (err instanceof ConfigError) fail([err.message]);
  throw err;
}
