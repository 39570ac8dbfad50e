import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from '../shared/logger.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import type { Route } from '../http/http-server.js';

/**
 * Worker mode (TA_WORKERS > 1), shared by the authority and the sidecar: the primary forks the
 * workers (node's cluster module hands the connections of one listening port out round-robin),
 * waits until each says it is ready, restarts one that dies (with a back-off, giving up when they
 * keep dying), stops them all on shutdown, and sums their metrics with prom-client's aggregator.
 * What each side runs in its workers and its primary stays in authority-cluster.ts and
 * sidecar-server.ts.
 */

const READY = 'ta-worker-ready';
const METRICS_REQUEST = 'ta-cluster-metrics-request';
const METRICS_REPLY = 'ta-cluster-metrics-reply';

/** Metrics a worker answers the primary's aggregation requests from. */
export function workerMetrics(): Metrics {
  const metrics = createMetrics();
  AggregatorRegistry.setRegistries([metrics.registry]);
  // Constructing one installs the worker's listener that answers the primary's metrics requests.
  new AggregatorRegistry();
  return metrics;
}

/** In a worker: tell the primary this worker serves (details are for its log and tests). */
export function reportWorkerReady(details: Record<string, unknown> = {}): void {
  process.send?.({ type: READY, ...details });
}

/** The id of this worker process, or undefined in the primary or a single process. */
export function workerId(): number | undefined {
  return cluster.isWorker ? cluster.worker?.id : undefined;
}

/** True in a process forked by startWorkerCluster. */
export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/**
 * In a worker: a /metrics route answered with every worker's metrics summed (and the primary's
 * own, if it has any), asked of the primary over IPC, so a worker that serves the HTTP port can
 * answer a scrape for the whole process group.
 */
export function clusterMetricsRouteFromWorker(timeoutMs = 5000): Route {
  let next = 0;
  const pending = new Map<number, (answer: { body: string; contentType: string } | undefined) => void>();
  process.on('message', (msg: { type?: string; id?: number; body?: string; contentType?: string; error?: string }) => {
    if (msg?.type !== METRICS_REPLY || typeof msg.id !== 'number') return;
    const done = pending.get(msg.id);
    pending.delete(msg.id);
    done?.(msg.error === undefined ? { body: msg.body ?? '', contentType: msg.contentType ?? 'text/plain' } : undefined);
  });
  return () => new Promise((resolve) => {
    const id = ++next;
    const timer = setTimeout(() => {
      pending.delete(id);
      resolve({ status: 503, body: 'metrics: the cluster primary did not answer in time\n' });
    }, timeoutMs);
    pending.set(id, (answer) => {
      clearTimeout(timer);
      resolve(answer ? { status: 200, body: answer.body, contentType: answer.contentType } : { status: 503, body: 'metrics: aggregating the workers failed\n' });
    });
    process.send?.({ type: METRICS_REQUEST, id });
  });
}

export interface WorkerClusterOptions {
  workers: number;
  logger: Logger;
  /** Start one worker alone first, then the rest (the authority: the first creates the key set). */
  firstAlone?: boolean;
  /** The primary's own registry, appended to the workers' sum in every answer. */
  ownMetrics?: Metrics;
}

export interface WorkerCluster {
  /** What the first worker said when it was ready (e.g. its ports). */
  readonly firstReady: Record<string, unknown>;
  /** Workers that said they are ready (for relaying signals). */
  readyWorkers(): Worker[];
  /** Every worker's metrics summed, then the primary's own. */
  metrics(): Promise<{ body: string; contentType: string }>;
  /** SIGTERM every worker and wait for all to exit; dead ones are not restarted from here on. */
  stop(): Promise<void>;
}

/**
 * In the primary: fork `workers` processes (they run the same entry point with cluster.isWorker
 * true), resolve once all are ready, reject if one exits during start-up. Afterwards a worker
 * that dies is replaced; more than 10 × workers deaths within a minute end the primary.
 */
export async function startWorkerCluster(options: WorkerClusterOptions): Promise<WorkerCluster> {
  const { workers, logger } = options;
  const aggregator = new AggregatorRegistry();
  const metrics = async () => {
    const [all, own] = await Promise.all([aggregator.clusterMetrics(), options.ownMetrics?.registry.metrics() ?? '']);
    return { body: own ? `${all}\n${own}` : all, contentType: aggregator.contentType };
  };

  let stopping = false;
  const ready = new Set<number>();
  let firstReady: Record<string, unknown> = {};
  const fork = (): Worker => cluster.fork({ TA_CLUSTER_WORKER: '1' });
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const waitReady = (n: number) => new Promise<void>((resolve) => (ready.size >= n ? resolve() : waiters.push({ n, resolve })));
  const onMessage = (worker: Worker, msg: { type?: string; id?: number }) => {
    if (msg?.type === READY) {
      if (ready.size === 0) firstReady = { ...msg, type: undefined };
      ready.add(worker.id);
      for (const w of waiters.splice(0)) (ready.size >= w.n ? w.resolve() : waiters.push(w));
    } else if (msg?.type === METRICS_REQUEST && typeof msg.id === 'number') {
      const id = msg.id;
      metrics().then(
        (m) => worker.isConnected() && worker.send({ type: METRICS_REPLY, id, body: m.body, contentType: m.contentType }),
        (err: Error) => {
          logger.warn({ err }, 'aggregating worker metrics failed');
          if (worker.isConnected()) worker.send({ type: METRICS_REPLY, id, error: err.message });
        },
      );
    }
  };
  cluster.on('message', onMessage);

  const restarts: number[] = [];
  let started = false;
  let failStartup!: (err: Error) => void;
  const startupFailure = new Promise<never>((_, reject) => (failStartup = reject));
  startupFailure.catch(() => undefined);
  const onExit = (worker: Worker, code: number, signal: string | null) => {
    ready.delete(worker.id);
    if (stopping) return;
    if (!started) {
      failStartup(new Error(`worker ${worker.id} exited (${signal ?? code}) during start-up; see its log above`));
      return;
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts.length > 0 && restarts[0]! < now - 60_000) restarts.shift();
    logger.error({ worker: worker.id, code, signal, restartsLastMinute: restarts.length }, 'worker died; starting a new one');
    if (restarts.length > 10 * workers) {
      logger.error('workers keep dying; giving up');
      process.exit(1);
    }
    setTimeout(() => {
      if (!stopping) fork();
    }, Math.min(5000, 100 * restarts.length)).unref();
  };
  cluster.on('exit', onExit);

  const first = options.firstAlone ? 1 : workers;
  for (let i = 0; i < first; i++) fork();
  await Promise.race([waitReady(first), startupFailure]);
  for (let i = first; i < workers; i++) fork();
  await Promise.race([waitReady(workers), startupFailure]);
  started = true;

  return {
    firstReady,
    readyWorkers: () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && ready.has(w.id)),
    metrics,
    async stop() {
      stopping = true;
      logger.info('shutting down workers');
      const exits = Object.values(cluster.workers ?? {}).map(
        (w) => new Promise<void>((resolve) => {
          if (!w || w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
        }),
      );
      await Promise.all(exits);
      cluster.off('message', onMessage);
      cluster.off('exit', onExit);
    },
  };
}
