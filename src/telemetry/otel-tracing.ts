import type { Metadata } from '@grpc/grpc-js';
import { context, defaultTextMapGetter, diag, DiagLogLevel, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type TextMapGetter } from '@opentelemetry/api';
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
import { setOutcome, TRACING_SHUTDOWN_DEADLINE_MS, UNTRACED_ROUTES, type ServerSpan, type Tracing } from './tracing.js';

/**
 * {@link Tracing} on the OpenTelemetry SDK: this process' own TracerProvider (not the global one, so
 * several servers in one test process export to their own receivers), a batch span processor, the
 * OTLP/HTTP exporter (protobuf or JSON), the W3C trace-context propagator. Only the async context
 * manager, the diag logger and the SDK's error handler are global, as they must be.
 */

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
let globalsInstalled = false;
let diagLogger: Logger | undefined;

export function createOtelTracing(settings: TracingSettings, opts: { instanceId: string; logger: Logger }): Tracing {
  // Export failures and dropped spans reach the SDK's diag logger and error handler (global): they
  // are warnings of this process' logger (one process, one root logger; in a test process with
  // several servers, the latest one's).
  diagLogger = opts.logger.child({ component: 'tracing' });
  if (!globalsInstalled) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    const warn = (message: string, ...args: unknown[]) => diagLogger?.warn(args.length > 0 ? { detail: args.map(String) } : {}, `tracing: ${message}`);
    diag.setLogger({ error: warn, warn, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
    // A failed export (after the exporter's own retries): its spans are gone; say so, once per batch.
    setGlobalErrorHandler((err) => diagLogger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'tracing: could not export spans to the OTLP endpoint; they were dropped'));
    globalsInstalled = true;
  }
  const Exporter = settings.protocol === 'http/json' ? OtlpJsonExporter : OtlpProtobufExporter;
  // Transport details (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, certificates) are the exporter's own reading.
  const exporter = new Exporter({ url: settings.url });
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ ...settings.resourceAttributes, [ATTR_SERVICE_NAME]: settings.serviceName, [ATTR_SERVICE_INSTANCE_ID]: opts.instanceId })),
    sampler: samplerOf(settings),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: settings.scheduledDelayMs, maxQueueSize: settings.maxQueueSize, maxExportBatchSize: settings.maxExportBatchSize })],
  });
  const tracer = provider.getTracer('token-authority');
  opts.logger.info({ url: settings.url, protocol: settings.protocol, serviceName: settings.serviceName, sampler: settings.sampler }, 'tracing on: exporting spans over OTLP/HTTP');

  const server = (name: string, parent: Context, attributes: Attributes): ServerSpan => {
    const span = tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, parent);
    const active = trace.setSpan(parent, span);
    return {
      span,
      run: (fn) => context.with(active, fn),
      endRpc(code, log, detail) {
        span.setAttribute('rpc.grpc.status_code', code);
        span.setAttribute('rpc.status_code', GRPC_CODE_NAMES[code] ?? String(code));
        setOutcome(span, log);
        if (GRPC_SERVER_ERRORS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, ...(detail !== undefined ? { message: detail } : {}) });
        span.end();
      },
      endHttp(status) {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  };
  let stopping: Promise<void> | undefined;
  return {
    startRpc(path, metadata) {
      const name = path.startsWith('/') ? path.slice(1) : path;
      return server(name, propagator.extract(ROOT_CONTEXT, metadata, metadataGetter), {
        [ATTR_RPC_SYSTEM_NAME]: 'grpc',
        'rpc.system': 'grpc',
        'rpc.service': name.slice(0, name.lastIndexOf('/')),
        [ATTR_RPC_METHOD]: name,
      });
    },
    startHttp(req, route, scheme) {
      if (route !== undefined && UNTRACED_ROUTES.has(route)) return undefined;
      const method = req.method ?? 'GET';
      return server(route ? `${method} ${route}` : method, propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter), {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_URL_PATH]: (req.url ?? '/').split('?')[0]!,
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
        if (done === 'late') opts.logger.warn({ deadlineMs }, 'tracing: spans not exported within the shutdown deadline were dropped');
      })();
      return stopping;
    },
  };
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
