import { Redis } from 'ioredis';
import { eventually } from '../helpers/eventually.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { failoverUnderChurn } from './failover-helpers.js';
import { seededSuite } from '../helpers/seeded-random.js';

/** A key in the `{ta}` slot: every token-authority key lives there. */
const TA_KEY = 'ta:v1:{ta}:seq';

describe('fault: Redis Cluster failover of the {ta} shard (3 masters, a replica each) under Issue/Revoke churn', function () {
  seededSuite('fault/failover-cluster'); // no random choices here yet: the seed is printed all the same
  this.timeout(90_000);
  let cluster: RedisCluster | undefined;

  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  /** The master owning the {ta} slot and its replica. */
  async function shard(c: RedisCluster): Promise<{ master: number; replica: number }> {
    const master = await c.ownerOf(TA_KEY);
    const [replica] = await c.replicasOf(master);
    if (replica === undefined) throw new Error(`the {ta} master ${master} has no replica`);
    return { master, replica };
  }

  /** Until a node other than `dead` names `port` as the owner of the {ta} slot. */
  async function ownedBy(c: RedisCluster, port: number, askPort: number): Promise<void> {
    const probe = new Redis({ port: askPort, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await probe.connect();
      await eventually(async () => {
        const slot = Number(await probe.call('CLUSTER', 'KEYSLOT', TA_KEY));
        const ranges = (await probe.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
        return ranges.some(([from, to, m]) => slot >= from && slot <= to && Number(m[1]) === port);
      }, 20_000, `node ${port} owns the {ta} slot`);
    } finally {
      probe.disconnect();
    }
  }

  for (const mode of ['TAKEOVER', 'FORCE'] as const) {
    it(`a replica's CLUSTER FAILOVER ${mode} while its master is alive: every acknowledged revocation is enforced everywhere afterwards`, async () => {
      cluster = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1000 });
      const { replica } = await shard(cluster);
      await failoverUnderChurn(`Cluster FAILOVER ${mode}`, cluster.url, async () => {
        const r = new Redis({ port: replica, lazyConnect: true });
        try {
          await r.connect();
          await r.call('CLUSTER', 'FAILOVER', mode);
        } finally {
          r.disconnect();
        }
        await ownedBy(cluster!, replica, replica);
      });
    });
  }

  it('a master SIGKILL: every acknowledged revocation is enforced everywhere afterwards', async () => {
    cluster = await startRedisCluster(3, { replicas: 1, nodeTimeoutMs: 1000 });
    const { master, replica } = await shard(cluster);
    await failoverUnderChurn('Cluster master SIGKILL', cluster.url, async () => {
      await cluster!.server(master).kill();
      await ownedBy(cluster!, replica, replica);
      // The machine comes back (empty, no AOF) and rejoins as the new master's replica.
      await cluster!.server(master).restart();
    });
  });
});
