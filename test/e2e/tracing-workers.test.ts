/**
 * Tracing with TA_WORKERS=2, a real `token-authority serve` cluster: every worker exports its own
 * spans (its own service.instance.id) and the primary those of its HTTP requests, all flushed on
 * SIGTERM, to an OTLP/HTTP receiver this test starts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { runCli } from '../helpers/cli-process.js';
import { freePort } from '../helpers/local-ports.js';
import { authorityClient } from '../helpers/grpc-client.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

describe('tracing with TA_WORKERS=2 (a real cluster, a real OTLP receiver)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let otlp: OtlpReceiver;
  let keyDir: string;
  before(async () => {
    redis = await startRedis();
    otlp = await startOtlpReceiver();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-workers-'));
  });
  after(async () => {
    await otlp?.stop();
    await redis?.stop();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('each worker exports its own spans and the primary its HTTP spans, all flushed at SIGTERM', async () => {
    const port = await freePort();
    const traceId = randomBytes(16).toString('hex');
    const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    const p = runCli(['serve'], {
      TA_WORKERS: '2', TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir, TA_GRPC_ADDR: `127.0.0.1:${port}`, TA_HTTP_ADDR: '127.0.0.1:0', TA_ISSUER: 'https://issuer.test',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    try {
      const serving = await p.waitForLine((l) => l.msg === 'token authority serving' && l.workers === 2, 30_000);
      const md = new Metadata();
      md.set('traceparent', traceparent);
      // Separate connections (a local subchannel pool each: grpc-js shares one connection between
      // clients of the same target otherwise), which the cluster hands out round-robin.
      const clients = Array.from({ length: 8 }, () => authorityClient(port, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } }));
      try {
        await Promise.all(clients.map((c, i) => c.issue({ subject: `w${i}`, audience: ['orders'] }, md)));
      } finally {
        for (const c of clients) c.close();
      }
      assert.equal((await fetch(`http://127.0.0.1:${serving.httpPort as number}/.well-known/jwks.json`, { headers: { traceparent } })).status, 200);
      assert.equal(otlp.exports.length, 0, 'nothing exported before the flush at shutdown');
      p.kill('SIGTERM');
      assert.equal(await p.exited, 0);
    } finally {
      p.kill('SIGKILL');
    }
    const spans = otlp.spans().filter((s) => s.traceId === traceId);
    const issues = spans.filter((s) => s.name === 'tokenauthority.v1.TokenAuthorityService/Issue');
    assert.equal(issues.length, 8, 'every Issue call exported once');
    const workers = new Set(issues.map((s) => s.instance));
    assert.equal(workers.size, 2, `two workers, two instances: ${[...workers].join(', ')}`);
    for (const w of workers) assert.match(w, /^authority-[0-9a-f]{8}$/);
    // Each Issue's Redis call was exported by the worker that handled it.
    for (const issue of issues) {
      const children = spans.filter((s) => s.parentSpanId === issue.spanId);
      assert.deepEqual(children.map((c) => [c.name, c.instance]), [['redis createSession', issue.instance]]);
    }
    const http = spans.filter((s) => s.name === 'GET /.well-known/jwks.json');
    assert.equal(http.length, 1);
    assert.match(http[0]!.instance, /^authority-primary-\d+$/);
  });
});
