/**
 * Where the signing key set lives. One document holds every key, so a rotation (three state
 * changes) is one atomic write, and a version number turns every write into a compare-and-set.
 */
import type { SigningAlgorithm } from '../verifier/jose-rules.js';

/** `next` is published but does not sign; exactly one `active` key signs; `retired` only verifies. */
export type KeyState = 'next' | 'active' | 'retired';

export const KEY_STATES: readonly KeyState[] = ['next', 'active', 'retired'];

/** A public JWK as published in the JWKS: no private members, ever. */
export interface PublicJwk {
  kty: 'EC' | 'OKP' | 'RSA';
  kid: string;
  alg: SigningAlgorithm;
  use: 'sig';
  /** EC and OKP. */
  crv?: string;
  x?: string;
  /** EC only. */
  y?: string;
  /** RSA only. */
  n?: string;
  e?: string;
}

/** A private JWK as stored: the public members plus `d` (and the RSA CRT members). */
export interface PrivateJwk extends PublicJwk {
  d: string;
  p?: string;
  q?: string;
  dp?: string;
  dq?: string;
  qi?: string;
}

/** One key of the set. Times are milliseconds since the epoch. */
export interface StoredKey {
  kid: string;
  alg: SigningAlgorithm;
  state: KeyState;
  createdAt: number;
  /** When it became `active`; drives the rotation schedule. */
  activatedAt?: number;
  /** When it became `retired`. */
  retiredAt?: number;
  /** `retiredAt + retainMs`: after this, no token it signed is still valid, so it is removed. */
  removeAfter?: number;
  privateJwk: PrivateJwk;
  publicJwk: PublicJwk;
}

/** The whole key set. `version` starts at 1 and grows by one with every successful save. */
export interface KeySetDocument {
  version: number;
  keys: StoredKey[];
}

/**
 * Storage for the key set. Implementations hold the document as an opaque unit; they may encrypt
 * it at rest, but must return exactly what was saved.
 */
export interface KeyStore {
  /** The current document, or undefined if nothing was ever saved. */
  load(): Promise<KeySetDocument | undefined>;
  /**
   * Compare-and-set: writes `doc` only if the stored version is still `expectedVersion` (0 when the
   * store is empty) and returns true; returns false if another writer got there first (the caller
   * reloads and decides again). `doc.version` must be `expectedVersion + 1`.
   */
  save(doc: KeySetDocument, expectedVersion: number): Promise<boolean>;
  /** Releases connections, if the store holds any (RedisKeyStore). KeyManager.stop() calls it. */
  close?(): Promise<void>;
}
