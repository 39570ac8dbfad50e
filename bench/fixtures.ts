/**
 * Keys and tokens for the in-process benchmarks: made by the authority's own key generator and
 * signer, with the claims Issue puts in a token, so every figure runs on production-shaped input.
 */
import type { KeyObject, VerifyKeyObjectInput } from 'node:crypto';
import { newId } from '../src/authority/session-records.js';
import { createSigner, type Signer } from '../src/keys/key-manager.js';
import { generateSigningKey, type GeneratedKey } from '../src/keys/key-generator.js';
import { importPrivateKey, importPublicKey } from '../src/keys/key-material.js';
import type { SigningAlgorithm } from '../src/verifier/jose-rules.js';
import type { AccessTokenPayload } from '../src/shared/claims.js';
import type { KeyResolver } from '../src/verifier/key-resolver.js';
import { createStaticKeyResolver } from '../src/verifier/key-resolvers.js';

export const BENCH_ISSUER = 'https://issuer.bench.example';
export const BENCH_AUDIENCE = 'orders';

export interface BenchKey {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly stored: GeneratedKey;
  /** The Issue hot path's signer for this key. */
  readonly signer: Signer;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly resolver: KeyResolver;
  /** What raw crypto.verify/sign take for this key (JWS signatures are R||S for ES256). */
  readonly verifyInput: KeyObject | VerifyKeyObjectInput;
  readonly digest: 'sha256' | null;
}

export async function benchKey(alg: SigningAlgorithm): Promise<BenchKey> {
  const stored = await generateSigningKey(alg);
  const publicKey = importPublicKey(stored);
  const privateKey = importPrivateKey(stored);
  return {
    alg,
    kid: stored.kid,
    stored,
    signer: createSigner(stored),
    publicKey,
    privateKey,
    resolver: createStaticKeyResolver([{ kid: stored.kid, alg, key: publicKey }]),
    verifyInput: alg === 'ES256' ? { key: publicKey, dsaEncoding: 'ieee-p1363' } : publicKey,
    digest: alg === 'EdDSA' ? null : 'sha256',
  };
}

/** The claims Issue signs (see TokenAuthority.sign): one audience, three scopes, a client id. */
export function tokenPayload(nowSec: number, ttlSec = 900): AccessTokenPayload {
  return {
    iss: BENCH_ISSUER,
    sub: `user-${newId().slice(0, 10)}`,
    aud: BENCH_AUDIENCE,
    exp: nowSec + ttlSec,
    iat: nowSec,
    nbf: nowSec,
    jti: newId(),
    sid: newId(),
    gen: 0,
    client_id: 'web-frontend',
    scope: 'orders:read orders:write profile',
  };
}

/** `n` distinct access tokens signed with `key` (each has its own jti and sid). */
export function signPool(key: BenchKey, n: number): string[] {
  const now = Math.floor(Date.now() / 1000);
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = key.signer.sign(tokenPayload(now));
  return out;
}

/** A token split the way raw crypto.verify wants it: signing input and decoded signature. */
export interface RawToken {
  data: Buffer;
  signature: Buffer;
}

export function splitToken(token: string): RawToken {
  const dot = token.lastIndexOf('.');
  return { data: Buffer.from(token.slice(0, dot), 'latin1'), signature: Buffer.from(token.slice(dot + 1), 'base64url') };
}

/**
 * A copy of `s` that V8 has never hashed, as a token decoded from a request is: a Map lookup with
 * it must hash all of its characters and compare them on a hit, which a reused string object
 * (whose hash V8 caches) would skip.
 */
export function freshCopy(bytes: Buffer): string {
  return bytes.toString('latin1');
}
