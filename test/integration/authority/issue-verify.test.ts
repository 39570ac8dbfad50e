import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { SIGNING_ALGORITHMS } from '../../../src/verifier/jose-rules.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { accessPayload, forgeHmacWithPublicKey, forgeNoneToken, forgeToken, generateTestKey, tamperSignature, type TestKey } from '../../helpers/token-forge.js';

const R = VerifyFailureReason;

for (const alg of SIGNING_ALGORITHMS) {
  describe(`authority Issue → Verify (${alg})`, () => {
    let ta: TestAuthority;
    before(async () => {
      ta = await startTestAuthority({ TA_KEY_ALG: alg });
    });
    after(() => ta.close());

    it('issues an RFC 9068 access token that Verify accepts with its claims', async () => {
      const issued = await ta.client.issue({ subject: 'alice', audience: ['orders'], scopes: ['read', 'write'], extraClaims: { tenant: 't1' } });
      const header = decodeProtectedHeader(issued.accessToken);
      assert.equal(header.typ, 'at+jwt');
      assert.equal(header.alg, alg);
      assert.equal(header.kid, issued.keyId);
      assert.match(issued.refreshToken, /^tart_[A-Za-z0-9_-]{43}$/);
      assert.ok(issued.sessionId.length > 0 && issued.tokenId.length > 0);
      assert.ok(issued.accessExpiresAt!.getTime() > Date.now());
      const v = await ta.client.verify({ token: issued.accessToken, audience: 'orders', requiredScopes: ['read'] });
      assert.equal(v.valid, true, v.detail);
      assert.equal(v.claims?.subject, 'alice');
      assert.deepEqual(v.claims?.audience, ['orders']);
      assert.deepEqual(v.claims?.scopes, ['read', 'write']);
      assert.equal(v.claims?.tokenId, issued.tokenId);
      assert.equal(v.claims?.sessionId, issued.sessionId);
      assert.equal(v.claims?.keyId, issued.keyId);
      assert.equal(v.claims?.issuer, TEST_ISSUER);
      assert.equal(v.claims?.extraClaims.tenant, 't1');
      assert.equal(v.claims?.expiresAt?.getTime(), issued.accessExpiresAt!.getTime());
    });

    it('is verifiable by jose from the HTTP JWKS alone, as any third party would', async () => {
      const issued = await ta.client.issue({ subject: 'bob', audience: ['orders'] });
      const jwks = createRemoteJWKSet(new URL(`${ta.httpBase}/.well-known/jwks.json`));
      const { payload, protectedHeader } = await jwtVerify(issued.accessToken, jwks, { issuer: TEST_ISSUER, audience: 'orders', typ: 'at+jwt', algorithms: [alg] });
      assert.equal(payload.sub, 'bob');
      assert.equal(payload.jti, issued.tokenId);
      assert.equal(payload.sid, issued.sessionId);
      assert.equal(payload.gen, 0);
      assert.equal(typeof payload.client_id, 'string');
      assert.equal(protectedHeader.kid, issued.keyId);
    });
  });
}

describe('authority Verify: every reason through the RPC', () => {
  let ta: TestAuthority;
  let key: TestKey;
  before(async () => {
    ta = await startTestAuthority({ TA_ALLOWED_AUDIENCES: 'orders,billing', TA_MAX_ACCESS_TTL: '10m', TA_ACCESS_TTL: '5m', TA_CLOCK_SKEW: '5s' });
    // The authority's own active private key, to forge tokens that are correctly signed but wrong.
    const doc = await new FileKeyStore(ta.keyDir).load();
    const active = doc!.keys.find((k) => k.state === 'active')!;
    const privateKey = createPrivateKey({ key: active.privateJwk as never, format: 'jwk' });
    const publicKey = createPublicKey(privateKey);
    key = { kid: active.kid, alg: active.alg, privateKey, publicKey, verificationKey: { kid: active.kid, alg: active.alg, key: publicKey } };
  });
  after(() => ta.close());

  const now = () => Math.floor(Date.now() / 1000);
  const signed = (overrides: Record<string, unknown> = {}, headerExtra: Record<string, unknown> = {}) =>
    forgeToken({ key, payload: accessPayload({ iss: TEST_ISSUER, aud: ['orders'], ...overrides }), headerExtra });
  const reasonOf = async (token: string, audience = '', requiredScopes: string[] = []) => {
    const v = await ta.client.verify({ token, audience, requiredScopes });
    assert.equal(v.valid, false, 'expected the token to be rejected');
    assert.ok(!v.detail.includes(token) || token.length === 0, 'detail must not echo the token');
    return v.reason;
  };

  it('accepts a correctly forged token (the forge itself is sound)', async () => {
    const v = await ta.client.verify({ token: signed(), audience: 'orders' });
    assert.equal(v.valid, true, v.detail);
  });

  const cases: Array<[string, () => string, VerifyFailureReason, string?, string[]?]> = [
    ['tampered signature', () => tamperSignature(signed()), R.VERIFY_FAILURE_REASON_BAD_SIGNATURE],
    ['alg none', () => forgeNoneToken({ payload: accessPayload({ iss: TEST_ISSUER }), kid: key.kid }), R.VERIFY_FAILURE_REASON_UNSUPPORTED_ALGORITHM],
    ['alg NoNe', () => forgeNoneToken({ payload: accessPayload({ iss: TEST_ISSUER }), kid: key.kid, alg: 'NoNe' }), R.VERIFY_FAILURE_REASON_UNSUPPORTED_ALGORITHM],
    ['HS256 signed with the public key', () => forgeHmacWithPublicKey(key, accessPayload({ iss: TEST_ISSUER })), R.VERIFY_FAILURE_REASON_UNSUPPORTED_ALGORITHM],
    ['unknown kid', () => forgeToken({ key: generateTestKey('ES256', 'nobody-knows-me'), payload: accessPayload({ iss: TEST_ISSUER }) }), R.VERIFY_FAILURE_REASON_UNKNOWN_KEY],
    ['expired', () => signed({ exp: now() - 60, iat: now() - 120, nbf: now() - 120 }), R.VERIFY_FAILURE_REASON_EXPIRED],
    ['nbf in the future', () => signed({ nbf: now() + 120 }), R.VERIFY_FAILURE_REASON_NOT_YET_VALID],
    ['wrong iss', () => signed({ iss: 'https://evil.test' }), R.VERIFY_FAILURE_REASON_WRONG_ISSUER],
    ['wrong aud', () => signed({ aud: ['billing'] }), R.VERIFY_FAILURE_REASON_WRONG_AUDIENCE, 'orders'],
    ['wrong typ', () => signed({}, { typ: 'JWT' }), R.VERIFY_FAILURE_REASON_WRONG_TYPE],
    ['embedded jwk header', () => signed({}, { jwk: { kty: 'EC' } }), R.VERIFY_FAILURE_REASON_FORBIDDEN_HEADER],
    ['jku header', () => signed({}, { jku: 'https://evil.test/jwks' }), R.VERIFY_FAILURE_REASON_FORBIDDEN_HEADER],
    ['missing scope', () => signed({ scope: 'read' }), R.VERIFY_FAILURE_REASON_MISSING_SCOPE, '', ['write']],
    ['garbage', () => 'not a token at all', R.VERIFY_FAILURE_REASON_MALFORMED],
    ['empty', () => '', R.VERIFY_FAILURE_REASON_MALFORMED],
    // Longer than the 8 KiB token limit but inside the 64 KiB message limit: an answer, not an RPC error.
    ['a 32 KB string', () => 'a'.repeat(32 * 1024), R.VERIFY_FAILURE_REASON_MALFORMED],
    ['binary junk in three segments', () => '\u0000\u0001.\uffff.\ud800', R.VERIFY_FAILURE_REASON_MALFORMED],
  ];
  for (const [name, make, reason, audience, scopes] of cases) {
    it(`answers ${R[reason]} for ${name}`, async () => {
      assert.equal(R[await reasonOf(make(), audience ?? '', scopes ?? [])], R[reason]);
    });
  }

  it('refuses a 1 MB token at the transport (RESOURCE_EXHAUSTED: TA_MAX_MESSAGE_BYTES) without buffering it', async () => {
    // No valid request comes near 64 KiB; refusing on the frame header keeps a hostile client from
    // making the server hold megabytes per stream. The library and the sidecar answer MALFORMED.
    await expectStatus(ta.client.verify({ token: 'a'.repeat(1024 * 1024), audience: 'orders' }), status.RESOURCE_EXHAUSTED, /larger than max/);
    assert.equal((await ta.client.verify({ token: signed(), audience: 'orders' })).valid, true, 'the server is fine afterwards');
  });

  it('answers REVOKED after Revoke of the token', async () => {
    const issued = await ta.client.issue({ subject: 'carol', audience: ['orders'] });
    const r = await ta.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
    assert.ok(r.sequence > 0);
    assert.equal(R[await reasonOf(issued.accessToken)], 'VERIFY_FAILURE_REASON_REVOKED');
  });
});

describe('authority Issue: input validation', () => {
  let ta: TestAuthority;
  before(async () => {
    ta = await startTestAuthority({ TA_ALLOWED_AUDIENCES: 'orders,billing', TA_MAX_ACCESS_TTL: '10m', TA_ACCESS_TTL: '5m' });
  });
  after(() => ta.close());

  it('rejects an empty subject with INVALID_ARGUMENT naming the field', async () => {
    await expectStatus(ta.client.issue({ subject: '', audience: ['orders'] }), status.INVALID_ARGUMENT, 'subject is required');
  });
  it('rejects a missing audience', async () => {
    await expectStatus(ta.client.issue({ subject: 'a', audience: [] }), status.INVALID_ARGUMENT, 'audience');
  });
  it('rejects an audience that is not allowed with PERMISSION_DENIED', async () => {
    await expectStatus(ta.client.issue({ subject: 'a', audience: ['payroll'] }), status.PERMISSION_DENIED, 'audience "payroll" is not allowed');
  });
  it('rejects reserved claim names in extra claims', async () => {
    await expectStatus(ta.client.issue({ subject: 'a', audience: ['orders'], extraClaims: { sub: 'root' } }), status.INVALID_ARGUMENT, '"sub" is a reserved claim');
    await expectStatus(ta.client.issue({ subject: 'a', audience: ['orders'], extraClaims: { gen: '0' } }), status.INVALID_ARGUMENT, 'reserved');
  });
  it('rejects oversized extra claims', async () => {
    await expectStatus(ta.client.issue({ subject: 'a', audience: ['orders'], extraClaims: { blob: 'x'.repeat(5000) } }), status.INVALID_ARGUMENT, 'bytes in total');
  });
  it('rejects a subject over 256 bytes and scopes with spaces', async () => {
    await expectStatus(ta.client.issue({ subject: 'x'.repeat(257), audience: ['orders'] }), status.INVALID_ARGUMENT, 'longer than 256');
    await expectStatus(ta.client.issue({ subject: 'a', audience: ['orders'], scopes: ['read write'] }), status.INVALID_ARGUMENT, 'scopes[0]');
  });
  it('caps a requested TTL at the configured maximum and honours a shorter one', async () => {
    const t0 = Date.now();
    const long = await ta.client.issue({ subject: 'a', audience: ['orders'], accessTtlSeconds: 86_400 });
    const lifetime = long.accessExpiresAt!.getTime() - t0;
    assert.ok(lifetime <= 10 * 60_000 + 1000 && lifetime >= 10 * 60_000 - 2000, `capped lifetime was ${lifetime}ms`);
    const short = await ta.client.issue({ subject: 'a', audience: ['orders'], accessTtlSeconds: 60 });
    assert.ok(short.accessExpiresAt!.getTime() - t0 <= 61_000);
  });
  it('refuses a request whose token would be longer than verifiers accept, before storing anything', async () => {
    const audience = Array.from({ length: 2 }, (_, i) => (i === 0 ? 'orders' : 'billing'));
    const scopes = Array.from({ length: 64 }, (_, i) => `scope-${i}-${'s'.repeat(100)}`);
    const extraClaims = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`c${i}`, 'x'.repeat(450)]));
    await expectStatus(ta.client.issue({ subject: 'big', audience, scopes, extraClaims }), status.INVALID_ARGUMENT, /the access token would be about \d+ bytes, more than the 8192 verifiers accept/);
    const fits = await ta.client.issue({ subject: 'big', audience, scopes: scopes.slice(0, 8), extraClaims: { c0: 'x'.repeat(450) } });
    assert.equal((await ta.client.verify({ token: fits.accessToken })).valid, true, 'a large token under the limit verifies');
  });

  it('rejects Revoke without a target', async () => {
    await expectStatus(ta.client.revoke({}), status.INVALID_ARGUMENT, 'one of token, session_id, subject or token_id');
  });
});
