import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics of one process. Created once in the entry point and passed down; tests make
 * their own so parallel servers do not share counters.
 */
export interface Metrics {
  readonly registry: Registry;
  readonly rpcTotal: Counter<'method' | 'code'>;
  readonly rpcSeconds: Histogram<'method'>;
  readonly verifyOutcomes: Counter<'outcome'>;
  /** Calls refused by the per-caller rate limiter (RESOURCE_EXHAUSTED), by method. */
  readonly rateLimitRefusals: Counter<'method'>;
  /** Count one Verify answer ('valid' or the reason); label children are resolved once. */
  countVerifyOutcome(outcome: string): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'ta_process_' });
  const verifyOutcomes = new Counter({
    name: 'ta_verify_outcomes_total',
    help: 'Verify answers by outcome: valid, or the rejection reason.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const outcomeChildren = new Map<string, { inc(): void }>();
  return {
    registry,
    verifyOutcomes,
    countVerifyOutcome(outcome) {
      let child = outcomeChildren.get(outcome);
      if (!child) outcomeChildren.set(outcome, (child = verifyOutcomes.labels(outcome)));
      child.inc();
    },
    rateLimitRefusals: new Counter({
      name: 'ta_rate_limit_refusals_total',
      help: 'Calls refused by the per-caller rate limit (RESOURCE_EXHAUSTED), by method.',
      labelNames: ['method'],
      registers: [registry],
    }),
    rpcTotal: new Counter({
      name: 'ta_grpc_requests_total',
      help: 'gRPC calls handled, by method and status code.',
      labelNames: ['method', 'code'],
      registers: [registry],
    }),
    rpcSeconds: new Histogram({
      name: 'ta_grpc_request_duration_seconds',
      help: 'gRPC call latency by method.',
      labelNames: ['method'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}

/**
 * Register a gauge whose value is read at scrape time (a promise is awaited by the scrape).
 * `aggregator`: how the TA_WORKERS>1 primary combines the workers' values (default: sum).
 */
export function gauge(metrics: Metrics, name: string, help: string, read: () => number | Promise<number>, aggregator?: 'min' | 'max'): void {
  new Gauge({
    name,
    help,
    registers: [metrics.registry],
    ...(aggregator ? { aggregator } : {}),
    collect() {
      const value = read();
      if (typeof value === 'number') this.set(value);
      else return value.then((v) => this.set(v));
    },
  });
}

/** Register an unlabelled counter (shown at 0 from the start); returns its increment. */
export function counter(metrics: Metrics, name: string, help: string): () => void {
  const c = new Counter({ name, help, registers: [metrics.registry] });
  return () => c.inc();
}

/** Register a labelled gauge whose values are read at scrape time. */
export function labelledGauge<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Array<{ labels: Record<L, string>; value: number }>,
): void {
  new Gauge({
    name,
    help,
    labelNames: labelNames as L[],
    registers: [metrics.registry],
    collect() {
      this.reset();
      for (const { labels, value } of read()) this.set(labels as never, value);
    },
  });
}
