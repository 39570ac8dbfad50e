/**
 * Latency of the RedisTokenStore's write paths against a real, local redis-server (no AOF, and
 * with AOF appendfsync always): 1000 sequential calls each, p50/p99/max in ms.
 * Not a mocha test (no assertions on timing, which depend on the machine):
 *   npx tsc -p . && node dist/test/integration/store/redis-latency.bench.js
 */
import { randomBytes } from 'node:crypto';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { startRedis } from '../../helpers/redis-server.js';
import { testChecks, testLiveProof } from '../../helpers/refresh-checks.js';

const N = 1000;
const HOUR = 3_600_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function measure(name: string, op: (i: number) => Promise<unknown>): Promise<string> {
  for (let i = 0; i < 50; i++) await op(-1 - i); // warm-up: scripts loaded, JIT warm
  const samples: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    await op(i);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const f = (v: number) => v.toFixed(3).padStart(7);
  return `${name.padEnd(14)} p50 ${f(percentile(samples, 50))} ms  p99 ${f(percentile(samples, 99))} ms  max ${f(samples.at(-1)!)} ms`;
}

async function run(aof: boolean): Promise<void> {
  const redis = await startRedis({ aof });
  const store = new RedisTokenStore({ url: redis.url, retentionMs: HOUR });
  try {
    const now = Date.now();
    const h = () => randomBytes(32).toString('base64url');
    const tokens: string[] = [];
    const lines: string[] = [];
    lines.push(
      await measure('createSession', async () => {
        const refreshHash = h();
        const sessionId = `sid-${h()}`;
        tokens.push(refreshHash);
        await store.createSession({
          sessionId,
          refreshProof: testLiveProof(refreshHash, sessionId, now + HOUR, now),
          subject: `user-${tokens.length % 100}`,
          audience: ['api://orders'],
          scopes: ['orders:read'],
          extra: {},
          refreshHash,
          refreshExpiresAt: now + HOUR,
          absoluteExpiresAt: now + 24 * HOUR,
          now,
        });
      }),
    );
    lines.push(
      await measure('rotateRefresh', async () => {
        const presentedHash = tokens.pop()!;
        const r = await store.rotateRefresh({
          presentedHash,
          successorHash: h(),
          successorExpiresAt: now + HOUR,
          now,
          graceMs: 0,
          idleTimeoutMs: 0,
          revocationUntil: now + HOUR,
          checks: testChecks,
        });
        if (r.outcome !== 'rotated') throw new Error(`unexpected ${r.outcome}`);
      }),
    );
    lines.push(
      await measure('revoke (jti)', (i) => store.revoke({ kind: 'jti', id: `jti-${i}`, until: now + HOUR })),
    );
    console.log(`redis-server ${aof ? 'AOF appendfsync always' : 'no persistence'}, ${N} sequential calls each`);
    for (const l of lines) console.log(`  ${l}`);
  } finally {
    await store.close();
    await redis.stop();
  }
}

await run(false);
await run(true);
