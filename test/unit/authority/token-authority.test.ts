/**
 * The rules of TokenAuthority, on the domain class itself: memory stores, a manual clock, no gRPC
 * server and no network (test/helpers/domain.ts builds it as the server does).
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createDocumentPolicy, parseClientPolicy } from '../../../src/authority/file-policy.js';
import { hashRefreshToken, newRefreshToken } from '../../../src/authority/session-records.js';
import type { SessionConstraints } from '../../../src/store/token-store.js';
import { type AuditFields, auditOf, type IssueInput, type TokenPair } from '../../../src/authority/token-authority.js';
import type { Principal } from '../../../src/shared/principal.js';
import { ErrorCodes, TokenAuthorityError } from '../../../src/shared/errors.js';
import { LOOPBACK_CALLER, remoteCaller, startDomain, type Domain, type DomainOptions } from '../../helpers/domain.js';

const LOGIN = 'spiffe://corp/login';
const OPEN = 'spiffe://corp/open';
const ADMIN = 'spiffe://corp/admin';

/** Grants as an operator writes them (the client policy file), parsed by the real parser. */
const grantPolicy = () =>
  createDocumentPolicy(() =>
    parseClientPolicy(
      JSON.stringify({
        version: 1,
        clients: {
          [LOGIN]: { issue: { audiences: ['orders', 'billing'], scopes: ['read', 'write'], maxAccessTtl: '10m', clientIds: ['web', 'mobile'], extraClaims: ['tenant'] } },
          [OPEN]: { issue: { audiences: ['*'], scopes: ['*'] } },
          [ADMIN]: { revoke: ['subject', 'session', 'token_id'] },
        },
      }),
      'policy.json',
    ),
  );

async function rejects(p: Promise<unknown> | (() => unknown), code: string, message?: string | RegExp): Promise<TokenAuthorityError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof TokenAuthorityError, `expected a TokenAuthorityError, got ${String(err)}`);
    assert.equal(err.code, code, `code of: ${err.message}`);
    if (typeof message === 'string') assert.ok(err.message.includes(message), `"${err.message}" does not include "${message}"`);
    else if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

describe('TokenAuthority (domain, memory stores, manual clock)', function () {
  let d: Domain;
  const open = async (options: DomainOptions = {}) => {
    await d?.close();
    d = await startDomain(options);
    return d;
  };
  afterEach(async () => {
    await d?.close();
    d = undefined as unknown as Domain;
  });

  const input = (over: Partial<IssueInput> = {}): IssueInput => ({ subject: 'alice', audience: ['orders'], scopes: ['read'], extraClaims: {}, accessTtlSeconds: 0, ...over });
  const issue = async (over: Partial<IssueInput> = {}, caller: Principal = LOOPBACK_CALLER) => (await d.authority.issue(input(over), caller)).result;
  const refresh = async (refreshToken: string, accessTtlSeconds = 0) => (await d.authority.refresh({ refreshToken, accessTtlSeconds })).result;
  const verify = async (token: string) => await d.authority.verify(token, {});
  const outcome = async (token: string) => {
    const r = await verify(token);
    return r.valid ? 'VALID' : r.reason;
  };
  const claims = async (token: string) => {
    const r = await verify(token);
    assert.ok(r.valid, `token should verify: ${r.valid ? '' : `${r.reason} ${r.detail}`}`);
    return r.claims;
  };
  const ttlSecondsOf = async (pair: TokenPair) => {
    const c = await claims(pair.accessToken);
    return c.expiresAt - c.issuedAt;
  };

  describe('issue', () => {
    beforeEach(() => open());

    it('signs what was asked: subject, audience, scopes, extra claims, session, the default TTL and client_id', async () => {
      const now = d.clock.nowMs();
      const pair = await issue({ audience: ['orders', 'billing'], scopes: ['read', 'write'], extraClaims: { tenant: 'acme' } });
      const c = await claims(pair.accessToken);
      assert.equal(c.subject, 'alice');
      assert.deepEqual(c.audience, ['orders', 'billing']);
      assert.deepEqual(c.scopes, ['read', 'write']);
      assert.equal(c.extra.tenant, 'acme');
      assert.equal(c.extra.client_id, 'token-authority', 'a caller without identity: the authority itself');
      assert.equal(c.sessionId, pair.sessionId);
      assert.equal(c.tokenId, pair.tokenId);
      assert.equal(c.keyId, pair.keyId);
      assert.equal(c.expiresAt - c.issuedAt, d.config.accessTtlMs / 1000);
      assert.equal(pair.accessExpiresAt, c.expiresAt * 1000);
      assert.equal(pair.refreshExpiresAt, now + d.config.refreshTtlMs);
      assert.equal(c.extra.ta_seal, undefined, 'the seal never reaches a token');
      assert.equal(c.extra.ta_cap, undefined);
    });

    it('caps the requested TTL at TA_MAX_ACCESS_TTL and honours a shorter request', async () => {
      assert.equal(await ttlSecondsOf(await issue({ accessTtlSeconds: 7200 })), d.config.maxAccessTtlMs / 1000);
      assert.equal(await ttlSecondsOf(await issue({ accessTtlSeconds: 60 })), 60);
      await rejects(issue({ accessTtlSeconds: -1 }), ErrorCodes.INVALID_ARGUMENT, 'access_ttl_seconds');
      await rejects(issue({ accessTtlSeconds: 1.5 }), ErrorCodes.INVALID_ARGUMENT, 'access_ttl_seconds');
    });

    it('validates audiences: at least one, no "*", no whitespace; duplicates collapse', async () => {
      await rejects(issue({ audience: [] }), ErrorCodes.INVALID_ARGUMENT, 'at least one audience');
      await rejects(issue({ audience: ['*'] }), ErrorCodes.INVALID_ARGUMENT, 'reserved');
      await rejects(issue({ audience: ['orders', 'a b'] }), ErrorCodes.INVALID_ARGUMENT, 'audience[1] contains whitespace');
      await rejects(issue({ subject: '' }), ErrorCodes.INVALID_ARGUMENT, 'subject is required');
      assert.deepEqual((await claims((await issue({ audience: ['orders', 'orders'] })).accessToken)).audience, ['orders']);
    });

    it('refuses an audience outside TA_ALLOWED_AUDIENCES', async () => {
      await open({ env: { TA_ALLOWED_AUDIENCES: 'orders' } });
      await issue({ audience: ['orders'] });
      await rejects(issue({ audience: ['orders', 'billing'] }), ErrorCodes.PERMISSION_DENIED, 'audience "billing" is not allowed on this authority (allowed: orders)');
    });

    it('refuses reserved extra claims', async () => {
      await rejects(issue({ extraClaims: { ta_cap: '999999999' } }), ErrorCodes.INVALID_ARGUMENT, 'reserved');
      await rejects(issue({ extraClaims: { ta_seal: 'x' } }), ErrorCodes.INVALID_ARGUMENT, 'reserved');
      await rejects(issue({ extraClaims: { client_id: 'x' } }), ErrorCodes.INVALID_ARGUMENT, 'reserved');
    });

    it('refuses a token larger than verifiers accept before anything is stored', async () => {
      let created = 0;
      const createSession = d.store.createSession.bind(d.store);
      d.store.createSession = (i) => (created++, createSession(i));
      const audience = Array.from({ length: 16 }, (_, i) => `${String(i).padStart(2, '0')}${'a'.repeat(240)}`);
      const scopes = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'s'.repeat(120)}`);
      await rejects(issue({ audience, scopes }), ErrorCodes.INVALID_ARGUMENT, /the access token would be about \d+ bytes, more than the 8192 verifiers accept/);
      assert.equal(created, 0, 'no session was created');
      // Just the audiences (about 5.6 KB as a token) fit.
      await issue({ audience });
      assert.equal(created, 1);
    });

    it('needs the issue right: the development policy refuses a remote caller', async () => {
      await rejects(issue({}, remoteCaller('spiffe://corp/stranger')), ErrorCodes.PERMISSION_DENIED, 'issue is privileged');
    });

    describe('with a client policy (grants)', () => {
      beforeEach(() => open({ policy: grantPolicy() }));
      const login = remoteCaller(LOGIN);

      it('limits audiences and scopes to the grant', async () => {
        await issue({ audience: ['orders', 'billing'], scopes: ['read', 'write'] }, login);
        await rejects(issue({ audience: ['orders', 'payroll'] }, login), ErrorCodes.PERMISSION_DENIED, `client ${LOGIN} may not issue tokens for audience "payroll"; allowed: orders, billing`);
        await rejects(issue({ scopes: ['read', 'admin', 'root'] }, login), ErrorCodes.PERMISSION_DENIED, `client ${LOGIN} may not grant scopes admin, root; allowed: read, write`);
      });

      it('allows only the extra claims the grant lists', async () => {
        const pair = await issue({ extraClaims: { tenant: 'acme' } }, login);
        assert.equal((await claims(pair.accessToken)).extra.tenant, 'acme');
        await rejects(issue({ extraClaims: { tenant: 'acme', plan: 'gold' } }, login), ErrorCodes.PERMISSION_DENIED, `client ${LOGIN} may not set extra claim plan; allowed: tenant`);
      });

      it('caps the TTL at the grant\'s maxAccessTtl', async () => {
        assert.equal(await ttlSecondsOf(await issue({ accessTtlSeconds: 3600 }, login)), 600);
        assert.equal(await ttlSecondsOf(await issue({ accessTtlSeconds: 0 }, login)), 600, 'the default (15m) too');
        assert.equal(await ttlSecondsOf(await issue({ accessTtlSeconds: 30 }, login)), 30);
      });

      it('client_id: one of clientIds (the first by default), nothing else', async () => {
        assert.equal((await claims((await issue({}, login)).accessToken)).extra.client_id, 'web', 'default: the first listed');
        assert.equal((await claims((await issue({ clientId: 'mobile' }, login)).accessToken)).extra.client_id, 'mobile');
        await rejects(issue({ clientId: 'token-authority' }, login), ErrorCodes.PERMISSION_DENIED, `client ${LOGIN} may not issue tokens with client_id "token-authority"; allowed: web, mobile`);
      });

      it('client_id: the caller\'s own identity when the grant lists none', async () => {
        const caller = remoteCaller(OPEN);
        assert.equal((await claims((await issue({ audience: ['anything'], scopes: ['any'] }, caller)).accessToken)).extra.client_id, OPEN);
        await rejects(issue({ clientId: 'web' }, caller), ErrorCodes.PERMISSION_DENIED, `may not issue tokens with client_id "web"; allowed: ${OPEN}`);
      });

      it('a client without an issue grant may not issue', async () => {
        await rejects(issue({}, remoteCaller(ADMIN)), ErrorCodes.PERMISSION_DENIED);
      });
    });
  });

  describe('refresh', () => {
    it('rotates: a new refresh token on the same session, the parent is spent (reuse without grace)', async () => {
      await open({ env: { TA_REFRESH_GRACE: '0' } });
      const a = await issue();
      const b = await refresh(a.refreshToken);
      assert.equal(b.sessionId, a.sessionId);
      assert.notEqual(b.refreshToken, a.refreshToken);
      assert.notEqual(b.tokenId, a.tokenId);
      const cb = await claims(b.accessToken);
      assert.equal(cb.subject, 'alice');
      assert.deepEqual(cb.scopes, ['read']);
      assert.equal(cb.generation, (await claims(a.accessToken)).generation);
      const c = await refresh(b.refreshToken);
      assert.equal(c.sessionId, a.sessionId);
      await rejects(refresh(b.refreshToken), ErrorCodes.REFRESH_REUSED, 'already used');
    });

    it('keeps the client_id, extra claims and refresh TTL of the session', async () => {
      await open({ policy: grantPolicy() });
      const a = await issue({ clientId: 'mobile', extraClaims: { tenant: 'acme' } }, remoteCaller(LOGIN));
      d.clock.advance(60_000);
      const b = await refresh(a.refreshToken);
      const c = await claims(b.accessToken);
      assert.equal(c.extra.client_id, 'mobile');
      assert.equal(c.extra.tenant, 'acme');
      assert.equal(b.refreshExpiresAt, d.clock.nowMs() + d.config.refreshTtlMs);
    });

    it('applies the grant\'s TTL cap on refresh too (sealed into the session)', async () => {
      await open({ policy: grantPolicy() });
      const a = await issue({}, remoteCaller(LOGIN));
      assert.equal(await ttlSecondsOf(await refresh(a.refreshToken, 3600)), 600);
    });

    it('caps a refresh\'s TTL at TA_MAX_ACCESS_TTL and validates it before spending the token', async () => {
      await open();
      const a = await issue();
      await rejects(refresh(a.refreshToken, -5), ErrorCodes.INVALID_ARGUMENT, 'access_ttl_seconds');
      const b = await refresh(a.refreshToken, 999_999);
      assert.equal(await ttlSecondsOf(b), d.config.maxAccessTtlMs / 1000, 'the refused call spent nothing');
    });

    it('grace window: the parent may be presented again up to TA_REFRESH_GRACE after it was spent, not a millisecond later', async () => {
      await open({ env: { TA_REFRESH_GRACE: '10s' } });
      const a = await issue();
      const b = await refresh(a.refreshToken);
      d.clock.advance(10_000); // exactly the window
      const b2 = await refresh(a.refreshToken);
      assert.equal(b2.sessionId, a.sessionId);
      assert.notEqual(b2.refreshToken, b.refreshToken);
      await rejects(refresh(b.refreshToken), ErrorCodes.REFRESH_INVALID, 'not valid (unknown, superseded'); // the successor never delivered is superseded, not reuse
      d.clock.advance(1);
      await rejects(refresh(a.refreshToken), ErrorCodes.REFRESH_REUSED);
      assert.equal(await outcome(b2.accessToken), 'REVOKED');
      await rejects(refresh(b2.refreshToken), ErrorCodes.SESSION_REVOKED);
    });

    it('reuse revokes the session: counted once, and the authority\'s own verifier rejects it at once (before the feed)', async () => {
      await open({ feed: 'held' });
      const a = await issue();
      const other = await issue({ subject: 'bob' });
      const b = await refresh(a.refreshToken);
      assert.equal(await outcome(b.accessToken), 'VALID');
      await rejects(refresh(a.refreshToken), ErrorCodes.REFRESH_REUSED, 'the whole session has been revoked');
      assert.equal(d.reuses, 1);
      assert.equal(await outcome(b.accessToken), 'REVOKED', 'the newest access token of the session');
      assert.equal(await outcome(a.accessToken), 'REVOKED');
      assert.equal(await outcome(other.accessToken), 'VALID', 'other sessions untouched');
      await rejects(refresh(b.refreshToken), ErrorCodes.SESSION_REVOKED, 'the session was revoked');
      assert.equal(d.reuses, 1, 'presenting a token of a revoked session is not reuse again');
    });

    it('idle timeout: a token unused for TA_SESSION_IDLE_TIMEOUT is expired, one used a millisecond earlier is not', async () => {
      await open({ env: { TA_SESSION_IDLE_TIMEOUT: '1h' } });
      const a = await issue();
      d.clock.advance(3_600_000 - 1);
      const b = await refresh(a.refreshToken);
      d.clock.advance(3_600_000 - 1);
      const c = await refresh(b.refreshToken);
      d.clock.advance(3_600_000);
      await rejects(refresh(c.refreshToken), ErrorCodes.REFRESH_EXPIRED, 'sign in again');
    });

    it('absolute lifetime: refresh expiry never passes it, and the session ends at it', async () => {
      await open({ env: { TA_SESSION_MAX_LIFETIME: '2h', TA_REFRESH_TTL: '1h' } });
      const start = d.clock.nowMs();
      const a = await issue();
      assert.equal(a.refreshExpiresAt, start + 3_600_000);
      d.clock.advance(50 * 60_000);
      const b = await refresh(a.refreshToken);
      assert.equal(b.refreshExpiresAt, start + 110 * 60_000);
      d.clock.advance(50 * 60_000);
      const c = await refresh(b.refreshToken);
      assert.equal(c.refreshExpiresAt, start + 120 * 60_000, 'capped at the absolute lifetime');
      d.clock.set(start + 120 * 60_000 - 1);
      const e = await refresh(c.refreshToken);
      d.clock.set(start + 120 * 60_000);
      await rejects(refresh(e.refreshToken), ErrorCodes.REFRESH_EXPIRED);
    });

    it('refresh TTL: a token is expired at its refreshExpiresAt', async () => {
      await open({ env: { TA_REFRESH_TTL: '1h' } });
      const a = await issue();
      d.clock.set(a.refreshExpiresAt);
      await rejects(refresh(a.refreshToken), ErrorCodes.REFRESH_EXPIRED);
    });

    it('refuses a record under the pre-upgrade key (plain SHA-256) with the upgrade message', async () => {
      await open();
      const planted = newRefreshToken();
      const now = d.clock.nowMs();
      await d.store.createSession({
        sessionId: 'pre-upgrade',
        subject: 'admin',
        audience: ['billing'],
        scopes: ['admin:all'],
        extra: { client_id: 'token-authority' },
        refreshHash: hashRefreshToken(planted),
        refreshProof: 'forged',
        refreshExpiresAt: now + 60_000,
        absoluteExpiresAt: now + 3_600_000,
        now,
      });
      await rejects(refresh(planted), ErrorCodes.REFRESH_INVALID, 'refresh token was issued before the storage format upgrade; sign in again');
      await rejects(refresh(newRefreshToken()), ErrorCodes.REFRESH_INVALID, 'refresh token is not valid (unknown, superseded, or expired and removed)');
      await rejects(refresh('hello'), ErrorCodes.REFRESH_INVALID, 'not a refresh token of this authority');
    });
  });

  describe('record integrity (a record written by something other than this authority)', () => {
    beforeEach(() => open());
    /** A session planted straight into the store, with a seal and a live proof as Issue makes them unless told otherwise. */
    const plant = async (over: { proof?: string; sealedScopes?: string[]; sealedConstraints?: SessionConstraints; constraints?: SessionConstraints } = {}) => {
      const token = newRefreshToken();
      const key = d.sessionSeal.refresh.keys(token)[0]!;
      const now = d.clock.nowMs();
      const sessionId = `planted-${token.slice(5, 17)}`;
      const fields = { sessionId, subject: 'admin', audience: ['billing'], scopes: ['read'], absoluteExpiresAt: now + 3_600_000, createdAt: now };
      const extra = { client_id: 'token-authority' };
      const constraints = over.constraints ?? {};
      const seal = d.sessionSeal.seal({ ...fields, scopes: over.sealedScopes ?? fields.scopes, extra, constraints: over.sealedConstraints ?? constraints });
      const refreshExpiresAt = now + 60_000;
      await d.store.createSession({
        ...fields,
        extra,
        constraints,
        seal,
        refreshHash: key,
        refreshProof: over.proof ?? d.sessionSeal.refresh.liveProof(key, sessionId, refreshExpiresAt, now),
        refreshExpiresAt,
        now,
      });
      return token;
    };

    it('a genuine seal and proof: introspection reports it, Refresh signs it (the control)', async () => {
      const token = await plant();
      assert.equal((await d.authority.introspectRefresh(token))?.subject, 'admin');
      assert.deepEqual((await claims((await refresh(token)).accessToken)).scopes, ['read']);
    });

    it('a record whose proof does not hold: inactive, and Refresh refuses it (not as reuse)', async () => {
      const token = await plant({ proof: `p1.unit.${'A'.repeat(43)}` });
      assert.equal(await d.authority.introspectRefresh(token), undefined);
      await rejects(refresh(token), ErrorCodes.REFRESH_INVALID, 'refresh token is not valid (its record failed an integrity check)');
      assert.equal(d.reuses, 0);
    });

    it('a session whose claims differ from its seal: inactive, and Refresh refuses it', async () => {
      const token = await plant({ sealedScopes: ['something-else'] });
      assert.equal(await d.authority.introspectRefresh(token), undefined);
      await rejects(refresh(token), ErrorCodes.REFRESH_INVALID, 'its session record failed an integrity check');
    });

    it('the seal covers the constraints: a cap removed from (or added to) the record fails it', async () => {
      const capped = await plant({ sealedConstraints: { maxAccessTtlMs: 60_000 }, constraints: {} });
      assert.equal(await d.authority.introspectRefresh(capped), undefined);
      await rejects(refresh(capped, 3600), ErrorCodes.REFRESH_INVALID, 'its session record failed an integrity check');
      const lowered = await plant({ sealedConstraints: { maxAccessTtlMs: 60_000 }, constraints: { maxAccessTtlMs: 120_000 } });
      await rejects(refresh(lowered, 3600), ErrorCodes.REFRESH_INVALID, 'its session record failed an integrity check');
      const control = await plant({ constraints: { maxAccessTtlMs: 60_000 } });
      assert.equal(await ttlSecondsOf(await refresh(control, 3600)), 60, 'sealed as stored: the cap applies');
    });

    it('the seal covers every member of the constraints: a binding stripped, changed or added fails it', async () => {
      const thumbprint = (fill: number) => Buffer.alloc(32, fill).toString('base64url');
      const bound: SessionConstraints = { maxAccessTtlMs: 60_000, confirmation: { x5tS256: thumbprint(1) } };
      await rejects(refresh(await plant({ sealedConstraints: bound, constraints: { maxAccessTtlMs: 60_000 } })), ErrorCodes.REFRESH_INVALID, 'integrity check');
      await rejects(refresh(await plant({ sealedConstraints: bound, constraints: { ...bound, confirmation: { x5tS256: thumbprint(2) } } })), ErrorCodes.REFRESH_INVALID, 'integrity check');
      await rejects(refresh(await plant({ sealedConstraints: { maxAccessTtlMs: 60_000 }, constraints: bound })), ErrorCodes.REFRESH_INVALID, 'integrity check');
      // A member this version does not know is sealed all the same.
      const unknown = { maxAccessTtlMs: 60_000, later: 'x' } as SessionConstraints;
      await rejects(refresh(await plant({ sealedConstraints: unknown, constraints: { maxAccessTtlMs: 60_000 } })), ErrorCodes.REFRESH_INVALID, 'integrity check');
      const token = (await refresh(await plant({ constraints: bound }))).accessToken;
      const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { cnf?: unknown };
      assert.deepEqual(payload.cnf, { 'x5t#S256': thumbprint(1) }, 'sealed as stored: the binding is kept');
    });
  });

  describe('session records: the seal and the constraints are fields of their own', () => {
    it('Issue stores claims in extra and the cap and seal beside them; no reserved entry in extra', async () => {
      await open({ policy: grantPolicy() });
      const a = await issue({ clientId: 'mobile', extraClaims: { tenant: 'acme' } }, remoteCaller(LOGIN));
      const s = await d.store.getSession(a.sessionId);
      assert.ok(s);
      assert.deepEqual(s.extra, { tenant: 'acme', client_id: 'mobile' });
      assert.deepEqual(s.constraints, { maxAccessTtlMs: 600_000 });
      assert.match(s.seal ?? '', /^v2\.unit\.[A-Za-z0-9_-]{43}$/);
      const plain = await issue({}, remoteCaller(OPEN));
      const p = await d.store.getSession(plain.sessionId);
      assert.equal(p?.constraints, undefined, 'no constraints: none stored');
      assert.match(p?.seal ?? '', /^v2\./);
    });

    /**
     * The layout of sessions stored by the previous version: the seal (`v1`, over the claims with
     * the cap among them) and the cap as reserved entries of `extra`. Made here by hand, as that
     * version made it, not with the module under test.
     */
    const legacySeal = (fields: { sessionId: string; subject: string; audience: string[]; scopes: string[]; absoluteExpiresAt: number; createdAt: number }, extra: Record<string, string>) => {
      const sorted = Object.keys(extra).sort().map((k) => [k, extra[k]]);
      const text = JSON.stringify(['ta-session-v1', fields.sessionId, fields.subject, fields.audience, fields.scopes, sorted, fields.absoluteExpiresAt, fields.createdAt]);
      return `v1.${d.sealSecret.id}.${createHmac('sha256', d.sealSecret.secret).update(text).digest('base64url')}`;
    };
    const plantLegacy = async (over: { cap?: string; storedCap?: string | null; seal?: (v1: string) => { extra?: string; field?: string }; constraints?: SessionConstraints } = {}) => {
      const token = newRefreshToken();
      const key = d.sessionSeal.refresh.keys(token)[0]!;
      const now = d.clock.nowMs();
      const fields = { sessionId: `legacy-${token.slice(5, 17)}`, subject: 'lee', audience: ['orders'], scopes: ['read'], absoluteExpiresAt: now + 3_600_000, createdAt: now };
      const claims = { tenant: 'acme', client_id: 'web' };
      const sealed = { ...claims, ...(over.cap !== undefined ? { ta_cap: over.cap } : {}) };
      const v1 = legacySeal(fields, sealed);
      const where = over.seal ? over.seal(v1) : { extra: v1 };
      const stored: Record<string, string> = { ...claims };
      const storedCap = over.storedCap === undefined ? over.cap : over.storedCap;
      if (storedCap !== undefined && storedCap !== null) stored.ta_cap = storedCap;
      if (where.extra !== undefined) stored.ta_seal = where.extra;
      const refreshExpiresAt = now + 60_000;
      await d.store.createSession({
        ...fields,
        extra: stored,
        ...(where.field !== undefined ? { seal: where.field } : {}),
        ...(over.constraints ? { constraints: over.constraints } : {}),
        refreshHash: key,
        refreshProof: d.sessionSeal.refresh.liveProof(key, fields.sessionId, refreshExpiresAt, now),
        refreshExpiresAt,
        now,
      });
      return token;
    };

    beforeEach(() => open());

    it('a session stored before (seal and cap in extra) refreshes as it did: its claims, its cap, no reserved entry in the token', async () => {
      const token = await plantLegacy({ cap: '60000' });
      const s = await d.authority.introspectRefresh(token);
      assert.equal(s?.subject, 'lee');
      assert.equal(s?.clientId, 'web');
      const next = await refresh(token, 3600);
      const c = await claims(next.accessToken);
      assert.equal(c.expiresAt - c.issuedAt, 60, 'the sealed cap applies');
      assert.equal(c.extra.client_id, 'web');
      assert.equal(c.extra.tenant, 'acme');
      assert.equal(c.extra.ta_seal, undefined);
      assert.equal(c.extra.ta_cap, undefined);
      // Rotation keeps the session's record as it was: its successor refreshes too.
      assert.equal(await ttlSecondsOf(await refresh(next.refreshToken, 3600)), 60);
      assert.equal(await ttlSecondsOf(await refresh(await plantLegacy())), d.config.accessTtlMs / 1000, 'without a cap: the default');
    });

    it('a stored-before session whose cap was removed or raised, or that gained constraints, is refused', async () => {
      await rejects(refresh(await plantLegacy({ cap: '60000', storedCap: null }), 3600), ErrorCodes.REFRESH_INVALID, 'integrity check');
      await rejects(refresh(await plantLegacy({ cap: '60000', storedCap: '3600000' }), 3600), ErrorCodes.REFRESH_INVALID, 'integrity check');
      await rejects(refresh(await plantLegacy({ constraints: { maxAccessTtlMs: 60_000 } })), ErrorCodes.REFRESH_INVALID, 'integrity check');
    });

    it('a seal holds only in the layout it was made for: v1 in the seal field, or v2 inside extra, is refused', async () => {
      await rejects(refresh(await plantLegacy({ seal: (v1) => ({ field: v1 }) })), ErrorCodes.REFRESH_INVALID, 'integrity check');
      await rejects(refresh(await plantLegacy({ seal: (v1) => ({ extra: v1.replace(/^v1\./, 'v2.') }) })), ErrorCodes.REFRESH_INVALID, 'integrity check');
    });
  });

  describe('revoke', () => {
    beforeEach(() => open({ feed: 'held' }));
    const revoke = async (target: Parameters<Domain['authority']['revoke']>[0], caller: Principal = LOOPBACK_CALLER, reason = '') => (await d.authority.revoke(target, reason, caller)).result;

    it('an access token: its jti until it expires (plus skew), idempotent, the rest of the session untouched', async () => {
      const a = await issue();
      const b = await refresh(a.refreshToken);
      const r = await revoke({ kind: 'token', token: b.accessToken }, remoteCaller('spiffe://corp/anyone'));
      assert.ok(r.sequence > 0);
      assert.equal(r.kind, 'jti');
      assert.equal(r.id, b.tokenId);
      assert.equal(r.entryExpiresAt, b.accessExpiresAt + d.config.clockSkewMs);
      assert.equal(await outcome(b.accessToken), 'REVOKED');
      assert.equal(await outcome(a.accessToken), 'VALID');
      const again = await revoke({ kind: 'token', token: b.accessToken });
      assert.equal(again.sequence, r.sequence, 'the same revocation, no new sequence');
      // The session lives on.
      await refresh(b.refreshToken);
    });

    it('an expired access token: nothing to revoke, sequence 0 (from the instant its entry would end)', async () => {
      const a = await issue({ accessTtlSeconds: 60 });
      const b = await issue({ subject: 'bob', accessTtlSeconds: 60 });
      assert.equal(b.accessExpiresAt, a.accessExpiresAt);
      const until = a.accessExpiresAt + d.config.clockSkewMs;
      d.clock.set(until - 1);
      assert.ok((await revoke({ kind: 'token', token: a.accessToken })).sequence > 0, 'a millisecond before, it is revoked');
      d.clock.set(until);
      const r = await revoke({ kind: 'token', token: b.accessToken });
      assert.deepEqual(r, { sequence: 0, kind: 'jti', id: b.tokenId, entryExpiresAt: until });
    });

    it('a refresh token: its session (sid), for the longest access TTL plus skew; refresh then refused', async () => {
      const a = await issue();
      const now = d.clock.nowMs();
      const r = await revoke({ kind: 'token', token: a.refreshToken }, remoteCaller('spiffe://corp/anyone'), 'logout');
      assert.equal(r.kind, 'sid');
      assert.equal(r.id, a.sessionId);
      assert.equal(r.entryExpiresAt, now + d.config.maxAccessTtlMs + d.config.clockSkewMs);
      assert.equal(await outcome(a.accessToken), 'REVOKED');
      await rejects(refresh(a.refreshToken), ErrorCodes.SESSION_REVOKED);
      assert.equal((await revoke({ kind: 'token', token: a.refreshToken })).sequence, r.sequence, 'idempotent');
    });

    it('a session id and a token id', async () => {
      const a = await issue();
      const b = await issue();
      const r = await revoke({ kind: 'session', sessionId: a.sessionId });
      assert.deepEqual([r.kind, r.id], ['sid', a.sessionId]);
      assert.equal(await outcome(a.accessToken), 'REVOKED');
      assert.equal(await outcome(b.accessToken), 'VALID');
      assert.equal((await revoke({ kind: 'session', sessionId: a.sessionId })).sequence, r.sequence, 'idempotent');
      await rejects(refresh(a.refreshToken), ErrorCodes.SESSION_REVOKED);
      const t = await revoke({ kind: 'tokenId', tokenId: b.tokenId });
      assert.deepEqual([t.kind, t.id], ['jti', b.tokenId]);
      assert.equal(await outcome(b.accessToken), 'REVOKED');
      await refresh(b.refreshToken);
    });

    it('a subject: every session of it, not other subjects, not tokens issued after', async () => {
      const a1 = await issue({ subject: 'dave' });
      const a2 = await issue({ subject: 'dave' });
      const other = await issue({ subject: 'erin' });
      const r = await revoke({ kind: 'subject', subject: 'dave' }, LOOPBACK_CALLER, 'password-change');
      assert.deepEqual([r.kind, r.id], ['sub', 'dave']);
      assert.equal(await outcome(a1.accessToken), 'REVOKED');
      assert.equal(await outcome(a2.accessToken), 'REVOKED');
      assert.equal(await outcome(other.accessToken), 'VALID');
      await rejects(refresh(a1.refreshToken), ErrorCodes.SESSION_REVOKED);
      const after = await issue({ subject: 'dave' });
      assert.equal(await outcome(after.accessToken), 'VALID', 'same second, a later generation');
      assert.equal(await outcome((await refresh(after.refreshToken)).accessToken), 'VALID');
    });

    it('session, subject and token_id targets need their right; a token target does not', async () => {
      const a = await issue();
      const stranger = remoteCaller('spiffe://corp/stranger');
      await rejects(revoke({ kind: 'session', sessionId: a.sessionId }, stranger), ErrorCodes.PERMISSION_DENIED, 'revoke:session is privileged');
      await rejects(revoke({ kind: 'subject', subject: 'alice' }, stranger), ErrorCodes.PERMISSION_DENIED, 'revoke:subject is privileged');
      await rejects(revoke({ kind: 'tokenId', tokenId: a.tokenId }, stranger), ErrorCodes.PERMISSION_DENIED, 'revoke:token_id is privileged');
      assert.equal(await outcome(a.accessToken), 'VALID', 'nothing was revoked');
      await revoke({ kind: 'token', token: a.accessToken }, stranger);
      assert.equal(await outcome(a.accessToken), 'REVOKED');
    });

    it('with a client policy: the admin holds the revoke rights, the login client does not', async () => {
      await open({ policy: grantPolicy(), feed: 'held' });
      const a = await issue({}, remoteCaller(LOGIN));
      await rejects(revoke({ kind: 'session', sessionId: a.sessionId }, remoteCaller(LOGIN)), ErrorCodes.PERMISSION_DENIED);
      await revoke({ kind: 'session', sessionId: a.sessionId }, remoteCaller(ADMIN));
      assert.equal(await outcome(a.accessToken), 'REVOKED');
    });

    it('refuses what it cannot revoke with clear errors', async () => {
      await rejects(revoke({ kind: 'token', token: '' }), ErrorCodes.INVALID_ARGUMENT, 'token is empty');
      await rejects(revoke({ kind: 'token', token: newRefreshToken() }), ErrorCodes.NOT_FOUND, 'refresh token is unknown');
      await rejects(revoke({ kind: 'token', token: 'x.y.z' }), ErrorCodes.INVALID_ARGUMENT, 'neither a refresh token nor a valid access token of this issuer');
      await rejects(revoke({ kind: 'session', sessionId: '' }), ErrorCodes.INVALID_ARGUMENT, 'session_id is required');
      const a = await issue();
      await rejects(revoke({ kind: 'token', token: a.accessToken }, LOOPBACK_CALLER, 'r'.repeat(129)), ErrorCodes.INVALID_ARGUMENT, 'reason is longer than 128 bytes');
    });
  });

  describe('introspectRefresh', () => {
    it('reports the current token of a live session; spent, revoked, idle and foreign tokens are inactive', async () => {
      await open({ env: { TA_SESSION_IDLE_TIMEOUT: '1h' } });
      const a = await issue({ audience: ['orders'], scopes: ['read'] });
      const now = d.clock.nowMs();
      assert.deepEqual(await d.authority.introspectRefresh(a.refreshToken), {
        sessionId: a.sessionId,
        subject: 'alice',
        audience: ['orders'],
        scopes: ['read'],
        clientId: 'token-authority',
        issuedAt: now,
        expiresAt: now + 3_600_000,
      });
      d.clock.advance(1000);
      const b = await refresh(a.refreshToken);
      assert.equal(await d.authority.introspectRefresh(a.refreshToken), undefined, 'spent');
      assert.equal((await d.authority.introspectRefresh(b.refreshToken))?.issuedAt, now + 1000, 'the successor is current');
      d.clock.advance(3_600_000);
      assert.equal(await d.authority.introspectRefresh(b.refreshToken), undefined, 'idle');
      const c = await issue();
      await d.authority.revoke({ kind: 'session', sessionId: c.sessionId }, '', LOOPBACK_CALLER);
      assert.equal(await d.authority.introspectRefresh(c.refreshToken), undefined, 'revoked');
      assert.equal(await d.authority.introspectRefresh(newRefreshToken()), undefined, 'unknown');
      assert.equal(await d.authority.introspectRefresh(c.accessToken), undefined, 'not a refresh token');
    });
  });

  describe('audit fields (what the access line says: returned, never written into a bag passed in)', () => {
    /** No token may reach an access line: not as a field, not inside one. */
    const noToken = (audit: AuditFields | undefined, ...tokens: string[]) => {
      const text = JSON.stringify(audit);
      for (const t of tokens) assert.ok(!text.includes(t) && !text.includes(t.split('.')[2] ?? t), `a token in ${text}`);
    };

    it('Issue and Refresh: subject, session, token id and key id; grace when the parent came again', async () => {
      await open({ env: { TA_REFRESH_GRACE: '10s' } });
      const issued = await d.authority.issue(input(), LOOPBACK_CALLER);
      const a = issued.result;
      assert.deepEqual(issued.audit, { sub: 'alice', sid: a.sessionId, jti: a.tokenId, kid: a.keyId });
      noToken(issued.audit, a.accessToken, a.refreshToken);
      const refreshed = await d.authority.refresh({ refreshToken: a.refreshToken, accessTtlSeconds: 0 });
      const b = refreshed.result;
      assert.deepEqual(refreshed.audit, { sub: 'alice', sid: a.sessionId, jti: b.tokenId, kid: b.keyId });
      noToken(refreshed.audit, b.accessToken, b.refreshToken, a.refreshToken);
      const again = await d.authority.refresh({ refreshToken: a.refreshToken, accessTtlSeconds: 0 });
      assert.deepEqual(again.audit, { sub: 'alice', sid: a.sessionId, jti: again.result.tokenId, kid: again.result.keyId, grace: true });
    });

    it('a refused Refresh carries its audit fields on the error: the session, and on reuse the subject, the sequence and the flag', async () => {
      await open({ env: { TA_REFRESH_GRACE: '0' } });
      const a = await issue();
      await refresh(a.refreshToken);
      const reused = await rejects(d.authority.refresh({ refreshToken: a.refreshToken, accessTtlSeconds: 0 }), ErrorCodes.REFRESH_REUSED);
      const audit = auditOf(reused);
      assert.equal(audit?.sid, a.sessionId);
      assert.equal(audit?.sub, 'alice');
      assert.equal(audit?.reuse, true);
      assert.ok((audit?.seq ?? 0) > 0);
      noToken(audit, a.refreshToken, a.accessToken);
      const revoked = await rejects(d.authority.refresh({ refreshToken: a.refreshToken, accessTtlSeconds: 0 }), ErrorCodes.SESSION_REVOKED);
      assert.deepEqual(auditOf(revoked), { sid: a.sessionId });
      assert.equal(auditOf(await rejects(d.authority.refresh({ refreshToken: newRefreshToken(), accessTtlSeconds: 0 }), ErrorCodes.REFRESH_INVALID)), undefined, 'an unknown token names nothing');
    });

    it('Revoke: the sequence and the id revoked under its kind (and the subject of a revoked access token)', async () => {
      await open({ feed: 'held' });
      const a = await issue();
      const byToken = await d.authority.revoke({ kind: 'token', token: a.accessToken }, '', LOOPBACK_CALLER);
      assert.deepEqual(byToken.audit, { sub: 'alice', seq: byToken.result.sequence, jti: a.tokenId });
      noToken(byToken.audit, a.accessToken);
      const bySession = await d.authority.revoke({ kind: 'token', token: a.refreshToken }, '', LOOPBACK_CALLER);
      assert.deepEqual(bySession.audit, { seq: bySession.result.sequence, sid: a.sessionId });
      const bySubject = await d.authority.revoke({ kind: 'subject', subject: 'alice' }, '', LOOPBACK_CALLER);
      assert.deepEqual(bySubject.audit, { seq: bySubject.result.sequence, sub: 'alice' });
      const late = await issue({ subject: 'bob', accessTtlSeconds: 60 });
      d.clock.advance(60_000 + d.config.clockSkewMs);
      const expired = await d.authority.revoke({ kind: 'token', token: late.accessToken }, '', LOOPBACK_CALLER);
      assert.deepEqual(expired.audit, { jti: late.tokenId }, 'nothing revoked: the token id only');
    });
  });
});
