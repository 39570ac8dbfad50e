/**
 * Propagation receipts under Redis ACLs (real redis-server): each verifier instance writes its own
 * key, so the README's example ACL confines a verifier's Redis user to its own receipt. A verifier
 * user cannot write, delete or hide another instance's receipt, and still does everything a
 * verifier does (read the log, subscribe to the feed, report).
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { FeedCollector } from '../../contract/feed-collector.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const HOUR = 3_600_000;

/**
 * The README's example ACL for verifier instance `id` (key prefix ta:v1:), as ACL SETUSER
 * arguments. Keep the two in sync.
 */
export function verifierAcl(id: string, password: string): string[] {
  return [
    'on', `>${password}`, 'resetkeys', 'resetchannels', '-@all',
    // Root: read commands only, on the log and the sequence (RW patterns: EVALSHA declares its keys
    // as read-write, but no write command is granted here), and the feed channel.
    '+ping', '+info', '+client|setname', '+time', '+evalsha', '+eval', '+xrange', '+get',
    '+subscribe', '+ssubscribe', '+unsubscribe', '+sunsubscribe',
    '~ta:v1:{ta}:log', '~ta:v1:{ta}:seq', '&ta:v1:{ta}:feed',
    // Its own receipt key, and only that one, may be written.
    `(+evalsha +eval +set ~ta:v1:{ta}:receipt:${id})`,
    // The index of instance ids: add, nothing else.
    '(+sadd ~ta:v1:{ta}:receipt-ids)',
  ];
}

describe('propagation receipts under Redis ACLs (real redis-server)', function () {
  let redis: RedisServer;
  let admin: Redis;
  let authority: RedisTokenStore;
  let web1: RedisTokenStore;
  let web2: RedisTokenStore;
  let raw1: Redis;
  const url = (user: string) => `redis://${user}:pw-${user}@127.0.0.1:${redis.port}`;

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    for (const id of ['web-1', 'web-2']) await admin.call('ACL', 'SETUSER', `verifier-${id}`, ...verifierAcl(id, `pw-verifier-${id}`));
    authority = new RedisTokenStore({ url: redis.url, retentionMs: HOUR });
    web1 = new RedisTokenStore({ url: url('verifier-web-1'), retentionMs: 1 });
    web2 = new RedisTokenStore({ url: url('verifier-web-2'), retentionMs: 1 });
    raw1 = new Redis(url('verifier-web-1'));
  });
  after(async () => {
    raw1?.disconnect();
    for (const s of [web1, web2, authority]) await s?.close();
    admin?.disconnect();
    await redis?.stop();
  });

  it('a verifier reports its own receipt, reads the log and receives the feed under its ACL', async () => {
    const feed = new FeedCollector();
    const sub = await web1.subscribe(feed);
    await feed.until('the subscription is ready', () => feed.readyCount > 0);
    try {
      await authority.revoke({ kind: 'jti', id: 'j1', until: Date.now() + HOUR });
      const page = await web1.readLog(0, 10);
      assert.equal(page.headSeq, 1);
      await feed.until('revocation 1 on the feed', () => feed.revocations.some((e) => e.seq === 1));
      await web1.reportApplied('web-1', 1, 5000);
      await web2.reportApplied('web-2', 1, 5000);
      assert.deepEqual((await authority.listApplied()).map((r) => `${r.instanceId}=${r.seq}`).sort(), ['web-1=1', 'web-2=1']);
    } finally {
      await sub.close();
    }
  });

  it('a verifier cannot write another instance\'s receipt, through the store or raw commands', async () => {
    await assert.rejects(web1.reportApplied('web-2', 999, 5000), /NOPERM|No permissions/);
    const receipt2 = 'ta:v1:{ta}:receipt:web-2';
    // NOPERM for a command; inside a script, Redis words it "can't run this command" / "can't access … keys".
    const noperm = /NOPERM|can't run this command|can't access at least one of the keys|no permissions/;
    await assert.rejects(raw1.set(receipt2, '999:1'), noperm);
    await assert.rejects(raw1.del(receipt2), noperm);
    await assert.rejects(raw1.pexpire(receipt2, 1), noperm);
    // …nor hide it from the index, nor write the legacy hash.
    await assert.rejects(raw1.srem('ta:v1:{ta}:receipt-ids', 'web-2'), noperm);
    await assert.rejects(raw1.del('ta:v1:{ta}:receipt-ids'), noperm);
    await assert.rejects(raw1.hset('ta:v1:{ta}:receipts', 'web-2', '999:1:99999999999999'), noperm);
    // …nor run a script that does it for it (commands inside scripts are checked too).
    await assert.rejects(raw1.eval("return redis.call('SET', KEYS[1], '999:1')", 1, receipt2), noperm);
    // The ACL grants no write anywhere else: not the log, not the sequence, not through a script.
    await assert.rejects(raw1.set('ta:v1:{ta}:seq', '0'), noperm);
    await assert.rejects(raw1.xadd('ta:v1:{ta}:log', '*', 'e', '{}'), noperm);
    await assert.rejects(raw1.eval("return redis.call('XADD', KEYS[1], '*', 'e', '{}')", 1, 'ta:v1:{ta}:log'), noperm);
    await assert.rejects(raw1.eval("return redis.call('SET', KEYS[1], '0')", 1, 'ta:v1:{ta}:seq'), noperm);
    const r2 = (await authority.listApplied()).find((r) => r.instanceId === 'web-2');
    assert.equal(r2?.seq, 1, 'web-2\'s receipt is untouched');
  });

  it('an id a verifier adds to the index without a receipt of its own is ignored and pruned', async () => {
    await raw1.sadd('ta:v1:{ta}:receipt-ids', 'ghost');
    assert.deepEqual((await authority.listApplied()).map((r) => r.instanceId).sort(), ['web-1', 'web-2']);
    assert.equal(await admin.sismember('ta:v1:{ta}:receipt-ids', 'ghost'), 0);
  });

  it('a receipt kept for a retention is written under the ACL, goes stale after its ttl and is gone after the retention', async () => {
    await web2.reportApplied('web-2', 3, 50, 1500);
    await eventually(async () => (await authority.listReceipts()).some((r) => r.instanceId === 'web-2' && !r.live), 5000, 'web-2 is stale');
    assert.ok(!(await authority.listApplied()).some((r) => r.instanceId === 'web-2'), 'a stale receipt is not live');
    assert.ok((await admin.pttl('ta:v1:{ta}:receipt:web-2')) > 0, 'its key is still there');
    await eventually(async () => !(await authority.listReceipts()).some((r) => r.instanceId === 'web-2'), 5000, 'web-2 is gone after the retention');
    await web2.reportApplied('web-2', 3, 60_000);
  });

  it('a receipt in the former two-field layout (an older sidecar) is live while its key exists', async () => {
    await admin.set('ta:v1:{ta}:receipt:old-1', '7:1700000000000', 'PX', 60_000);
    await admin.sadd('ta:v1:{ta}:receipt-ids', 'old-1');
    assert.deepEqual((await authority.listApplied()).find((r) => r.instanceId === 'old-1'), { instanceId: 'old-1', seq: 7, reportedAt: 1700000000000 });
    assert.equal((await authority.listReceipts()).find((r) => r.instanceId === 'old-1')?.live, true);
    await admin.del('ta:v1:{ta}:receipt:old-1');
  });

  it('a receipt expires with its key: the instance is no longer live', async () => {
    await web1.reportApplied('web-1', 2, 50);
    // Redis expires the key itself (PX 50).
    await eventually(async () => (await admin.exists('ta:v1:{ta}:receipt:web-1')) === 0, 5000, 'the receipt key expired');
    assert.deepEqual((await authority.listApplied()).map((r) => r.instanceId), ['web-2']);
  });
});
