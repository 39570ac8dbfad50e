/**
 * What the fault-injection tests share: a real `token-authority serve` process, a log reader, and
 * convergence probes over every kind of verifier.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import type { RevocationEvent } from '../../src/shared/revocation-event.js';
import { TEST_ISSUER } from '../helpers/authority.js';
import { startAuthorityProcess as startSharedAuthorityProcess, type AuthorityProcess } from '../helpers/authority-process.js';

export { sleep };

export type { AuthorityProcess };

/** An authority process with the fault tests' defaults: their issuer, key dir and Redis, no rate limits. */
export function startAuthorityProcess(opts: { keyDir: string; redisUrl?: string; env?: Record<string, string>; deadlineMs?: number }): Promise<AuthorityProcess> {
  return startSharedAuthorityProcess(
    'fault',
    {
      TA_ISSUER: TEST_ISSUER,
      TA_KEY_DIR: opts.keyDir,
      TA_SHUTDOWN_GRACE: '1s',
      // These tests measure faults, not abuse limits: one loopback caller makes all the load.
      TA_RATE_LIMIT_ISSUE: 'off',
      TA_RATE_LIMIT_REFRESH: 'off',
      TA_RATE_LIMIT_REVOKE: 'off',
      ...(opts.redisUrl ? { TA_REDIS_URL: opts.redisUrl } : {}),
      ...opts.env,
    },
    { deadlineMs: opts.deadlineMs ?? 5000 },
  );
}

/** A direct store connection for the test's own reads and probe writes (not through the authority). */
export function directStore(url: string, commandTimeoutMs = 1000): RedisTokenStore {
  return new RedisTokenStore({ url, retentionMs: 3_600_000 + 30_000, commandTimeoutMs });
}

/** The whole revocation log, by sequence. */
export async function readWholeLog(store: RedisTokenStore): Promise<{ bySeq: Map<number, RevocationEvent>; headSeq: number }> {
  const bySeq = new Map<number, RevocationEvent>();
  let after = 0;
  let headSeq = 0;
  for (;;) {
    const page = await store.readLog(after, 5000);
    headSeq = page.headSeq;
    for (const e of page.events) bySeq.set(e.seq, e);
    if (page.events.length === 0) break;
    after = page.events[page.events.length - 1]!.seq;
  }
  return { bySeq, headSeq };
}

/** A verifier whose applied sequence can be read. */
export interface SeqProbe {
  readonly name: string;
  appliedSeq(): Promise<number> | number;
}

/**
 * Time (ms from `since`, a performance.now() value) until every probe has applied `seq`; polls
 * every few ms. A probe that does not get there within `timeoutMs` is reported as Infinity.
 */
export async function timeToApply(probes: readonly SeqProbe[], seq: number, since: number, timeoutMs = 10_000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await Promise.all(
    probes.map(async (p) => {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        let applied = -1;
        try {
          applied = await p.appliedSeq();
        } catch {
          // e.g. an HTTP poll racing a restart: try again
        }
        if (applied >= seq) {
          out[p.name] = Math.round((performance.now() - since) * 10) / 10;
          return;
        }
        if (performance.now() > deadline) {
          out[p.name] = Infinity;
          return;
        }
        await sleep(5);
      }
    }),
  );
  return out;
}

/** Catch-ups from the log so far, from a sidecar's /status. */
export async function sidecarResyncs(sidecar: { status(): Promise<unknown> }): Promise<number> {
  const s = (await sidecar.status()) as { revocation: { resyncs?: number } };
  return s.revocation.resyncs ?? 0;
}
