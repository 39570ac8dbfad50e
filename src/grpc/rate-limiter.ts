import type { RateLimitSpec } from '../config/rate-limit-spec.js';
import type { Clock } from '../shared/clock.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { Caller } from './caller.js';
import { addressOf, typedIdentitiesOf } from './caller.js';

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

/** The outcome of one attempt: allowed, or refused with the time until a token is available. */
export type TakeResult = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * Token buckets keyed by caller, in a map capped at `maxKeys`. The map doubles as an LRU (a Map
 * iterates in insertion order and every take re-inserts its key), so the caller forgotten first
 * is the one seen least recently. A bucket that has refilled completely holds no information (a
 * new bucket starts full), so such buckets are dropped from the cold end as they are met: the map
 * stays about as large as the set of recently active callers, and never larger than the cap.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    readonly spec: RateLimitSpec,
    private readonly clock: Clock,
    private readonly maxKeys: number,
  ) {
    if (!(spec.perSecond > 0) || !(spec.burst >= 1)) throw new RangeError('rate and burst must be positive');
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be a positive integer');
    this.perMs = spec.perSecond / 1000;
  }

  /** Callers currently tracked. */
  get size(): number {
    return this.buckets.size;
  }

  take(key: string): TakeResult {
    const now = this.clock.nowMs();
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key);
      bucket.tokens = Math.min(this.spec.burst, bucket.tokens + Math.max(0, now - bucket.at) * this.perMs);
      bucket.at = now;
    } else {
      bucket = { tokens: this.spec.burst, at: now };
    }
    this.dropColdFullBuckets(now);
    if (this.buckets.size >= this.maxKeys) {
      // Forgetting a caller hands it a full bucket: the price of bounded memory, paid by the
      // caller seen least recently.
      this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    // The epsilon keeps float noise (1 / (1/3600000)) from adding a millisecond.
    return { ok: false, retryAfterMs: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs - 1e-6)) };
  }

  private dropColdFullBuckets(now: number): void {
    // Bounded work per call: each call removes at most a few entries, each removal is O(1).
    for (let i = 0; i < 2; i++) {
      const first = this.buckets.entries().next();
      if (first.done) return;
      const [k, b] = first.value;
      if (b.tokens + (now - b.at) * this.perMs < this.spec.burst) return;
      this.buckets.delete(k);
    }
  }
}

/** Which limits apply to which RPC (by method name, as the unary wrapper knows it). */
export interface RateLimiterOptions {
  /** method name → limit (null or absent = not limited), with the setting that configured it for messages. */
  limits: Readonly<Record<string, { spec: RateLimitSpec | null; setting: string }>>;
  clock: Clock;
  /** Callers tracked per limit. */
  maxCallers: number;
}

/** What the unary wrapper calls before every handler. */
export interface RateLimiter {
  /** Throws TokenAuthorityError(ERR_RATE_LIMITED) when `caller` is over its limit for `method`. */
  check(method: string, caller: Caller): void;
  /** Whether any limit applies to this method (the unary wrapper asks once per method). */
  applies(method: string): boolean;
}

/**
 * The bucket key of a caller: its first client-certificate identity when it has one (stable across
 * connections and addresses; typed, so a CN never shares a URI's bucket, and DNS names in lower
 * case), else its IP address without the port (`ip:::1`, `ip:10.0.0.1`: every connection from one
 * address shares the bucket).
 */
export function rateLimitKey(caller: Caller): string {
  const id = typedIdentitiesOf(caller)[0];
  if (id === undefined) return `ip:${addressOf(caller)}`;
  return id.kind === 'uri' ? `uri:${id.value}` : `${id.kind}:${id.value.toLowerCase()}`;
}

/** Per-caller token-bucket limits on the methods named in `limits`; every other method passes. */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const byMethod = new Map<string, { buckets: TokenBuckets; setting: string }>();
  for (const [method, { spec, setting }] of Object.entries(options.limits)) {
    if (spec) byMethod.set(method, { buckets: new TokenBuckets(spec, options.clock, options.maxCallers), setting });
  }
  return {
    applies: (method) => byMethod.has(method),
    check(method, caller) {
      const limit = byMethod.get(method);
      if (!limit) return;
      const key = rateLimitKey(caller);
      const r = limit.buckets.take(key);
      if (r.ok) return;
      const { spec } = limit.buckets;
      throw new TokenAuthorityError(
        ErrorCodes.RATE_LIMITED,
        `${method} rate limit exceeded for caller ${key.slice(key.indexOf(':') + 1)} (${limit.setting}=${spec.text}: ${formatRate(spec.perSecond)}, burst ${spec.burst}); retry in ${r.retryAfterMs} ms`,
      );
    },
  };
}

function formatRate(perSecond: number): string {
  if (perSecond >= 1) return `${round(perSecond)}/s`;
  if (perSecond * 60 >= 1) return `${round(perSecond * 60)}/min`;
  return `${round(perSecond * 3600)}/h`;
}

const round = (n: number) => Math.round(n * 100) / 100;
