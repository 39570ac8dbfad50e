/**
 * `token-authority status` against real processes: an authority on a real redis-server, two
 * sidecar processes reporting receipts, the CLI run as a child process. A sidecar that stops shows
 * as stale (not gone) until its TA_RECEIPT_RETENTION has passed, and `status` exits 1 meanwhile.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FleetStatus } from '../../src/authority/fleet-status.js';
import { startAuthorityProcess, type AuthorityProcess } from '../helpers/authority-process.js';
import { startTestAuthority, TEST_ISSUER } from '../helpers/authority.js';
import { runCli } from '../helpers/cli-process.js';
import { eventually } from '../helpers/eventually.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startSidecarProcess, type SidecarProcess } from '../helpers/sidecar.js';

/** Runs `token-authority status <args>` to its end. */
async function status(args: string[]): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const p = runCli(['status', ...args]);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.stderr() };
}

async function fleet(base: string): Promise<FleetStatus> {
  const res = await fetch(`${base}/fleet`);
  assert.equal(res.status, 200);
  return (await res.json()) as FleetStatus;
}

/** The row of `instance` in the human-readable table, split into columns. */
function row(stdout: string, instance: string): string[] | undefined {
  return stdout.split('\n').map((l) => l.trim().split(/\s{2,}/)).find((cols) => cols[0] === instance);
}

describe('token-authority status: the fleet at a glance (real authority, Redis and sidecar processes)', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let authority: AuthorityProcess;
  let keyDir: string;
  let steady: SidecarProcess;
  let leaving: SidecarProcess;
  let leavingStopped = false;

  before(async () => {
    redis = await startRedis();
    keyDir = mkdtempSync(join(tmpdir(), 'ta-fleet-'));
    authority = await startAuthorityProcess('fleet', { TA_REDIS_URL: redis.url, TA_ISSUER: TEST_ISSUER, TA_KEY_DIR: keyDir, TA_HEARTBEAT_INTERVAL: '200ms' });
    [steady, leaving] = await Promise.all([
      startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: redis.url, instanceId: 'fleet-steady' }),
      // Retention 8 s: stale from 5 s (the receipt TTL) to 8 s after its last report.
      startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: redis.url, instanceId: 'fleet-leaving', env: { TA_RECEIPT_RETENTION: '8s' } }),
    ]);
  });
  after(async () => {
    await steady?.stop();
    if (!leavingStopped) await leaving?.stop();
    await authority?.stop();
    await redis?.stop();
    if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  });

  it('shows the head sequence, the key set and every reporting sidecar as live; exit 0', async () => {
    const issued = await authority.client.issue({ subject: 'fay', audience: ['orders'] });
    const { sequence } = await authority.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
    await eventually(async () => (await fleet(authority.httpBase)).verifiers.filter((v) => v.appliedSequence >= sequence).length === 2, 10_000, 'both sidecars report the revocation');

    const human = await status(['--url', authority.httpBase]);
    assert.equal(human.code, 0, human.stderr + human.stdout);
    assert.match(human.stdout, new RegExp(`head sequence ${sequence}\\b`));
    assert.match(human.stdout, /2 live, 0 stale/);
    const kid = (await authority.jwks()).keys[0]!.kid;
    assert.ok(row(human.stdout, kid), `the key ${kid} is listed:\n${human.stdout}`);
    for (const id of ['fleet-steady', 'fleet-leaving']) {
      const cols = row(human.stdout, id);
      assert.deepEqual(cols?.slice(0, 4), [id, 'live', String(sequence), '0'], human.stdout);
      assert.match(cols![4]!, /ago$/);
    }

    const json = await status(['--url', authority.httpBase, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as FleetStatus;
    assert.equal(doc.v, 1);
    assert.equal(doc.headSequence, sequence);
    assert.ok(!Number.isNaN(Date.parse(doc.at)));
    assert.ok(doc.keys.some((k) => k.kid === kid && k.state === 'active' && typeof k.alg === 'string' && typeof k.ageSeconds === 'number' && !Number.isNaN(Date.parse(k.createdAt))));
    assert.deepEqual(doc.verifiers.map((v) => v.instanceId), ['fleet-leaving', 'fleet-steady']);
    for (const v of doc.verifiers) {
      assert.deepEqual(Object.keys(v).sort(), ['appliedSequence', 'instanceId', 'lag', 'lastSeen', 'lastSeenAgoMs', 'state']);
      assert.equal(v.state, 'live');
      assert.equal(v.lag, 0);
      assert.ok(v.lastSeenAgoMs >= 0 && v.lastSeenAgoMs < 5000, `last seen ${v.lastSeenAgoMs} ms ago`);
      assert.ok(!Number.isNaN(Date.parse(v.lastSeen)));
    }
    assert.equal(doc.live, 2);
    assert.equal(doc.stale, 0);
  });

  it('a sidecar stopped by SIGTERM shows as stale, not gone, and status exits 1; GetPropagation no longer counts it', async () => {
    await leaving.stop();
    leavingStopped = true;
    await eventually(async () => (await fleet(authority.httpBase)).verifiers.some((v) => v.instanceId === 'fleet-leaving' && v.state === 'stale'), 10_000, 'fleet-leaving is stale');

    const human = await status(['--url', authority.httpBase]);
    assert.equal(human.code, 1, human.stderr + human.stdout);
    assert.match(human.stdout, /1 live, 1 stale/);
    assert.equal(row(human.stdout, 'fleet-leaving')?.[1], 'stale', human.stdout);
    assert.equal(row(human.stdout, 'fleet-steady')?.[1], 'live', human.stdout);

    const json = await status(['--url', authority.httpBase, '--json']);
    assert.equal(json.code, 1);
    const doc = JSON.parse(json.stdout) as FleetStatus;
    assert.equal(doc.stale, 1);
    const gone = doc.verifiers.find((v) => v.instanceId === 'fleet-leaving')!;
    assert.ok(gone.lastSeenAgoMs >= 5000, `stale only after the receipt TTL (last seen ${gone.lastSeenAgoMs} ms ago)`);

    // GetPropagation's "live verifiers" are unchanged: the stale receipt is not among them.
    const prop = await authority.client.getPropagation({ sequence: doc.headSequence, minVerifiers: 0, waitMs: 0 });
    assert.deepEqual(prop.verifiers.map((v) => v.instanceId), ['fleet-steady']);
  });

  it('after its retention the stopped sidecar is gone, and status exits 0 again', async () => {
    await eventually(async () => !(await fleet(authority.httpBase)).verifiers.some((v) => v.instanceId === 'fleet-leaving'), 15_000, 'fleet-leaving is forgotten');
    const human = await status(['--url', authority.httpBase]);
    assert.equal(human.code, 0, human.stderr + human.stdout);
    assert.match(human.stdout, /1 live, 0 stale/);
    assert.equal(row(human.stdout, 'fleet-leaving'), undefined);
  });

  it('exits 2 when the authority cannot be asked (nothing listening, not a fleet document, bad URL)', async () => {
    const closed = await status(['--url', 'http://127.0.0.1:1', '--timeout', '2000']);
    assert.equal(closed.code, 2);
    assert.match(closed.stderr, /status: http:\/\/127\.0\.0\.1:1\/fleet: /);
    const sidecarHttp = await status(['--url', `http://127.0.0.1:${steady.httpPort}`]);
    assert.equal(sidecarHttp.code, 2, 'a sidecar has no /fleet');
    assert.match(sidecarHttp.stderr, /answered 404/);
    const bad = await status(['--url', 'ftp://user:secret@example.test']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--url must be an http:\/\/ or https:\/\/ URL/);
    assert.doesNotMatch(bad.stderr, /secret/);
  });
});

describe('token-authority status on the embedded memory store', function () {
  this.timeout(30_000);

  it('answers the head sequence and key set with no verifiers; exit 0', async () => {
    const ta = await startTestAuthority();
    try {
      const issued = await ta.client.issue({ subject: 'gus', audience: ['orders'] });
      await ta.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
      const human = await status(['--url', ta.httpBase]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /head sequence 1\b/);
      assert.match(human.stdout, /0 live, 0 stale/);
      // A receipt in the memory store goes stale, then away, exactly as in Redis.
      await ta.running.store.reportApplied('mem-1', 1, 100, 60_000);
      await eventually(async () => (await fleet(ta.httpBase)).verifiers.some((v) => v.instanceId === 'mem-1' && v.state === 'stale'), 5000, 'mem-1 is stale');
      assert.equal((await status(['--url', ta.httpBase])).code, 1);
    } finally {
      await ta.close();
    }
  });
});
