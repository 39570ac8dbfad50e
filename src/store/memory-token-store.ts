import { systemClock, type Clock } from '../shared/clock.js';
import { storeUnavailable } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { FeedMessage, HeartbeatEvent, RevocationEvent } from '../shared/revocation-event.js';
import type { FeedListener, FeedSubscription, RevocationLogPage } from '../verifier/revocation-source.js';
import {
  REUSE_REVOCATION_REASON,
  checkCreateSession,
  checkReadLog,
  checkAccessTtl,
  checkReceipt,
  checkRestore,
  checkRevoke,
  checkRotate,
  conflictError,
  positiveIntOption,
  storedConstraints,
} from './store-input.js';
import { RESTORED_REVOCATION_REASON } from './token-store.js';
import type {
  CreateSessionInput,
  RefreshSnapshot,
  RestoreRevocationInput,
  RevokeInput,
  RotateRefreshInput,
  RotateResult,
  SessionConstraints,
  SessionRecord,
  TokenStore,
} from './token-store.js';

/** Options of {@link MemoryTokenStore}. */
export interface MemoryTokenStoreOptions {
  /** How long log entries are kept, by their `at`: the maximum access-token TTL plus clock skew. */
  retentionMs: number;
  /** Store time: log `at`, marker and receipt expiry. Default: the system clock. */
  clock?: Clock;
  logger?: Logger;
}

interface RefreshRecord {
  sid: string;
  state: 'live' | 'spent';
  expiresAt: number;
  successor?: string;
  spentAt?: number;
  issuedAt: number;
  /** Live: binding proof; spent: grace proof; deleted when the session is revoked. */
  proof?: string;
  /** Dropped after this (the family's absolute expiry), like PEXPIREAT in Redis. */
  dropAt: number;
}

interface Family {
  sid: string;
  subject: string;
  audience: string[];
  scopes: string[];
  extra: Record<string, string>;
  /** JSON, as Redis keeps it (absent: none). */
  constraints?: string;
  seal?: string;
  generation: number;
  createdAt: number;
  absoluteExpiresAt: number;
  lastUsedAt: number;
  revoked: boolean;
  /** Hash of the one live refresh token. */
  current: string;
  /** Hash of the current token's parent (its grace proof dies with a revocation too). */
  parent?: string;
}

interface Receipt {
  seq: number;
  reportedAt: number;
  /** Live until then; stale after. */
  liveUntil: number;
  /** Dropped after then (the retention). */
  expiresAt: number;
}

interface Subscriber {
  listener: FeedListener;
  active: boolean;
}

/** Oldest log entries examined per append: trimming work per call stays bounded (as in Redis). */
const TRIM_PER_APPEND = 16;

/**
 * The embedded, single-process TokenStore: the default when no Redis is configured, and the
 * reference the Redis store is checked against by the shared contract suite. Same semantics as
 * RedisTokenStore, including the live feed (delivered asynchronously, in order).
 *
 * Every method does all of its work synchronously before it resolves, so each call is atomic with
 * respect to every other call, exactly as a Lua script is in Redis.
 *
 * Memory stays bounded: expired refresh tokens and sessions are dropped lazily when touched and in
 * bulk on heartbeat; log entries older than the retention are trimmed on every append (a few at a
 * time) and on heartbeat; idempotency markers and receipts go when they expire.
 */
export class MemoryTokenStore implements TokenStore {
  private readonly clock: Clock;
  private retentionMs: number;
  private readonly configuredRetentionMs: number;
  /** Access TTL → until when tokens of that TTL may be valid (the shared high-water mark). */
  private readonly accessTtls = new Map<number, number>();
  private readonly logger: Logger;
  private readonly refresh = new Map<string, RefreshRecord>();
  private readonly families = new Map<string, Family>();
  /** Never expire: see redis-schema.ts for why. Only subjects ever bumped have an entry. */
  private readonly generations = new Map<string, number>();
  /** subject → its sessions since its last `sub` revoke (whose proofs that revoke deletes). */
  private readonly subjectSessions = new Map<string, Set<string>>();
  /** `jti:<id>` / `sid:<id>` → the original event; live while now ≤ event.until. */
  private readonly markers = new Map<string, RevocationEvent>();
  private readonly log: RevocationEvent[] = [];
  private readonly receipts = new Map<string, Receipt>();
  private readonly subscribers = new Set<Subscriber>();
  private seq = 0;
  private closed = false;

  constructor(options: MemoryTokenStoreOptions) {
    this.retentionMs = positiveIntOption('retentionMs', options.retentionMs);
    this.configuredRetentionMs = this.retentionMs;
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ component: 'memory-token-store' });
  }

  async createSession(input: CreateSessionInput): Promise<{ generation: number }> {
    this.assertOpen();
    checkCreateSession(input);
    const now = this.clock.nowMs();
    if (this.liveFamily(input.sessionId, now)) throw conflictError('session id');
    if (this.liveRecord(input.refreshHash, now)) throw conflictError('refresh token hash');
    const generation = this.generations.get(input.subject) ?? 0;
    const constraints = storedConstraints(input.constraints);
    this.families.set(input.sessionId, {
      sid: input.sessionId,
      subject: input.subject,
      audience: [...input.audience],
      scopes: [...input.scopes],
      extra: { ...input.extra },
      ...(constraints !== undefined ? { constraints } : {}),
      ...(input.seal !== undefined ? { seal: input.seal } : {}),
      generation,
      createdAt: input.now,
      absoluteExpiresAt: input.absoluteExpiresAt,
      lastUsedAt: input.now,
      revoked: false,
      current: input.refreshHash,
    });
    let sids = this.subjectSessions.get(input.subject);
    if (!sids) this.subjectSessions.set(input.subject, (sids = new Set()));
    sids.add(input.sessionId);
    this.refresh.set(input.refreshHash, {
      sid: input.sessionId,
      state: 'live',
      expiresAt: input.refreshExpiresAt,
      issuedAt: input.now,
      proof: input.refreshProof,
      dropAt: input.absoluteExpiresAt,
    });
    return { generation };
  }

  async rotateRefresh(input: RotateRefreshInput): Promise<RotateResult> {
    this.assertOpen();
    checkRotate(input);
    const storeNow = this.clock.nowMs();
    const now = input.now;
    const record = this.liveRecord(input.presentedHash, storeNow);
    if (!record) return { outcome: 'invalid' };
    const family = this.liveFamily(record.sid, storeNow);
    if (!family) return { outcome: 'invalid' };
    const generation = this.generations.get(family.subject) ?? 0;
    // Decide only on what the authority checked (may throw: then nothing changes).
    const { proven } = input.checks.check(this.snapshot(input.presentedHash, record, family, generation));

    if (family.revoked || family.generation < generation) {
      return { outcome: 'revoked', session: this.toSession(family, generation) };
    }
    // A live token's last use is its own (proven) issue time; a spent one counts the session's.
    const lastUse = record.state === 'live' ? record.issuedAt : family.lastUsedAt;
    if (
      now >= record.expiresAt ||
      now >= family.absoluteExpiresAt ||
      (input.idleTimeoutMs > 0 && now - lastUse >= input.idleTimeoutMs)
    ) {
      return { outcome: 'expired', session: this.toSession(family, generation) };
    }

    if (record.state === 'live') {
      // A live record that is not the family's current token cannot arise (superseded successors
      // are deleted); refuse it without punishing the family, since it proves no theft.
      if (!proven) return { outcome: 'invalid', unproven: true };
      if (family.current !== input.presentedHash) return { outcome: 'invalid' };
      if (this.liveRecord(input.successorHash, storeNow)) throw conflictError('refresh token hash');
      record.state = 'spent';
      record.spentAt = now;
      record.successor = input.successorHash;
      record.proof = input.checks.graceProof(input.presentedHash, record.sid, input.successorHash, now);
      family.parent = input.presentedHash;
      this.addSuccessor(family, input, now);
      return { outcome: 'rotated', session: this.toSession(family, generation), generation, viaGrace: false };
    }

    // Grace: a client that lost the response to its refresh (network drop, crash) may present the
    // parent again for a short while, as long as the successor it never received is unused. The
    // trade-off: an attacker holding the parent within the window also gets a successor (and
    // thereby kills the legitimate one's chain); without grace the same race would revoke the
    // family instead. Keep graceMs short (seconds).
    if (
      input.graceMs > 0 &&
      proven &&
      record.spentAt !== undefined &&
      now - record.spentAt <= input.graceMs &&
      record.successor === family.current
    ) {
      if (this.liveRecord(input.successorHash, storeNow)) throw conflictError('refresh token hash');
      // The superseded successor becomes unknown (`invalid`), not reuse: it was never delivered.
      this.refresh.delete(record.successor);
      record.successor = input.successorHash;
      record.proof = input.checks.graceProof(input.presentedHash, record.sid, input.successorHash, record.spentAt);
      family.parent = input.presentedHash;
      this.addSuccessor(family, input, now);
      return { outcome: 'rotated', session: this.toSession(family, generation), generation, viaGrace: true };
    }

    // Reuse of a spent token: someone holds a copy. Kill the family and tell every verifier.
    delete record.proof;
    family.revoked = true;
    const event = this.revokeSessionNow(family.sid, input.revocationUntil, REUSE_REVOCATION_REASON, storeNow);
    return { outcome: 'reused', session: this.toSession(family, generation), event };
  }

  async loadRefresh(refreshHash: string): Promise<RefreshSnapshot | undefined> {
    this.assertOpen();
    const now = this.clock.nowMs();
    const record = this.liveRecord(refreshHash, now);
    const family = record ? this.liveFamily(record.sid, now) : undefined;
    if (!record || !family) return undefined;
    return this.snapshot(refreshHash, record, family, this.generations.get(family.subject) ?? 0);
  }

  private snapshot(key: string, record: RefreshRecord, family: Family, generation: number): RefreshSnapshot {
    return {
      key,
      sessionId: record.sid,
      state: record.state,
      expiresAt: record.expiresAt,
      issuedAt: record.issuedAt,
      ...(record.successor !== undefined ? { successor: record.successor } : {}),
      ...(record.spentAt !== undefined ? { spentAt: record.spentAt } : {}),
      ...(record.proof !== undefined ? { proof: record.proof } : {}),
      session: this.toSession(family, generation),
      current: family.current,
      currentGeneration: generation,
    };
  }

  async findSessionByRefresh(refreshHash: string): Promise<SessionRecord | undefined> {
    this.assertOpen();
    const now = this.clock.nowMs();
    const record = this.liveRecord(refreshHash, now);
    return record ? this.sessionView(record.sid, now) : undefined;
  }

  async getSession(sessionId: string): Promise<SessionRecord | undefined> {
    this.assertOpen();
    return this.sessionView(sessionId, this.clock.nowMs());
  }

  async revoke(input: RevokeInput): Promise<RevocationEvent> {
    this.assertOpen();
    checkRevoke(input);
    const now = this.clock.nowMs();
    switch (input.kind) {
      case 'jti':
        return this.idempotentAppend('jti', input.id, input.until, input.reason, now);
      case 'sid':
        return this.revokeSessionNow(input.id, input.until, input.reason, now);
      case 'sub': {
        this.dropSubjectProofs(input.id, now);
        const gen = (this.generations.get(input.id) ?? 0) + 1;
        this.generations.set(input.id, gen);
        return this.append({ kind: 'sub', id: input.id, gen, until: input.until, reason: input.reason }, now);
      }
    }
  }

  async restoreRevocations(entries: readonly RestoreRevocationInput[]): Promise<RevocationEvent[]> {
    this.assertOpen();
    checkRestore(entries);
    const now = this.clock.nowMs();
    const out: RevocationEvent[] = [];
    for (const e of entries) {
      if (e.until <= now) continue;
      if (e.kind === 'sub') {
        const gen = e.gen as number;
        if ((this.generations.get(e.id) ?? 0) >= gen) continue;
        this.dropSubjectProofs(e.id, now);
        this.generations.set(e.id, gen);
        out.push(this.append({ kind: 'sub', id: e.id, gen, until: e.until, reason: RESTORED_REVOCATION_REASON }, now));
        continue;
      }
      const markerKey = `${e.kind}:${e.id}`;
      const existing = this.liveMarker(markerKey, now);
      if (existing && existing.until >= e.until) continue;
      if (e.kind === 'sid') this.markSessionRevoked(e.id, now);
      const event = this.append({ kind: e.kind, id: e.id, until: e.until, reason: RESTORED_REVOCATION_REASON }, now);
      this.markers.set(markerKey, event);
      out.push(event);
    }
    return out;
  }

  async readLog(afterSeq: number, limit: number): Promise<RevocationLogPage> {
    this.assertOpen();
    checkReadLog(afterSeq, limit);
    const start = this.firstIndexAfter(afterSeq);
    return { events: this.log.slice(start, start + limit), headSeq: this.seq };
  }

  async subscribe(listener: FeedListener): Promise<FeedSubscription> {
    this.assertOpen();
    const subscriber: Subscriber = { listener, active: true };
    this.subscribers.add(subscriber);
    this.deliver(subscriber, (l) => l.onReady());
    return {
      close: async () => {
        subscriber.active = false;
        this.subscribers.delete(subscriber);
      },
    };
  }

  async heartbeat(): Promise<{ headSeq: number; trimmed: number }> {
    this.assertOpen();
    const now = this.clock.nowMs();
    const trimmed = this.trim(now, Number.POSITIVE_INFINITY);
    this.sweep(now);
    const hb: HeartbeatEvent = { v: 1, type: 'hb', seq: this.seq, at: now };
    this.publish(Object.freeze(hb));
    return { headSeq: this.seq, trimmed };
  }

  async recordAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): Promise<number> {
    this.assertOpen();
    checkAccessTtl(input);
    const now = this.clock.nowMs();
    const validUntil = now + input.horizonMs + input.ttlMs;
    if ((this.accessTtls.get(input.ttlMs) ?? 0) < validUntil) this.accessTtls.set(input.ttlMs, validUntil);
    let best = 0;
    for (const [ttl, until] of this.accessTtls) {
      if (until < now) this.accessTtls.delete(ttl);
      else if (ttl > best) best = ttl;
    }
    this.retentionMs = Math.max(this.configuredRetentionMs, best + input.slackMs);
    return best;
  }

  async reportApplied(instanceId: string, seq: number, ttlMs: number, retainMs?: number): Promise<void> {
    this.assertOpen();
    checkReceipt(instanceId, seq, ttlMs, retainMs);
    const now = this.clock.nowMs();
    this.receipts.set(instanceId, { seq, reportedAt: now, liveUntil: now + ttlMs, expiresAt: now + Math.max(ttlMs, retainMs ?? ttlMs) });
  }

  async listApplied(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number }>> {
    return (await this.listReceipts()).filter((r) => r.live).map(({ instanceId, seq, reportedAt }) => ({ instanceId, seq, reportedAt }));
  }

  async listReceipts(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number; live: boolean }>> {
    this.assertOpen();
    const now = this.clock.nowMs();
    const out: Array<{ instanceId: string; seq: number; reportedAt: number; live: boolean }> = [];
    for (const [instanceId, r] of this.receipts) {
      if (now > r.expiresAt) this.receipts.delete(instanceId);
      else out.push({ instanceId, seq: r.seq, reportedAt: r.reportedAt, live: now <= r.liveUntil });
    }
    return out;
  }

  async ping(): Promise<boolean> {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.subscribers) s.active = false;
    this.subscribers.clear();
  }

  private assertOpen(): void {
    if (this.closed) throw storeUnavailable('the token store is closed');
  }

  private liveRecord(hash: string, now: number): RefreshRecord | undefined {
    const r = this.refresh.get(hash);
    if (r && now > r.dropAt) {
      this.refresh.delete(hash);
      return undefined;
    }
    return r;
  }

  private liveFamily(sid: string, now: number): Family | undefined {
    const f = this.families.get(sid);
    if (f && now > f.absoluteExpiresAt) {
      this.families.delete(sid);
      return undefined;
    }
    return f;
  }

  private liveMarker(key: string, now: number): RevocationEvent | undefined {
    const m = this.markers.get(key);
    if (m && now > m.until) {
      this.markers.delete(key);
      return undefined;
    }
    return m;
  }

  private addSuccessor(family: Family, input: RotateRefreshInput, now: number): void {
    this.refresh.set(input.successorHash, {
      sid: family.sid,
      state: 'live',
      expiresAt: input.successorExpiresAt,
      issuedAt: now,
      proof: input.checks.liveProof(input.successorHash, family.sid, input.successorExpiresAt, now),
      dropAt: family.absoluteExpiresAt,
    });
    family.current = input.successorHash;
    family.lastUsedAt = now;
  }

  private revokeSessionNow(sid: string, until: number, reason: string | undefined, now: number): RevocationEvent {
    this.markSessionRevoked(sid, now);
    return this.idempotentAppend('sid', sid, until, reason, now);
  }

  /** The effect of a `sid` revocation (Revoke, logout, reuse, restore): revoked, proofs gone. */
  private markSessionRevoked(sid: string, now: number): void {
    const family = this.liveFamily(sid, now);
    if (family) {
      family.revoked = true;
      this.dropProofs(family);
    }
  }

  /** Part of a `sub` revocation's effect: the proofs of every session of the subject go. */
  private dropSubjectProofs(subject: string, now: number): void {
    for (const sid of this.subjectSessions.get(subject) ?? []) {
      const family = this.liveFamily(sid, now);
      if (family) this.dropProofs(family);
    }
    this.subjectSessions.delete(subject);
  }

  /** Liveness evidence dies with a session: clearing `revoked` again cannot revive it. */
  private dropProofs(family: Family): void {
    for (const h of [family.current, family.parent]) if (h !== undefined) delete this.refresh.get(h)?.proof;
  }

  private idempotentAppend(
    kind: 'jti' | 'sid',
    id: string,
    until: number,
    reason: string | undefined,
    now: number,
  ): RevocationEvent {
    const markerKey = `${kind}:${id}`;
    const existing = this.liveMarker(markerKey, now);
    if (existing) return existing;
    const event = this.append({ kind, id, until, reason }, now);
    if (until > now) this.markers.set(markerKey, event);
    return event;
  }

  private append(
    target: { kind: RevocationEvent['kind']; id: string; gen?: number; until: number; reason: string | undefined },
    now: number,
  ): RevocationEvent {
    this.seq += 1;
    // Same key order as the Redis store's JSON, so both produce byte-identical wire messages.
    const event: RevocationEvent = {
      v: 1,
      type: 'rev',
      seq: this.seq,
      kind: target.kind,
      id: target.id,
      ...(target.gen !== undefined ? { gen: target.gen } : {}),
      until: target.until,
      at: now,
      ...(target.reason ? { reason: target.reason } : {}),
    };
    Object.freeze(event);
    this.log.push(event);
    this.publish(event);
    this.trim(now, TRIM_PER_APPEND);
    return event;
  }

  /** Drops log entries whose `at` is older than the retention, examining at most `maxScan`. */
  private trim(now: number, maxScan: number): number {
    const cutoff = now - this.retentionMs;
    let n = 0;
    while (n < this.log.length && n < maxScan && this.log[n]!.at < cutoff) n += 1;
    if (n > 0) this.log.splice(0, n);
    return n;
  }

  private sweep(now: number): void {
    for (const [hash, r] of this.refresh) if (now > r.dropAt) this.refresh.delete(hash);
    for (const [sid, f] of this.families) if (now > f.absoluteExpiresAt) this.families.delete(sid);
    for (const [sub, sids] of this.subjectSessions) {
      for (const sid of sids) if (!this.families.has(sid)) sids.delete(sid);
      if (sids.size === 0) this.subjectSessions.delete(sub);
    }
    for (const [key, m] of this.markers) if (now > m.until) this.markers.delete(key);
    for (const [id, r] of this.receipts) if (now > r.expiresAt) this.receipts.delete(id);
  }

  private firstIndexAfter(afterSeq: number): number {
    let lo = 0;
    let hi = this.log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.log[mid]!.seq <= afterSeq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private publish(message: FeedMessage): void {
    for (const s of this.subscribers) this.deliver(s, (l) => l.onMessage(message));
  }

  /** Microtasks run FIFO, so every listener sees messages in publish order, never re-entrantly. */
  private deliver(subscriber: Subscriber, call: (listener: FeedListener) => void): void {
    queueMicrotask(() => {
      if (!subscriber.active) return;
      try {
        call(subscriber.listener);
      } catch (err) {
        this.logger.error({ err }, 'revocation feed listener threw');
      }
    });
  }

  private sessionView(sid: string, now: number): SessionRecord | undefined {
    const family = this.liveFamily(sid, now);
    return family ? this.toSession(family, this.generations.get(family.subject) ?? 0) : undefined;
  }

  /** `revoked` is the effective state: revoked outright, or its subject's generation moved past it. */
  private toSession(f: Family, currentGeneration: number): SessionRecord {
    return {
      sessionId: f.sid,
      subject: f.subject,
      audience: [...f.audience],
      scopes: [...f.scopes],
      extra: { ...f.extra },
      ...(f.constraints !== undefined ? { constraints: JSON.parse(f.constraints) as SessionConstraints } : {}),
      ...(f.seal !== undefined ? { seal: f.seal } : {}),
      generation: f.generation,
      createdAt: f.createdAt,
      absoluteExpiresAt: f.absoluteExpiresAt,
      lastUsedAt: f.lastUsedAt,
      revoked: f.revoked || f.generation < currentGeneration,
    };
  }
}
