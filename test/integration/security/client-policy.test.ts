import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus, type AuthorityClient } from '../../helpers/grpc-client.js';
import { standardPki } from '../../helpers/pki.js';
import { recordingLogger, type RecordingLogger } from '../../helpers/recording-logger.js';
import { TEST_POLICY, tlsClient, writePolicy } from './security-fixtures.js';

describe('client policy over mutual TLS', () => {
  let pki: ReturnType<typeof standardPki>;
  let ta: TestAuthority;
  let logger: RecordingLogger;
  let policyPath: string;
  let login: AuthorityClient;
  let ops: AuthorityClient;
  let stranger: AuthorityClient;
  let anonymous: AuthorityClient;

  before(async () => {
    pki = standardPki();
    logger = recordingLogger();
    policyPath = writePolicy(pki.pki.dir, TEST_POLICY);
    ta = await startTestAuthority(
      { TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert, TA_CLIENT_POLICY: policyPath, TA_MAX_ACCESS_TTL: '1h' },
      {},
      logger,
    );
    const port = ta.running.grpcPort;
    login = tlsClient(port, pki.ca, pki.login);
    ops = tlsClient(port, pki.ca, pki.opsCli);
    stranger = tlsClient(port, pki.ca, pki.stranger);
    anonymous = tlsClient(port, pki.ca, pki.anonymous);
  });
  after(async () => {
    for (const c of [login, ops, stranger, anonymous]) c?.close();
    await ta?.close();
    pki?.cleanup();
  });

  it('logs the policy it loaded, and no insecure-mode warning', () => {
    assert.ok(logger.lines.some((l) => l.msg === 'client policy loaded' && l.fields.clients === 2));
    assert.ok(!logger.lines.some((l) => /INSECURE/.test(l.msg)));
  });

  describe('Issue', () => {
    it('is allowed to an identity with the right; the token names it as client_id', async () => {
      const issued = await login.issue({ subject: 'alice', audience: ['orders'], scopes: ['read'] });
      assert.equal(decodeJwt(issued.accessToken).client_id, 'spiffe://corp/login');
      assert.equal((await login.verify({ token: issued.accessToken, audience: 'orders' })).valid, true);
    });

    it('caps the access TTL at the identity\'s maxAccessTtl (15m), below the server maximum (1h)', async () => {
      const issued = await login.issue({ subject: 'alice', audience: ['orders'], accessTtlSeconds: 3600 });
      const { exp, iat } = decodeJwt(issued.accessToken);
      assert.equal(exp! - iat!, 900);
      const shorter = await login.issue({ subject: 'alice', audience: ['orders'], accessTtlSeconds: 60 });
      const c = decodeJwt(shorter.accessToken);
      assert.equal(c.exp! - c.iat!, 60, 'a shorter TTL than the cap is honoured');
    });

    it('denies an audience outside the grant, naming it and the allowed ones', async () => {
      const err = await expectStatus(login.issue({ subject: 'alice', audience: ['orders', 'admin'] }), status.PERMISSION_DENIED, 'client spiffe://corp/login may not issue tokens for audience "admin"; allowed: orders, billing');
      assert.deepEqual(err.metadata.get('ta-error-code'), ['ERR_PERMISSION_DENIED']);
    });

    it('denies scopes outside the grant, naming them', async () => {
      await expectStatus(login.issue({ subject: 'alice', audience: ['orders'], scopes: ['read', 'delete', 'admin'] }), status.PERMISSION_DENIED, 'client spiffe://corp/login may not grant scopes delete, admin; allowed: read, write');
    });

    it('denies an identity that holds only revoke rights, listing them', async () => {
      await expectStatus(ops.issue({ subject: 'alice', audience: ['orders'] }), status.PERMISSION_DENIED, 'client ops-cli.corp.internal may not issue; allowed: revoke:subject, revoke:session, revoke:token_id');
    });

    it('denies a valid certificate whose identity the policy does not list', async () => {
      await expectStatus(stranger.issue({ subject: 'alice', audience: ['orders'] }), status.PERMISSION_DENIED, /^client spiffe:\/\/corp\/stranger may not issue; allowed: none/);
    });

    it('answers UNAUTHENTICATED to a certificate that names no identity', async () => {
      const err = await expectStatus(anonymous.issue({ subject: 'alice', audience: ['orders'] }), status.UNAUTHENTICATED, /^Issue requires a client certificate \(mutual TLS\)/);
      assert.deepEqual(err.metadata.get('ta-error-code'), ['ERR_UNAUTHENTICATED']);
    });
  });

  describe('privileged Revoke', () => {
    it('by subject: allowed to ops-cli (CN identity), denied to login naming the right', async () => {
      const r = await ops.revoke({ target: { $case: 'subject', subject: 'someone' }, reason: 'password-change' });
      assert.ok(r.sequence > 0);
      await expectStatus(login.revoke({ target: { $case: 'subject', subject: 'someone' } }), status.PERMISSION_DENIED, 'client spiffe://corp/login may not revoke:subject; allowed: issue, revoke:session');
    });

    it('by session_id: allowed to login and ops-cli, denied to a stranger', async () => {
      const issued = await login.issue({ subject: 'dave', audience: ['orders'] });
      assert.ok((await login.revoke({ target: { $case: 'sessionId', sessionId: issued.sessionId } })).sequence > 0);
      assert.ok((await ops.revoke({ target: { $case: 'sessionId', sessionId: 'another-session' } })).sequence > 0);
      await expectStatus(stranger.revoke({ target: { $case: 'sessionId', sessionId: issued.sessionId } }), status.PERMISSION_DENIED, /may not revoke:session/);
    });

    it('by token_id: allowed to ops-cli, denied to login', async () => {
      const issued = await login.issue({ subject: 'erin', audience: ['orders'] });
      await expectStatus(login.revoke({ target: { $case: 'tokenId', tokenId: issued.tokenId } }), status.PERMISSION_DENIED, /may not revoke:token_id/);
      await ops.revoke({ target: { $case: 'tokenId', tokenId: issued.tokenId } });
      assert.equal((await login.verify({ token: issued.accessToken })).valid, false);
    });

    it('answers UNAUTHENTICATED to a certificate without identity', async () => {
      await expectStatus(anonymous.revoke({ target: { $case: 'subject', subject: 'x' } }), status.UNAUTHENTICATED, /^Revoke by subject requires a client certificate/);
    });
  });

  describe('holding a token is enough (any valid client certificate, no rights needed)', () => {
    it('to refresh it, and to revoke the refresh token (logout)', async () => {
      const issued = await login.issue({ subject: 'frank', audience: ['orders'] });
      const refreshed = await anonymous.refresh({ refreshToken: issued.refreshToken });
      assert.equal(refreshed.sessionId, issued.sessionId);
      const again = await stranger.refresh({ refreshToken: refreshed.refreshToken });
      await stranger.revoke({ target: { $case: 'token', token: again.refreshToken }, reason: 'logout' });
      await expectStatus(stranger.refresh({ refreshToken: again.refreshToken }), status.UNAUTHENTICATED);
      assert.equal((await stranger.verify({ token: again.accessToken })).valid, false, 'the session\'s access token is revoked too');
    });

    it('to revoke an access token', async () => {
      const issued = await login.issue({ subject: 'grace', audience: ['orders'] });
      const r = await anonymous.revoke({ target: { $case: 'token', token: issued.accessToken } });
      assert.ok(r.sequence > 0);
      assert.equal((await anonymous.verify({ token: issued.accessToken })).valid, false);
    });
  });

  describe('reload on SIGHUP', () => {
    const hangup = async (expected: string) => {
      // Only ever signal ourselves while our handler is installed: otherwise SIGHUP ends the process.
      assert.ok(process.listenerCount('SIGHUP') > 0, 'the authority installed a SIGHUP handler');
      const before = logger.lines.length;
      process.kill(process.pid, 'SIGHUP');
      return logger.waitFor((l) => logger.lines.indexOf(l) >= before && l.msg.startsWith(expected));
    };

    it('picks up a changed policy', async () => {
      writePolicy(pki.pki.dir, {
        version: 1,
        clients: { 'spiffe://corp/stranger': { issue: { audiences: ['billing'], scopes: [] } }, 'ops-cli.corp.internal': { revoke: ['subject'] } },
      });
      const line = await hangup('client policy reloaded');
      assert.equal(line.fields.clients, 2);
      const issued = await stranger.issue({ subject: 'heidi', audience: ['billing'] });
      assert.equal(decodeJwt(issued.accessToken).client_id, 'spiffe://corp/stranger');
      await expectStatus(login.issue({ subject: 'heidi', audience: ['orders'] }), status.PERMISSION_DENIED, /may not issue; allowed: none/);
    });

    it('rejects a bad file with an error log and keeps the policy in force', async () => {
      writePolicy(pki.pki.dir, '{ "version": 1, "clients": { "spiffe://corp/login": { "issue": { "audiences": "orders" } } } }');
      const line = await hangup('client policy reload failed');
      assert.equal(line.level, 'error');
      assert.match(String(line.fields.error), /\$\.clients\["spiffe:\/\/corp\/login"\]\.issue\.audiences/);
      assert.ok((await stranger.issue({ subject: 'ivan', audience: ['billing'] })).accessToken, 'the previous policy still applies');
      await expectStatus(login.issue({ subject: 'ivan', audience: ['orders'] }), status.PERMISSION_DENIED);
    });
  });

  // Last: mocha runs a suite's own tests before its nested suites, so this one sits in a suite too.
  describe('shutdown', () => {
    it('removes its SIGHUP handler when stopped', async () => {
      const before = process.listenerCount('SIGHUP');
      await ta.stop();
      assert.equal(process.listenerCount('SIGHUP'), before - 1);
    });
  });
});

describe('authority without a client policy', () => {
  it('says loudly at start that it is in insecure development mode', async () => {
    const logger = recordingLogger();
    const hangupListeners = process.listenerCount('SIGHUP');
    const ta = await startTestAuthority({}, {}, logger);
    try {
      assert.equal(process.listenerCount('SIGHUP'), hangupListeners + 1, 'a SIGHUP handler that logs and ignores: nothing to reload, and a hangup must not end the process');
      const line = logger.lines.find((l) => l.level === 'warn' && l.msg.startsWith('INSECURE development mode'));
      assert.ok(line, 'an INSECURE warning');
      assert.match(line.msg, /allowed from any process on this host \(loopback\), over plaintext gRPC/);
    } finally {
      await ta.close();
    }
  });

  it('and louder still with TA_INSECURE', async () => {
    const logger = recordingLogger();
    const ta = await startTestAuthority({ TA_INSECURE: 'true' }, {}, logger);
    try {
      assert.ok(logger.lines.some((l) => l.level === 'warn' && /ANY caller that can reach the port/.test(l.msg)));
    } finally {
      await ta.close();
    }
  });
});
