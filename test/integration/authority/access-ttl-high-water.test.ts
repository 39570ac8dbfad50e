import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../../src/shared/clock.js';
import { MemoryTokenStore } from '../../../src/store/memory-token-store.js';
import { startTestAuthority } from '../../helpers/authority.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

/**
 * L6: lowering TA_MAX_ACCESS_TTL must not resurrect revoked long-lived tokens. The longest TTL any
 * replica may still have tokens out for is a high-water mark in the store; session and subject
 * entries, and the log's retention, cover it.
 */
describe('access-TTL high-water mark (L6)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let keyDir: string;
  before(async () => {
    redis = await startRedis();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-keys-'));
  });
  after(async () => {
    await redis?.stop();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('after TA_MAX_ACCESS_TTL is lowered from 24h to 1h, a session entry still outlives the 24h tokens', async () => {
    const long = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir, TA_MAX_ACCESS_TTL: '24h' });
    const token = await long.client.issue({ subject: 'l6', audience: ['orders'], accessTtlSeconds: 86_400 });
    await long.stop();
    const short = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir, TA_MAX_ACCESS_TTL: '1h' });
    try {
      const r = await short.client.revoke({ target: { $case: 'sessionId', sessionId: token.sessionId } });
      const tokenExp = token.accessExpiresAt!.getTime();
      assert.ok(r.entryExpiresAt!.getTime() >= tokenExp, `entry until ${r.entryExpiresAt!.toISOString()} covers the token's exp ${token.accessExpiresAt!.toISOString()}`);
      const v = await short.client.verify({ token: token.accessToken });
      assert.equal(v.valid, false, 'the revoked 24h token is rejected');
    } finally {
      await short.stop();
    }
  });

  it('the store keeps log entries for the high-water mark, and lets it go once the old tokens have expired', async () => {
    const clock = new ManualClock(Date.now());
    const HOUR = 3_600_000;
    const store = new MemoryTokenStore({ retentionMs: HOUR + 30_000, clock });
    assert.equal(await store.recordAccessTtl({ ttlMs: 24 * HOUR, horizonMs: 120_000, slackMs: 30_000 }), 24 * HOUR);
    assert.equal(await store.recordAccessTtl({ ttlMs: HOUR, horizonMs: 120_000, slackMs: 30_000 }), 24 * HOUR, 'lowered: the old TTL still counts');
    const e = await store.revoke({ kind: 'sid', id: 's', until: clock.nowMs() + 24 * HOUR });
    clock.advance(2 * HOUR);
    await store.heartbeat();
    assert.deepEqual((await store.readLog(0, 10)).events, [e], 'not trimmed after the lowered retention');
    clock.advance(23 * HOUR);
    assert.equal(await store.recordAccessTtl({ ttlMs: HOUR, horizonMs: 120_000, slackMs: 30_000 }), HOUR, 'the last 24h token has expired: back to 1h');
    await store.close();
  });
});
