#!/usr/bin/env node
// Enforces the dependency direction of src/, rejects import cycles, and keeps the packages the
// library entries may pull in to what they claim.
//
//   node scripts/check-layering.mjs [root]     (root: a directory with package.json and src/; default: this repository)
//
// shared ← verifier ← (keys, store) ← (telemetry, config, grpc, http, client) ← (authority, sidecar) ← cli
//
// Every import counts: `import … from`, `import type`, side-effect `import './x.js'`, `export … from`,
// `export * from` and `import('…')`. A file in a folder that is not in LAYER is an error, as is an
// import of a file that does not exist. For each entry of package.json `exports`, the closure of
// its imports (through any folder, src/gen included) may reach only the banned packages that
// entry is allowed (LIBRARY_ENTRIES), so a package pulled in transitively is caught too.
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const src = join(root, 'src');

const LAYER = { gen: 0, shared: 0, verifier: 1, keys: 2, store: 2, telemetry: 3, config: 3, grpc: 4, http: 4, client: 4, authority: 5, sidecar: 5, 'cli.ts': 6 };
// Folders of one layer that must still not know each other.
const FORBIDDEN_PAIRS = [['authority', 'sidecar'], ['sidecar', 'authority'], ['keys', 'store'], ['store', 'keys'], ['shared', 'gen'], ['gen', 'shared']];
// Packages no library entry may pull in, unless LIBRARY_ENTRIES allows it for that entry.
const BANNED = ['pino', 'ioredis', '@grpc/grpc-js', '@grpc/proto-loader', 'prom-client'];
// Every package.json `exports` entry, with the banned packages its closure may reach.
const LIBRARY_ENTRIES = { '.': [], './grpc': ['@grpc/grpc-js'], './redis': ['ioredis'], './client': ['@grpc/grpc-js'] };
// Per file, whatever reaches it: the verifier library and shared never import a banned package,
// except the `token-authority/grpc` interceptors (src/verifier/grpc/), which may use grpc-js.
const FOLDER_BANNED = { verifier: BANNED, shared: BANNED };
const FOLDER_ALLOWED = [['verifier/grpc/', '@grpc/grpc-js']];

const problems = [];
const rel = (file) => relative(src, file).split(sep).join('/');
const shown = (file) => `src/${rel(file)}`;

if (!existsSync(src)) {
  console.error(`layering check: no src/ under ${root}`);
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const declared = new Set(Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies, ...pkg.optionalDependencies }));

const files = [];
(function walk(d) {
  for (const f of readdirSync(d).sort()) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.[cm]?ts$/.test(p) && !p.endsWith('.d.ts')) files.push(p);
  }
})(src);
const fileSet = new Set(files);

/** Comments blanked, strings kept (the specifiers are strings). */
function stripComments(text) {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    const n = text[i + 1];
    if (c === '/' && n === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && n === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c && (c === '`' || text[j] !== '\n')) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const IMPORT_PATTERNS = [
  // import x from '…', import { a } from '…', import type …, export { a } from '…', export * from '…', export * as n from '…'
  /(?:^|[\n;])[ \t]*(?:import|export)\b[^'";]*?\bfrom[ \t]*(['"])([^'"\n]+)\1/g,
  // import '…' (side effects only)
  /(?:^|[\n;])[ \t]*import[ \t]*(['"])([^'"\n]+)\1/g,
  // import('…')
  /\bimport[ \t]*\([ \t]*(['"])([^'"\n]+)\1[ \t]*\)/g,
];

function specifiers(text) {
  const code = stripComments(text);
  const found = [];
  for (const re of IMPORT_PATTERNS) for (const m of code.matchAll(re)) found.push(m[2]);
  return found;
}

function resolveRelative(file, spec) {
  const base = resolve(dirname(file), spec);
  const candidates = [base.replace(/\.js$/, '.ts').replace(/\.mjs$/, '.mts').replace(/\.cjs$/, '.cts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => fileSet.has(c));
}

function packageOf(spec) {
  if (spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0])) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const area = (file) => rel(file).split('/')[0];
const graph = new Map(); // file → internal files it imports
const packages = new Map(); // file → packages it imports
const unknownAreas = new Set();
for (const file of files) {
  const from = area(file);
  if (LAYER[from] === undefined) unknownAreas.add(from);
  const deps = [];
  const pkgs = [];
  for (const spec of specifiers(readFileSync(file, 'utf8'))) {
    if (spec.startsWith('.') || spec.startsWith('/')) {
      const target = resolveRelative(file, spec);
      if (!target) {
        problems.push(`${shown(file)} imports ${spec}: no such source file under src/`);
        continue;
      }
      deps.push(target);
      const to = area(target);
      if (from === to || LAYER[to] === undefined || LAYER[from] === undefined) continue;
      if (LAYER[to] > LAYER[from]) problems.push(`${shown(file)} imports ${shown(target)}: ${from} may not depend on ${to}`);
      if (FORBIDDEN_PAIRS.some(([a, b]) => a === from && b === to)) problems.push(`${shown(file)} imports ${shown(target)}: ${from} and ${to} must not know each other`);
    } else {
      const name = packageOf(spec);
      if (name === undefined || name === pkg.name) continue;
      pkgs.push(name);
      if (!declared.has(name)) problems.push(`${shown(file)} imports ${spec}: ${name} is not in package.json dependencies (or peer/optional dependencies)`);
      const banned = FOLDER_BANNED[from];
      if (banned?.includes(name) && !FOLDER_ALLOWED.some(([prefix, p]) => rel(file).startsWith(prefix) && p === name)) {
        problems.push(`${shown(file)} imports ${spec}: ${from} must not depend on it`);
      }
    }
  }
  graph.set(file, deps);
  packages.set(file, pkgs);
}
for (const a of unknownAreas) problems.push(`src/${a} is in no layer: add it to LAYER in scripts/check-layering.mjs (or move it)`);

// The closure of each package entry: every file it reaches, and the banned packages they import.
function entryFiles(value) {
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(entryFiles);
  return [];
}
const exportsMap = typeof pkg.exports === 'string' || Array.isArray(pkg.exports) || (pkg.exports && Object.keys(pkg.exports).every((k) => !k.startsWith('.')))
  ? { '.': pkg.exports }
  : (pkg.exports ?? {});
let entries = 0;
for (const [entry, target] of Object.entries(exportsMap)) {
  const allowed = LIBRARY_ENTRIES[entry];
  if (!allowed) {
    problems.push(`package.json exports "${entry}" is not in LIBRARY_ENTRIES of scripts/check-layering.mjs: declare the packages it may use`);
    continue;
  }
  for (const out of entryFiles(target)) {
    const source = join(root, out.replace(/^\.\//, '').replace(/^dist\//, '').replace(/\.d\.ts$/, '.ts').replace(/\.js$/, '.ts'));
    if (!fileSet.has(source)) {
      problems.push(`package.json exports "${entry}" → ${out}: no source file ${relative(root, source)}`);
      continue;
    }
    entries++;
    const parent = new Map([[source, undefined]]);
    const queue = [source];
    while (queue.length > 0) {
      const f = queue.shift();
      for (const name of packages.get(f) ?? []) {
        if (!BANNED.includes(name) || allowed.includes(name)) continue;
        const chain = [];
        for (let at = f; at !== undefined; at = parent.get(at)) chain.unshift(shown(at));
        problems.push(`package entry "${entry}" pulls in ${name}: ${chain.join(' → ')} → ${name}`);
      }
      for (const d of graph.get(f) ?? []) {
        if (parent.has(d)) continue;
        parent.set(d, f);
        queue.push(d);
      }
    }
  }
}

// Cycle detection (DFS, white/grey/black).
const colour = new Map();
const stack = [];
function visit(n) {
  colour.set(n, 1);
  stack.push(n);
  for (const d of graph.get(n) ?? []) {
    if (colour.get(d) === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(d)), d].map(shown).join(' → ')}`);
    else if (!colour.get(d)) visit(d);
  }
  stack.pop();
  colour.set(n, 2);
}
for (const f of graph.keys()) if (!colour.get(f)) visit(f);

if (problems.length > 0) {
  console.error(`layering check failed (${new Set(problems).size}):\n  ${[...new Set(problems)].join('\n  ')}`);
  process.exit(1);
}
console.log(`layering ok: ${files.length} files, ${entries} package entries, no cycles`);
