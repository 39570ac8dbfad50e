/**
 * A same-process A/B of the unary wrapper (`unary` in src/grpc/server.ts, around every RPC): this build's
 * against another build's, same deps (metrics on, info logging off), a synchronous handler, a
 * fake call; 30 alternating rounds of 200 000 calls, timed in process CPU time. Isolates the
 * wrapper's own cost from grpc-js and the machine's noise (docs/performance.md, Tracing off and on).
 *
 *   node dist/bench/compare-unary.js --other /tmp/base/dist      (a built checkout's dist/)
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Metadata, type handleUnaryCall } from '@grpc/grpc-js';
import { silentLogger } from '../src/shared/logger.js';
import { createMetrics } from '../src/telemetry/metrics.js';
import { unary, type UnaryDeps, type UnaryHandler } from '../src/grpc/server.js';
import { median, round } from './measure.js';

type Unary = (method: string, deps: UnaryDeps, handler: UnaryHandler<{ ok: boolean }, object>) => handleUnaryCall<{ ok: boolean }, object>;

async function main(): Promise<void> {
  const i = process.argv.indexOf('--other');
  if (i < 0 || !process.argv[i + 1]) throw new Error('--other <dist directory of another build> is required');
  // Builds before the wrapper joined the server module have it in src/grpc/unary.js.
  const older = resolve(process.argv[i + 1]!, 'src/grpc/unary.js');
  const other = (await import(existsSync(older) ? older : resolve(process.argv[i + 1]!, 'src/grpc/server.js'))) as { unary: Unary };
  const deps: UnaryDeps = { logger: silentLogger, metrics: createMetrics({ defaultMetrics: false }), accessLogSample: 100 };
  const answer = { valid: true };
  const handler: UnaryHandler<{ ok: boolean }, object> = (req, ctx) => {
    if (!req.ok) ctx.log.reason = 'MALFORMED';
    return answer;
  };
  const wrapped = { other: other.unary('Verify', deps, handler), this: (unary as Unary)('Verify', deps, handler) };
  const call = { request: { ok: true }, metadata: new Metadata(), getPath: () => '/tokenauthority.v1.TokenAuthorityService/Verify', getDeadline: () => Infinity, cancelled: false, once() {}, getPeer: () => '127.0.0.1:1' };
  let answered = 0;
  const callback = (_e: unknown, r: unknown) => {
    if (r) answered++;
  };
  const N = 200_000;
  const timed = (fn: handleUnaryCall<{ ok: boolean }, object>) => {
    const t0 = process.cpuUsage();
    for (let k = 0; k < N; k++) fn(call as never, callback);
    const d = process.cpuUsage(t0);
    return ((d.user + d.system) * 1000) / N;
  };
  for (let k = 0; k < 5; k++) {
    timed(wrapped.other);
    timed(wrapped.this);
  }
  const ns = { other: [] as number[], this: [] as number[] };
  for (let k = 0; k < 30; k++) for (const side of k % 2 ? (['other', 'this'] as const) : (['this', 'other'] as const)) ns[side].push(timed(wrapped[side]));
  const ratios = ns.this.map((x, k) => x / ns.other[k]!);
  if (answered !== 70 * N) throw new Error(`expected ${70 * N} answers, got ${answered}`);
  process.stdout.write(`${JSON.stringify({ nsPerCall: { other: round(median(ns.other), 1), this: round(median(ns.this), 1) }, medianRatioThisOverOther: round(median(ratios), 3), ratioRange: [round(Math.min(...ratios), 3), round(Math.max(...ratios), 3)] })}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
