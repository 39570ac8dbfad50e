#!/usr/bin/env node
// Enforces the dependency direction of src/ and rejects import cycles.
// shared ← verifier ← (keys, store) ← (telemetry, config, grpc, http) ← (authority, sidecar) ← cli
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname, 'src');
const LAYER = { gen: 0, shared: 0, verifier: 1, keys: 2, store: 2, telemetry: 3, config: 3, grpc: 4, http: 4, client: 4, authority: 5, sidecar: 5, 'cli.ts': 6, 'index.ts': 6 };
// Folders of one layer that must still not know each other.
const FORBIDDEN_PAIRS = [['authority', 'sidecar'], ['sidecar', 'authority'], ['keys', 'store'], ['store', 'keys']];
// Packages the embeddable verifier library must never pull in.
const VERIFIER_BANNED = ['pino', 'ioredis', '@grpc/grpc-js', '@grpc/proto-loader', 'prom-client'];

const files = [];
(function walk(d) {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
  }
})(root);

const area = (file) => relative(root, file).split('/')[0];
const problems = [];
const graph = new Map();
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const deps = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    const spec = m[1] ?? m[2];
    const from = area(file);
    if (spec.startsWith('.')) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      deps.push(target);
      const to = area(target);
      if (from === to) continue;
      if (LAYER[to] === undefined || LAYER[from] === undefined) continue;
      if (LAYER[to] > LAYER[from]) problems.push(`${relative(root, file)} imports ${relative(root, target)}: ${from} may not depend on ${to}`);
      if (FORBIDDEN_PAIRS.some(([a, b]) => a === from && b === to)) problems.push(`${relative(root, file)} imports ${relative(root, target)}: ${from} and ${to} must not know each other`);
    } else if (from === 'verifier' && VERIFIER_BANNED.some((b) => spec === b || spec.startsWith(b + '/'))) {
      // verifier/grpc/ is the optional interceptor sub-entry: it may use grpc-js types, nothing else.
      if (!(relative(root, file).startsWith('verifier/grpc/') && spec === '@grpc/grpc-js')) {
        problems.push(`${relative(root, file)} imports ${spec}: the verifier library must not depend on it`);
      }
    }
  }
  graph.set(file, deps);
}
// Cycle detection (DFS, white/grey/black).
const colour = new Map();
const stack = [];
function visit(n) {
  colour.set(n, 1);
  stack.push(n);
  for (const d of graph.get(n) ?? []) {
    if (!graph.has(d)) continue;
    if (colour.get(d) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].map((f) => relative(root, f)).join(' → ')}`);
    else if (!colour.get(d)) visit(d);
  }
  stack.pop();
  colour.set(n, 2);
}
for (const f of graph.keys()) if (!colour.get(f)) visit(f);

if (problems.length > 0) {
  console.error(`layering check failed (${problems.length}):\n  ${[...new Set(problems)].join('\n  ')}`);
  process.exit(1);
}
console.log(`layering ok: ${files.length} files, no cycles`);
