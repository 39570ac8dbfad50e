import { RedisTokenStore } from '../../src/store/redis-token-store.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { runTokenStoreContract } from './token-store.contract.js';

describe('RedisTokenStore (contract, real redis-server)', function () {
  let redis: RedisServer;
  let n = 0;

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  // A fresh key prefix per store isolates tests (keys and the feed channel) without FLUSHALL.
  runTokenStoreContract('RedisTokenStore', async (options) => {
    const store = new RedisTokenStore({
      url: redis.url,
      keyPrefix: `test${++n}:`,
      retentionMs: options?.retentionMs ?? 60 * 60_000,
      commandTimeoutMs: 2000,
    });
    return { store, clock: undefined, cleanup: () => store.close() };
  });
});
