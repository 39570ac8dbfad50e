import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedisDpopReplayCache, type RedisDpopReplayCache } from '../../../src/store/redis-revocation-source.js';
import { createVerifier } from '../../../src/verifier/create-verifier.js';
import { createStaticKeyResolver } from '../../../src/verifier/key-resolvers.js';
import { forgeDpopProof, generateDpopKey } from '../../helpers/dpop-forge.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { accessPayload, forgeToken, generateTestKey } from '../../helpers/token-forge.js';

const ISSUER = 'https://issuer.test';
const URI = 'https://api.test/orders';

describe('createRedisDpopReplayCache (token-authority/redis, real redis-server)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let raw: Redis;
  const caches: RedisDpopReplayCache[] = [];
  const make = (o: { scope?: string; keyPrefix?: string } = {}) => {
    const c = createRedisDpopReplayCache({ url: redis.url, keyPrefix: o.keyPrefix ?? 'dpop-test:', scope: o.scope, commandTimeoutMs: 400 });
    caches.push(c);
    return c;
  };
  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    for (const c of caches) await c.close();
    raw.disconnect();
    await redis.stop();
  });

  it('of many concurrent claims of one id, on two replicas, exactly one is fresh', async () => {
    const a = make();
    const b = make();
    const now = Date.now();
    const id = `jkt.${randomBytes(8).toString('hex')}`;
    const verdicts = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).claim(id, now + 60_000, now)));
    assert.equal(verdicts.filter((v) => v === 'fresh').length, 1);
    assert.equal(verdicts.filter((v) => v === 'replayed').length, 39);
  });

  it('the key is the hashed id under <prefix>dpop:<scope>:, expiring with the proof window', async () => {
    const c = make({ scope: 'orders', keyPrefix: 'p1:' });
    const now = Date.now();
    const id = 'some-jkt.some-jti';
    assert.equal(await c.claim(id, now + 30_000, now), 'fresh');
    const key = `p1:dpop:orders:${createHash('sha256').update(id).digest('base64url')}`;
    const pttl = await raw.pttl(key);
    assert.ok(pttl > 0 && pttl <= 30_000, `pttl ${pttl}`);
    assert.equal(await make({ scope: 'billing', keyPrefix: 'p1:' }).claim(id, now + 30_000, now), 'fresh', 'another service scope is another cache');
  });

  it('shared by two verifiers: a proof accepted by one replica is a replay at the other', async () => {
    const issuerKey = generateTestKey('ES256');
    const dpopKey = await generateDpopKey('ES256');
    const shared = make({ scope: `svc-${randomBytes(3).toString('hex')}` });
    const verifier = () => createVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([issuerKey.verificationKey]), dpopReplayCache: shared });
    const [one, two] = [verifier(), verifier()];
    const token = forgeToken({ key: issuerKey, payload: accessPayload({ iss: ISSUER, cnf: { jkt: dpopKey.jkt } }) });
    const dpop = { proof: forgeDpopProof({ key: dpopKey, method: 'GET', uri: URI, accessToken: token }), method: 'GET', uri: URI };
    const first = await one.verify(token, { dpop });
    assert.ok(first.valid, first.valid ? '' : first.detail);
    const second = await two.verify(token, { dpop });
    assert.equal(second.valid ? 'VALID' : `${second.reason}: ${second.detail}`, 'INVALID_DPOP_PROOF: proof jti was already used (replay)');
  });

  it('Redis down: claims reject and the verifier refuses the proof (fail closed); back up, fresh proofs pass', async () => {
    const own = await startRedis();
    const c = createRedisDpopReplayCache({ url: own.url, commandTimeoutMs: 300 });
    try {
      const issuerKey = generateTestKey('ES256');
      const dpopKey = await generateDpopKey('ES256');
      const v = createVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([issuerKey.verificationKey]), dpopReplayCache: c });
      const token = forgeToken({ key: issuerKey, payload: accessPayload({ iss: ISSUER, cnf: { jkt: dpopKey.jkt } }) });
      const dpop = () => ({ proof: forgeDpopProof({ key: dpopKey, method: 'GET', uri: URI, accessToken: token }), method: 'GET', uri: URI });
      assert.ok((await v.verify(token, { dpop: dpop() })).valid);
      await own.kill();
      await assert.rejects(c.claim('x', Date.now() + 1000, Date.now()), /Redis DPoP replay cache claim failed/);
      const r = await v.verify(token, { dpop: dpop() });
      assert.equal(r.valid ? 'VALID' : `${r.reason}: ${r.detail}`, 'INVALID_DPOP_PROOF: the DPoP replay cache did not answer: proof refused');
      await own.restart();
      // Reconnection is ioredis' business (its backoff), seen from outside only by claims succeeding again.
      let i = 0;
      await eventually(async () => (await c.claim(`after-${i++}`, Date.now() + 1000, Date.now()).catch(() => 'down')) === 'fresh', 10_000, 'a claim after Redis restarted');
      assert.ok((await v.verify(token, { dpop: dpop() })).valid);
    } finally {
      await c.close();
      await own.stop();
    }
  });

  it('refuses a scope that would not be a plain key segment', () => {
    assert.throws(() => createRedisDpopReplayCache({ url: redis.url, scope: 'a b' }), /scope must be/);
    assert.throws(() => createRedisDpopReplayCache({ url: redis.url, keyPrefix: '{x}' }), /keyPrefix/);
  });
});
