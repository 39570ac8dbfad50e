import type { RevocationEvent } from '../shared/revocation-event.js';
import type { RevocationSource } from '../verifier/revocation-source.js';

/**
 * Persistent state of the authority: refresh-token families (sessions), subject generations and
 * the revocation log + feed. Two implementations side by side: `MemoryTokenStore` (embedded,
 * single process) and `RedisTokenStore`. One contract suite (test/contract/token-store.contract.ts)
 * runs against both.
 *
 * All times are epoch milliseconds. Refresh tokens never reach the store: only their SHA-256 hash
 * (base64url), computed by the authority.
 *
 * Failures: every method rejects with TokenAuthorityError(ERR_STORE_UNAVAILABLE) when the backend
 * cannot be reached or does not answer within its command timeout; never hangs.
 */
export interface TokenStore extends RevocationSource {
  /**
   * Create a session (refresh-token family) with its first refresh token. Reads the subject's
   * current generation in the same atomic step and returns it: it goes into the access token's
   * `gen` claim and is recorded on the family.
   */
  createSession(input: CreateSessionInput): Promise<{ generation: number }>;

  /**
   * Spend a refresh token and record its successor in one atomic step. Of any number of concurrent
   * calls with the same token, exactly one gets `rotated`; see RotateResult for the rest.
   * Reuse of a spent token revokes the whole family (refresh tokens dead, a `sid` revocation
   * appended to the log and published) in that same atomic step.
   */
  rotateRefresh(input: RotateRefreshInput): Promise<RotateResult>;

  /** The session a refresh token belongs to, if the token is known (live or spent). */
  findSessionByRefresh(refreshHash: string): Promise<SessionRecord | undefined>;

  /** A session by id, if it exists (revoked ones included, until they expire). */
  getSession(sessionId: string): Promise<SessionRecord | undefined>;

  /**
   * Record a revocation: apply its effect (family dead / generation bumped), append it to the log
   * with the next sequence number, and publish it, all in one atomic step. Resolves only once the
   * revocation is durable (as durable as the backend is configured to be).
   * Idempotent for `jti` and `sid`: revoking the same one again while its entry is live returns the
   * original event without appending a new one. A `sub` revocation always bumps the generation.
   */
  revoke(input: RevokeInput): Promise<RevocationEvent>;

  /**
   * Append again revocations the log lost (a failover to a replica that had not received them, as
   * a verifier that holds them found out: RevocationSyncOptions.onLostRevocations). For each one
   * still live, unless the store holds something that covers it already (a live jti/sid marker with
   * an until at least as late, a subject generation at least as high), apply its effect (session
   * marked revoked, generation raised) and append it with a fresh sequence, reason `restored`.
   * Returns the events appended. Idempotent: several replicas may hand over the same entries.
   */
  restoreRevocations(entries: readonly RestoreRevocationInput[]): Promise<RevocationEvent[]>;

  /**
   * Record that access tokens of up to `ttlMs` may be issued until now + `horizonMs`, and return the
   * longest TTL of any access token that may still be valid: a high-water mark shared by every
   * replica, and kept after the setting is lowered until the last token issued under the old one
   * has expired. The store's log retention becomes at least that plus `slackMs` (clock skew), so a
   * revocation entry outlives every token it covers even when TA_MAX_ACCESS_TTL is lowered.
   */
  recordAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): Promise<number>;

  /** Publish a heartbeat carrying the head sequence, and trim log entries older than the retention. */
  heartbeat(): Promise<{ headSeq: number; trimmed: number }>;

  /** Propagation receipts: a verifier instance reports the sequence it has applied. */
  reportApplied(instanceId: string, seq: number, ttlMs: number): Promise<void>;
  /** Every live receipt. */
  listApplied(): Promise<Array<{ instanceId: string; seq: number; reportedAt: number }>>;

  /** Is the backend reachable right now? For health checks; never throws. */
  ping(): Promise<boolean>;

  close(): Promise<void>;
}

export interface SessionRecord {
  sessionId: string;
  subject: string;
  audience: string[];
  scopes: string[];
  extra: Record<string, string>;
  /** The subject generation the session was created under. */
  generation: number;
  createdAt: number;
  /** The session can never be refreshed past this (absolute lifetime). */
  absoluteExpiresAt: number;
  /** The last time a refresh token of this session was issued or used. */
  lastUsedAt: number;
  revoked: boolean;
}

export interface CreateSessionInput {
  sessionId: string;
  subject: string;
  audience: string[];
  scopes: string[];
  extra: Record<string, string>;
  refreshHash: string;
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
}

export type RotateResult =
  /** The token was live: spent now, successor recorded. `generation` is the subject's current one. */
  | { outcome: 'rotated'; session: SessionRecord; generation: number; viaGrace: boolean }
  /** No such token (never issued, superseded, or expired and gone). */
  | { outcome: 'invalid' }
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
