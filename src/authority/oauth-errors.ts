import { ErrorCodes, isTokenAuthorityError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { HttpAnswer } from '../http/http-server.js';
import { FormBodyError } from '../http/form-body.js';

/** The OAuth error codes these endpoints answer with (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 8707 §2, RFC 9449 §5). */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unsupported_token_type'
  | 'invalid_dpop_proof'
  | 'temporarily_unavailable'
  | 'server_error';

/** An OAuth error response: the status, the `error` code and a description for humans. */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';
  constructor(
    readonly error: OAuthErrorCode,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The only table from TokenAuthorityError codes to OAuth errors. Endpoint-specific answers
 * (invalid_scope, invalid_target, unsupported_grant_type, …) are raised as OAuthError where the
 * endpoint knows them; everything the authority itself throws is mapped here.
 */
const OAUTH_BY_CODE: Readonly<Record<ErrorCode, { error: OAuthErrorCode; status: number }>> = {
  [ErrorCodes.INVALID_ARGUMENT]: { error: 'invalid_request', status: 400 },
  // An authenticated client without the right (RFC 6749 §5.2 unauthorized_client).
  [ErrorCodes.PERMISSION_DENIED]: { error: 'unauthorized_client', status: 400 },
  // No (usable) client certificate: client authentication failed (§5.2: 401).
  [ErrorCodes.UNAUTHENTICATED]: { error: 'invalid_client', status: 401 },
  [ErrorCodes.REFRESH_INVALID]: { error: 'invalid_grant', status: 400 },
  [ErrorCodes.REFRESH_EXPIRED]: { error: 'invalid_grant', status: 400 },
  [ErrorCodes.REFRESH_REUSED]: { error: 'invalid_grant', status: 400 },
  [ErrorCodes.SESSION_REVOKED]: { error: 'invalid_grant', status: 400 },
  // RFC 9449 §5: a token request whose DPoP proof is missing where needed or invalid.
  [ErrorCodes.DPOP_PROOF_INVALID]: { error: 'invalid_dpop_proof', status: 400 },
  [ErrorCodes.STORE_UNAVAILABLE]: { error: 'temporarily_unavailable', status: 503 },
  [ErrorCodes.RATE_LIMITED]: { error: 'temporarily_unavailable', status: 429 },
  [ErrorCodes.NOT_FOUND]: { error: 'invalid_request', status: 400 },
  [ErrorCodes.FAILED_PRECONDITION]: { error: 'temporarily_unavailable', status: 503 },
  [ErrorCodes.CONFIG]: { error: 'server_error', status: 500 },
  [ErrorCodes.KEY]: { error: 'server_error', status: 500 },
  [ErrorCodes.UNIMPLEMENTED]: { error: 'invalid_request', status: 400 },
  [ErrorCodes.INTERNAL]: { error: 'server_error', status: 500 },
};

/** Codes whose message stays on the server (as in the gRPC status map). */
const INTERNAL_CODES: ReadonlySet<ErrorCode> = new Set([ErrorCodes.CONFIG, ErrorCodes.KEY, ErrorCodes.INTERNAL]);

/** Token, introspection and revocation responses are never cached (RFC 6749 §5.1, RFC 7662 §2.2). */
export const NO_STORE: Readonly<Record<string, string>> = { 'cache-control': 'no-store', pragma: 'no-cache' };

export function oauthErrorOf(err: unknown): OAuthError | undefined {
  if (err instanceof OAuthError) return err;
  if (err instanceof FormBodyError) return new OAuthError('invalid_request', err.status, err.message);
  if (isTokenAuthorityError(err) && !INTERNAL_CODES.has(err.code)) {
    const { error, status } = OAUTH_BY_CODE[err.code];
    return new OAuthError(error, status, err.message);
  }
  return undefined;
}

/**
 * The RFC 6749 §5.2 JSON body for anything an endpoint threw. An unexpected error is logged and
 * answered with a generic server_error. A 401 carries a WWW-Authenticate challenge naming the
 * scheme the client tried in its Authorization header (RFC 6749 §5.2); a body
 * the server stopped reading (413) closes the connection.
 */
export function oauthErrorAnswer(err: unknown, logger: Logger, endpoint: string, authorizationHeader?: string): HttpAnswer {
  let e = oauthErrorOf(err);
  if (!e) {
    logger.error({ err, endpoint }, 'unexpected error in OAuth endpoint');
    e = new OAuthError('server_error', 500, 'internal error (logged on the server)');
  }
  const headers: Record<string, string> = { ...NO_STORE };
  // RFC 6749 §5.2: a client that tried the Authorization header gets a challenge of its scheme
  // (which this server does not accept: clients authenticate with their TLS certificate).
  const scheme = authorizationHeader?.trim().split(/\s+/)[0];
  if (e.status === 401 && scheme && /^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*$/.test(scheme)) {
    headers['www-authenticate'] = `${scheme} realm="token-authority", error="${e.error}"`;
  }
  if (e.status === 413) headers.connection = 'close';
  // error_description: RFC 6749 allows %x20-21 / %x23-5B / %x5D-7E only.
  const description = e.message.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, ' ').slice(0, 500);
  return { status: e.status, body: JSON.stringify({ error: e.error, error_description: description }), headers };
}
