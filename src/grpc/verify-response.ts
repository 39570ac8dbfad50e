import type { VerifiedClaims, VerifyReason, VerifyResult } from '../shared/claims.js';
import { VerifyFailureReason, type AccessTokenClaims, type VerifyResponse } from '../gen/tokenauthority/v1/token_authority.js';

const REASON: Readonly<Record<VerifyReason, VerifyFailureReason>> = {
  MALFORMED: VerifyFailureReason.VERIFY_FAILURE_REASON_MALFORMED,
  BAD_SIGNATURE: VerifyFailureReason.VERIFY_FAILURE_REASON_BAD_SIGNATURE,
  UNKNOWN_KEY: VerifyFailureReason.VERIFY_FAILURE_REASON_UNKNOWN_KEY,
  EXPIRED: VerifyFailureReason.VERIFY_FAILURE_REASON_EXPIRED,
  NOT_YET_VALID: VerifyFailureReason.VERIFY_FAILURE_REASON_NOT_YET_VALID,
  WRONG_ISSUER: VerifyFailureReason.VERIFY_FAILURE_REASON_WRONG_ISSUER,
  WRONG_AUDIENCE: VerifyFailureReason.VERIFY_FAILURE_REASON_WRONG_AUDIENCE,
  MISSING_SCOPE: VerifyFailureReason.VERIFY_FAILURE_REASON_MISSING_SCOPE,
  REVOKED: VerifyFailureReason.VERIFY_FAILURE_REASON_REVOKED,
  UNSUPPORTED_ALGORITHM: VerifyFailureReason.VERIFY_FAILURE_REASON_UNSUPPORTED_ALGORITHM,
  WRONG_TYPE: VerifyFailureReason.VERIFY_FAILURE_REASON_WRONG_TYPE,
  FORBIDDEN_HEADER: VerifyFailureReason.VERIFY_FAILURE_REASON_FORBIDDEN_HEADER,
  STALE: VerifyFailureReason.VERIFY_FAILURE_REASON_STALE,
};

export function toProtoReason(reason: VerifyReason): VerifyFailureReason {
  return REASON[reason];
}

export function toProtoClaims(c: VerifiedClaims): AccessTokenClaims {
  return {
    issuer: c.issuer,
    subject: c.subject,
    audience: [...c.audience],
    scopes: [...c.scopes],
    issuedAt: new Date(c.issuedAt * 1000),
    notBefore: new Date(c.notBefore * 1000),
    expiresAt: new Date(c.expiresAt * 1000),
    tokenId: c.tokenId,
    sessionId: c.sessionId,
    generation: c.generation,
    keyId: c.keyId,
    extraClaims: { ...c.extra },
  };
}

/** The Verify RPC's answer, shared by the authority and the sidecar. */
export function toVerifyResponse(result: VerifyResult): VerifyResponse {
  if (result.valid) {
    return { valid: true, reason: VerifyFailureReason.VERIFY_FAILURE_REASON_UNSPECIFIED, detail: '', claims: toProtoClaims(result.claims) };
  }
  return { valid: false, reason: REASON[result.reason], detail: result.detail, claims: undefined };
}
