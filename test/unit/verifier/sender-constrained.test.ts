import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { ManualClock } from '../../../src/shared/clock.js';
import type { VerifyRequirements, VerifyResult } from '../../../src/shared/claims.js';
import { createInternalVerifier, createVerifier, type VerifierOptions } from '../../../src/verifier/create-verifier.js';
import type { DpopReplayCache } from '../../../src/verifier/dpop-replay-cache.js';
import { createStaticKeyResolver } from '../../../src/verifier/key-resolvers.js';
import { forgeDpopProof, generateDpopKey, type DpopKey } from '../../helpers/dpop-forge.js';
import { createPki, type Pki } from '../../helpers/pki.js';
import { accessPayload, forgeToken, generateTestKey } from '../../helpers/token-forge.js';

const ISSUER = 'https://issuer.test';
const URI = 'https://api.test/orders';
const outcome = (r: VerifyResult) => (r.valid ? 'VALID' : r.reason);
const explain = (r: VerifyResult) => (r.valid ? 'VALID' : `${r.reason}: ${r.detail}`);

describe('createVerifier with sender-constrained tokens (RFC 8705 mTLS, RFC 9449 DPoP)', () => {
  const issuerKey = generateTestKey('ES256');
  let pki: Pki;
  let certPem: string;
  let certDer: Buffer;
  let otherCertPem: string;
  let x5t: string;
  let dpopKey: DpopKey;
  let otherDpopKey: DpopKey;
  let clock: ManualClock;
  before(async () => {
    pki = createPki();
    const ca = pki.createCa('ca');
    certPem = ca.issue('client', { cn: 'client-1' }).certPem.toString('utf8');
    otherCertPem = ca.issue('other', { cn: 'client-2' }).certPem.toString('utf8');
    certDer = new X509Certificate(certPem).raw;
    x5t = createHash('sha256').update(certDer).digest('base64url');
    dpopKey = await generateDpopKey('ES256');
    otherDpopKey = await generateDpopKey('EdDSA');
  });
  after(() => pki.cleanup());
  beforeEach(() => {
    clock = new ManualClock(Date.now());
  });
  const nowSec = () => Math.floor(clock.nowMs() / 1000);
  const verifier = (o: Partial<VerifierOptions> = {}) => createVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([issuerKey.verificationKey]), clock, ...o });
  const token = (cnf?: unknown) => forgeToken({ key: issuerKey, payload: accessPayload({ iss: ISSUER, nowSec: nowSec(), cnf }) });
  const proof = (accessToken: string, o: Partial<Parameters<typeof forgeDpopProof>[0]> = {}) =>
    forgeDpopProof({ key: dpopKey, method: 'GET', uri: URI, accessToken, iatSec: nowSec(), ...o });
  const dpop = (accessToken: string, o: Partial<Parameters<typeof forgeDpopProof>[0]> = {}) => ({ proof: proof(accessToken, o), method: 'GET', uri: URI });

  describe('the cnf claim', () => {
    it('exposes the binding as claims.confirmation and keeps cnf out of extra', () => {
      const v = verifier();
      const r1 = v.verifySync(token({ 'x5t#S256': x5t }), { clientCertificate: certDer });
      assert.ok(r1.valid, explain(r1));
      assert.deepEqual(r1.claims.confirmation, { x5tS256: x5t });
      assert.equal('cnf' in r1.claims.extra, false);
      const t = token({ jkt: dpopKey.jkt });
      const r2 = v.verifySync(t, { dpop: dpop(t) });
      assert.ok(r2.valid, explain(r2));
      assert.deepEqual(r2.claims.confirmation, { jkt: dpopKey.jkt });
      const r3 = v.verifySync(token());
      assert.ok(r3.valid);
      assert.equal(r3.claims.confirmation, undefined);
      assert.equal('confirmation' in r3.claims, false, 'an unbound token has no confirmation member at all');
    });

    const malformed: Array<[string, unknown]> = [
      ['a string', 'jkt'],
      ['a thumbprint-like string (must not land in extra)', 'A'.repeat(43)],
      ['an array', [{ jkt: 'x' }]],
      ['empty', {}],
      ['both methods', { 'x5t#S256': 'A'.repeat(43), jkt: 'A'.repeat(43) }],
      ['an unknown method (jwk)', { jwk: { kty: 'EC' } }],
      ['x5t (SHA-1) instead of x5t#S256', { x5t: 'A'.repeat(27) }],
      ['a non-string jkt', { jkt: 42 }],
      ['a jkt of the wrong length', { jkt: 'A'.repeat(42) }],
      ['a jkt with non-canonical last character', { jkt: `${'A'.repeat(42)}B` }],
      ['a jkt with padding', { jkt: `${'A'.repeat(42)}=` }],
    ];
    for (const [name, cnf] of malformed) {
      it(`cnf that is ${name}: MALFORMED`, () => {
        const r = verifier().verifySync(token(cnf), { clientCertificate: certDer });
        assert.equal(outcome(r), 'MALFORMED', explain(r));
        assert.match(r.valid ? '' : r.detail, /claim cnf/);
      });
    }
  });

  describe('x5t#S256 (mTLS-bound)', () => {
    it('valid with its certificate as DER, PEM or thumbprint; BINDING_MISMATCH without it or with another', () => {
      const v = verifier();
      const t = token({ 'x5t#S256': x5t });
      for (const cert of [certDer, new Uint8Array(certDer), certPem, { x5tS256: x5t }]) {
        const r = v.verifySync(t, { clientCertificate: cert });
        assert.ok(r.valid, explain(r));
      }
      const cases: Array<[VerifyRequirements, RegExp]> = [
        [{}, /none was presented/],
        [{ clientCertificate: otherCertPem }, /bound to another client certificate/],
        [{ clientCertificate: { x5tS256: 'B'.repeat(43) } }, /another client certificate/],
        [{ clientCertificate: 'not a certificate' }, /neither DER, PEM nor a thumbprint/],
        [{ clientCertificate: null as unknown as string }, /neither DER, PEM nor a thumbprint/],
        [{ clientCertificate: certDer, dpop: dpop(t) }, /DPoP scheme was used with a certificate-bound token/],
        [{ clientCertificate: certDer, scheme: 'DPoP' }, /DPoP scheme/],
      ];
      for (const [req, detail] of cases) {
        const r = v.verifySync(t, req);
        assert.equal(outcome(r), 'BINDING_MISMATCH', explain(r));
        assert.match(r.valid ? '' : r.detail, detail);
      }
      // explicit Bearer with a stray proof: a bearer request, the certificate decides
      assert.ok(v.verifySync(t, { clientCertificate: certDer, scheme: 'Bearer', dpop: dpop(t) }).valid);
    });

    it('the binding is checked on every call, also when the signature result is cached', () => {
      const v = verifier();
      const t = token({ 'x5t#S256': x5t });
      assert.ok(v.verifySync(t, { clientCertificate: certDer }).valid);
      assert.equal(outcome(v.verifySync(t)), 'BINDING_MISMATCH');
      assert.equal(outcome(v.verifySync(t, { clientCertificate: otherCertPem })), 'BINDING_MISMATCH');
      assert.ok(v.verifySync(t, { clientCertificate: certPem }).valid);
      assert.ok(v.status().cache.hits >= 3, 'the later calls were cache hits');
    });
  });

  describe('jkt (DPoP-bound)', () => {
    it('valid with a proof by the bound key for this request and token, through verify and verifySync', async () => {
      const v = verifier();
      const t = token({ jkt: dpopKey.jkt });
      assert.ok(v.verifySync(t, { dpop: dpop(t) }).valid);
      const r = await v.verify(t, { dpop: dpop(t), scheme: 'DPoP', audience: 'api' });
      assert.ok(r.valid, explain(r));
    });

    const rejections: Array<[string, (t: string) => VerifyRequirements, string, RegExp]> = [
      ['no proof', () => ({}), 'BINDING_MISMATCH', /no DPoP proof was presented/],
      ['no proof, DPoP scheme', () => ({ scheme: 'DPoP' }), 'BINDING_MISMATCH', /no DPoP proof/],
      ['presented as Bearer, even with a good proof (RFC 9449 §7.2)', (t) => ({ scheme: 'Bearer', dpop: dpop(t) }), 'BINDING_MISMATCH', /presented with the Bearer scheme/],
      ['a proof by another key', (t) => ({ dpop: { proof: proof(t, { key: otherDpopKey }), method: 'GET', uri: URI } }), 'BINDING_MISMATCH', /signed by a key other than/],
      ['a certificate instead of a proof', () => ({ clientCertificate: certDer }), 'BINDING_MISMATCH', /no DPoP proof/],
      ['a proof for another token', (t) => ({ dpop: dpop(`${t}x`) }), 'INVALID_DPOP_PROOF', /ath/],
      ['a proof for another method', (t) => ({ dpop: { ...dpop(t), method: 'DELETE' } }), 'INVALID_DPOP_PROOF', /htm/],
      ['a proof for another URI', (t) => ({ dpop: { ...dpop(t), uri: 'https://api.test/admin' } }), 'INVALID_DPOP_PROOF', /htu/],
      ['a stale proof', (t) => ({ dpop: dpop(t, { iatSec: nowSec() - 61 }) }), 'INVALID_DPOP_PROOF', /older than the 60 s/],
      ['a proof from the future', (t) => ({ dpop: dpop(t, { iatSec: nowSec() + 31 }) }), 'INVALID_DPOP_PROOF', /future/],
      ['an empty proof', () => ({ dpop: { proof: '', method: 'GET', uri: URI } }), 'INVALID_DPOP_PROOF', /missing/],
      ['dpop null (JavaScript caller): no proof', () => ({ dpop: null as unknown as undefined }), 'BINDING_MISMATCH', /no DPoP proof/],
      ['dpop a string (JavaScript caller)', (t) => ({ dpop: dpop(t).proof as unknown as undefined }), 'INVALID_DPOP_PROOF', /dpop must be/],
      ['dpop without method and uri (JavaScript caller)', (t) => ({ dpop: { proof: dpop(t).proof } as unknown as undefined }), 'INVALID_DPOP_PROOF', /htm/],
    ];
    for (const [name, req, reason, detail] of rejections) {
      it(`${reason}: ${name}`, () => {
        const t = token({ jkt: dpopKey.jkt });
        const r = verifier().verifySync(t, req(t));
        assert.equal(outcome(r), reason, explain(r));
        assert.match(r.valid ? '' : r.detail, detail);
      });
    }

    it('each proof is accepted once per verifier (verify and verifySync share the replay cache); another verifier has its own', async () => {
      const a = verifier();
      const b = verifier();
      const t = token({ jkt: dpopKey.jkt });
      const d = dpop(t);
      assert.ok(a.verifySync(t, { dpop: d }).valid);
      assert.match(explain(a.verifySync(t, { dpop: d })), /INVALID_DPOP_PROOF: proof jti was already used/);
      assert.match(explain(await a.verify(t, { dpop: d })), /already used/);
      assert.ok(b.verifySync(t, { dpop: d }).valid, 'single-use is per verifier without a shared cache');
      assert.ok(a.verifySync(t, { dpop: dpop(t) }).valid, 'a fresh proof passes');
      assert.equal(a.status().dpopReplay.replays, 2);
    });

    it('dpopWindowMs sets the window', () => {
      const v = verifier({ dpopWindowMs: 10_000 });
      const t = token({ jkt: dpopKey.jkt });
      assert.ok(v.verifySync(t, { dpop: dpop(t, { iatSec: nowSec() - 10 }) }).valid);
      assert.match(explain(v.verifySync(t, { dpop: dpop(t, { iatSec: nowSec() - 11 }) })), /older than the 10 s DPoP window/);
      assert.throws(() => verifier({ dpopWindowMs: 10 }), /dpopWindowMs/);
      assert.throws(() => verifier({ dpopReplayCache: {} as DpopReplayCache }), /dpopReplayCache must have a claim/);
      assert.throws(() => verifier({ dpopReplayCacheSize: 0 }), /dpopReplayCacheSize must be a positive integer/);
    });

    it('a full replay cache refuses new proofs rather than forgetting unexpired ones', () => {
      const v = verifier({ dpopReplayCacheSize: 2 });
      const t = token({ jkt: dpopKey.jkt });
      assert.ok(v.verifySync(t, { dpop: dpop(t) }).valid);
      assert.ok(v.verifySync(t, { dpop: dpop(t) }).valid);
      assert.match(explain(v.verifySync(t, { dpop: dpop(t) })), /INVALID_DPOP_PROOF: the DPoP replay cache is full/);
      clock.advance(62_000);
      const later = token({ jkt: dpopKey.jkt });
      assert.ok(v.verifySync(later, { dpop: dpop(later) }).valid, 'expired ids make room');
      assert.equal(v.status().dpopReplay.refusedFull, 1);
    });

    it('a shared replay cache: verify() claims in it (after the own cache), verifySync() answers from its own and records in it', async () => {
      const held = new Set<string>();
      const claims: string[] = [];
      const shared: DpopReplayCache = { claim: async (id) => { claims.push(id); return held.has(id) ? 'replayed' : (held.add(id), 'fresh'); } };
      const a = verifier({ dpopReplayCache: shared });
      const b = verifier({ dpopReplayCache: shared });
      const t = token({ jkt: dpopKey.jkt });
      const d = dpop(t);
      assert.ok((await a.verify(t, { dpop: d })).valid);
      assert.match(explain(await b.verify(t, { dpop: d })), /already used/, 'the replica sharing the cache refuses it');
      assert.equal(claims.length, 2);
      const d2 = dpop(t);
      assert.ok(a.verifySync(t, { dpop: d2 }).valid);
      assert.equal(claims.length, 3, 'verifySync recorded the proof in the shared cache (without waiting for it)');
      assert.match(explain(await a.verify(t, { dpop: d2 })), /already used/, 'verify() sees what verifySync() accepted');
      assert.equal(claims.length, 3, 'the own cache answered first');
      assert.match(explain(await b.verify(t, { dpop: d2 })), /already used/, 'the other replica refuses what verifySync accepted');
      const failing = verifier({ dpopReplayCache: { claim: () => { throw new Error('down'); } } });
      assert.ok(failing.verifySync(t, { dpop: dpop(t) }).valid, 'verifySync answers from its own cache even when the shared one throws');
    });

    it('the internal verifyNow answers a DPoP-bound token synchronously without a shared cache, with a promise with one', async () => {
      const t = token({ jkt: dpopKey.jkt });
      const local = createInternalVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([issuerKey.verificationKey]), clock });
      const r = local.verifyNow(t, { dpop: dpop(t) });
      assert.equal(r instanceof Promise, false);
      const withShared = createInternalVerifier({ issuer: ISSUER, keys: createStaticKeyResolver([issuerKey.verificationKey]), clock, dpopReplayCache: { claim: async () => 'fresh' as const } });
      const p = withShared.verifyNow(t, { dpop: dpop(t) });
      assert.ok(p instanceof Promise);
      assert.ok((await p).valid);
      assert.equal(withShared.status().outcomes.valid, 1, 'an asynchronous answer is counted once');
    });

    it('a failing shared replay cache refuses the proof (fail closed)', async () => {
      const v = verifier({ dpopReplayCache: { claim: async () => { throw new Error('down'); } } });
      const t = token({ jkt: dpopKey.jkt });
      assert.match(explain(await v.verify(t, { dpop: dpop(t) })), /INVALID_DPOP_PROOF: the DPoP replay cache did not answer/);
    });

    it('the binding is checked on every call, also when the signature result is cached', () => {
      const v = verifier();
      const t = token({ jkt: dpopKey.jkt });
      assert.ok(v.verifySync(t, { dpop: dpop(t) }).valid);
      assert.equal(outcome(v.verifySync(t)), 'BINDING_MISMATCH');
      assert.equal(outcome(v.verifySync(t, { dpop: dpop(t, { method: 'POST' }) })), 'INVALID_DPOP_PROOF');
      assert.ok(v.status().cache.hits >= 2);
    });

    it('the other checks run first: an expired DPoP-bound token is EXPIRED and its proof is not consumed', () => {
      const v = verifier();
      const t = forgeToken({ key: issuerKey, payload: accessPayload({ iss: ISSUER, nowSec: nowSec() - 600, ttlSec: 300, cnf: { jkt: dpopKey.jkt } }) });
      assert.equal(outcome(v.verifySync(t, { dpop: dpop(t) })), 'EXPIRED');
      assert.equal(v.status().dpopReplay.size, 0);
    });
  });

  describe('unbound tokens', () => {
    it('verify as before with no binding inputs, and ignore a certificate', () => {
      const v = verifier();
      const t = token();
      assert.ok(v.verifySync(t).valid);
      assert.ok(v.verifySync(t, { clientCertificate: certDer }).valid);
      assert.ok(v.verifySync(t, { scheme: 'Bearer' }).valid);
    });

    it('the DPoP scheme with an unbound token is BINDING_MISMATCH (explicit, or inferred from a proof)', () => {
      const v = verifier();
      const t = token();
      for (const req of [{ scheme: 'DPoP' as const }, { dpop: dpop(t) }, { scheme: 'DPoP' as const, dpop: dpop(t) }]) {
        const r = v.verifySync(t, req);
        assert.equal(outcome(r), 'BINDING_MISMATCH', explain(r));
        assert.match(r.valid ? '' : r.detail, /DPoP scheme was used with a token that is not bound/);
      }
      assert.ok(v.verifySync(t, { scheme: 'Bearer', dpop: dpop(t) }).valid, 'an explicit Bearer request ignores a stray DPoP header');
    });
  });
});
