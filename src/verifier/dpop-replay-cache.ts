/**
 * DPoP proof replay protection (RFC 9449 §11.1): a proof's `jti` is accepted once per verifier
 * while the proof could still be accepted at all (its `iat` window), and never again.
 *
 * The local cache is bounded two ways: an entry lives only until its proof would be too old
 * anyway (`untilMs`, the end of its `iat` window), and at most `maxEntries` live entries are held.
 * When it is full it REFUSES new proofs ('full', answered INVALID_DPOP_PROOF) until entries
 * expire: evicting an unexpired entry would let the proof it records be replayed, and a flood
 * that fills the cache has to come from signed proofs (the cache is consulted only after a
 * proof's signature verified), so refusing costs only the flood's own window.
 */
import { invalidArgument } from '../shared/errors.js';

/** What a replay cache says about a proof id. */
export type ReplayVerdict = 'fresh' | 'replayed' | 'full';

/**
 * Records proof ids. `claim` answers 'fresh' and records `id` until `untilMs` if it is not held,
 * 'replayed' if it is, 'full' if it cannot record it (then the proof must be refused). It must be
 * atomic: two concurrent claims of one id answer 'fresh' at most once. A shared implementation
 * (`createRedisDpopReplayCache` in `token-authority/redis`) answers with a promise; the library's
 * own memory cache answers synchronously.
 */
export interface DpopReplayCache {
  claim(id: string, untilMs: number, nowMs: number): ReplayVerdict | Promise<ReplayVerdict>;
}

/** A replay cache that answers synchronously (usable by verifySync). */
export interface SyncDpopReplayCache extends DpopReplayCache {
  claim(id: string, untilMs: number, nowMs: number): ReplayVerdict;
}

/** Default of MemoryDpopReplayCache's `maxEntries`: ~100 bytes each, so ~20 MB when full. */
export const DEFAULT_DPOP_REPLAY_ENTRIES = 200_000;

export interface MemoryDpopReplayCacheStats {
  /** Live entries. */
  size: number;
  maxEntries: number;
  /** Claims refused because the cache was full. */
  refusedFull: number;
  /** Claims answered 'replayed'. */
  replays: number;
}

/**
 * The per-verifier replay cache: id → end of its window, with expired entries dropped in whole
 * seconds (a bucket per second of `untilMs`, at most window + skew buckets), so pruning costs
 * O(1) amortised per claim and memory is bounded by `maxEntries`.
 */
export class MemoryDpopReplayCache implements SyncDpopReplayCache {
  private readonly entries = new Map<string, number>();
  /** Second (ceil of untilMs / 1000) → the ids that expire then. */
  private readonly buckets = new Map<number, string[]>();
  private readonly maxEntries: number;
  private lastPruneSec = -1;
  private refusedFull = 0;
  private replays = 0;

  constructor(options: { maxEntries?: number } = {}) {
    const max = options.maxEntries ?? DEFAULT_DPOP_REPLAY_ENTRIES;
    if (!Number.isSafeInteger(max) || max < 1) throw invalidArgument('DPoP replay cache maxEntries must be a positive integer');
    this.maxEntries = max;
  }

  claim(id: string, untilMs: number, nowMs: number): ReplayVerdict {
    this.prune(nowMs);
    const held = this.entries.get(id);
    if (held !== undefined && held > nowMs) {
      this.replays++;
      return 'replayed';
    }
    if (untilMs <= nowMs) return 'fresh'; // nothing to hold: such a proof is refused as too old anyway
    if (held === undefined && this.entries.size >= this.maxEntries) {
      this.refusedFull++;
      return 'full';
    }
    this.entries.set(id, untilMs);
    const sec = Math.ceil(untilMs / 1000);
    const bucket = this.buckets.get(sec);
    if (bucket === undefined) this.buckets.set(sec, [id]);
    else bucket.push(id);
    return 'fresh';
  }

  get size(): number {
    return this.entries.size;
  }

  stats(): MemoryDpopReplayCacheStats {
    return { size: this.entries.size, maxEntries: this.maxEntries, refusedFull: this.refusedFull, replays: this.replays };
  }

  /** Drop every entry whose window has ended; runs at most once per second of the clock. */
  prune(nowMs: number): void {
    const nowSec = Math.floor(nowMs / 1000);
    if (nowSec === this.lastPruneSec) return;
    this.lastPruneSec = nowSec;
    for (const [sec, ids] of this.buckets) {
      if (sec * 1000 > nowMs) continue;
      this.buckets.delete(sec);
      for (const id of ids) {
        const until = this.entries.get(id);
        // An id re-claimed after it expired sits in a later bucket too: only drop it when its current end has passed.
        if (until !== undefined && until <= nowMs) this.entries.delete(id);
      }
    }
  }
}
