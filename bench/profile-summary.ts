/**
 * Reads a V8 .cpuprofile (from `node --cpu-prof`) and lists where the busy time went: self time
 * per function, as a share of non-idle samples. `npm run bench -- --profile` runs every server
 * under test with --cpu-prof and keeps these summaries in the results.
 *
 *   node dist/bench/profile-summary.js file.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  /** Share of busy (non-idle) time, percent. */
  percent: number;
  /** "function file:line" */
  frame: string;
}

export interface ProfileSummary {
  /** Busy share of the profiled time, percent. */
  busyPercent: number;
  top: ProfileLine[];
  /** Shares grouped by area: node internals, grpc-js, this project's src/, GC … */
  byArea: Record<string, number>;
}

function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'gc';
  if (name === '(program)' || url === '') return 'native/runtime';
  if (url.includes('/@grpc/grpc-js/')) return 'grpc-js';
  if (url.includes('/ioredis/') || url.includes('/@ioredis/')) return 'ioredis';
  if (url.includes('/@bufbuild/') || url.includes('/src/gen/')) return 'protobuf';
  if (url.includes('/pino')) return 'pino';
  if (url.includes('/prom-client/')) return 'prom-client';
  if (url.includes('/dist/src/')) return 'token-authority';
  if (url.startsWith('node:')) return url.includes('http2') || url.includes('net') || url.includes('stream') ? 'node http2/net' : 'node other';
  return 'other';
}

export function summarizeProfile(path: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const perNode = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    const id = p.samples[i] as number;
    perNode.set(id, (perNode.get(id) ?? 0) + dt);
    total += dt;
  }
  let idle = 0;
  const perFrame = new Map<string, number>();
  const byArea: Record<string, number> = {};
  for (const [id, t] of perNode) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += t;
      continue;
    }
    const url = n.callFrame.url;
    const file = url.split('/').slice(-2).join('/');
    const frame = `${name} ${file}${file ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    perFrame.set(frame, (perFrame.get(frame) ?? 0) + t);
    const area = areaOf(url, name);
    byArea[area] = (byArea[area] ?? 0) + t;
  }
  const busy = total - idle;
  const pctOf = (t: number) => Math.round((1000 * t) / Math.max(1, busy)) / 10;
  return {
    busyPercent: Math.round((1000 * busy) / Math.max(1, total)) / 10,
    top: [...perFrame].sort((a, b) => b[1] - a[1]).slice(0, top).map(([frame, t]) => ({ percent: pctOf(t), frame })),
    byArea: Object.fromEntries(Object.entries(byArea).sort((a, b) => b[1] - a[1]).map(([k, t]) => [k, pctOf(t)])),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: profile-summary <file.cpuprofile> [top]\n');
    process.exit(2);
  }
  const s = summarizeProfile(file, Number(process.argv[3] ?? 25));
  process.stdout.write(`busy ${s.busyPercent}% of the profile\nby area: ${JSON.stringify(s.byArea)}\n`);
  for (const l of s.top) process.stdout.write(`${l.percent.toFixed(1).padStart(5)}%  ${l.frame}\n`);
}
