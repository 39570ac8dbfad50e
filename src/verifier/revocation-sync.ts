import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import type { FeedMessage, RevocationEvent, RevocationTargetKind } from '../shared/revocation-event.js';
import type { FeedSubscription, RevocationLogPage, RevocationSource } from './revocation-source.js';
import type { RevocationEntryValue, RevocationState } from './revocation-state.js';

/** How fresh a verifier's revocation state is. */
export interface FreshnessStatus {
  /** Highest sequence such that every sequence up to it has been applied. */
  appliedSeq: number;
  /** Newest sequence the log itself reported (a heartbeat is only a hint to read it). */
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
  /** Times the log was found to have gone back (lost entries this verifier had read) and was re-read in full. */
  fullReloads?: number;
}

/** A revocation this verifier holds that the log no longer has (see RevocationSyncOptions.onLostRevocations). */
export interface LostRevocation {
  kind: RevocationTargetKind;
  id: string;
  until: number;
  /** For kind 'sub': the minimum valid generation. */
  gen?: number;
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
  /**
   * Entries are kept no longer than this past now, whatever `until` a message carries: no token
   * this verifier accepts can outlive it. Default: no clamp.
   */
  maxEntryLifetimeMs?: number;
  /** Live entries not yet confirmed by a log read, at most. Beyond it live events wait for the log. Default 10 000. */
  maxUnconfirmed?: number;
  /** Full re-reads of the log (after it went back) at most this often. Default 5000. */
  minFullReloadIntervalMs?: number;
  /**
   * After the log went back, called with the revocations this verifier holds from the log or
   * from applyLocal (never from unconfirmed live messages), still live, that the log now lacks.
   * The authority re-appends them so verifiers started later learn them too.
   */
  onLostRevocations?: (lost: LostRevocation[]) => void;
}

/** A live (or local) event whose sequence no log read has confirmed yet. */
interface Claim {
  /** As applied (until clamped). */
  event: RevocationEvent;
  /** As received, to compare with the log's entry. */
  raw: RevocationEvent;
  /** Reads started before it arrived cannot tell anything about it. */
  serial: number;
  /** From applyLocal (the store acknowledged it): never undone, and its absence means the log lost it. */
  trusted: boolean;
}

/** What a target's entry was before unconfirmed live messages raised it, and what trusted sources added since. */
interface Raised {
  kind: RevocationTargetKind;
  id: string;
  trusted: RevocationEntryValue | undefined;
  claims: number;
}

const key = (kind: string, id: string): string => `${kind}\u0000${id}`;

function merge(a: RevocationEntryValue | undefined, e: { until: number; gen?: number }): RevocationEntryValue {
  if (!a) return e.gen === undefined ? { until: e.until } : { until: e.until, gen: e.gen };
  const until = Math.max(a.until, e.until);
  if (a.gen === undefined && e.gen === undefined) return { until };
  return { until, gen: Math.max(a.gen ?? 0, e.gen ?? 0) };
}

function sameEvent(a: RevocationEvent, b: RevocationEvent): boolean {
  return a.seq === b.seq && a.kind === b.kind && a.id === b.id && a.until === b.until && a.at === b.at && (a.gen ?? -1) === (b.gen ?? -1);
}

/**
 * Keeps a RevocationState complete: loads the log at start, applies the live feed, and re-reads the
 * log whenever it could have missed something (a sequence gap, a reconnect, a heartbeat ahead of
 * it). Live events are applied the moment they arrive, even out of order (revocations only ever add
 * or raise entries, so order does not change the result); `appliedSeq` advances only over a
 * contiguous run, so a gap is always filled from the log.
 *
 * What the feed cannot do (anyone able to PUBLISH can forge a message):
 *  - move the head: the head is what a log read reports; a heartbeat only prompts a read;
 *  - make the verifier re-read the whole log: "the log went back" is decided only from log reads,
 *    against the last entry a log read returned (its sequence and content);
 *  - grow memory without bound: messages and ids are bounded at parsing, `until` is clamped, and
 *    live entries the next log read does not confirm are undone (at most `maxUnconfirmed` at once).
 */
export class RevocationSync {
  private applied = 0;
  /** Highest sequence up to which the log itself has been read. */
  private confirmed = 0;
  /** The last entry a log read returned, at `confirmed`: if the log no longer holds it, the log went back. */
  private anchor: RevocationEvent | undefined;
  /** Head as reported by the last log read. */
  private head = 0;
  private readonly ahead = new Set<number>();
  private readonly unconfirmed = new Map<number, Claim[]>();
  private unconfirmedCount = 0;
  private readonly raised = new Map<string, Raised>();
  private readSerial = 0;
  private freshAt = -Infinity;
  private connected = false;
  private synced = false;
  private resyncCount = 0;
  private fullReloadCount = 0;
  /** The log went back and has not been re-read in full yet: the state is not complete. */
  private wentBack = false;
  private lastFullReloadAt = -Infinity;
  private reloadTimer: NodeJS.Timeout | undefined;
  private catchingUp: Promise<void> | undefined;
  private again = false;
  private subscription: FeedSubscription | undefined;
  private stopped = false;
  private readonly pageSize: number;
  private readonly maxUnconfirmed: number;
  private readonly minFullReloadIntervalMs: number;
  private readyWaiters: Array<() => void> = [];

  constructor(private readonly opts: RevocationSyncOptions) {
    this.pageSize = opts.pageSize ?? 5000;
    this.maxUnconfirmed = opts.maxUnconfirmed ?? 10_000;
    this.minFullReloadIntervalMs = opts.minFullReloadIntervalMs ?? 5000;
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
    if (this.reloadTimer) clearTimeout(this.reloadTimer);
    await this.subscription?.close();
    for (const w of this.readyWaiters.splice(0)) w();
  }

  /** Apply an event known to be durable (the authority's own Revoke), ahead of the feed. */
  applyLocal(event: RevocationEvent): void {
    const e = this.clamp(event);
    this.applyTrusted(e);
    if (e.seq > this.confirmed) this.addClaim({ event: e, raw: event, serial: this.readSerial, trusted: true });
    this.account(e.seq);
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
      fullReloads: this.fullReloadCount,
    };
  }

  /** ms since the state was last known complete. */
  ageMs(): number {
    return this.opts.clock.nowMs() - this.freshAt;
  }

  private onMessage(m: FeedMessage): void {
    if (m.type === 'hb') {
      // A hint only: the head is whatever the log says when read (so a forged huge seq pins nothing).
      if (m.seq > this.applied) void this.catchUp('heartbeat ahead');
      else if (m.seq < this.confirmed) void this.catchUp('heartbeat behind'); // overtaken by a read, or the log went back: a read tells
      else {
        if (!this.catchingUp) this.markFresh();
        if (this.unconfirmedCount > 0) void this.catchUp('confirm live events against the log');
      }
      return;
    }
    if (this.unconfirmedCount >= this.maxUnconfirmed) {
      // Bounded memory: this one is not applied live, the log (read now) has it if it is real.
      void this.catchUp('too many unconfirmed live events');
      return;
    }
    const e = this.clamp(m);
    // Apply the effect now: a message that claimed this sequence first (a duplicate, or a forgery)
    // cannot hide it. It is undone if the next log read does not confirm it.
    const k = key(e.kind, e.id);
    let r = this.raised.get(k);
    if (!r) {
      r = { kind: e.kind, id: e.id, trusted: this.opts.state.get(e.kind, e.id), claims: 0 };
      this.raised.set(k, r);
    }
    r.claims++;
    this.opts.state.apply(e);
    this.addClaim({ event: e, raw: m, serial: this.readSerial, trusted: false });
    if (e.seq <= this.confirmed) {
      // The log already gave us this sequence: a duplicate, a forgery, or a reused number after
      // the log went back. A read tells which.
      void this.catchUp('live event at or below the confirmed sequence');
      return;
    }
    this.account(e.seq);
    if (this.applied >= this.head && !this.catchingUp && this.ahead.size === 0) this.markFresh();
    else if (this.ahead.size > 0) void this.catchUp('sequence gap');
  }

  private clamp(e: RevocationEvent): RevocationEvent {
    const limit = this.clampLimit();
    return e.until > limit ? { ...e, until: limit } : e;
  }

  /** The latest until an entry may keep now (Infinity without a maximum entry lifetime). */
  private clampLimit(): number {
    const max = this.opts.maxEntryLifetimeMs;
    return max === undefined ? Infinity : this.opts.clock.nowMs() + max;
  }

  /** An event from the log or the store: applied, and remembered for entries live messages raised. */
  private applyTrusted(e: RevocationEvent): void {
    this.opts.state.apply(e);
    if (this.raised.size > 0) {
      const r = this.raised.get(key(e.kind, e.id));
      if (r) r.trusted = merge(r.trusted, e);
    }
    if (this.logValues) {
      const k = key(e.kind, e.id);
      this.logValues.set(k, merge(this.logValues.get(k), e));
    }
  }

  private addClaim(c: Claim): void {
    const list = this.unconfirmed.get(c.event.seq);
    if (list) list.push(c);
    else this.unconfirmed.set(c.event.seq, [c]);
    this.unconfirmedCount++;
  }

  /** Sequence bookkeeping for an event applied out of the log. */
  private account(seq: number): void {
    if (seq <= this.applied || this.ahead.has(seq)) return;
    if (seq === this.applied + 1) {
      this.applied = seq;
      while (this.ahead.delete(this.applied + 1)) this.applied++;
      this.opts.onApplied?.(this.applied);
    } else {
      this.ahead.add(seq);
    }
  }

  /** A claim is settled: confirmed (the log holds the same event) or not. */
  private settle(c: Claim, confirmedByLog: boolean): void {
    this.unconfirmedCount--;
    if (c.trusted) {
      if (!confirmedByLog) {
        this.opts.logger.error({ seq: c.event.seq, kind: c.event.kind }, 'the revocation log lacks a revocation the store acknowledged (Redis lost writes?)');
        this.wentBack = true;
      }
      return;
    }
    const k = key(c.event.kind, c.event.id);
    const r = this.raised.get(k);
    if (!r) return;
    if (--r.claims > 0) return;
    this.raised.delete(k);
    // Back to what trusted sources say (for a confirmed claim the log applied the same value).
    const target = r.trusted && r.trusted.until >= this.opts.clock.nowMs() ? r.trusted : undefined;
    const now = this.opts.state.get(r.kind, r.id);
    if (now && (!target || now.until !== target.until || (now.gen ?? 0) !== (target.gen ?? 0))) this.opts.state.reset(r.kind, r.id, target);
  }

  private markFresh(): void {
    if (this.wentBack) return;
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

  /** Set while a full reload collects what the log holds, to find what it lost. */
  private logValues: Map<string, RevocationEntryValue> | undefined;

  private async readToHead(why: string): Promise<void> {
    const serial = ++this.readSerial;
    const from = this.confirmed;
    let full = false;
    if (this.wentBack) {
      if (!this.startFullReload()) return;
      full = true;
    }
    let checkAnchor = this.anchor !== undefined;
    // While one full page is applied, the next two are already being read: the next one, and the
    // one after it where sequences run on contiguously (a guess: a page is used only if it starts
    // exactly where we are, else read again). So the store always has a read queued and a large
    // log loads at the speed of the slower side, not of their sum.
    const prefetched = new Map<number, Promise<RevocationLogPage>>();
    const prefetch = (from: number) => {
      if (prefetched.has(from)) return;
      const next = this.opts.source.readLog(from, this.pageSize);
      next.catch(() => undefined); // a discarded prefetch must not become an unhandled rejection
      prefetched.set(from, next);
    };
    for (;;) {
      const after = checkAnchor ? this.confirmed - 1 : this.confirmed;
      const ahead = prefetched.get(after);
      for (const from of prefetched.keys()) if (from <= after) prefetched.delete(from);
      const page = ahead ? await ahead : await this.opts.source.readLog(after, this.pageSize);
      let events = page.events;
      if (checkAnchor) {
        checkAnchor = false;
        if (this.lostAnchor(page)) {
          this.opts.logger.error(
            { headSeq: page.headSeq, confirmed: this.confirmed, applied: this.applied },
            'the revocation log went back (Redis lost writes?): re-reading it from the start, keeping applied revocations',
          );
          this.wentBack = true;
          if (!this.startFullReload()) return;
          full = true;
          continue;
        }
        if (events[0]?.seq === this.confirmed) events = events.slice(1);
      } else if (page.headSeq < this.confirmed) {
        // Entries the log returned before are gone (a read without an anchor: skipped past trimmed entries).
        this.wentBack = true;
        if (!this.startFullReload()) return;
        full = true;
        continue;
      }
      this.head = page.headSeq;
      // Appends are atomic with their sequence, so a hole at the start of a page can only be
      // entries trimmed for age: they can no longer matter, and the verifier moves past them.
      const first = events[0];
      const last = events[events.length - 1];
      if (last && page.events.length === this.pageSize && last.seq < page.headSeq) {
        prefetch(last.seq);
        if (last.seq + this.pageSize < page.headSeq) prefetch(last.seq + this.pageSize);
      }
      if (first && first.seq > this.confirmed + 1) this.skipTo(first.seq - 1);
      // Per entry only what the entry needs (a page can hold thousands at start-up): the clamp's
      // limit is read once per page, and claims are looked up only while there are any.
      const limit = this.clampLimit();
      for (const raw of events) {
        const e = raw.until > limit ? { ...raw, until: limit } : raw;
        this.applyTrusted(e);
        const claims = this.unconfirmed.size > 0 ? this.unconfirmed.get(e.seq) : undefined;
        if (claims) {
          this.unconfirmed.delete(e.seq);
          for (const c of claims) this.settle(c, sameEvent(c.raw, raw));
        }
        this.account(e.seq);
        this.confirmed = e.seq;
        this.anchor = raw;
      }
      if (events.length === 0 && page.headSeq > this.confirmed) this.skipTo(page.headSeq);
      if (page.events.length < this.pageSize || this.confirmed >= page.headSeq) break;
    }
    this.settleUnconfirmed(serial);
    if (full) this.finishFullReload();
    if (this.wentBack) {
      // A claim the store acknowledged is missing: the log lost it. Read it all again (rate-limited).
      this.again = true;
      return;
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

  /** The last entry read is no longer in the log (or holds something else): the log went back. */
  private lostAnchor(page: RevocationLogPage): boolean {
    const anchor = this.anchor as RevocationEvent;
    if (page.headSeq < anchor.seq) return true;
    const first = page.events[0];
    if (first && first.seq === anchor.seq) return !sameEvent(first, anchor);
    // Missing: trimmed for age (then it no longer matters), or lost. An entry still live is never trimmed.
    return anchor.until >= this.opts.clock.nowMs();
  }

  /**
   * Begin re-reading the whole log (bounded by its retention), so reused sequence numbers are
   * applied rather than ignored; applied revocations are kept (the safe side). At most once per
   * minFullReloadIntervalMs: false when it must wait (the state stays not-fresh meanwhile).
   */
  private startFullReload(): boolean {
    const now = this.opts.clock.nowMs();
    const wait = this.lastFullReloadAt + this.minFullReloadIntervalMs - now;
    if (wait > 0) {
      if (!this.reloadTimer) {
        this.reloadTimer = setTimeout(() => {
          this.reloadTimer = undefined;
          void this.catchUp('deferred full reload');
        }, wait);
        this.reloadTimer.unref?.();
      }
      return false;
    }
    this.lastFullReloadAt = now;
    this.fullReloadCount++;
    this.applied = 0;
    this.confirmed = 0;
    this.anchor = undefined;
    this.ahead.clear();
    if (this.opts.onLostRevocations) this.logValues = new Map();
    // Claims are kept: the reload confirms (or not) every one of them.
    return true;
  }

  private finishFullReload(): void {
    this.wentBack = false;
    const values = this.logValues;
    this.logValues = undefined;
    if (!values || !this.opts.onLostRevocations) return;
    const lost: LostRevocation[] = [];
    for (const entry of this.opts.state.entries(this.opts.clock.nowMs())) {
      const k = key(entry.kind, entry.id);
      const r = this.raised.get(k);
      // Only what trusted sources said: never re-append what an unconfirmed live message claimed.
      const held = r ? r.trusted : entry;
      if (!held) continue;
      const inLog = values.get(k);
      if (inLog && inLog.until >= held.until && (inLog.gen ?? 0) >= (held.gen ?? 0)) continue;
      lost.push(entry.kind === 'sub' ? { kind: 'sub', id: entry.id, until: held.until, gen: held.gen ?? 0 } : { kind: entry.kind, id: entry.id, until: held.until });
    }
    if (lost.length > 0) {
      this.opts.logger.error({ lost: lost.length }, 'the revocation log lacks revocations this verifier holds: handing them over to be appended again');
      this.opts.onLostRevocations(lost);
    }
  }

  /** After a read: claims that arrived before it and that it did not confirm are settled as unconfirmed. */
  private settleUnconfirmed(serial: number): void {
    for (const [seq, claims] of this.unconfirmed) {
      // Claims the read confirmed are gone already; one that arrived while it ran waits for the next.
      const keep: Claim[] = [];
      for (const c of claims) {
        if (c.serial < serial) this.settle(c, false);
        else keep.push(c);
      }
      if (keep.length === 0) this.unconfirmed.delete(seq);
      else this.unconfirmed.set(seq, keep);
    }
    // applied counts only what is still backed: the log, or claims not settled yet.
    const before = this.applied;
    this.ahead.clear();
    this.applied = this.confirmed;
    for (const seq of this.unconfirmed.keys()) if (seq > this.applied) this.ahead.add(seq);
    while (this.ahead.delete(this.applied + 1)) this.applied++;
    if (this.applied > before) this.opts.onApplied?.(this.applied);
  }

  /** Advance over sequences the log no longer holds (trimmed as expired). */
  private skipTo(seq: number): void {
    if (seq > this.confirmed) {
      this.confirmed = seq;
      this.anchor = undefined;
    }
    if (seq <= this.applied) return;
    this.applied = seq;
    for (const s of [...this.ahead]) if (s <= seq) this.ahead.delete(s);
    while (this.ahead.delete(this.applied + 1)) this.applied++;
    this.opts.onApplied?.(this.applied);
  }
}
