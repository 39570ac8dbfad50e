/**
 * Compare two V8 heap snapshots (.heapsnapshot, e.g. the soak's SIGUSR2 snapshots): live objects
 * by constructor (or by node type for strings, code, arrays…), their count and self size in each
 * snapshot, sorted by growth. What only accumulates is at the top.
 *
 *   node dist/bench/heap-diff.js <before.heapsnapshot> <after.heapsnapshot> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

type Totals = Map<string, { count: number; bytes: number }>;

function totals(path: string): { byKey: Totals; bytes: number } {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const byKey: Totals = new Map();
  let all = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + iType]!]!;
    const size = snap.nodes[i + iSize]!;
    // Objects and closures by their constructor/function name; everything else by type.
    const key = type === 'object' || type === 'closure' ? `${type} ${snap.strings[snap.nodes[i + iName]!]}` : type;
    const t = byKey.get(key) ?? { count: 0, bytes: 0 };
    t.count++;
    t.bytes += size;
    byKey.set(key, t);
    all += size;
  }
  return { byKey, bytes: all };
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
if (positionals.length !== 2) {
  process.stderr.write('usage: heap-diff <before.heapsnapshot> <after.heapsnapshot> [--top 25]\n');
  process.exit(2);
}
const [a, b] = positionals.map(totals) as [ReturnType<typeof totals>, ReturnType<typeof totals>];
const mib = (x: number) => (x / 1024 / 1024).toFixed(2);
console.log(`total self size: ${mib(a.bytes)} MiB → ${mib(b.bytes)} MiB (${b.bytes >= a.bytes ? '+' : ''}${mib(b.bytes - a.bytes)} MiB)`);
const keys = new Set([...a.byKey.keys(), ...b.byKey.keys()]);
const rows = [...keys].map((k) => {
  const x = a.byKey.get(k) ?? { count: 0, bytes: 0 };
  const y = b.byKey.get(k) ?? { count: 0, bytes: 0 };
  return { k, x, y, d: y.bytes - x.bytes, dc: y.count - x.count };
});
rows.sort((r, s) => s.d - r.d);
console.log('growth by constructor/type (count before → after, self size before → after):');
for (const r of rows.slice(0, Number(values.top))) {
  console.log(`  ${r.k.slice(0, 60).padEnd(60)} ${String(r.x.count).padStart(8)} → ${String(r.y.count).padEnd(8)} ${(r.x.bytes / 1024).toFixed(0).padStart(8)} KiB → ${(r.y.bytes / 1024).toFixed(0)} KiB`);
}
