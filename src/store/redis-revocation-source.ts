import type { RedisOptions } from 'ioredis';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { FeedListener, FeedSubscription, RevocationLogPage, RevocationSource } from '../verifier/revocation-source.js';
import { RedisCommandClient, redisTargetOf } from './redis-client.js';
import { DEFAULT_KEY_PREFIX, redisKeys } from './redis-keys.js';
import { RedisRevocationFeed } from './redis-revocation-feed.js';

export { createRedisDpopReplayCache, type RedisDpopReplayCache, type RedisDpopReplayCacheOptions } from './redis-dpop-replay.js';

/** Options of {@link createRedisRevocationSource}. */
export interface RedisRevocationSourceOptions {
  /**
   * The authority's Redis: a URL (`redis://`, `rediss://`, `redis-sentinel://…/<master>`,
   * `redis-cluster://…`; see redis-connection.ts) or ioredis options.
   */
  url: string | RedisOptions;
  /** The authority's key prefix (default `ta:v1:`). */
  keyPrefix?: string;
  /** Default 1000. */
  commandTimeoutMs?: number;
  logger?: Logger;
}

/** A read-only RevocationSource on the authority's Redis, with its connections to release. */
export interface RedisRevocationSource extends RevocationSource {
  close(): Promise<void>;
}

/**
 * The revocation log + feed of an authority's Redis, for a service embedding the local verifier:
 * reads and subscribes only, never writes. Same failure behaviour as the authority's store (the
 * contract of redis-client.ts): no queue, no retries, calls fail with ERR_STORE_UNAVAILABLE within
 * `commandTimeoutMs` while Redis is down, and it reconnects by itself.
 */
export function createRedisRevocationSource(options: RedisRevocationSourceOptions): RedisRevocationSource {
  const logger = (options.logger ?? silentLogger).child({ component: 'redis-revocation-source' });
  const connection = new RedisCommandClient(redisTargetOf(options.url), {
    ...(options.commandTimeoutMs !== undefined ? { commandTimeoutMs: options.commandTimeoutMs } : {}),
    connectionName: 'token-authority-verifier',
    label: 'Redis',
    closedMessage: 'the revocation source is closed',
    logger,
  });
  const feed = new RedisRevocationFeed(connection, redisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX), logger);
  return {
    readLog: (afterSeq: number, limit: number): Promise<RevocationLogPage> => feed.readLog(afterSeq, limit),
    subscribe: (listener: FeedListener): Promise<FeedSubscription> => feed.subscribe(listener),
    close: async () => {
      if (connection.isClosed) return;
      await feed.closeSubscriptions();
      await connection.close();
    },
  };
}
