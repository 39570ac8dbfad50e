import type { Confirmation } from '../shared/claims.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import type { RevocationSource } from '../verifier/revocation-source.js';

/**
 * Persistent state of the authority: refresh-token families (sessions), subject generations and
 * the revocation log + feed. Two implementations side by side: `MemoryTokenStore` (embedded,
 * single process) and `RedisTokenStore`. One contract suite (test/contract/token-store.contract.ts)
 * runs against both.
 *
 * All times are epoch milliseconds. Refresh tokens never reach the store: only an opaque key per
 * token (an HMAC under a secret the store never sees, computed by the authority; named `…Hash` here
 * for history). Refresh records carry a `proof` the store cannot make or check: rotation hands
 * every record it read to the caller's {@link RotateChecks} before anything is written, and writes
 * only if nothing changed since (see rotateRefresh).
 *
 * Failures: every method rejects with TokenAuthorityError(ERR_STORE_UNAVAILABLE) when the backend
 * cannot be reached or does not answer within its command timeout; never hangs.
 */
export interface TokenStore
  extends RevocationSource,
    SessionStorage,
    RefreshStorage,
    RevocationLog,
    RevocationRepair,
    FeedPublisher,
    AccessTtlRecord,
    ReceiptWriter,
    ReceiptReader,
    StoreHealth {
  close(): Promise<void>;
}

/*
 * The store by use (as ory/fosite declares storage per flow): each consumer names the narrowest
 * of these it needs, and TokenStore is all of them. TokenAuthority: SessionStorage, RefreshStorage
 * and RevocationLog; the verifier's sync: RevocationSource (readLog, subscribe); propagation waits
 * and /fleet: ReceiptReader; a sidecar: ReceiptWriter; the authority's timers: FeedPublisher and
 * AccessTtlRecord; the restore of lost revocations: RevocationRepair; health: StoreHealth.
 */

/** Sessions (refresh-token families): Issue creates them, Revoke by refresh token finds them. */
export interface SessionStorage {
  /**
   * Create a session (refresh-token family) with its first refresh token. Reads the subject's
   * current generation in the same atomic step and returns it: it goes into the access token's
   * `gen` claim and is recorded on the family.
   */
  createSession(input: CreateSessionInput): Promise<{ generation: number }>;

  /** The session a refresh token belongs to, if the token is known (live or spent). */
  findSessionByRefresh(refreshHash: string): Promise<SessionRecord | undefined>;

  /** A session by id, if it exists (revoked ones included, until they expire). */
  getSession(sessionId: string): Promise<SessionRecord | undefined>;
}

/** Refresh-token records: Refresh rotates them, introspection reads them. */
export interface RefreshStorage {
  /**
   * Spend a refresh token and record its successor in one atomic step. Of any number of concurrent
   * calls with the same token, exactly one gets `rotated`; see RotateResult for the rest.
   * Reuse of a spent token revokes the whole family (refresh tokens dead, a `sid` revocation
   * appended to the log and published) in that same atomic step.
   *
   * Check before write: the store reads the token's record and session, passes them to
   * `input.checks.check` (which may throw: then nothing is written), and applies the state machine
   * only to exactly what was checked (a concurrent change makes it read and check again). A live
   * token rotates only if `check` found its proof valid; a spent one is re-accepted in grace only
   * if its grace proof is valid. Spending a token replaces its live proof by a grace proof;
   * revoking the session (by sid or on reuse) deletes the proofs of its current token and of that
   * token's parent, so no later edit of `revoked`/`state` fields can make them rotate again.
   */
  rotateRefresh(input: RotateRefreshInput): Promise<RotateResult>;

  /**
   * What the store holds for a refresh-token key: its record, its session and the subject's
   * generation, exactly as rotateRefresh hands them to `checks.check` (read only). Undefined when
   * the key or its session is unknown.
   */
  loadRefresh(refreshHash: string): Promise<RefreshSnapshot | undefined>;
}

/** Recording revocations: effect, log entry and feed message in one atomic step. */
export interface RevocationLog {
  /**
   * Record a revocation: apply its effect (family dead / generation bumped), append it to the log
   * with the next sequence number, and publish it, all in one atomic step. Resolves only once the
   * revocation is durable (as durable as the backend is configured to be).
   * Idempotent for `jti` and `sid`: revoking the same one again while its entry is live returns the
   * original event without appending a new one. A `sub` revocation always bumps the generation.
   */
  revoke(input: RevokeInput): Promise<RevocationEvent>;
}

/** Appending again what a failover lost. */
export interface RevocationRepair {
  /**
   * Append again revocations the log lost (a failover to a replica that had not received them, as
   * a verifier that holds them found out: RevocationSyncOptions.onLostRevocations). For each one
   * still live, unless the store holds something that covers it already (a live jti/sid marker with
   * an until at least as late, a subject generation at least as high), apply its effect (session
   * marked revoked, generation raised) and append it with a fresh sequence, reason `restored`.
   * Returns the events appended. Idempotent: several replicas may hand over the same entries.
   */
  restoreRevocations(entries: readonly RestoreRevocationInput[]): Promise<RevocationEvent[]>;
}

/** The feed's heartbeat and the log's trimming. */
export interface FeedPublisher {
  /** Publish a heartbeat carrying the head sequence, and trim log entries older than the retention. */
  heartbeat(): Promise<{ headSeq: number; trimmed: number }>;
}

/** The shared high-water mark of access-token lifetimes, which sets the log's retention. */
export interface AccessTtlRecord {
  /**
   * Record that access tokens of up to `ttlMs` may be issued until now + `horizonMs`, and return the
   * longest TTL of any access token that may still be valid: a high-water mark shared by every
   * replica, and kept after the setting is lowered until the last token issued under the old one
   * has expired. The store's log retention becomes at least that plus `slackMs` (clock skew), so a
   * revocation entry outlives every token it covers even when TA_MAX_ACCESS_TTL is lowered.
   */
  recordAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): Promise<number>;
}

/** A verifier reporting what it applied (its Redis user may write its own receipt and nothing else). */
export interface ReceiptWriter {
  /**
   * Propagation receipts: a verifier instance reports the sequence it has applied. The receipt is
   * live for `ttlMs` after the report; it is then kept, stale, until `retainMs` after the report
   * (default and at least `ttlMs`: gone as soon as it is no longer live), so that a verifier which
   * stopped reporting shows in {@link ReceiptReader.listReceipts} as stale rather than vanishing.
   */
  reportApplied(instanceId: string, seq: number, ttlMs: number, retainMs?: number): Promise<void>;
}

/** The receipts of every verifier: propagation waits, /fleet and the gauges. */
export interface ReceiptReader {
  /** Every live receipt (reported within its ttl). */
  listApplied(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number }>>;
  /** Every receipt still held: the live ones, and the stale ones within their retention. */
  listReceipts(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number; live: boolean }>>;
}

export interface StoreHealth {
  /** Is the backend reachable right now? For health checks; never throws. */
  ping(): Promise<boolean>;
}

export interface SessionRecord {
  sessionId: string;
  subject: string;
  audience: string[];
  scopes: string[];
  /** Extra claims of the session's tokens (client_id included). */
  extra: Record<string, string>;
  /** What the issuing grant fixed for the session; absent when nothing (see SessionConstraints). */
  constraints?: SessionConstraints;
  /**
   * The authority's seal over the session's content (src/authority/session-records.ts); the store
   * keeps it and never checks it. Absent on sessions stored before the seal was a field of its own
   * (they carry it inside `extra`; session-records.ts reads both layouts).
   */
  seal?: string;
  /** The subject generation the session was created under. */
  generation: number;
  createdAt: number;
  /** The session can never be refreshed past this (absolute lifetime). */
  absoluteExpiresAt: number;
  /** The last time a refresh token of this session was issued or used. */
  lastUsedAt: number;
  revoked: boolean;
}

/**
 * What the issuing grant fixed for the whole session and every Refresh applies: not claims, never
 * put into a token as they are. The store keeps the object as it was given (plain JSON) and never
 * reads it; the session's seal covers it whole, so a member declared here is sealed with no other
 * change (a token binding is the next one).
 */
export interface SessionConstraints {
  /** The issuing client's access-TTL cap (ms): no token of the session lives longer. */
  maxAccessTtlMs?: number;
  /** The binding every token of the session carries (RFC 7800 `cnf`): a certificate or a DPoP key. */
  confirmation?: Confirmation;
}

/** What rotateRefresh read, handed to {@link RotateChecks.check} before any write. */
export interface RefreshSnapshot {
  /** The presented token's key. */
  key: string;
  sessionId: string;
  state: 'live' | 'spent';
  expiresAt: number;
  /** When this token was issued (0 if the record does not say). */
  issuedAt: number;
  successor?: string;
  spentAt?: number;
  /** Live: the binding proof written with it; spent: the grace proof; absent once revoked. */
  proof?: string;
  /** `generation` is the session's creation generation; `revoked` the effective state. */
  session: SessionRecord;
  /** The session's current (live) token key. */
  current: string;
  currentGeneration: number;
}

/** The authority's side of a rotation: checks and proofs the store can neither make nor verify. */
export interface RotateChecks {
  /**
   * Decide on what was read. Throw to refuse (nothing is written). `proven`: the record's proof
   * is valid for what it claims (a live token may be spent; a spent one may use the grace window).
   */
  check(snapshot: RefreshSnapshot): { proven: boolean };
  /** The proof stored with a new live record. */
  liveProof(key: string, sessionId: string, expiresAt: number, issuedAt: number): string;
  /** The proof stored on a spent record: its session, its successor and the time it was spent. */
  graceProof(key: string, sessionId: string, successor: string, spentAt: number): string;
}

export interface CreateSessionInput {
  sessionId: string;
  subject: string;
  audience: string[];
  scopes: string[];
  extra: Record<string, string>;
  /** Kept with the session and returned as given (plain JSON); omitted or `{}` when there are none. */
  constraints?: SessionConstraints;
  /** The authority's seal over the session, kept and returned as given. */
  seal?: string;
  refreshHash: string;
  /** RotateChecks.liveProof(refreshHash, sessionId, refreshExpiresAt, now), made by the authority. */
  refreshProof: string;
  refreshExpiresAt: number;
  absoluteExpiresAt: number;
  now: number;
}

export interface RotateRefreshInput {
  presentedHash: string;
  successorHash: string;
  /** Expiry of the successor refresh token (already capped at the session's absolute expiry). */
  successorExpiresAt: number;
  now: number;
  /** Re-presenting the immediate parent within this window is not reuse (0 = off). */
  graceMs: number;
  /** The session dies if unused for this long (0 = no idle timeout). */
  idleTimeoutMs: number;
  /** For a reuse-triggered revocation: when its `sid` log entry may be dropped. */
  revocationUntil: number;
  checks: RotateChecks;
}

export type RotateResult =
  /** The token was live: spent now, successor recorded. `generation` is the subject's current one. */
  | { outcome: 'rotated'; session: SessionRecord; generation: number; viaGrace: boolean }
  /** No such token (never issued, superseded, or expired and gone), or its proof is not valid. */
  | { outcome: 'invalid'; unproven?: boolean }
  /** The token or its session (idle or absolute) expired. */
  | { outcome: 'expired'; session: SessionRecord }
  /** The session was revoked earlier, or its subject's generation moved past it. */
  | { outcome: 'revoked'; session: SessionRecord }
  /** A spent token was presented: the family is now revoked; `event` is the revocation appended. */
  | { outcome: 'reused'; session: SessionRecord; event: RevocationEvent };

/** A revocation to append again: what a verifier held (see TokenStore.restoreRevocations). */
export interface RestoreRevocationInput {
  kind: 'jti' | 'sid' | 'sub';
  id: string;
  until: number;
  /** For kind 'sub': the minimum valid generation. */
  gen?: number;
}

/** The reason recorded on re-appended entries. */
export const RESTORED_REVOCATION_REASON = 'restored';

export type RevokeInput =
  | { kind: 'jti'; id: string; until: number; reason?: string }
  | { kind: 'sid'; id: string; until: number; reason?: string }
  | { kind: 'sub'; id: string; until: number; reason?: string };
