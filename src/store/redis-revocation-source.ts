/**
 * The `token-authority/redis` package entry (package.json `exports["./redis"]`): re-exports only,
 * so the entry's public names stay exactly these. The code is in redis-revocation-feed.ts (the
 * revocation source) and redis-dpop-replay.ts (the DPoP replay cache).
 */
export { createRedisRevocationSource, type RedisRevocationSource, type RedisRevocationSourceOptions } from './redis-revocation-feed.js';
export { createRedisDpopReplayCache, type RedisDpopReplayCache, type RedisDpopReplayCacheOptions } from './redis-dpop-replay.js';
