/**
 * Key resolvers over a fixed or replaceable key set, and the JWKS → VerificationKey conversion.
 * Every key is checked against its algorithm once, here, so the hot path can trust `alg`.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { ErrorCodes, TokenAuthorityError, errorMessage } from '../shared/errors.js';
import { algorithmForJwk, isAcceptableKid, keyAlgorithmProblem, MAX_KID_LENGTH, privateJwkMember, SIGNING_ALGORITHMS, type SigningAlgorithm } from './jose-rules.js';
import type { KeyResolver, VerificationKey } from './key-resolver.js';

/** Why `key` cannot verify `alg` here (not a public key, or keyAlgorithmProblem), or undefined if it can. */
function verificationKeyProblem(key: KeyObject, alg: SigningAlgorithm): string | undefined {
  if (key.type !== 'public') return `key is ${key.type}, expected a public key`;
  return keyAlgorithmProblem(key, alg);
}

/** Validate and index a key set; throws TokenAuthorityError(ERR_KEY) on any bad or duplicate key. */
function indexKeys(keys: readonly VerificationKey[]): Map<string, VerificationKey> {
  const byKid = new Map<string, VerificationKey>();
  for (const k of keys) {
    if (!isAcceptableKid(k.kid)) {
      throw new TokenAuthorityError(ErrorCodes.KEY, `key id must be a non-empty string of at most ${MAX_KID_LENGTH} characters`);
    }
    const problem = verificationKeyProblem(k.key, k.alg);
    if (problem !== undefined) throw new TokenAuthorityError(ErrorCodes.KEY, `key ${k.kid}: ${problem}`);
    if (byKid.has(k.kid)) throw new TokenAuthorityError(ErrorCodes.KEY, `duplicate key id ${k.kid}`);
    byKid.set(k.kid, Object.freeze({ kid: k.kid, alg: k.alg, key: k.key }));
  }
  return byKid;
}

/**
 * A resolver over a fixed key set (e.g. the authority's own keys, or keys from a file).
 * Throws TokenAuthorityError(ERR_KEY) if a key is private, does not fit its alg, or a kid repeats.
 */
export function createStaticKeyResolver(keys: readonly VerificationKey[]): KeyResolver {
  const byKid = indexKeys(keys);
  return { get: (kid) => byKid.get(kid) };
}

/**
 * A resolver whose key set can be swapped atomically, for the remote JWKS cache. `replace`
 * validates the whole new set before swapping, so a bad set leaves the old one in place.
 */
export class MutableKeyResolver implements KeyResolver {
  private byKid: Map<string, VerificationKey>;

  constructor(keys: readonly VerificationKey[] = []) {
    this.byKid = indexKeys(keys);
  }

  get(kid: string): VerificationKey | undefined {
    return this.byKid.get(kid);
  }

  /** Swap in a new key set; throws TokenAuthorityError(ERR_KEY) and keeps the old set if invalid. */
  replace(keys: readonly VerificationKey[]): void {
    this.byKid = indexKeys(keys);
  }

  /** The kids currently known. */
  kids(): string[] {
    return [...this.byKid.keys()];
  }

  get size(): number {
    return this.byKid.size;
  }
}

/** A JWKS member that was not turned into a key, and why. */
export interface SkippedJwk {
  /** Position in `jwks.keys`. */
  readonly index: number;
  readonly kid?: string;
  readonly reason: string;
}

export interface KeysFromJwksOptions {
  /** Algorithms to accept; keys for anything else are skipped. Default: all SIGNING_ALGORITHMS. */
  algorithms?: readonly SigningAlgorithm[];
}

export interface KeysFromJwksResult {
  readonly keys: VerificationKey[];
  readonly skipped: SkippedJwk[];
}

/** A JWK member value for a skip reason: bounded, since the document comes from the network. */
function show(value: unknown): string {
  return (JSON.stringify(value) ?? String(value)).slice(0, 40);
}

/**
 * Turn a JWKS document into verification keys. Only public signing keys with a `kid`, `use`
 * absent or "sig", `key_ops` absent or containing "verify", and a kty/crv that fits `alg` (given
 * and allowed, or inferred) are taken; everything else — including any member carrying private
 * key material, which a JWKS must never publish — is listed in `skipped` with the reason. A repeated
 * kid keeps the first key. Throws TokenAuthorityError(ERR_KEY) only if `jwks.keys` is not an array.
 */
export function keysFromJwks(jwks: { keys: unknown[] }, opts: KeysFromJwksOptions = {}): KeysFromJwksResult {
  const list: unknown = (jwks as { keys?: unknown } | null | undefined)?.keys;
  if (!Array.isArray(list)) throw new TokenAuthorityError(ErrorCodes.KEY, 'JWKS has no "keys" array');
  const allowed: readonly string[] = opts.algorithms ?? SIGNING_ALGORITHMS;
  const keys: VerificationKey[] = [];
  const skipped: SkippedJwk[] = [];
  const seen = new Set<string>();

  list.forEach((entry: unknown, index) => {
    const skip = (reason: string, kid?: string) => skipped.push(kid === undefined ? { index, reason } : { index, kid, reason });
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return skip('not a JSON object');
    const jwk = entry as Record<string, unknown>;
    const kid = jwk.kid;
    if (!isAcceptableKid(kid)) return skip('missing or invalid kid');
    if (privateJwkMember(jwk) !== undefined) return skip('carries private or symmetric key material', kid);
    if (jwk.use !== undefined && jwk.use !== 'sig') return skip(`use is ${show(jwk.use)}, not "sig"`, kid);
    if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) {
      return skip('key_ops does not include "verify"', kid);
    }
    const inferred = algorithmForJwk(jwk);
    if (inferred === undefined) return skip(`unsupported kty/crv ${show(jwk.kty)}/${show(jwk.crv)}`, kid);
    if (jwk.alg !== undefined && jwk.alg !== inferred) {
      return skip(`alg ${show(jwk.alg)} does not fit kty/crv ${show(jwk.kty)}/${show(jwk.crv)}`, kid);
    }
    if (!allowed.includes(inferred)) return skip(`alg ${inferred} is not allowed`, kid);
    if (seen.has(kid)) return skip('duplicate kid (the first key with it is kept)', kid);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch (error) {
      return skip(`not a valid key: ${errorMessage(error)}`, kid);
    }
    const problem = verificationKeyProblem(key, inferred);
    if (problem !== undefined) return skip(problem, kid);
    seen.add(kid);
    keys.push(Object.freeze({ kid, alg: inferred, key }));
  });
  return { keys, skipped };
}
