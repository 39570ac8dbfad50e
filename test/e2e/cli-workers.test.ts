import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli-process.js';
import { freePort } from '../helpers/local-ports.js';
import { authorityClient } from '../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

describe('token-authority serve with TA_WORKERS=2 (a real cluster)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let keyDir: string;
  before(async () => {
    redis = await startRedis();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-workers-'));
  });
  after(async () => {
    await redis?.stop();
    await rm(keyDir, { recursive: true, force: true });
  });

  it('refuses more than one worker without Redis', async () => {
    const p = runCli(['serve'], { TA_WORKERS: '2', TA_KEY_DIR: keyDir });
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /TA_WORKERS \(--workers\): more than one worker needs TA_REDIS_URL/);
  });

  it('serves gRPC from two workers on one port, aggregates metrics in the primary, and shuts down cleanly', async () => {
    // Port 0 cannot be shared by forked workers, so pick a free one first.
    const port = await freePort();
    const p = runCli(['serve'], { TA_WORKERS: '2', TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir, TA_GRPC_ADDR: `127.0.0.1:${port}`, TA_HTTP_ADDR: '127.0.0.1:0', TA_ISSUER: 'https://issuer.test' });
    try {
      const serving = await p.waitForLine((l) => l.msg === 'token authority serving' && l.workers === 2, 30_000);
      const workerPids = new Set(p.lines.filter((l) => l.msg === 'token authority serving' && l.grpcPort === port).map((l) => l.pid));
      assert.equal(workerPids.size, 2, 'two worker processes serve the port');
      // Separate clients open separate connections, which the cluster spreads over the workers.
      const clients = Array.from({ length: 8 }, () => authorityClient(port));
      try {
        const issued = await Promise.all(clients.map((c, i) => c.issue({ subject: `w${i}`, audience: ['orders'] })));
        for (const [i, c] of clients.entries()) assert.equal((await c.verify({ token: issued[(i + 1) % issued.length]!.accessToken })).valid, true, 'any worker verifies any worker\'s token');
        const { sequence } = await clients[0]!.revoke({ target: { $case: 'token', token: issued[1]!.accessToken } });
        assert.ok(sequence > 0);
        const httpPort = serving.httpPort as number;
        const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
        assert.match(metrics, /ta_grpc_requests_total\{method="Issue",code="OK"\} 8/, 'Issue counts summed over both workers');
        const jwks = (await (await fetch(`http://127.0.0.1:${httpPort}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
        assert.ok(jwks.keys.some((k) => k.kid === issued[0]!.keyId), 'the primary publishes the workers\' signing key');
        // The primary answers the fleet view too (token-authority status), from the shared Redis.
        const fleet = (await (await fetch(`http://127.0.0.1:${httpPort}/fleet`)).json()) as { headSequence: number; keys: Array<{ kid: string }>; verifiers: unknown[] };
        assert.equal(fleet.headSequence, sequence);
        assert.ok(fleet.keys.some((k) => k.kid === issued[0]!.keyId), 'the fleet view lists the signing key');
        assert.deepEqual(fleet.verifiers, []);
      } finally {
        for (const c of clients) c.close();
      }
      p.kill('SIGTERM');
      assert.equal(await p.exited, 0);
    } finally {
      p.kill('SIGKILL');
    }
  });
});
