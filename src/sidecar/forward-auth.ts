import type { IncomingMessage } from 'node:http';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { SPAN_ATTR, type SpanAttributes } from '../telemetry/tracing.js';
import type { Verifier } from '../verifier/create-verifier.js';
import { bearerToken } from '../verifier/bearer-token.js';
import type { HttpAnswer, Route } from '../http/http-server.js';
import { DEFAULT_ACCESS_LOG_SAMPLE, sampler } from '../grpc/unary.js';
import { claimHeaderValues, httpDenial, unforwardableClaims, type DenialReason } from './authz-answer.js';

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

/**
 * Forward-auth: the proxy sends the original request's headers (any method, any path below
 * `/authz`); the answer is 200 with the `x-auth-*` claim headers, or the denial of
 * {@link httpDenial}. The audience and required scopes come from the query (`audience`,
 * `required_scopes`), else the sidecar's defaults. The original method and URI arrive as
 * `X-Forwarded-Method` and `X-Forwarded-Uri` (Caddy, Traefik) or `X-Original-URI` (nginx); they are
 * logged with the verdict. Same verifier, cache and outcome counters as Verify and Check, and the
 * same logging policy: every denial logged, accepted calls 1 in `accessLogSample` (TA_ACCESS_LOG_SAMPLE).
 */
export function forwardAuthRoute(verifier: Verifier, deps: { metrics?: Metrics; logger: Logger; accessLogSample?: number }): Route {
  const sampleEvery = deps.accessLogSample ?? DEFAULT_ACCESS_LOG_SAMPLE;
  const sampleAccepted = sampler(sampleEvery);
  const deny = (reason: DenialReason, detail: string, scopes: readonly string[], req: IncomingMessage, span: SpanAttributes | undefined): HttpAnswer => {
    deps.metrics?.countVerifyOutcome(reason);
    span?.setAttribute(SPAN_ATTR.reason, reason);
    const d = httpDenial(reason, detail, scopes);
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
    const token = bearerToken(req.headers.authorization);
    if (!token) return deny('MISSING_TOKEN', 'no bearer token in the authorization header', requiredScopes, req, span);
    const result = await verifier.verify(token, { ...(audiences[0] ? { audience: audiences[0] } : {}), requiredScopes });
    if (!result.valid) return deny(result.reason, result.detail, requiredScopes, req, span);
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
