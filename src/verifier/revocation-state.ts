/**
 * The revocation entries every verifier holds in memory (docs/sessions-and-revocation.md):
 * jti → until, sid → until, sub → {minimum valid generation, until}.
 *
 * Sized for a million live entries: each kind is a plain Map<string, number> (until in epoch ms),
 * plus a time-bucketed expiry queue so that `prune`, called as often as every second, costs
 * O(entries expiring) rather than O(entries held).
 *
 * Measured (bench/verify-core.ts, 1M jti entries with 36-character ids): ~111 bytes per entry,
 * ids included; JSON.parse + apply of 1M log lines ~1.3-2 s; a prune with nothing due ~0.1 ms.
 * `until` stays in exact epoch ms (a boxed double, 16 of those bytes) so that expiry is exact.
 */
import type { VerifiedClaims } from '../shared/claims.js';
import type { RevocationEvent, RevocationTargetKind } from '../shared/revocation-event.js';

/** One target's entry: until (epoch ms) and, for a subject, the minimum valid generation. */
export interface RevocationEntryValue {
  until: number;
  gen?: number;
}

/** Expiry queue granularity: one bucket per second of `until`. */
const BUCKET_MS = 1000;

/** A min-heap of bucket numbers; there is one bucket per distinct second, so it stays small. */
class MinHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): number | undefined {
    return this.items[0];
  }

  push(value: number): void {
    const a = this.items;
    let i = a.length;
    a.push(value);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent] as number;
      if (p <= value) break;
      a[i] = p;
      i = parent;
    }
    a[i] = value;
  }

  pop(): void {
    const a = this.items;
    const last = a.pop();
    if (last === undefined || a.length === 0) return;
    let i = 0;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (a[r] as number) < (a[l] as number) ? r : l;
      if ((a[c] as number) >= last) break;
      a[i] = a[c] as number;
      i = c;
    }
    a[i] = last;
  }

  clear(): void {
    this.items.length = 0;
  }
}

/**
 * id → until (epoch ms), with entries queued by the second their `until` falls in. An id is queued
 * again only when its until moves into a later bucket, so replaying events adds nothing. Queue
 * references that went stale (entry extended or already dropped) are skipped when their bucket is
 * drained: the Map is the truth, the queue only says where to look.
 */
class ExpiringIds {
  readonly until = new Map<string, number>();
  private readonly buckets = new Map<number, string[]>();
  private readonly heap = new MinHeap();

  /** Set until = max(current, untilMs). */
  extend(id: string, untilMs: number): void {
    const current = this.until.get(id);
    if (current !== undefined && current >= untilMs) return;
    this.until.set(id, untilMs);
    const b = Math.floor(untilMs / BUCKET_MS);
    if (current !== undefined && Math.floor(current / BUCKET_MS) === b) return;
    let bucket = this.buckets.get(b);
    if (bucket === undefined) {
      bucket = [];
      this.buckets.set(b, bucket);
      this.heap.push(b);
    }
    bucket.push(id);
  }

  /**
   * Set until exactly, lowering it if need be (undefined drops the entry). Only for undoing an
   * entry a message raised that the log never confirmed; a stale queue reference is harmless.
   */
  reset(id: string, untilMs: number | undefined): void {
    if (untilMs === undefined) {
      this.until.delete(id);
      return;
    }
    this.until.delete(id);
    this.extend(id, untilMs);
  }

  isLive(id: string, nowMs: number): boolean {
    const u = this.until.get(id);
    return u !== undefined && u >= nowMs;
  }

  /** Drop entries with until < nowMs; `onDrop` sees each dropped id. */
  prune(nowMs: number, onDrop?: (id: string) => void): number {
    const nowBucket = Math.floor(nowMs / BUCKET_MS);
    let dropped = 0;
    for (let b = this.heap.peek(); b !== undefined && b <= nowBucket; b = this.heap.peek()) {
      const ids = this.buckets.get(b) as string[];
      let kept = 0;
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as string;
        const u = this.until.get(id);
        if (u === undefined) continue;
        if (u < nowMs) {
          this.until.delete(id);
          onDrop?.(id);
          dropped++;
        } else if (b === nowBucket && Math.floor(u / BUCKET_MS) === b) {
          ids[kept++] = id; // expires later this same second: stays queued here
        }
        // otherwise it was extended and is queued in its later bucket
      }
      if (kept > 0) {
        ids.length = kept;
        break; // only the current second can keep entries, and it is the last bucket to look at
      }
      this.buckets.delete(b);
      this.heap.pop();
    }
    return dropped;
  }

  clear(): void {
    this.until.clear();
    this.buckets.clear();
    this.heap.clear();
  }
}

/**
 * In-memory revocation entries, fed from the revocation log and live feed. Applying an event is
 * idempotent and order-insensitive (until and generation only ever grow), so replays after a
 * reconnect or resync are harmless.
 */
export class RevocationState {
  private readonly jti = new ExpiringIds();
  private readonly sid = new ExpiringIds();
  private readonly sub = new ExpiringIds();
  /** sub → minimum valid generation; same key set as `sub.until`. */
  private readonly subGen = new Map<string, number>();
  private readonly dropSubGen = (id: string): void => {
    this.subGen.delete(id);
  };

  /**
   * Apply a revocation: jti and sid entries live until `until`; a sub entry revokes that subject's
   * tokens with `gen` below the event's gen until `until`. Takes the maximum of both, so an older
   * or repeated event changes nothing. Events that are not well-formed are ignored.
   */
  apply(e: RevocationEvent): void {
    const id = e.id;
    const until = e.until;
    if (typeof id !== 'string' || id.length === 0 || typeof until !== 'number' || !Number.isFinite(until)) return;
    switch (e.kind) {
      case 'jti':
        this.jti.extend(id, until);
        return;
      case 'sid':
        this.sid.extend(id, until);
        return;
      case 'sub': {
        const gen = e.gen;
        if (typeof gen !== 'number' || !Number.isSafeInteger(gen) || gen < 0) return;
        const current = this.subGen.get(id);
        if (current === undefined || gen > current) this.subGen.set(id, gen);
        this.sub.extend(id, until);
        return;
      }
      default:
        return;
    }
  }

  /**
   * True if a live entry covers these claims: their jti or sid is revoked, or their generation is
   * below their subject's minimum. An entry is live while `until >= nowMs`.
   */
  isRevoked(claims: VerifiedClaims, nowMs: number): boolean {
    if (this.jti.isLive(claims.tokenId, nowMs) || this.sid.isLive(claims.sessionId, nowMs)) return true;
    const minGen = this.subGen.get(claims.subject);
    return minGen !== undefined && claims.generation < minGen && this.sub.isLive(claims.subject, nowMs);
  }

  /** The entry for one target, if held: its until and, for a subject, its minimum generation. */
  get(kind: RevocationTargetKind, id: string): RevocationEntryValue | undefined {
    if (kind === 'sub') {
      const until = this.sub.until.get(id);
      return until === undefined ? undefined : { until, gen: this.subGen.get(id) ?? 0 };
    }
    const until = (kind === 'jti' ? this.jti : this.sid).until.get(id);
    return until === undefined ? undefined : { until };
  }

  /**
   * Set one target's entry to exactly this value (undefined removes it). Unlike apply, this can
   * lower an entry: it is how an entry raised by a live message the log never confirmed is undone.
   */
  reset(kind: RevocationTargetKind, id: string, value: RevocationEntryValue | undefined): void {
    if (kind === 'sub') {
      this.sub.reset(id, value?.until);
      if (value === undefined) this.subGen.delete(id);
      else this.subGen.set(id, value.gen ?? 0);
      return;
    }
    (kind === 'jti' ? this.jti : this.sid).reset(id, value?.until);
  }

  /** Every entry held whose until is at or after nowMs (for re-appending what a log lost). */
  *entries(nowMs: number): Generator<{ kind: RevocationTargetKind; id: string; until: number; gen?: number }> {
    for (const [id, until] of this.jti.until) if (until >= nowMs) yield { kind: 'jti', id, until };
    for (const [id, until] of this.sid.until) if (until >= nowMs) yield { kind: 'sid', id, until };
    for (const [id, until] of this.sub.until) if (until >= nowMs) yield { kind: 'sub', id, until, gen: this.subGen.get(id) ?? 0 };
  }

  /** Drop entries whose until < nowMs; returns how many. Costs O(dropped + buckets passed). */
  prune(nowMs: number): number {
    return this.jti.prune(nowMs) + this.sid.prune(nowMs) + this.sub.prune(nowMs, this.dropSubGen);
  }

  /** Forget everything (before a full reload). */
  clear(): void {
    this.jti.clear();
    this.sid.clear();
    this.sub.clear();
    this.subGen.clear();
  }

  /** Entries held, live or awaiting prune. */
  get size(): number {
    return this.jti.until.size + this.sid.until.size + this.sub.until.size;
  }

  stats(): { jti: number; sid: number; sub: number } {
    return { jti: this.jti.until.size, sid: this.sid.until.size, sub: this.sub.until.size };
  }
}
