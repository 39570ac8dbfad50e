import { status, type handleUnaryCall, type Metadata, type ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '../shared/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { callerOf, type Caller } from './caller.js';
import type { RateLimiter } from './rate-limiter.js';
import { toServiceError } from './status-map.js';

/** What a handler learns about its call, and where it adds fields to the access line. */
export interface CallContext {
  readonly method: string;
  readonly metadata: Metadata;
  readonly caller: Caller;
  /** Fields for this call's access line (sub, jti, kid, sid, seq…). Never a token. */
  readonly log: Record<string, unknown>;
}

export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Res | Promise<Res>;

export interface UnaryDeps {
  logger: Logger;
  metrics?: Metrics;
  /** Tracks calls in flight, so shutdown can wait for them. */
  inflight?: InflightTracker;
  /** Per-caller limits, checked before the handler runs (RESOURCE_EXHAUSTED when over). */
  rateLimiter?: RateLimiter;
}

/**
 * Adapt a plain async handler to grpc-js: errors become statuses through the one status map, each
 * call writes one access line and one latency sample.
 */
export function unary<Req, Res>(method: string, deps: UnaryDeps, handler: UnaryHandler<Req, Res>): handleUnaryCall<Req, Res> {
  const { logger, metrics, inflight, rateLimiter } = deps;
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
  const limiter = rateLimiter?.applies(method) ? rateLimiter : undefined;
  const refused = limiter && metrics ? metrics.rateLimitRefusals.labels(method) : undefined;
  refused?.inc(0); // present at 0 on /metrics, so a dashboard and alerts see the series
  return (call: ServerUnaryCall<Req, Res>, callback) => {
    const started = performance.now();
    let caller: Caller | undefined;
    const ctx: CallContext = {
      method,
      metadata: call.metadata,
      get caller() {
        return (caller ??= callerOf(call));
      },
      log: {},
    };
    inflight?.enter();
    const finish = (code: status, err?: unknown) => {
      const ms = performance.now() - started;
      histogram?.observe(ms / 1000);
      counter(code)?.inc();
      if (accessLog) logger.info({ method, code: status[code], ms: Math.round(ms * 1000) / 1000, peer: ctx.caller.peer, ...ctx.log, ...(err ? { error: errText(err) } : {}) }, 'rpc');
      inflight?.leave();
    };
    let result: Res | Promise<Res>;
    try {
      if (limiter) {
        try {
          limiter.check(method, ctx.caller);
        } catch (err) {
          refused?.inc();
          throw err;
        }
      }
      result = handler(call.request, ctx);
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

function errText(err: unknown): string {
  return typeof err === 'string' ? err : err instanceof Error ? err.message : String(err);
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
