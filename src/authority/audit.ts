/**
 * What an authority operation tells its call's access line. TokenAuthority returns these with
 * its result, or attaches them to the error it throws, instead of writing into a transport's log
 * bag; the adapters (authority-service.ts for gRPC, oauth-endpoints.ts for HTTP) put them on the
 * line. Only ids and flags: no field can hold a token (tokens are never logged).
 */
export interface AuditFields {
  /** The token's or session's subject, or the subject revoked. */
  readonly sub?: string;
  /** The session. */
  readonly sid?: string;
  /** The access token's id (issued, or revoked). */
  readonly jti?: string;
  /** The key that signed the access token. */
  readonly kid?: string;
  /** The revocation's sequence on the feed. */
  readonly seq?: number;
  /** Refresh accepted the spent parent again within the grace window. */
  readonly grace?: true;
  /** Refresh met a spent token again: the session is now revoked. */
  readonly reuse?: true;
  /** The kind of binding the token carries (its `cnf`): `x5t#S256` or `jkt`. */
  readonly cnf?: 'x5t#S256' | 'jkt';
}

/** A result with what its access line says about it. */
export interface Audited<T> {
  readonly result: T;
  readonly audit: AuditFields;
}

const refusals = new WeakMap<object, AuditFields>();

/** `err`, carrying what the access line of the refused call says (read back with {@link auditOf}). */
export function withAudit<E extends Error>(err: E, audit: AuditFields): E {
  refusals.set(err, audit);
  return err;
}

/** The audit fields a refusal carries, if it carries any. */
export function auditOf(err: unknown): AuditFields | undefined {
  return typeof err === 'object' && err !== null ? refusals.get(err) : undefined;
}

/**
 * For the adapters: the operation's result, its audit fields (of the result, or of the refusal it
 * threw) added to the call's access-line fields.
 */
export async function audited<T>(line: Record<string, unknown>, operation: Promise<Audited<T>>): Promise<T> {
  try {
    const { result, audit } = await operation;
    Object.assign(line, audit);
    return result;
  } catch (err) {
    const audit = auditOf(err);
    if (audit) Object.assign(line, audit);
    throw err;
  }
}
