import { status } from '@grpc/grpc-js';
import {
  AuthorizationService,
  type AuthorizationServer,
  type CheckRequest,
  type CheckResponse,
} from '../gen/envoy/service/auth/v3/external_auth.js';
import { HeaderValueOption_HeaderAppendAction } from '../gen/envoy/config/core/v3/base.js';
import { StatusCode } from '../gen/envoy/type/v3/http_status.js';
import type { VerifyReason, VerifyResult } from '../shared/claims.js';
import type { Verifier } from '../verifier/create-verifier.js';
import { bearerToken } from '../verifier/bearer-token.js';
import { unary, type UnaryDeps } from '../grpc/unary.js';
import type { GrpcServiceRegistration } from '../grpc/server.js';

/**
 * Headers the sidecar sets on an allowed request. They are always all set or removed, so a client
 * can never smuggle its own `x-auth-*` values past Envoy to the service.
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

const overwrite = (key: string, value: string) => ({
  header: { key, value, rawValue: Buffer.alloc(0) },
  appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
  keepEmptyValue: false,
});

/** RFC 6750 §3.1: insufficient scope is 403, a stale verifier is a 503 the client may retry, the rest 401. */
function httpStatusFor(reason: VerifyReason): StatusCode {
  if (reason === 'MISSING_SCOPE') return StatusCode.Forbidden;
  if (reason === 'STALE') return StatusCode.ServiceUnavailable;
  return StatusCode.Unauthorized;
}


export function denyResponse(reason: VerifyReason | 'MISSING_TOKEN', detail: string): CheckResponse {
  const code = reason === 'MISSING_TOKEN' ? StatusCode.Unauthorized : httpStatusFor(reason);
  const error = reason === 'MISSING_SCOPE' ? 'insufficient_scope' : 'invalid_token';
  const challenge = reason === 'MISSING_TOKEN' ? 'Bearer' : `Bearer error="${error}", error_description="${reason}"`;
  const headers = [overwrite('www-authenticate', challenge), overwrite('content-type', 'application/json')];
  if (reason === 'STALE') headers.push(overwrite('retry-after', '1'));
  return {
    status: { code: code === StatusCode.Forbidden ? status.PERMISSION_DENIED : status.UNAUTHENTICATED, message: `${reason}: ${detail}` },
    httpResponse: { $case: 'deniedResponse', deniedResponse: { status: { code }, headers, body: JSON.stringify({ error, reason, detail }) } },
  };
}

/** What may not appear inside one member of a space-separated header list. */
// eslint-disable-next-line no-control-regex
const NOT_LIST_SAFE = /[\s\u0000-\u001f\u007f-\u009f]/u;

/**
 * Why a valid token's audiences or scopes cannot be forwarded as space-separated headers, if they
 * cannot: the authority never issues such a token (Issue refuses them), so one is forged or older.
 */
export function unforwardableClaims(result: Extract<VerifyResult, { valid: true }>): string | undefined {
  if (result.claims.audience.some((a) => NOT_LIST_SAFE.test(a))) return 'an audience contains whitespace or control characters, so x-auth-audience would be ambiguous';
  if (result.claims.scopes.some((s) => NOT_LIST_SAFE.test(s))) return 'a scope contains whitespace or control characters, so x-auth-scopes would be ambiguous';
  return undefined;
}

export function allowResponse(result: Extract<VerifyResult, { valid: true }>): CheckResponse {
  const c = result.claims;
  const values: Record<string, string> = {
    [CLAIM_HEADERS.subject]: c.subject,
    [CLAIM_HEADERS.scopes]: c.scopes.join(' '),
    [CLAIM_HEADERS.sessionId]: c.sessionId,
    [CLAIM_HEADERS.tokenId]: c.tokenId,
    [CLAIM_HEADERS.audience]: c.audience.join(' '),
    [CLAIM_HEADERS.expiresAt]: String(c.expiresAt),
    [CLAIM_HEADERS.issuer]: c.issuer,
  };
  const set = Object.entries(values).filter(([, v]) => v.length > 0);
  const remove = Object.entries(values).filter(([, v]) => v.length === 0).map(([k]) => k);
  return {
    status: { code: status.OK, message: '' },
    httpResponse: { $case: 'okResponse', okResponse: { headers: set.map(([k, v]) => overwrite(k, v)), headersToRemove: remove } },
  };
}

/**
 * Envoy's ext_authz v3 `Check`, answered locally. Reads `authorization: Bearer …`; the audience and
 * required scopes come from the route's `context_extensions` (`audience`, `required_scopes`,
 * space-separated) or the sidecar's defaults.
 */
export function createExtAuthzService(verifier: Verifier, deps: UnaryDeps): GrpcServiceRegistration {
  const implementation: AuthorizationServer = {
    check: unary('Check', deps, async (req: CheckRequest, ctx) => {
      const http = req.attributes?.request?.http;
      const ext = req.attributes?.contextExtensions ?? {};
      const token = bearerToken(http?.headers.authorization);
      if (!token) {
        deps.metrics?.countVerifyOutcome('MISSING_TOKEN');
        return denyResponse('MISSING_TOKEN', 'no bearer token in the authorization header');
      }
      const result = await verifier.verify(token, {
        ...(ext.audience ? { audience: ext.audience } : {}),
        requiredScopes: ext.required_scopes ? ext.required_scopes.split(' ').filter(Boolean) : [],
      });
      deps.metrics?.countVerifyOutcome(result.valid ? 'valid' : result.reason);
      if (!result.valid) {
        ctx.log.reason = result.reason;
        return denyResponse(result.reason, result.detail);
      }
      Object.assign(ctx.log, { sub: result.claims.subject, jti: result.claims.tokenId });
      const unforwardable = unforwardableClaims(result);
      if (unforwardable !== undefined) {
        ctx.log.reason = 'MALFORMED';
        return denyResponse('MALFORMED', unforwardable);
      }
      return allowResponse(result);
    }),
  };
  return { name: 'envoy.service.auth.v3.Authorization', definition: AuthorizationService, implementation };
}
