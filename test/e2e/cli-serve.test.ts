import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { authorityClient } from '../helpers/grpc-client.js';
import { runCli } from '../helpers/cli-process.js';
import { eventually } from '../helpers/eventually.js';

describe('token-authority serve (a real process)', function () {
  this.timeout(30_000);
  let keyDir: string;
  beforeEach(async () => {
    keyDir = await mkdtemp(join(tmpdir(), 'ta-cli-'));
  });
  afterEach(() => rm(keyDir, { recursive: true, force: true }));

  it('names every bad setting in one error and exits 2', async () => {
    const p = runCli(['serve'], { TA_ACCESS_TTL: 'soon', TA_KEY_ALG: 'HS256', TA_GRPC_ADDR: 'nowhere', TA_KEY_DIR: keyDir });
    assert.equal(await p.exited, 2);
    const err = p.stderr();
    assert.match(err, /invalid configuration \(3 problems\)/);
    assert.match(err, /TA_ACCESS_TTL \(--access-ttl\): "soon" is not a duration/);
    assert.match(err, /TA_KEY_ALG \(--key-alg\):.*HS256/);
    assert.match(err, /TA_GRPC_ADDR \(--grpc-addr\): "nowhere" is not host:port/);
  });

  it('refuses a non-loopback address without TLS unless insecure is explicit', async () => {
    const p = runCli(['serve'], { TA_GRPC_ADDR: '0.0.0.0:0', TA_KEY_DIR: keyDir });
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /0\.0\.0\.0:0 is not a loopback address and TLS is off/);
  });

  it('flags override env', async () => {
    const p = runCli(['serve', '--access-ttl', 'later'], { TA_ACCESS_TTL: '5m', TA_KEY_DIR: keyDir });
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /"later" is not a duration/);
  });

  it('serves, then on SIGTERM finishes the call in flight and exits 0', async () => {
    const p = runCli(['serve'], { TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_KEY_DIR: keyDir, TA_SHUTDOWN_GRACE: '5s' });
    const serving = await p.waitForLine((l) => l.msg === 'token authority serving');
    const inFlight = async () => Number(/^ta_grpc_requests_in_flight (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${serving.httpPort as number}/metrics`)).text())?.[1] ?? 0);
    const client = authorityClient(serving.grpcPort as number);
    try {
      const issued = await client.issue({ subject: 'alice', audience: ['orders'] });
      const { sequence } = await client.revoke({ target: { $case: 'token', token: issued.accessToken } });
      // A call that stays in flight for up to 1.5 s: wait for a verifier that will never report.
      const inflight = client.getPropagation({ sequence, minVerifiers: 1, waitMs: 1500 });
      await eventually(async () => (await inFlight()) >= 1, 5000, 'the call is in flight at the server');
      p.kill('SIGTERM');
      const answer = await inflight;
      assert.equal(answer.appliedCount, 0, 'the in-flight call completed normally');
      assert.equal(await p.exited, 0);
      assert.ok(p.lines.some((l) => l.msg === 'shutdown complete'));
      // Tokens never appear in logs.
      assert.ok(!p.stdout().includes(issued.accessToken) && !p.stdout().includes(issued.refreshToken), 'a token leaked into the logs');
      assert.ok(p.lines.some((l) => l.msg === 'rpc' && l.method === 'Issue' && l.sub === 'alice' && typeof l.jti === 'string'), 'access line with sub and jti');
    } finally {
      client.close();
      p.kill('SIGKILL');
    }
  });
});
