import type { IncomingMessage } from 'node:http';
import type { Metadata } from '@grpc/grpc-js';
import { context, defaultTextMapGetter, diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { setGlobalErrorHandler, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import {
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_RPC_METHOD,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { TracingSettings } from '../config/tracing-settings.js';
import type { Logger } from '../shared/logger.js';
import type { CommandTracer } from '../store/command-tracer.js';

/**
 * OpenTelemetry tracing of one process: a SERVER span per gRPC call (src/grpc/unary.ts) and per
 * HTTP request (src/http/http-server.ts), parented by the W3C `traceparent` the caller sent, and a
 * CLIENT child span per token-store Redis operation run inside one. Made only when the OTEL_*
 * settings turn tracing on (config/tracing-settings.ts); otherwise every seam holds `undefined`
 * and pays one check.
 *
 * What a span may carry is decided here, and only here: the outcome fields of {@link SPAN_FIELDS}
 * (verify reason, kid, jti, sid, sequence, grant), the route or RPC method, status codes. Never a
 * token, a refresh token, a request body, a query string, a header value, or a Redis key or
 * argument (refresh keys are HMACs of tokens; they stay out as well).
 */
export interface Tracing {
  /** Starts the span of a gRPC call; `path` is grpc-js' `/package.Service/Method`. */
  startRpc(path: string, metadata: Metadata): ServerSpan;
  /** Starts the span of an HTTP request; `route` is the matched route (undefined: none matched). */
  startHttp(req: IncomingMessage, route: string | undefined, scheme: 'http' | 'https'): ServerSpan;
  /** The token store's hook (RedisTokenStoreOptions.traceCommand). */
  readonly traceCommand: CommandTracer;
  /** Exports what is left, within `deadlineMs`, and stops; later spans are dropped. */
  shutdown(deadlineMs?: number): Promise<void>;
}

/** Where a handler adds outcome attributes to its call's span (only present while tracing is on). */
export interface SpanAttributes {
  setAttribute(key: string, value: string | number | boolean): unknown;
}

/** One request's span and the context its handler runs in (so store calls nest below it). */
export interface ServerSpan {
  readonly span: Span;
  /** Runs `fn` with this span active. */
  run<T>(fn: () => T): T;
}

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

/** Span attribute names of our own outcome fields (exported for handlers that set them directly). */
export const SPAN_ATTR = {
  reason: SPAN_FIELDS.reason!,
  kid: SPAN_FIELDS.kid!,
  jti: SPAN_FIELDS.jti!,
} as const;

/** How long stop() waits for the last export before dropping what is left. */
export const TRACING_SHUTDOWN_DEADLINE_MS = 5000;

/** gRPC codes that are a server error (OpenTelemetry's gRPC conventions); the rest leave the status unset. */
const GRPC_SERVER_ERRORS: ReadonlySet<number> = new Set([2, 4, 12, 13, 14, 15]);
const GRPC_CODE_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

const metadataGetter: TextMapGetter<Metadata> = {
  get(carrier, key) {
    const values = carrier.get(key);
    if (values.length === 0) return undefined;
    return values.length === 1 ? String(values[0]) : values.map(String);
  },
  keys: (carrier) => Object.keys(carrier.getMap()),
};

const propagator = new W3CTraceContextPropagator();
let contextManagerInstalled = false;
let diagInstalled = false;
let diagLogger: Logger | undefined;

/**
 * The tracing of one process from its resolved settings, or undefined when tracing is off. The
 * provider is this process' own (not the global one), so several servers in one test process
 * export to their own receivers; only the async context manager is global, as it must be.
 */
export function createTracing(settings: TracingSettings | undefined, opts: { instanceId: string; logger: Logger }): Tracing | undefined {
  if (!settings) return undefined;
  if (!contextManagerInstalled) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerInstalled = true;
  }
  // Export failures and dropped spans reach the SDK's diag logger (global, like the SDK's error
  // handler): they are warnings of this process' logger (one process, one root logger; in a test
  // process with several servers, the latest one's).
  diagLogger = opts.logger.child({ component: 'tracing' });
  if (!diagInstalled) {
    const warn = (message: string, ...args: unknown[]) => diagLogger?.warn(args.length > 0 ? { detail: args.map(String) } : {}, `tracing: ${message}`);
    diag.setLogger({ error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
    // A failed export (after the exporter's own retries): its spans are gone; say so, once per batch.
    setGlobalErrorHandler((err) => diagLogger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'tracing: could not export spans to the OTLP endpoint; they were dropped'));
    diagInstalled = true;
  }
  const Exporter = settings.protocol === 'http/json' ? OtlpJsonExporter : OtlpProtobufExporter;
  // Transport details (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, certificates) are the exporter's own reading.
  const exporter = new Exporter({ url: settings.url });
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ ...settings.resourceAttributes, [ATTR_SERVICE_NAME]: settings.serviceName, [ATTR_SERVICE_INSTANCE_ID]: opts.instanceId })),
    sampler: samplerOf(settings),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: settings.scheduledDelayMs, maxQueueSize: settings.maxQueueSize, maxExportBatchSize: settings.maxExportBatchSize })],
  });
  opts.logger.info({ url: settings.url, protocol: settings.protocol, serviceName: settings.serviceName, sampler: settings.sampler }, 'tracing on: exporting spans over OTLP/HTTP');
  return tracingOf(provider.getTracer('token-authority'), provider, opts.logger);
}

function tracingOf(tracer: Tracer, provider: TracerProvider, logger: Logger): Tracing {
  const server = (name: string, parent: Context, attributes: Attributes): ServerSpan => {
    const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    const active = trace.setSpan(parent, span);
    return { span, run: (fn) => context.with(active, fn) };
  };
  let stopping: Promise<void> | undefined;
  return {
    startRpc(path, metadata) {
      const name = path.startsWith('/') ? path.slice(1) : path;
      const slash = name.lastIndexOf('/');
      return server(name, propagator.extract(ROOT_CONTEXT, metadata, metadataGetter), {
        [ATTR_RPC_SYSTEM_NAME]: 'grpc',
        'rpc.system': 'grpc',
        'rpc.service': name.slice(0, slash),
        [ATTR_RPC_METHOD]: name,
      });
    },
    startHttp(req, route, scheme) {
      const method = req.method ?? 'GET';
      const path = (req.url ?? '/').split('?')[0]!;
      return server(route ? `${method} ${route}` : method, propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter), {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_URL_PATH]: path,
        [ATTR_URL_SCHEME]: scheme,
        ...(route ? { [ATTR_HTTP_ROUTE]: route } : {}),
      });
    },
    traceCommand(op, run) {
      const parent = context.active();
      // Only below a request's span: heartbeats, receipts and feed reads would be root spans of
      // their own, every second, and say nothing about a request.
      if (trace.getSpan(parent) === undefined) return run();
      const span = tracer.startSpan(`redis ${op}`, { kind: SpanKind.CLIENT, attributes: { [ATTR_DB_SYSTEM_NAME]: 'redis', 'db.system': 'redis', [ATTR_DB_OPERATION_NAME]: op } }, parent);
      return run().then(
        (value) => {
          span.end();
          return value;
        },
        (err: unknown) => {
          // The store's messages name the operation and the client's reason, never arguments.
          span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
          span.end();
          throw err;
        },
      );
    },
    shutdown(deadlineMs = TRACING_SHUTDOWN_DEADLINE_MS) {
      stopping ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), deadlineMs)));
        const done = await Promise.race([provider.shutdown().then(() => 'done' as const, () => 'done' as const), late]);
        clearTimeout(timer);
        if (done === 'late') logger.warn({ deadlineMs }, 'tracing: spans not exported within the shutdown deadline were dropped');
      })();
      return stopping;
    },
  };
}

/** Ends a gRPC call's span: status code, the call's outcome fields, error status for server errors. */
export function endRpcSpan(span: Span, code: number, log: Readonly<Record<string, unknown>>, detail?: string): void {
  span.setAttribute('rpc.grpc.status_code', code);
  span.setAttribute('rpc.status_code', GRPC_CODE_NAMES[code] ?? String(code));
  setOutcome(span, log);
  if (GRPC_SERVER_ERRORS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, ...(detail !== undefined ? { message: detail } : {}) });
  span.end();
}

/** Ends an HTTP request's span: status code, outcome fields the route set, error status for 5xx. */
export function endHttpSpan(span: Span, status: number): void {
  span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
  if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** Copies the access-line fields of {@link SPAN_FIELDS} onto a span (only those; never `sub`, never a token). */
export function setOutcome(span: SpanAttributes, log: Readonly<Record<string, unknown>>): void {
  for (const field in SPAN_FIELDS) {
    const value = log[field];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') span.setAttribute(SPAN_FIELDS[field]!, value);
  }
}

function samplerOf(s: TracingSettings): Sampler {
  const ratio = () => new TraceIdRatioBasedSampler(s.samplerRatio);
  switch (s.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}
