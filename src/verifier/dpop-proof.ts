/**
 * The DPoP proof check (RFC 9449 §4.3): the one place a key comes from a JWS header, because a
 * DPoP proof is by design signed by the key it carries in `jwk`. Used by the verifier for
 * `jkt`-bound access tokens and by the authority for Refresh and the token endpoint.
 *
 * Checked cheapest-first, nothing of the payload read before the signature verified:
 *   length → 3 canonical base64url segments → header JSON (unique members) → `typ: dpop+jwt` →
 *   `alg` in the allow-list (never `none` or HMAC) → `jwk`: a public key only, fitting `alg` →
 *   signature with that key → payload JSON → `jti`, `htm`, `htu`, `iat` (and `ath`) types →
 *   `htm` → `htu` → `iat` window → `ath` → the bound key (`jkt`) → single use (`jti`).
 *
 * Accepted headers are cached by their exact text with the key they carry and its thumbprint
 * (a client signs all its proofs with one key, so its header text repeats): a repeated proof
 * header costs neither JSON parsing nor a key import, and a proof costs one signature
 * verification, one SHA-256 (`ath`) and two URL parses on top of the access token's checks.
 *
 * `nonce` (RFC 9449 §8, server-provided nonces) is not supported: it is ignored if present.
 */
import { createPublicKey, verify as cryptoVerify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { hasCanonicalTail } from './base64url.js';
import { sha256Base64url } from './sha256.js';
import type { DpopReplayCache, ReplayVerdict, SyncDpopReplayCache } from './dpop-replay-cache.js';
import { httpTargetUrisMatch } from './http-target-uri.js';
import { jwkThumbprint } from './jwk-thumbprint.js';
import { algorithmForJwk, isSigningAlgorithm, jwsVerifyPlan, keyAlgorithmProblem, privateJwkMember, type JwsVerifyPlan, type SigningAlgorithm } from './jose-rules.js';
import { B64URL_SEGMENTS, decodeJsonObject, isTime } from './verify-token.js';

/** Longest proof accepted (a proof with an RSA-4096 `jwk` is ~2.5 KB). */
export const MAX_DPOP_PROOF_BYTES = 8192;
/** Longest `jti` accepted: it is held in the replay cache. */
export const MAX_DPOP_JTI_LENGTH = 256;
/** Default DPoP window (RFC 9449 §11.1 leaves it to the server): proofs older than this are refused. */
export const DEFAULT_DPOP_WINDOW_SEC = 60;

/** Everything a proof is checked against. Times are seconds since the epoch. */
export interface DpopProofCheckOptions {
  /** The request's method, compared exactly with `htm` (methods are case-sensitive, RFC 9110 §9.1). */
  method: string;
  /** The request's absolute target URI, compared with `htu` (see http-target-uri.ts). */
  uri: string;
  /**
   * The access token presented with the proof: `ath` must be its base64url SHA-256 (RFC 9449
   * §4.3 check 11). Omit at the token endpoint, where no access token is presented (then `ath`,
   * if present, is not looked at).
   */
  accessToken?: string;
  /**
   * The thumbprint the proof's key must have (a bound token's `cnf.jkt`, a session's binding).
   * A proof that is valid but signed by another key fails with reason BINDING_MISMATCH.
   */
  jkt?: string;
  nowSec: number;
  /** A proof whose `iat` is more than this many seconds ago is refused. */
  windowSec: number;
  /** A proof whose `iat` is more than this many seconds ahead is refused. */
  clockSkewSec: number;
  /** Accepted `alg` values; every member must be a signing algorithm of this project. */
  algorithms: readonly SigningAlgorithm[];
  /** Where the proof's `jti` is claimed; consulted last, only for a proof that passed every other check. */
  replay: DpopReplayCache;
}

export type DpopProofResult =
  | { readonly ok: true; readonly jkt: string; readonly jti: string; readonly iat: number }
  | { readonly ok: false; readonly reason: 'INVALID_DPOP_PROOF' | 'BINDING_MISMATCH'; readonly detail: string };

/**
 * Check a DPoP proof for one request. Total: any JavaScript value gives a result, never a throw.
 * With a synchronous replay cache the result is synchronous; with a shared (asynchronous) one it
 * may be a promise. A replay cache that fails (a promise that rejects) refuses the proof.
 */
export function checkDpopProof(proof: unknown, opts: DpopProofCheckOptions & { replay: SyncDpopReplayCache }): DpopProofResult;
export function checkDpopProof(proof: unknown, opts: DpopProofCheckOptions): DpopProofResult | Promise<DpopProofResult>;
export function checkDpopProof(proof: unknown, opts: DpopProofCheckOptions): DpopProofResult | Promise<DpopProofResult> {
  let checked: Checked | DpopProofResult;
  try {
    checked = checkUnclaimed(proof, opts);
  } catch {
    return invalid('proof could not be processed');
  }
  if ('ok' in checked) return checked;
  const { jkt, jti, iat } = checked;
  // One id per key: a jti chosen by one client cannot block another's. Held until the proof
  // could no longer be accepted anyway (iat + window, to the end of that second).
  let verdict: ReplayVerdict | Promise<ReplayVerdict>;
  try {
    verdict = opts.replay.claim(`${jkt}.${jti}`, (iat + opts.windowSec + 1) * 1000, opts.nowSec * 1000);
  } catch {
    return NO_ANSWER;
  }
  const ok: DpopProofResult = Object.freeze({ ok: true, jkt, jti, iat });
  if (typeof verdict === 'string') return verdictResult(verdict, ok);
  return Promise.resolve(verdict).then((v) => verdictResult(v, ok), () => NO_ANSWER);
}

const NO_ANSWER: DpopProofResult = Object.freeze({ ok: false, reason: 'INVALID_DPOP_PROOF', detail: 'the DPoP replay cache did not answer: proof refused' });

function verdictResult(verdict: ReplayVerdict, ok: DpopProofResult): DpopProofResult {
  if (verdict === 'fresh') return ok;
  if (verdict === 'replayed') return invalid('proof jti was already used (replay)');
  if (verdict === 'full') return invalid('the DPoP replay cache is full: proof refused');
  return NO_ANSWER; // not a verdict at all: refuse
}

interface Checked {
  readonly jkt: string;
  readonly jti: string;
  readonly iat: number;
}

function invalid(detail: string): DpopProofResult {
  return { ok: false, reason: 'INVALID_DPOP_PROOF', detail };
}

/** The header of an accepted proof: what its `jwk` gives, ready for crypto.verify. */
interface ProofHeader {
  readonly alg: SigningAlgorithm;
  readonly jkt: string;
  readonly plan: JwsVerifyPlan;
}

/** Header parameters a proof may not carry: other key sources, and anything changing how bytes are read. */
const FORBIDDEN_PROOF_HEADERS = ['jku', 'x5u', 'x5c', 'crit', 'b64', 'zip', 'enc'] as const;

/**
 * Accepted proof headers by their exact base64url text (the key import is the expensive part).
 * Whether a header is accepted does not depend on options except `alg`'s allow-list, which is
 * checked on every call. Bounded: emptied when full.
 */
const headerCache = new Map<string, ProofHeader>();
const HEADER_CACHE_SIZE = 256;

function checkUnclaimed(proof: unknown, opts: DpopProofCheckOptions): Checked | DpopProofResult {
  if (typeof proof !== 'string' || proof.length === 0) return invalid('proof is missing or not a string');
  const len = proof.length;
  if (len > MAX_DPOP_PROOF_BYTES) return invalid(`proof is longer than ${MAX_DPOP_PROOF_BYTES} bytes`);
  const d1 = proof.indexOf('.');
  const d2 = d1 < 0 ? -1 : proof.indexOf('.', d1 + 1);
  if (d2 < 0 || proof.indexOf('.', d2 + 1) >= 0) return invalid('proof is not a compact JWS of 3 segments');
  if (!B64URL_SEGMENTS.test(proof) || !hasCanonicalTail(proof, 0, d1) || !hasCanonicalTail(proof, d1 + 1, d2) || !hasCanonicalTail(proof, d2 + 1, len)) {
    return invalid('proof segment is not canonical base64url');
  }

  // --- header: its jwk is the key, so all of it is judged before the signature
  const headerText = proof.slice(0, d1);
  let header = headerCache.get(headerText);
  if (header === undefined) {
    const parsed = parseProofHeader(proof, d1);
    if (typeof parsed === 'string') return invalid(parsed);
    header = parsed;
    if (headerCache.size >= HEADER_CACHE_SIZE) headerCache.clear();
    headerCache.set(headerText, header);
  }
  if (!(opts.algorithms as readonly string[]).includes(header.alg)) return invalid('proof alg is not allowed');

  const signature = Buffer.from(proof.slice(d2 + 1), 'base64url');
  const plan = header.plan;
  if (signature.length !== plan.signatureBytes) return invalid('proof signature has the wrong length');
  let good: boolean;
  try {
    good = cryptoVerify(plan.digest, Buffer.from(proof.slice(0, d2), 'latin1'), plan.input, signature);
  } catch {
    good = false;
  }
  if (!good) return invalid('proof signature does not verify with its jwk');

  // --- payload (authenticated by the proof's own key from here on)
  const decoded = decodeJsonObject(proof, d1 + 1, d2, 'proof payload');
  if (typeof decoded === 'string') return invalid(decoded);
  const p = decoded.obj;
  const { jti, htm, htu, iat, ath } = p;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_DPOP_JTI_LENGTH) {
    return invalid(`proof jti is missing, not a string or longer than ${MAX_DPOP_JTI_LENGTH} characters`);
  }
  if (typeof htm !== 'string') return invalid('proof htm is missing or not a string');
  if (typeof htu !== 'string') return invalid('proof htu is missing or not a string');
  if (!isTime(iat)) return invalid('proof iat is missing or not a time in seconds');
  if (htm !== opts.method) return invalid('proof htm is not the request method');
  if (!httpTargetUrisMatch(htu, opts.uri)) return invalid('proof htu is not the request URI');
  if (iat < opts.nowSec - opts.windowSec) return invalid(`proof iat is older than the ${opts.windowSec} s DPoP window`);
  if (iat > opts.nowSec + opts.clockSkewSec) return invalid('proof iat is in the future');
  if (opts.accessToken !== undefined) {
    if (typeof ath !== 'string') return invalid('proof ath is missing or not a string');
    if (ath !== accessTokenHash(opts.accessToken)) return invalid('proof ath is not the hash of the presented access token');
  }
  if (opts.jkt !== undefined && opts.jkt !== header.jkt) {
    return { ok: false, reason: 'BINDING_MISMATCH', detail: 'the DPoP proof is signed by a key other than the one the token is bound to' };
  }
  return { jkt: header.jkt, jti, iat: Math.floor(iat) };
}

/** `ath` (RFC 9449 §4.2): base64url SHA-256 of the access token's ASCII text. */
export function accessTokenHash(accessToken: string): string {
  return sha256Base64url(accessToken);
}

function isProofTyp(typ: unknown): boolean {
  if (typ === 'dpop+jwt') return true;
  if (typeof typ !== 'string' || typ.length > 20) return false;
  // Media types are case-insensitive and "application/" may be omitted (RFC 7515 §4.1.9).
  const t = typ.toLowerCase();
  return t === 'dpop+jwt' || t === 'application/dpop+jwt';
}

/** The accepted header, or why it is refused. The JOSE rules (algorithm → key, private members) are jose-rules.ts's. */
function parseProofHeader(proof: string, end: number): ProofHeader | string {
  const decoded = decodeJsonObject(proof, 0, end, 'proof header');
  if (typeof decoded === 'string') return decoded;
  const h = decoded.obj;
  if (!isProofTyp(h.typ)) return 'proof typ is not dpop+jwt';
  const alg = h.alg;
  if (typeof alg !== 'string') return 'proof alg is missing or not a string';
  // Never none or HMAC: only this project's asymmetric signing algorithms exist here.
  if (!isSigningAlgorithm(alg)) return 'proof alg is not allowed';
  for (const name of FORBIDDEN_PROOF_HEADERS) {
    if (h[name] !== undefined) return `proof header parameter ${name} is not accepted`;
  }
  const jwk = h.jwk;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'proof jwk is missing or not an object';
  const j = jwk as Record<string, unknown>;
  if (privateJwkMember(j) !== undefined) return 'proof jwk carries private key material';
  if (algorithmForJwk(j) !== alg) return 'proof jwk does not fit its alg';
  let key: KeyObject;
  let jkt: string;
  try {
    key = createPublicKey({ key: j as JsonWebKey, format: 'jwk' });
    jkt = jwkThumbprint(j);
  } catch {
    return 'proof jwk is not a valid public key';
  }
  const problem = keyAlgorithmProblem(key, alg);
  const plan = problem === undefined && key.type === 'public' ? jwsVerifyPlan(key, alg) : null;
  if (plan === null) return `proof jwk: ${problem ?? 'not a public key'}`;
  return Object.freeze({ alg, jkt, plan });
}
