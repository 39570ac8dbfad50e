/**
 * A DPoP replay cache shared by the replicas of one service through Redis (`token-authority/redis`):
 * one `SET <key> 1 NX PX <ms>` per proof, which is atomic, so of any number of replicas claiming
 * the same proof at once exactly one hears 'fresh'. The key lives as long as the proof's window
 * (Redis expires it), so Redis memory is bounded by the proofs of one window.
 *
 * Failure contract: no offline queue, no retries, a command timeout; a claim that fails or times
 * out rejects, and the verifier then refuses the proof (INVALID_DPOP_PROOF): a replay cache that
 * cannot answer must not turn into "every proof is fresh".
 */
import { createHash } from 'node:crypto';
import type { RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { DpopReplayCache, ReplayVerdict } from '../verifier/dpop-replay-cache.js';
import { createRedisClient, parseRedisUrl, type RedisClient, type RedisTarget } from './redis-connection.js';
import { DEFAULT_KEY_PREFIX, dpopReplayKey } from './redis-keys.js';

export interface RedisDpopReplayCacheOptions {
  /** A Redis URL (`redis://`, `rediss://`, `redis-sentinel://…`, `redis-cluster://…`) or ioredis options. */
  url: string | RedisOptions;
  /** Key prefix (default `ta:v1:`). */
  keyPrefix?: string;
  /**
   * Which service's proofs these are: replicas of one service use the same scope, another
   * service its own. Default `default`.
   */
  scope?: string;
  /** Default 500: a DPoP check is on a request's path. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

export interface RedisDpopReplayCache extends DpopReplayCache {
  claim(id: string, untilMs: number, nowMs: number): Promise<ReplayVerdict>;
  /** Close the connection (the verifier never does: you created it). */
  close(): Promise<void>;
}

/** A scope is part of a key name: short and plain. */
const SCOPE = /^[A-Za-z0-9._:-]{1,64}$/;

/** Create the shared cache; pass it as `createVerifier({ dpopReplayCache })` on every replica. */
export function createRedisDpopReplayCache(options: RedisDpopReplayCacheOptions): RedisDpopReplayCache {
  const scope = options.scope ?? 'default';
  if (!SCOPE.test(scope)) throw new TokenAuthorityError(ErrorCodes.CONFIG, 'scope must be 1-64 characters of A-Z a-z 0-9 . _ : -');
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX;
  dpopReplayKey(keyPrefix, scope, ''); // validates the prefix now rather than on the first claim
  const timeoutMs = options.commandTimeoutMs ?? 500;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw new TokenAuthorityError(ErrorCodes.CONFIG, 'commandTimeoutMs must be a positive integer');
  let target: RedisTarget;
  if (typeof options.url === 'string') target = parseRedisUrl(options.url);
  else if (typeof options.url === 'object' && options.url !== null) target = { ...options.url };
  else throw new TokenAuthorityError(ErrorCodes.CONFIG, 'url must be a redis:// URL or ioredis options');
  const logger = (options.logger ?? silentLogger).child({ component: 'redis-dpop-replay' });
  const redis: RedisClient = createRedisClient(target, {
    commandTimeout: timeoutMs,
    connectTimeout: Math.max(2 * timeoutMs, 1000),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectionName: 'token-authority-dpop-replay',
  });
  let down = false;
  redis.on('error', (err: Error) => {
    if (!down) logger.warn({ err: err.message }, 'Redis connection error (DPoP proofs are refused until it is back); reconnecting');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.info('Redis connection restored');
    down = false;
  });
  /**
   * The first claims wait for the connection (bounded by the timeout, one shared wait however many
   * claims are waiting); once the connection is known down, claims fail at once.
   */
  let connecting: Promise<void> | undefined;
  const whenReady = (): Promise<void> => {
    if (redis.status === 'ready') return Promise.resolve();
    if (down || redis.status === 'end' || redis.status === 'close') return Promise.reject(new Error(`connection is ${down ? 'down' : redis.status}`));
    return (connecting ??= new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
      const onReady = () => done();
      const onError = (err: Error) => done(err);
      function done(err?: Error) {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
        connecting = undefined;
        if (err) reject(err);
        else resolve();
      }
      redis.once('ready', onReady);
      redis.once('error', onError);
    }));
  };
  return {
    async claim(id, untilMs, nowMs) {
      const ttl = Math.ceil(untilMs - nowMs);
      if (ttl <= 0) return 'fresh'; // nothing to hold: such a proof is refused as too old anyway
      // Hashed: ids are client-chosen text of any length; the key stays short and opaque.
      const key = dpopReplayKey(keyPrefix, scope, createHash('sha256').update(id).digest('base64url'));
      let reply: string | null;
      try {
        await whenReady();
        reply = await redis.set(key, '1', 'PX', ttl, 'NX');
      } catch (err) {
        // A fresh error: ioredis errors carry the command's arguments.
        throw new TokenAuthorityError(ErrorCodes.STORE_UNAVAILABLE, `Redis DPoP replay claim failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      return reply === 'OK' ? 'fresh' : 'replayed';
    },
    async close() {
      await redis.quit().catch(() => undefined);
      redis.disconnect();
    },
  };
}
