import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, createSecretKey, generateKeyPairSync, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { importPrivateKey, importPublicKey } from '../../../src/keys/key-material.js';
import { generateSigningKey } from '../../../src/keys/key-generator.js';
import { parseKeySetDocument } from '../../../src/keys/key-set-document.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import {
  ACCESS_TOKEN_TYP,
  algorithmForJwk,
  isAcceptableKid,
  isAccessTokenTyp,
  isSigningAlgorithm,
  jwsVerifyPlan,
  KEY_SHAPES,
  keyAlgorithmProblem,
  MAX_KID_LENGTH,
  MIN_RSA_BITS,
  PRIVATE_JWK_MEMBERS,
  privateJwkMember,
  SIGNING_ALGORITHMS,
  type SigningAlgorithm,
} from '../../../src/verifier/jose-rules.js';
import { createStaticKeyResolver, keysFromJwks } from '../../../src/verifier/key-resolvers.js';
import { verifySignatureAndParse } from '../../../src/verifier/verify-token.js';
import { accessPayload, forgeToken } from '../../helpers/token-forge.js';

const ISSUER = accessPayload().iss as string;

type Pair = { publicKey: KeyObject; privateKey: KeyObject };

function pairFor(alg: SigningAlgorithm): Pair {
  switch (alg) {
    case 'ES256': return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'EdDSA': return generateKeyPairSync('ed25519');
    case 'RS256': return generateKeyPairSync('rsa', { modulusLength: MIN_RSA_BITS });
  }
}

describe('JOSE rules (verifier/jose-rules.ts)', () => {
  const pairs = {} as Record<SigningAlgorithm, Pair>;
  let odd: Record<string, KeyObject>;
  before(() => {
    for (const alg of SIGNING_ALGORITHMS) pairs[alg] = pairFor(alg);
    odd = {
      'EC P-384': generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey,
      'EC secp256k1': generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey,
      X25519: generateKeyPairSync('x25519').publicKey,
      Ed448: generateKeyPairSync('ed448').publicKey,
      'RSA 1024': generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
      'RSA-PSS 2048': generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).publicKey,
    };
  });

  it('the algorithm list is exactly ES256, EdDSA, RS256, and nothing else passes isSigningAlgorithm', () => {
    assert.deepEqual([...SIGNING_ALGORITHMS], ['ES256', 'EdDSA', 'RS256']);
    for (const alg of SIGNING_ALGORITHMS) assert.ok(isSigningAlgorithm(alg));
    for (const v of ['none', 'HS256', 'es256', 'PS256', 'ES384', 'Ed25519', '', undefined, null, 1, ['ES256']]) {
      assert.equal(isSigningAlgorithm(v), false, String(v));
    }
  });

  it('at+jwt: the exact value, any case, with or without application/, and nothing else', () => {
    assert.equal(ACCESS_TOKEN_TYP, 'at+jwt');
    for (const typ of ['at+jwt', 'AT+JWT', 'At+Jwt', 'application/at+jwt', 'Application/AT+JWT']) assert.ok(isAccessTokenTyp(typ), typ);
    for (const typ of [undefined, null, 1, ['at+jwt'], 'JWT', 'jwt', 'at+jwt ', ' at+jwt', 'at+jwt;v=1', 'application/at+jwt+x', 'x-application/at+jwt', 'dpop+jwt', '']) {
      assert.equal(isAccessTokenTyp(typ), false, JSON.stringify(typ));
    }
  });

  it('kids are non-empty strings of at most MAX_KID_LENGTH characters', () => {
    assert.equal(MAX_KID_LENGTH, 128);
    assert.ok(isAcceptableKid('k'));
    assert.ok(isAcceptableKid('k'.repeat(MAX_KID_LENGTH)));
    for (const kid of ['', 'k'.repeat(MAX_KID_LENGTH + 1), undefined, null, 7, ['k']]) assert.equal(isAcceptableKid(kid), false, String(kid));
  });

  it('each algorithm takes exactly its own key (public or private) and refuses every other', () => {
    for (const alg of SIGNING_ALGORITHMS) {
      assert.equal(keyAlgorithmProblem(pairs[alg].publicKey, alg), undefined, `${alg} public`);
      assert.equal(keyAlgorithmProblem(pairs[alg].privateKey, alg), undefined, `${alg} private`);
      for (const other of SIGNING_ALGORITHMS.filter((a) => a !== alg)) {
        assert.match(keyAlgorithmProblem(pairs[other].publicKey, alg) ?? '', new RegExp(`^${alg} needs`), `${other} key under ${alg}`);
      }
      for (const [name, key] of Object.entries(odd)) assert.notEqual(keyAlgorithmProblem(key, alg), undefined, `${name} under ${alg}`);
      assert.match(keyAlgorithmProblem(createSecretKey(Buffer.alloc(32, 1)), alg) ?? '', /asymmetric/);
    }
    assert.equal(keyAlgorithmProblem(pairs.ES256.publicKey, 'HS256' as SigningAlgorithm), 'algorithm HS256 is not supported');
    assert.equal(keyAlgorithmProblem(odd['EC P-384'] as KeyObject, 'ES256'), 'ES256 needs an EC P-256 key');
    assert.equal(keyAlgorithmProblem(odd['RSA 1024'] as KeyObject, 'RS256'), `RS256 needs an RSA key of at least ${MIN_RSA_BITS} bits (this one has 1024 bits)`);
    assert.equal(keyAlgorithmProblem(odd['RSA-PSS 2048'] as KeyObject, 'RS256'), 'RS256 needs an RSA key', 'an rsa-pss key would verify PSS, not RS256');
  });

  it('the JWK shapes are what node exports for each key, and every private member is a known private member', () => {
    for (const alg of SIGNING_ALGORITHMS) {
      const shape = KEY_SHAPES[alg];
      const pub = pairs[alg].publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
      const priv = pairs[alg].privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
      assert.equal(pub.kty, shape.kty, alg);
      assert.equal(pub.crv, shape.crv, alg);
      assert.deepEqual(Object.keys(pub).filter((m) => m !== 'kty').sort(), [...shape.members].sort(), `${alg} public members`);
      for (const m of shape.privateMembers) {
        assert.equal(typeof priv[m], 'string', `${alg} private member ${m}`);
        assert.ok(PRIVATE_JWK_MEMBERS.includes(m), `${m} is listed as private`);
      }
      assert.equal(privateJwkMember(pub), undefined, `${alg} public JWK carries no private member`);
      assert.equal(privateJwkMember(priv), 'd', `${alg} private JWK is caught`);
      assert.equal(algorithmForJwk(pub), alg);
      assert.equal(algorithmForJwk(priv), alg);
    }
    assert.equal(privateJwkMember({ kty: 'oct', k: 'c2VjcmV0' }), 'k');
    for (const name of ['EC P-384', 'EC secp256k1', 'X25519', 'Ed448']) {
      assert.equal(algorithmForJwk((odd[name] as KeyObject).export({ format: 'jwk' }) as Record<string, unknown>), undefined, name);
    }
    assert.equal(algorithmForJwk({ kty: 'oct', k: 'c2VjcmV0' }), undefined);
    assert.equal(algorithmForJwk({ kty: 'EC' }), undefined);
  });

  it('the verify plan checks signatures made by an independent JOSE implementation (jose), and only those', async () => {
    for (const alg of SIGNING_ALGORITHMS) {
      const plan = jwsVerifyPlan(pairs[alg].publicKey, alg);
      assert.ok(plan !== null, alg);
      const jws = await new CompactSign(Buffer.from('{"a":1}')).setProtectedHeader({ alg }).sign(pairs[alg].privateKey);
      const [h, p, s] = jws.split('.') as [string, string, string];
      const signature = Buffer.from(s, 'base64url');
      assert.equal(signature.length, plan.signatureBytes, `${alg} signature length`);
      assert.ok(cryptoVerify(plan.digest, Buffer.from(`${h}.${p}`), plan.input, signature), `${alg} verifies`);
      assert.equal(cryptoVerify(plan.digest, Buffer.from(`${h}.${p}x`), plan.input, signature), false, `${alg} refuses other bytes`);
      for (const other of SIGNING_ALGORITHMS.filter((a) => a !== alg)) assert.equal(jwsVerifyPlan(pairs[other].publicKey, alg), null);
    }
    const rsa3072 = generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey;
    assert.equal(jwsVerifyPlan(rsa3072, 'RS256')?.signatureBytes, 384);
    assert.equal(jwsVerifyPlan(odd['RSA 1024'] as KeyObject, 'RS256'), null);
  });

  describe('every site applies these rules', () => {
    // Each case: a key under an algorithm label. The signer's key import (keys/), the static
    // resolver and keysFromJwks (verifier/), and the hot-path verifier must all agree with
    // keyAlgorithmProblem about it.
    const cases = (): Array<{ name: string; alg: SigningAlgorithm; pair: Pair }> => {
      const out: Array<{ name: string; alg: SigningAlgorithm; pair: Pair }> = [];
      for (const alg of SIGNING_ALGORITHMS) {
        for (const keyAlg of SIGNING_ALGORITHMS) out.push({ name: `${keyAlg} key as ${alg}`, alg, pair: pairs[keyAlg] });
        out.push({ name: `P-384 as ${alg}`, alg, pair: generateKeyPairSync('ec', { namedCurve: 'P-384' }) });
        out.push({ name: `RSA 1024 as ${alg}`, alg, pair: generateKeyPairSync('rsa', { modulusLength: 1024 }) });
      }
      return out;
    };

    it('keys/key-material, the static resolver, keysFromJwks and verifySignatureAndParse accept exactly the keys the rules accept', () => {
      for (const { name, alg, pair } of cases()) {
        const fits = keyAlgorithmProblem(pair.publicKey, alg) === undefined;
        const pub = pair.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
        const priv = pair.privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
        const stored = { kid: 'k1', alg, publicJwk: { ...pub, kid: 'k1', alg, use: 'sig' } as never, privateJwk: { ...priv, kid: 'k1', alg, use: 'sig' } as never };
        const isKeyError = (e: unknown) => isTokenAuthorityError(e) && e.code === ErrorCodes.KEY;

        if (fits) {
          importPublicKey(stored);
          importPrivateKey(stored);
          createStaticKeyResolver([{ kid: 'k1', alg, key: pair.publicKey }]);
        } else {
          assert.throws(() => importPublicKey(stored), isKeyError, `importPublicKey: ${name}`);
          assert.throws(() => importPrivateKey(stored), isKeyError, `importPrivateKey: ${name}`);
          assert.throws(() => createStaticKeyResolver([{ kid: 'k1', alg, key: pair.publicKey }]), isKeyError, `static resolver: ${name}`);
        }
        const fromJwks = keysFromJwks({ keys: [{ ...pub, kid: 'k1', alg }] });
        assert.equal(fromJwks.keys.length, fits ? 1 : 0, `keysFromJwks: ${name} (${fromJwks.skipped[0]?.reason ?? ''})`);

        // The hot path refuses a key that does not fit its label even if a resolver hands it over.
        const keys = { get: (kid: string) => (kid === 'k1' ? { kid, alg, key: pair.publicKey } : undefined) };
        const token = forgeToken({ key: pair.privateKey, alg, kid: 'k1', payload: accessPayload(), ...(fits ? {} : { signature: Buffer.alloc(64, 1) }) });
        const outcome = verifySignatureAndParse(token, keys, { issuer: ISSUER, algorithms: SIGNING_ALGORITHMS, clockSkewSec: 30, maxTokenBytes: 8192 });
        if (fits) assert.equal(outcome.ok, true, `verify: ${name} ${outcome.ok ? '' : outcome.detail}`);
        else assert.deepEqual(outcome.ok ? 'ok' : outcome.reason, 'UNSUPPORTED_ALGORITHM', `verify: ${name}`);
      }
    });

    it('the key generator makes keys the rules accept, and the key-set parser refuses private members in a public JWK', async () => {
      for (const alg of SIGNING_ALGORITHMS) {
        const g = await generateSigningKey(alg);
        const priv = createPrivateKey({ key: { ...g.privateJwk }, format: 'jwk' });
        assert.equal(keyAlgorithmProblem(priv, alg), undefined, alg);
        assert.equal(keyAlgorithmProblem(createPublicKey(priv), alg), undefined, alg);
        assert.equal(privateJwkMember(g.publicJwk as unknown as Record<string, unknown>), undefined);
        for (const member of PRIVATE_JWK_MEMBERS) {
          const doc = { version: 1, keys: [{ kid: g.kid, alg, state: 'next', createdAt: 1, privateJwk: g.privateJwk, publicJwk: { ...g.publicJwk, [member]: 'AAAA' } }] };
          assert.throws(() => parseKeySetDocument(doc, 'test'), (e: unknown) => isTokenAuthorityError(e) && new RegExp(`private member "${member}"`).test(e.message));
        }
      }
    });
  });
});
