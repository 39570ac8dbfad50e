/**
 * Crafts arbitrary — including deliberately malicious — compact JWS tokens for tests. Nothing here
 * validates anything: it signs whatever header and payload it is given, with whatever key and
 * algorithm, so that tests can show the verifier refuses it.
 *
 * Typical use:
 *   const k = generateTestKey('ES256');
 *   const good = forgeToken({ key: k, payload: accessPayload({ iss }) });
 *   const none = forgeNoneToken({ payload: accessPayload({ iss }), kid: k.kid, alg: 'nOnE' });
 *   const confused = forgeHmacWithPublicKey(k, accessPayload({ iss }));
 */
import { createHmac, createPrivateKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../../src/verifier/jose-rules.js';
import type { AccessTokenPayload } from '../../src/shared/claims.js';
import type { VerificationKey } from '../../src/verifier/key-resolver.js';

/** Every algorithm the forge can sign with; most of them the verifier must refuse. */
export type ForgeAlgorithm =
  | 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512'
  | 'HS256' | 'HS384' | 'HS512' | 'none';

/** A generated key pair with the metadata tests need. */
export interface TestKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The public half as the verifier's KeyResolver hands it out. */
  readonly verificationKey: VerificationKey;
}

/** Generate a fresh key pair for `alg` (ES256 → P-256, EdDSA → Ed25519, RS256 → RSA-2048). */
export function generateTestKey(alg: SigningAlgorithm, kid: string = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`): TestKey {
  const pair =
    alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA' ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    kid,
    alg,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    verificationKey: { kid, alg, key: pair.publicKey },
  };
}

export function b64url(data: Uint8Array | string): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data)).toString('base64url');
}

/** A header or payload: an object (JSON-encoded), a string (used verbatim as the JSON text), or raw bytes. */
export type ForgePart = object | string | Uint8Array;

function encodePart(part: ForgePart): string {
  if (typeof part === 'string' || part instanceof Uint8Array) return b64url(part);
  return b64url(JSON.stringify(part));
}

/** Sign `input` (the ASCII signing input) with `alg`. `key` is a KeyObject, or a secret for HS*. */
export function signRaw(alg: ForgeAlgorithm, key: KeyObject | Uint8Array | string | undefined, input: string): Buffer {
  const data = Buffer.from(input, 'latin1');
  if (alg === 'none') return Buffer.alloc(0);
  if (alg.startsWith('HS')) {
    if (key === undefined) throw new Error('HS* needs a secret');
    const secret = typeof key === 'string' || key instanceof Uint8Array ? key : key.export({ format: 'pem', type: 'spki' });
    return createHmac(`sha${alg.slice(2)}`, secret).update(data).digest();
  }
  if (key === undefined || typeof key === 'string' || key instanceof Uint8Array) throw new Error(`${alg} needs a KeyObject`);
  const k = key;
  const bits = alg.slice(2);
  if (alg === 'EdDSA') return sign(null, data, k);
  if (alg.startsWith('ES')) return sign(`sha${bits}`, data, { key: k, dsaEncoding: 'ieee-p1363' });
  if (alg.startsWith('PS')) return sign(`sha${bits}`, data, { key: k, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(bits) / 8 });
  return sign(`sha${bits}`, data, k); // RS*
}

export interface ForgeOptions {
  /** Header to use. Default: `{alg, typ:'at+jwt', kid}` from `key`/`alg`/`kid`. Strings are raw JSON. */
  header?: ForgePart;
  /** Merged over the default header (ignored if `header` is given). `undefined` values delete a member. */
  headerExtra?: Record<string, unknown>;
  payload: ForgePart;
  /** Key to sign with: a TestKey, a private KeyObject, or an HMAC secret. */
  key?: TestKey | KeyObject | Uint8Array | string;
  /** Algorithm to sign with; defaults to the TestKey's. Need not match the header's alg. */
  alg?: ForgeAlgorithm;
  /** kid for the default header; defaults to the TestKey's. */
  kid?: string;
  /** Use these signature bytes (or this exact base64url text) instead of signing. */
  signature?: Uint8Array | string;
}

function isTestKey(k: unknown): k is TestKey {
  return typeof k === 'object' && k !== null && 'privateKey' in k && 'verificationKey' in k;
}

/** Build and sign a compact JWS from arbitrary parts. */
export function forgeToken(o: ForgeOptions): string {
  const testKey = isTestKey(o.key) ? o.key : undefined;
  const alg: ForgeAlgorithm = o.alg ?? testKey?.alg ?? 'none';
  let header: ForgePart;
  if (o.header !== undefined) {
    header = o.header;
  } else {
    const h: Record<string, unknown> = { alg, typ: 'at+jwt', kid: o.kid ?? testKey?.kid };
    for (const [name, value] of Object.entries(o.headerExtra ?? {})) {
      if (value === undefined) delete h[name];
      else h[name] = value;
    }
    header = h;
  }
  const input = `${encodePart(header)}.${encodePart(o.payload)}`;
  let sig: string;
  if (typeof o.signature === 'string') sig = o.signature;
  else if (o.signature !== undefined) sig = b64url(o.signature);
  else sig = b64url(signRaw(alg, testKey ? testKey.privateKey : (o.key as KeyObject | Uint8Array | string | undefined), input));
  return `${input}.${sig}`;
}

/** An unsigned token (`alg` none, in whatever casing), with an empty signature segment. */
export function forgeNoneToken(o: { payload: ForgePart; kid?: string; alg?: string; headerExtra?: Record<string, unknown> }): string {
  const header = { alg: o.alg ?? 'none', typ: 'at+jwt', ...(o.kid === undefined ? {} : { kid: o.kid }), ...o.headerExtra };
  return `${encodePart(header)}.${encodePart(o.payload)}.`;
}

/**
 * The classic algorithm-confusion attack: an HS* token whose HMAC secret is the verifier's public
 * key in PEM (SPKI) form, with the header naming the RSA/EC key's kid.
 */
export function forgeHmacWithPublicKey(key: TestKey, payload: ForgePart, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256'): string {
  const pem = key.publicKey.export({ format: 'pem', type: 'spki' }) as string;
  return forgeToken({ payload, alg, key: Buffer.from(pem, 'utf8'), kid: key.kid });
}

/** Flip one bit of the signature (the first byte, so the length and base64url stay canonical). */
export function tamperSignature(token: string): string {
  const parts = token.split('.');
  const sig = Buffer.from(parts[2] ?? '', 'base64url');
  if (sig.length === 0) throw new Error('token has no signature to tamper with');
  sig[0] = (sig[0] as number) ^ 0x01;
  return `${parts[0]}.${parts[1]}.${sig.toString('base64url')}`;
}

/** Replace the payload with another one and keep the original signature (a payload swap). */
export function swapPayload(token: string, payload: ForgePart): string {
  const parts = token.split('.');
  return `${parts[0]}.${encodePart(payload)}.${parts[2]}`;
}

/** A token in the JWE compact shape (5 segments): what a verifier of JWS access tokens must refuse. */
export function forgeJweShaped(): string {
  const header = b64url(JSON.stringify({ alg: 'dir', enc: 'A256GCM', typ: 'at+jwt' }));
  return [header, '', b64url(Buffer.alloc(12, 1)), b64url('ciphertext'), b64url(Buffer.alloc(16, 2))].join('.');
}

/** Split a token into its three segments, decoding header and payload as JSON. */
export function decodeToken(token: string): { header: Record<string, unknown>; payload: Record<string, unknown>; signature: Buffer } {
  const [h, p, s] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as Record<string, unknown>,
    signature: Buffer.from(s ?? '', 'base64url'),
  };
}

/**
 * A well-formed access-token payload (RFC 9068 profile as this project issues it), valid from
 * `nowSec` for `ttlSec`. Members set to `undefined` in `overrides` are removed.
 */
export function accessPayload(overrides: Partial<Record<keyof AccessTokenPayload | string, unknown>> & { nowSec?: number; ttlSec?: number } = {}): Record<string, unknown> {
  const { nowSec = Math.floor(Date.now() / 1000), ttlSec = 300, ...rest } = overrides;
  const p: Record<string, unknown> = {
    iss: 'https://issuer.test',
    sub: 'user-1',
    aud: ['api'],
    exp: nowSec + ttlSec,
    iat: nowSec,
    nbf: nowSec,
    jti: randomUUID(),
    sid: randomUUID(),
    gen: 0,
    scope: 'read write',
  };
  for (const [name, value] of Object.entries(rest)) {
    if (value === undefined) delete p[name];
    else p[name] = value;
  }
  return p;
}

/** Convert a PEM/DER private key to a KeyObject (for tests that load fixtures). */
export function privateKeyFrom(pem: string | Buffer): KeyObject {
  return createPrivateKey(pem);
}
