import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { TEST_ISSUER } from '../../helpers/authority.js';
import { kidOf, startAuthorityProcess, type AuthorityProcess } from '../../helpers/authority-process.js';
import { runCli } from '../../helpers/cli-process.js';
import { eventually } from '../../helpers/eventually.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { startSidecarProcess, type SidecarProcess } from '../../helpers/sidecar.js';

const REVOKED = VerifyFailureReason.VERIFY_FAILURE_REASON_REVOKED;
const UNAUTHENTICATED = 16;

describe('two authority processes on one Redis behave as one authority (TA_KEY_STORE=redis)', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let raw: Redis;
  let scratch: string;
  let env: Record<string, string>;
  let a: AuthorityProcess;
  let b: AuthorityProcess;
  let sidecar: SidecarProcess;

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    scratch = await mkdtemp(join(tmpdir(), 'ta-replicas-'));
    env = {
      TA_KEY_STORE: 'redis',
      TA_REDIS_URL: redis.url,
      TA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      TA_ISSUER: TEST_ISSUER,
      TA_HEARTBEAT_INTERVAL: '200ms',
      // Must stay unused: the keys are in Redis.
      TA_KEY_DIR: join(scratch, 'keys'),
    };
    // Both start at once on an empty Redis: they race to create the key set.
    [a, b] = await Promise.all([startAuthorityProcess('A', env), startAuthorityProcess('B', env)]);
    sidecar = await startSidecarProcess({ authorityHttpPort: a.httpPort, redisUrl: redis.url, instanceId: 'sc-replicas' });
  });

  after(async () => {
    await Promise.all([sidecar?.stop(), a?.stop(), b?.stop()]);
    raw?.disconnect();
    await redis?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('start together on an empty Redis and publish one key set, kept only in Redis and only encrypted', async () => {
    const initialised = [a, b].filter((p) => p.proc.lines.some((l) => l.msg === 'initialised a new signing key set'));
    assert.equal(initialised.length, 1, 'exactly one process created the key set; the other loaded it');
    assert.deepEqual(await a.jwks(), await b.jwks());
    assert.equal((await a.jwks()).keys.length, 2, 'active and next');
    const stored = await raw.hget('ta:v1:{ta}:keys', 'doc');
    assert.ok(stored, 'the key set is in Redis');
    assert.match(stored, /"format":"ta-keyset-sealed\/1"/);
    assert.doesNotMatch(stored, /"d":/, 'no private JWK member in the clear');
    assert.equal(existsSync(join(scratch, 'keys')), false, 'nothing was written to TA_KEY_DIR');
  });

  it('a replica configured with another key-encryption key refuses to start, saying so', async () => {
    const wrong = runCli(['serve'], { ...env, TA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0' });
    assert.equal(await wrong.exited, 1);
    assert.match(wrong.stderr(), /cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY\? The key set in Redis key ta:v1:\{ta\}:keys was encrypted under key-encryption key [0-9a-f]{16}, but the configured key is [0-9a-f]{16}/);
    assert.ok(!wrong.lines.some((l) => l.msg === 'token authority serving'));
  });

  it('a token issued at A verifies at B and at the sidecar', async () => {
    const issued = await a.client.issue({ subject: 'alice', audience: ['orders'], scopes: ['read'] });
    const atB = await b.client.verify({ token: issued.accessToken, audience: 'orders', requiredScopes: ['read'] });
    assert.equal(atB.valid, true, `B: ${atB.detail}`);
    assert.equal(atB.claims?.subject, 'alice');
    assert.equal(atB.claims?.keyId, kidOf(issued.accessToken));
    assert.equal((await sidecar.client.verify({ token: issued.accessToken, audience: 'orders' })).valid, true);
  });

  it('a refresh at B spends the token at A too: presenting it at A is reuse and ends the session everywhere', async () => {
    const issued = await a.client.issue({ subject: 'bob', audience: ['orders'] });
    const refreshed = await b.client.refresh({ refreshToken: issued.refreshToken });
    assert.equal(refreshed.sessionId, issued.sessionId);
    assert.equal((await a.client.verify({ token: refreshed.accessToken })).valid, true, 'B\'s new access token verifies at A');

    const err: ServiceError = await expectStatus(a.client.refresh({ refreshToken: issued.refreshToken }), UNAUTHENTICATED);
    assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_REFRESH_REUSED');
    // The reuse revoked the session: B's token dies at both replicas and at the sidecar.
    for (const [where, verify] of [['A', a.client.verify], ['B', b.client.verify], ['sidecar', sidecar.client.verify]] as const) {
      await eventually(async () => (await verify({ token: refreshed.accessToken })).reason === REVOKED, 5000, `the session is revoked at ${where}`);
    }
    await expectStatus(b.client.refresh({ refreshToken: refreshed.refreshToken }), UNAUTHENTICATED);
  });

  it('a token revoked at A is REVOKED at B and at the sidecar fed from A\'s JWKS', async () => {
    const issued = await b.client.issue({ subject: 'carol', audience: ['orders'] });
    assert.equal((await sidecar.client.verify({ token: issued.accessToken })).valid, true);
    assert.equal((await b.client.verify({ token: issued.accessToken })).valid, true);
    const { sequence } = await a.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
    // Ask B (not A) whether the sidecar has applied it: receipts are shared through Redis too.
    const propagation = await b.client.getPropagation({ sequence, minVerifiers: 1, waitMs: 5000 });
    assert.ok(propagation.verifiers.some((v) => v.instanceId === 'sc-replicas' && v.appliedSequence >= sequence), 'the sidecar applied it');
    assert.equal((await sidecar.client.verify({ token: issued.accessToken })).reason, REVOKED);
    await eventually(async () => (await b.client.verify({ token: issued.accessToken })).reason === REVOKED, 5000, 'B rejects it');
  });

  it('sign-out everywhere at B revokes a token A issued earlier, while A\'s later tokens live', async () => {
    const before = await a.client.issue({ subject: 'dave', audience: ['orders'] });
    const { sequence } = await b.client.revoke({ target: { $case: 'subject', subject: 'dave' } });
    assert.ok(sequence > 0);
    await eventually(async () => (await a.client.verify({ token: before.accessToken })).reason === REVOKED, 5000, 'A rejects the older token');
    const after = await a.client.issue({ subject: 'dave', audience: ['orders'] });
    assert.equal((await b.client.verify({ token: after.accessToken })).valid, true);
    await expectStatus(a.client.refresh({ refreshToken: before.refreshToken }), UNAUTHENTICATED);
  });

  it('a key rotation on the shared store is picked up by both: tokens A signs with the new key verify at B', async () => {
    const kidsBefore = (await b.jwks()).keys.map((k) => k.kid);
    // Two rotations, so the key that ends up active was generated after both replicas last read
    // the key set: B must learn it by reloading, periodically or on the unknown kid.
    let active = '';
    for (let i = 0; i < 2; i++) {
      const rotate = runCli(['keys', 'rotate'], env);
      assert.equal(await rotate.exited, 0, rotate.stderr());
      active = /^rotated: (\S+) /m.exec(rotate.stdout())?.[1] ?? '';
    }
    assert.ok(active !== '' && !kidsBefore.includes(active), 'the CLI reports a key neither replica had seen');
    let token = '';
    await eventually(async () => {
      token = (await a.client.issue({ subject: 'erin', audience: ['orders'] })).accessToken;
      return kidOf(token) === active;
    }, 15_000, 'A signs with the new active key');
    const atB = await b.client.verify({ token });
    assert.equal(atB.valid, true, `B: ${atB.detail}`);
    assert.equal((await sidecar.client.verify({ token })).valid, true, 'the sidecar refetches A\'s JWKS on the unknown kid');
    await eventually(async () => (await b.jwks()).keys.some((k) => k.kid === kidOf(token)), 10_000, 'B publishes the new key');
    assert.deepEqual((await a.jwks()).keys.map((k) => k.kid).sort(), (await b.jwks()).keys.map((k) => k.kid).sort());
  });
});
