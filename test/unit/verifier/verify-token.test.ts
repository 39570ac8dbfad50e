import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../../src/verifier/jose-rules.js';
import type { VerifiedClaims, VerifyReason } from '../../../src/shared/claims.js';
import type { KeyResolver, VerificationKey } from '../../../src/verifier/key-resolver.js';
import { RevocationState } from '../../../src/verifier/revocation-state.js';
import { createStaticKeyResolver } from '../../../src/verifier/key-resolvers.js';
import {
  MAX_TIME_SEC,
  checkTimeAudienceScopes,
  verifySignatureAndParse,
  type SignatureOutcome,
  type TokenCheckOptions,
} from '../../../src/verifier/verify-token.js';
import {
  accessPayload,
  b64url,
  forgeHmacWithPublicKey,
  forgeJweShaped,
  forgeNoneToken,
  forgeToken,
  generateTestKey,
  swapPayload,
  tamperSignature,
  type TestKey,
} from '../../helpers/token-forge.js';

const ISSUER = 'https://issuer.test';
const NOW = 1_900_000_000;
const OPTS: TokenCheckOptions = { issuer: ISSUER, algorithms: SIGNING_ALGORITHMS, clockSkewSec: 30, maxTokenBytes: 8192 };

const keys = {} as Record<SigningAlgorithm, TestKey>;
let resolver: KeyResolver;

/** Keys are made once per run (RSA generation is slow), by the first suite that needs them. */
function setupKeys(): void {
  if (resolver !== undefined) return;
  for (const alg of SIGNING_ALGORITHMS) keys[alg] = generateTestKey(alg, `kid-${alg}`);
  resolver = createStaticKeyResolver(SIGNING_ALGORITHMS.map((a) => keys[a].verificationKey));
}

const payload = (overrides: Record<string, unknown> = {}) => accessPayload({ iss: ISSUER, nowSec: NOW, ...overrides });
const verify = (token: unknown, opts: TokenCheckOptions = OPTS, r: KeyResolver = resolver) => verifySignatureAndParse(token, r, opts);

/** Assert a rejection with this reason, and that its detail never echoes the token. */
function expectReject(outcome: SignatureOutcome, reason: VerifyReason, token?: unknown, detail?: RegExp): void {
  assert.equal(outcome.ok, false, `expected ${reason}, got ok`);
  if (outcome.ok) return;
  assert.equal(outcome.reason, reason, `expected ${reason}, got ${outcome.reason}: ${outcome.detail}`);
  assert.equal(typeof outcome.detail, 'string');
  if (detail) assert.match(outcome.detail, detail);
  if (typeof token === 'string' && token.length > 0) {
    assert.ok(!outcome.detail.includes(token), 'detail must not include the token');
    for (const part of token.split('.')) {
      if (part.length >= 8) assert.ok(!outcome.detail.includes(part), 'detail must not include a token segment');
    }
  }
}

function expectClaims(outcome: SignatureOutcome): VerifiedClaims {
  assert.ok(outcome.ok, outcome.ok ? '' : `expected ok, got ${outcome.reason}: ${outcome.detail}`);
  return outcome.claims;
}

describe('verifySignatureAndParse', () => {
  before(setupKeys);
  for (const alg of SIGNING_ALGORITHMS) {
    describe(`with an ${alg} key`, () => {
      it('returns the normalised claims of a valid token', () => {
        const p = payload({ aud: ['api', 'billing'], scope: 'read write', tenant: 'acme', level: 3, flags: ['x'] });
        const claims = expectClaims(verify(forgeToken({ key: keys[alg], payload: p })));
        assert.deepEqual(claims, {
          issuer: ISSUER,
          subject: p.sub,
          audience: ['api', 'billing'],
          scopes: ['read', 'write'],
          issuedAt: NOW,
          notBefore: NOW,
          expiresAt: NOW + 300,
          tokenId: p.jti,
          sessionId: p.sid,
          generation: 0,
          keyId: `kid-${alg}`,
          extra: { tenant: 'acme' },
        });
        assert.ok(Object.isFrozen(claims) && Object.isFrozen(claims.audience) && Object.isFrozen(claims.scopes) && Object.isFrozen(claims.extra));
      });

      it('verifies a token signed by jose SignJWT (interop)', async () => {
        const token = await new SignJWT({ sid: 's-1', gen: 4, scope: 'orders:read' })
          .setProtectedHeader({ alg, kid: keys[alg].kid, typ: 'at+jwt' })
          .setIssuer(ISSUER)
          .setSubject('user-9')
          .setAudience('orders')
          .setIssuedAt(NOW)
          .setNotBefore(NOW)
          .setExpirationTime(NOW + 60)
          .setJti('jti-9')
          .sign(keys[alg].privateKey);
        const claims = expectClaims(verify(token));
        assert.equal(claims.subject, 'user-9');
        assert.deepEqual(claims.audience, ['orders']);
        assert.equal(claims.generation, 4);
        assert.equal(checkTimeAudienceScopes(claims, { audience: 'orders', requiredScopes: ['orders:read'] }, OPTS, NOW).valid, true);
      });

      it('rejects a tampered signature as BAD_SIGNATURE, naming the kid', () => {
        const token = tamperSignature(forgeToken({ key: keys[alg], payload: payload() }));
        const out = verify(token);
        expectReject(out, 'BAD_SIGNATURE', token);
        assert.equal(!out.ok && out.kid, `kid-${alg}`);
      });

      it('rejects a swapped payload under a valid signature', () => {
        const token = swapPayload(forgeToken({ key: keys[alg], payload: payload() }), payload({ sub: 'admin' }));
        expectReject(verify(token), 'BAD_SIGNATURE', token);
      });

      it('rejects a signature made by another key of the same type', () => {
        const other = generateTestKey(alg);
        const token = forgeToken({ key: other, kid: keys[alg].kid, payload: payload() });
        expectReject(verify(token), 'BAD_SIGNATURE', token);
      });

      it('rejects a truncated or extended signature', () => {
        const good = forgeToken({ key: keys[alg], payload: payload() });
        const sig = Buffer.from(good.split('.')[2] as string, 'base64url');
        const head = good.slice(0, good.lastIndexOf('.') + 1);
        expectReject(verify(head + b64url(sig.subarray(0, sig.length - 1))), 'BAD_SIGNATURE');
        expectReject(verify(head + b64url(Buffer.concat([sig, Buffer.from([0])]))), 'BAD_SIGNATURE');
        expectReject(verify(head), 'BAD_SIGNATURE');
      });

      it('rejects HS256/384/512 signed with the public key PEM (algorithm confusion)', () => {
        for (const hs of ['HS256', 'HS384', 'HS512'] as const) {
          const token = forgeHmacWithPublicKey(keys[alg], payload(), hs);
          expectReject(verify(token), 'UNSUPPORTED_ALGORITHM', token);
        }
      });

      it('rejects a header alg that differs from the key alg', () => {
        const other = SIGNING_ALGORITHMS.find((a) => a !== alg) as SigningAlgorithm;
        // Signed correctly with this key, but the header claims another allowed algorithm.
        const token = forgeToken({ key: keys[alg], payload: payload(), headerExtra: { alg: other } });
        expectReject(verify(token), 'UNSUPPORTED_ALGORITHM', token, /match/);
        // And a token genuinely signed by the other key's algorithm but naming this key's kid.
        const cross = forgeToken({ key: keys[other], kid: keys[alg].kid, payload: payload() });
        expectReject(verify(cross), 'UNSUPPORTED_ALGORITHM', cross);
      });

      it('rejects an algorithm allowed in general but not by these options', () => {
        const token = forgeToken({ key: keys[alg], payload: payload() });
        const others = SIGNING_ALGORITHMS.filter((a) => a !== alg);
        expectReject(verify(token, { ...OPTS, algorithms: others }), 'UNSUPPORTED_ALGORITHM', token);
        expectClaims(verify(token, { ...OPTS, algorithms: [alg] }));
      });
    });
  }

  describe('algorithm', () => {
    it('rejects alg none in any casing, signed or not', () => {
      for (const none of ['none', 'None', 'NONE', 'nOnE']) {
        const unsigned = forgeNoneToken({ payload: payload(), kid: keys.ES256.kid, alg: none });
        expectReject(verify(unsigned), 'UNSUPPORTED_ALGORITHM', unsigned);
        const bare = forgeNoneToken({ payload: payload(), alg: none });
        expectReject(verify(bare), 'UNSUPPORTED_ALGORITHM', bare);
        const withSig = forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { alg: none } });
        expectReject(verify(withSig), 'UNSUPPORTED_ALGORITHM', withSig);
      }
    });

    it('rejects algorithms off the allow-list', () => {
      const rsa = keys.RS256;
      const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      const cases: string[] = [
        forgeToken({ key: rsa.privateKey, alg: 'PS256', kid: rsa.kid, payload: payload() }),
        forgeToken({ key: rsa.privateKey, alg: 'RS512', kid: rsa.kid, payload: payload() }),
        forgeToken({ key: ec384, alg: 'ES384', kid: keys.ES256.kid, payload: payload() }),
        forgeToken({ key: 'secret', alg: 'HS256', kid: keys.ES256.kid, payload: payload() }),
        forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { alg: 'es256' } }),
        forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { alg: 'ES256 ' } }),
        forgeToken({ key: keys.EdDSA, payload: payload(), headerExtra: { alg: 'Ed25519' } }),
      ];
      for (const token of cases) expectReject(verify(token), 'UNSUPPORTED_ALGORITHM', token);
    });

    it('rejects a missing or non-string alg as MALFORMED', () => {
      for (const alg of [undefined, 7, null, ['ES256'], { a: 1 }]) {
        const token = forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { alg } });
        expectReject(verify(token), 'MALFORMED', token, /alg/);
      }
    });
  });

  describe('header', () => {
    for (const name of ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip', 'enc']) {
      it(`rejects a validly signed token carrying "${name}" as FORBIDDEN_HEADER`, () => {
        const value = name === 'jwk' ? keys.ES256.publicKey.export({ format: 'jwk' }) : name === 'b64' ? false : name === 'crit' ? ['b64'] : 'x';
        const token = forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { [name]: value } });
        expectReject(verify(token), 'FORBIDDEN_HEADER', token, new RegExp(name));
      });
    }

    it('accepts typ at+jwt and application/at+jwt in any case', () => {
      for (const typ of ['at+jwt', 'AT+JWT', 'At+Jwt', 'application/at+jwt', 'Application/AT+JWT']) {
        expectClaims(verify(forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { typ } })));
      }
    });

    it('rejects any other typ as WRONG_TYPE', () => {
      for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt', 'at+jwt ', 'at+jwt;v=1', 'x-application/at+jwt', 1, null, ['at+jwt']]) {
        const token = forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { typ } });
        expectReject(verify(token), 'WRONG_TYPE', token);
      }
    });

    it('rejects a missing, non-string, empty or over-long kid as MALFORMED', () => {
      for (const kid of [undefined, 5, '', 'k'.repeat(129), { a: 1 }]) {
        const token = forgeToken({ key: keys.ES256, payload: payload(), headerExtra: { kid } });
        expectReject(verify(token), 'MALFORMED', token, /kid/);
      }
    });

    it('answers UNKNOWN_KEY with the kid for a kid the resolver does not know', () => {
      for (const kid of ['nope', 'k'.repeat(128)]) {
        const token = forgeToken({ key: keys.ES256, kid, payload: payload() });
        const out = verify(token);
        expectReject(out, 'UNKNOWN_KEY', token);
        assert.equal(!out.ok && out.kid, kid);
      }
    });

    it('rejects duplicate header member names, however spelled', () => {
      const kid = keys.ES256.kid;
      const raws = [
        `{"alg":"ES256","typ":"at+jwt","kid":"${kid}","alg":"ES256"}`,
        `{"alg":"none","typ":"at+jwt","kid":"${kid}","alg":"ES256"}`,
        `{"alg":"ES256","typ":"at+jwt","kid":"${kid}","\\u0061lg":"ES256"}`,
        `{"alg":"ES256","typ":"at+jwt","kid":"other","kid":"${kid}"}`,
        `{"alg":"ES256", "typ" : "at+jwt", "kid" : "${kid}", "typ":"at+jwt"}`,
      ];
      for (const header of raws) {
        const token = forgeToken({ key: keys.ES256, alg: 'ES256', header, payload: payload() });
        expectReject(verify(token), 'MALFORMED', token, /duplicate/);
      }
    });

    it('does not mistake colons and quotes inside strings or nested values for members', () => {
      const header = {
        alg: 'ES256', typ: 'at+jwt', kid: keys.ES256.kid,
        note: 'a":"b\\":{[', nested: { alg: 'none', kid: ['x:y', { z: '"' }] }, list: [1, ':', {}],
      };
      expectClaims(verify(forgeToken({ key: keys.ES256, alg: 'ES256', header, payload: payload() })));
      for (const x of ['he said "hi": ok', 'x\\', 'x\\":', '\\\\"a":1,"b":', '":', '{"alg":"none"}']) {
        const h = { alg: 'ES256', typ: 'at+jwt', x, kid: keys.ES256.kid };
        expectClaims(verify(forgeToken({ key: keys.ES256, alg: 'ES256', header: h, payload: payload() })));
      }
      const spaced = `{ "alg" : "ES256" ,\n "typ":"at+jwt", "kid":"${keys.ES256.kid}" }`;
      expectClaims(verify(forgeToken({ key: keys.ES256, alg: 'ES256', header: spaced, payload: payload() })));
    });

    it('rejects a header that is not a JSON object, or not valid UTF-8', () => {
      const sign = (header: string | Uint8Array) => forgeToken({ key: keys.ES256, alg: 'ES256', header, payload: payload() });
      const kid = keys.ES256.kid;
      for (const header of ['not json', '[]', 'null', '"at+jwt"', '7', '', `{"alg":"ES256","kid":"${kid}"`]) {
        expectReject(verify(sign(header)), 'MALFORMED', undefined, /header/);
      }
      const bad = Buffer.concat([Buffer.from(`{"alg":"ES256","typ":"at+jwt","kid":"${kid}","x":"`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
      expectReject(verify(sign(bad)), 'MALFORMED', undefined, /UTF-8/);
      const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`{"alg":"ES256","typ":"at+jwt","kid":"${kid}"}`)]);
      expectReject(verify(sign(bom)), 'MALFORMED');
    });

    it('judges a cached header against each call’s own allow-list', () => {
      const token = forgeToken({ key: keys.EdDSA, payload: payload() });
      expectClaims(verify(token));
      expectReject(verify(token, { ...OPTS, algorithms: ['ES256'] }), 'UNSUPPORTED_ALGORITHM');
      // Many distinct headers (cache churn) change nothing.
      for (let i = 0; i < 200; i++) expectClaims(verify(forgeToken({ key: keys.EdDSA, payload: payload(), headerExtra: { n: i } })));
      expectClaims(verify(token));
    });
  });

  describe('structure', () => {
    it('rejects anything that is not a non-empty string, without throwing', () => {
      const valid = forgeToken({ key: keys.ES256, payload: payload() });
      const inputs: unknown[] = [
        undefined, null, 0, 1n, true, {}, [], [valid], Symbol('t'), () => valid, Buffer.from(valid), new String(valid),
        new Proxy({}, { get() { throw new Error('boom'); } }), '',
      ];
      for (const input of inputs) expectReject(verify(input), 'MALFORMED');
    });

    it('rejects a 1 MB string by length before doing anything else', () => {
      const huge = 'a'.repeat(1 << 20);
      const started = process.hrtime.bigint();
      expectReject(verify(huge), 'MALFORMED', huge, /longer than 8192/);
      expectReject(verify(`${huge}.${huge}.${huge}`), 'MALFORMED', undefined, /longer/);
      assert.ok(process.hrtime.bigint() - started < 50_000_000n);
    });

    it('accepts a token of exactly maxTokenBytes and rejects one byte less of budget', () => {
      const token = forgeToken({ key: keys.ES256, payload: payload() });
      expectClaims(verify(token, { ...OPTS, maxTokenBytes: token.length }));
      expectReject(verify(token, { ...OPTS, maxTokenBytes: token.length - 1 }), 'MALFORMED', token, /longer/);
    });

    it('rejects the wrong number of segments, naming JWE for 5', () => {
      const [h, p, s] = forgeToken({ key: keys.ES256, payload: payload() }).split('.') as [string, string, string];
      expectReject(verify(`${h}.${p}`), 'MALFORMED', undefined, /3 segments/);
      expectReject(verify(h), 'MALFORMED', undefined, /3 segments/);
      expectReject(verify(`${h}.${p}.${s}.`), 'MALFORMED', undefined, /4 segments/);
      expectReject(verify(`${h}.${p}.${s}.${s}`), 'MALFORMED', undefined, /4 segments/);
      expectReject(verify(`${h}.${p}.${s}.${p}.${s}`), 'MALFORMED', undefined, /JWE/);
      expectReject(verify('....'), 'MALFORMED', undefined, /JWE/);
      expectReject(verify(forgeJweShaped()), 'MALFORMED', undefined, /JWE/);
      expectReject(verify(`${h}.${p}.${s}.${p}.${s}.x`), 'MALFORMED', undefined, /6 segments/);
      expectReject(verify('..'), 'MALFORMED');
    });

    it('rejects segments that are not canonical unpadded base64url', () => {
      const token = forgeToken({ key: keys.ES256, payload: payload() });
      const [h, p, s] = token.split('.') as [string, string, string];
      const flipLast = (seg: string) => {
        // Set an unused low bit of the last character: same bytes with Node's lenient decoder.
        const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
        const v = alphabet.indexOf(seg[seg.length - 1] as string);
        return seg.slice(0, -1) + alphabet[v | 1];
      };
      assert.equal(s.length % 4, 2, 'fixture: an ES256 signature (86 chars) leaves 4 unused bits');
      assert.deepEqual(Buffer.from(flipLast(s), 'base64url'), Buffer.from(s, 'base64url'), 'fixture: lenient decode is equal');
      const variants = [
        `${h}.${p}.${s}=`,
        `${h}=.${p}.${s}`,
        `${h}.${p}.${flipLast(s)}`,
        `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}x+`,
        `${h}.${p}.${s.slice(0, 10)}/${s.slice(11)}`,
        `${h}.${p} .${s}`,
        `${h}.${p}.${s}\n`,
        `${h}.${p}.${s.slice(0, -1)}é`,
        `${h}.${p}.${s}AAA`, // 86 + 3 chars: 1 mod 4 can never be canonical
        `${h}.${p}.${s.slice(0, 20)}\u0000${s.slice(21)}`,
      ];
      for (const t of variants) expectReject(verify(t), 'MALFORMED', t, /base64url/);
    });

    it('checks the signature before looking at the payload', () => {
      const token = forgeToken({ key: keys.ES256, payload: 'this is not JSON' });
      expectReject(verify(tamperSignature(token)), 'BAD_SIGNATURE');
      expectReject(verify(token), 'MALFORMED', token, /payload/);
    });

    it('never throws and never accepts a mutated token (property)', () => {
      const token = forgeToken({ key: keys.EdDSA, payload: payload() });
      fc.assert(
        fc.property(fc.nat({ max: token.length - 1 }), fc.integer({ min: 0, max: 127 }), (pos, code) => {
          const mutated = token.slice(0, pos) + String.fromCharCode(code) + token.slice(pos + 1);
          const out = verify(mutated);
          assert.equal(out.ok, mutated === token);
        }),
        { numRuns: 300 },
      );
      fc.assert(
        fc.property(fc.anything(), fc.string(), (value, text) => {
          assert.equal(verify(value).ok, false);
          assert.equal(verify(text).ok, false);
          assert.equal(verify(`${text}.${text}.${text}`).ok, false);
        }),
        { numRuns: 300 },
      );
    });

    it('never throws when the key resolver does, or hands out an unfit key', () => {
      const token = forgeToken({ key: keys.ES256, payload: payload() });
      const throwing: KeyResolver = { get() { throw new Error('resolver bug'); } };
      expectReject(verify(token, OPTS, throwing), 'MALFORMED', token);
      const unfit: VerificationKey = { kid: keys.ES256.kid, alg: 'ES256', key: keys.RS256.publicKey };
      expectReject(verify(token, OPTS, { get: () => unfit }), 'UNSUPPORTED_ALGORITHM', token);
      const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const weak: VerificationKey = { kid: 'weak', alg: 'RS256', key: small.publicKey };
      const weakToken = forgeToken({ key: small.privateKey, alg: 'RS256', kid: 'weak', payload: payload() });
      expectReject(verify(weakToken, OPTS, { get: () => weak }), 'UNSUPPORTED_ALGORITHM', weakToken);
      const pss = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
      const pssKey: VerificationKey = { kid: 'pss', alg: 'RS256', key: pss.publicKey };
      const pssToken = forgeToken({ key: pss.privateKey, alg: 'PS256', kid: 'pss', payload: payload(), headerExtra: { alg: 'RS256' } });
      expectReject(verify(pssToken, OPTS, { get: () => pssKey }), 'UNSUPPORTED_ALGORITHM', pssToken);
    });
  });

  describe('claims', () => {
    const sign = (p: Record<string, unknown> | string) => forgeToken({ key: keys.ES256, payload: p });

    it('rejects a wrong issuer as WRONG_ISSUER and a non-string one as MALFORMED', () => {
      for (const iss of ['https://evil.test', `${ISSUER}/`, ISSUER.toUpperCase(), '']) {
        const token = sign(payload({ iss }));
        expectReject(verify(token), 'WRONG_ISSUER', token);
      }
      for (const iss of [undefined, 1, [ISSUER], null]) expectReject(verify(sign(payload({ iss }))), 'MALFORMED', undefined, /iss/);
    });

    it('rejects ill-typed claims as MALFORMED, naming the claim', () => {
      const cases: Array<[string, unknown]> = [
        ['sub', undefined], ['sub', ''], ['sub', 42],
        ['jti', undefined], ['jti', ''], ['jti', 7],
        ['sid', undefined], ['sid', ''], ['sid', {}],
        ['exp', undefined], ['exp', String(NOW + 60)], ['exp', null], ['exp', -1], ['exp', MAX_TIME_SEC + 1], ['exp', 1e300], ['exp', [NOW]],
        ['iat', undefined], ['iat', 'now'], ['iat', 1e20],
        ['nbf', undefined], ['nbf', true], ['nbf', -0.5],
        ['gen', undefined], ['gen', -1], ['gen', 1.5], ['gen', '3'], ['gen', 2 ** 53], ['gen', null],
        ['aud', undefined], ['aud', ''], ['aud', []], ['aud', ['api', '']], ['aud', ['api', 1]], ['aud', { api: true }], ['aud', 5],
        ['scope', 5], ['scope', ['read']], ['scope', null],
      ];
      for (const [name, value] of cases) {
        const token = sign(payload({ [name]: value }));
        expectReject(verify(token), 'MALFORMED', token, new RegExp(`claim ${name}\\b`));
      }
    });

    it('rejects non-finite numbers written in the JSON text', () => {
      const p = JSON.stringify(payload()).replace(/"exp":\d+/, '"exp":1e999');
      expectReject(verify(sign(p)), 'MALFORMED', undefined, /exp/);
    });

    it('rejects a payload that is not a JSON object or has duplicate claims', () => {
      for (const p of ['[]', 'null', '"x"', '{', '']) expectReject(verify(sign(p)), 'MALFORMED', undefined, /payload/);
      const dup = JSON.stringify(payload({ sub: 'victim' })).replace(/^\{/, '{"sub":"admin",');
      expectReject(verify(sign(dup)), 'MALFORMED', undefined, /duplicate/);
    });

    it('accepts times that are not integers, and the edges of the time range', () => {
      const claims = expectClaims(verify(sign(payload({ exp: NOW + 0.5, iat: 0, nbf: MAX_TIME_SEC }))));
      assert.equal(claims.expiresAt, NOW + 0.5);
      assert.equal(claims.issuedAt, 0);
      assert.equal(claims.notBefore, MAX_TIME_SEC);
    });

    it('normalises aud and scope', () => {
      let c = expectClaims(verify(sign(payload({ aud: 'api', scope: undefined }))));
      assert.deepEqual(c.audience, ['api']);
      assert.deepEqual(c.scopes, []);
      c = expectClaims(verify(sign(payload({ scope: '  read   write ' }))));
      assert.deepEqual(c.scopes, ['read', 'write']);
      c = expectClaims(verify(sign(payload({ scope: '' }))));
      assert.deepEqual(c.scopes, []);
    });

    it('keeps only string extras, and never lets a claim touch the prototype', () => {
      const p = JSON.stringify(payload({ tenant: 'acme', n: 1, obj: { a: 'b' }, nil: null, client_id: 'svc' })).replace(/^\{/, '{"__proto__":"polluted","constructor":"c",');
      const c = expectClaims(verify(sign(p)));
      assert.deepEqual({ ...c.extra }, { constructor: 'c', tenant: 'acme', client_id: 'svc' });
      assert.equal(Object.getPrototypeOf(c.extra), Object.prototype);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    it('does not take claims from a polluted Object.prototype', () => {
      const p = payload();
      delete p.iss;
      const token = sign(p);
      (Object.prototype as Record<string, unknown>).iss = ISSUER;
      try {
        expectReject(verify(token), 'MALFORMED', token, /iss/);
      } finally {
        delete (Object.prototype as Record<string, unknown>).iss;
      }
    });
  });
});

describe('checkTimeAudienceScopes', () => {
  let claims: VerifiedClaims;
  before(() => {
    setupKeys();
    claims = expectClaims(verify(forgeToken({ key: keys.ES256, payload: payload({ exp: NOW + 100, iat: NOW, nbf: NOW, aud: ['api', 'billing'], scope: 'a b c' }) })));
  });
  const check = (nowSec: number, req = {}, skew = 30) => checkTimeAudienceScopes(claims, req, { ...OPTS, clockSkewSec: skew }, nowSec);
  const reason = (r: ReturnType<typeof check>) => (r.valid ? 'valid' : r.reason);

  it('treats a token as expired at exp plus leeway, not before', () => {
    assert.equal(reason(check(NOW + 129)), 'valid');
    assert.equal(reason(check(NOW + 129.999)), 'valid');
    assert.equal(reason(check(NOW + 130)), 'EXPIRED');
    assert.equal(reason(check(NOW + 99, {}, 0)), 'valid');
    assert.equal(reason(check(NOW + 100, {}, 0)), 'EXPIRED');
    assert.equal(reason(check(NOW + 1e6)), 'EXPIRED');
  });

  it('treats nbf and iat in the future beyond leeway as NOT_YET_VALID', () => {
    assert.equal(reason(check(NOW - 30)), 'valid');
    assert.equal(reason(check(NOW - 30.5)), 'NOT_YET_VALID');
    assert.equal(reason(check(NOW - 1, {}, 0)), 'NOT_YET_VALID');
    assert.equal(reason(check(NOW, {}, 0)), 'valid');
    const iatFuture = { ...claims, notBefore: NOW - 1000 };
    const r = checkTimeAudienceScopes(iatFuture, {}, OPTS, NOW - 31);
    assert.equal(!r.valid && r.reason, 'NOT_YET_VALID');
    assert.match(!r.valid ? r.detail : '', /iat/);
    assert.equal(checkTimeAudienceScopes(iatFuture, {}, OPTS, NOW - 30).valid, true);
  });

  it('checks the audience only when one is required, failing closed on the empty string', () => {
    assert.equal(reason(check(NOW, { audience: 'api' })), 'valid');
    assert.equal(reason(check(NOW, { audience: 'billing' })), 'valid');
    assert.equal(reason(check(NOW, { audience: 'other' })), 'WRONG_AUDIENCE');
    assert.equal(reason(check(NOW, { audience: 'API' })), 'WRONG_AUDIENCE');
    assert.equal(reason(check(NOW, { audience: '' })), 'WRONG_AUDIENCE');
    assert.equal(reason(check(NOW, { audience: undefined })), 'valid');
  });

  it('names every missing scope', () => {
    assert.equal(reason(check(NOW, { requiredScopes: ['a', 'c'] })), 'valid');
    assert.equal(reason(check(NOW, { requiredScopes: [] })), 'valid');
    const r = check(NOW, { requiredScopes: ['a', 'x', 'c', 'y'] });
    assert.equal(!r.valid && r.reason, 'MISSING_SCOPE');
    assert.match(!r.valid ? r.detail : '', /x y$/);
    assert.equal(reason(check(NOW, { requiredScopes: ['a b'] })), 'MISSING_SCOPE');
  });

  it('checks time before audience before scopes, and returns the claims when valid', () => {
    assert.equal(reason(check(NOW + 500, { audience: 'other', requiredScopes: ['x'] })), 'EXPIRED');
    assert.equal(reason(check(NOW, { audience: 'other', requiredScopes: ['x'] })), 'WRONG_AUDIENCE');
    const ok = check(NOW, { audience: 'api', requiredScopes: ['b'] });
    assert.ok(ok.valid && ok.claims === claims);
  });
});

describe('verify-token with RevocationState (REVOKED)', () => {
  before(setupKeys);

  it('catches a valid token by jti, sid or subject generation once revoked', () => {
    const nowMs = NOW * 1000;
    const p = payload({ gen: 2 });
    const claims = expectClaims(verify(forgeToken({ key: keys.ES256, payload: p })));
    assert.equal(checkTimeAudienceScopes(claims, {}, OPTS, NOW).valid, true);
    const base = { v: 1, type: 'rev', seq: 1, until: nowMs + 300_000, at: nowMs } as const;
    for (const e of [
      { ...base, kind: 'jti' as const, id: p.jti as string },
      { ...base, kind: 'sid' as const, id: p.sid as string },
      { ...base, kind: 'sub' as const, id: p.sub as string, gen: 3 },
    ]) {
      const state = new RevocationState();
      assert.equal(state.isRevoked(claims, nowMs), false);
      state.apply(e);
      assert.equal(state.isRevoked(claims, nowMs), true, `revoked by ${e.kind}`);
    }
    const spared = new RevocationState();
    spared.apply({ ...base, kind: 'sub', id: p.sub as string, gen: 2 });
    assert.equal(spared.isRevoked(claims, nowMs), false, 'a token of the current generation is spared');
  });
});
