import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { createSigner } from '../../../src/keys/key-manager.js';
import { generateSigningKey, type GeneratedKey } from '../../../src/keys/key-generator.js';
import { PRIVATE_JWK_MEMBERS, SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../../src/verifier/jose-rules.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { samplePayload } from './helpers.js';

const DIGEST: Record<SigningAlgorithm, string | null> = { ES256: 'sha256', EdDSA: null, RS256: 'sha256' };

function b64json(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

describe('keys: key generation and the access-token signer', () => {
  const generated = new Map<SigningAlgorithm, GeneratedKey>();

  before(async () => {
    for (const alg of SIGNING_ALGORITHMS) generated.set(alg, await generateSigningKey(alg));
  });

  for (const alg of SIGNING_ALGORITHMS) {
    describe(alg, () => {
      it('publishes a public JWK with kid, alg, use and no private member', () => {
        const key = generated.get(alg)!;
        assert.match(key.kid, /^[A-Za-z0-9_-]{22}$/);
        assert.equal(key.publicJwk.kid, key.kid);
        assert.equal(key.publicJwk.alg, alg);
        assert.equal(key.publicJwk.use, 'sig');
        assert.equal(key.publicJwk.kty, { ES256: 'EC', EdDSA: 'OKP', RS256: 'RSA' }[alg]);
        for (const member of PRIVATE_JWK_MEMBERS) assert.ok(!(member in key.publicJwk), `public JWK has "${member}"`);
        assert.equal(typeof key.privateJwk.d, 'string');
        const pub = createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' });
        assert.equal(pub.asymmetricKeyType, { ES256: 'ec', EdDSA: 'ed25519', RS256: 'rsa' }[alg]);
        if (alg === 'RS256') assert.equal(pub.asymmetricKeyDetails?.modulusLength, 2048);
      });

      it('signs a token with the exact header that jose verifies as at+jwt', async () => {
        const key = generated.get(alg)!;
        const signer = createSigner(key);
        assert.equal(signer.kid, key.kid);
        assert.equal(signer.alg, alg);
        const payload = samplePayload({ extra_claim: 'ü-ñ' });
        const token = signer.sign(payload);
        const [header, body] = token.split('.');
        assert.equal(Buffer.from(header!, 'base64url').toString('utf8'), `{"alg":"${alg}","kid":"${key.kid}","typ":"at+jwt"}`);
        assert.deepEqual(b64json(body!), payload);

        const result = await jwtVerify(token, createLocalJWKSet({ keys: [{ ...key.publicJwk }] }), {
          typ: 'at+jwt',
          algorithms: [alg],
          issuer: payload.iss,
          audience: 'orders',
        });
        assert.equal(result.payload.sub, 'user-1');
        assert.equal(result.payload.extra_claim, 'ü-ñ');
        assert.deepEqual(result.protectedHeader, { alg, kid: key.kid, typ: 'at+jwt' });
      });

      it('produces signatures node:crypto verifies, and a tampered payload does not', () => {
        const key = generated.get(alg)!;
        const token = createSigner(key).sign(samplePayload());
        const [header, body, signature] = token.split('.') as [string, string, string];
        const pub = createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' });
        const keyInput = alg === 'ES256' ? { key: pub, dsaEncoding: 'ieee-p1363' as const } : pub;
        const sig = Buffer.from(signature, 'base64url');
        if (alg === 'ES256') assert.equal(sig.length, 64, 'ES256 signature must be raw r||s');
        assert.ok(cryptoVerify(DIGEST[alg], Buffer.from(`${header}.${body}`), keyInput, sig));
        const forged = Buffer.from(JSON.stringify(samplePayload({ sub: 'admin' }))).toString('base64url');
        assert.ok(!cryptoVerify(DIGEST[alg], Buffer.from(`${header}.${forged}`), keyInput, sig));
      });
    });
  }

  it('is verifiable through jose createRemoteJWKSet over HTTP', async () => {
    const keys = [...generated.values()].map((k) => k.publicJwk);
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`));
      for (const key of generated.values()) {
        const token = createSigner(key).sign(samplePayload());
        const { protectedHeader } = await jwtVerify(token, jwks, { typ: 'at+jwt' });
        assert.equal(protectedHeader.kid, key.kid);
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('gives every key a distinct kid', async () => {
    const kids = new Set(await Promise.all(Array.from({ length: 20 }, async () => (await generateSigningKey('EdDSA')).kid)));
    assert.equal(kids.size, 20);
  });

  it('rejects a private key that does not match its public JWK', () => {
    const a = generated.get('ES256')!;
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const mismatched = { ...a, publicJwk: { ...a.publicJwk, x: other.x!, y: other.y! } };
    assert.throws(() => createSigner(mismatched), (err) => isTokenAuthorityError(err) && err.code === ErrorCodes.KEY && /does not match/.test(err.message));
  });

  it('rejects a key whose type or strength does not fit its algorithm', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const p384Jwk = p384.privateKey.export({ format: 'jwk' });
    const asEs256 = {
      kid: 'k1',
      alg: 'ES256' as const,
      privateJwk: { ...p384Jwk, kid: 'k1', alg: 'ES256', use: 'sig' } as never,
      publicJwk: { kty: 'EC', crv: p384Jwk.crv, x: p384Jwk.x, y: p384Jwk.y, kid: 'k1', alg: 'ES256', use: 'sig' } as never,
    };
    assert.throws(() => createSigner(asEs256), (err) => isTokenAuthorityError(err) && err.code === ErrorCodes.KEY && /P-256/.test(err.message));

    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'jwk' });
    const weak = {
      kid: 'k2',
      alg: 'RS256' as const,
      privateJwk: { ...rsa1024, kid: 'k2', alg: 'RS256', use: 'sig' } as never,
      publicJwk: { kty: 'RSA', n: rsa1024.n, e: rsa1024.e, kid: 'k2', alg: 'RS256', use: 'sig' } as never,
    };
    assert.throws(() => createSigner(weak), (err) => isTokenAuthorityError(err) && err.code === ErrorCodes.KEY && /1024 bits/.test(err.message));
  });

  it('keeps the header fixed per key (decodeProtectedHeader agrees)', () => {
    const key = generated.get('EdDSA')!;
    const signer = createSigner(key);
    const t1 = signer.sign(samplePayload({ jti: 'a' }));
    const t2 = signer.sign(samplePayload({ jti: 'b' }));
    assert.equal(t1.split('.')[0], t2.split('.')[0]);
    assert.deepEqual(decodeProtectedHeader(t1), { alg: 'EdDSA', kid: key.kid, typ: 'at+jwt' });
  });
});
