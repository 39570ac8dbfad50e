import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar/sidecar-server.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { silentLogger } from '../../src/shared/logger.js';
import { VerifyFailureReason } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { authorityClient } from '../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { eventually } from '../helpers/eventually.js';

const R = VerifyFailureReason;

for (const policy of ['fail-closed', 'fail-open'] as const) {
  describe(`sidecar with Redis down beyond the staleness bound (${policy})`, function () {
    this.timeout(60_000);
    let redis: RedisServer;
    let ta: TestAuthority;
    let sidecar: RunningSidecar;

    before(async () => {
      redis = await startRedis();
      ta = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_HEARTBEAT_INTERVAL: '100ms' });
      const config = loadConfig('sidecar', {
        env: {
          TA_GRPC_ADDR: '127.0.0.1:0',
          TA_HTTP_ADDR: '127.0.0.1:0',
          TA_ISSUER: TEST_ISSUER,
          TA_AUTHORITY_URL: ta.httpBase,
          TA_REDIS_URL: redis.url,
          TA_AUDIENCE: '*',
          TA_STALENESS_BOUND: '600ms',
          TA_STALENESS_POLICY: policy,
          TA_REDIS_COMMAND_TIMEOUT: '200ms',
        },
      });
      sidecar = await startSidecar(config, silentLogger, { metrics: createMetrics({ defaultMetrics: false }) });
    });
    after(async () => {
      await sidecar?.stop();
      await ta?.close();
      await redis?.stop();
    });

    it(`answers ${policy === 'fail-closed' ? 'STALE' : 'valid (counted)'} while stale, and recovers when Redis returns`, async () => {
      const client = authorityClient(sidecar.grpcPort);
      try {
        const issued = await ta.client.issue({ subject: 'nia', audience: ['orders'] });
        assert.equal((await client.verify({ token: issued.accessToken })).valid, true);
        await redis.kill();
        await eventually(() => sidecar.verifier.status().revocation.stale, 10_000, 'state goes stale');
        const during = await client.verify({ token: issued.accessToken });
        if (policy === 'fail-closed') {
          assert.equal(during.valid, false);
          assert.equal(during.reason, R.VERIFY_FAILURE_REASON_STALE);
          assert.match(during.detail, /revocation state is \d+ms old/);
        } else {
          assert.equal(during.valid, true);
          assert.ok(sidecar.verifier.status().acceptedWhileStale >= 1, 'acceptance while stale is counted');
        }
        const health = await fetch(`http://127.0.0.1:${sidecar.httpPort}/healthz`);
        assert.equal(health.status, 503, 'health reports the stale state');
        await redis.restart();
        await eventually(() => !sidecar.verifier.status().revocation.stale, 15_000, 'state fresh again');
        assert.equal((await client.verify({ token: issued.accessToken })).valid, true);
        assert.equal((await fetch(`http://127.0.0.1:${sidecar.httpPort}/healthz`)).status, 200);
      } finally {
        client.close();
      }
    });
  });
}
