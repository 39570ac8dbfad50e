import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { redisKeys } from '../../../src/store/redis-schema.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

/**
 * The session record on Redis: the seal and the constraints are hash fields of their own, and the
 * seal covers them; sessions stored by the previous version (seal and cap as `ta_seal`/`ta_cap`
 * entries of `extra`) still refresh exactly as they did, and only as they were sealed.
 */
describe('session records on Redis: seal and constraints as fields, the previous layout still read', function () {
  this.timeout(30_000);
  const k = redisKeys();
  let redis: RedisServer;
  let admin: Redis;
  let ta: TestAuthority;
  let secret: Buffer;
  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
    // No KEK configured: the seal secret is the key directory's session-seal.key.
    secret = Buffer.from((await readFile(join(ta.keyDir, 'session-seal.key'), 'utf8')).trim(), 'base64url');
  });
  after(async () => {
    admin?.disconnect();
    await ta?.close();
    await redis?.stop();
  });

  const code = (err: { metadata: { get(k: string): unknown[] } }) => err.metadata.get('ta-error-code')[0];
  const payload = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown> & { exp: number; iat: number };
  const issue = (subject: string) => ta.client.issue({ subject, audience: ['orders'], scopes: ['read'], extraClaims: { tenant: 'acme' } });
  async function refused(refreshToken: string): Promise<void> {
    const err = await expectStatus(ta.client.refresh({ refreshToken }), status.UNAUTHENTICATED, 'integrity check');
    assert.equal(code(err), 'ERR_REFRESH_INVALID', err.message);
  }

  /** Rewrites a session into the previous version's layout, sealed as that version sealed it (made here by hand). */
  async function toPreviousLayout(sessionId: string, claims: Record<string, string>, sealedExtra: Record<string, string>): Promise<void> {
    const h = await admin.hgetall(k.session(sessionId));
    const sorted = Object.keys(sealedExtra).sort().map((name) => [name, sealedExtra[name]]);
    const text = JSON.stringify(['ta-session-v1', h.sid, h.sub, JSON.parse(h.aud!), JSON.parse(h.scopes!), sorted, Number(h.absExp), Number(h.createdAt)]);
    const seal = `v1.file.${createHmac('sha256', secret).update(text).digest('base64url')}`;
    await admin.hdel(k.session(sessionId), 'seal', 'constraints');
    await admin.hset(k.session(sessionId), 'extra', JSON.stringify({ ...claims, ta_seal: seal }));
  }

  it('Issue writes the seal as a field and keeps extra to the claims', async () => {
    const a = await issue('ann');
    const h = await admin.hgetall(k.session(a.sessionId));
    assert.match(h.seal ?? '', /^v2\.file\.[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(JSON.parse(h.extra!), { tenant: 'acme', client_id: 'token-authority' });
    assert.equal(h.constraints, undefined, 'no grant cap on a loopback caller: no constraints field');
    await ta.client.refresh({ refreshToken: a.refreshToken });
  });

  it('a session in the previous layout refreshes, with its sealed cap, and its tokens carry no reserved entry', async () => {
    const a = await issue('lee');
    const claims = { tenant: 'acme', client_id: 'token-authority' };
    await toPreviousLayout(a.sessionId, { ...claims, ta_cap: '60000' }, { ...claims, ta_cap: '60000' });
    const next = await ta.client.refresh({ refreshToken: a.refreshToken, accessTtlSeconds: 3600 });
    const p = payload(next.accessToken);
    assert.equal(p.exp - p.iat, 60, 'the cap sealed in extra applies');
    assert.equal(p.tenant, 'acme');
    assert.equal(p.ta_seal, undefined);
    assert.equal(p.ta_cap, undefined);
    const again = await ta.client.refresh({ refreshToken: next.refreshToken, accessTtlSeconds: 3600 });
    assert.equal(payload(again.accessToken).exp - payload(again.accessToken).iat, 60, 'its successor too (the record keeps its layout)');
  });

  it('a session in the previous layout whose cap was removed, or that gained a seal field or constraints, is refused', async () => {
    const claims = { tenant: 'acme', client_id: 'token-authority' };
    const a = await issue('lee-2');
    await toPreviousLayout(a.sessionId, claims, { ...claims, ta_cap: '60000' });
    await refused(a.refreshToken);
    const b = await issue('lee-3');
    await toPreviousLayout(b.sessionId, { ...claims, ta_cap: '60000' }, { ...claims, ta_cap: '60000' });
    await admin.hset(k.session(b.sessionId), 'constraints', JSON.stringify({ maxAccessTtlMs: 60_000 }));
    await refused(b.refreshToken);
  });

  it('the seal covers the constraints field: one added, or the seal removed, is refused (checked before anything is spent)', async () => {
    const a = await issue('max');
    await admin.hset(k.session(a.sessionId), 'constraints', JSON.stringify({ maxAccessTtlMs: 3_600_000 }));
    await refused(a.refreshToken);
    await admin.hdel(k.session(a.sessionId), 'constraints');
    const seal = await admin.hget(k.session(a.sessionId), 'seal');
    await admin.hdel(k.session(a.sessionId), 'seal');
    await refused(a.refreshToken);
    await admin.hset(k.session(a.sessionId), 'seal', seal!);
    await ta.client.refresh({ refreshToken: a.refreshToken });
  });
});
