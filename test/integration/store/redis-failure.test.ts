import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import type { TokenStore } from '../../../src/store/token-store.js';
import { FeedCollector } from '../../contract/feed-collector.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { testChecks } from '../../helpers/refresh-checks.js';

const COMMAND_TIMEOUT_MS = 400;
/** Scheduling slack on a shared 2-core machine; far below anything that would count as a hang. */
const SLACK_MS = 400;
const HOUR = 3_600_000;

describe('RedisTokenStore when Redis fails (real redis-server)', function () {
  this.timeout(30_000);
  let redis: RedisServer | undefined;
  let store: RedisTokenStore | undefined;

  afterEach(async () => {
    await store?.close();
    await redis?.stop();
    store = undefined;
    redis = undefined;
  });

  async function setUp(aof = false): Promise<{ redis: RedisServer; store: RedisTokenStore }> {
    redis = await startRedis({ aof });
    store = new RedisTokenStore({
      url: redis.url,
      keyPrefix: `fail-${randomBytes(3).toString('hex')}:`,
      retentionMs: HOUR,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    // The first call waits for the initial connection.
    await store.readLog(0, 1);
    return { redis, store };
  }

  /** Every TokenStore method that talks to Redis, with valid arguments. */
  function calls(s: TokenStore): Array<[string, () => Promise<unknown>]> {
    const now = Date.now();
    const h = () => randomBytes(32).toString('base64url');
    return [
      ['createSession', () => s.createSession({ sessionId: `s-${h()}`, subject: 'u', audience: ['a'], scopes: [], extra: {}, refreshHash: h(), refreshProof: 'p', refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + HOUR, now })],
      ['rotateRefresh', () => s.rotateRefresh({ presentedHash: h(), successorHash: h(), successorExpiresAt: now + HOUR, now, graceMs: 0, idleTimeoutMs: 0, revocationUntil: now + HOUR, checks: testChecks })],
      ['findSessionByRefresh', () => s.findSessionByRefresh(h())],
      ['getSession', () => s.getSession('s-1')],
      ['revoke', () => s.revoke({ kind: 'jti', id: `j-${h()}`, until: now + HOUR })],
      ['readLog', () => s.readLog(0, 10)],
      ['heartbeat', () => s.heartbeat()],
      ['reportApplied', () => s.reportApplied('i-1', 1, 10_000)],
      ['listApplied', () => s.listApplied()],
      ['subscribe', () => s.subscribe(new FeedCollector())],
    ];
  }

  async function assertFailsFast(name: string, call: () => Promise<unknown>): Promise<void> {
    const started = Date.now();
    let error: unknown;
    try {
      const value = await call();
      assert.fail(`${name} resolved (${JSON.stringify(value)}) while Redis is unavailable`);
    } catch (err) {
      error = err;
    }
    const elapsed = Date.now() - started;
    assert.ok(error instanceof TokenAuthorityError, `${name} rejected with ${String(error)}`);
    assert.equal(error.code, ErrorCodes.STORE_UNAVAILABLE, `${name}: ${error.message}`);
    assert.ok(elapsed <= COMMAND_TIMEOUT_MS + SLACK_MS, `${name} took ${elapsed} ms`);
  }

  async function eventually<T>(what: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`${what} did not recover within ${timeoutMs} ms: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    }
  }

  it('rejects every call with ERR_STORE_UNAVAILABLE within the command timeout when Redis is killed', async () => {
    const { redis, store } = await setUp();
    await redis.kill();
    for (const [name, call] of calls(store)) await assertFailsFast(name, call);
    // Concurrent calls fail too; none is queued behind the others.
    await Promise.all(calls(store).map(([name, call]) => assertFailsFast(`${name} (concurrent)`, call)));
    const started = Date.now();
    assert.equal(await store.ping(), false);
    assert.ok(Date.now() - started <= COMMAND_TIMEOUT_MS + SLACK_MS);
  });

  it('rejects within the command timeout when Redis hangs (accepts bytes, never answers)', async () => {
    const { redis, store } = await setUp();
    redis.pause();
    try {
      for (const [name, call] of calls(store)) await assertFailsFast(name, call);
      const started = Date.now();
      assert.equal(await store.ping(), false);
      assert.ok(Date.now() - started <= COMMAND_TIMEOUT_MS + SLACK_MS);
    } finally {
      redis.resume();
    }
    // Once Redis answers again the store works without intervention.
    await eventually('readLog after resume', () => store.readLog(0, 10));
  });

  it('recovers by itself when Redis comes back', async () => {
    const { redis, store } = await setUp();
    await redis.kill();
    await assert.rejects(store.readLog(0, 1), { code: ErrorCodes.STORE_UNAVAILABLE });
    await redis.restart();
    const event = await eventually('revoke after restart', () =>
      store.revoke({ kind: 'jti', id: 'after-restart', until: Date.now() + HOUR }),
    );
    // Without persistence the restarted Redis is empty: the sequence starts again at 1.
    assert.equal(event.seq, 1);
    for (const [name, call] of calls(store)) {
      const value = await call();
      if (name === 'subscribe') await (value as { close(): Promise<void> }).close();
    }
    assert.equal(await store.ping(), true);
  });

  it('keeps an acknowledged revoke across kill -9 with AOF (appendfsync always)', async () => {
    const { redis, store } = await setUp(true);
    const now = Date.now();
    const sessionId = 'sid-durable';
    await store.createSession({ sessionId, subject: 'erin', audience: ['a'], scopes: [], extra: {}, refreshHash: 'rt-durable', refreshProof: 'p', refreshExpiresAt: now + HOUR, absoluteExpiresAt: now + HOUR, now });
    const e1 = await store.revoke({ kind: 'sub', id: 'erin', until: now + HOUR });
    const e2 = await store.revoke({ kind: 'sid', id: sessionId, until: now + HOUR, reason: 'logout' });
    await redis.kill();
    await redis.restart();

    const page = await eventually('readLog after restart', () => store.readLog(0, 10));
    assert.deepEqual(page, { events: [e1, e2], headSeq: 2 });
    assert.equal((await store.getSession(sessionId))?.revoked, true);
    const e3 = await store.revoke({ kind: 'jti', id: 'j', until: now + HOUR });
    assert.equal(e3.seq, 3, 'the sequence continues after recovery');
    assert.deepEqual(await store.revoke({ kind: 'sid', id: sessionId, until: now + HOUR }), e2, 'markers survive too');
  });

  it('tells a subscriber onDisconnect, then onReady once resubscribed after a restart', async () => {
    const { redis, store } = await setUp();
    const feed = new FeedCollector();
    const subscription = await store.subscribe(feed);
    await feed.until('first onReady', () => feed.readyCount === 1);
    await store.revoke({ kind: 'jti', id: 'before', until: Date.now() + HOUR });
    await feed.until('rev before the outage', () => feed.revocations.length === 1);

    await redis.kill();
    await feed.until('onDisconnect', () => feed.disconnectCount === 1);
    await redis.restart();
    await feed.until('onReady after restart', () => feed.readyCount === 2, 10_000);
    // onReady means the channel is live: a revocation right after it must arrive.
    await eventually('revoke after restart', () => store.revoke({ kind: 'jti', id: 'after', until: Date.now() + HOUR }));
    await feed.until('rev after the outage', () => feed.revocations.length === 2);
    assert.deepEqual(feed.calls, ['ready', 'rev:1', 'disconnect', 'ready', 'rev:1']);
    assert.equal(feed.revocations[1]!.id, 'after');
    await subscription.close();
  });

  it('fails subscribe with ERR_STORE_UNAVAILABLE when Redis is down at subscribe time, leaving nothing behind', async () => {
    const { redis, store } = await setUp();
    await redis.kill();
    const feed = new FeedCollector();
    await assert.rejects(store.subscribe(feed), { code: ErrorCodes.STORE_UNAVAILABLE });
    await redis.restart();
    await eventually('readLog after restart', () => store.readLog(0, 1));
    await store.revoke({ kind: 'jti', id: 'x', until: Date.now() + HOUR });
    // A second subscriber proves the message was published; the failed one must not hear it.
    const witness = new FeedCollector();
    const sub = await store.subscribe(witness);
    await store.revoke({ kind: 'jti', id: 'y', until: Date.now() + HOUR });
    await witness.until('rev on the witness', () => witness.revocations.length === 1);
    assert.deepEqual(feed.calls, []);
    await sub.close();
  });
});
