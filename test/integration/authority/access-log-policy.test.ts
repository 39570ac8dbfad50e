/**
 * The default access-logging policy, over real gRPC: every Issue, Refresh and Revoke and every
 * denial gets its access line; accepted Verify calls are counted but only 1 in
 * TA_ACCESS_LOG_SAMPLE (default 100) is written, marked `sampled: N`; 0 writes none, 1 all.
 */
import assert from 'node:assert/strict';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { recordingLogger, type RecordingLogger } from '../../helpers/recording-logger.js';
import { DEFAULT_ACCESS_LOG_SAMPLE, sampler } from '../../../src/grpc/server.js';
import { loadConfig } from '../../../src/config/config.js';
import { startSidecar } from '../../../src/sidecar/sidecar-server.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { authorityClient } from '../../helpers/grpc-client.js';
import { startRedis } from '../../helpers/redis-server.js';

const AUD = 'orders';

describe('access-logging policy (TA_ACCESS_LOG_SAMPLE)', () => {
  const started: TestAuthority[] = [];
  after(async () => {
    for (const ta of started) await ta.close();
  });
  const authority = async (env: Record<string, string> = {}): Promise<{ ta: TestAuthority; logger: RecordingLogger }> => {
    const logger = recordingLogger();
    const ta = await startTestAuthority({ TA_LOG_LEVEL: 'info', ...env }, {}, logger);
    started.push(ta);
    return { ta, logger };
  };
  const rpcLines = (logger: RecordingLogger, method: string) => logger.lines.filter((l) => l.msg === 'rpc' && l.fields.method === method);
  const verifyMany = async (ta: TestAuthority, token: string, n: number) => {
    for (let i = 0; i < n; i++) assert.equal((await ta.client.verify({ token, audience: AUD })).valid, true);
  };

  it('by default logs every Issue, Refresh and Revoke and every denied Verify, but no accepted Verify below the sample rate', async () => {
    const { ta, logger } = await authority();
    assert.equal(ta.config.accessLogSample, DEFAULT_ACCESS_LOG_SAMPLE);
    const issued = await ta.client.issue({ subject: 'alice', audience: [AUD], scopes: ['orders:read'] });
    await verifyMany(ta, issued.accessToken, DEFAULT_ACCESS_LOG_SAMPLE - 1);
    const denied = await ta.client.verify({ token: issued.accessToken, audience: 'someone-else' });
    assert.equal(denied.valid, false);
    const refreshed = await ta.client.refresh({ refreshToken: issued.refreshToken });
    await ta.client.revoke({ target: { $case: 'tokenId', tokenId: 'policy-test-jti' }, reason: 'test' });

    assert.equal(rpcLines(logger, 'Issue').length, 1, 'Issue logged');
    assert.equal(rpcLines(logger, 'Issue')[0]!.fields.sub, 'alice');
    assert.equal(rpcLines(logger, 'Refresh').length, 1, 'Refresh logged');
    assert.equal(rpcLines(logger, 'Revoke').length, 1, 'Revoke logged');
    const verifies = rpcLines(logger, 'Verify');
    assert.equal(verifies.length, 1, `only the denial is logged, got ${JSON.stringify(verifies.map((l) => l.fields))}`);
    assert.equal(verifies[0]!.fields.reason, 'WRONG_AUDIENCE');
    assert.equal(verifies[0]!.fields.sampled, undefined, 'a denial is never a sample');
    // The accepted calls are still counted.
    const metrics = await (await fetch(`${ta.httpBase}/metrics`)).text();
    assert.match(metrics, new RegExp(`ta_grpc_requests_total\\{method="Verify",code="OK"\\} ${DEFAULT_ACCESS_LOG_SAMPLE}\\b`));
    // The 100th accepted Verify is the first sample.
    await verifyMany(ta, refreshed.accessToken, 1);
    const sampled = rpcLines(logger, 'Verify').filter((l) => l.fields.sampled !== undefined);
    assert.equal(sampled.length, 1);
    assert.equal(sampled[0]!.fields.sampled, DEFAULT_ACCESS_LOG_SAMPLE);
    assert.equal(sampled[0]!.fields.code, 'OK');
  });

  it('TA_ACCESS_LOG_SAMPLE=5 writes one in five accepted Verify calls; 0 none; 1 every one', async () => {
    for (const [n, expected] of [[5, 4], [0, 0], [1, 20]] as const) {
      const { ta, logger } = await authority({ TA_ACCESS_LOG_SAMPLE: String(n) });
      const issued = await ta.client.issue({ subject: 'bob', audience: [AUD], scopes: [] });
      await verifyMany(ta, issued.accessToken, 20);
      const lines = rpcLines(logger, 'Verify');
      assert.equal(lines.length, expected, `TA_ACCESS_LOG_SAMPLE=${n}`);
      if (n > 1) for (const l of lines) assert.equal(l.fields.sampled, n);
      // Denials are logged whatever the sample rate.
      await ta.client.verify({ token: 'not-a-token', audience: AUD });
      assert.equal(rpcLines(logger, 'Verify').length, expected + 1, `a denial is logged with TA_ACCESS_LOG_SAMPLE=${n}`);
      assert.equal(rpcLines(logger, 'Issue').length, 1);
    }
  });

  it('at the sidecar: accepted Verify and forward-auth calls sampled with TA_ACCESS_LOG_SAMPLE, denials always logged', async function () {
    this.timeout(30_000);
    const redis = await startRedis();
    const { ta } = await authority({ TA_REDIS_URL: redis.url });
    const logger = recordingLogger();
    const config = loadConfig('sidecar', {
      env: { TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_ISSUER: TEST_ISSUER, TA_AUTHORITY_URL: ta.httpBase, TA_REDIS_URL: redis.url, TA_AUDIENCE: AUD, TA_ACCESS_LOG_SAMPLE: '3' },
    });
    const sidecar = await startSidecar(config, logger, { metrics: createMetrics({ defaultMetrics: false }) });
    const client = authorityClient(sidecar.grpcPort);
    try {
      const { accessToken } = await ta.client.issue({ subject: 'carol', audience: [AUD], scopes: ['read'] });
      for (let i = 0; i < 6; i++) assert.equal((await client.verify({ token: accessToken, audience: AUD })).valid, true);
      const authz = (authorization?: string) => fetch(`http://127.0.0.1:${sidecar.httpPort}/authz?required_scopes=read`, { headers: authorization ? { authorization } : {} });
      for (let i = 0; i < 6; i++) assert.equal((await authz(`Bearer ${accessToken}`)).status, 200);
      assert.equal((await authz()).status, 401);
      assert.equal((await client.verify({ token: accessToken, audience: 'elsewhere' })).valid, false);

      const verifies = rpcLines(logger, 'Verify');
      assert.deepEqual(verifies.map((l) => l.fields.sampled ?? l.fields.reason), [3, 3, 'WRONG_AUDIENCE']);
      const allowed = logger.lines.filter((l) => l.msg === 'forward-auth allowed');
      assert.equal(allowed.length, 2);
      assert.equal(allowed[0]!.fields.sampled, 3);
      assert.equal(allowed[0]!.fields.sub, 'carol');
      assert.equal(logger.lines.filter((l) => l.msg === 'forward-auth denied').length, 1);
      assert.ok(!JSON.stringify(logger.lines).includes(accessToken), 'no token in any line');
    } finally {
      client.close();
      await sidecar.stop();
      await ta.close();
      await redis.stop();
    }
  });

  it('sampler(n): true on every nth call, never for 0, always for 1', () => {
    const take = (n: number, calls: number) => Array.from({ length: calls }, sampler(n)).map((x, i) => (x ? i + 1 : 0)).filter(Boolean);
    assert.deepEqual(take(3, 10), [3, 6, 9]);
    assert.deepEqual(take(0, 10), []);
    assert.deepEqual(take(1, 3), [1, 2, 3]);
  });
});
