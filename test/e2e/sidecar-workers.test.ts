import assert from 'node:assert/strict';
import { get } from 'node:http';
import { credentials, Metadata } from '@grpc/grpc-js';
import { VerifyFailureReason } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { AuthorizationClient, CheckRequest, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth.js';
import { runCli, type CliProcess } from '../helpers/cli-process.js';
import { freePort } from '../helpers/local-ports.js';
import { authorityClient } from '../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';

const REVOKED = VerifyFailureReason.VERIFY_FAILURE_REASON_REVOKED;
const WORKER_IDS = ['scw-w1', 'scw-w2'];

/** One GET on a new connection (no keep-alive pool), so the cluster hands it to the next worker. */
function getOnce(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers: { connection: 'close', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    }).on('error', reject);
  });
}

interface WorkerStatus { instanceId: string; cache: { misses: number }; revocation: { appliedSeq: number } }

/**
 * Every worker's /status, asked on new connections until each worker has answered (the cluster
 * hands connections out round-robin, so two normally suffice; 40 bound a broken distribution).
 */
async function statusOfEachWorker(httpPort: number): Promise<Map<string, WorkerStatus>> {
  const seen = new Map<string, WorkerStatus>();
  for (let i = 0; i < 40 && seen.size < WORKER_IDS.length; i++) {
    const s = JSON.parse((await getOnce(`http://127.0.0.1:${httpPort}/status`)).body) as WorkerStatus;
    seen.set(s.instanceId, s);
  }
  assert.deepEqual([...seen.keys()].sort(), WORKER_IDS, 'both workers answer the HTTP port');
  return seen;
}

describe('token-authority sidecar with TA_WORKERS=2 (a real cluster)', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let p: CliProcess | undefined;

  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
  });
  after(async () => {
    p?.kill('SIGKILL');
    await ta?.close();
    await redis?.stop();
  });

  it('serves Verify, Check and /authz from both workers on one port each, revocation reaches both, /metrics sums them, a dead worker is replaced', async () => {
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    p = runCli(['sidecar'], {
      TA_WORKERS: '2', TA_GRPC_ADDR: `127.0.0.1:${grpcPort}`, TA_HTTP_ADDR: `127.0.0.1:${httpPort}`,
      TA_AUTHORITY_URL: ta.httpBase, TA_REDIS_URL: redis.url, TA_ISSUER: TEST_ISSUER, TA_AUDIENCE: 'orders',
      TA_INSTANCE_ID: 'scw', TA_LOG_LEVEL: 'info',
    });
    const primary = await p.waitForLine((l) => l.msg === 'sidecar serving' && l.workers === 2, 45_000);
    assert.equal(primary.grpcPort, grpcPort);
    assert.equal(primary.httpPort, httpPort);
    const workerLines = p.lines.filter((l) => l.msg === 'sidecar serving' && l.workers === undefined);
    assert.equal(new Set(workerLines.map((l) => l.pid)).size, 2, 'two worker processes serve');
    for (const l of workerLines) assert.deepEqual([l.grpcPort, l.httpPort], [grpcPort, httpPort], 'each worker on the same two ports');
    assert.ok(!workerLines.some((l) => l.pid === primary.pid), 'the primary serves nothing itself');

    // Every phase uses its own tokens, one per connection: a worker's cache misses count the
    // distinct tokens it verified, so a phase served by both workers raises both counts.
    const tokens = async (prefix: string) => Promise.all(Array.from({ length: 8 }, async (_, i) => (await ta.client.issue({ subject: `${prefix}${i}`, audience: ['orders'], scopes: ['read'] })).accessToken));
    let before = await statusOfEachWorker(httpPort);
    const grew = async (what: string) => {
      const now = await statusOfEachWorker(httpPort);
      for (const id of WORKER_IDS) assert.ok(now.get(id)!.cache.misses > before.get(id)!.cache.misses, `${what} reached worker ${id}`);
      before = now;
    };

    const verifyTokens = await tokens('v');
    // A local subchannel pool per client: grpc-js otherwise shares one connection between channels.
    const ownConnection = { 'grpc.use_local_subchannel_pool': 1 };
    const clients = verifyTokens.map(() => authorityClient(grpcPort, { channelOptions: ownConnection }));
    const checkClients = verifyTokens.map(() => new AuthorizationClient(`127.0.0.1:${grpcPort}`, credentials.createInsecure(), ownConnection));
    try {
      for (const [i, c] of clients.entries()) assert.equal((await c.verify({ token: verifyTokens[i]!, audience: '', requiredScopes: ['read'] })).valid, true, `Verify on connection ${i}`);
      await grew('Verify');

      const checkTokens = await tokens('c');
      const check = (c: AuthorizationClient, token: string) => new Promise<CheckResponse>((resolve, reject) =>
        c.check(CheckRequest.fromPartial({ attributes: { request: { http: { headers: { authorization: `Bearer ${token}` }, path: '/orders', method: 'GET' } } } }), new Metadata(), (e, r) => (e ? reject(e) : resolve(r))));
      for (const [i, c] of checkClients.entries()) assert.equal((await check(c, checkTokens[i]!)).status?.code, 0, `Check on connection ${i}`);
      await grew('Check');

      const authzTokens = await tokens('a');
      for (const [i, t] of authzTokens.entries()) {
        const res = await getOnce(`http://127.0.0.1:${httpPort}/authz?required_scopes=read`, { authorization: `Bearer ${t}` });
        assert.equal(res.status, 200, `/authz on connection ${i}`);
        assert.equal(res.headers['x-auth-subject'], `a${i}`);
      }
      await grew('/authz');

      // Summed over both workers: 8 Verify calls OK, 8 + 8 + 8 accepted verifications.
      const metrics = (await getOnce(`http://127.0.0.1:${httpPort}/metrics`)).body;
      assert.match(metrics, /ta_grpc_requests_total\{method="Verify",code="OK"\} 8\n/, 'Verify counts summed over both workers');
      assert.match(metrics, /ta_verify_outcomes_total\{outcome="valid"\} 24\n/, 'Verify, Check and /authz outcomes summed over both workers');

      // A revocation reaches both workers: each reports its receipt, each rejects the token.
      const { sequence } = await ta.client.revoke({ target: { $case: 'subject', subject: 'v0' } });
      const prop = await ta.client.getPropagation({ sequence, minVerifiers: 2, waitMs: 10_000 });
      assert.deepEqual(prop.verifiers.filter((v) => v.appliedSequence >= sequence).map((v) => v.instanceId).sort(), WORKER_IDS, 'both workers applied the revocation');
      for (const [i, c] of clients.entries()) {
        const r = await c.verify({ token: verifyTokens[0]!, audience: '', requiredScopes: [] });
        assert.equal(r.reason, REVOKED, `connection ${i} answers REVOKED`);
      }
      const revokedAuthz = await ta.client.revoke({ target: { $case: 'subject', subject: 'a0' } });
      await ta.client.getPropagation({ sequence: revokedAuthz.sequence, minVerifiers: 2, waitMs: 10_000 });
      for (let i = 0; i < 4; i++) assert.equal((await getOnce(`http://127.0.0.1:${httpPort}/authz`, { authorization: `Bearer ${authzTokens[0]!}` })).status, 401, `/authz on new connection ${i} rejects the revoked token`);
      for (const s of (await statusOfEachWorker(httpPort)).values()) assert.ok(s.revocation.appliedSeq >= revokedAuthz.sequence, `${s.instanceId} applied it`);
    } finally {
      for (const c of clients) c.close();
      for (const c of checkClients) c.close();
    }

    // A worker that dies is replaced (the shared supervisor), and the new one serves both ports.
    const victim = workerLines[0]!.pid as number;
    process.kill(victim, 'SIGKILL');
    await p.waitForLine((l) => l.msg === 'worker died; starting a new one' && l.signal === 'SIGKILL', 15_000);
    const replacement = await p.waitForLine((l) => l.msg === 'sidecar serving' && l.workers === undefined && !workerLines.some((w) => w.pid === l.pid), 30_000);
    assert.deepEqual([replacement.grpcPort, replacement.httpPort], [grpcPort, httpPort]);
    const ids = new Set<string>();
    for (let i = 0; i < 40 && !ids.has('scw-w3'); i++) ids.add((JSON.parse((await getOnce(`http://127.0.0.1:${httpPort}/status`)).body) as WorkerStatus).instanceId);
    assert.ok(ids.has('scw-w3'), `the replacement worker answers the HTTP port (saw ${[...ids].join(', ')})`);
    const after = authorityClient(grpcPort, { channelOptions: { 'grpc.use_local_subchannel_pool': 1 } });
    try {
      assert.equal((await after.verify({ token: verifyTokens[1]!, audience: '', requiredScopes: [] })).valid, true);
    } finally {
      after.close();
    }

    p.kill('SIGTERM');
    assert.equal(await p.exited, 0);
    p = undefined;
  });
});
