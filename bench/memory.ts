/**
 * Verifier memory per active revocation and the time to load a large revocation log, measured in
 * a child process (`node --expose-gc`, bench/memory-child.ts) so the heap holds nothing else.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { newId } from '../src/authority/session-records.js';
import { RedisTokenStore } from '../src/store/redis-token-store.js';
import { judge, TARGETS, type Figure } from './figures.js';
import type { MemoryChildResult } from './memory-child.js';
import { benchScript } from './processes.js';

const run = promisify(execFile);

export async function runMemoryChild(entries: number, redisUrl?: string): Promise<MemoryChildResult> {
  const args = ['--expose-gc', benchScript('memory-child.js'), '--entries', String(entries), ...(redisUrl ? ['--redis', redisUrl] : [])];
  const { stdout } = await run(process.execPath, args, { maxBuffer: 1 << 20, timeout: 600_000 });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as MemoryChildResult;
}

/** Memory per entry and load time from an in-process JSON log (parsed exactly as Redis replies are). */
export async function benchMemory(entries: number): Promise<Figure[]> {
  const r = await runMemoryChild(entries);
  const scale = entries === 1_000_000 ? '' : ` (quick run: ${entries.toLocaleString('en-US')} entries)`;
  return [
    judge({
      id: 'memory.per-revocation',
      title: `Verifier memory per active revocation (1M jti entries)${scale}`,
      status: 'measured',
      measured: { value: r.bytesPerEntry, unit: 'B' },
      target: TARGETS.memoryPerRevocation,
      notes: [
        `V8 heapUsed after − before loading ${r.entries.toLocaleString('en-US')} jti revocations through RevocationSync, after full GCs (node --expose-gc, a process of its own); ids are ${r.idChars}-character jtis as Issue mints them, expiries spread over 15 minutes`,
        `RSS grew by ${(r.rssDeltaBytes / r.entries).toFixed(0)} B per entry (includes allocator slack and young-generation space)`,
      ],
      details: r as unknown as Record<string, unknown>,
    }),
    judge({
      id: 'memory.load',
      title: `Load 1M revocations from the log at verifier start${scale}`,
      status: 'measured',
      measured: { value: r.loadMs / 1000, unit: 's' },
      target: TARGETS.load1M,
      notes: ['verifier.start() → synced, reading the log in pages of 5 000 from an in-process source that decodes and parses each JSON entry as the Redis store does (parseFeedMessage), then applies it'],
    }),
  ];
}

/**
 * The same load from a real Redis log: fills it through RedisTokenStore.revoke (the Lua script
 * Revoke runs), then times a fresh verifier process loading it.
 */
export async function benchRedisLoad(entries: number, redisUrl: string): Promise<Figure> {
  const store = new RedisTokenStore({ url: redisUrl, retentionMs: 3_600_000, commandTimeoutMs: 10_000 });
  const until = Date.now() + 900_000;
  const t0 = performance.now();
  try {
    if (!(await store.ping())) throw new Error('Redis not reachable');
    const batch = 2000;
    for (let i = 0; i < entries; i += batch) {
      const n = Math.min(batch, entries - i);
      await Promise.all(Array.from({ length: n }, () => store.revoke({ kind: 'jti', id: newId(), until })));
    }
  } finally {
    await store.close();
  }
  const fillS = (performance.now() - t0) / 1000;
  const r = await runMemoryChild(entries, redisUrl);
  return judge({
    id: 'memory.load-redis',
    title: `Load ${entries.toLocaleString('en-US')} revocations from the Redis log at verifier start`,
    status: 'measured',
    measured: { value: r.loadMs / 1000, unit: 's' },
    target: TARGETS.load1M,
    notes: [
      'a fresh verifier process (createVerifier + RedisTokenStore as its revocation source) from start() to synced: pages of 5 000 read by the store\'s read-log script over loopback, parsed and applied',
      `the log was filled by ${entries.toLocaleString('en-US')} RedisTokenStore.revoke calls (the Revoke script) in ${fillS.toFixed(1)} s, ${Math.round(entries / fillS).toLocaleString('en-US')}/s with 2 000 in flight; ${r.bytesPerEntry.toFixed(0)} B of heap per entry after the load`,
    ],
    details: { ...r, fillSeconds: fillS } as unknown as Record<string, unknown>,
  });
}
