import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { certificateDer, certificateThumbprint } from '../../../src/verifier/certificate-thumbprint.js';
import { jwkThumbprint, thumbprintInput } from '../../../src/verifier/jwk-thumbprint.js';
import { createPki, type Pki } from '../../helpers/pki.js';

/** RFC 7638 §3.1: the example RSA key and its thumbprint. */
const RFC7638_JWK = {
  kty: 'RSA',
  n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
  alg: 'RS256',
  kid: '2011-04-29',
};

describe('jwkThumbprint (RFC 7638)', () => {
  it('the RFC 7638 §3.1 example: the exact hash input and NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', () => {
    assert.equal(thumbprintInput(RFC7638_JWK), `{"e":"AQAB","kty":"RSA","n":"${RFC7638_JWK.n}"}`);
    assert.equal(jwkThumbprint(RFC7638_JWK), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  for (const [name, make] of [
    ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['Ed25519', () => generateKeyPairSync('ed25519')],
    ['RSA-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ] as const) {
    it(`agrees with jose's calculateJwkThumbprint for ${name} keys, public or private, whatever the member order`, async () => {
      for (let i = 0; i < 5; i++) {
        const pair = make();
        const pub = pair.publicKey.export({ format: 'jwk' }) as Record<string, string>;
        const expected = await calculateJwkThumbprint(pub, 'sha256');
        assert.equal(jwkThumbprint(pub), expected);
        const reversed = Object.fromEntries(Object.entries({ ...pub, kid: 'k', use: 'sig' }).reverse());
        assert.equal(jwkThumbprint(reversed), expected);
        assert.equal(jwkThumbprint(pair.privateKey.export({ format: 'jwk' }) as Record<string, string>), expected);
      }
    });
  }

  it('refuses other key types and missing or non-string members', () => {
    assert.throws(() => jwkThumbprint({ kty: 'oct', k: 'c2VjcmV0' }), /kty "oct" has no thumbprint/);
    assert.throws(() => jwkThumbprint({ kty: 'EC', crv: 'P-256', x: 'AA' }), /member y is missing/);
    assert.throws(() => jwkThumbprint({ kty: 'RSA', n: 1, e: 'AQAB' }), /member n is missing or not a string/);
  });
});

describe('certificateThumbprint (RFC 8705 §3.1 x5t#S256)', () => {
  let pki: Pki;
  let pem: string;
  let der: Buffer;
  before(() => {
    pki = createPki();
    const ca = pki.createCa('ca');
    pem = ca.issue('client', { cn: 'client-1' }).certPem.toString('utf8');
    der = new X509Certificate(pem).raw; // node's parser, not ours
  });
  after(() => pki.cleanup());
  const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('base64url');

  it('is the base64url SHA-256 of the DER, given the DER or the PEM (openssl-made certificate)', () => {
    assert.equal(certificateThumbprint(der), sha256(der));
    assert.equal(certificateThumbprint(pem), sha256(der));
    assert.equal(certificateThumbprint(new Uint8Array(der)), sha256(der));
  });

  it('PEM: CRLF line ends, text around the block and a chain (the first block, the leaf, counts)', () => {
    assert.equal(certificateThumbprint(`subject=CN = client-1\r\n${pem.replace(/\n/g, '\r\n')}`), sha256(der));
    const other = pki.createCa('other').certPem.toString('utf8');
    assert.equal(certificateThumbprint(pem + other), sha256(der));
  });

  it('refuses what is not a certificate encoding', () => {
    assert.throws(() => certificateThumbprint(''), /neither DER bytes nor a PEM/);
    assert.throws(() => certificateThumbprint(new Uint8Array()), /empty/);
    assert.throws(() => certificateThumbprint(der.toString('base64')), /neither DER bytes nor a PEM/);
    assert.throws(() => certificateThumbprint('-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----'), /not base64/);
    assert.throws(() => certificateThumbprint('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----'), /not base64/);
    assert.throws(() => certificateThumbprint(`${pem}${' '.repeat(70_000)}`), /longer than/);
    assert.throws(() => certificateDer(42 as unknown as string), /empty or not bytes/);
  });
});
