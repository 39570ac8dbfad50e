import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createRedisRevocationSource } from '../../../src/store/redis-revocation-source.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { createVerifier, type Verifier } from '../../../src/verifier/index.js';
import { MutableKeyResolver } from '../../../src/verifier/key-resolvers.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

/**
 * A PUBLISH-only attacker on a real Redis (M4, M5, L7): forged feed messages reach the verifiers
 * through the real subscription path, and do not make them re-read the log, grow, or pin the head.
 */
describe('forged messages on the real feed channel (PUBLISH-only attacker)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let store: RedisTokenStore;
  let attacker: Redis;
  const stops: Array<() => Promise<void> | void> = [];
  const FEED = 'ta:v1:{ta}:feed';

  before(async () => {
    redis = await startRedis();
    store = new RedisTokenStore({ url: redis.url, retentionMs: 3_600_000 });
    attacker = new Redis(redis.url);
  });
  after(async () => {
    for (const s of stops.reverse()) await s();
    attacker?.disconnect();
    await store?.close();
    await redis?.stop();
  });

  const verifier = async (): Promise<Verifier> => {
    const source = createRedisRevocationSource({ url: redis.url });
    const v = createVerifier({ issuer: 'https://issuer.test', keys: new MutableKeyResolver([]), revocations: source });
    stops.push(() => source.close(), () => v.stop());
    await v.start();
    return v;
  };

  it('a forged seq = head+1 plus heartbeats causes no full re-read; huge messages are dropped; a huge hb pins nothing', async () => {
    for (let i = 0; i < 20; i++) await store.revoke({ kind: 'jti', id: `real-${i}`, until: Date.now() + 600_000 });
    const v = await verifier();
    await store.heartbeat();
    await eventually(() => v.status().revocation.appliedSeq === 20 && v.status().revocation.lag === 0, 5000, 'loaded');
    const entriesBefore = v.status().revocation.entries.jti;

    await attacker.publish(FEED, JSON.stringify({ v: 1, type: 'rev', seq: 21, kind: 'jti', id: 'forged', until: 8.64e15, at: Date.now() }));
    for (let i = 0; i < 20; i++) {
      await attacker.publish(FEED, JSON.stringify({ v: 1, type: 'rev', seq: 22 + i, kind: 'jti', id: 'x'.repeat(1024 * 1024), until: 8.64e15, at: 0 }));
    }
    await attacker.publish(FEED, JSON.stringify({ v: 1, type: 'hb', seq: 9_000_000_000_000, at: Date.now() }));
    await eventually(() => v.status().revocation.entries.jti === entriesBefore + 1, 5000, 'the forged event applied live');
    for (let i = 0; i < 3; i++) await store.heartbeat();
    await eventually(() => v.status().revocation.entries.jti === entriesBefore, 5000, 'the forged entry undone after the next log read');

    const late = await verifier(); // started while forged heartbeats are around
    await attacker.publish(FEED, JSON.stringify({ v: 1, type: 'hb', seq: 9_000_000_000_000, at: Date.now() }));
    await store.heartbeat();
    for (const x of [v, late]) {
      await eventually(() => x.status().revocation.headSeq === 20 && x.status().revocation.lag === 0 && !x.status().revocation.stale, 5000, 'fresh, head from the log');
      assert.equal(x.status().revocation.fullReloads, 0, 'never re-read the whole log');
    }
  });
});
