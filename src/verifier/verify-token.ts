/**
 * The hot path: synchronous JWS compact verification of access tokens (RFC 7515, RFC 7519,
 * RFC 8725, RFC 9068) directly over node:crypto.
 *
 * Work is ordered cheapest-first so that garbage costs almost nothing and no attacker-controlled
 * payload is ever parsed before its signature has been checked:
 *   length → segment shape → strict base64url → header JSON → header rules → key → signature →
 *   payload JSON → claim types and issuer (and `cnf`, the token's binding, into `confirmation`).
 * Time, audience and scopes are separate (`checkTimeAudienceScopes`) because they change with the
 * clock and the request, so they must run on every call even when the signature result is cached;
 * so is the binding (`binding-check.ts`), which depends on the request's certificate or proof.
 *
 * Duplicate member names are rejected in the header and in the payload (RFC 7515 §4 and RFC 7519
 * §4 allow a parser to reject them; last-wins JSON.parse would hide them, and another parser might
 * pick the first). They are found by counting members in the text (`countTopLevelMembers`): about
 * 0.3 µs for a typical payload, and nothing for a header seen before (accepted headers are cached).
 *
 * Measured overhead over a bare crypto.verify is ~3 µs per token (bench/verify-core.ts): ES256
 * runs at ~0.92x and EdDSA ~0.95x the raw rate, RS256 (a much cheaper verify) ~0.83x.
 */
import { verify as cryptoVerify } from 'node:crypto';
import { isAcceptableKid, isAccessTokenTyp, jwsVerifyPlan, MAX_KID_LENGTH, type JwsVerifyPlan, type SigningAlgorithm } from './jose-rules.js';
import { rejected, type Confirmation, type VerifiedClaims, type VerifyReason, type VerifyRequirements, type VerifyResult } from '../shared/claims.js';
import { hasCanonicalTail } from './base64url.js';
import type { KeyResolver, VerificationKey } from './key-resolver.js';

/** Call-independent settings of a verifier. */
export interface TokenCheckOptions {
  /** The `iss` every token must carry, compared exactly. */
  issuer: string;
  /** Allow-list of header `alg` values; anything else is UNSUPPORTED_ALGORITHM. */
  algorithms: readonly SigningAlgorithm[];
  /** Leeway in seconds applied to `exp`, `nbf` and `iat`. */
  clockSkewSec: number;
  /** Tokens longer than this are MALFORMED before any decoding happens. */
  maxTokenBytes: number;
  /**
   * Longest `exp - iat` accepted, in seconds; longer, or `exp` before `iat` by the leeway or more, is MALFORMED (checked after
   * the time checks, so an expired or future token keeps its own reason). Unset: no bound.
   */
  maxLifetimeSec?: number;
}

/** What the signature stage concluded. `kid` is set on UNKNOWN_KEY so the caller can refetch keys. */
export type SignatureOutcome =
  | { ok: true; claims: VerifiedClaims }
  | { ok: false; reason: VerifyReason; detail: string; kid?: string };

/** 9999-12-31T23:59:59Z: times beyond this are nonsense, and rejecting them keeps arithmetic exact. */
export const MAX_TIME_SEC = 253_402_300_799;

/**
 * Header parameters that make a token bring its own key or change how its bytes are interpreted
 * (RFC 8725 §3.10, RFC 7515 §4.1.11, RFC 7797). Keys only ever come from the KeyResolver.
 */
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip', 'enc'] as const;

/** Fatal so invalid UTF-8 is MALFORMED rather than silently replaced; BOM kept so JSON.parse rejects it. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const EMPTY_EXTRA: Readonly<Record<string, string>> = Object.freeze({});
const EMPTY_SCOPES: readonly string[] = Object.freeze([]);

function fail(reason: VerifyReason, detail: string, kid?: string): SignatureOutcome {
  return kid === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, kid };
}

/**
 * How to run crypto.verify for each key, computed once per VerificationKey. null marks a key whose
 * type does not fit its declared alg (a resolver bug: such tokens are rejected).
 */
const plans = new WeakMap<VerificationKey, JwsVerifyPlan | null>();

function planFor(vk: VerificationKey): JwsVerifyPlan | null {
  let plan = plans.get(vk);
  if (plan === undefined) {
    plan = jwsVerifyPlan(vk.key, vk.alg);
    plans.set(vk, plan);
  }
  return plan;
}

/**
 * Number of members of the top-level object in `json`, counted from the text. JSON.parse keeps the
 * last of duplicate names silently, so comparing this with the parsed object's key count is how
 * duplicates (including escaped spellings such as "alg" vs "\u0061lg") are found. The text is
 * known to be valid JSON (it parsed), so counting ':' outside strings at depth 1 is exact.
 */
function countTopLevelMembers(json: string): number {
  let depth = 0;
  let count = 0;
  const n = json.length;
  for (let i = 0; i < n; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      // Jump to the closing quote natively: strings are most of the text. A quote is escaped iff
      // an odd number of backslashes precedes it.
      let j = i;
      for (;;) {
        j = json.indexOf('"', j + 1);
        if (j < 0) return -1; // unreachable for text JSON.parse accepted
        let k = j - 1;
        while (json.charCodeAt(k) === 0x5c /* \ */) k--;
        if (((j - 1 - k) & 1) === 0) break;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
    else if (c === 0x3a /* : */ && depth === 1) count++;
  }
  return count;
}

export type JsonObject = Record<string, unknown>;

/** Decode a segment as a JSON object whose member names are unique; a string is the failure detail. */
export function decodeJsonObject(token: string, start: number, end: number, what: string): { obj: JsonObject; names: string[] } | string {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(Buffer.from(token.slice(start, end), 'base64url'));
    value = JSON.parse(text);
  } catch {
    return `${what} is not valid UTF-8 JSON`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${what} is not a JSON object`;
  const names = Object.keys(value);
  if (countTopLevelMembers(text) !== names.length) return `${what} has duplicate member names`;
  return { obj: value as JsonObject, names };
}

export function isTime(v: unknown): v is number {
  // Comparisons are false for NaN; JSON's 1e999 is Infinity and fails the upper bound.
  return typeof v === 'number' && v >= 0 && v <= MAX_TIME_SEC;
}

function isNonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

/**
 * Scope lists by their `scope` text. Tokens of one client nearly always carry the same few scope
 * strings, so sharing one frozen list each saves a split per verification and ~170 bytes per
 * token-cache entry. Bounded like the header cache; long texts are not kept.
 */
const scopeLists = new Map<string, readonly string[]>();
const SCOPE_CACHE_SIZE = 256;
const SCOPE_CACHE_MAX_TEXT = 512;

function splitScopes(scope: string): readonly string[] {
  if (scope.length === 0) return EMPTY_SCOPES;
  let list = scopeLists.get(scope);
  if (list === undefined) {
    const parts = scope.split(' ');
    // Tolerate repeated/leading/trailing spaces rather than producing empty scope names.
    list = Object.freeze(parts.includes('') ? parts.filter((x) => x.length > 0) : parts);
    if (scope.length <= SCOPE_CACHE_MAX_TEXT) {
      if (scopeLists.size >= SCOPE_CACHE_SIZE) scopeLists.clear();
      scopeLists.set(scope, list);
    }
  }
  return list;
}

/**
 * Check a token's structure, header, signature and call-independent claims (issuer, types).
 * Synchronous and total: returns a SignatureOutcome for any JavaScript value and never throws.
 * The returned claims object (and its arrays) are frozen, so it may be cached and shared.
 */
export function verifySignatureAndParse(token: unknown, keys: KeyResolver, opts: TokenCheckOptions): SignatureOutcome {
  try {
    return verifyUnchecked(token, keys, opts);
  } catch {
    // Only a misbehaving KeyResolver or a runtime fault can get here; never leak the token.
    return fail('MALFORMED', 'token could not be processed');
  }
}

function verifyUnchecked(token: unknown, keys: KeyResolver, opts: TokenCheckOptions): SignatureOutcome {
  if (typeof token !== 'string') return fail('MALFORMED', 'token is not a string');
  const len = token.length;
  if (len === 0) return fail('MALFORMED', 'token is empty');
  // Checked on UTF-16 length: any non-ASCII character fails base64url below anyway.
  if (len > opts.maxTokenBytes) return fail('MALFORMED', `token is longer than ${opts.maxTokenBytes} bytes`);

  const d1 = token.indexOf('.');
  const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
  if (d2 < 0) return fail('MALFORMED', 'token does not have 3 segments');
  let d3 = token.indexOf('.', d2 + 1);
  if (d3 >= 0) {
    let dots = 3;
    while ((d3 = token.indexOf('.', d3 + 1)) >= 0) dots++;
    return fail('MALFORMED', dots === 4 ? 'token has 5 segments (JWE); only JWS access tokens are accepted' : `token has ${dots + 1} segments, expected 3`);
  }
  // One anchored character-class regex over the whole token measured ~2x faster than a charCode
  // loop (V8 compiles it to native code, and it flattens a concatenated string once for all later
  // reads); the canonical-padding rule needs only each segment's length and last character.
  if (!B64URL_SEGMENTS.test(token) || !hasCanonicalTail(token, 0, d1) || !hasCanonicalTail(token, d1 + 1, d2) || !hasCanonicalTail(token, d2 + 1, len)) {
    return fail('MALFORMED', 'token segment is not canonical base64url');
  }

  // --- header (unauthenticated until the signature is checked: read only what picks the key)
  const headerText = token.slice(0, d1);
  let header = headerCache.get(headerText);
  if (header === undefined) {
    header = parseHeader(token, d1);
    if (header.problem === undefined) rememberHeader(headerText, header);
  }
  const alg = header.alg;
  if (alg === undefined) return header.problem as SignatureOutcome;
  if (!(opts.algorithms as readonly string[]).includes(alg)) return fail('UNSUPPORTED_ALGORITHM', 'header alg is not allowed');
  if (header.problem !== undefined) return header.problem;
  const kid = header.kid;

  // --- key and signature
  const vk = keys.get(kid);
  if (vk === undefined) return fail('UNKNOWN_KEY', 'no key for this kid', kid);
  if (vk.alg !== alg) return fail('UNSUPPORTED_ALGORITHM', 'header alg does not match the key', kid);
  const plan = planFor(vk);
  if (plan === null) return fail('UNSUPPORTED_ALGORITHM', 'key type does not match its alg', kid);
  const signature = Buffer.from(token.slice(d2 + 1), 'base64url');
  if (signature.length !== plan.signatureBytes) return fail('BAD_SIGNATURE', 'signature has the wrong length', kid);
  let good: boolean;
  try {
    good = cryptoVerify(plan.digest, Buffer.from(token.slice(0, d2), 'latin1'), plan.input, signature);
  } catch {
    good = false;
  }
  if (!good) return fail('BAD_SIGNATURE', 'signature does not verify', kid);

  // --- payload (authenticated from here on)
  const decodedPayload = decodeJsonObject(token, d1 + 1, d2, 'payload');
  if (typeof decodedPayload === 'string') return fail('MALFORMED', decodedPayload, kid);
  return readClaims(decodedPayload.obj, decodedPayload.names, kid, opts);
}

/** Three base64url-alphabet segments; the shape (exactly two dots) is already known. */
export const B64URL_SEGMENTS = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

/**
 * The header fields that select a key, or why the header is refused. `alg` is undefined only when
 * the header is unusable before its algorithm can even be judged; otherwise the allow-list check
 * (which depends on the options) comes first and `problem`, if any, second.
 */
interface ParsedHeader {
  readonly alg: string | undefined;
  readonly kid: string;
  readonly problem: SignatureOutcome | undefined;
}

function badHeader(alg: string | undefined, reason: VerifyReason, detail: string): ParsedHeader {
  return { alg, kid: '', problem: fail(reason, detail) };
}

function parseHeader(token: string, end: number): ParsedHeader {
  const decoded = decodeJsonObject(token, 0, end, 'header');
  if (typeof decoded === 'string') return badHeader(undefined, 'MALFORMED', decoded);
  const header = decoded.obj;
  const alg = header.alg;
  if (alg === undefined) return badHeader(undefined, 'MALFORMED', 'header has no alg');
  if (typeof alg !== 'string') return badHeader(undefined, 'MALFORMED', 'header alg is not a string');
  for (let i = 0; i < FORBIDDEN_HEADERS.length; i++) {
    const name = FORBIDDEN_HEADERS[i] as string;
    if (header[name] !== undefined) return badHeader(alg, 'FORBIDDEN_HEADER', `header parameter ${name} is not accepted`);
  }
  if (!isAccessTokenTyp(header.typ)) return badHeader(alg, 'WRONG_TYPE', 'header typ is not at+jwt');
  const kid = header.kid;
  if (!isAcceptableKid(kid)) {
    return badHeader(alg, 'MALFORMED', `header kid is missing, not a string or longer than ${MAX_KID_LENGTH} characters`);
  }
  return { alg, kid, problem: undefined };
}

/**
 * Accepted headers by their exact base64url text. An issuer emits one header per key, so nearly
 * every token hits here and skips decoding, JSON.parse and the header rules. The result depends on
 * the text alone (not on options or keys), so one cache serves every verifier. Bounded: when full
 * it is simply emptied, so a flood of distinct headers costs only the uncached path.
 */
const headerCache = new Map<string, ParsedHeader>();
const HEADER_CACHE_SIZE = 64;

function rememberHeader(text: string, header: ParsedHeader): void {
  if (headerCache.size >= HEADER_CACHE_SIZE) headerCache.clear();
  headerCache.set(text, Object.freeze(header));
}

function readClaims(payload: JsonObject, names: readonly string[], kid: string, opts: TokenCheckOptions): SignatureOutcome {
  let iss: unknown, sub: unknown, aud: unknown, exp: unknown, iat: unknown, nbf: unknown;
  let jti: unknown, sid: unknown, gen: unknown, scope: unknown, cnf: unknown;
  let extra: Record<string, string> | undefined;
  // Object.keys: own members only, so a polluted Object.prototype cannot supply a claim.
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    const value = payload[name];
    switch (name) {
      case 'iss': iss = value; break;
      case 'sub': sub = value; break;
      case 'aud': aud = value; break;
      case 'exp': exp = value; break;
      case 'iat': iat = value; break;
      case 'nbf': nbf = value; break;
      case 'jti': jti = value; break;
      case 'sid': sid = value; break;
      case 'gen': gen = value; break;
      case 'scope': scope = value; break;
      case 'cnf': cnf = value; break;
      default:
        if (typeof value === 'string' && name !== '__proto__') (extra ??= {})[name] = value;
    }
  }

  if (typeof iss !== 'string') return fail('MALFORMED', 'claim iss is missing or not a string', kid);
  if (iss !== opts.issuer) return fail('WRONG_ISSUER', 'claim iss is not the expected issuer', kid);
  if (!isNonEmptyString(sub)) return fail('MALFORMED', 'claim sub is missing or not a non-empty string', kid);
  if (!isNonEmptyString(jti)) return fail('MALFORMED', 'claim jti is missing or not a non-empty string', kid);
  if (!isNonEmptyString(sid)) return fail('MALFORMED', 'claim sid is missing or not a non-empty string', kid);
  if (!isTime(exp)) return fail('MALFORMED', 'claim exp is missing or not a time in seconds', kid);
  if (!isTime(iat)) return fail('MALFORMED', 'claim iat is missing or not a time in seconds', kid);
  if (!isTime(nbf)) return fail('MALFORMED', 'claim nbf is missing or not a time in seconds', kid);
  if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) {
    return fail('MALFORMED', 'claim gen is missing or not a non-negative integer', kid);
  }
  let audience: readonly string[];
  if (typeof aud === 'string') {
    if (aud.length === 0) return fail('MALFORMED', 'claim aud is empty', kid);
    audience = Object.freeze([aud]);
  } else if (Array.isArray(aud) && aud.length > 0) {
    for (let i = 0; i < aud.length; i++) {
      if (!isNonEmptyString(aud[i])) return fail('MALFORMED', 'claim aud has a member that is not a non-empty string', kid);
    }
    audience = Object.freeze(aud as string[]);
  } else {
    return fail('MALFORMED', 'claim aud is missing, empty or not a string or list of strings', kid);
  }
  let scopes: readonly string[];
  if (scope === undefined) scopes = EMPTY_SCOPES;
  else if (typeof scope === 'string') scopes = splitScopes(scope);
  else return fail('MALFORMED', 'claim scope is not a string', kid);
  let confirmation: Confirmation | undefined;
  if (cnf !== undefined) {
    confirmation = readConfirmation(cnf);
    if (confirmation === undefined) return fail('MALFORMED', 'claim cnf is not an object with exactly one of x5t#S256 or jkt, a SHA-256 thumbprint in base64url', kid);
  }

  const claims: VerifiedClaims = {
    issuer: opts.issuer, // the same text as iss, but one shared string per verifier rather than per token
    subject: sub,
    audience,
    scopes,
    issuedAt: iat,
    notBefore: nbf,
    expiresAt: exp,
    tokenId: jti,
    sessionId: sid,
    generation: gen,
    keyId: kid,
    extra: extra === undefined ? EMPTY_EXTRA : Object.freeze(extra),
  };
  if (confirmation !== undefined) claims.confirmation = confirmation;
  return { ok: true, claims: Object.freeze(claims) };
}

/** A SHA-256 thumbprint in base64url: 32 bytes are 43 characters, the last one of 16 values. */
const THUMBPRINT = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/**
 * The RFC 7800 `cnf` claim as a Confirmation: an object with exactly one member, `x5t#S256`
 * (RFC 8705 §3.1) or `jkt` (RFC 9449 §6.1), whose value is a SHA-256 thumbprint. Anything else
 * (another confirmation method, both, none, a non-string) is undefined: the token is MALFORMED,
 * since a verifier that ignored a binding it does not understand would accept a stolen token.
 */
function readConfirmation(cnf: unknown): Confirmation | undefined {
  if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) return undefined;
  const names = Object.keys(cnf);
  if (names.length !== 1) return undefined;
  const value = (cnf as JsonObject)[names[0] as string];
  if (typeof value !== 'string' || !THUMBPRINT.test(value)) return undefined;
  if (names[0] === 'x5t#S256') return Object.freeze({ x5tS256: value });
  if (names[0] === 'jkt') return Object.freeze({ jkt: value });
  return undefined;
}

/**
 * The checks that depend on the clock and the request: run on every call, including for tokens
 * whose signature result came from the cache. A token is invalid at and after `exp` (RFC 7519
 * §4.1.4), with `clockSkewSec` of leeway on every time comparison. A set `audience` must be one of
 * the token's audiences; an empty string is a set audience that never matches (fail closed).
 */
export function checkTimeAudienceScopes(claims: VerifiedClaims, req: VerifyRequirements, opts: TokenCheckOptions, nowSec: number): VerifyResult {
  const skew = opts.clockSkewSec;
  if (claims.expiresAt <= nowSec - skew) return rejected('EXPIRED', 'token has expired (exp)');
  if (claims.notBefore > nowSec + skew) return rejected('NOT_YET_VALID', 'token is not valid yet (nbf)');
  if (claims.issuedAt > nowSec + skew) return rejected('NOT_YET_VALID', 'token is issued in the future (iat)');
  const maxLife = opts.maxLifetimeSec;
  if (maxLife !== undefined) {
    // A revocation entry lives as long as the longest token the authority issues: a token that
    // claims a longer life could outlive the entry that revokes it.
    const life = claims.expiresAt - claims.issuedAt;
    if (life > maxLife) return rejected('MALFORMED', `token lifetime (exp - iat) exceeds the ${maxLife} s this verifier accepts`);
    // exp <= iat is never issued; within the leeway it is tolerated like any other clock
    // difference (and such a token expires within the leeway anyway).
    if (life <= -skew) return rejected('MALFORMED', 'claim exp is not after iat');
  }
  const audience = req.audience;
  if (audience !== undefined && !claims.audience.includes(audience)) {
    return rejected('WRONG_AUDIENCE', 'token is not for the required audience');
  }
  const required = req.requiredScopes;
  if (required !== undefined && required.length > 0) {
    let missing: string[] | undefined;
    for (let i = 0; i < required.length; i++) {
      const s = required[i] as string;
      if (!claims.scopes.includes(s)) (missing ??= []).push(s);
    }
    if (missing !== undefined) return rejected('MISSING_SCOPE', `token lacks required scope(s): ${missing.join(' ')}`);
  }
  return { valid: true, claims };
}
