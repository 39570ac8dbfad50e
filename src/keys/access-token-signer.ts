/**
 * The Issue hot path: one compact JWS per call. Everything that does not depend on the payload
 * (KeyObject, header, sign options) is computed once per key, so a signature costs one
 * JSON.stringify, two base64url encodings and the signature itself.
 */
import { sign as cryptoSign, type KeyObject, type SignKeyObjectInput } from 'node:crypto';
import { ACCESS_TOKEN_TYP, type SigningAlgorithm } from '../verifier/jose-rules.js';
import type { AccessTokenPayload } from '../shared/claims.js';
import { importPrivateKey } from './key-material.js';
import type { StoredKey } from './key-store.js';

/** Signs access tokens with one key. */
export interface Signer {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** A compact JWS, header `{"alg":…,"kid":…,"typ":"at+jwt"}`, over `JSON.stringify(payload)`. */
  sign(payload: AccessTokenPayload): string;
}

/** The digest argument of crypto.sign per algorithm; Ed25519 hashes internally (null). */
const DIGEST: Readonly<Record<SigningAlgorithm, string | null>> = { ES256: 'sha256', EdDSA: null, RS256: 'sha256' };

function signOptions(alg: SigningAlgorithm, key: KeyObject): KeyObject | SignKeyObjectInput {
  // JWS wants the raw r||s form (RFC 7518 §3.4), not OpenSSL's default DER.
  return alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
}

/**
 * A signer for a stored key. The private key is imported (and checked against the public JWK)
 * here, once.
 * @throws TokenAuthorityError ERR_KEY if the key material is invalid.
 */
export function createSigner(key: Pick<StoredKey, 'kid' | 'alg' | 'privateJwk' | 'publicJwk'>): Signer {
  const { kid, alg } = key;
  const options = signOptions(alg, importPrivateKey(key));
  const digest = DIGEST[alg];
  const prefix = `${Buffer.from(JSON.stringify({ alg, kid, typ: ACCESS_TOKEN_TYP })).toString('base64url')}.`;
  return {
    kid,
    alg,
    sign(payload: AccessTokenPayload): string {
      const signingInput = prefix + Buffer.from(JSON.stringify(payload)).toString('base64url');
      // The signing input is pure base64url (ASCII), so latin1 is an exact and cheaper encoding.
      const signature = cryptoSign(digest, Buffer.from(signingInput, 'latin1'), options);
      return `${signingInput}.${signature.toString('base64url')}`;
    },
  };
}
