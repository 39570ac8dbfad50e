import { MAX_REVOCATION_ID_LENGTH, MAX_REVOCATION_REASON_LENGTH } from '../shared/revocation-event.js';
import { ErrorCodes, TokenAuthorityError, invalidArgument } from '../shared/errors.js';
import type { CreateSessionInput, RestoreRevocationInput, RevokeInput, RotateRefreshInput } from './token-store.js';

/**
 * Input checks shared by both stores, so a bad call fails the same way whichever store is
 * configured. Messages name the field, never its value (values may be token hashes).
 */

/** The reason recorded on the `sid` revocation that refresh-token reuse triggers. */
export const REUSE_REVOCATION_REASON = 'refresh-token-reuse';

/** Upper bound for one readLog page: keeps one call's work (and reply size) bounded. */
export const MAX_LOG_PAGE = 10_000;

function epochMs(name: string, value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw invalidArgument(`${name} must be a non-negative integer (epoch ms)`);
  }
}

function durationMs(name: string, value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw invalidArgument(`${name} must be a non-negative integer (ms)`);
  }
}

function nonEmpty(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalidArgument(`${name} must be a non-empty string`);
  }
}

export function checkCreateSession(input: CreateSessionInput): void {
  nonEmpty('sessionId', input.sessionId);
  nonEmpty('subject', input.subject);
  nonEmpty('refreshHash', input.refreshHash);
  nonEmpty('refreshProof', input.refreshProof);
  if (!Array.isArray(input.audience) || !Array.isArray(input.scopes)) {
    throw invalidArgument('audience and scopes must be arrays');
  }
  if (typeof input.extra !== 'object' || input.extra === null) throw invalidArgument('extra must be an object');
  if (input.constraints !== undefined && (typeof input.constraints !== 'object' || input.constraints === null || Array.isArray(input.constraints))) {
    throw invalidArgument('constraints must be an object');
  }
  if (input.seal !== undefined) nonEmpty('seal', input.seal);
  epochMs('refreshExpiresAt', input.refreshExpiresAt);
  epochMs('absoluteExpiresAt', input.absoluteExpiresAt);
  epochMs('now', input.now);
}

export function checkRotate(input: RotateRefreshInput): void {
  nonEmpty('presentedHash', input.presentedHash);
  nonEmpty('successorHash', input.successorHash);
  if (input.presentedHash === input.successorHash) throw invalidArgument('successorHash must differ from presentedHash');
  epochMs('successorExpiresAt', input.successorExpiresAt);
  epochMs('now', input.now);
  durationMs('graceMs', input.graceMs);
  durationMs('idleTimeoutMs', input.idleTimeoutMs);
  epochMs('revocationUntil', input.revocationUntil);
  if (typeof input.checks?.check !== 'function') throw invalidArgument('checks must be given');
}

export function checkRevoke(input: RevokeInput): void {
  if (input.kind !== 'jti' && input.kind !== 'sid' && input.kind !== 'sub') {
    throw invalidArgument('kind must be jti, sid or sub');
  }
  nonEmpty('id', input.id);
  // Verifiers refuse longer ones on the feed and in the log (revocation-event.ts).
  if (input.id.length > MAX_REVOCATION_ID_LENGTH) throw invalidArgument(`id must be at most ${MAX_REVOCATION_ID_LENGTH} characters`);
  epochMs('until', input.until);
  if (input.reason !== undefined && typeof input.reason !== 'string') throw invalidArgument('reason must be a string');
  if (input.reason !== undefined && input.reason.length > MAX_REVOCATION_REASON_LENGTH) {
    throw invalidArgument(`reason must be at most ${MAX_REVOCATION_REASON_LENGTH} characters`);
  }
}

/** At most this many entries per restoreRevocations call (one script run stays short). */
export const MAX_RESTORE_BATCH = 500;

export function checkRestore(entries: readonly RestoreRevocationInput[]): void {
  if (!Array.isArray(entries) || entries.length > MAX_RESTORE_BATCH) throw invalidArgument(`entries must be an array of at most ${MAX_RESTORE_BATCH}`);
  for (const e of entries) {
    checkRevoke({ kind: e.kind, id: e.id, until: e.until });
    if (e.kind === 'sub' && (!Number.isSafeInteger(e.gen) || (e.gen as number) < 1)) throw invalidArgument('gen must be a positive integer for kind sub');
  }
}

export function checkAccessTtl(input: { ttlMs: number; horizonMs: number; slackMs: number }): void {
  if (!Number.isSafeInteger(input.ttlMs) || input.ttlMs < 1) throw invalidArgument('ttlMs must be a positive integer');
  if (!Number.isSafeInteger(input.horizonMs) || input.horizonMs < 0) throw invalidArgument('horizonMs must be a non-negative integer');
  if (!Number.isSafeInteger(input.slackMs) || input.slackMs < 0) throw invalidArgument('slackMs must be a non-negative integer');
}

export function checkReadLog(afterSeq: number, limit: number): void {
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw invalidArgument('afterSeq must be a non-negative integer');
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LOG_PAGE) {
    throw invalidArgument(`limit must be an integer in 1..${MAX_LOG_PAGE}`);
  }
}

export function checkReceipt(instanceId: string, seq: number, ttlMs: number, retainMs?: number): void {
  nonEmpty('instanceId', instanceId);
  if (!Number.isSafeInteger(seq) || seq < 0) throw invalidArgument('seq must be a non-negative integer');
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw invalidArgument('ttlMs must be a positive integer');
  if (retainMs !== undefined && (!Number.isSafeInteger(retainMs) || retainMs < 1)) throw invalidArgument('retainMs must be a positive integer');
}

/** Validates a store option eagerly; the message names the option. */
export function positiveIntOption(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, `${name} must be a positive integer (ms), got ${String(value)}`);
  }
  return value as number;
}

/**
 * The constraints a store keeps for a session: a JSON copy (both stores hand back the same plain
 * object), or undefined when there are none, so a session without any reads back as it did before
 * constraints existed.
 */
export function storedConstraints(c: CreateSessionInput['constraints']): string | undefined {
  if (c === undefined) return undefined;
  const json = JSON.stringify(c);
  return json === '{}' ? undefined : json;
}

/** Thrown when a freshly generated session id or refresh hash already exists: a caller bug. */
export function conflictError(what: string): TokenAuthorityError {
  return new TokenAuthorityError(ErrorCodes.INTERNAL, `${what} already exists in the token store`);
}
