import { fileURLToPath } from 'node:url';
import { Server, ServerCredentials, status, type handleUnaryCall, type Metadata, type ServerUnaryCall, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ListenAddress } from '../config/config.js';
import { DEFAULTS } from '../shared/defaults.js';
import { errorMessage, invalidArgument } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { SpanAttributes, Tracing } from '../telemetry/tracing.js';
import { callerOf, type Caller } from './caller.js';
import type { RateLimiter } from './rate-limiter.js';
import { toServiceError } from './status-map.js';

/**
 * The gRPC server and how every call runs through it, in one place: `GrpcServer` (the services
 * with health and reflection, request decoding that never throws, shutdown) and `unary`, the
 * wrapper of every handler (undecodable requests and thrown errors become statuses through the one
 * status map, the rate limit, the access line, metrics, the span, the count of calls in flight).
 */

/** The repository's proto/ folder (shipped with the package), for server reflection. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../proto/', import.meta.url));

export interface GrpcServiceRegistration {
  /** Fully qualified service name, e.g. tokenauthority.v1.TokenAuthorityService. */
  name: string;
  /** Every method implemented with `unary` (an undecodable request reaches it as INVALID_ARGUMENT). */
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

export interface GrpcServerOptions {
  address: ListenAddress;
  credentials: ServerCredentials;
  services: GrpcServiceRegistration[];
  /** .proto files (relative to PROTO_ROOT) that describe the services, for reflection. */
  protoFiles: string[];
  logger: Logger;
  maxReceiveMessageBytes?: number;
  /** grpc-js channel options (keepalive etc.). */
  channelOptions?: Record<string, number | string>;
}

/**
 * A grpc-js server with the standard health service and server reflection, so grpcurl and ghz work
 * without the .proto files.
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly health: HealthImplementation;
  private boundPort = 0;

  constructor(private readonly opts: GrpcServerOptions) {
    this.server = new Server({
      'grpc.max_receive_message_length': opts.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
      // No channelz service is served, so its per-call bookkeeping would be pure cost.
      'grpc.enable_channelz': 0,
      ...opts.channelOptions,
    });
    const statuses: Record<string, 'SERVING' | 'NOT_SERVING'> = { '': 'NOT_SERVING' };
    for (const s of opts.services) {
      this.server.addService(withTolerantDecoding(s.definition), s.implementation);
      statuses[s.name] = 'NOT_SERVING';
    }
    this.health = new HealthImplementation(statuses);
    this.health.addToServer(this.server);
    const pkg = loadSync([...opts.protoFiles, healthProtoPath], {
      includeDirs: [PROTO_ROOT],
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    new ReflectionService(pkg).addToServer(this.server);
  }

  /** Bind and start serving; resolves to the bound port (useful with port 0). */
  async start(): Promise<number> {
    const { host, port } = this.opts.address;
    const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(target, this.opts.credentials, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.setServing(true);
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  setServing(serving: boolean): void {
    const s = serving ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', s);
    for (const svc of this.opts.services) this.health.setStatus(svc.name, s);
  }

  /**
   * Stop accepting calls, let in-flight calls finish, and force-close whatever is left after
   * `graceMs`.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.setServing(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.opts.logger.warn({ graceMs }, 'shutdown grace period over: cancelling calls still in flight');
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}


/* ---- Every call: the unary wrapper ---- */

/** What a handler learns about its call, and where it adds fields to the access line. */
export interface CallContext {
  readonly method: string;
  readonly metadata: Metadata;
  readonly caller: Caller;
  /** Fields for this call's access line (sub, jti, kid, sid, seq…). Never a token. */
  readonly log: Record<string, unknown>;
  /** Aborted when the call is cancelled by the client or its deadline passes. */
  readonly signal: AbortSignal;
  /** The call's deadline, ms since the epoch; undefined when it has none. */
  readonly deadlineMs: number | undefined;
  /**
   * The call's span while tracing is on (else undefined), for outcome attributes the access line
   * does not carry (Verify's kid and jti). Never a token. Fields of `log` listed in
   * telemetry/tracing.ts SPAN_FIELDS are copied onto it when the call ends.
   */
  readonly span: SpanAttributes | undefined;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Res | Promise<Res>;

export interface UnaryDeps {
  logger: Logger;
  metrics?: Metrics;
  /** Tracks calls in flight, so shutdown can wait for them. */
  inflight?: InflightTracker;
  /** Per-caller limits, checked before the handler runs (RESOURCE_EXHAUSTED when over). */
  rateLimiter?: RateLimiter;
  /**
   * TA_ACCESS_LOG_SAMPLE: accepted calls of the verification methods ({@link SAMPLED_METHODS}) get
   * an access line 1 in N (0 = none, 1 = every call). Default {@link DEFAULT_ACCESS_LOG_SAMPLE}.
   */
  accessLogSample?: number;
  /** OpenTelemetry tracing; undefined (off) costs each call one check. */
  tracing?: Tracing;
}

/**
 * The access-logging policy. Every call of every method is counted and timed in the metrics.
 * Access lines (info): every Issue, Refresh, Revoke and other call, every denial (a Verify answering
 * valid=false, a Check denying: the handler sets `ctx.log.reason`) and every error status; accepted
 * calls of the verification methods, which run at the full request rate of the services behind
 * them, only 1 in TA_ACCESS_LOG_SAMPLE, each such line carrying `sampled: N`.
 */
export const SAMPLED_METHODS: ReadonlySet<string> = new Set(['Verify', 'Check']);
export const DEFAULT_ACCESS_LOG_SAMPLE = DEFAULTS.accessLogSample;

/** 1-in-N sampling: true on the Nth, 2Nth … call; never with N = 0, always with N = 1. */
export function sampler(n: number): () => boolean {
  if (n <= 0) return () => false;
  if (n === 1) return () => true;
  let seen = 0;
  return () => {
    if (++seen < n) return false;
    seen = 0;
    return true;
  };
}

/**
 * Adapt a plain async handler to grpc-js: errors become statuses through the one status map, each
 * call records one latency sample and writes one access line, or for accepted verification calls
 * one in TA_ACCESS_LOG_SAMPLE (see {@link SAMPLED_METHODS}).
 */
export function unary<Req, Res>(method: string, deps: UnaryDeps, handler: UnaryHandler<Req, Res>): handleUnaryCall<Req, Res> {
  const { logger, metrics, inflight, rateLimiter, tracing } = deps;
  const histogram = metrics?.rpcSeconds.labels(method);
  // Hot path: label children resolved once per status code, and no access-line object is built
  // when info logging is off (the level is fixed for the life of the process).
  const counters = new Map<status, { inc(): void }>();
  const counter = (code: status) => {
    let c = counters.get(code);
    if (!c && metrics) counters.set(code, (c = metrics.rpcTotal.labels(method, status[code] ?? String(code))));
    return c;
  };
  const accessLog = logger.isLevelEnabled?.('info') ?? true;
  const sampleEvery = deps.accessLogSample ?? DEFAULT_ACCESS_LOG_SAMPLE;
  // Accepted calls of the verification methods: 1 in N; everything else always.
  const sampleAccepted = SAMPLED_METHODS.has(method) && sampleEvery !== 1 ? sampler(sampleEvery) : undefined;
  const limiter = rateLimiter?.applies(method) ? rateLimiter : undefined;
  const refused = limiter && metrics ? metrics.rateLimitRefusals.labels(method) : undefined;
  refused?.inc(0); // present at 0 on /metrics, so a dashboard and alerts see the series
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const started = performance.now();
    let caller: Caller | undefined;
    let cancel: AbortController | undefined;
    const traced = tracing?.startRpc(call.getPath(), call.metadata);
    const ctx: CallContext = {
      method,
      metadata: call.metadata,
      get caller() {
        return (caller ??= callerOf(call));
      },
      log: {},
      // Built only for the handlers that ask (long waits), so other calls pay nothing.
      get signal() {
        if (!cancel) {
          const c = (cancel = new AbortController());
          if (call.cancelled) c.abort();
          else call.once('cancelled', () => c.abort());
        }
        return cancel.signal;
      },
      get deadlineMs() {
        const d = call.getDeadline();
        const ms = d instanceof Date ? d.getTime() : d;
        return Number.isFinite(ms) ? ms : undefined;
      },
      span: traced?.span,
    };
    inflight?.enter();
    const finish = (code: status, err?: unknown) => {
      const ms = performance.now() - started;
      histogram?.observe(ms / 1000);
      counter(code)?.inc();
      if (accessLog) {
        const accepted = sampleAccepted !== undefined && code === status.OK && ctx.log.reason === undefined;
        if (!accepted || sampleAccepted()) {
          logger.info({ method, code: status[code], ms: Math.round(ms * 1000) / 1000, peer: ctx.caller.peer, ...ctx.log, ...(accepted ? { sampled: sampleEvery } : {}), ...(err ? { error: errorMessage(err) } : {}) }, 'rpc');
        }
      }
      if (traced) traced.endRpc(code, ctx.log, err === undefined ? undefined : errorMessage(err));
      inflight?.leave();
    };
    let result: Res | Promise<Res>;
    try {
      if ((call.request as unknown) instanceof UndecodableRequest) throw (call.request as unknown as UndecodableRequest).error(method);
      if (limiter) {
        try {
          limiter.check(method, ctx.caller);
        } catch (err) {
          refused?.inc();
          throw err;
        }
      }
      result = traced ? traced.run(() => handler(call.request, ctx)) : handler(call.request, ctx);
    } catch (err) {
      const e = toServiceError(err, logger, method);
      finish(e.code!, e.details);
      callback(e, null);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (res) => {
          finish(status.OK);
          callback(null, res);
        },
        (err) => {
          const e = toServiceError(err, logger, method);
          finish(e.code!, e.details);
          callback(e, null);
        },
      );
    } else {
      finish(status.OK);
      callback(null, result);
    }
  };
}

/**
 * What a request deserializer returns instead of throwing. grpc-js answers a throwing deserializer
 * itself, with INTERNAL "Error deserializing request", before any handler (or metric) sees the
 * call; this stand-in reaches the unary wrapper, which answers INVALID_ARGUMENT and counts it.
 */
export class UndecodableRequest {
  constructor(private readonly cause: unknown) {}
  error(method: string) {
    const why = errorMessage(this.cause);
    // ts-proto (forceLong=number) refuses a 64-bit integer it cannot hold exactly.
    const detail = /MAX_SAFE_INTEGER|MIN_SAFE_INTEGER/.test(why)
      ? `an integer field is outside ±(2^53 - 1) = ±${Number.MAX_SAFE_INTEGER}, the range this service accepts`
      : why;
    return invalidArgument(`${method} request is not a valid protobuf message: ${detail}`);
  }
}

/**
 * The service definition with request deserializers that never throw (see UndecodableRequest).
 * Only for services whose every method is implemented with `unary`.
 */
export function withTolerantDecoding(definition: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return new UndecodableRequest(err);
        }
      },
    };
  }
  return out as ServiceDefinition;
}

/** Counts calls in flight; `idle()` resolves when none are. */
export class InflightTracker {
  private count = 0;
  private waiters: Array<() => void> = [];
  enter(): void {
    this.count++;
  }
  leave(): void {
    this.count--;
    if (this.count === 0) for (const w of this.waiters.splice(0)) w();
  }
  get size(): number {
    return this.count;
  }
  idle(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

export { ServerCredentials };
