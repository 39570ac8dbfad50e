/**
 * Access-token claims (RFC 9068 profile) and verification outcomes, shared by the authority, the
 * verifier library and the sidecar.
 */

/**
 * Verifiers refuse longer tokens before parsing them (a bound on work per call), and Issue refuses
 * requests whose token would be longer, so the authority never mints a token verifiers reject.
 */
export const MAX_ACCESS_TOKEN_BYTES = 8192;

/** Claim names the authority sets itself; extra claims may not use them. */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'sid', 'gen', 'scope', 'client_id', 'auth_time',
  'acr', 'amr', 'cnf', 'act', 'may_act', 'azp', 'nonce', 'at_hash', 'c_hash', 'roles', 'groups',
  'entitlements', 'typ', 'kid', 'alg', 'ta_seal', 'ta_cap',
]);

/** The payload of an access token as it is signed. Times are seconds since the epoch. */
export interface AccessTokenPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  sid: string;
  gen: number;
  scope?: string;
  [extra: string]: unknown;
}

/** The claims of a verified token, normalised (audience always a list, scopes split). */
export interface VerifiedClaims {
  issuer: string;
  subject: string;
  audience: readonly string[];
  scopes: readonly string[];
  /** Seconds since the epoch. */
  issuedAt: number;
  notBefore: number;
  expiresAt: number;
  tokenId: string;
  sessionId: string;
  generation: number;
  keyId: string;
  /** String-valued claims beyond the registered ones. */
  extra: Readonly<Record<string, string>>;
}

/** Why a token was rejected. Mirrors the proto enum VerifyFailureReason without its prefix. */
export const VerifyReasons = [
  'MALFORMED',
  'BAD_SIGNATURE',
  'UNKNOWN_KEY',
  'EXPIRED',
  'NOT_YET_VALID',
  'WRONG_ISSUER',
  'WRONG_AUDIENCE',
  'MISSING_SCOPE',
  'REVOKED',
  'UNSUPPORTED_ALGORITHM',
  'WRONG_TYPE',
  'FORBIDDEN_HEADER',
  'STALE',
] as const;
export type VerifyReason = (typeof VerifyReasons)[number];

export type VerifyResult =
  | { readonly valid: true; readonly claims: VerifiedClaims }
  | { readonly valid: false; readonly reason: VerifyReason; readonly detail: string };

/** Per-call verification requirements. */
export interface VerifyRequirements {
  /** The token's `aud` must contain this value. */
  audience?: string;
  /** Every one of these must be in the token's `scope`. */
  requiredScopes?: readonly string[];
}

export function rejected(reason: VerifyReason, detail: string): VerifyResult {
  return { valid: false, reason, detail };
}
