import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const REVOKED = VerifyFailureReason.VERIFY_FAILURE_REASON_REVOKED;

/** The same session scenarios against the embedded store and a real Redis. */
for (const backend of ['memory', 'redis'] as const) {
  describe(`sessions over gRPC (${backend} store)`, function () {
    this.timeout(30_000);
    let redis: RedisServer | undefined;
    let ta: TestAuthority;
    let env: Record<string, string>;
    before(async () => {
      if (backend === 'redis') redis = await startRedis();
      env = redis ? { TA_REDIS_URL: redis.url } : {};
    });
    after(async () => {
      await redis?.stop();
    });
    beforeEach(async () => {
      ta = await startTestAuthority(env);
    });
    afterEach(() => ta.close());

    const issue = (subject = 'alice') => ta.client.issue({ subject, audience: ['orders'], scopes: ['read'] });
    const isValid = async (token: string) => (await ta.client.verify({ token })).valid;
    const reason = async (token: string) => (await ta.client.verify({ token })).reason;

    it('rotates through a chain of 50 refreshes; each step spends its parent', async () => {
      const first = await issue();
      let refresh = first.refreshToken;
      const seen = new Set([refresh]);
      for (let i = 0; i < 50; i++) {
        const next = await ta.client.refresh({ refreshToken: refresh });
        assert.equal(next.sessionId, first.sessionId, 'the session survives rotation');
        assert.ok(!seen.has(next.refreshToken), 'every refresh token is new');
        seen.add(next.refreshToken);
        assert.equal(await isValid(next.accessToken), true);
        refresh = next.refreshToken;
      }
      assert.equal(seen.size, 51);
    });

    it('reuse of a spent refresh token revokes the whole session, including its newest access token', async () => {
      const first = await issue();
      const second = await ta.client.refresh({ refreshToken: first.refreshToken });
      const err = await expectStatus(ta.client.refresh({ refreshToken: first.refreshToken }), status.UNAUTHENTICATED, 'already used');
      assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_REFRESH_REUSED');
      assert.equal(await reason(second.accessToken), REVOKED, 'the latest access token of the family is revoked');
      assert.equal(await reason(first.accessToken), REVOKED);
      await expectStatus(ta.client.refresh({ refreshToken: second.refreshToken }), status.UNAUTHENTICATED, 'revoked');
    });

    it('of 100 concurrent refreshes with one token exactly one gets a successor', async () => {
      const first = await issue();
      const results = await Promise.allSettled(Array.from({ length: 100 }, () => ta.client.refresh({ refreshToken: first.refreshToken })));
      const ok = results.filter((r) => r.status === 'fulfilled');
      assert.equal(ok.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code: number }).code, status.UNAUTHENTICATED);
    });

    it('Revoke(token) with an access token revokes just that token', async () => {
      const a = await issue();
      const b = await ta.client.refresh({ refreshToken: a.refreshToken });
      const r = await ta.client.revoke({ target: { $case: 'token', token: a.accessToken }, reason: 'logout' });
      assert.ok(r.sequence > 0);
      assert.equal(r.revokedId, a.tokenId);
      assert.equal(await reason(a.accessToken), REVOKED);
      assert.equal(await isValid(b.accessToken), true, 'other tokens of the session are untouched');
      const again = await ta.client.revoke({ target: { $case: 'token', token: a.accessToken } });
      assert.equal(again.sequence, r.sequence, 'idempotent: the same revocation, no new sequence');
    });

    it('Revoke(token) with a refresh token ends its session: access tokens revoked, refresh refused', async () => {
      const a = await issue();
      await ta.client.revoke({ target: { $case: 'token', token: a.refreshToken } });
      assert.equal(await reason(a.accessToken), REVOKED);
      const err = await expectStatus(ta.client.refresh({ refreshToken: a.refreshToken }), status.UNAUTHENTICATED);
      assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_SESSION_REVOKED');
    });

    it('Revoke(session_id) and Revoke(token_id)', async () => {
      const a = await issue();
      const b = await issue();
      await ta.client.revoke({ target: { $case: 'sessionId', sessionId: a.sessionId } });
      assert.equal(await reason(a.accessToken), REVOKED);
      await expectStatus(ta.client.refresh({ refreshToken: a.refreshToken }), status.UNAUTHENTICATED);
      assert.equal(await isValid(b.accessToken), true);
      await ta.client.revoke({ target: { $case: 'tokenId', tokenId: b.tokenId } });
      assert.equal(await reason(b.accessToken), REVOKED);
    });

    it('Revoke(subject) signs out everywhere, and spares tokens issued after it (same second too)', async () => {
      const a1 = await issue('dave');
      const a2 = await issue('dave');
      const other = await issue('erin');
      const r = await ta.client.revoke({ target: { $case: 'subject', subject: 'dave' }, reason: 'password-change' });
      assert.ok(r.sequence > 0);
      assert.equal(await reason(a1.accessToken), REVOKED);
      assert.equal(await reason(a2.accessToken), REVOKED);
      await expectStatus(ta.client.refresh({ refreshToken: a1.refreshToken }), status.UNAUTHENTICATED);
      assert.equal(await isValid(other.accessToken), true, 'other subjects are untouched');
      // Issued right after the bump, very likely within the same second: the generation tells them apart.
      const after = await issue('dave');
      assert.equal(await isValid(after.accessToken), true, 'a token issued after the bump is valid');
      const refreshed = await ta.client.refresh({ refreshToken: after.refreshToken });
      assert.equal(await isValid(refreshed.accessToken), true);
    });

    it('rejects an unknown refresh token and a non-refresh string with clear errors', async () => {
      const err = await expectStatus(ta.client.refresh({ refreshToken: 'tart_' + 'A'.repeat(43) }), status.UNAUTHENTICATED, 'not valid');
      assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_REFRESH_INVALID');
      await expectStatus(ta.client.refresh({ refreshToken: 'hello' }), status.UNAUTHENTICATED, 'not a refresh token');
      await expectStatus(ta.client.revoke({ target: { $case: 'token', token: 'tart_' + 'B'.repeat(43) } }), status.NOT_FOUND, 'unknown');
      await expectStatus(ta.client.revoke({ target: { $case: 'token', token: 'x.y.z' } }), status.INVALID_ARGUMENT, 'neither a refresh token nor a valid access token');
    });
  });
}

describe('refresh grace window (authority, manual clock)', () => {
  let ta: TestAuthority;
  const clock = new ManualClock(Date.now());
  before(async () => {
    ta = await startTestAuthority({ TA_REFRESH_GRACE: '10s' }, { clock });
  });
  after(() => ta.close());

  it('within the window the parent may be presented again without reuse; after it, it is reuse', async () => {
    const a = await ta.client.issue({ subject: 'gina', audience: ['orders'] });
    const b = await ta.client.refresh({ refreshToken: a.refreshToken });
    clock.advance(5_000);
    const b2 = await ta.client.refresh({ refreshToken: a.refreshToken });
    assert.equal(b2.sessionId, b.sessionId, 'same session');
    await expectStatus(ta.client.refresh({ refreshToken: b.refreshToken }), status.UNAUTHENTICATED, 'not valid');
    const c = await ta.client.refresh({ refreshToken: b2.refreshToken });
    clock.advance(11_000);
    const err = await expectStatus(ta.client.refresh({ refreshToken: b2.refreshToken }), status.UNAUTHENTICATED, 'already used');
    assert.equal(err.metadata.get('ta-error-code')[0], 'ERR_REFRESH_REUSED');
    assert.equal((await ta.client.verify({ token: c.accessToken })).reason, REVOKED);
  });
});

describe('authority with Redis failing', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  before(async () => {
    redis = await startRedis({ aof: true });
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_REDIS_COMMAND_TIMEOUT: '300ms' });
  });
  after(async () => {
    await ta.close();
    await redis.stop();
  });

  it('answers UNAVAILABLE quickly while Redis is down, recovers by itself, and loses no acknowledged revocation', async () => {
    const a = await ta.client.issue({ subject: 'hank', audience: ['orders'] });
    const acked = await ta.client.revoke({ target: { $case: 'sessionId', sessionId: a.sessionId } });
    await redis.kill();
    const started = Date.now();
    await expectStatus(ta.client.issue({ subject: 'hank', audience: ['orders'] }), status.UNAVAILABLE);
    await expectStatus(ta.client.refresh({ refreshToken: a.refreshToken }), status.UNAVAILABLE);
    await expectStatus(ta.client.revoke({ target: { $case: 'subject', subject: 'hank' } }), status.UNAVAILABLE);
    assert.ok(Date.now() - started < 3000, `three calls took ${Date.now() - started}ms: they must fail fast, not hang`);
    await redis.restart();
    // Recovery: the next calls succeed without restarting the authority (bounded retry loop on an event: the first success).
    let issued;
    for (const deadline = Date.now() + 10_000; !issued && Date.now() < deadline; ) {
      issued = await ta.client.issue({ subject: 'hank', audience: ['orders'] }).catch(() => undefined);
      if (!issued) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(issued, 'Issue recovered after Redis came back');
    const page = await ta.running.store.readLog(0, 100);
    assert.ok(page.events.some((e) => e.seq === acked.sequence && e.kind === 'sid' && e.id === a.sessionId), 'the acknowledged revocation survived kill -9 (AOF always)');
    await expectStatus(ta.client.refresh({ refreshToken: a.refreshToken }), status.UNAUTHENTICATED, 'revoked');
  });
});
