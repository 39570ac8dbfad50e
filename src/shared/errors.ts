/**
 * Typed errors with stable codes. Callers switch on `code`, never on messages.
 * `src/grpc/status-map.ts` is the only place that turns a code into a gRPC status.
 */

/** Every stable error code the token authority can raise. */
export const ErrorCodes = {
  /** A request field is missing, malformed or out of range. */
  INVALID_ARGUMENT: 'ERR_INVALID_ARGUMENT',
  /** The caller is known but lacks the right to do this. */
  PERMISSION_DENIED: 'ERR_PERMISSION_DENIED',
  /** The caller presented no usable credentials. */
  UNAUTHENTICATED: 'ERR_UNAUTHENTICATED',
  /** The refresh token is unknown (never issued, or long gone). */
  REFRESH_INVALID: 'ERR_REFRESH_INVALID',
  /** The refresh token, or its session's absolute/idle lifetime, has expired. */
  REFRESH_EXPIRED: 'ERR_REFRESH_EXPIRED',
  /** A spent refresh token was presented again; the whole session has been revoked. */
  REFRESH_REUSED: 'ERR_REFRESH_REUSED',
  /** The session (or its subject) was revoked. */
  SESSION_REVOKED: 'ERR_SESSION_REVOKED',
  /**
   * A DPoP proof (RFC 9449) the request needs is missing, invalid, replayed, or signed by another
   * key than the one the session is bound to (Refresh of a `jkt`-bound session, the token endpoint).
   */
  DPOP_PROOF_INVALID: 'ERR_DPOP_PROOF_INVALID',
  /** The backing store (Redis) cannot be reached or did not answer in time. */
  STORE_UNAVAILABLE: 'ERR_STORE_UNAVAILABLE',
  /** The caller exceeded a rate limit. */
  RATE_LIMITED: 'ERR_RATE_LIMITED',
  /** The named thing does not exist. */
  NOT_FOUND: 'ERR_NOT_FOUND',
  /** The operation is not valid in the current state (e.g. no active signing key). */
  FAILED_PRECONDITION: 'ERR_FAILED_PRECONDITION',
  /** A configuration value is invalid. */
  CONFIG: 'ERR_CONFIG',
  /** A key could not be generated, loaded, parsed or stored. */
  KEY: 'ERR_KEY',
  /** The method exists in the contract but this process does not serve it. */
  UNIMPLEMENTED: 'ERR_UNIMPLEMENTED',
  /** A bug or an unexpected failure. The message is generic; the cause is logged. */
  INTERNAL: 'ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Marks every TokenAuthorityError, whichever installed copy of the package made it. */
const BRAND = Symbol.for('token-authority.error');

/**
 * The one error class of the project: a stable `code`, a message for humans, an optional cause.
 * `instanceof TokenAuthorityError` also recognises errors made by another installed copy of the
 * package (two versions in one dependency tree), by a brand registered with `Symbol.for`, as
 * nice-grpc does for its errors.
 */
export class TokenAuthorityError extends Error {
  override readonly name = 'TokenAuthorityError';
  readonly code: ErrorCode;
  declare readonly [BRAND]: true;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass keeps ordinary prototype-chain semantics.
    if (this !== TokenAuthorityError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true && typeof (value as { code?: unknown }).code === 'string';
  }
}

/** Shorthand constructors, so call sites read as what happened. */
export const invalidArgument = (message: string) =>
  new TokenAuthorityError(ErrorCodes.INVALID_ARGUMENT, message);
export const permissionDenied = (message: string) =>
  new TokenAuthorityError(ErrorCodes.PERMISSION_DENIED, message);
export const storeUnavailable = (message: string, cause?: unknown) =>
  new TokenAuthorityError(ErrorCodes.STORE_UNAVAILABLE, message, { cause });

export function isTokenAuthorityError(value: unknown): value is TokenAuthorityError {
  return value instanceof TokenAuthorityError;
}

/** The message of anything thrown, for a log field or an error message (`String(value)` for a non-Error). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
