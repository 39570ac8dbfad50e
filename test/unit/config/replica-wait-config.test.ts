import assert from 'node:assert/strict';
import { loadConfig } from '../../../src/config/config.js';
import { parseRedisUrl } from '../../../src/store/redis-connection.js';
import { replicasToWaitFor } from '../../../src/store/redis-revocation-log.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { configProblem } from '../../helpers/config-problem.js';

describe('configuration of the replica wait (TA_REDIS_WAIT_REPLICAS, TA_REDIS_WAIT_TIMEOUT, TA_REDIS_WAIT_AOF)', () => {
  it('defaults: auto, 500 ms, WAIT (not WAITAOF)', () => {
    const c = loadConfig('authority', { env: { TA_REDIS_URL: 'redis-sentinel://127.0.0.1:26379/m' } });
    assert.equal(c.redisWaitReplicas, 'auto');
    assert.equal(c.redisWaitTimeoutMs, undefined, 'unset: the store takes 500 ms or half the command timeout');
    assert.equal(c.redisWaitAof, false);
  });

  it('auto is 1 on Sentinel and Cluster, 0 on one server; a number is taken as given', () => {
    assert.equal(replicasToWaitFor('auto', parseRedisUrl('redis-sentinel://127.0.0.1:26379/m')), 1);
    assert.equal(replicasToWaitFor('auto', parseRedisUrl('redis-cluster://127.0.0.1:7000')), 1);
    assert.equal(replicasToWaitFor('auto', parseRedisUrl('redis://127.0.0.1:6379')), 0);
    assert.equal(replicasToWaitFor(undefined, parseRedisUrl('rediss://127.0.0.1:6379')), 0);
    assert.equal(replicasToWaitFor('auto', { sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'm' }), 1);
    assert.equal(replicasToWaitFor(2, parseRedisUrl('redis://127.0.0.1:6379')), 2);
    assert.equal(replicasToWaitFor(0, parseRedisUrl('redis-cluster://127.0.0.1:7000')), 0);
  });

  it('rejects a count that is not auto or 0–100, naming the setting and the value', () => {
    for (const bad of ['-1', '1.5', 'one', '101']) {
      const message = configProblem({ TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_REDIS_WAIT_REPLICAS: bad });
      assert.match(message, /TA_REDIS_WAIT_REPLICAS \(--redis-wait-replicas\)/);
      assert.match(message, new RegExp(`"${bad.replace('.', '\\.')}" must be "auto" or an integer from 0 to 100`));
    }
  });

  it('a wait timeout must be a duration below TA_REDIS_COMMAND_TIMEOUT', () => {
    assert.match(configProblem({ TA_REDIS_URL: 'redis://h:6379', TA_REDIS_WAIT_TIMEOUT: 'soon' }), /TA_REDIS_WAIT_TIMEOUT.*"soon" is not a duration/);
    assert.match(configProblem({ TA_REDIS_URL: 'redis://h:6379', TA_REDIS_WAIT_TIMEOUT: '0' }), /TA_REDIS_WAIT_TIMEOUT.*at least 1ms/);
    assert.match(
      configProblem({ TA_REDIS_URL: 'redis://h:6379', TA_REDIS_WAIT_TIMEOUT: '1s', TA_REDIS_COMMAND_TIMEOUT: '1s' }),
      /TA_REDIS_WAIT_TIMEOUT \(--redis-wait-timeout\): must be below TA_REDIS_COMMAND_TIMEOUT/,
    );
    assert.equal(loadConfig('authority', { env: { TA_REDIS_URL: 'redis://h:6379', TA_REDIS_WAIT_TIMEOUT: '1s', TA_REDIS_COMMAND_TIMEOUT: '2s' } }).redisWaitTimeoutMs, 1000);
  });

  it('unset, the wait timeout follows a short command timeout instead of refusing it', () => {
    const c = loadConfig('authority', { env: { TA_REDIS_URL: 'redis-sentinel://h:26379/m', TA_REDIS_COMMAND_TIMEOUT: '300ms' } });
    assert.equal(c.redisWaitTimeoutMs, undefined);
    const store = new RedisTokenStore({ url: 'redis-sentinel://127.0.0.1:1/m', retentionMs: 60_000, commandTimeoutMs: 300 });
    assert.deepEqual(store.wait, { replicas: 1, timeoutMs: 150, aof: false });
    const longer = new RedisTokenStore({ url: 'redis://127.0.0.1:1', retentionMs: 60_000, commandTimeoutMs: 5000, waitReplicas: 1 });
    assert.deepEqual(longer.wait, { replicas: 1, timeoutMs: 500, aof: false });
    void store.close();
    void longer.close();
  });

  it('waiting for replicas needs Redis: the embedded store has none', () => {
    assert.match(configProblem({ TA_REDIS_WAIT_REPLICAS: '1' }), /TA_REDIS_WAIT_REPLICAS.*needs TA_REDIS_URL/);
    assert.equal(loadConfig('authority', { env: { TA_REDIS_WAIT_REPLICAS: '0' } }).redisWaitReplicas, 0);
  });

  it('TA_REDIS_WAIT_AOF is a boolean', () => {
    assert.equal(loadConfig('authority', { env: { TA_REDIS_URL: 'redis://h:6379', TA_REDIS_WAIT_AOF: 'true' } }).redisWaitAof, true);
    assert.match(configProblem({ TA_REDIS_URL: 'redis://h:6379', TA_REDIS_WAIT_AOF: 'maybe' }), /TA_REDIS_WAIT_AOF.*not a boolean/);
  });
});
