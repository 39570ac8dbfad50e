/**
 * The attack corpus: one table of hostile (and a few deliberately valid "control") access tokens,
 * each with the exact verdict every verifier must reach. The same table runs against the library
 * (createVerifier), the authority's Verify RPC and the sidecar (Verify RPC and Envoy's Check):
 * corpus-library/authority/sidecar.test.ts.
 *
 * Cases never depend on a target: a case builds its token from a CorpusContext, which every target
 * fills the same way — a trusted key of each allowed family (ES256 active, EdDSA next, RS256
 * retired but still published), a key that was retired and has since been removed, untrusted
 * "attacker" keys, ids that the target has revoked, and a real refresh token.
 *
 * The controls (`expect: 'VALID'`) prove that a rejection comes from the one thing a case changes:
 * each hostile case differs from an accepted token in exactly that thing.
 */
import { createHash, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../../src/verifier/jose-rules.js';
import type { VerifyReason } from '../../src/shared/claims.js';
import { MAX_TIME_SEC } from '../../src/verifier/verify-token.js';
import { accessPayload, b64url, forgeJweShaped, forgeNoneToken, forgeToken, swapPayload, tamperSignature, type ForgePart, type TestKey } from '../helpers/token-forge.js';

/** What a verifier must answer: a rejection reason, or acceptance (controls only). */
export type Expectation = VerifyReason | 'VALID';

/** A trusted key of the target, with the JWK exactly as the target publishes it. */
export interface CorpusKey extends TestKey {
  readonly publicJwk: Readonly<Record<string, string>>;
}

/** Everything a case may use to build its token. Filled by each target in its `before` hook. */
export interface CorpusContext {
  /** The issuer every target is configured with. */
  readonly issuer: string;
  /** The audience every Verify call requires (and every control token carries). */
  readonly audience: string;
  /** The target's notion of now, in seconds. */
  nowSec(): number;
  /** Keys the target trusts: ES256 (active), EdDSA (next), RS256 (retired, still published). */
  readonly keys: Readonly<Record<SigningAlgorithm, CorpusKey>>;
  /** A key the target trusted once: retired, then removed once its retention had passed. */
  readonly removed: TestKey;
  /** Keys the target has never seen. */
  readonly attacker: Readonly<Record<SigningAlgorithm, TestKey>>;
  /** A genuine refresh token of the target's authority (`tart_…`). */
  readonly refreshToken: string;
  /** Ids the target has revoked before the corpus runs (the subject by generation). */
  readonly revoked: { readonly jti: string; readonly sid: string; readonly sub: string };
}

export interface AttackCase {
  /** Unique, readable: it names the test. */
  readonly name: string;
  /** Why this must be rejected: the RFC section or CVE the case is drawn from. */
  readonly ref: string;
  /** The token. A non-string value can only reach the library (a proto `string` cannot carry it). */
  make(ctx: CorpusContext): unknown;
  /** The verdict of the library and of both Verify RPCs. */
  readonly expect: Expectation;
  /**
   * The verifier's detail must match: it pins *why* the reason was given, so that a case cannot pass
   * by failing early for another cause (a broken fixture, say). Every target returns the same text.
   */
  readonly detail?: RegExp;
  /** Scopes the Verify call requires (default: none). */
  readonly requiredScopes?: readonly string[];
  /**
   * The verdict of Envoy's Check when it differs from `expect`, because the token travels as
   * `authorization: Bearer <token>`: HTTP strips optional whitespace (SP/HTAB) around a field value
   * and RFC 6750 allows several SPs after the scheme, and an empty credential is no token at all.
   */
  readonly viaHeader?: Expectation | 'MISSING_TOKEN';
}

// ---------------------------------------------------------------------------------------------
// Building blocks

const REF = {
  none: 'RFC 8725 §2.1, §3.1; CVE-2015-9235',
  hmac: 'RFC 8725 §2.1, §3.1; CVE-2015-9235, CVE-2016-10555, CVE-2022-29217',
  confusion: 'RFC 8725 §3.1 (one algorithm per key)',
  allowList: 'RFC 8725 §3.1; RFC 7518 §3.1',
  p1363: 'RFC 7518 §3.4 (R||S, 64 bytes)',
  psychic: 'CVE-2022-21449 (ECDSA psychic signature)',
  ed25519: 'RFC 8032 §5.1.7 (S < L, canonical R)',
  rsa: 'RFC 7518 §3.3; RFC 8017 §8.2.2',
  kid: 'RFC 8725 §3.10 (kid is untrusted input); RFC 7515 §4.1.4',
  embeddedKey: 'RFC 8725 §3.10; RFC 7515 §4.1.2-4.1.8; CVE-2018-0114',
  crit: 'RFC 7515 §4.1.11',
  b64: 'RFC 7797 §3, §6',
  duplicate: 'RFC 7515 §4; RFC 7519 §4; RFC 8259 §4',
  base64url: 'RFC 7515 §2, §7.1; RFC 4648 §3.5, §5',
  segments: 'RFC 7515 §7.1; RFC 7516 §9; RFC 8725 §2.8',
  typ: 'RFC 9068 §2.1, §4; RFC 8725 §3.11',
  iss: 'RFC 9068 §4; RFC 8725 §3.8',
  aud: 'RFC 9068 §4; RFC 8725 §3.9',
  time: 'RFC 7519 §2 (NumericDate), §4.1.4-4.1.6; RFC 9068 §4',
  claims: 'RFC 9068 §2.2; RFC 7519 §7.2',
  scope: 'RFC 9068 §2.2.3; RFC 6750 §3.1',
  kinds: 'RFC 8725 §3.12 (mutually exclusive validation); RFC 9068 §4',
  size: 'CWE-400 (uncontrolled resource consumption); README "Limits"',
  keys: 'RFC 7517 §4.5; DESIGN key lifecycle (next → active → retired → removed)',
  signature: 'RFC 7515 §5.2',
  revocation: 'DESIGN revocation model',
  whitespace: 'RFC 7515 §7.1 (no whitespace in the compact form)',
  control: 'control: must be accepted',
} as const;

const ALGS: readonly SigningAlgorithm[] = ['ES256', 'EdDSA', 'RS256'];

/** Details that pin the cause of a rejection (see AttackCase.detail). */
const NOT_ALLOWED = /header alg is not allowed/;
const DOES_NOT_VERIFY = /signature does not verify/;
const WRONG_LENGTH = /signature has the wrong length/;
const NOT_BASE64URL = /not canonical base64url/;
const SEGMENTS = /segments/;
const TOO_LONG = /longer than 8192 bytes/;
const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A correct payload for the context: right issuer, the required audience, valid now. */
export function claimsFor(ctx: CorpusContext, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return accessPayload({ iss: ctx.issuer, aud: [ctx.audience], nowSec: ctx.nowSec(), ...overrides });
}

/** A token signed correctly by a trusted key, with the given claim overrides and header changes. */
export function signedBy(ctx: CorpusContext, alg: SigningAlgorithm, overrides: Record<string, unknown> = {}, headerExtra: Record<string, unknown> = {}): string {
  return forgeToken({ key: ctx.keys[alg], payload: claimsFor(ctx, overrides), headerExtra });
}

/** Signed correctly by the active (ES256) key. */
const good = (ctx: CorpusContext, overrides: Record<string, unknown> = {}, headerExtra: Record<string, unknown> = {}) =>
  signedBy(ctx, 'ES256', overrides, headerExtra);

/** Signed by the trusted ES256 key over an arbitrary (raw) header and payload. */
const signedRaw = (ctx: CorpusContext, header: ForgePart, payload: ForgePart) =>
  forgeToken({ key: ctx.keys.ES256, alg: 'ES256', header, payload });

/** The JSON text of a correct payload with raw members appended (for values JSON.stringify cannot write). */
function payloadText(ctx: CorpusContext, omit: readonly string[], rawMembers: string): string {
  const p = claimsFor(ctx);
  for (const name of omit) delete p[name];
  const text = JSON.stringify(p);
  return `${text.slice(0, -1)},${rawMembers}}`;
}

const headerOf = (ctx: CorpusContext, alg: SigningAlgorithm = 'ES256') => ({ alg, typ: 'at+jwt', kid: ctx.keys[alg].kid });
const parts = (token: string) => token.split('.') as [string, string, string];

/** Set an unused low bit of a segment's last character: Node's lenient decoder ignores it. */
export function setTrailingBit(segment: string): string {
  if (segment.length % 4 !== 2 && segment.length % 4 !== 3) throw new Error('fixture: segment has no unused bits');
  const v = B64URL_ALPHABET.indexOf(segment[segment.length - 1] as string);
  return segment.slice(0, -1) + B64URL_ALPHABET[v | 1];
}

/** A JSON object text whose base64url encoding is 2 mod 4 characters long (so it has unused bits). */
function withUnusedBits(obj: Record<string, unknown>): string {
  for (let pad = 0; pad < 3; pad++) {
    const text = JSON.stringify({ ...obj, pad: 'x'.repeat(pad) });
    if (Buffer.byteLength(text) % 3 === 1) return text;
  }
  throw new Error('unreachable');
}

/** Replace the character at `i` of the signature segment (keeping length). */
function withSigChar(token: string, i: number, c: string): string {
  const [h, p, s] = parts(token);
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

/** Re-sign `token`'s signing input with new signature bytes. */
const withSignature = (token: string, sig: Uint8Array) => `${token.slice(0, token.lastIndexOf('.'))}.${b64url(sig)}`;
const signingInput = (token: string) => Buffer.from(token.slice(0, token.lastIndexOf('.')), 'latin1');

/** P-256 group order n (SEC 2 §2.4.2). */
const P256_N = Buffer.from('FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551', 'hex');
/** Ed25519 group order L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1). */
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;

function leToBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number);
  return n;
}

function bigIntToLe(n: bigint, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

/** The ways an attacker can turn a published public key into an HMAC secret. */
const SECRET_KINDS = ['PEM (SPKI)', 'DER (SPKI)', 'published JWK JSON bytes', 'raw x/n bytes', 'x/n as base64url text', 'PEM (PKCS#1)'] as const;
type SecretKind = (typeof SECRET_KINDS)[number];

function publicKeySecret(key: CorpusKey, kind: SecretKind): Uint8Array {
  const raw = key.alg === 'RS256' ? (key.publicJwk.n as string) : (key.publicJwk.x as string);
  switch (kind) {
    case 'PEM (SPKI)': return Buffer.from(key.publicKey.export({ format: 'pem', type: 'spki' }) as string);
    case 'DER (SPKI)': return key.publicKey.export({ format: 'der', type: 'spki' });
    case 'published JWK JSON bytes': return Buffer.from(JSON.stringify(key.publicJwk));
    case 'raw x/n bytes': return Buffer.from(raw, 'base64url');
    case 'x/n as base64url text': return Buffer.from(raw);
    case 'PEM (PKCS#1)': return Buffer.from(key.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string);
  }
}

/** A 1 MiB string. */
const MIB = 1 << 20;

/** A token of exactly `length` characters, correctly signed by the active key, padded by claims. */
function signedOfLength(ctx: CorpusContext, length: number): string {
  const payload = claimsFor(ctx, { pad: '' });
  const payloadBytes = Buffer.byteLength(JSON.stringify(payload));
  // base64url of n bytes is 4k, 4k+2 or 4k+3 characters, never 4k+1: pad the header until the
  // payload segment needs a reachable length, then pad the payload to exactly that.
  for (let h = 0; h < 4; h++) {
    const header = { ...headerOf(ctx), ...(h > 0 ? { h: 'h'.repeat(h) } : {}) };
    const need = length - b64url(JSON.stringify(header)).length - 2 - 86;
    if (need % 4 === 1) continue;
    const bytes = Math.floor((need * 3) / 4);
    if (bytes < payloadBytes) break;
    const token = forgeToken({ key: ctx.keys.ES256, alg: 'ES256', header, payload: { ...payload, pad: 'p'.repeat(bytes - payloadBytes) } });
    if (token.length !== length) throw new Error(`fixture: built ${token.length} characters, wanted ${length}`);
    return token;
  }
  throw new Error(`fixture: cannot build a signed token of exactly ${length} characters`);
}

// ---------------------------------------------------------------------------------------------
// The corpus

const cases: AttackCase[] = [];
const add = (c: AttackCase) => cases.push(c);

// --- controls: one accepted token per trusted key, and the variants the rules explicitly allow
for (const alg of ALGS) {
  add({ name: `control: a correct ${alg} token is accepted`, ref: REF.control, expect: 'VALID', make: (ctx) => signedBy(ctx, alg) });
}
for (const typ of ['at+jwt', 'at+JWT', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT']) {
  add({ name: `control: typ "${typ}" is accepted (media types are case-insensitive; "application/" may be omitted)`, ref: 'RFC 9068 §4; RFC 7515 §4.1.9', expect: 'VALID', make: (ctx) => good(ctx, {}, { typ }) });
}
add({ name: 'control: a non-integer exp in the future is accepted (NumericDate may be fractional)', ref: REF.time, expect: 'VALID', make: (ctx) => good(ctx, { exp: ctx.nowSec() + 300.5 }) });
add({ name: 'control: exp a few seconds past, within the clock-skew leeway, is accepted', ref: REF.time, expect: 'VALID', make: (ctx) => good(ctx, { exp: ctx.nowSec() - 5 }) });
add({ name: 'control: aud as a single string is accepted', ref: REF.aud, expect: 'VALID', make: (ctx) => good(ctx, { aud: ctx.audience }) });
add({ name: 'control: a token of exactly 8192 characters is accepted', ref: REF.size, expect: 'VALID', make: (ctx) => signedOfLength(ctx, 8192) });
add({
  name: 'control: a "__proto__" member in the payload is inert',
  ref: 'prototype pollution (CWE-1321)',
  expect: 'VALID',
  make: (ctx) => forgeToken({ key: ctx.keys.ES256, payload: payloadText(ctx, [], '"__proto__":{"sub":"admin","scope":"admin"}') }),
});

// --- alg none, every casing, with and without a signature
for (const none of ['none', 'None', 'NONE', 'nOnE']) {
  add({ name: `alg "${none}" with an empty signature`, ref: REF.none, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => forgeNoneToken({ payload: claimsFor(ctx), kid: ctx.keys.ES256.kid, alg: none }) });
  add({ name: `alg "${none}" with no kid`, ref: REF.none, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => forgeNoneToken({ payload: claimsFor(ctx), alg: none }) });
  add({ name: `alg "${none}" with a real ES256 signature`, ref: REF.none, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => good(ctx, {}, { alg: none }) });
  add({ name: `alg "${none}" with a junk signature`, ref: REF.none, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => `${forgeNoneToken({ payload: claimsFor(ctx), kid: ctx.keys.ES256.kid, alg: none })}${b64url('junk')}` });
}

// --- HMAC with the public key (algorithm confusion), for every trusted key and every encoding
for (const alg of ALGS) {
  for (const hs of ['HS256', 'HS384', 'HS512'] as const) {
    for (const kind of SECRET_KINDS) {
      if (kind === 'PEM (PKCS#1)' && alg !== 'RS256') continue; // PKCS#1 is RSA's own format
      const label = kind.replace('x/n', alg === 'RS256' ? 'n' : 'x');
      add({
        name: `${hs} signed with the ${alg} public key's ${label} as the secret`,
        ref: REF.hmac,
        expect: 'UNSUPPORTED_ALGORITHM',
        detail: NOT_ALLOWED,
        make: (ctx) => forgeToken({ payload: claimsFor(ctx), alg: hs, key: publicKeySecret(ctx.keys[alg], kind), kid: ctx.keys[alg].kid }),
      });
    }
  }
}

// --- RS/ES/EdDSA confusion: header alg of one family, kid of a key of another
for (const headerAlg of ALGS) {
  for (const keyAlg of ALGS) {
    if (headerAlg === keyAlg) continue;
    add({
      name: `header alg ${headerAlg} (signed by the trusted ${headerAlg} key) naming the ${keyAlg} key's kid`,
      ref: REF.confusion,
      expect: 'UNSUPPORTED_ALGORITHM',
      detail: /header alg does not match the key/,
      make: (ctx) => forgeToken({ key: ctx.keys[headerAlg], kid: ctx.keys[keyAlg].kid, payload: claimsFor(ctx) }),
    });
  }
}
add({
  name: 'header alg ES256 and the ES256 kid, but an Ed25519 signature (64 bytes, right length)',
  ref: REF.confusion,
  expect: 'BAD_SIGNATURE',
  detail: DOES_NOT_VERIFY,
  make: (ctx) => {
    const t = good(ctx);
    return withSignature(t, cryptoSign(null, signingInput(t), ctx.keys.EdDSA.privateKey));
  },
});
add({
  name: 'header alg RS256 and the RS256 kid, but an ES256 signature',
  ref: REF.confusion,
  expect: 'BAD_SIGNATURE',
  detail: WRONG_LENGTH,
  make: (ctx) => {
    const t = signedBy(ctx, 'RS256');
    return withSignature(t, cryptoSign('sha256', signingInput(t), { key: ctx.keys.ES256.privateKey, dsaEncoding: 'ieee-p1363' }));
  },
});
add({
  name: 'header alg EdDSA and the EdDSA kid, but an RS256 signature',
  ref: REF.confusion,
  expect: 'BAD_SIGNATURE',
  detail: WRONG_LENGTH,
  make: (ctx) => {
    const t = signedBy(ctx, 'EdDSA');
    return withSignature(t, cryptoSign('sha256', signingInput(t), ctx.keys.RS256.privateKey));
  },
});

// --- algorithms off the allow-list, with matching key material where it exists
add({ name: 'PS256 signed by the trusted RSA key (RSA-PSS is not RS256)', ref: REF.allowList, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => forgeToken({ key: ctx.keys.RS256.privateKey, alg: 'PS256', kid: ctx.keys.RS256.kid, payload: claimsFor(ctx) }) });
add({ name: 'RS512 signed by the trusted RSA key', ref: REF.allowList, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => forgeToken({ key: ctx.keys.RS256.privateKey, alg: 'RS512', kid: ctx.keys.RS256.kid, payload: claimsFor(ctx) }) });
add({ name: 'RS384 signed by the trusted RSA key', ref: REF.allowList, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => forgeToken({ key: ctx.keys.RS256.privateKey, alg: 'RS384', kid: ctx.keys.RS256.kid, payload: claimsFor(ctx) }) });
add({
  name: 'ES384 (P-384 attacker key) naming the trusted ES256 kid',
  ref: REF.allowList,
  expect: 'UNSUPPORTED_ALGORITHM',
  detail: NOT_ALLOWED,
  make: (ctx) => forgeToken({ key: P384.privateKey, alg: 'ES384', kid: ctx.keys.ES256.kid, payload: claimsFor(ctx) }),
});
for (const alg of ['ES256K', 'Ed25519', 'Ed448', 'es256', 'ES256 ', ' ES256', 'eddsa', 'rs256', 'RSA-OAEP', 'dir', 'A256GCM', '', 'ES256\u0000']) {
  add({ name: `alg ${JSON.stringify(alg)} over a real ES256 signature`, ref: REF.allowList, expect: 'UNSUPPORTED_ALGORITHM', detail: NOT_ALLOWED, make: (ctx) => good(ctx, {}, { alg }) });
}
for (const [label, alg] of [['missing', undefined], ['null', null], ['a number', 256], ['an array', ['ES256']], ['an object', { name: 'ES256' }], ['true', true]] as const) {
  add({ name: `alg ${label}`, ref: REF.allowList, expect: 'MALFORMED', detail: /header (has no alg|alg is not a string)/, make: (ctx) => good(ctx, {}, { alg }) });
}

// --- signature encodings and known-bad signatures
add({
  name: 'ES256 signature in DER (ASN.1) instead of raw R||S',
  ref: REF.p1363,
  expect: 'BAD_SIGNATURE',
  detail: WRONG_LENGTH,
  make: (ctx) => {
    const t = good(ctx);
    return withSignature(t, cryptoSign('sha256', signingInput(t), { key: ctx.keys.ES256.privateKey, dsaEncoding: 'der' }));
  },
});
add({ name: 'ES256 psychic signature r = s = 0 (64 zero bytes)', ref: REF.psychic, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => withSignature(good(ctx), Buffer.alloc(64)) });
add({ name: 'ES256 psychic signature r = s = 0, DER-encoded', ref: REF.psychic, expect: 'BAD_SIGNATURE', detail: WRONG_LENGTH, make: (ctx) => withSignature(good(ctx), Buffer.from('3006020100020100', 'hex')) });
add({ name: 'ES256 signature r = s = n (the group order)', ref: REF.psychic, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => withSignature(good(ctx), Buffer.concat([P256_N, P256_N])) });
add({
  name: 'ES256 signature with the real r and s = 0',
  ref: REF.psychic,
  expect: 'BAD_SIGNATURE',
  detail: DOES_NOT_VERIFY,
  make: (ctx) => {
    const t = good(ctx);
    const sig = Buffer.from(parts(t)[2], 'base64url');
    return withSignature(t, Buffer.concat([sig.subarray(0, 32), Buffer.alloc(32)]));
  },
});
add({ name: 'Ed25519 all-zero signature', ref: REF.ed25519, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => withSignature(signedBy(ctx, 'EdDSA'), Buffer.alloc(64)) });
add({
  name: 'Ed25519 signature with R = identity point and S = 0',
  ref: REF.ed25519,
  expect: 'BAD_SIGNATURE',
  detail: DOES_NOT_VERIFY,
  make: (ctx) => withSignature(signedBy(ctx, 'EdDSA'), Buffer.concat([Buffer.from([1]), Buffer.alloc(63)])),
});
add({
  name: 'Ed25519 signature made malleable: S + L (non-canonical S)',
  ref: REF.ed25519,
  expect: 'BAD_SIGNATURE',
  detail: DOES_NOT_VERIFY,
  make: (ctx) => {
    const t = signedBy(ctx, 'EdDSA');
    const sig = Buffer.from(parts(t)[2], 'base64url');
    const s = leToBigInt(sig.subarray(32)) + ED25519_L;
    return withSignature(t, Buffer.concat([sig.subarray(0, 32), bigIntToLe(s, 32)]));
  },
});
add({ name: 'RS256 all-zero signature', ref: REF.rsa, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => withSignature(signedBy(ctx, 'RS256'), Buffer.alloc(256)) });
add({ name: 'RS256 signature equal to the modulus n (out of range)', ref: REF.rsa, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => withSignature(signedBy(ctx, 'RS256'), Buffer.from(ctx.keys.RS256.publicJwk.n as string, 'base64url')) });
add({
  name: 'RS256 signature with a leading zero byte (257 bytes)',
  ref: REF.rsa,
  expect: 'BAD_SIGNATURE',
  detail: WRONG_LENGTH,
  make: (ctx) => {
    const t = signedBy(ctx, 'RS256');
    return withSignature(t, Buffer.concat([Buffer.alloc(1), Buffer.from(parts(t)[2], 'base64url')]));
  },
});
add({ name: 'RS256 signature = 1', ref: REF.rsa, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => withSignature(signedBy(ctx, 'RS256'), Buffer.concat([Buffer.alloc(255), Buffer.from([1])])) });
add({ name: 'a flipped signature bit', ref: REF.signature, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => tamperSignature(good(ctx)) });
add({ name: 'a payload swapped under a valid signature (sub → admin)', ref: REF.signature, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => swapPayload(good(ctx), claimsFor(ctx, { sub: 'admin', scope: 'admin' })) });
add({
  name: 'header of an EdDSA token spliced onto an ES256 token',
  ref: REF.signature,
  expect: 'BAD_SIGNATURE',
  detail: DOES_NOT_VERIFY,
  make: (ctx) => {
    const [h] = parts(signedBy(ctx, 'EdDSA'));
    const [, p] = parts(good(ctx));
    const [, , s] = parts(signedBy(ctx, 'EdDSA'));
    return `${h}.${p}.${s}`;
  },
});
add({ name: 'a signature by an attacker key under the trusted kid', ref: REF.signature, expect: 'BAD_SIGNATURE', detail: DOES_NOT_VERIFY, make: (ctx) => forgeToken({ key: ctx.attacker.ES256, kid: ctx.keys.ES256.kid, payload: claimsFor(ctx) }) });
add({ name: 'an empty signature segment with alg ES256', ref: REF.signature, expect: 'BAD_SIGNATURE', detail: WRONG_LENGTH, make: (ctx) => { const t = good(ctx); return `${t.slice(0, t.lastIndexOf('.'))}.`; } });
add({ name: 'a truncated ES256 signature (63 bytes)', ref: REF.p1363, expect: 'BAD_SIGNATURE', detail: WRONG_LENGTH, make: (ctx) => { const t = good(ctx); return withSignature(t, Buffer.from(parts(t)[2], 'base64url').subarray(0, 63)); } });

// --- kid
const kidCases: Array<[string, unknown | ((ctx: CorpusContext) => unknown), Expectation]> = [
  ['path traversal ../../etc/passwd', '../../etc/passwd', 'UNKNOWN_KEY'],
  ['path traversal to /dev/null', '../../../../../../dev/null', 'UNKNOWN_KEY'],
  ['SQL injection', "' OR 1=1--", 'UNKNOWN_KEY'],
  ['SQL injection with UNION', "x' UNION SELECT 'secret' --", 'UNKNOWN_KEY'],
  ['a JNDI lookup string', '${jndi:ldap://evil.test/a}', 'UNKNOWN_KEY'],
  ['a CRLF header injection', 'k\r\nX-Injected: 1', 'UNKNOWN_KEY'],
  ['a NUL byte after the real kid', (ctx: CorpusContext) => `${ctx.keys.ES256.kid}\u0000`, 'UNKNOWN_KEY'],
  ['__proto__', '__proto__', 'UNKNOWN_KEY'],
  ['constructor', 'constructor', 'UNKNOWN_KEY'],
  ['hasOwnProperty', 'hasOwnProperty', 'UNKNOWN_KEY'],
  ['128 characters (the maximum length)', 'k'.repeat(128), 'UNKNOWN_KEY'],
  ['129 characters', 'k'.repeat(129), 'MALFORMED'],
  ['4 KB (under the token limit)', 'k'.repeat(4096), 'MALFORMED'],
  ['10 KB', 'k'.repeat(10 * 1024), 'MALFORMED'],
  ['a number', 1, 'MALFORMED'],
  ['zero', 0, 'MALFORMED'],
  ['an object', { kid: 'x' }, 'MALFORMED'],
  ['null', null, 'MALFORMED'],
  ['an array', ['x'], 'MALFORMED'],
  ['true', true, 'MALFORMED'],
  ['missing', undefined, 'MALFORMED'],
  ['empty', '', 'MALFORMED'],
];
for (const [label, kid, expect] of kidCases) {
  const detail = expect === 'UNKNOWN_KEY' ? /no key for this kid/ : label === '10 KB' ? TOO_LONG : /header kid is missing, not a string or longer than 128/;
  add({ name: `kid ${label}`, ref: REF.kid, expect, detail, make: (ctx) => good(ctx, {}, { kid: typeof kid === 'function' ? kid(ctx) : kid }) });
}
add({ name: 'kid: the real kid with a trailing space', ref: REF.kid, expect: 'UNKNOWN_KEY', detail: /no key for this kid/, make: (ctx) => good(ctx, {}, { kid: `${ctx.keys.ES256.kid} ` }) });
add({ name: 'kid: the real kid in another case', ref: REF.kid, expect: 'UNKNOWN_KEY', detail: /no key for this kid/, make: (ctx) => good(ctx, {}, { kid: `${ctx.keys.ES256.kid.toUpperCase()}@` }) });

// --- headers that bring their own key or change how bytes are read (even with a valid signature)
const embedded: Array<[string, (ctx: CorpusContext) => unknown]> = [
  ['jwk (the real public key)', (ctx) => ctx.keys.ES256.publicJwk],
  ['jku', () => 'https://evil.test/jwks.json'],
  ['x5u', () => 'https://evil.test/cert.pem'],
  ['x5c', (ctx) => [ctx.keys.ES256.publicKey.export({ format: 'der', type: 'spki' }).toString('base64')]],
  ['x5t', () => b64url(createHash('sha1').update('cert').digest())],
  ['x5t#S256', () => b64url(createHash('sha256').update('cert').digest())],
  ['crit (unknown extension)', () => ['urn:evil:ext']],
  ['crit (a registered claim)', () => ['exp']],
  ['crit (empty list)', () => []],
  ['b64: false', () => false],
  ['b64: true', () => true],
  ['zip', () => 'DEF'],
  ['enc', () => 'A256GCM'],
];
for (const [label, value] of embedded) {
  const name = label.split(' ')[0]!.replace(/:$/, '');
  add({
    name: `header ${label}, validly signed by the real key`,
    ref: name === 'crit' ? REF.crit : name === 'b64' ? REF.b64 : REF.embeddedKey,
    expect: 'FORBIDDEN_HEADER',
    detail: new RegExp(`header parameter ${name} is not accepted`),
    make: (ctx) => good(ctx, {}, { [name]: value(ctx), ...(name === 'crit' && label.includes('unknown') ? { 'urn:evil:ext': true } : {}) }),
  });
}
add({
  name: 'header jwk carrying the attacker key that signed it, with the attacker kid',
  ref: REF.embeddedKey,
  expect: 'FORBIDDEN_HEADER',
  detail: /header parameter jwk/,
  make: (ctx) => forgeToken({ key: ctx.attacker.ES256, payload: claimsFor(ctx), headerExtra: { jwk: ctx.attacker.ES256.publicKey.export({ format: 'jwk' }) } }),
});
add({
  name: 'header jku pointing at the attacker JWKS, unknown kid, attacker signature',
  ref: REF.embeddedKey,
  expect: 'FORBIDDEN_HEADER',
  detail: /header parameter jku/,
  make: (ctx) => forgeToken({ key: ctx.attacker.RS256, payload: claimsFor(ctx), headerExtra: { jku: 'https://evil.test/jwks.json' } }),
});
add({
  name: 'header jwk with alg none (the algorithm is judged first)',
  ref: REF.embeddedKey,
  expect: 'UNSUPPORTED_ALGORITHM',
  detail: NOT_ALLOWED,
  make: (ctx) => forgeNoneToken({ payload: claimsFor(ctx), kid: ctx.keys.ES256.kid, headerExtra: { jwk: ctx.attacker.ES256.publicKey.export({ format: 'jwk' }) } }),
});
add({
  name: 'b64: false with crit ["b64"] and an unencoded payload (RFC 7797 detached form)',
  ref: REF.b64,
  expect: 'MALFORMED',
  // The unencoded JSON holds '.' (in the issuer URL) and characters outside base64url.
  detail: /segments|base64url/,
  make: (ctx) => {
    const header = b64url(JSON.stringify({ ...headerOf(ctx), b64: false, crit: ['b64'] }));
    const payload = JSON.stringify(claimsFor(ctx));
    const sig = cryptoSign('sha256', Buffer.from(`${header}.${payload}`, 'utf8'), { key: ctx.keys.ES256.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${header}.${payload}.${b64url(sig)}`;
  },
});
add({
  name: 'b64: false with crit ["b64"] and a detached (empty) payload',
  ref: REF.b64,
  expect: 'FORBIDDEN_HEADER',
  detail: /header parameter (b64|crit)/,
  make: (ctx) => {
    const header = b64url(JSON.stringify({ ...headerOf(ctx), b64: false, crit: ['b64'] }));
    const sig = cryptoSign('sha256', Buffer.from(`${header}.${JSON.stringify(claimsFor(ctx))}`, 'utf8'), { key: ctx.keys.ES256.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${header}..${b64url(sig)}`;
  },
});

// --- duplicate JSON member names (the verifier and another parser could disagree on which wins)
const dupHeaders: Array<[string, (kid: string) => string]> = [
  ['alg twice (ES256 then none)', (kid) => `{"alg":"ES256","typ":"at+jwt","kid":"${kid}","alg":"none"}`],
  ['alg twice (none then ES256)', (kid) => `{"alg":"none","typ":"at+jwt","kid":"${kid}","alg":"ES256"}`],
  ['alg and its escaped spelling \\u0061lg', (kid) => `{"alg":"ES256","typ":"at+jwt","kid":"${kid}","\\u0061lg":"HS256"}`],
  ['kid twice', (kid) => `{"alg":"ES256","typ":"at+jwt","kid":"../../etc/passwd","kid":"${kid}"}`],
  ['typ twice (JWT then at+jwt)', (kid) => `{"alg":"ES256","typ":"JWT","kid":"${kid}","typ":"at+jwt"}`],
  ['typ and \\u0074yp', (kid) => `{"alg":"ES256","typ":"at+jwt","kid":"${kid}","\\u0074yp":"JWT"}`],
];
for (const [label, header] of dupHeaders) {
  add({ name: `duplicate header member: ${label}`, ref: REF.duplicate, expect: 'MALFORMED', detail: /header has duplicate member names/, make: (ctx) => signedRaw(ctx, header(ctx.keys.ES256.kid), claimsFor(ctx)) });
}
const dupPayload: Array<[string, string]> = [
  ['sub twice (user then admin)', '"sub":"admin"'],
  ['sub and its escaped spelling \\u0073ub', '"\\u0073ub":"admin"'],
  ['exp twice (future then far future)', '"exp":253402300799'],
  ['aud twice', '"aud":"admin-api"'],
  ['iss twice', '"iss":"https://evil.test"'],
  ['scope twice', '"scope":"admin"'],
  ['gen twice', '"gen":99'],
];
for (const [label, member] of dupPayload) {
  add({ name: `duplicate payload member: ${label}`, ref: REF.duplicate, expect: 'MALFORMED', detail: /payload has duplicate member names/, make: (ctx) => signedRaw(ctx, headerOf(ctx), payloadText(ctx, [], member)) });
}

// --- non-canonical base64url and segment structure
add({ name: 'padding "=" on the signature', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => `${good(ctx)}==` });
add({ name: 'padding "=" on the header', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => { const [h, p, s] = parts(good(ctx)); return `${h}=.${p}.${s}`; } });
add({ name: 'padding "=" on the payload', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => { const [h, p, s] = parts(good(ctx)); return `${h}.${p}=.${s}`; } });
add({ name: 'standard-alphabet "+" in the signature', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => withSigChar(good(ctx), 10, '+') });
add({ name: 'standard-alphabet "/" in the signature', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => withSigChar(good(ctx), 20, '/') });
add({
  name: 'the whole token in standard base64 with padding',
  ref: REF.base64url,
  expect: 'MALFORMED',
  detail: NOT_BASE64URL,
  make: (ctx) => parts(good(ctx)).map((seg) => Buffer.from(seg, 'base64url').toString('base64')).join('.'),
});
add({ name: 'trailing bits set in the signature’s last character', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => { const [h, p, s] = parts(good(ctx)); return `${h}.${p}.${setTrailingBit(s)}`; } });
add({
  name: 'trailing bits set in the header’s last character (signed over the altered text)',
  ref: REF.base64url,
  expect: 'MALFORMED',
  detail: NOT_BASE64URL,
  make: (ctx) => {
    const h = setTrailingBit(b64url(withUnusedBits(headerOf(ctx))));
    const p = b64url(JSON.stringify(claimsFor(ctx)));
    return `${h}.${p}.${b64url(cryptoSign('sha256', Buffer.from(`${h}.${p}`), { key: ctx.keys.ES256.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
  },
});
add({
  name: 'trailing bits set in the payload’s last character (signed over the altered text)',
  ref: REF.base64url,
  expect: 'MALFORMED',
  detail: NOT_BASE64URL,
  make: (ctx) => {
    const h = b64url(JSON.stringify(headerOf(ctx)));
    const p = setTrailingBit(b64url(withUnusedBits(claimsFor(ctx))));
    return `${h}.${p}.${b64url(cryptoSign('sha256', Buffer.from(`${h}.${p}`), { key: ctx.keys.ES256.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
  },
});
add({ name: 'a signature segment of length 1 mod 4', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => `${good(ctx)}AAA` });
add({ name: 'a NUL character inside the signature', ref: REF.base64url, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => withSigChar(good(ctx), 5, '\u0000') });
add({ name: 'percent-encoded dots', ref: REF.base64url, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => good(ctx).replace(/\./g, '%2E') });
add({ name: '4 segments (a trailing dot)', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => `${good(ctx)}.` });
add({ name: '4 segments (signature repeated)', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => { const t = good(ctx); return `${t}.${parts(t)[2]}`; } });
add({ name: '5 segments: a JWE-shaped token', ref: REF.segments, expect: 'MALFORMED', detail: /5 segments \(JWE\)/, make: () => forgeJweShaped() });
add({ name: '5 segments: a valid JWS with two more', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => `${good(ctx)}.e30.e30` });
add({ name: '6 segments', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => `${good(ctx)}.a.b.c` });
add({ name: '2 segments (no signature part)', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => { const t = good(ctx); return t.slice(0, t.lastIndexOf('.')); } });
add({ name: '1 segment', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: (ctx) => parts(good(ctx))[0] });
add({ name: 'only dots: ".."', ref: REF.segments, expect: 'MALFORMED', detail: /header is not valid UTF-8 JSON/, make: () => '..' });
add({ name: 'only dots: "...."', ref: REF.segments, expect: 'MALFORMED', detail: SEGMENTS, make: () => '....' });
add({ name: 'an empty header segment', ref: REF.segments, expect: 'MALFORMED', detail: /header is not valid UTF-8 JSON/, make: (ctx) => { const [, p, s] = parts(good(ctx)); return `.${p}.${s}`; } });
add({ name: 'an empty payload segment, validly signed', ref: REF.segments, expect: 'MALFORMED', detail: /payload is not valid UTF-8 JSON/, make: (ctx) => signedRaw(ctx, headerOf(ctx), '') });
add({ name: 'the empty string', ref: REF.segments, expect: 'MALFORMED', detail: /token is empty/, viaHeader: 'MISSING_TOKEN', make: () => '' });

// --- typ
const badTyps: Array<[string, unknown]> = [
  ['JWT', 'JWT'], ['jwt', 'jwt'], ['none', 'none'], ['missing', undefined], ['application/jwt', 'application/jwt'],
  ['"at+jwt " (trailing space)', 'at+jwt '], ['at+jwt with a parameter', 'at+jwt; charset=utf-8'], ['application/at+jwt+x', 'application/at+jwt+x'],
  ['x-at+jwt', 'x-at+jwt'], ['dpop+jwt', 'dpop+jwt'], ['secevent+jwt', 'secevent+jwt'], ['JOSE', 'JOSE'], ['empty', ''],
  ['a number', 1], ['null', null], ['a list', ['at+jwt']], ['an object', { typ: 'at+jwt' }],
];
for (const [label, typ] of badTyps) {
  add({ name: `typ ${label}`, ref: REF.typ, expect: 'WRONG_TYPE', detail: /header typ is not at\+jwt/, make: (ctx) => good(ctx, {}, { typ }) });
}

// --- issuer
for (const [label, iss, expect] of [
  ['another issuer', 'https://evil.test', 'WRONG_ISSUER'],
  ['ours with a trailing slash', '/', 'WRONG_ISSUER'],
  ['ours in upper case', 'UPPER', 'WRONG_ISSUER'],
  ['ours with a path appended', '/evil', 'WRONG_ISSUER'],
  ['empty', '', 'WRONG_ISSUER'],
  ['missing', undefined, 'MALFORMED'],
  ['a number', 1, 'MALFORMED'],
  ['a list holding ours', 'LIST', 'MALFORMED'],
  ['null', null, 'MALFORMED'],
] as const) {
  add({
    name: `iss ${label}`,
    ref: REF.iss,
    expect,
    detail: expect === 'WRONG_ISSUER' ? /claim iss is not the expected issuer/ : /claim iss is missing or not a string/,
    make: (ctx) => good(ctx, { iss: iss === '/' || iss === '/evil' ? ctx.issuer + iss : iss === 'UPPER' ? ctx.issuer.toUpperCase() : iss === 'LIST' ? [ctx.issuer] : iss }),
  });
}

// --- audience
for (const [label, aud, expect] of [
  ['another audience', ['billing'], 'WRONG_AUDIENCE'],
  ['another audience (string)', 'billing', 'WRONG_AUDIENCE'],
  ['ours in upper case', 'UPPER', 'WRONG_AUDIENCE'],
  ['ours with a trailing space', 'SPACE', 'WRONG_AUDIENCE'],
  ['missing', undefined, 'MALFORMED'],
  ['an empty list', [], 'MALFORMED'],
  ['an empty string', '', 'MALFORMED'],
  ['a list with an empty string', [''], 'MALFORMED'],
  ['a list with a number', [1], 'MALFORMED'],
  ['a number', 7, 'MALFORMED'],
  ['an object', { orders: true }, 'MALFORMED'],
  ['null', null, 'MALFORMED'],
] as const) {
  add({
    name: `aud ${label}`,
    ref: REF.aud,
    expect,
    detail: expect === 'WRONG_AUDIENCE' ? /not for the required audience/ : /claim aud/,
    make: (ctx) => good(ctx, { aud: aud === 'UPPER' ? ctx.audience.toUpperCase() : aud === 'SPACE' ? `${ctx.audience} ` : aud }),
  });
}

// --- times
const timeCases: Array<[string, string, (now: number) => unknown, Expectation]> = [
  ['exp', 'as a numeric string', (now) => String(now + 300), 'MALFORMED'],
  ['exp', 'as a date string', () => '2099-01-01T00:00:00Z', 'MALFORMED'],
  ['exp', 'null (what JSON makes of NaN)', () => Number.NaN, 'MALFORMED'],
  ['exp', 'negative', () => -1, 'MALFORMED'],
  ['exp', 'huge (1e20)', () => 1e20, 'MALFORMED'],
  ['exp', 'one past the year 9999', () => MAX_TIME_SEC + 1, 'MALFORMED'],
  ['exp', 'missing', () => undefined, 'MALFORMED'],
  ['exp', 'true', () => true, 'MALFORMED'],
  ['exp', 'a list', (now) => [now + 300], 'MALFORMED'],
  ['exp', 'an object', (now) => ({ $numberLong: String(now + 300) }), 'MALFORMED'],
  ['exp', 'zero', () => 0, 'EXPIRED'],
  ['exp', 'an hour ago', (now) => now - 3600, 'EXPIRED'],
  ['exp', 'just beyond the leeway (two minutes ago)', (now) => now - 120, 'EXPIRED'],
  ['exp', 'a fraction in the past', (now) => now - 3600.5, 'EXPIRED'],
  ['nbf', 'an hour in the future', (now) => now + 3600, 'NOT_YET_VALID'],
  ['nbf', 'just beyond the leeway (two minutes ahead)', (now) => now + 120, 'NOT_YET_VALID'],
  ['nbf', 'missing', () => undefined, 'MALFORMED'],
  ['nbf', 'as a string', (now) => String(now), 'MALFORMED'],
  ['nbf', 'huge (1e20)', () => 1e20, 'MALFORMED'],
  ['iat', 'a year in the future', (now) => now + 365 * 86_400, 'NOT_YET_VALID'],
  ['iat', 'two minutes in the future', (now) => now + 120, 'NOT_YET_VALID'],
  ['iat', 'missing', () => undefined, 'MALFORMED'],
  ['iat', 'as a string', (now) => String(now), 'MALFORMED'],
  ['iat', 'negative', () => -5, 'MALFORMED'],
];
for (const [claim, label, value, expect] of timeCases) {
  add({ name: `${claim} ${label}`, ref: REF.time, expect, detail: expect === 'MALFORMED' ? new RegExp(`claim ${claim} is missing or not a time`) : new RegExp(`\\(${claim}\\)`), make: (ctx) => good(ctx, { [claim]: value(ctx.nowSec()) }) });
}
add({ name: 'exp 1e999 (Infinity after JSON.parse)', ref: REF.time, expect: 'MALFORMED', detail: /claim exp/, make: (ctx) => signedRaw(ctx, headerOf(ctx), payloadText(ctx, ['exp'], '"exp":1e999')) });
add({ name: 'exp -1e999 (-Infinity after JSON.parse)', ref: REF.time, expect: 'MALFORMED', detail: /claim exp/, make: (ctx) => signedRaw(ctx, headerOf(ctx), payloadText(ctx, ['exp'], '"exp":-1e999')) });
add({ name: 'exp -0', ref: REF.time, expect: 'EXPIRED', detail: /\(exp\)/, make: (ctx) => signedRaw(ctx, headerOf(ctx), payloadText(ctx, ['exp'], '"exp":-0')) });
add({ name: 'exp NaN literal (not JSON)', ref: REF.time, expect: 'MALFORMED', detail: /payload is not valid UTF-8 JSON/, make: (ctx) => signedRaw(ctx, headerOf(ctx), payloadText(ctx, ['exp'], '"exp":NaN')) });

// --- the other claims this profile requires
for (const [claim, label, value] of [
  ['sub', 'missing', undefined], ['sub', 'empty', ''], ['sub', 'a number', 42], ['sub', 'a list', ['alice']],
  ['jti', 'missing', undefined], ['jti', 'empty', ''], ['jti', 'a number', 1],
  ['sid', 'missing', undefined], ['sid', 'an object', { id: 's' }],
  ['gen', 'missing', undefined], ['gen', 'negative', -1], ['gen', 'fractional', 1.5], ['gen', 'a string', '0'], ['gen', 'beyond 2^53', 2 ** 53],
  ['scope', 'a list', ['read']], ['scope', 'a number', 1],
] as const) {
  add({ name: `${claim} ${label}`, ref: REF.claims, expect: 'MALFORMED', detail: new RegExp(`claim ${claim} `), make: (ctx) => good(ctx, { [claim]: value }) });
}
for (const [label, payload] of [['a JSON array', '[]'], ['JSON null', 'null'], ['a JSON string', '"claims"'], ['a JSON number', '1'], ['not JSON', 'sub=admin'], ['JSON with a byte-order mark', '\ufeff{}']] as const) {
  add({ name: `payload ${label}, validly signed`, ref: REF.claims, expect: 'MALFORMED', detail: /^payload is not/, make: (ctx) => signedRaw(ctx, headerOf(ctx), payload) });
}
add({
  name: 'payload with invalid UTF-8, validly signed',
  ref: REF.claims,
  expect: 'MALFORMED',
  detail: /payload is not valid UTF-8 JSON/,
  make: (ctx) => signedRaw(ctx, headerOf(ctx), Buffer.concat([Buffer.from(payloadText(ctx, [], '"x":"').slice(0, -1)), Buffer.from([0xc3, 0x28]), Buffer.from('"}')])),
});
add({ name: 'header not a JSON object (a list), validly signed', ref: REF.claims, expect: 'MALFORMED', detail: /header is not a JSON object/, make: (ctx) => signedRaw(ctx, '["ES256"]', claimsFor(ctx)) });

// --- scopes
add({ name: 'scope lacks the required scope', ref: REF.scope, expect: 'MISSING_SCOPE', detail: /lacks required scope/, requiredScopes: ['admin'], make: (ctx) => good(ctx, { scope: 'read write' }) });
add({ name: 'no scope claim while a scope is required', ref: REF.scope, expect: 'MISSING_SCOPE', detail: /lacks required scope/, requiredScopes: ['read'], make: (ctx) => good(ctx, { scope: undefined }) });
add({ name: 'scope "readwrite" does not grant "read"', ref: REF.scope, expect: 'MISSING_SCOPE', detail: /lacks required scope/, requiredScopes: ['read'], make: (ctx) => good(ctx, { scope: 'readwrite' }) });
add({ name: 'scope "READ" does not grant "read"', ref: REF.scope, expect: 'MISSING_SCOPE', detail: /lacks required scope/, requiredScopes: ['read'], make: (ctx) => good(ctx, { scope: 'READ' }) });
add({ name: 'one of two required scopes missing', ref: REF.scope, expect: 'MISSING_SCOPE', detail: /lacks required scope/, requiredScopes: ['read', 'admin'], make: (ctx) => good(ctx, { scope: 'read' }) });

// --- other kinds of tokens
add({ name: 'a refresh token (tart_…) presented as an access token', ref: REF.kinds, expect: 'MALFORMED', detail: /3 segments/, make: (ctx) => ctx.refreshToken });
add({ name: 'an access token with its "Bearer " prefix still on', ref: REF.kinds, expect: 'MALFORMED', detail: NOT_BASE64URL, make: (ctx) => `Bearer ${good(ctx)}` });
add({ name: 'an ID-token-like JWT (typ JWT, nonce) signed by the real key', ref: REF.kinds, expect: 'WRONG_TYPE', detail: /typ/, make: (ctx) => good(ctx, { nonce: 'n-1', azp: 'web' }, { typ: 'JWT' }) });

// --- size
add({ name: '1 MiB token: a valid header and a huge signed payload', ref: REF.size, expect: 'MALFORMED', detail: TOO_LONG, make: (ctx) => good(ctx, { blob: 'x'.repeat(MIB) }) });
add({ name: '1 MiB of dots', ref: REF.size, expect: 'MALFORMED', detail: TOO_LONG, make: () => '.'.repeat(MIB) });
add({ name: '1 MiB of base64url characters', ref: REF.size, expect: 'MALFORMED', detail: TOO_LONG, make: () => 'A'.repeat(MIB) });
add({ name: '1 MiB in three segments', ref: REF.size, expect: 'MALFORMED', detail: TOO_LONG, make: () => `${'e'.repeat(MIB / 3)}.${'e'.repeat(MIB / 3)}.${'A'.repeat(MIB / 3)}` });
add({ name: 'a token of 8193 characters (one over the limit), validly signed', ref: REF.size, expect: 'MALFORMED', detail: TOO_LONG, make: (ctx) => signedOfLength(ctx, 8193) });
add({
  name: 'a header with 2000 levels of nesting, validly signed',
  ref: REF.size,
  expect: 'VALID',
  make: (ctx) => signedRaw(ctx, `{"alg":"ES256","typ":"at+jwt","kid":"${ctx.keys.ES256.kid}","n":${'['.repeat(2000)}${']'.repeat(2000)}}`, claimsFor(ctx)),
});

// --- whitespace and unicode around or inside the token
const wrap: Array<[string, (t: string) => string, (Expectation | 'MISSING_TOKEN')?]> = [
  ['a leading space', (t) => ` ${t}`, 'VALID'],
  ['a trailing space', (t) => `${t} `, 'VALID'],
  ['a trailing tab', (t) => `${t}\t`, 'VALID'],
  ['a leading tab', (t) => `\t${t}`],
  ['a trailing newline', (t) => `${t}\n`],
  ['a trailing CRLF', (t) => `${t}\r\n`],
  ['a leading no-break space (U+00A0)', (t) => `\u00a0${t}`],
  ['a trailing no-break space (U+00A0)', (t) => `${t}\u00a0`],
  ['a leading byte-order mark (U+FEFF)', (t) => `\ufeff${t}`],
  ['a trailing zero-width space (U+200B)', (t) => `${t}\u200b`],
  ['a trailing line separator (U+2028)', (t) => `${t}\u2028`],
  ['a space inside the payload segment', (t) => { const [h, p, s] = parts(t); return `${h}.${p.slice(0, 8)} ${p.slice(8)}.${s}`; }],
  ['a newline between segments', (t) => { const [h, p, s] = parts(t); return `${h}.\n${p}.${s}`; }],
  ['full-width dots (U+FF0E)', (t) => t.replace(/\./g, '\uff0e')],
  ['a Cyrillic homoglyph in the header', (t) => t.replace(/e/, '\u0435')],
  ['a lone surrogate', (t) => `${t.slice(0, 10)}\ud800${t.slice(10)}`],
];
for (const [label, f, viaHeader] of wrap) {
  add({ name: `valid token with ${label}`, ref: REF.whitespace, expect: 'MALFORMED', detail: /not canonical base64url|3 segments/, ...(viaHeader ? { viaHeader } : {}), make: (ctx) => f(good(ctx)) });
}

// --- keys and revocation
add({ name: 'signed by a key that was retired and then removed', ref: REF.keys, expect: 'UNKNOWN_KEY', detail: /no key for this kid/, make: (ctx) => forgeToken({ key: ctx.removed, payload: claimsFor(ctx) }) });
for (const alg of ALGS) {
  add({ name: `signed by an unknown ${alg} key with its own kid`, ref: REF.keys, expect: 'UNKNOWN_KEY', detail: /no key for this kid/, make: (ctx) => forgeToken({ key: ctx.attacker[alg], payload: claimsFor(ctx) }) });
}
add({ name: 'a revoked token (jti)', ref: REF.revocation, expect: 'REVOKED', detail: /revoked/, make: (ctx) => good(ctx, { jti: ctx.revoked.jti }) });
add({ name: 'a token of a revoked session (sid)', ref: REF.revocation, expect: 'REVOKED', detail: /revoked/, make: (ctx) => signedBy(ctx, 'EdDSA', { sid: ctx.revoked.sid }) });
add({ name: 'a token of a subject signed out everywhere (gen below the minimum)', ref: REF.revocation, expect: 'REVOKED', detail: /revoked/, make: (ctx) => signedBy(ctx, 'RS256', { sub: ctx.revoked.sub, gen: 0 }) });

// --- values that are not strings at all (only a library caller can pass these)
for (const [label, value] of [
  ['undefined', undefined], ['null', null], ['a number', 42], ['a bigint', 1n], ['true', true], ['an object', {}], ['an array', []],
  ['a symbol', Symbol('token')], ['a function', () => 'x.y.z'], ['a String object', 'STRING_OBJECT'], ['a Buffer', 'BUFFER'],
  ['an array holding a valid token', 'ARRAY'], ['a throwing Proxy', 'PROXY'],
] as const) {
  add({
    name: `not a string: ${label}`,
    ref: 'API robustness: verify(token: unknown)',
    expect: 'MALFORMED',
    detail: /token is not a string/,
    make: (ctx) => {
      switch (value) {
        case 'STRING_OBJECT': return new String(good(ctx));
        case 'BUFFER': return Buffer.from(good(ctx));
        case 'ARRAY': return [good(ctx)];
        case 'PROXY': return new Proxy({}, { get() { throw new Error('boom'); }, getPrototypeOf() { throw new Error('boom'); } });
        default: return value;
      }
    },
  });
}

/** A P-384 key (ES384): shared, generated once. */
const P384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });

/** The corpus. Names are unique (checked at load). */
export const ATTACK_CORPUS: readonly AttackCase[] = Object.freeze(cases);
{
  const seen = new Set<string>();
  for (const c of cases) {
    if (seen.has(c.name)) throw new Error(`attack corpus: duplicate case name "${c.name}"`);
    seen.add(c.name);
  }
}

/** Cases whose token is a string, i.e. everything an RPC can carry. */
export const RPC_CORPUS: readonly AttackCase[] = Object.freeze(
  cases.filter((c) => !c.name.startsWith('not a string:')),
);

// ---------------------------------------------------------------------------------------------
// Keys

/** The keys a corpus target is set up with. */
export interface CorpusKeys {
  trusted: Record<SigningAlgorithm, CorpusKey>;
  removed: CorpusKey;
  attacker: Record<SigningAlgorithm, TestKey>;
}

export function toTestKey(kid: string, alg: SigningAlgorithm, privateKey: KeyObject, publicKey: KeyObject, publicJwk: Record<string, string>): CorpusKey {
  return { kid, alg, privateKey, publicKey, verificationKey: { kid, alg, key: publicKey }, publicJwk };
}

/** A fresh unique kid of the form the key store accepts (base64url). */
export const corpusKid = (label: string) => `corpus-${label}-${randomUUID().slice(0, 8)}`;
