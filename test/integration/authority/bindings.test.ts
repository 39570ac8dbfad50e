import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { VerifyFailureReason, type IssueResponse } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { redisKeys } from '../../../src/store/redis-schema.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { forgeDpopProof, generateDpopKey, type DpopKey } from '../../helpers/dpop-forge.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { createPki, type CertFiles, type Pki } from '../../helpers/pki.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const R = VerifyFailureReason;
/** The token endpoint URL of TEST_ISSUER's RFC 8414 metadata: the `htu` of Refresh proofs. */
const TOKEN_ENDPOINT = `${TEST_ISSUER}/oauth2/token`;
/** The resource the access-token proofs are made for. */
const RESOURCE = 'https://api.test/orders/42';

const der = (c: CertFiles) => Buffer.from(new X509Certificate(c.certPem).raw);
/** RFC 8705 §3.1, computed here independently of the code under test. */
const x5t = (c: CertFiles) => createHash('sha256').update(der(c)).digest('base64url');

/**
 * Issue, Verify and Refresh of sender-constrained tokens over a real authority's gRPC API (and a
 * real Redis, which a writer edits directly to strip or change a session's binding).
 */
describe('sender-constrained tokens at the authority: Issue, Verify, Refresh (gRPC)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let admin: Redis;
  let ta: TestAuthority;
  let pki: Pki;
  let alice: CertFiles;
  let mallory: CertFiles;
  let key: DpopKey;
  let otherKey: DpopKey;

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
    pki = createPki();
    const ca = pki.createCa('bind-ca');
    alice = ca.issue('alice', { san: ['URI:spiffe://corp/alice'] });
    mallory = ca.issue('mallory', { san: ['URI:spiffe://corp/alice'] });
    [key, otherKey] = await Promise.all([generateDpopKey('ES256'), generateDpopKey('EdDSA')]);
  });
  after(async () => {
    admin?.disconnect();
    await ta?.close();
    await redis?.stop();
    pki?.cleanup();
  });

  const issue = (confirmation: { x5tS256: string } | { jkt: string } | undefined, subject = 'alice') =>
    ta.client.issue({ subject, audience: ['orders'], scopes: ['read'], ...(confirmation ? { confirmation: { binding: 'x5tS256' in confirmation ? { $case: 'x5tS256', x5tS256: confirmation.x5tS256 } : { $case: 'jkt', jkt: confirmation.jkt } } } : {}) });
  const errorCode = (err: { metadata: { get(k: string): unknown[] } }) => err.metadata.get('ta-error-code')[0];
  const proofFor = (token: string, k: DpopKey = key, method = 'GET', uri = RESOURCE) => forgeDpopProof({ key: k, method, uri, accessToken: token });
  const refreshProof = (k: DpopKey = key, extra: { uri?: string; method?: string } = {}) => forgeDpopProof({ key: k, method: extra.method ?? 'POST', uri: extra.uri ?? TOKEN_ENDPOINT });

  describe('Issue', () => {
    it('puts the binding into the token as RFC 7800 cnf, x5t#S256 or jkt', async () => {
      const byCert = await issue({ x5tS256: x5t(alice) });
      assert.deepEqual(decodeJwt(byCert.accessToken).cnf, { 'x5t#S256': x5t(alice) });
      const byKey = await issue({ jkt: key.jkt });
      assert.deepEqual(decodeJwt(byKey.accessToken).cnf, { jkt: key.jkt });
      assert.equal(decodeJwt((await issue(undefined)).accessToken).cnf, undefined, 'no confirmation: a bearer token as before');
    });

    it('refuses a thumbprint that is not 43 base64url characters of 32 bytes (INVALID_ARGUMENT naming the field)', async () => {
      const good = key.jkt;
      for (const bad of ['', good.slice(1), `${good}A`, `${good.slice(0, 42)}+`, `${good.slice(0, 42)}=`, Buffer.alloc(32).toString('base64')]) {
        await expectStatus(issue({ jkt: bad }), status.INVALID_ARGUMENT, 'confirmation.jkt');
      }
      // 43 characters whose last one carries bits beyond 32 bytes: not a canonical encoding.
      const nonCanonical = `${x5t(alice).slice(0, 42)}${x5t(alice).endsWith('B') ? 'C' : 'B'}`;
      if (Buffer.from(nonCanonical, 'base64url').toString('base64url') !== nonCanonical) await expectStatus(issue({ x5tS256: nonCanonical }), status.INVALID_ARGUMENT, 'confirmation.x5t_s256');
      await expectStatus(issue({ x5tS256: 'not-a-thumbprint' }), status.INVALID_ARGUMENT, 'confirmation.x5t_s256');
      await expectStatus(ta.client.issue({ subject: 'alice', audience: ['orders'], confirmation: { binding: undefined } }), status.INVALID_ARGUMENT, 'names neither x5t_s256 nor jkt');
    });

    it('the cnf claim cannot be set as an extra claim', async () => {
      await expectStatus(ta.client.issue({ subject: 'alice', audience: ['orders'], extraClaims: { cnf: '{"jkt":"x"}' } }), status.INVALID_ARGUMENT, 'reserved');
    });

    it('independent clients (jose, from the JWKS) still verify unbound and bound tokens alike: the signature is the same', async () => {
      const jwks = createRemoteJWKSet(new URL(`${ta.httpBase}/.well-known/jwks.json`));
      for (const t of [await issue(undefined), await issue({ jkt: key.jkt })]) {
        const { payload } = await jwtVerify(t.accessToken, jwks, { issuer: TEST_ISSUER, audience: 'orders', typ: 'at+jwt' });
        assert.equal(payload.sub, 'alice');
      }
    });
  });

  describe('Verify', () => {
    it('a certificate-bound token: valid only with that certificate (DER or PEM); claims.confirmation reports the binding', async () => {
      const t = (await issue({ x5tS256: x5t(alice) })).accessToken;
      const missing = await ta.client.verify({ token: t, audience: 'orders' });
      assert.equal(missing.valid, false);
      assert.equal(missing.reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH, missing.detail);
      const wrong = await ta.client.verify({ token: t, audience: 'orders', clientCertificate: der(mallory) });
      assert.equal(wrong.reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH, 'another certificate with the same identity does not do');
      for (const cert of [der(alice), alice.certPem]) {
        const ok = await ta.client.verify({ token: t, audience: 'orders', clientCertificate: cert });
        assert.equal(ok.valid, true, ok.detail);
        assert.deepEqual(ok.claims?.confirmation, { binding: { $case: 'x5tS256', x5tS256: x5t(alice) } });
      }
      assert.equal((await ta.client.verify({ token: t, clientCertificate: Buffer.from('garbage') })).reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
    });

    it('a DPoP-bound token: valid with a fresh proof by its key for the request; each failure has its reason', async () => {
      const t = (await issue({ jkt: key.jkt })).accessToken;
      const verify = (dpop: { proof: string; method?: string; uri?: string } | undefined) =>
        ta.client.verify({ token: t, audience: 'orders', ...(dpop ? { dpopProof: dpop.proof, httpMethod: dpop.method ?? 'GET', httpUri: dpop.uri ?? RESOURCE } : {}) });
      const proof = proofFor(t);
      const ok = await verify({ proof });
      assert.equal(ok.valid, true, ok.detail);
      assert.deepEqual(ok.claims?.confirmation, { binding: { $case: 'jkt', jkt: key.jkt } });
      // The URI compares scheme, host (any case), port and path; the query is ignored.
      assert.equal((await verify({ proof: proofFor(t), uri: 'https://API.test:443/orders/42?x=1' })).valid, true);

      const cases: Array<[string, { proof: string; method?: string; uri?: string } | undefined, VerifyFailureReason]> = [
        ['no proof', undefined, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH],
        ['a replay of an accepted proof', { proof }, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF],
        ['a proof by another key', { proof: proofFor(t, otherKey) }, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH],
        ['another method', { proof: proofFor(t), method: 'POST' }, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF],
        ['another URI', { proof: proofFor(t), uri: 'https://api.test/orders/43' }, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF],
        ['a proof for another token', { proof: forgeDpopProof({ key, method: 'GET', uri: RESOURCE, accessToken: `${t}x` }) }, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF],
        ['a stale proof', { proof: forgeDpopProof({ key, method: 'GET', uri: RESOURCE, accessToken: t, iatSec: Math.floor(Date.now() / 1000) - 3600 }) }, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF],
        ['garbage', { proof: 'not.a.proof' }, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF],
      ];
      for (const [name, dpop, reason] of cases) {
        const r = await verify(dpop);
        assert.equal(r.valid, false, name);
        assert.equal(r.reason, reason, `${name}: ${r.detail}`);
        assert.ok(r.detail.length > 0, name);
      }
    });

    it('refuses a proof without the request it is for (INVALID_ARGUMENT), and leaves unbound tokens as they were', async () => {
      const t = (await issue({ jkt: key.jkt })).accessToken;
      await expectStatus(ta.client.verify({ token: t, dpopProof: proofFor(t) }), status.INVALID_ARGUMENT, 'http_method and http_uri');
      const plain = (await issue(undefined)).accessToken;
      const r = await ta.client.verify({ token: plain, audience: 'orders', clientCertificate: der(alice) });
      assert.equal(r.valid, true, 'a certificate given with an unbound token is not looked at');
      assert.equal(r.claims?.confirmation, undefined);
      const withProof = await ta.client.verify({ token: plain, dpopProof: proofFor(plain), httpMethod: 'GET', httpUri: RESOURCE });
      assert.equal(withProof.reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH, 'a DPoP proof with an unbound token is the DPoP scheme with an unbound token');
    });
  });

  describe('Refresh', () => {
    it('keeps a certificate binding without a certificate on the call', async () => {
      const issued = await issue({ x5tS256: x5t(alice) });
      const next = await ta.client.refresh({ refreshToken: issued.refreshToken });
      assert.deepEqual(decodeJwt(next.accessToken).cnf, { 'x5t#S256': x5t(alice) });
      assert.equal((await ta.client.verify({ token: next.accessToken, clientCertificate: der(alice) })).valid, true);
      assert.equal((await ta.client.verify({ token: next.accessToken })).reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
    });

    it('a DPoP-bound session refreshes only with a proof by its key for POST <token endpoint>; refusals spend nothing', async () => {
      const issued = await issue({ jkt: key.jkt });
      const refused = async (dpopProof: string | undefined, includes: string) => {
        const err = await expectStatus(ta.client.refresh({ refreshToken: issued.refreshToken, ...(dpopProof !== undefined ? { dpopProof } : {}) }), status.UNAUTHENTICATED, includes);
        assert.equal(errorCode(err), 'ERR_DPOP_PROOF_INVALID');
      };
      await refused(undefined, 'bound to a DPoP key');
      await refused(refreshProof(otherKey), 'another key');
      await refused(refreshProof(key, { method: 'GET' }), 'htm');
      await refused(refreshProof(key, { uri: `${TEST_ISSUER}/oauth2/introspect` }), 'htu');
      await refused(refreshProof(key, { uri: 'https://elsewhere.test/oauth2/token' }), 'htu');
      await refused(forgeDpopProof({ key, method: 'POST', uri: TOKEN_ENDPOINT, iatSec: Math.floor(Date.now() / 1000) - 600 }), 'iat');
      await refused('garbage', 'not valid');

      // None of those spent the refresh token: the holder of the key still refreshes (no reuse detection).
      const good = refreshProof();
      const next = await ta.client.refresh({ refreshToken: issued.refreshToken, dpopProof: good });
      assert.deepEqual(decodeJwt(next.accessToken).cnf, { jkt: key.jkt });
      assert.equal(next.sessionId, issued.sessionId);
      // A proof is single-use: replaying it with the successor is refused.
      await expectStatus(ta.client.refresh({ refreshToken: next.refreshToken, dpopProof: good }), status.UNAUTHENTICATED, 'replay');
      const third = await ta.client.refresh({ refreshToken: next.refreshToken, dpopProof: refreshProof() });
      assert.deepEqual(decodeJwt(third.accessToken).cnf, { jkt: key.jkt });
    });

    it('a thief holding a spent refresh token but not the key cannot trigger reuse detection; the key holder can', async () => {
      const issued = await issue({ jkt: key.jkt });
      const next = await ta.client.refresh({ refreshToken: issued.refreshToken, dpopProof: refreshProof() });
      await expectStatus(ta.client.refresh({ refreshToken: issued.refreshToken, dpopProof: refreshProof(otherKey) }), status.UNAUTHENTICATED, 'another key');
      assert.equal((await ta.client.verify({ token: next.accessToken, dpopProof: proofFor(next.accessToken), httpMethod: 'GET', httpUri: RESOURCE })).valid, true, 'the session lives on');
      const err = await expectStatus(ta.client.refresh({ refreshToken: issued.refreshToken, dpopProof: refreshProof() }), status.UNAUTHENTICATED);
      assert.equal(errorCode(err), 'ERR_REFRESH_REUSED');
    });

    it('an unbound session stays unbound with a valid proof; an invalid proof is refused all the same', async () => {
      const issued = await issue(undefined);
      await expectStatus(ta.client.refresh({ refreshToken: issued.refreshToken, dpopProof: 'garbage' }), status.UNAUTHENTICATED, 'DPoP proof');
      const next = await ta.client.refresh({ refreshToken: issued.refreshToken, dpopProof: refreshProof() });
      assert.equal(decodeJwt(next.accessToken).cnf, undefined);
    });
  });

  describe('TA_DPOP_REPLAY_SCOPE: authority replicas share their Verify replay protection', () => {
    let keyDir: string;
    let a: TestAuthority;
    let b: TestAuthority;
    let loner: TestAuthority;
    before(async () => {
      keyDir = await mkdtemp(join(tmpdir(), 'ta-bind-keys-'));
      a = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir, TA_DPOP_REPLAY_SCOPE: 'authority' });
      [b, loner] = await Promise.all([
        startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir, TA_DPOP_REPLAY_SCOPE: 'authority' }),
        startTestAuthority({ TA_REDIS_URL: redis.url, TA_KEY_DIR: keyDir }),
      ]);
    });
    after(async () => {
      await Promise.all([a?.close(), b?.close(), loner?.close()]);
      if (keyDir) await rm(keyDir, { recursive: true, force: true });
    });

    it('a proof accepted by one replica\'s Verify is a replay at the other; a replica without the setting keeps its own', async () => {
      const t = (await a.client.issue({ subject: 'alice', audience: ['orders'], confirmation: { binding: { $case: 'jkt', jkt: key.jkt } } })).accessToken;
      const req = { token: t, dpopProof: proofFor(t), httpMethod: 'GET', httpUri: RESOURCE };
      assert.equal((await a.client.verify(req)).valid, true);
      const replay = await b.client.verify(req);
      assert.equal(replay.reason, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF, replay.detail);
      assert.equal((await loner.client.verify(req)).valid, true);
    });

    it('the setting needs TA_REDIS_URL', async () => {
      await assert.rejects(startTestAuthority({ TA_DPOP_REPLAY_SCOPE: 'authority' }), /TA_DPOP_REPLAY_SCOPE.*TA_REDIS_URL/s);
    });
  });

  describe('a Redis writer cannot strip or change a session\'s binding', () => {
    const k = redisKeys();
    /** The session's constraints as stored (the `constraints` field of its hash; absent = none). */
    async function constraintsOf(issued: IssueResponse): Promise<Record<string, unknown>> {
      return JSON.parse((await admin.hget(k.session(issued.sessionId), 'constraints')) ?? '{}') as Record<string, unknown>;
    }
    async function editConstraints(issued: IssueResponse, edit: (constraints: Record<string, unknown>) => void): Promise<void> {
      const constraints = await constraintsOf(issued);
      edit(constraints);
      await admin.hset(k.session(issued.sessionId), 'constraints', JSON.stringify(constraints));
    }
    async function refusedAsTampered(refreshToken: string, dpopProof?: string): Promise<void> {
      const err = await expectStatus(ta.client.refresh({ refreshToken, ...(dpopProof ? { dpopProof } : {}) }), status.UNAUTHENTICATED, 'integrity');
      assert.equal(errorCode(err), 'ERR_REFRESH_INVALID');
    }

    it('the binding is stored with the session, under the seal', async () => {
      const issued = await issue({ jkt: key.jkt });
      assert.deepEqual((await constraintsOf(issued)).confirmation, { jkt: key.jkt });
      assert.match((await admin.hget(k.session(issued.sessionId), 'seal')) ?? '', /^v2\./, 'sealed');
    });

    it('stripped: Refresh refuses the session instead of minting a bearer token', async () => {
      for (const binding of [{ jkt: key.jkt }, { x5tS256: x5t(alice) }]) {
        const issued = await issue(binding);
        await editConstraints(issued, (c) => delete c.confirmation);
        await refusedAsTampered(issued.refreshToken, refreshProof());
      }
    });

    it('changed to the attacker\'s key or certificate: refused', async () => {
      const byKey = await issue({ jkt: key.jkt });
      await editConstraints(byKey, (c) => (c.confirmation = { jkt: otherKey.jkt }));
      await refusedAsTampered(byKey.refreshToken, refreshProof(otherKey));
      const byCert = await issue({ x5tS256: x5t(alice) });
      await editConstraints(byCert, (c) => (c.confirmation = { x5tS256: x5t(mallory) }));
      await refusedAsTampered(byCert.refreshToken);
      const swapped = await issue({ jkt: key.jkt });
      await editConstraints(swapped, (c) => (c.confirmation = { x5tS256: x5t(mallory) }));
      await refusedAsTampered(swapped.refreshToken);
    });

    it('added to an unbound session: refused too (the seal covers the absence)', async () => {
      const issued = await issue(undefined);
      await editConstraints(issued, (c) => (c.confirmation = { jkt: otherKey.jkt }));
      await refusedAsTampered(issued.refreshToken, refreshProof(otherKey));
    });
  });
});
