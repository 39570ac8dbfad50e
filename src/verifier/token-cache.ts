/**
 * A bounded cache of signature-verified tokens: token string → frozen VerifiedClaims, so a token
 * presented again skips the signature check. Time, audience, scope and revocation checks still run
 * on every call at the caller; this cache only ever answers "these bytes were signed by a known
 * key and carry these claims".
 *
 * Eviction is two-generation (as in quick-lru): new entries go to `young`; when it is full it
 * becomes `old` and the previous `old` is dropped wholesale; a hit in `old` moves the entry to
 * `young`. An entry unused for between capacity/2 and capacity insertions is evicted — close to
 * LRU — while a hit in `young`, the common case, is a single Map lookup with no writes.
 *
 * The key is the whole token: anything shorter (a signature, a hash prefix) would let a different
 * token that shares it be served another token's claims. Measured (bench/verify-core.ts, ES256
 * tokens of 530 characters with two audiences, three scopes and one extra claim): ~440 bytes per
 * entry for the map slot and the frozen claims, plus the token string itself (16 + length bytes),
 * so ~1 KB per entry and ~10 MB at the default capacity.
 */
import { systemClock, type Clock } from '../shared/clock.js';
import { DEFAULTS } from '../shared/defaults.js';
import type { VerifiedClaims } from '../shared/claims.js';
import { invalidArgument } from '../shared/errors.js';

export interface TokenCacheOptions {
  /** Most entries held; 0 disables the cache. Default 10 000. */
  capacity?: number;
  /** Entries are dropped once now >= exp + clockSkewSec. Default 0. */
  clockSkewSec?: number;
  clock?: Clock;
}

export interface TokenCacheStats {
  size: number;
  hits: number;
  misses: number;
  /** Entries dropped to make room. */
  evictions: number;
  /** Entries dropped on get because the token had expired (also counted as misses). */
  expirations: number;
}

export const DEFAULT_TOKEN_CACHE_CAPACITY = DEFAULTS.tokenCacheSize;

/** Token → verified claims, bounded by entry count and by each token's expiry. */
export class TokenCache {
  private young = new Map<string, VerifiedClaims>();
  private old = new Map<string, VerifiedClaims>();
  private readonly generationSize: number;
  private readonly skewSec: number;
  private readonly clock: Clock;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private expirations = 0;

  constructor(options: TokenCacheOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_TOKEN_CACHE_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity < 0 || capacity === 1) {
      throw invalidArgument('token cache capacity must be 0 (disabled) or an integer >= 2');
    }
    const skew = options.clockSkewSec ?? 0;
    if (!Number.isFinite(skew) || skew < 0) throw invalidArgument('token cache clockSkewSec must be a non-negative number');
    // Two generations of capacity/2 never hold more than capacity together.
    this.generationSize = Math.floor(capacity / 2);
    this.skewSec = skew;
    this.clock = options.clock ?? systemClock;
  }

  /** The cached claims, or undefined on a miss or if the token has expired (then it is dropped). */
  get(token: string): VerifiedClaims | undefined {
    let claims = this.young.get(token);
    if (claims === undefined) {
      claims = this.old.get(token);
      if (claims === undefined) {
        this.misses++;
        return undefined;
      }
      this.old.delete(token);
      if (!this.isExpired(claims)) {
        this.insertYoung(token, claims);
        this.hits++;
        return claims;
      }
    } else if (!this.isExpired(claims)) {
      this.hits++;
      return claims;
    } else {
      this.young.delete(token);
    }
    this.expirations++;
    this.misses++;
    return undefined;
  }

  /** Cache a token that has just passed the signature stage. */
  set(token: string, claims: VerifiedClaims): void {
    if (this.generationSize === 0) return;
    if (this.young.has(token)) {
      this.young.set(token, claims);
      return;
    }
    this.old.delete(token);
    this.insertYoung(token, claims);
  }

  delete(token: string): boolean {
    const a = this.young.delete(token);
    const b = this.old.delete(token);
    return a || b;
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  stats(): TokenCacheStats {
    return { size: this.size, hits: this.hits, misses: this.misses, evictions: this.evictions, expirations: this.expirations };
  }

  private isExpired(claims: VerifiedClaims): boolean {
    return claims.expiresAt + this.skewSec <= this.clock.nowMs() / 1000;
  }

  private insertYoung(token: string, claims: VerifiedClaims): void {
    if (this.young.size >= this.generationSize) {
      this.evictions += this.old.size;
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(token, claims);
  }
}
