/**
 * Fresh signing key pairs. Key ids are 16 random bytes in base64url (22 characters): a kid
 * only has to be unique and unguessable-by-accident, and a random one says nothing about
 * the key or the time it was made.
 */
import { generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { KEY_SHAPES, MIN_RSA_BITS, type SigningAlgorithm } from '../verifier/jose-rules.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { PrivateJwk, PublicJwk } from './key-store.js';

const generateKeyPairAsync = promisify(generateKeyPair);

/** A new key pair, exported as JWKs. */
export interface GeneratedKey {
  kid: string;
  alg: SigningAlgorithm;
  privateJwk: PrivateJwk;
  publicJwk: PublicJwk;
}

/** A new random key id: 16 bytes, base64url. */
export function newKid(): string {
  return randomBytes(16).toString('base64url');
}

async function generatePair(alg: SigningAlgorithm): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  switch (alg) {
    case 'ES256':
      return generateKeyPairAsync('ec', { namedCurve: 'P-256' });
    case 'EdDSA':
      return generateKeyPairAsync('ed25519', {});
    case 'RS256':
      return generateKeyPairAsync('rsa', { modulusLength: MIN_RSA_BITS, publicExponent: 0x10001 });
  }
}

/**
 * Builds the published JWK from a key's JWK export by copying only the public members the
 * algorithm needs (an allow-list, so a private member can never slip through).
 */
export function toPublicJwk(jwk: Record<string, unknown>, kid: string, alg: SigningAlgorithm): PublicJwk {
  const shape = KEY_SHAPES[alg];
  const out: Record<string, unknown> = { kty: shape.kty };
  for (const member of shape.members) out[member] = jwk[member];
  out.kid = kid;
  out.alg = alg;
  out.use = 'sig';
  return out as unknown as PublicJwk;
}

/**
 * Generates a key pair for `alg` (ES256: P-256; EdDSA: Ed25519; RS256: 2048-bit RSA) off the
 * main thread.
 * @throws TokenAuthorityError ERR_KEY if generation fails.
 */
export async function generateSigningKey(alg: SigningAlgorithm, kid: string = newKid()): Promise<GeneratedKey> {
  let pair: { publicKey: KeyObject; privateKey: KeyObject };
  try {
    pair = await generatePair(alg);
  } catch (cause) {
    throw new TokenAuthorityError(ErrorCodes.KEY, `cannot generate a ${alg} key pair`, { cause });
  }
  const exported = pair.privateKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const publicJwk = toPublicJwk(exported, kid, alg);
  const privateJwk: Record<string, unknown> = { ...publicJwk };
  for (const member of KEY_SHAPES[alg].privateMembers) privateJwk[member] = exported[member];
  return { kid, alg, privateJwk: privateJwk as unknown as PrivateJwk, publicJwk };
}
