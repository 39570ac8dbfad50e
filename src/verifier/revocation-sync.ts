import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { FeedMessage, RevocationEvent } from '../shared/revocation-event.js';
import type { FeedSubscription, RevocationLogPage, RevocationSource } from './revocation-source.js';
import type { RevocationState } from './revocation-state.js';

/** How fresh a verifier's revocation state is. */
export interface FreshnessStatus {
  /** Highest sequence such that every sequence up to it has been applied. */
  appliedSeq: number;
  /** Newest sequence known to exist (from the log or a heartbeat). */
  headSeq: number;
  /** ms since the state was last known to be complete (Infinity before the first sync). */
  ageMs: number;
  /** headSeq - appliedSeq. */
  lag: number;
  connected: boolean;
  /** The initial load from the log has completed. */
  synced: boolean;
  /** Catch-ups from the log since start (gaps, reconnects, heartbeats ahead of us). */
  resyncs: number;
}

export interface RevocationSyncOptions {
  source: RevocationSource;
  state: RevocationState;
  clock: Clock;
  logger: Logger;
  /** Page size when reading the log. */
  pageSize?: number;
  /** Called (at most every `reportIntervalMs`) with the applied sequence: propagation receipts. */
  onApplied?: (seq: number) => void;
  /** Called with every revocation as it is applied (e.g. to evict cached tokens). */
  onRevocation?: (event: RevocationEvent) => void;
}

/**
 * Keeps a RevocationState complete: loads the log at start, applies the live feed, and re-reads the
 * log whenever it could have missed something (a sequence gap, a reconnect, a heartbeat ahead of
 * it). Live events are applied the moment they arrive, even out of order (revocations only ever add
 * or raise entries, so order does not change the result); `appliedSeq` advances only over a
 * contiguous run, so a gap is always filled from the log.
 */
export class RevocationSync {
  private applied = 0;
  /**
   * Highest sequence up to which the log itself has been read. Sequences seen only on the live
   * feed are confirmed against the log at the next heartbeat, so a forged or duplicated live
   * message can never stand in for a real revocation.
   */
  private confirmed = 0;
  private head = 0;
  private readonly ahead = new Set<number>();
  private freshAt = -Infinity;
  private connected = false;
  private synced = false;
  private resyncCount = 0;
  private catchingUp: Promise<void> | undefined;
  private again = false;
  private subscription: FeedSubscription | undefined;
  private stopped = false;
  private readonly pageSize: number;
  private readyWaiters: Array<() => void> = [];

  constructor(private readonly opts: RevocationSyncOptions) {
    this.pageSize = opts.pageSize ?? 5000;
  }

  /**
   * Subscribe and load the log. Resolves when the initial load is done, or after `timeoutMs`
   * (the state then counts as stale until it syncs, so a fail-closed verifier answers STALE).
   */
  async start(timeoutMs = 10_000): Promise<void> {
    const ready = new Promise<void>((resolve) => {
      this.readyWaiters.push(resolve);
      const timer = setTimeout(() => {
        if (!this.synced) this.opts.logger.warn({ timeoutMs }, 'revocation state not loaded yet; starting stale');
        resolve();
      }, timeoutMs);
      timer.unref?.();
    });
    void this.connect();
    await ready;
  }

  /** Subscribe, retrying with capped backoff while the source is unreachable (e.g. Redis down at start). */
  private async connect(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        const subscription = await this.opts.source.subscribe({
          onReady: () => {
            this.connected = true;
            void this.catchUp('subscribed');
          },
          onDisconnect: (error) => {
            if (this.connected) this.opts.logger.warn({ err: error?.message }, 'revocation feed disconnected; will resync from the log on reconnect');
            this.connected = false;
          },
          onMessage: (m) => this.onMessage(m),
        });
        if (this.stopped) await subscription.close();
        else this.subscription = subscription;
        return;
      } catch (err) {
        if (attempt === 0) this.opts.logger.warn({ err: (err as Error).message }, 'cannot subscribe to the revocation feed yet; retrying (state is stale until it loads)');
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))).unref?.());
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.subscription?.close();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  /** Apply an event known to be durable (the authority's own Revoke), ahead of the feed. */
  applyLocal(event: RevocationEvent): void {
    this.applyEvent(event);
  }

  status(): FreshnessStatus {
    const now = this.opts.clock.nowMs();
    return {
      appliedSeq: this.applied,
      headSeq: Math.max(this.head, this.applied),
      ageMs: now - this.freshAt,
      lag: Math.max(0, this.head - this.applied),
      connected: this.connected,
      synced: this.synced,
      resyncs: this.resyncCount,
    };
  }

  /** ms since the state was last known complete. */
  ageMs(): number {
    return this.opts.clock.nowMs() - this.freshAt;
  }

  private onMessage(m: FeedMessage): void {
    if (m.type === 'hb') {
      if (m.seq > this.head) this.head = m.seq;
      if (m.seq > this.applied) void this.catchUp('heartbeat ahead');
      else if (m.seq < Math.max(this.confirmed, this.applied) && !this.catchingUp) {
        // Usually a heartbeat overtaken by a log read; after a failover that lost writes, the log
        // itself went back. A read tells which (and readToHead handles the second).
        void this.catchUp('heartbeat behind');
      } else {
        if (!this.catchingUp) this.markFresh();
        if (this.applied > this.confirmed) void this.catchUp('confirm live events against the log');
      }
      return;
    }
    this.applyEvent(m);
    if (this.applied >= this.head && !this.catchingUp && this.ahead.size === 0) this.markFresh();
    else if (this.ahead.size > 0) void this.catchUp('sequence gap');
  }

  private applyEvent(e: RevocationEvent): void {
    if (e.seq > this.head) this.head = e.seq;
    // Always apply the effect: revocations only ever add, so applying one twice is harmless, and a
    // message that claimed this sequence first (a duplicate, or a forgery) cannot hide it.
    this.opts.state.apply(e);
    this.opts.onRevocation?.(e);
    if (e.seq <= this.applied || this.ahead.has(e.seq)) return;
    if (e.seq === this.applied + 1) {
      this.applied = e.seq;
      while (this.ahead.delete(this.applied + 1)) this.applied++;
      this.opts.onApplied?.(this.applied);
    } else {
      this.ahead.add(e.seq);
    }
  }

  private markFresh(): void {
    this.freshAt = this.opts.clock.nowMs();
  }

  /** Read the log from the applied sequence to its head. Single-flight; re-runs if asked meanwhile. */
  private catchUp(why: string): Promise<void> {
    if (this.catchingUp) {
      this.again = true;
      return this.catchingUp;
    }
    this.catchingUp = (async () => {
      let attempt = 0;
      do {
        this.again = false;
        try {
          await this.readToHead(why);
          attempt = 0;
        } catch (err) {
          // The source is unavailable: stay stale, retry with backoff while connected.
          this.opts.logger.warn({ err: (err as Error).message, why }, 'revocation log read failed');
          if (this.stopped || !this.connected) break;
          attempt++;
          await new Promise((r) => setTimeout(r, Math.min(1000, 25 * 2 ** attempt)).unref?.());
          this.again = true;
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.catchingUp = undefined;
    });
    return this.catchingUp;
  }

  private async readToHead(why: string): Promise<void> {
    const from = this.confirmed;
    // While one full page is applied, the next is already being read (a large log loads at the
    // speed of the slower of the two, not their sum). Used only if it starts where we are.
    let prefetch: { after: number; page: Promise<RevocationLogPage> } | undefined;
    for (;;) {
      const page = prefetch && prefetch.after === this.confirmed ? await prefetch.page : await this.opts.source.readLog(this.confirmed, this.pageSize);
      prefetch = undefined;
      // A sequence seen live was already in the log (one script appends and publishes), so a head
      // below anything applied means the log lost entries.
      if (page.headSeq < Math.max(this.confirmed, this.applied)) {
        this.logWentBack(page.headSeq);
        continue;
      }
      if (page.headSeq > this.head) this.head = page.headSeq;
      // Appends are atomic with their sequence, so a hole at the start of a page can only be
      // entries trimmed for age: they can no longer matter, and the verifier moves past them.
      const first = page.events[0];
      const last = page.events[page.events.length - 1];
      if (last && page.events.length === this.pageSize && last.seq < page.headSeq) {
        const next = this.opts.source.readLog(last.seq, this.pageSize);
        next.catch(() => undefined); // a discarded prefetch must not become an unhandled rejection
        prefetch = { after: last.seq, page: next };
      }
      if (first && first.seq > this.confirmed + 1) this.skipTo(first.seq - 1);
      for (const e of page.events) {
        this.applyEvent(e);
        this.confirmed = e.seq;
      }
      if (page.events.length === 0 && page.headSeq > this.confirmed) this.skipTo(page.headSeq);
      if (page.events.length < this.pageSize || this.confirmed >= page.headSeq) break;
    }
    if (this.applied >= this.head) {
      this.markFresh();
      if (!this.synced) {
        this.synced = true;
        for (const w of this.readyWaiters.splice(0)) w();
      }
    }
    this.resyncCount++;
    this.opts.logger.debug({ why, from, to: this.applied, head: this.head }, 'revocation state caught up from the log');
  }

  /**
   * The log's head is below what this verifier read from it: Redis lost acknowledged writes (a
   * failover to a replica that had not received them, or a restart without AOF), and the new
   * master will hand the lost sequence numbers out again. Keep every revocation already applied
   * (the safe side) and re-read the whole log (bounded by its retention), so the reused numbers
   * are applied rather than ignored.
   */
  private logWentBack(headSeq: number): void {
    this.opts.logger.error({ headSeq, applied: this.applied, confirmed: this.confirmed }, 'the revocation log went back (Redis lost writes?): re-reading it from the start, keeping applied revocations');
    this.applied = 0;
    this.confirmed = 0;
    this.head = headSeq;
    this.ahead.clear();
  }

  /** Advance over sequences the log no longer holds (trimmed as expired). */
  private skipTo(seq: number): void {
    if (seq > this.confirmed) this.confirmed = seq;
    if (seq <= this.applied) return;
    this.applied = seq;
    for (const s of [...this.ahead]) if (s <= seq) this.ahead.delete(s);
    while (this.ahead.delete(this.applied + 1)) this.applied++;
    this.opts.onApplied?.(this.applied);
  }
}
