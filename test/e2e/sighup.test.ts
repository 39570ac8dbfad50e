import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAuthorityProcess, type AuthorityProcess } from '../helpers/authority-process.js';
import { TEST_ISSUER } from '../helpers/authority.js';
import { runCli } from '../helpers/cli-process.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startSidecarProcess, type SidecarProcess } from '../helpers/sidecar.js';

/**
 * SIGHUP's default action ends a process. A hangup (a closed terminal, a "reload everything" sent
 * by a supervisor) must never take the authority or a sidecar down: they reload the client policy
 * when there is one, and otherwise log and ignore it. Real processes, real signals.
 */
describe('SIGHUP in development mode (real processes)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let keyDir: string;
  let authority: AuthorityProcess | undefined;
  let sidecar: SidecarProcess | undefined;

  before(async () => {
    redis = await startRedis();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-sighup-'));
    authority = await startAuthorityProcess('sighup-authority', { TA_KEY_DIR: keyDir, TA_REDIS_URL: redis.url, TA_ISSUER: TEST_ISSUER, TA_HEARTBEAT_INTERVAL: '200ms' });
    sidecar = await startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: redis.url, instanceId: 'sighup-sidecar' });
  });
  after(async () => {
    await sidecar?.stop();
    await authority?.stop();
    await redis?.stop();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('the authority without a client policy logs and ignores SIGHUP, and keeps serving', async () => {
    const a = authority!;
    a.proc.kill('SIGHUP');
    await a.proc.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGHUP: no client policy to reload'));
    assert.equal(a.proc.child.exitCode, null, 'still running');
    assert.equal(a.proc.child.signalCode, null, 'not ended by the signal');
    const issued = await a.client.issue({ subject: 'hup', audience: ['orders'] });
    assert.equal((await a.client.verify({ token: issued.accessToken })).valid, true);
  });

  it('the sidecar logs and ignores SIGHUP, and keeps serving', async () => {
    const s = sidecar!;
    s.proc.kill('SIGHUP');
    await s.proc.waitForLine((l) => l.msg === 'SIGHUP: the sidecar has nothing to reload; ignored');
    assert.equal(s.proc.child.exitCode, null, 'still running');
    assert.equal(s.proc.child.signalCode, null, 'not ended by the signal');
    const issued = await authority!.client.issue({ subject: 'hup2', audience: ['orders'] });
    assert.equal((await s.client.verify({ token: issued.accessToken, audience: 'orders' })).valid, true);
  });

  it('the primary in worker mode (TA_WORKERS=2) without a client policy logs and ignores SIGHUP', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ta-sighup-workers-'));
    const p = await startAuthorityProcess('sighup-workers', { TA_KEY_DIR: dir, TA_REDIS_URL: redis.url, TA_ISSUER: TEST_ISSUER, TA_WORKERS: '2' });
    try {
      // The helper returns on the first worker's line; signal the primary once it serves too.
      const primary = await p.proc.waitForLine((l) => l.msg === 'token authority serving' && l.workers === 2);
      p.proc.kill('SIGHUP');
      await p.proc.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('SIGHUP: no client policy to reload') && l.worker === undefined);
      assert.equal(p.proc.child.exitCode, null, 'the primary is still running');
      const issued = await p.client.issue({ subject: 'hup3', audience: ['orders'] });
      assert.ok(issued.accessToken);
      assert.equal((await fetch(`http://127.0.0.1:${String(primary.httpPort)}/healthz`)).status, 200, 'the primary still serves HTTP');
    } finally {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('sidecar audience: an explicit choice (real processes)', function () {
  this.timeout(30_000);
  const base = { TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_AUTHORITY_URL: 'http://127.0.0.1:9', TA_REDIS_URL: 'redis://127.0.0.1:9', TA_ISSUER: TEST_ISSUER };

  it('refuses to start without TA_AUDIENCE, saying how to accept any audience', async () => {
    const p = runCli(['sidecar'], base);
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /TA_AUDIENCE \(--audience\): is required for a sidecar: .* or \* to accept tokens for any audience/);
  });

  it('refuses an audience with whitespace', async () => {
    const p = runCli(['sidecar'], { ...base, TA_AUDIENCE: 'orders billing' });
    assert.equal(await p.exited, 2);
    assert.match(p.stderr(), /TA_AUDIENCE \(--audience\): must be one audience, without whitespace/);
  });

  it('with TA_AUDIENCE=* it starts and warns loudly that any audience is accepted', async () => {
    const p = runCli(['sidecar'], { ...base, TA_AUDIENCE: '*', TA_LOG_LEVEL: 'info' });
    try {
      const line = await p.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('TA_AUDIENCE=*: tokens for ANY audience are accepted'));
      assert.equal(line.level, 40, 'a warning');
    } finally {
      p.kill('SIGKILL');
      await p.exited;
    }
  });
});
