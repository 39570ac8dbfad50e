import type { IncomingMessage } from 'node:http';
import type { VerifyRequirements } from '../shared/claims.js';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { SPAN_ATTR, type SpanAttributes } from '../telemetry/tracing.js';
import type { Verifier } from '../verifier/create-verifier.js';
import { presentedToken } from '../verifier/bearer-token.js';
import type { HttpAnswer, Route } from '../http/http-server.js';
import { DEFAULT_ACCESS_LOG_SAMPLE, sampler } from '../grpc/server.js';
import { claimHeaderValues, httpDenial, unforwardableClaims, type DenialReason } from './authz-answer.js';
import { certificateRequirement, urlEncodedPem } from './client-certificate.js';

/** The path nginx `auth_request`, ingress-nginx `auth-url`, Caddy `forward_auth` and Traefik `ForwardAuth` call. */
export const FORWARD_AUTH_PATH = '/authz';

/** Audience or scope lists in a query parameter: space- or comma-separated. */
function list(value: string | null): string[] {
  return value ? value.split(/[ ,]+/).filter(Boolean) : [];
}

/** Header values are sent as UTF-8 bytes (node writes header strings as latin1). */
function headerValue(value: string): string {
  // eslint-disable-next-line no-control-regex
  return /^[\x20-\x7e]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1');
}

/** The header a proxy puts the client's URL-encoded PEM certificate in (nginx: `$ssl_client_escaped_cert`). */
export const CLIENT_CERT_HEADER = 'x-client-cert';

const single = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/**
 * The original request as the proxy describes it: method from `X-Forwarded-Method`, URI
 * `X-Forwarded-Proto://X-Forwarded-Host` + `X-Forwarded-Uri` (or nginx's `X-Original-URI`), what
 * Caddy and Traefik send by themselves and nginx with `proxy_set_header`. Undefined when a part is
 * missing: then a DPoP proof cannot be checked and is refused.
 */
export function forwardedRequest(req: IncomingMessage): { method: string; uri: string } | undefined {
  const method = single(req.headers['x-forwarded-method']);
  const proto = single(req.headers['x-forwarded-proto'])?.split(',')[0]?.trim();
  const host = single(req.headers['x-forwarded-host'])?.split(',')[0]?.trim();
  const path = single(req.headers['x-forwarded-uri']) ?? single(req.headers['x-original-uri']);
  if (!method || !proto || !host || !path) return undefined;
  return { method, uri: `${proto}://${host}${path.startsWith('/') ? path : `/${path}`}` };
}

/**
 * Forward-auth: the proxy sends the original request's headers (any method, any path below
 * `/authz`); the answer is 200 with the `x-auth-*` claim headers, or the denial of
 * {@link httpDenial}. The audience and required scopes come from the query (`audience`,
 * `required_scopes`), else the sidecar's defaults. The original method and URI arrive as
 * `X-Forwarded-Method` and `X-Forwarded-Uri` (Caddy, Traefik) or `X-Original-URI` (nginx); they are
 * logged with the verdict. Same verifier, cache and outcome counters as Verify and Check, and the
 * same logging policy: every denial logged, accepted calls 1 in `accessLogSample` (TA_ACCESS_LOG_SAMPLE).
 *
 * Bound tokens: the token may come as `Bearer` or `DPoP` (RFC 9449 §7.1); a DPoP proof comes in the
 * `DPoP` header and is checked against forwardedRequest(); the client certificate comes in
 * `X-Client-Cert` (URL-encoded PEM), honoured only with `trustForwardedClientCert`
 * (TA_TRUST_FORWARDED_CLIENT_CERT) because only a proxy that sets it itself, overwriting whatever
 * the client sent, makes it true.
 */
export function forwardAuthRoute(verifier: Verifier, deps: { metrics?: Metrics; logger: Logger; accessLogSample?: number; trustForwardedClientCert?: boolean }): Route {
  const sampleEvery = deps.accessLogSample ?? DEFAULT_ACCESS_LOG_SAMPLE;
  const sampleAccepted = sampler(sampleEvery);
  const trustForwarded = deps.trustForwardedClientCert ?? false;
  const deny = (reason: DenialReason, detail: string, scopes: readonly string[], req: IncomingMessage, span: SpanAttributes | undefined, scheme: 'Bearer' | 'DPoP' = 'Bearer'): HttpAnswer => {
    deps.metrics?.countVerifyOutcome(reason);
    span?.setAttribute(SPAN_ATTR.reason, reason);
    const d = httpDenial(reason, detail, scopes, scheme);
    deps.logger.info({ reason, method: req.headers['x-forwarded-method'], uri: req.headers['x-forwarded-uri'] ?? req.headers['x-original-uri'] }, 'forward-auth denied');
    return { status: d.status, body: d.body, headers: { ...d.headers, 'cache-control': 'no-store' } };
  };
  return async (req, span) => {
    const query = new URL(req.url ?? '/', 'http://forward-auth').searchParams;
    const audiences = list(query.get('audience'));
    const requiredScopes = list(query.get('required_scopes'));
    if (audiences.length > 1) {
      // The proxy's configuration is wrong, not the token: a 400 that nginx and Caddy turn into a 500.
      return { status: 400, body: JSON.stringify({ error: 'invalid_request', detail: 'the audience parameter names more than one audience; name one' }), headers: { 'cache-control': 'no-store' } };
    }
    const presented = presentedToken(req.headers.authorization);
    if (!presented) return deny('MISSING_TOKEN', 'no bearer token in the authorization header', requiredScopes, req, span);
    let dpop: VerifyRequirements['dpop'];
    // Under the Bearer scheme a proof is not looked at (a DPoP-bound token is refused as Bearer
    // whatever comes with it), so a proxy without X-Forwarded-* still serves bearer tokens.
    const proofs = presented.scheme === 'DPoP' ? req.headersDistinct.dpop : undefined;
    if (proofs !== undefined && proofs.length > 0) {
      if (proofs.length > 1) return deny('INVALID_DPOP_PROOF', 'more than one DPoP header (RFC 9449 §4.3: exactly one)', requiredScopes, req, span, presented.scheme);
      const target = forwardedRequest(req);
      if (!target) return deny('INVALID_DPOP_PROOF', 'the proxy did not send X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri: the proof cannot be checked', requiredScopes, req, span, presented.scheme);
      dpop = { proof: proofs[0]!, ...target };
    }
    const requirements: VerifyRequirements = {
      ...(audiences[0] ? { audience: audiences[0] } : {}),
      requiredScopes,
      scheme: presented.scheme,
      ...(trustForwarded ? certificateRequirement(certificateOf(req)) : {}),
      ...(dpop ? { dpop } : {}),
    };
    const result = await verifier.verify(presented.token, requirements);
    if (!result.valid) return deny(result.reason, result.detail, requiredScopes, req, span, presented.scheme);
    if (span) {
      span.setAttribute(SPAN_ATTR.kid, result.claims.keyId);
      span.setAttribute(SPAN_ATTR.jti, result.claims.tokenId);
    }
    const unforwardable = unforwardableClaims(result.claims);
    if (unforwardable !== undefined) return deny('MALFORMED', unforwardable, requiredScopes, req, span);
    deps.metrics?.countVerifyOutcome('valid');
    if (sampleAccepted()) {
      deps.logger.info({ sampled: sampleEvery, sub: result.claims.subject, jti: result.claims.tokenId, method: req.headers['x-forwarded-method'], uri: req.headers['x-forwarded-uri'] ?? req.headers['x-original-uri'] }, 'forward-auth allowed');
    }
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    for (const [name, value] of Object.entries(claimHeaderValues(result.claims))) headers[name] = headerValue(value);
    return { status: 200, body: '', contentType: 'text/plain', headers };
  };
}

function certificateOf(req: IncomingMessage) {
  const pem = urlEncodedPem(single(req.headers[CLIENT_CERT_HEADER]));
  return pem !== undefined ? { certificate: pem } : undefined;
}
