import type { KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from './jose-rules.js';

/** A public key that may verify tokens whose header names its `kid`. */
export interface VerificationKey {
  readonly kid: string;
  /** The one algorithm this key verifies; a token whose `alg` differs is rejected. */
  readonly alg: SigningAlgorithm;
  readonly key: KeyObject;
}

/**
 * Where the verifier finds keys by `kid`. Keys come only from here (a local key manager or the
 * authority's JWKS), never from a token's own header (`jwk`, `jku`, `x5u`, `x5c`).
 */
export interface KeyResolver {
  /** The key for this kid if it is known now. Synchronous: on the hot path. */
  get(kid: string): VerificationKey | undefined;
  /**
   * Called for a kid `get` did not know. May refetch the key set (single-flight, rate-limited);
   * resolves to the key if it appeared. Optional: a local resolver has nothing to fetch.
   */
  resolveUnknown?(kid: string): Promise<VerificationKey | undefined>;
  /** Load keys (e.g. fetch the JWKS). createVerifier().start() calls it; must be idempotent. */
  start?(): Promise<unknown>;
  /**
   * Stop background work (a remote resolver's refresh timer). The verifier never calls it: whoever
   * created the resolver stops it, after the verifiers that use it.
   */
  stop?(): void;
}
