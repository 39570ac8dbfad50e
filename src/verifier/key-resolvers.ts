/**
 * Where the verifier's keys come from, in one place: resolvers over a fixed key set
 * (`createStaticKeyResolver`) or a replaceable one (`MutableKeyResolver`), the JWKS →
 * VerificationKey conversion (`keysFromJwks`), and the authority's JWKS fetched and kept fresh
 * over HTTP (`createRemoteKeyResolver`, below). Every key is checked against its algorithm once,
 * here, so the hot path can trust `alg`.
 */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { systemClock, type Clock } from '../shared/clock.js';
import { DEFAULTS } from '../shared/defaults.js';
import { ErrorCodes, TokenAuthorityError, errorMessage } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { redactUrl } from '../shared/redact-url.js';
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

/* ---- The authority's JWKS over HTTP ---- */
/** Options of {@link createRemoteKeyResolver}. Durations in milliseconds. */
export interface RemoteKeyResolverOptions {
  /** The authority's JWKS, e.g. http://authority:8080/.well-known/jwks.json */
  jwksUrl: string;
  /** Minimum time between refetches caused by unknown kids. Default 10 000. */
  cooldownMs?: number;
  /** An unknown kid that a fresh fetch did not find is not looked for again for this long. Default: cooldownMs. */
  negativeCacheMs?: number;
  /** Refresh interval when the response has no usable Cache-Control max-age. Default 300 000. */
  defaultMaxAgeMs?: number;
  /** Background refreshes happen at this fraction of max-age (so before it runs out). Default 0.8. */
  refreshAt?: number;
  /**
   * Background refreshes happen at least this often, whatever max-age says (a one-year CDN
   * max-age would otherwise overflow Node's timer, ~24.8 days, and fire at once). Default 3 600 000.
   */
  maxRefreshIntervalMs?: number;
  /** Per-request timeout. Default 5000. */
  timeoutMs?: number;
  /**
   * A JWKS larger than this is refused: by its content-length before the body is read, and while
   * streaming (decoded bytes) otherwise, so no more than this is ever buffered. Default 256 KiB.
   */
  maxBytes?: number;
  algorithms?: readonly SigningAlgorithm[];
  /** Injected for tests; default global fetch. */
  fetch?: typeof fetch;
  clock?: Clock;
  logger?: Logger;
}

export interface RemoteKeyResolverStats {
  fetches: number;
  failures: number;
  lastSuccessAt: number | undefined;
  /** When the next background refresh is due (clock ms), if one is scheduled. */
  nextRefreshAt: number | undefined;
  kids: string[];
}

/** Longest timer delay Node honours (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * max-age from a Cache-Control header, parsed as a list of directives (RFC 9111 §5.2): names are
 * case-insensitive, `s-maxage` and extensions like `x-max-age` are not max-age, a quoted value is
 * tolerated, and a duplicated or malformed max-age counts as none. Returns seconds, or undefined.
 */
export function cacheControlMaxAge(header: string | null): number | undefined {
  if (!header) return undefined;
  let found: number | undefined;
  let seen = 0;
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name !== 'max-age') continue;
    seen++;
    const raw = eq < 0 ? '' : part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
    found = /^\d{1,12}$/.test(raw) ? Number(raw) : undefined;
  }
  return seen === 1 ? found : undefined;
}

/** A KeyResolver on the authority's JWKS (see {@link createRemoteKeyResolver}). */
export interface RemoteKeyResolver extends KeyResolver {
  /**
   * Fetch the key set once (idempotent; the verifier's start() calls it). Resolves true once keys
   * are loaded; false if the first fetch failed (background retries continue, and tokens answer
   * UNKNOWN_KEY meanwhile).
   */
  start(): Promise<boolean>;
  /** Stop background refreshes. Call it after stopping the verifiers that use this resolver. */
  stop(): void;
  resolveUnknown(kid: string): Promise<VerificationKey | undefined>;
  /** The last JWKS document fetched successfully, verbatim. */
  jwksJson(): string;
  stats(): RemoteKeyResolverStats;
}

/**
 * Keys from the authority's HTTP JWKS, kept in memory so `get(kid)` is synchronous. Refetches:
 * in the background before max-age runs out, and on an unknown kid — single-flight, at most once
 * per cooldown, with a negative cache — so a flood of garbage kids costs the authority at most
 * one fetch per cooldown. A failed fetch keeps the last good set. Nothing is fetched before
 * `start()`.
 *
 * @example
 * const keys = createRemoteKeyResolver({ jwksUrl: 'https://auth.example.com/.well-known/jwks.json' });
 */
export function createRemoteKeyResolver(options: RemoteKeyResolverOptions): RemoteKeyResolver {
  return new JwksKeyResolver(options);
}

class JwksKeyResolver implements RemoteKeyResolver {
  private readonly keys = new MutableKeyResolver();
  private readonly negative = new Map<string, number>();
  private inflight: Promise<boolean> | undefined;
  /** Only unknown-kid refetches count against the cooldown; scheduled ones are bounded by max-age. */
  private lastUnknownFetchAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private failuresInRow = 0;
  private lastGoodJson = '{"keys":[]}';
  private started: Promise<boolean> | undefined;
  private readonly counters = { fetches: 0, failures: 0, lastSuccessAt: undefined as number | undefined };
  private nextRefreshAt: number | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly cooldownMs: number;

  constructor(private readonly opts: RemoteKeyResolverOptions) {
    try {
      new URL(opts.jwksUrl);
    } catch {
      throw new TokenAuthorityError(ErrorCodes.INVALID_ARGUMENT, `jwksUrl "${redactUrl(opts.jwksUrl)}" is not a URL`);
    }
    this.clock = opts.clock ?? systemClock;
    this.logger = opts.logger ?? silentLogger;
    this.cooldownMs = opts.cooldownMs ?? DEFAULTS.jwksCooldownMs;
  }

  /**
   * Fetch the key set once. Resolves true once keys are loaded; false if the first fetch failed
   * (background retries continue, and tokens answer UNKNOWN_KEY meanwhile).
   */
  start(): Promise<boolean> {
    this.started ??= this.refresh('start');
    return this.started;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  get(kid: string): VerificationKey | undefined {
    return this.keys.get(kid);
  }

  async resolveUnknown(kid: string): Promise<VerificationKey | undefined> {
    const known = this.keys.get(kid);
    if (known) return known;
    const now = this.clock.nowMs();
    const until = this.negative.get(kid);
    if (until !== undefined && until > now) return undefined;
    if (this.inflight) await this.inflight;
    else if (now - this.lastUnknownFetchAt >= this.cooldownMs) {
      this.lastUnknownFetchAt = now;
      await this.refresh('unknown kid');
    }
    const found = this.keys.get(kid);
    if (!found) {
      if (this.negative.size > 10_000) this.negative.clear(); // bounded: garbage kids cannot grow it
      this.negative.set(kid, this.clock.nowMs() + (this.opts.negativeCacheMs ?? this.cooldownMs));
    }
    return found;
  }

  /** The last JWKS document fetched successfully, verbatim. */
  jwksJson(): string {
    return this.lastGoodJson;
  }

  stats(): RemoteKeyResolverStats {
    return { ...this.counters, nextRefreshAt: this.nextRefreshAt, kids: this.keys.kids() };
  }

  /** Single-flight fetch; resolves true on success. Never throws. */
  private refresh(why: string): Promise<boolean> {
    if (this.inflight) return this.inflight;
    this.inflight = this.fetchOnce(why).finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchOnce(why: string): Promise<boolean> {
    this.counters.fetches++;
    let maxAgeMs = this.opts.defaultMaxAgeMs ?? 300_000;
    try {
      const res = await (this.opts.fetch ?? fetch)(this.opts.jwksUrl, {
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
        headers: { accept: 'application/jwk-set+json, application/json' },
        redirect: 'error',
      });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw new Error(`HTTP ${res.status}`);
      }
      const text = await readLimited(res, this.opts.maxBytes ?? 256 * 1024);
      const { keys, skipped } = keysFromJwks(JSON.parse(text) as { keys: unknown[] }, this.opts.algorithms ? { algorithms: this.opts.algorithms } : {});
      if (keys.length === 0) throw new Error('JWKS holds no usable key');
      if (skipped.length > 0) this.logger.warn({ skipped }, 'JWKS keys skipped');
      this.lastGoodJson = text;
      const before = new Set(this.keys.kids());
      this.keys.replace(keys);
      for (const k of keys) this.negative.delete(k.kid);
      const added = keys.map((k) => k.kid).filter((k) => !before.has(k));
      if (added.length > 0 || before.size !== keys.length) this.logger.info({ kids: keys.map((k) => k.kid), added, why }, 'JWKS loaded');
      const maxAge = cacheControlMaxAge(res.headers.get('cache-control'));
      if (maxAge !== undefined) maxAgeMs = maxAge * 1000;
      this.counters.lastSuccessAt = this.clock.nowMs();
      this.failuresInRow = 0;
      const ceiling = Math.min(this.opts.maxRefreshIntervalMs ?? 3_600_000, MAX_TIMER_MS);
      this.schedule(Math.min(ceiling, Math.max(1000, maxAgeMs * (this.opts.refreshAt ?? 0.8))));
      return true;
    } catch (err) {
      this.counters.failures++;
      this.failuresInRow++;
      this.logger.warn({ err: (err as Error).message, url: redactUrl(this.opts.jwksUrl), why, keptKids: this.keys.size }, 'JWKS fetch failed; keeping the last good key set');
      this.schedule(Math.min(30_000, 500 * 2 ** Math.min(this.failuresInRow, 6)));
      return false;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.nextRefreshAt = this.clock.nowMs() + ms;
    this.timer = setTimeout(() => void this.refresh('scheduled'), ms);
    this.timer.unref();
  }
}

/**
 * The body as text, refusing more than `maxBytes`: a declared content-length above it is refused
 * before reading, and the stream is cut as soon as it passes it (so a huge or endless body costs
 * at most maxBytes of memory).
 */
async function readLimited(res: Response, maxBytes: number): Promise<string> {
  const tooLarge = () => new Error(`JWKS is larger than ${maxBytes} bytes`);
  const declared = res.headers.get('content-length');
  if (declared !== null && /^\d+$/.test(declared.trim()) && Number(declared) > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
}
