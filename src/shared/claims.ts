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
  /**
   * The token's binding, from its RFC 7800 `cnf` claim: `x5tS256` is `cnf["x5t#S256"]` (the
   * base64url SHA-256 of the client certificate's DER, RFC 8705 §3.1), `jkt` is `cnf.jkt` (the
   * RFC 7638 SHA-256 thumbprint of the client's DPoP key, RFC 9449 §6). Absent: an unbound
   * (bearer) token. A `cnf` with any other member, with both, or with a non-string value is
   * MALFORMED.
   */
  confirmation?: Confirmation;
}

/** A token's sender constraint (RFC 7800 `cnf`): exactly one of the two. */
export type Confirmation = { readonly x5tS256: string } | { readonly jkt: string };

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
  /** The token is bound (`cnf`) and the certificate or DPoP key is missing or different; or the DPoP scheme was used with a token not bound to a DPoP key, or a DPoP-bound token was presented as Bearer. */
  'BINDING_MISMATCH',
  /** The DPoP proof is malformed, of the wrong `typ`, signed outside the allow-list or with a private key in its `jwk`, for another method/URI/token, too old or in the future, or a replay. */
  'INVALID_DPOP_PROOF',
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
  /**
   * The presenting client's certificate: DER bytes, PEM text, or only its thumbprint
   * (`{ x5tS256 }`, the base64url SHA-256 of its DER, for a trusted proxy that forwards a hash
   * such as Envoy's `x-forwarded-client-cert` `Hash=`). An `x5t#S256`-bound token is valid only if
   * this certificate's thumbprint equals its own. Ignored for other tokens.
   */
  clientCertificate?: Uint8Array | string | { readonly x5tS256: string };
  /**
   * The request's DPoP proof (the `DPoP` header value) and the request it must be for: `method`
   * as sent (compared exactly with `htm`), `uri` the absolute target URI (compared with `htu` by
   * scheme, host, port and path; query and fragment ignored). A `jkt`-bound token is valid only
   * with a proof signed by that key for this request and this token.
   */
  dpop?: { proof: string; method: string; uri: string };
  /**
   * How the token was presented (the `Authorization` scheme on HTTP paths). 'DPoP': the token
   * must be `jkt`-bound (anything else is BINDING_MISMATCH). 'Bearer': a `jkt`-bound token is
   * BINDING_MISMATCH (RFC 9449 §7.2) and a proof, if given, is not looked at. Unset: 'DPoP' if
   * `dpop` is given, otherwise no scheme rule applies (a bound token still needs its
   * certificate or proof).
   */
  scheme?: 'Bearer' | 'DPoP';
}

export function rejected(reason: VerifyReason, detail: string): VerifyResult {
  return { valid: false, reason, detail };
}
