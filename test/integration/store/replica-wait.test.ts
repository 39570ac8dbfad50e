import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { testChecks, testLiveProof } from '../../helpers/refresh-checks.js';

const HOUR = 3_600_000;
// Generous: the replica shares a busy machine, and a confirmation must not time out by accident.
const WAIT_MS = 1000;

async function unavailable(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(isTokenAuthorityError(err) && err.code === ErrorCodes.STORE_UNAVAILABLE, String(err));
    return err.message;
  }
  assert.fail('expected ERR_STORE_UNAVAILABLE');
}

describe('RedisTokenStore: writes acknowledged only once a replica holds them (WAIT)', function () {
  this.timeout(30_000);
  let primary: RedisServer;
  let replica: RedisServer;
  const stores: RedisTokenStore[] = [];
  const store = (waitReplicas: number) => {
    const s = new RedisTokenStore({ url: primary.url, retentionMs: HOUR, commandTimeoutMs: 3000, waitReplicas, waitTimeoutMs: WAIT_MS });
    stores.push(s);
    return s;
  };

  before(async () => {
    primary = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    const admin = new Redis(primary.url);
    try {
      while (Number(await admin.call('WAIT', 1, 1000)) < 1) await new Promise((r) => setTimeout(r, 50));
    } finally {
      admin.disconnect();
    }
  });
  after(async () => {
    replica.resume();
    await Promise.all(stores.map((s) => s.close()));
    await replica?.stop();
    await primary?.stop();
  });

  it('acknowledges a revocation once the replica holds it: it is on the replica when revoke() resolves', async () => {
    const s = store(1);
    const e = await s.revoke({ kind: 'jti', id: 'held-by-replica', until: Date.now() + HOUR });
    const r = new Redis(replica.url);
    try {
      assert.equal(await r.get('ta:v1:{ta}:seq'), String(e.seq), 'the replica has the sequence of the acknowledged write');
      assert.ok(await r.exists('ta:v1:{ta}:rev:jti:held-by-replica'));
    } finally {
      r.disconnect();
    }
  });

  it('more replicas asked than there are → UNAVAILABLE within the wait timeout, saying the write may or may not have applied and that a retry is safe', async () => {
    const s = store(2);
    const t = performance.now();
    const message = await unavailable(s.revoke({ kind: 'jti', id: 'two-replicas', until: Date.now() + HOUR }));
    const ms = performance.now() - t;
    assert.match(message, /1 of 2 replicas confirmed it within 1000 ms/);
    assert.match(message, /may or may not have applied/);
    assert.match(message, /retrying is safe/);
    assert.ok(ms < WAIT_MS + 1500, `answered after ${ms.toFixed(0)} ms`);
  });

  it('TA_REDIS_WAIT_AOF: WAITAOF where the server has it (Redis ≥ 7.2); on an older server every durable write is refused, naming WAITAOF', async () => {
    const s = new RedisTokenStore({ url: primary.url, retentionMs: HOUR, commandTimeoutMs: 3000, waitReplicas: 1, waitTimeoutMs: WAIT_MS, waitAof: true });
    stores.push(s);
    const admin = new Redis(primary.url);
    const version = /redis_version:(\d+)\.(\d+)/.exec(await admin.info('server'))!;
    admin.disconnect();
    const hasWaitAof = Number(version[1]) > 7 || (Number(version[1]) === 7 && Number(version[2]) >= 2);
    const revoking = s.revoke({ kind: 'jti', id: 'waitaof', until: Date.now() + HOUR });
    if (hasWaitAof) {
      // The replica runs without AOF here: it can never confirm an fsync.
      assert.match(await unavailable(revoking), /0 of 1 replica confirmed it/);
    } else {
      assert.match(await unavailable(revoking), /WAITAOF failed \(ERR unknown command/);
    }
  });

  it('a replica that stops answering: Revoke and Refresh refused (Refresh naming the grace window); other commands are not held up; the retry once it is back returns the same revocation', async () => {
    const s = store(1);
    const now = Date.now();
    await s.createSession({ sessionId: 'sess-w', subject: 'u', audience: ['a'], scopes: [], extra: {}, refreshHash: 'h0', refreshProof: testLiveProof('h0', 'sess-w', now + HOUR, now), refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + HOUR, now });
    replica.pause();
    try {
      const revoking = unavailable(s.revoke({ kind: 'jti', id: 'while-paused', until: now + HOUR }));
      // Once the revocation's WAIT blocks its connection, a read is not queued behind it (durable
      // writes have a connection of their own).
      const admin = new Redis(primary.url);
      try {
        await eventually(async () => /blocked_clients:[1-9]/.test(await admin.info('clients')), 5000, 'the WAIT is blocking');
      } finally {
        admin.disconnect();
      }
      const t = performance.now();
      assert.ok(await s.getSession('sess-w'));
      const readMs = performance.now() - t;
      assert.ok(readMs < WAIT_MS / 2, `a read waited ${readMs.toFixed(0)} ms behind the replica wait`);
      assert.match(await revoking, /0 of 1 replica confirmed it.*may or may not have applied.*retrying is safe/);
      const rotateMessage = await unavailable(
        s.rotateRefresh({ presentedHash: 'h0', successorHash: 'h1', successorExpiresAt: now + HOUR, now: Date.now(), graceMs: 0, idleTimeoutMs: 0, revocationUntil: now + HOUR, checks: testChecks }),
      );
      assert.match(rotateMessage, /may or may not have applied.*TA_REFRESH_GRACE/);
    } finally {
      replica.resume();
    }
    // The first attempt did apply on the primary; the retry is the same revocation, now confirmed.
    const first = (await s.readLog(0, 1000)).events.find((e) => e.id === 'while-paused');
    assert.ok(first, 'the refused write applied on the primary');
    const retried = await s.revoke({ kind: 'jti', id: 'while-paused', until: now + HOUR });
    assert.equal(retried.seq, first.seq, 'a retried Revoke is the same revocation: no second entry');
  });
});
