import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { hashRefreshToken, newRefreshToken } from '../../../src/authority/session-records.js';
import { redisKeys } from '../../../src/store/redis-schema.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

describe('session seal: write access to Redis does not mint tokens', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let admin: Redis;
  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
    admin = new Redis(redis.url);
  });
  after(async () => {
    admin?.disconnect();
    await ta?.close();
    await redis?.stop();
  });

  it('refuses a session planted under the pre-upgrade key (SHA-256) of a token of the attacker\'s choosing, as pre-upgrade', async () => {
    const planted = newRefreshToken();
    const now = Date.now();
    await ta.running.store.createSession({
      sessionId: 'planted',
      subject: 'admin',
      audience: ['billing'],
      scopes: ['admin:all'],
      extra: { client_id: 'token-authority' },
      refreshHash: hashRefreshToken(planted),
      refreshProof: 'forged',
      refreshExpiresAt: now + 60_000,
      absoluteExpiresAt: now + 3_600_000,
      now,
    });
    const err = await expectStatus(ta.client.refresh({ refreshToken: planted }), status.UNAUTHENTICATED, 'issued before the storage format upgrade; sign in again');
    assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_REFRESH_INVALID');
  });

  it('refuses a genuine session whose claims were edited in Redis, and still refreshes untouched ones', async () => {
    const good = await ta.client.issue({ subject: 'pat', audience: ['orders'], scopes: ['read'] });
    const victim = await ta.client.issue({ subject: 'pat', audience: ['orders'], scopes: ['read'] });
    await admin.hset(redisKeys().session(victim.sessionId), 'scopes', JSON.stringify(['read', 'admin:all']));
    await expectStatus(ta.client.refresh({ refreshToken: victim.refreshToken }), status.UNAUTHENTICATED, 'integrity check');
    const refreshed = await ta.client.refresh({ refreshToken: good.refreshToken });
    const v = await ta.client.verify({ token: refreshed.accessToken });
    assert.equal(v.valid, true);
    assert.deepEqual(v.claims?.scopes, ['read']);
    assert.equal(v.claims?.extraClaims.ta_seal, undefined, 'the seal never reaches a token');
  });

  it('reserves the seal field: Issue rejects it as an extra claim', async () => {
    await expectStatus(ta.client.issue({ subject: 'pat', audience: ['orders'], extraClaims: { ta_seal: 'x' } }), status.INVALID_ARGUMENT, 'reserved');
  });
});
