import { SIGNING_ALGORITHMS } from '../verifier/jose-rules.js';
import type { VerifiedClaims } from '../shared/claims.js';
import { reasonStatus, type DenialReason } from '../shared/reason-status.js';

export type { DenialReason } from '../shared/reason-status.js';

/**
 * What an authorization answer says over HTTP, whichever way it travels (Envoy ext_authz `Check`,
 * or forward-auth for nginx, Caddy and Traefik): one table, so every gateway gets the same status,
 * challenge and headers for the same verdict.
 */

/**
 * Headers set on an allowed request. They are always all set (or, over ext_authz, removed when
 * empty), so a client can never smuggle its own `x-auth-*` values past the proxy to the service.
 */
export const CLAIM_HEADERS = {
  subject: 'x-auth-subject',
  scopes: 'x-auth-scopes',
  sessionId: 'x-auth-session-id',
  tokenId: 'x-auth-token-id',
  audience: 'x-auth-audience',
  expiresAt: 'x-auth-expires-at',
  issuer: 'x-auth-issuer',
} as const;

/** The claim header values of a verified token (scopes and audiences space-joined). */
export function claimHeaderValues(c: VerifiedClaims): Record<string, string> {
  return {
    [CLAIM_HEADERS.subject]: c.subject,
    [CLAIM_HEADERS.scopes]: c.scopes.join(' '),
    [CLAIM_HEADERS.sessionId]: c.sessionId,
    [CLAIM_HEADERS.tokenId]: c.tokenId,
    [CLAIM_HEADERS.audience]: c.audience.join(' '),
    [CLAIM_HEADERS.expiresAt]: String(c.expiresAt),
    [CLAIM_HEADERS.issuer]: c.issuer,
  };
}

/** What may not appear inside one member of a space-separated header list. */
// eslint-disable-next-line no-control-regex
const NOT_LIST_SAFE = /[\s\u0000-\u001f\u007f-\u009f]/u;

/**
 * Why a valid token's audiences or scopes cannot be forwarded as space-separated headers, if they
 * cannot: the authority never issues such a token (Issue refuses them), so one is forged or older.
 * Such a token is denied as MALFORMED rather than forwarded as an ambiguous list.
 */
export function unforwardableClaims(c: VerifiedClaims): string | undefined {
  if (c.audience.some((a) => NOT_LIST_SAFE.test(a))) return 'an audience contains whitespace or control characters, so x-auth-audience would be ambiguous';
  if (c.scopes.some((s) => NOT_LIST_SAFE.test(s))) return 'a scope contains whitespace or control characters, so x-auth-scopes would be ambiguous';
  return undefined;
}

export interface HttpDenial {
  /** 401, 403, or 503 while the verifier is stale (fail-closed). */
  status: 401 | 403 | 503;
  /**
   * RFC 6750 error code `invalid_token` or `insufficient_scope`, or RFC 9449 §7.1
   * `invalid_dpop_proof`; none when no token was sent.
   */
  error: 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | undefined;
  /** Response headers: `www-authenticate`, plus `retry-after` while stale. */
  headers: Record<string, string>;
  /** JSON body: `{ error, reason, detail }`. */
  body: string;
}

/** The `algs` of a DPoP challenge (RFC 9449 §7.1): what proofs may be signed with. */
const DPOP_ALGS = SIGNING_ALGORITHMS.join(' ');

/**
 * The HTTP answer of a denial, from the reason's row in REASON_STATUS (shared/reason-status.ts):
 * RFC 6750 §3's challenge — bare `Bearer` without a token, the error code and the reason otherwise,
 * and the scopes required for `insufficient_scope` — plus `Retry-After` where the row has one.
 *
 * RFC 9449 §7.1: a problem with the DPoP proof (`invalid_dpop_proof`) gets a `DPoP` challenge with
 * the accepted `algs`, and so does any other rejection of a token presented with the DPoP scheme
 * (`scheme`, default Bearer).
 */
export function httpDenial(reason: DenialReason, detail: string, requiredScopes: readonly string[] = [], scheme: 'Bearer' | 'DPoP' = 'Bearer'): HttpDenial {
  const row = reasonStatus(reason);
  const { error, http: status } = row;
  const dpop = error === 'invalid_dpop_proof' || (scheme === 'DPoP' && error !== undefined);
  let challenge = dpop ? 'DPoP' : 'Bearer';
  if (error) {
    challenge += ` error="${error}", error_description="${reason}"`;
    if (error === 'insufficient_scope' && requiredScopes.length > 0) challenge += `, scope="${requiredScopes.join(' ')}"`;
    if (dpop) challenge += `, algs="${DPOP_ALGS}"`;
  }
  const headers: Record<string, string> = { 'www-authenticate': challenge };
  if (row.retryAfterSec !== undefined) headers['retry-after'] = String(row.retryAfterSec);
  return { status, error, headers, body: JSON.stringify({ error: error ?? 'invalid_token', reason, detail }) };
}
