import type { VerifiedClaims, VerifyReason, VerifyRequirements, VerifyResult } from '../shared/claims.js';
import { invalidArgument } from '../shared/errors.js';
import { SPAN_ATTR } from '../telemetry/tracing.js';
import { unary, type CallContext, type UnaryDeps } from './server.js';
import { TokenAuthorityServiceService, VerifyFailureReason, VerifyResponse, type AccessTokenClaims, type Confirmation, type VerifyRequest } from '../gen/tokenauthority/v1/token_authority.js';

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
  BINDING_MISMATCH: VerifyFailureReason.VERIFY_FAILURE_REASON_BINDING_MISMATCH,
  INVALID_DPOP_PROOF: VerifyFailureReason.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF,
};

/** The proto form of a token's binding (its `cnf`). */
export function toProtoConfirmation(c: VerifiedClaims['confirmation']): Confirmation | undefined {
  if (c === undefined) return undefined;
  return { binding: 'x5tS256' in c ? { $case: 'x5tS256', x5tS256: c.x5tS256 } : { $case: 'jkt', jkt: c.jkt } };
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
    confirmation: toProtoConfirmation(c.confirmation),
  };
}

/*
 * A token verified from the cache comes back with the same frozen claims object every time, so its
 * answer is built once (keyed by the claims) and encoded once (keyed by the answer): a repeated
 * token costs neither object building nor protobuf encoding. WeakMaps: entries go with the claims.
 */
const answers = new WeakMap<VerifiedClaims, VerifyResponse>();
const encoded = new WeakMap<VerifyResponse, Buffer>();

/** The Verify RPC's answer, shared by the authority and the sidecar. Valid answers are shared: never mutate one. */
export function toVerifyResponse(result: VerifyResult): VerifyResponse {
  if (result.valid) {
    let answer = answers.get(result.claims);
    if (!answer) {
      answer = { valid: true, reason: VerifyFailureReason.VERIFY_FAILURE_REASON_UNSPECIFIED, detail: '', claims: toProtoClaims(result.claims) };
      answers.set(result.claims, answer);
    }
    return answer;
  }
  return { valid: false, reason: REASON[result.reason], detail: result.detail, claims: undefined };
}

/** TokenAuthorityService with Verify's response serializer reusing the bytes of shared answers. */
export const TokenAuthorityServiceWithCachedVerify = {
  ...TokenAuthorityServiceService,
  verify: {
    ...TokenAuthorityServiceService.verify,
    responseSerialize(value: VerifyResponse): Buffer {
      let bytes = encoded.get(value);
      if (!bytes) {
        bytes = Buffer.from(VerifyResponse.encode(value).finish());
        if (value.valid) encoded.set(value, bytes);
      }
      return bytes;
    },
  },
} as const;

/**
 * The Verify handler of the authority and the sidecar. Synchronous whenever the verifier can
 * answer at once (every case but an unknown kid), so a cached token costs no promise.
 */
export function verifyRpc(verifyNow: (token: string, req: VerifyRequirements) => VerifyResult | Promise<VerifyResult>, deps: UnaryDeps) {
  const answer = (result: VerifyResult, ctx: CallContext): VerifyResponse => {
    deps.metrics?.countVerifyOutcome(result.valid ? 'valid' : result.reason);
    // A denial always gets its access line (unary's logging policy); accepted calls are sampled.
    if (!result.valid) ctx.log.reason = result.reason;
    // Tracing on: the accepted token's ids on the span (the access line is sampled; the span is not).
    else if (ctx.span) {
      ctx.span.setAttribute(SPAN_ATTR.kid, result.claims.keyId);
      ctx.span.setAttribute(SPAN_ATTR.jti, result.claims.tokenId);
    }
    return toVerifyResponse(result);
  };
  return unary('Verify', deps, (req: VerifyRequest, ctx) => {
    const result = verifyNow(req.token, verifyRequirements(req));
    return result instanceof Promise ? result.then((r) => answer(r, ctx)) : answer(result, ctx);
  });
}

/** `client_certificate` is DER or PEM: PEM text (DER starts with 0x30, never with "-") is passed as text. */
function pemOrDer(bytes: Uint8Array): Uint8Array | string {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  return bytes[i] === 0x2d ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1') : bytes;
}

/**
 * A VerifyRequest as the verifier's requirements. The binding inputs are passed only when set, so
 * an unbound token with none verifies exactly as before. A proof without the request it is for is
 * the caller's bug, not the token's: INVALID_ARGUMENT.
 */
export function verifyRequirements(req: VerifyRequest): VerifyRequirements {
  const r: { -readonly [K in keyof VerifyRequirements]: VerifyRequirements[K] } = { requiredScopes: req.requiredScopes };
  if (req.audience) r.audience = req.audience;
  if (req.clientCertificate.length > 0) r.clientCertificate = pemOrDer(req.clientCertificate);
  if (req.dpopProof.length > 0) {
    if (req.httpMethod.length === 0 || req.httpUri.length === 0) {
      throw invalidArgument('dpop_proof needs http_method and http_uri: the method and URI of the request the proof came with');
    }
    r.dpop = { proof: req.dpopProof, method: req.httpMethod, uri: req.httpUri };
  }
  return r;
}
