/**
 * What waiting for a replica costs: Revoke and Refresh latency (p50/p99) with and without
 * TA_REDIS_WAIT_REPLICAS, in the same run, against the same Redis primary and replica.
 *
 *   npm run build && node dist/bench/replica-wait.js [--calls 1000] [--out file.json]
 *
 * and as the `replica.revoke` / `replica.refresh` rows of `npm run bench`.
 *
 * A redis-server primary and a replica of it (loopback), and two in-process authorities on that
 * primary: one acknowledging at once (TA_REDIS_WAIT_REPLICAS=0) and one only once the replica
 * holds the write (=1, WAIT). Calls are sequential (one in flight: latency, not throughput) and
 * alternate between the two in blocks of 50, so both see the same machine conditions. Each
 * Refresh rotates a fresh session's refresh token; each Revoke revokes one access token (jti).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startTestAuthority, type TestAuthority } from '../test/helpers/authority.js';
import { percentile } from '../test/helpers/load.js';
import { startRedis } from '../test/helpers/redis-server.js';
import { judge, type Figure } from './figures.js';

const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const BLOCK = 50;

export interface ReplicaWaitFigures {
  calls: number;
  figures: Record<string, { calls: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number }>;
}

/** Measure `calls` sequential Revoke and Refresh calls per setting, alternating in blocks. */
export async function measureReplicaWait(calls: number): Promise<ReplicaWaitFigures> {
  if (!Number.isInteger(calls) || calls < BLOCK) throw new Error(`--calls must be an integer ≥ ${BLOCK}`);
  const primary = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
  const authorities: Record<'0' | '1', TestAuthority> = {} as never;
  try {
    const admin = new Redis(primary.url);
    for (;;) {
      if (/connected_slaves:1/.test(await admin.info('replication')) && Number(await admin.call('WAIT', 1, 1000)) === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    admin.disconnect();
    const common = { TA_REDIS_URL: primary.url, TA_RATE_LIMIT_ISSUE: 'off', TA_RATE_LIMIT_REFRESH: 'off', TA_RATE_LIMIT_REVOKE: 'off' };
    authorities['0'] = await startTestAuthority({ ...common, TA_REDIS_WAIT_REPLICAS: '0' });
    authorities['1'] = await startTestAuthority({ ...common, TA_REDIS_WAIT_REPLICAS: '1' });

    const samples: Record<string, number[]> = { 'Revoke wait=0': [], 'Revoke wait=1': [], 'Refresh wait=0': [], 'Refresh wait=1': [] };
    const timed = async (label: string, fn: () => Promise<unknown>) => {
      const t = performance.now();
      await fn();
      samples[label]!.push(performance.now() - t);
    };
    // Warm-up: connections, script caches, JIT.
    for (const w of ['0', '1'] as const) {
      for (let i = 0; i < 100; i++) {
        const issued = await authorities[w].client.issue({ subject: `warm-${i}`, audience: ['orders'], scopes: [], accessTtlSeconds: 0 });
        await authorities[w].client.refresh({ refreshToken: issued.refreshToken, accessTtlSeconds: 0 });
        await authorities[w].client.revoke({ target: { $case: 'token', token: issued.accessToken }, reason: 'warm' });
      }
    }
    for (let done = 0; done < calls; done += BLOCK) {
      for (const w of ['0', '1'] as const) {
        const c = authorities[w].client;
        for (let i = 0; i < BLOCK; i++) {
          const issued = await c.issue({ subject: `s-${done + i}`, audience: ['orders'], scopes: [], accessTtlSeconds: 0 });
          await timed(`Refresh wait=${w}`, () => c.refresh({ refreshToken: issued.refreshToken, accessTtlSeconds: 0 }));
          await timed(`Revoke wait=${w}`, () => c.revoke({ target: { $case: 'token', token: issued.accessToken }, reason: 'bench' }));
        }
      }
    }
    const figures = Object.fromEntries(
      Object.entries(samples).map(([label, xs]) => {
        const sorted = Float64Array.from(xs).sort();
        const r = (x: number) => Math.round(x * 1000) / 1000;
        return [label, { calls: xs.length, p50Ms: r(percentile(sorted, 50)), p90Ms: r(percentile(sorted, 90)), p99Ms: r(percentile(sorted, 99)), maxMs: r(sorted[sorted.length - 1]!) }];
      }),
    );
    return { calls, figures };
  } finally {
    await authorities['0']?.stop();
    await authorities['1']?.stop();
    await replica.stop();
    await primary.stop();
  }
}

/** The two rows of the main table: Revoke and Refresh, waiting for one replica vs not, same run. */
export async function benchReplicaWait(calls: number): Promise<Figure[]> {
  const { figures } = await measureReplicaWait(calls);
  return (['Revoke', 'Refresh'] as const).map((rpc) => {
    const w1 = figures[`${rpc} wait=1`]!;
    const w0 = figures[`${rpc} wait=0`]!;
    return judge({
      id: `replica.${rpc.toLowerCase()}`,
      title: `${rpc} RPC latency waiting for a replica (TA_REDIS_WAIT_REPLICAS=1), one call at a time`,
      status: 'measured',
      measured: { value: w1.p50Ms, unit: 'ms' },
      baseline: { name: `the same call acknowledged at once (TA_REDIS_WAIT_REPLICAS=0), p50 (p99 ${w0.p99Ms.toFixed(2)} ms)`, value: w0.p50Ms, unit: 'ms' },
      ratio: w1.p50Ms / w0.p50Ms,
      latency: { p50: w1.p50Ms, p90: w1.p90Ms, p99: w1.p99Ms, max: w1.maxMs, count: w1.calls, unit: 'ms' },
      notes: [
        `${w1.calls} sequential calls per setting against one loopback redis-server primary with one replica, two in-process authorities on it (=0 and =1), alternating in blocks of ${BLOCK}; p50 ${w1.p50Ms} / p99 ${w1.p99Ms} ms waiting vs p50 ${w0.p50Ms} / p99 ${w0.p99Ms} ms not; the ratio is of the p50s`,
        rpc === 'Revoke' ? 'each call revokes one access token by its token (jti)' : 'each call rotates a fresh session\'s refresh token',
      ],
      details: { waiting: w1, notWaiting: w0 },
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { calls: { type: 'string', default: '1000' }, out: { type: 'string' } } });
  const calls = Number(values.calls);
  const { figures } = await measureReplicaWait(calls);
  const result = { kind: 'replica-wait', at: new Date().toISOString(), calls, machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version }, figures };
  const out = values.out ?? join(RESULTS_DIR, `replica-wait-${result.at.slice(0, 19).replace(/:/g, '-')}.json`);
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`replica wait cost, ${calls} sequential calls each (in-process authority, loopback primary + replica):`);
  for (const [label, f] of Object.entries(figures)) console.log(`  ${label.padEnd(15)} p50 ${f.p50Ms} ms  p99 ${f.p99Ms} ms  max ${f.maxMs} ms`);
  console.log(`  written to ${out}`);
}
