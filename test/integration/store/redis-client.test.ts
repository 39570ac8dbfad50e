import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { RedisKeyStore } from '../../../src/keys/redis-key-store.js';
import { KeySetCipher } from '../../../src/keys/key-set-cipher.js';
import { parseKeyEncryptionKey } from '../../../src/keys/key-encryption-key.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { RedisCommandClient, reconnectDelayMs } from '../../../src/store/redis-client.js';
import { parseRedisUrl } from '../../../src/store/redis-connection.js';
import { createRedisRevocationSource } from '../../../src/store/redis-revocation-source.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/local-ports.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { capturingLogger } from '../../unit/keys/helpers.js';

const COMMAND_TIMEOUT_MS = 400;
/** Scheduling slack on a shared 2-core machine; far below anything that would count as a hang. */
const SLACK_MS = 600;

const unavailable = (pattern?: RegExp) => (err: unknown) =>
  isTokenAuthorityError(err) && err.code === ErrorCodes.STORE_UNAVAILABLE && (pattern === undefined || pattern.test(err.message));

const clientOptions = (extra: Partial<ConstructorParameters<typeof RedisCommandClient>[1]> = {}) => ({
  commandTimeoutMs: COMMAND_TIMEOUT_MS,
  connectionName: 'ta-test-client',
  label: 'Redis test',
  closedMessage: 'the test client is closed',
  ...extra,
});

/** Names of the client connections Redis sees (CLIENT LIST), from a separate observer connection. */
async function connectionNames(observer: Redis): Promise<string[]> {
  const list = (await observer.call('CLIENT', 'LIST')) as string;
  return list.split('\n').map((line) => /name=(\S*)/.exec(line)?.[1] ?? '').filter((n) => n.startsWith('token-authority') || n.startsWith('ta-test'));
}

describe('the Redis failure contract (store/redis-client.ts, real redis-server)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let observer: Redis;
  const open: Array<{ close(): Promise<void> }> = [];

  beforeEach(async () => {
    redis = await startRedis();
    observer = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    observer.on('error', () => {});
    await observer.connect();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    observer.disconnect();
    await redis.stop();
  });

  it('reconnects with a 50 ms backoff doubling to 1 s, forever', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 100].map(reconnectDelayMs), [50, 100, 200, 400, 800, 1000, 1000]);
  });

  it('fails at once with ERR_STORE_UNAVAILABLE when nothing listens, naming the operation and never the arguments', async () => {
    const port = await freePort();
    const client = new RedisCommandClient(parseRedisUrl(`redis://127.0.0.1:${port}`), clientOptions());
    open.push(client);
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    const started = Date.now();
    await assert.rejects(client.run('probe', () => client.client.set(secret, secret)), (err: unknown) => {
      assert.ok(unavailable(/^Redis test probe failed: /)(err), String(err));
      assert.ok(!(err as Error).message.includes(secret), 'the message must not carry the arguments');
      return true;
    });
    assert.ok(Date.now() - started < COMMAND_TIMEOUT_MS + SLACK_MS, 'fails within the command timeout');
    // Known to be down now: the next call does not wait at all.
    await eventually(() => client.client.status === 'reconnecting', 5000, 'the client to be reconnecting');
    await assert.rejects(client.run('probe', () => client.client.ping()), unavailable(/Redis is unreachable \(reconnecting\)/));
  });

  it('never queues and never re-sends: a command against a hung server fails within the deadline and is not replayed', async () => {
    const client = new RedisCommandClient(parseRedisUrl(redis.url), clientOptions());
    open.push(client);
    await client.run('warm-up', () => client.client.ping());
    redis.pause();
    const started = Date.now();
    try {
      await assert.rejects(client.run('incr', () => client.client.incr('ta-test:counter')), unavailable(/^Redis test incr failed: /));
      assert.ok(Date.now() - started < COMMAND_TIMEOUT_MS + SLACK_MS, `failed after ${Date.now() - started} ms`);
    } finally {
      redis.resume();
    }
    // Whether the INCR ran is unknown to the caller; what matters is that it ran at most once.
    await eventually(async () => client.connected && (await client.run('ping', () => client.client.ping())) === 'PONG', 10_000, 'reconnect');
    const value = Number((await observer.get('ta-test:counter')) ?? '0');
    assert.ok(value <= 1, `the command ran ${value} times`);
  });

  it('commands waiting for a connection under way share one wait: no listener per command, no MaxListeners warning', async () => {
    const client = new RedisCommandClient(parseRedisUrl(redis.url), clientOptions({ lazyConnect: true }));
    open.push(client);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      // 50 commands arrive before the lazy connection is up (a burst of requests at start-up).
      const pending = Array.from({ length: 50 }, (_, i) => client.run('ping', () => client.client.ping(`p${i}`)));
      assert.ok(client.client.listenerCount('ready') <= 2, `ready listeners while connecting: ${client.client.listenerCount('ready')}`);
      assert.ok(client.client.listenerCount('close') <= 2, `close listeners while connecting: ${client.client.listenerCount('close')}`);
      const replies = await Promise.all(pending);
      assert.deepEqual(replies, Array.from({ length: 50 }, (_, i) => `p${i}`));
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
      assert.ok(client.client.listenerCount('ready') <= 1, 'the shared wait removed its listeners once connected');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('logs an outage once and its end once, however many reconnect attempts it takes', async () => {
    const { logger, lines } = capturingLogger();
    const client = new RedisCommandClient(parseRedisUrl(redis.url), clientOptions({ logger }));
    open.push(client);
    await client.run('warm-up', () => client.client.ping());
    await redis.kill();
    let errors = 0;
    client.client.on('error', () => errors++);
    await eventually(() => errors >= 3, 10_000, 'several failed reconnect attempts');
    await redis.restart();
    await eventually(() => client.connected, 10_000, 'reconnect');
    assert.deepEqual(lines.map((l) => `${l.level} ${l.msg}`), ['warn Redis test connection error; reconnecting', 'info Redis test connection restored']);
  });

  it('close() closes the command connection and every connection opened from it, and later calls fail', async () => {
    const client = new RedisCommandClient(parseRedisUrl(redis.url), clientOptions());
    await client.run('warm-up', () => client.client.ping());
    const extra = client.openConnection('ta-test-extra');
    await client.whenConnected('extra', extra);
    assert.deepEqual((await connectionNames(observer)).sort(), ['ta-test-client', 'ta-test-extra']);
    await client.close();
    await eventually(async () => (await connectionNames(observer)).length === 0, 5000, 'connections to close');
    await assert.rejects(client.run('late', () => client.client.ping()), unavailable(/^the test client is closed$/));
    assert.throws(() => client.openConnection('late'), unavailable(/closed/));
  });

  describe('every Redis user builds on it', () => {
    it('the token store, the key store and the library source fail alike while Redis is down, and log the outage once', async () => {
      const { logger, lines } = capturingLogger();
      const prefix = `c${randomBytes(3).toString('hex')}:`;
      const store = new RedisTokenStore({ url: redis.url, keyPrefix: prefix, retentionMs: 60_000, commandTimeoutMs: COMMAND_TIMEOUT_MS, logger });
      const keyConnection = new RedisCommandClient(parseRedisUrl(redis.url), {
        ...clientOptions({ logger: logger.child({ component: 'redis-key-store' }), connectionName: 'token-authority-keys' }), label: 'Redis key store', closedMessage: 'the Redis key store is closed',
      });
      const keyStore = new RedisKeyStore({ connection: keyConnection, cipher: new KeySetCipher(parseKeyEncryptionKey(randomBytes(32).toString('base64'))), keyPrefix: prefix });
      const source = createRedisRevocationSource({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: COMMAND_TIMEOUT_MS, logger });
      open.push(store, keyStore, source);
      await Promise.all([store.readLog(0, 1), keyStore.load(), source.readLog(0, 1)]);

      await redis.kill();
      await eventually(() => lines.filter((l) => l.level === 'warn').length >= 3, 10_000, 'each to notice the outage');
      for (const [what, call] of [['token store', () => store.readLog(0, 1)], ['key store', () => keyStore.load()], ['source', () => source.readLog(0, 1)]] as const) {
        const started = Date.now();
        await assert.rejects(call(), unavailable(), what);
        assert.ok(Date.now() - started < COMMAND_TIMEOUT_MS + SLACK_MS, `${what} failed within the command timeout`);
      }
      const warned = lines.filter((l) => l.level === 'warn').map((l) => `${String((l.obj as { component?: string } | undefined)?.component)}: ${l.msg}`).sort();
      assert.deepEqual(warned, [
        'redis-key-store: Redis key store connection error; reconnecting',
        'redis-revocation-source: Redis connection error; reconnecting',
        'redis-token-store: Redis connection error; reconnecting',
      ]);
      await redis.restart();
      await eventually(async () => {
        try {
          await Promise.all([store.readLog(0, 1), keyStore.load(), source.readLog(0, 1)]);
          return true;
        } catch {
          return false;
        }
      }, 10_000, 'all three to recover');
    });

    it('the library source is read-only on its own connection: no write connection, no key-prefix ioredis option, and close() leaves nothing open', async () => {
      const source = createRedisRevocationSource({ url: redis.url, commandTimeoutMs: COMMAND_TIMEOUT_MS });
      await source.readLog(0, 10);
      const subscription = await source.subscribe({ onMessage() {}, onReady() {}, onDisconnect() {} });
      assert.deepEqual((await connectionNames(observer)).sort(), ['token-authority-feed', 'token-authority-verifier']);
      await subscription.close();
      await source.close();
      await eventually(async () => (await connectionNames(observer)).length === 0, 5000, 'connections to close');
      await assert.rejects(source.readLog(0, 1), unavailable(/revocation source is closed/));
      assert.throws(() => createRedisRevocationSource({ url: { host: '127.0.0.1', port: redis.port, keyPrefix: 'x:' } }), (e: unknown) => isTokenAuthorityError(e) && e.code === ErrorCodes.CONFIG);
    });
  });
});
