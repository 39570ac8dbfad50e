import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { hashRefreshToken, newRefreshToken } from '../../../src/authority/session-records.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { redisKeys } from '../../../src/store/redis-schema.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

/**
 * H1: an attacker with read and write access to Redis, but without the seal secret, edits the
 * token-authority keys directly (as `redis-cli` would) and then calls Refresh. No combination of
 * edits may mint a token for a session the attacker holds no live refresh token of, nor revive a
 * revoked session.
 */
describe('refresh records: a Redis writer cannot take over or revive sessions', function () {
  this.timeout(30_000);
  const k = redisKeys();
  let redis: RedisServer;
  let admin: Redis;
  let ta: TestAuthority;
  const clock = new ManualClock(Date.now());
  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_REFRESH_GRACE: '10s' }, { clock });
  });
  after(async () => {
    admin?.disconnect();
    await ta?.close();
    await redis?.stop();
  });

  const issue = (subject: string) => ta.client.issue({ subject, audience: ['orders'], scopes: ['read'] });
  const code = (err: { metadata: { get(k: string): unknown[] } }) => err.metadata.get('ta-error-code')[0];
  /** Refresh must fail: UNAUTHENTICATED with `expected` as its error code; nothing is minted. */
  async function refused(refreshToken: string, expected: string, on: TestAuthority = ta): Promise<void> {
    const err = await expectStatus(on.client.refresh({ refreshToken }), status.UNAUTHENTICATED);
    assert.equal(code(err), expected, err.message);
  }
  /**
   * A replica that never saw the revocation: it refuses because the records carry no proof
   * (REFRESH_INVALID), or because the running authority saw the log go back and appended the
   * revocation again (SESSION_REVOKED), whichever comes first. Either way no record of the session
   * holds a proof any more, and nothing is minted.
   */
  async function refusedAfterWipe(refreshToken: string, sessionId: string, on: TestAuthority): Promise<void> {
    const err = await expectStatus(on.client.refresh({ refreshToken }), status.UNAUTHENTICATED);
    assert.ok(['ERR_REFRESH_INVALID', 'ERR_SESSION_REVOKED'].includes(code(err) as string), err.message);
    assert.deepEqual((await recordsOf(sessionId)).filter((r) => r.fields.proof !== undefined).map((r) => r.key), [], 'no record keeps a proof');
  }
  /** Every refresh record of a session, as the writer sees them. */
  async function recordsOf(sessionId: string): Promise<Array<{ key: string; fields: Record<string, string> }>> {
    const out = [];
    for (const key of await admin.keys(`${k.base}rt:*`)) {
      const fields = await admin.hgetall(key);
      if (fields.sid === sessionId) out.push({ key, fields });
    }
    return out;
  }

  it('an unchanged session still refreshes (the checks refuse only what was tampered with)', async () => {
    const gus = await issue('gus');
    const next = await ta.client.refresh({ refreshToken: gus.refreshToken });
    assert.equal(next.sessionId, gus.sessionId);
    assert.equal((await ta.client.verify({ token: next.accessToken })).valid, true);
  });

  it('a record planted for a refresh token of the attacker\'s choosing, `current` pointing at it, mints nothing', async () => {
    const victim = await issue('victim-1');
    const [genuine] = await recordsOf(victim.sessionId);
    const chosen = newRefreshToken();
    // The writer knows only what is in Redis: the key derivation it can compute is a plain hash.
    for (const h of [hashRefreshToken(chosen), chosen]) {
      await admin.hset(k.refresh(h), { ...genuine!.fields, sid: victim.sessionId, state: 'live', exp: String(Date.now() + 3_600_000) });
      await admin.hset(k.session(victim.sessionId), 'current', h);
      const err = await expectStatus(ta.client.refresh({ refreshToken: chosen }), status.UNAUTHENTICATED);
      assert.equal(code(err), 'ERR_REFRESH_INVALID');
    }
  });

  it('the attacker\'s own refresh record repointed to a victim\'s session mints nothing (proof copied or not)', async () => {
    const victim = await issue('victim-2');
    const mallory = await issue('mallory');
    const own = await admin.hget(k.session(mallory.sessionId), 'current');
    const [victimRecord] = await recordsOf(victim.sessionId);
    await admin.hset(k.refresh(own!), 'sid', victim.sessionId);
    await admin.hset(k.session(victim.sessionId), 'current', own!);
    await refused(mallory.refreshToken, 'ERR_REFRESH_INVALID');
    if (victimRecord!.fields.proof !== undefined) {
      await admin.hset(k.refresh(own!), 'proof', victimRecord!.fields.proof);
      await refused(mallory.refreshToken, 'ERR_REFRESH_INVALID');
    }
  });

  it('a just-spent record of the attacker\'s own (inside the grace window) repointed to a victim\'s session mints nothing', async () => {
    const victim = await issue('victim-3');
    const mallory = await issue('mallory-2');
    await ta.client.refresh({ refreshToken: mallory.refreshToken });
    const parent = (await recordsOf(mallory.sessionId)).find((r) => r.fields.state === 'spent');
    assert.ok(parent);
    await admin.hset(parent.key, 'sid', victim.sessionId);
    await admin.hset(k.session(victim.sessionId), 'current', parent.fields.succ!);
    // Not a grace rotation into the victim's session: the grace proof binds the record's own session.
    await refused(mallory.refreshToken, 'ERR_REFRESH_REUSED');
  });

  it('a logged-out session is not revived by setting revoked=0 / state=live, not even by a fresh authority after the log is wiped', async () => {
    const carol = await issue('carol');
    await ta.client.revoke({ target: { $case: 'sessionId', sessionId: carol.sessionId }, reason: 'logout' });
    await admin.hset(k.session(carol.sessionId), 'revoked', '0');
    const current = await admin.hget(k.session(carol.sessionId), 'current');
    await admin.hset(k.refresh(current!), 'state', 'live');
    await refused(carol.refreshToken, 'ERR_SESSION_REVOKED');
    // The writer also erases every trace of the revocation; a replica that never saw it starts.
    await admin.del(k.log, k.revokedSid(carol.sessionId));
    const fresh = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: ta.keyDir });
    try {
      await refusedAfterWipe(carol.refreshToken, carol.sessionId, fresh);
    } finally {
      await fresh.stop();
    }
  });

  it('a session revoked on refresh-token reuse is not revived by field edits', async () => {
    const dan = await issue('dan');
    const next = await ta.client.refresh({ refreshToken: dan.refreshToken });
    clock.advance(11_000);
    await refused(dan.refreshToken, 'ERR_REFRESH_REUSED');
    await admin.hset(k.session(dan.sessionId), 'revoked', '0');
    for (const r of await recordsOf(dan.sessionId)) await admin.hset(r.key, 'state', 'live');
    await admin.del(k.log, k.revokedSid(dan.sessionId));
    const fresh = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: ta.keyDir });
    try {
      await refusedAfterWipe(next.refreshToken, dan.sessionId, fresh);
    } finally {
      await fresh.stop();
    }
  });

  it('the grace window is not widened by editing spentAt: the parent is reuse after the window', async () => {
    const erin = await issue('erin');
    const child = await ta.client.refresh({ refreshToken: erin.refreshToken });
    clock.advance(11_000);
    const parent = (await recordsOf(erin.sessionId)).find((r) => r.fields.state === 'spent');
    assert.ok(parent, 'the spent parent record');
    await admin.hset(parent.key, 'spentAt', String(clock.nowMs()));
    await refused(erin.refreshToken, 'ERR_REFRESH_REUSED');
    await refused(child.refreshToken, 'ERR_SESSION_REVOKED');
  });

  it('signed out everywhere: resetting the subject generation revives no session, not even on a fresh authority after the log is wiped', async () => {
    const fay = await issue('fay');
    const fay2 = await issue('fay');
    await ta.client.revoke({ target: { $case: 'subject', subject: 'fay' } });
    await admin.del(k.generation('fay'));
    await refused(fay.refreshToken, 'ERR_SESSION_REVOKED');
    await admin.del(k.log);
    const fresh = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: ta.keyDir });
    try {
      await refusedAfterWipe(fay2.refreshToken, fay2.sessionId, fresh);
      const later = await fresh.client.issue({ subject: 'fay', audience: ['orders'] });
      await fresh.client.refresh({ refreshToken: later.refreshToken });
    } finally {
      await fresh.stop();
    }
  });

  it('checks the session seal before spending the token: after a refused tampered refresh the restored session refreshes', async () => {
    const hal = await issue('hal');
    const sess = k.session(hal.sessionId);
    const scopes = await admin.hget(sess, 'scopes');
    await admin.hset(sess, 'scopes', JSON.stringify(['read', 'admin:all']));
    await refused(hal.refreshToken, 'ERR_REFRESH_INVALID');
    await admin.hset(sess, 'scopes', scopes!);
    clock.advance(11_000); // past the grace window: a token spent by the refused call would now be reuse
    const next = await ta.client.refresh({ refreshToken: hal.refreshToken });
    assert.equal(next.sessionId, hal.sessionId, 'the refused call spent nothing');
  });

});
