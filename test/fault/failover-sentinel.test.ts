import { startSentinelSetup, type SentinelSetup } from '../helpers/redis-sentinel.js';
import { failoverUnderChurn } from './failover-helpers.js';
import { seededSuite } from '../helpers/seeded-random.js';

describe('fault: Redis Sentinel failover (a primary, a replica, three sentinels) under Issue/Revoke churn', function () {
  seededSuite('fault/failover-sentinel'); // no random choices here yet: the seed is printed all the same
  this.timeout(90_000);
  let setup: SentinelSetup | undefined;

  afterEach(async () => {
    await setup?.stop();
    setup = undefined;
  });

  it('SENTINEL FAILOVER (planned): every acknowledged revocation is enforced everywhere afterwards', async () => {
    setup = await startSentinelSetup('mymaster', { sentinels: 3 });
    await failoverUnderChurn('Sentinel planned failover', setup.url, () => setup!.failover());
  });

  it('primary SIGKILL: every acknowledged revocation is enforced everywhere afterwards', async () => {
    setup = await startSentinelSetup('mymaster', { sentinels: 3 });
    await failoverUnderChurn('Sentinel primary SIGKILL', setup.url, async () => {
      await setup!.killMaster({ catchUp: false });
      // The machine comes back (empty: no AOF) and Sentinel makes it a replica of the new primary:
      // with one replica, nothing can be confirmed on a replica until then.
      await setup!.master.restart();
    });
  });
});
