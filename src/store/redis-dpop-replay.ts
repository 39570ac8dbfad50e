/**
 * A DPoP replay cache shared by the replicas of one service through Redis (`token-authority/redis`):
 * one `SET <key> 1 NX PX <ms>` per proof, which is atomic, so of any number of replicas claiming
 * the same proof at once exactly one hears 'fresh'. The key lives as long as the proof's window
 * (Redis expires it), so Redis memory is bounded by the proofs of one window.
 *
 * Failure contract: the project's (redis-client.ts: no offline queue, no retries, a command
 * timeout, an outage logged once). A claim that fails rejects, and the verifier then refuses the
 * proof (INVALID_DPOP_PROOF): a replay cache that cannot answer must not turn into "every proof is
 * fresh".
 */
import type { RedisOptions } from 'ioredis';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { sha256Base64url } from '../verifier/sha256.js';
import type { DpopReplayCache, ReplayVerdict } from '../verifier/dpop-replay-cache.js';
import { RedisCommandClient, redisTargetOf } from './redis-client.js';
import { checkKeyPrefix, DEFAULT_KEY_PREFIX, dpopReplayKey } from './redis-schema.js';

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
  checkKeyPrefix(keyPrefix); // now, rather than on the first claim
  const redis = new RedisCommandClient(redisTargetOf(options.url), {
    commandTimeoutMs: options.commandTimeoutMs ?? 500,
    connectionName: 'token-authority-dpop-replay',
    label: 'Redis DPoP replay cache',
    closedMessage: 'the DPoP replay cache is closed',
    logger: (options.logger ?? silentLogger).child({ component: 'redis-dpop-replay' }),
  });
  return {
    async claim(id, untilMs, nowMs) {
      const ttl = Math.ceil(untilMs - nowMs);
      if (ttl <= 0) return 'fresh'; // nothing to hold: such a proof is refused as too old anyway
      // Hashed: ids are client-chosen text of any length; the key stays short and opaque.
      const key = dpopReplayKey(keyPrefix, scope, sha256Base64url(id));
      const reply = await redis.run('claim', () => redis.client.set(key, '1', 'PX', ttl, 'NX'));
      return reply === 'OK' ? 'fresh' : 'replayed';
    },
    close: () => redis.close(),
  };
}
