/**
 * Turns stored JWKs into KeyObjects, once per key: parsing a JWK per signature or verification
 * would dominate the hot path.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { KEY_SHAPES, keyAlgorithmProblem } from '../verifier/jose-rules.js';
import type { StoredKey } from './key-store.js';

function keyError(key: Pick<StoredKey, 'kid' | 'alg'>, problem: string, cause?: unknown): TokenAuthorityError {
  return new TokenAuthorityError(ErrorCodes.KEY, `${key.alg} key ${key.kid}: ${problem}`, { cause });
}

/** The algorithm is bound to the key: an RSA key may not sit under an ES256 label, nor a weak one. */
function checkKeyType(key: Pick<StoredKey, 'kid' | 'alg'>, keyObject: KeyObject): void {
  const problem = keyAlgorithmProblem(keyObject, key.alg);
  if (problem !== undefined) throw keyError(key, problem);
}

/**
 * The verification key of a stored key.
 * @throws TokenAuthorityError ERR_KEY if the public JWK is not a valid key of its algorithm.
 */
export function importPublicKey(key: Pick<StoredKey, 'kid' | 'alg' | 'publicJwk'>): KeyObject {
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' });
  } catch (cause) {
    throw keyError(key, 'the public JWK is not a valid key', cause);
  }
  checkKeyType(key, keyObject);
  return keyObject;
}

/**
 * The signing key of a stored key, checked against its published public key so that a store
 * that pairs a private key with someone else's public key is caught before the first token.
 * @throws TokenAuthorityError ERR_KEY if the private JWK is invalid or does not match.
 */
export function importPrivateKey(key: Pick<StoredKey, 'kid' | 'alg' | 'privateJwk' | 'publicJwk'>): KeyObject {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: { ...key.privateJwk }, format: 'jwk' });
  } catch (cause) {
    // The cause is Node's parse error; it names no key material.
    throw keyError(key, 'the private JWK is not a valid key', cause);
  }
  checkKeyType(key, keyObject);
  const derived = createPublicKey(keyObject).export({ format: 'jwk' }) as Record<string, unknown>;
  const published = key.publicJwk as unknown as Record<string, unknown>;
  for (const member of KEY_SHAPES[key.alg].members) {
    if (derived[member] !== published[member]) throw keyError(key, 'the private key does not match its public JWK');
  }
  return keyObject;
}
