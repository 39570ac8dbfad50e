/**
 * What the failover tests share: one run of Issue/Refresh/Revoke churn across a Redis failover,
 * then a check of every acknowledged revocation at every kind of verifier.
 *
 *   - the authority (its own verifier holds what it acknowledged in memory);
 *   - a sidecar process that ran through the failover;
 *   - an in-process verifier (the library) that ran through it;
 *   - a sidecar started after the failover, which knows only the new primary's log;
 *   - and the new primary's log itself, read directly.
 *
 * Plus sessions ended just before the fault by logout (Revoke of the refresh token) and by reuse
 * detection (a spent refresh token presented again): after the failover, their refresh tokens
 * must stay dead.
 *
 * TA_FAILOVER_WAIT_REPLICAS (env of the test run) overrides the authority's TA_REDIS_WAIT_REPLICAS,
 * e.g. 0 to reproduce the losses of asynchronous replication.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisRevocationSource } from '../../src/store/redis-revocation-source.js';
import { createVerifier, createRemoteKeyResolver, type RemoteKeyResolver } from '../../src/verifier/index.js';
import { TEST_ISSUER } from '../helpers/authority.js';
import { eventually } from '../helpers/eventually.js';
import type { AuthorityClient } from '../helpers/grpc-client.js';
import { codeOf, grpcVerifier, libraryVerifier, mapConcurrent, MixedLoad, type LoadVerifier } from '../helpers/load.js';
import { startSidecarProcess, type SidecarProcess } from '../helpers/sidecar.js';
import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import { readWholeLog, sleep, startAuthorityProcess, type AuthorityProcess } from './fault-fixtures.js';

/** TA_REDIS_COMMAND_TIMEOUT of every process here; the replica wait is below it. */
export const COMMAND_TIMEOUT_MS = 1000;
/** A call answering later than this is a hang (the command timeout plus scheduling slack). */
const HANG_MS = 2 * COMMAND_TIMEOUT_MS + 2000;
const LOOPS = 4;

export interface FailoverFigures {
  kind: string;
  acknowledged: number;
  lost: Record<string, number>;
  refused: Record<string, number>;
  recoverMs: number;
  sessionsEnded: number;
  sessionsRevived: number;
}

/** Logout and reuse detection, just before the fault: the sessions whose refresh tokens must stay dead. */
async function endSessions(client: AuthorityClient, n: number): Promise<string[]> {
  const dead: string[] = [];
  await mapConcurrent(Array.from({ length: n }, (_, i) => i), 4, async (i) => {
    try {
      const issued = await client.issue({ subject: `ended-${i}`, audience: ['orders'], scopes: ['read'], accessTtlSeconds: 0 });
      if (i % 2 === 0) {
        // Logout: the refresh token revoked; acknowledged when Revoke answers OK.
        await client.revoke({ target: { $case: 'token', token: issued.refreshToken }, reason: 'logout' });
        dead.push(issued.refreshToken);
      } else {
        // Reuse: rotate, then present the spent parent again. Acknowledged when that answers
        // UNAUTHENTICATED (reuse detected, session revoked), not UNAVAILABLE.
        const next = await client.refresh({ refreshToken: issued.refreshToken, accessTtlSeconds: 0 });
        try {
          await client.refresh({ refreshToken: issued.refreshToken, accessTtlSeconds: 0 });
          assert.fail('a spent refresh token was accepted');
        } catch (err) {
          if (codeOf(err) === 'UNAUTHENTICATED') dead.push(next.refreshToken);
        }
      }
    } catch {
      // refused during the fault: not acknowledged, nothing to check
    }
  });
  return dead;
}

/**
 * One failover under churn, against an already running Redis topology at `url`; `fault` triggers
 * it and resolves once the topology has a new primary. Prints and returns the figures.
 */
export async function failoverUnderChurn(kind: string, url: string, fault: () => Promise<void>): Promise<FailoverFigures> {
  const keyDir = await mkdtemp(join(tmpdir(), 'ta-failover-'));
  const timeouts = { TA_REDIS_COMMAND_TIMEOUT: `${COMMAND_TIMEOUT_MS}ms` };
  const wait = process.env.TA_FAILOVER_WAIT_REPLICAS;
  let authority: AuthorityProcess | undefined;
  let through: SidecarProcess | undefined;
  let after: SidecarProcess | undefined;
  const source = createRedisRevocationSource({ url, commandTimeoutMs: COMMAND_TIMEOUT_MS });
  // The test's own reads and marker write: no replica wait (the topology may have none left).
  const probe = new RedisTokenStore({ url, retentionMs: 3_600_000 + 30_000, commandTimeoutMs: COMMAND_TIMEOUT_MS, waitReplicas: 0 });
  let library: ReturnType<typeof createVerifier> | undefined;
  let libraryKeys: RemoteKeyResolver | undefined;
  try {
    authority = await startAuthorityProcess({
      keyDir,
      redisUrl: url,
      env: { ...timeouts, TA_HEARTBEAT_INTERVAL: '200ms', ...(wait !== undefined ? { TA_REDIS_WAIT_REPLICAS: wait } : {}) },
      deadlineMs: HANG_MS,
    });
    through = await startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: url, instanceId: 'through', env: timeouts });
    library = createVerifier({ issuer: TEST_ISSUER, keys: (libraryKeys = createRemoteKeyResolver({ jwksUrl: `${authority.httpBase}/.well-known/jwks.json` })), revocations: source });
    await library.start();

    const load = new MixedLoad({
      authority: authority.client,
      verifiers: [grpcVerifier('through', through.client), libraryVerifier('library', library)],
      loops: LOOPS,
      recordRevocations: true,
      recordFailures: true,
    });
    load.start();
    let faultAt = 0;
    let recoverMs = 0;
    let promotedMs = 0;
    let dead: string[] = [];
    try {
      await sleep(1500);
      assert.ok(load.totals.revocationsAcked > 0, 'the load makes progress before the fault');
      faultAt = performance.now();
      // Sessions ended just before the fault (milliseconds: replication is still racing it) and
      // while it happens.
      dead = await endSessions(authority.client, 10);
      const ending = endSessions(authority.client, 10);
      await fault();
      promotedMs = Math.round(performance.now() - faultAt);
      const promotedAt = performance.now();
      dead.push(...(await ending));
      await eventually(() => load.revocations.some((r) => r.at > promotedAt), 30_000, 'writes succeed again after the failover');
      recoverMs = Math.round(load.revocations.find((r) => r.at > promotedAt)!.at - faultAt);
      const ackedAtRecovery = load.totals.revocationsAcked;
      await eventually(() => load.totals.revocationsAcked > ackedAtRecovery + 50, 15_000, 'the churn continues on the new primary');
    } catch (err) {
      console.log(`      ${kind}: failed with the load at ${JSON.stringify(load.stats.summary())}; authority log (warnings):\n${authority.proc.lines.filter((l) => (l.level as number) >= 40).slice(-15).map((l) => JSON.stringify(l)).join("\n")}`);
      throw err;
    } finally {
      await load.stop();
    }

    after = await startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: url, instanceId: 'after', env: timeouts });
    // The new log head, written after everything above: once a verifier has it, it has caught up.
    const marker = await probe.revoke({ kind: 'jti', id: `marker-${Date.now()}`, until: Date.now() + 3_600_000 });
    const sidecarAt = (s: SidecarProcess) => async () => (await s.status()).revocation.appliedSeq >= marker.seq;
    await eventually(sidecarAt(through), 10_000, 'the sidecar that ran through the failover reaches the log head');
    await eventually(sidecarAt(after), 10_000, 'the sidecar started after the failover reaches the log head');
    await eventually(() => library!.status().revocation.appliedSeq >= marker.seq, 10_000, 'the library verifier reaches the log head');

    const verifiers: LoadVerifier[] = [
      grpcVerifier('authority', authority.client),
      grpcVerifier('sidecar through', through.client),
      libraryVerifier('library', library),
      grpcVerifier('sidecar after', after.client),
    ];
    const lost: Record<string, number> = {};
    for (const v of verifiers) {
      const outcomes = await mapConcurrent(load.revocations, 16, (r) => v.verify(r.accessToken).catch((err: unknown) => `error ${codeOf(err)}`));
      lost[v.name] = outcomes.filter((o) => o !== 'REVOKED').length;
    }
    // And in the new primary's log itself (what every verifier started later depends on).
    const { bySeq } = await readWholeLog(probe);
    const inLog = new Set([...bySeq.values()].map((e) => `${e.kind}:${e.id}`));
    lost['new primary log'] = load.revocations.filter((r) => !inLog.has(`${r.kind}:${r.id}`)).length;

    // Sessions ended before the fault: their refresh tokens stay dead.
    let revived = 0;
    for (const token of dead) {
      try {
        await authority.client.refresh({ refreshToken: token, accessTtlSeconds: 0 });
        revived++;
      } catch (err) {
        assert.equal(codeOf(err), 'UNAUTHENTICATED', 'a dead refresh token is refused as such');
      }
    }

    const summary = load.stats.summary();
    const refused: Record<string, number> = {};
    for (const [m, s] of Object.entries(summary)) for (const [code, n] of Object.entries(s.errors)) refused[`${m} ${code}`] = n;
    const slowestFailure = Math.max(0, ...load.failures.map((f) => f.ms));
    const figures: FailoverFigures = { kind, acknowledged: load.revocations.length, lost, refused, recoverMs, sessionsEnded: dead.length, sessionsRevived: revived };
    console.log(
      `      ${kind} (TA_REDIS_WAIT_REPLICAS=${wait ?? 'auto'}): acknowledged revocations ${figures.acknowledged}, lost ${JSON.stringify(lost)}; ` +
        `refused calls ${JSON.stringify(refused)} (slowest ${slowestFailure.toFixed(0)} ms); new primary in place ${promotedMs} ms and revocations acknowledged on it again ${recoverMs} ms after the fault began; ` +
        `sessions ended by logout/reuse before it ${dead.length}, revived ${revived}`,
    );
    assert.ok(slowestFailure < HANG_MS, `a refused call took ${slowestFailure.toFixed(0)} ms: a hang, not a refusal`);
    for (const [where, n] of Object.entries(lost)) assert.equal(n, 0, `${n} acknowledged revocations not enforced by ${where}`);
    assert.equal(revived, 0, 'a session revoked before the failover came back');
    assert.ok(dead.length > 0, 'some sessions were ended before the failover');
    return figures;
  } finally {
    await after?.stop();
    await through?.stop();
    await library?.stop();
    libraryKeys?.stop();
    await source.close();
    await probe.close();
    await authority?.stop();
    await rm(keyDir, { recursive: true, force: true });
  }
}
