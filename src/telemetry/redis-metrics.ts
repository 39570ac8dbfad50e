import { RedisTokenStore } from '../store/redis-token-store.js';
import type { TokenStore } from '../store/token-store.js';
import { counter, gauge, type Metrics } from './metrics.js';
/**
 * Redis health of one process: `ta_redis_errors_total` (pass `onCommandError` to the store) and,
 * once `watch` is given a Redis store, `ta_redis_connected`.
 */
export function registerRedisMetrics(metrics: Metrics): { onCommandError: () => void; watch(store: TokenStore): void } {
  return {
    onCommandError: counter(metrics, 'ta_redis_errors_total', 'Redis commands that failed: Redis unreachable, timed out, or an error reply.'),
    watch(store) {
      if (store instanceof RedisTokenStore) gauge(metrics, 'ta_redis_connected', '1 while the Redis command connection is up, else 0.', () => (store.connected ? 1 : 0), 'min');
    },
  };
}
