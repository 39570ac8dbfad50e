/**
 * What a rejected token means on the wire, by reason: the gRPC status (`requireToken` in
 * `token-authority/grpc`, the `status` of an Envoy ext_authz `CheckResponse`), the HTTP status and
 * RFC 6750 error code (ext_authz's denied response, forward-auth). One row per reason: adding a
 * reason is adding a row, and TypeScript refuses a reason without one.
 *
 * - MISSING_SCOPE is the only authorization failure: PERMISSION_DENIED / 403 `insufficient_scope`
 *   (RFC 6750 §3.1).
 * - STALE is not about the token at all: the verifier cannot vouch that it has every revocation, a
 *   transient condition on the verifier's side. UNAVAILABLE / 503 with `Retry-After`, so clients
 *   and proxies retry rather than discard the token or sign the user out (which UNAUTHENTICATED /
 *   401 would tell them to do).
 * - MISSING_TOKEN: a bare `Bearer` challenge, no error code (RFC 6750 §3.1).
 * - INVALID_DPOP_PROOF: UNAUTHENTICATED / 401 `invalid_dpop_proof` (RFC 9449 §7.1).
 * - Every other reason (BINDING_MISMATCH too: the token is not usable by this presenter): the token
 *   is not acceptable, UNAUTHENTICATED / 401 `invalid_token`.
 */
import type { VerifyReason } from './claims.js';

/** A verify reason, or no token presented at all. */
export type DenialReason = VerifyReason | 'MISSING_TOKEN';

/** The gRPC status codes a denial uses (numbers fixed by the gRPC specification; grpc-js's `status` enum). */
export const GrpcDenialCode = { PERMISSION_DENIED: 7, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;
export type GrpcDenialCode = (typeof GrpcDenialCode)[keyof typeof GrpcDenialCode];

export interface ReasonStatus {
  readonly grpc: GrpcDenialCode;
  readonly http: 401 | 403 | 503;
  /** RFC 6750 error code (RFC 9449 §7.1's `invalid_dpop_proof` for a bad proof); undefined when no token was sent. */
  readonly error: 'invalid_token' | 'insufficient_scope' | 'invalid_dpop_proof' | undefined;
  /** `Retry-After` in seconds, for a condition that passes by itself. */
  readonly retryAfterSec?: number;
}

const INVALID: ReasonStatus = Object.freeze({ grpc: GrpcDenialCode.UNAUTHENTICATED, http: 401, error: 'invalid_token' });

export const REASON_STATUS: Readonly<Record<DenialReason, ReasonStatus>> = Object.freeze({
  MISSING_TOKEN: Object.freeze({ grpc: GrpcDenialCode.UNAUTHENTICATED, http: 401, error: undefined }),
  MALFORMED: INVALID,
  BAD_SIGNATURE: INVALID,
  UNKNOWN_KEY: INVALID,
  EXPIRED: INVALID,
  NOT_YET_VALID: INVALID,
  WRONG_ISSUER: INVALID,
  WRONG_AUDIENCE: INVALID,
  MISSING_SCOPE: Object.freeze({ grpc: GrpcDenialCode.PERMISSION_DENIED, http: 403, error: 'insufficient_scope' }),
  REVOKED: INVALID,
  UNSUPPORTED_ALGORITHM: INVALID,
  WRONG_TYPE: INVALID,
  FORBIDDEN_HEADER: INVALID,
  STALE: Object.freeze({ grpc: GrpcDenialCode.UNAVAILABLE, http: 503, error: 'invalid_token', retryAfterSec: 1 }),
  // A bound token without (or with another) certificate or key: the token is not acceptable here.
  BINDING_MISMATCH: INVALID,
  // RFC 9449 §7.1: its own error code (the challenge is `DPoP`, authz-answer.ts).
  INVALID_DPOP_PROOF: Object.freeze({ grpc: GrpcDenialCode.UNAUTHENTICATED, http: 401, error: 'invalid_dpop_proof' }),
});

/** The row of `reason` (an unknown reason, e.g. from a newer peer, answers as an invalid token). */
export function reasonStatus(reason: DenialReason): ReasonStatus {
  return REASON_STATUS[reason] ?? INVALID;
}
