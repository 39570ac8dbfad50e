import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import type { RevocationEvent } from '../../../src/shared/revocation-event.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { FeedCollector } from '../../contract/feed-collector.js';
import { eventually } from '../../helpers/eventually.js';
import { startSentinelSetup, type SentinelSetup } from '../../helpers/redis-sentinel.js';

const HOUR = 3_600_000;

describe('Redis Sentinel (a master, a replica and a sentinel on loopback)', function () {
  this.timeout(60_000);
  let setup: SentinelSetup;
  let store: RedisTokenStore | undefined;

  before(async () => {
    setup = await startSentinelSetup();
  });
  after(async () => {
    await store?.close();
    await setup?.stop();
  });

  it('writes to the master Sentinel names and follows it to the promoted replica when the master dies: the log continues, the feed resumes', async () => {
    // No replica wait: once the master is killed the promoted replica has no replica of its own,
    // and this test is about following the master (test/fault/failover-sentinel.test.ts waits).
    store = new RedisTokenStore({ url: setup.url, retentionMs: HOUR, commandTimeoutMs: 1000, waitReplicas: 0 });
    const feed = new FeedCollector();
    await store.subscribe(feed);
    const first = await store.revoke({ kind: 'jti', id: 'before-failover', until: Date.now() + HOUR });
    await feed.until('the first revocation on the feed', () => feed.revocations.some((e) => e.seq === first.seq));
    assert.equal(await setup.masterPort(), setup.master.port);

    await setup.killMaster();

    // Writes answer UNAVAILABLE (never hang) until the client has followed Sentinel to the new master.
    let second: RevocationEvent | undefined;
    await eventually(async () => {
      try {
        second = await store!.revoke({ kind: 'jti', id: 'after-failover', until: Date.now() + HOUR });
        return true;
      } catch (err) {
        if (isTokenAuthorityError(err) && err.code === ErrorCodes.STORE_UNAVAILABLE) return false;
        throw err;
      }
    }, 20_000, 'a write succeeds on the promoted replica');
    assert.equal(second!.seq, first.seq + 1, 'the sequence continues: the promoted replica had the log (nothing acknowledged was lost)');
    const promoted = new Redis({ port: setup.replica.port });
    try {
      assert.match((await promoted.info('replication')) as string, /role:master/);
      assert.equal(await promoted.get('ta:v1:{ta}:seq'), String(second!.seq), 'the write landed on the new master');
    } finally {
      promoted.disconnect();
    }
    // The feed connection follows too: it reports the loss, then ready again once subscribed on the
    // new master (a verifier re-reads the log at that point, which covers anything published while
    // it was away, such as the write above), and live messages flow again.
    await feed.until('the feed resubscribed after the failover', () => feed.disconnectCount >= 1 && feed.readyCount >= 2, 10_000);
    const third = await store.revoke({ kind: 'jti', id: 'live-again', until: Date.now() + HOUR });
    await feed.until('a revocation on the feed after the failover', () => feed.revocations.some((e) => e.seq === third.seq), 10_000);
    const log = await store.readLog(0, 100);
    assert.deepEqual(log.events.map((e) => e.id), ['before-failover', 'after-failover', 'live-again']);
  });
});
