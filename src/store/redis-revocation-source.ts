import type { RedisOptions } from 'ioredis';
import type { Logger } from '../shared/logger.js';
import type { FeedListener, FeedSubscription, RevocationLogPage, RevocationSource } from '../verifier/revocation-source.js';
import { RedisTokenStore } from './redis-token-store.js';

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
 * reads and subscribes only, never writes. Same failure behaviour as RedisTokenStore.
 */
export function createRedisRevocationSource(options: RedisRevocationSourceOptions): RedisRevocationSource {
  const store = new RedisTokenStore({
    url: options.url,
    keyPrefix: options.keyPrefix,
    commandTimeoutMs: options.commandTimeoutMs,
    logger: options.logger,
    // Retention only governs trimming, which happens in write paths this source never exposes.
    retentionMs: 1,
  });
  return {
    readLog: (afterSeq: number, limit: number): Promise<RevocationLogPage> => store.readLog(afterSeq, limit),
    subscribe: (listener: FeedListener): Promise<FeedSubscription> => store.subscribe(listener),
    close: () => store.close(),
  };
}
