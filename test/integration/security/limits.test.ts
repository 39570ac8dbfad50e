import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus, type AuthorityClient } from '../../helpers/grpc-client.js';
import { standardPki } from '../../helpers/pki.js';
import { tlsClient, writePolicy } from './security-fixtures.js';

describe('per-caller rate limits (by IP address without client certificates)', () => {
  let ta: TestAuthority;
  before(async () => {
    // Per hour, so nothing refills while the test runs: the counts below are exact.
    ta = await startTestAuthority({ TA_RATE_LIMIT_ISSUE: '3/h', TA_RATE_LIMIT_REFRESH: '2/h', TA_RATE_LIMIT_REVOKE: '1/h:2' });
  });
  after(() => ta?.close());

  it('Issue: the burst passes, the next call gets RESOURCE_EXHAUSTED saying which limit and when to retry', async () => {
    const issued = [];
    for (let i = 0; i < 3; i++) issued.push(await ta.client.issue({ subject: `u${i}`, audience: ['orders'] }));
    const err = await expectStatus(
      ta.client.issue({ subject: 'u3', audience: ['orders'] }),
      status.RESOURCE_EXHAUSTED,
      /^Issue rate limit exceeded for caller 127\.0\.0\.1 \(TA_RATE_LIMIT_ISSUE=3\/h: 3\/h, burst 3\); retry in \d+ ms$/,
    );
    assert.deepEqual(err.metadata.get('ta-error-code'), ['ERR_RATE_LIMITED']);

    // Verify is never limited; Refresh and Revoke have budgets of their own.
    for (let i = 0; i < 50; i++) assert.equal((await ta.client.verify({ token: issued[0]!.accessToken })).valid, true);
    const r1 = await ta.client.refresh({ refreshToken: issued[0]!.refreshToken });
    await ta.client.refresh({ refreshToken: r1.refreshToken });
    await expectStatus(ta.client.refresh({ refreshToken: issued[1]!.refreshToken }), status.RESOURCE_EXHAUSTED, /^Refresh rate limit exceeded .*TA_RATE_LIMIT_REFRESH=2\/h/);
    await ta.client.revoke({ target: { $case: 'token', token: issued[1]!.accessToken } });
    await ta.client.revoke({ target: { $case: 'token', token: issued[2]!.accessToken } });
    await expectStatus(ta.client.revoke({ target: { $case: 'subject', subject: 'u0' } }), status.RESOURCE_EXHAUSTED, /^Revoke rate limit exceeded .*burst 2\)/);
  });

  it('a refused call did nothing: the refresh token it carried is still good', async () => {
    // Refresh is out of budget here; the token must not have been spent by the refused call.
    const fresh = await startTestAuthority({ TA_RATE_LIMIT_REFRESH: '1/h' });
    try {
      const issued = await fresh.client.issue({ subject: 'v', audience: ['orders'] });
      const other = await fresh.client.issue({ subject: 'w', audience: ['orders'] });
      await fresh.client.refresh({ refreshToken: issued.refreshToken });
      await expectStatus(fresh.client.refresh({ refreshToken: other.refreshToken }), status.RESOURCE_EXHAUSTED);
      const session = await fresh.running.store.getSession(other.sessionId);
      assert.ok(session && session.lastUsedAt === session.createdAt, 'the refused Refresh left the family untouched');
    } finally {
      await fresh.close();
    }
  });
});

describe('per-caller rate limits (by client-certificate identity)', () => {
  let pki: ReturnType<typeof standardPki>;
  let ta: TestAuthority;
  let login: AuthorityClient;
  let login2: AuthorityClient;
  let ops: AuthorityClient;
  before(async () => {
    pki = standardPki();
    const policy = writePolicy(pki.pki.dir, {
      version: 1,
      clients: {
        'spiffe://corp/login': { issue: { audiences: ['*'], scopes: ['*'] } },
        'ops-cli.corp.internal': { issue: { audiences: ['*'], scopes: ['*'] } },
      },
    });
    ta = await startTestAuthority({ TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert, TA_CLIENT_POLICY: policy, TA_RATE_LIMIT_ISSUE: '2/h' });
    login = tlsClient(ta.running.grpcPort, pki.ca, pki.login);
    login2 = tlsClient(ta.running.grpcPort, pki.ca, pki.login);
    ops = tlsClient(ta.running.grpcPort, pki.ca, pki.opsCli);
  });
  after(async () => {
    for (const c of [login, login2, ops]) c?.close();
    await ta?.close();
    pki?.cleanup();
  });

  it('counts an identity across its connections, and keeps identities on one host apart', async () => {
    await login.issue({ subject: 'a', audience: ['orders'] });
    await login2.issue({ subject: 'a', audience: ['orders'] });
    await expectStatus(login.issue({ subject: 'a', audience: ['orders'] }), status.RESOURCE_EXHAUSTED, /for caller spiffe:\/\/corp\/login /);
    // login2 is a second connection (its own subchannel) with the same certificate: same budget.
    await expectStatus(login2.issue({ subject: 'a', audience: ['orders'] }), status.RESOURCE_EXHAUSTED, /for caller spiffe:\/\/corp\/login /);
    // Same address (127.0.0.1), another identity: its own budget.
    await ops.issue({ subject: 'a', audience: ['orders'] });
    await ops.issue({ subject: 'a', audience: ['orders'] });
  });
});

describe('message size limit (TA_MAX_MESSAGE_BYTES)', () => {
  const R = VerifyFailureReason;

  it('default 64 KiB: a 1 MB request is refused with RESOURCE_EXHAUSTED; a 32 KB token is a MALFORMED answer', async () => {
    const ta = await startTestAuthority();
    try {
      await expectStatus(ta.client.verify({ token: 'x'.repeat(1024 * 1024) }), status.RESOURCE_EXHAUSTED, /Received message larger than max \(\d+ vs 65536\)/);
      await expectStatus(ta.client.issue({ subject: 'big', audience: ['orders'], extraClaims: { blob: 'y'.repeat(100_000) } }), status.RESOURCE_EXHAUSTED);
      const v = await ta.client.verify({ token: 'x'.repeat(32 * 1024) });
      assert.equal(R[v.reason], 'VERIFY_FAILURE_REASON_MALFORMED');
      assert.match(v.detail, /8192/);
      // The largest Issue request the field limits allow fits the message limit: it reaches the
      // handler, which refuses it because its token would exceed what verifiers accept.
      await expectStatus(
        ta.client.issue({
          subject: 's'.repeat(256),
          audience: Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(250, 'a')),
          scopes: Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(60, 'b')),
          extraClaims: { blob: 'z'.repeat(4000) },
        }),
        status.INVALID_ARGUMENT,
        /the access token would be about \d+ bytes, more than the 8192 verifiers accept/,
      );
    } finally {
      await ta.close();
    }
  });

  it('raised to 2 MiB: the same 1 MB token reaches the verifier, which answers MALFORMED without parsing it', async () => {
    const ta = await startTestAuthority({ TA_MAX_MESSAGE_BYTES: '2MiB' });
    try {
      const v = await ta.client.verify({ token: 'x'.repeat(1024 * 1024) });
      assert.equal(v.valid, false);
      assert.equal(R[v.reason], 'VERIFY_FAILURE_REASON_MALFORMED');
    } finally {
      await ta.close();
    }
  });
});
