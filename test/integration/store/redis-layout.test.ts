import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ErrorCodes } from '../../../src/shared/errors.js';
import { redisKeys } from '../../../src/store/redis-schema.js';
import { createRedisRevocationSource } from '../../../src/store/redis-revocation-source.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { FeedCollector } from '../../contract/feed-collector.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { testChecks, testLiveProof } from '../../helpers/refresh-checks.js';

const HOUR = 3_600_000;

describe('RedisTokenStore key layout, options and feed hygiene (real redis-server)', function () {
  let redis: RedisServer;
  let raw: Redis;

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('validates its options eagerly, naming the option', () => {
    const make = (o: object) => () => new RedisTokenStore({ url: redis.url, retentionMs: HOUR, ...o });
    assert.throws(make({ retentionMs: 0 }), { code: ErrorCodes.CONFIG, message: /retentionMs/ });
    assert.throws(make({ commandTimeoutMs: -1 }), { code: ErrorCodes.CONFIG, message: /commandTimeoutMs/ });
    assert.throws(make({ keyPrefix: 'x{y}:' }), { code: ErrorCodes.CONFIG, message: /keyPrefix/ });
    assert.throws(make({ url: 'http://127.0.0.1:6379' }), { code: ErrorCodes.CONFIG, message: /url/ });
    assert.throws(make({ url: { port: redis.port, keyPrefix: 'p:' } }), { code: ErrorCodes.CONFIG, message: /keyPrefix/ });
  });

  it('accepts ioredis options instead of a URL', async () => {
    const store = new RedisTokenStore({ url: { host: '127.0.0.1', port: redis.port }, keyPrefix: 'opts:', retentionMs: HOUR });
    try {
      assert.equal((await store.revoke({ kind: 'jti', id: 'j', until: Date.now() + HOUR })).seq, 1);
      assert.equal(await store.ping(), true);
    } finally {
      await store.close();
    }
  });

  it('keeps every key under one hash tag, with the documented types, IDs and expiries', async () => {
    const prefix = 'layout:';
    const k = redisKeys(prefix);
    const store = new RedisTokenStore({ url: redis.url, keyPrefix: prefix, retentionMs: HOUR });
    try {
      const now = Date.now();
      await store.createSession({
        sessionId: 's1', subject: 'u1', audience: ['a'], scopes: [], extra: {},
        refreshHash: 'h1', refreshProof: testLiveProof('h1', 's1', now + HOUR, now), refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + 2 * HOUR, now,
      });
      await store.rotateRefresh({
        presentedHash: 'h1', successorHash: 'h2', successorExpiresAt: now + HOUR, now,
        graceMs: 0, idleTimeoutMs: 0, revocationUntil: now + HOUR, checks: testChecks,
      });
      const jti = await store.revoke({ kind: 'jti', id: 'j1', until: now + HOUR });
      await store.revoke({ kind: 'sid', id: 's1', until: now + HOUR });
      await store.revoke({ kind: 'sub', id: 'u1', until: now + HOUR });
      await store.reportApplied('v1', 3, 60_000);

      const keys = (await raw.keys(`${prefix}*`)).sort();
      assert.deepEqual(keys, [
        k.generation('u1'), k.log, k.receipt('v1'), k.receiptIds, k.revokedJti('j1'), k.revokedSid('s1'),
        k.refresh('h1'), k.refresh('h2'), k.seq, k.session('s1'),
      ].sort());
      for (const key of keys) assert.ok(key.startsWith(`${prefix}{ta}:`), key);

      // Families and refresh records (spent ones too) live until the absolute expiry.
      for (const key of [k.session('s1'), k.refresh('h1'), k.refresh('h2')]) {
        assert.equal(await raw.pexpiretime(key), now + 2 * HOUR, key);
      }
      assert.equal(await raw.pexpiretime(k.revokedJti('j1')), now + HOUR, 'markers expire at until');
      assert.equal(await raw.pttl(k.generation('u1')), -1, 'generations never expire');
      assert.equal(await raw.pttl(k.seq), -1);
      const receiptTtl = await raw.pttl(k.receipt('v1'));
      assert.ok(receiptTtl > 0 && receiptTtl <= 60_000, 'a receipt is its instance\'s own key, expiring with its TTL');
      const [, reportedAt, liveUntil] = (await raw.get(k.receipt('v1')))!.split(':').map(Number);
      assert.match((await raw.get(k.receipt('v1')))!, /^3:\d+:\d+$/, '<seq>:<reportedAt>:<liveUntil>');
      assert.equal(liveUntil! - reportedAt!, 60_000, 'live for its TTL after the report');
      assert.deepEqual(await raw.smembers(k.receiptIds), ['v1']);

      const entries = await raw.xrange(k.log, '-', '+');
      assert.deepEqual(entries.map(([id]) => id), ['1-0', '2-0', '3-0'], 'stream IDs are <seq>-0');
      const [, fields] = entries[0]!;
      assert.equal(fields[0], 'e');
      assert.deepEqual(JSON.parse(fields[1]!), jti, 'field e is the wire-format event');
    } finally {
      await store.close();
    }
  });

  it('drops and counts feed messages that are not valid v1 messages', async () => {
    const store = new RedisTokenStore({ url: redis.url, keyPrefix: 'hygiene:', retentionMs: HOUR });
    try {
      const feed = new FeedCollector();
      const sub = await store.subscribe(feed);
      await feed.until('onReady', () => feed.readyCount === 1);
      const channel = redisKeys('hygiene:').feed;
      await raw.publish(channel, 'not json');
      await raw.publish(channel, JSON.stringify({ v: 2, type: 'rev', seq: 1, kind: 'jti', id: 'x', until: 1, at: 1 }));
      await raw.publish(redisKeys('other:').feed, JSON.stringify({ v: 1, type: 'hb', seq: 9, at: 1 }));
      const e = await store.revoke({ kind: 'jti', id: 'j', until: Date.now() + HOUR });
      await feed.until('the valid revocation', () => feed.revocations.length === 1);
      assert.deepEqual(feed.messages, [e], 'invalid and foreign messages never reach the listener');
      assert.equal(store.droppedFeedMessages, 2);
      await sub.close();
    } finally {
      await store.close();
    }
  });

  it('serves a verifier read-only through createRedisRevocationSource', async () => {
    const store = new RedisTokenStore({ url: redis.url, keyPrefix: 'source:', retentionMs: HOUR });
    const source = createRedisRevocationSource({ url: redis.url, keyPrefix: 'source:' });
    try {
      const e1 = await store.revoke({ kind: 'jti', id: 'j1', until: Date.now() + HOUR });
      const feed = new FeedCollector();
      const sub = await source.subscribe(feed);
      await feed.until('onReady', () => feed.readyCount === 1);
      const e2 = await store.revoke({ kind: 'sub', id: 'u', until: Date.now() + HOUR });
      await feed.until('the live revocation', () => feed.revocations.length === 1);
      assert.deepEqual(feed.revocations, [e2]);
      assert.deepEqual(await source.readLog(0, 10), { events: [e1, e2], headSeq: 2 });
      await sub.close();
    } finally {
      await source.close();
      await store.close();
    }
  });
});
