import type { IncomingMessage } from 'node:http';
import type { Metadata } from '@grpc/grpc-js';
import type { CommandTracer } from '../store/command-tracer.js';

/**
 * OpenTelemetry tracing of one process, as the servers see it: a SERVER span per gRPC call
 * (`unary` in src/grpc/server.ts) and per HTTP request (src/http/http-server.ts), parented by the W3C
 * `traceparent` the caller sent, and a CLIENT child span per token-store Redis operation run inside
 * one. Made by create-tracing.ts only when the OTEL_* settings turn tracing on; otherwise every
 * seam holds `undefined` and pays one check. This file loads no OpenTelemetry code: the SDK
 * (otel-tracing.ts) is imported only when tracing is on.
 *
 * What a span may carry is decided here and in otel-tracing.ts, and only there: the outcome fields
 * of {@link SPAN_FIELDS} (verify reason, kid, jti, sid, sequence, grant), the route or RPC method,
 * status codes. Never a token, a refresh token, a request body, a query string, a header value, or
 * a Redis key or argument (refresh keys are HMACs of tokens; they stay out as well), nor `sub`.
 */
export interface Tracing {
  /** Starts the span of a gRPC call; `path` is grpc-js' `/package.Service/Method`. */
  startRpc(path: string, metadata: Metadata): ServerSpan;
  /**
   * Starts the span of an HTTP request; `route` is the matched route (undefined: none matched).
   * Undefined for the routes of {@link UNTRACED_ROUTES}.
   */
  startHttp(req: IncomingMessage, route: string | undefined, scheme: 'http' | 'https'): ServerSpan | undefined;
  /** The token store's hook (RedisTokenStoreOptions.traceCommand). */
  readonly traceCommand: CommandTracer;
  /** Exports what is left, within `deadlineMs` (default {@link TRACING_SHUTDOWN_DEADLINE_MS}), and stops. */
  shutdown(deadlineMs?: number): Promise<void>;
}

/** Where a handler adds outcome attributes to its request's span (present only while tracing is on). */
export interface SpanAttributes {
  setAttribute(key: string, value: string | number | boolean): unknown;
}

/** One request's span. */
export interface ServerSpan {
  readonly span: SpanAttributes;
  /** Runs `fn` with this span active, so store calls made inside it nest below it. */
  run<T>(fn: () => T): T;
  /** Ends a gRPC call's span: its status code, the access-line fields of {@link SPAN_FIELDS}, an error status for server errors. */
  endRpc(code: number, log: Readonly<Record<string, unknown>>, detail?: string): void;
  /** Ends an HTTP request's span: its status code, an error status for 5xx. */
  endHttp(status: number): void;
}

/**
 * HTTP routes without spans: Prometheus scrapes and liveness/readiness probes arrive every few
 * seconds from infrastructure, and each would be a trace of its own that says nothing about a request.
 */
export const UNTRACED_ROUTES: ReadonlySet<string> = new Set(['/metrics', '/healthz']);

/** How long stop() waits for the last export before dropping what is left. */
export const TRACING_SHUTDOWN_DEADLINE_MS = 5000;

/** Access-line fields (CallContext.log, the OAuth endpoints' log) that become span attributes. */
export const SPAN_FIELDS: Readonly<Record<string, string>> = {
  reason: 'token_authority.verify.reason',
  kid: 'token_authority.kid',
  jti: 'token_authority.jti',
  sid: 'token_authority.sid',
  seq: 'token_authority.revocation.sequence',
  reuse: 'token_authority.refresh.reuse',
  grant: 'token_authority.oauth.grant_type',
};

/** Attribute names for handlers that set outcome fields on the span directly. */
export const SPAN_ATTR = {
  reason: SPAN_FIELDS.reason!,
  kid: SPAN_FIELDS.kid!,
  jti: SPAN_FIELDS.jti!,
} as const;

/** Copies the access-line fields of {@link SPAN_FIELDS} onto a span (only those: never `sub`, never a token). */
export function setOutcome(span: SpanAttributes, log: Readonly<Record<string, unknown>>): void {
  for (const field in SPAN_FIELDS) {
    const value = log[field];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') span.setAttribute(SPAN_FIELDS[field]!, value);
  }
}
