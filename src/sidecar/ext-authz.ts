import { status } from '@grpc/grpc-js';
import {
  AuthorizationService,
  type AuthorizationServer,
  type CheckRequest,
  type CheckResponse,
} from '../gen/envoy/service/auth/v3/external_auth.js';
import { HeaderValueOption_HeaderAppendAction } from '../gen/envoy/config/core/v3/base.js';
import { StatusCode } from '../gen/envoy/type/v3/http_status.js';
import type { VerifyRequirements, VerifyResult } from '../shared/claims.js';
import type { Verifier } from '../verifier/create-verifier.js';
import { presentedToken } from '../verifier/bearer-token.js';
import { type GrpcServiceRegistration, unary, type UnaryDeps } from '../grpc/server.js';
import { SPAN_ATTR } from '../telemetry/tracing.js';
import { reasonStatus } from '../shared/reason-status.js';
import { claimHeaderValues, httpDenial, unforwardableClaims, type DenialReason } from './authz-answer.js';
import { certificateRequirement, forwardedCertificateThumbprint, urlEncodedPem, type PresentedCertificate } from './client-certificate.js';

const overwrite = (key: string, value: string) => ({
  header: { key, value, rawValue: Buffer.alloc(0) },
  appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
  keepEmptyValue: false,
});

/** The denial of {@link httpDenial}, as an ext_authz answer; its gRPC status from the same row (REASON_STATUS). */
export function denyResponse(reason: DenialReason, detail: string, requiredScopes: readonly string[] = [], scheme: 'Bearer' | 'DPoP' = 'Bearer'): CheckResponse {
  const d = httpDenial(reason, detail, requiredScopes, scheme);
  const headers = [...Object.entries(d.headers).map(([k, v]) => overwrite(k, v)), overwrite('content-type', 'application/json')];
  return {
    status: { code: reasonStatus(reason).grpc, message: `${reason}: ${detail}` },
    httpResponse: { $case: 'deniedResponse', deniedResponse: { status: { code: d.status as StatusCode }, headers, body: d.body } },
  };
}

/** The claim headers, overwriting whatever the client sent; empty ones are removed. */
export function allowResponse(result: Extract<VerifyResult, { valid: true }>): CheckResponse {
  const values = claimHeaderValues(result.claims);
  const set = Object.entries(values).filter(([, v]) => v.length > 0);
  const remove = Object.entries(values).filter(([, v]) => v.length === 0).map(([k]) => k);
  return {
    status: { code: status.OK, message: '' },
    httpResponse: { $case: 'okResponse', okResponse: { headers: set.map(([k, v]) => overwrite(k, v)), headersToRemove: remove } },
  };
}

/**
 * The presenting client's certificate as Envoy reports it: the peer certificate of the downstream
 * connection (`source.certificate`, with `include_peer_certificate: true`), else, when the sidecar
 * is told to trust it, the `Hash` of `x-forwarded-client-cert` (see client-certificate.ts).
 */
export function checkRequestCertificate(req: CheckRequest, trustForwarded: boolean): PresentedCertificate | undefined {
  const pem = urlEncodedPem(req.attributes?.source?.certificate);
  if (pem !== undefined) return { certificate: pem };
  if (!trustForwarded) return undefined;
  const thumbprint = forwardedCertificateThumbprint(req.attributes?.request?.http?.headers['x-forwarded-client-cert']);
  return thumbprint !== undefined ? { thumbprint } : undefined;
}

export interface ExtAuthzOptions {
  /** TA_TRUST_FORWARDED_CLIENT_CERT: honour `x-forwarded-client-cert`. */
  trustForwardedClientCert?: boolean;
}

/**
 * Envoy's ext_authz v3 `Check`, answered locally. Reads `authorization: Bearer …` or `DPoP …`; the
 * audience and required scopes come from the route's `context_extensions` (`audience`,
 * `required_scopes`, space-separated) or the sidecar's defaults. A bound token needs what it is
 * bound to: the client certificate (checkRequestCertificate), or the `dpop` header's proof for the
 * request's method and `scheme://host path` (RFC 9449 §4.3; the query is ignored).
 */
export function createExtAuthzService(verifier: Verifier, deps: UnaryDeps, options: ExtAuthzOptions = {}): GrpcServiceRegistration {
  const trustForwarded = options.trustForwardedClientCert ?? false;
  const implementation: AuthorizationServer = {
    check: unary('Check', deps, async (req: CheckRequest, ctx) => {
      const http = req.attributes?.request?.http;
      const ext = req.attributes?.contextExtensions ?? {};
      const presented = presentedToken(http?.headers.authorization);
      if (!presented) {
        deps.metrics?.countVerifyOutcome('MISSING_TOKEN');
        ctx.log.reason = 'MISSING_TOKEN';
        return denyResponse('MISSING_TOKEN', 'no bearer token in the authorization header');
      }
      const requiredScopes = ext.required_scopes ? ext.required_scopes.split(' ').filter(Boolean) : [];
      const requirements: VerifyRequirements = {
        ...(ext.audience ? { audience: ext.audience } : {}),
        requiredScopes,
        scheme: presented.scheme,
        ...certificateRequirement(checkRequestCertificate(req, trustForwarded)),
        ...(http?.headers.dpop !== undefined ? { dpop: { proof: http.headers.dpop, method: http.method, uri: `${http.scheme}://${http.host}${http.path}` } } : {}),
      };
      const result = await verifier.verify(presented.token, requirements);
      deps.metrics?.countVerifyOutcome(result.valid ? 'valid' : result.reason);
      if (!result.valid) {
        ctx.log.reason = result.reason;
        return denyResponse(result.reason, result.detail, requiredScopes, presented.scheme);
      }
      Object.assign(ctx.log, { sub: result.claims.subject, jti: result.claims.tokenId });
      ctx.span?.setAttribute(SPAN_ATTR.kid, result.claims.keyId);
      const unforwardable = unforwardableClaims(result.claims);
      if (unforwardable !== undefined) {
        ctx.log.reason = 'MALFORMED';
        return denyResponse('MALFORMED', unforwardable);
      }
      return allowResponse(result);
    }),
  };
  return { name: 'envoy.service.auth.v3.Authorization', definition: AuthorizationService, implementation };
}
