import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config/config.js';
import type { Logger } from '../shared/logger.js';
import { createMetrics, type Metrics } from '../telemetry/metrics.js';
import { createTracing } from '../telemetry/create-tracing.js';
import { HttpServer, type Route } from '../http/http-server.js';
import { systemClock } from '../shared/clock.js';
import { authorityHttpRoutes } from './authority-http.js';
import { authorityHttpsOptions } from './http-caller.js';
import { createKeyManager } from './create-key-store.js';
import { relayHangupToWorkers } from './caller-security.js';
import { createTokenStore, startAuthority, startHeartbeat } from './authority-server.js';

/**
 * Multi-core mode (TA_WORKERS > 1). Workers each run the gRPC server on one shared port (node's
 * cluster module hands connections out round-robin); every worker has its own verifier fed by the
 * Redis feed, and they share keys through the key store (rotation is compare-and-set, so exactly
 * one wins). The primary does what must happen once: HTTP (JWKS, discovery, health, metrics
 * aggregated over the workers), heartbeats on the feed, and restarting a worker that dies.
 */
export async function runAuthority(config: Readonly<Config>, logger: Logger): Promise<{ stop(): Promise<void> }> {
  if (config.workers <= 1) return startAuthority(config, logger);
  if (cluster.isPrimary) return startPrimary(config, logger);
  return startWorker(config, logger);
}

async function startWorker(config: Readonly<Config>, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const metrics = createMetrics();
  AggregatorRegistry.setRegistries([metrics.registry]);
  // Constructing one installs the worker's listener that answers the primary's metrics requests.
  new AggregatorRegistry();
  const running = await startAuthority(config, logger.child({ worker: cluster.worker?.id }), { role: 'worker', metrics });
  process.send?.({ type: 'ta-worker-ready', grpcPort: running.grpcPort });
  return running;
}

async function startPrimary(config: Readonly<Config>, logger: Logger): Promise<{ stop(): Promise<void> }> {
  logger.info({ workers: config.workers }, 'starting authority cluster');
  // The primary's key manager only reads (rotation happens in workers, by schedule or CLI): it
  // serves the JWKS and reloads the key store to follow rotations.
  const keys = await createKeyManager(config, logger, 'follow');
  const store = createTokenStore(config, systemClock, logger);
  const ownMetrics: Metrics = createMetrics();
  const aggregator = new AggregatorRegistry();
  const metricsRoute = (): Route => async () => {
    const [workers, own] = await Promise.all([aggregator.clusterMetrics(), ownMetrics.registry.metrics()]);
    return { status: 200, body: `${workers}\n${own}`, contentType: aggregator.contentType };
  };

  // Workers first: they create or repair the key set; then the primary reads it.
  let stopping = false;
  const ready = new Set<number>();
  const fork = (): Worker => cluster.fork({ TA_CLUSTER_WORKER: '1' });
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const waitReady = (n: number) => new Promise<void>((resolve) => (ready.size >= n ? resolve() : waiters.push({ n, resolve })));
  cluster.on('message', (worker, msg: { type?: string }) => {
    if (msg?.type !== 'ta-worker-ready') return;
    ready.add(worker.id);
    for (const w of waiters.splice(0)) (ready.size >= w.n ? w.resolve() : waiters.push(w));
  });
  // From the start, so a hangup during start-up does not end the primary either. A worker still
  // starting reads the policy file itself; only ready ones are signalled.
  const stopHangupRelay = relayHangupToWorkers(config, () => Object.values(cluster.workers ?? {}).filter((w) => w !== undefined && ready.has(w.id)), logger);
  const restarts: number[] = [];
  let started = false;
  let failStartup!: (err: Error) => void;
  const startupFailure = new Promise<never>((_, reject) => (failStartup = reject));
  startupFailure.catch(() => undefined);
  cluster.on('exit', (worker, code, signal) => {
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
    if (restarts.length > 10 * config.workers) {
      logger.error('workers keep dying; giving up');
      process.exit(1);
    }
    setTimeout(fork, Math.min(5000, 100 * restarts.length)).unref();
  });
  // The first worker initialises the key set alone, so no two workers race to create it.
  fork();
  await Promise.race([waitReady(1), startupFailure]);
  for (let i = 1; i < config.workers; i++) fork();
  await Promise.race([waitReady(config.workers), startupFailure]);
  started = true;

  await keys.start();
  const heartbeat = startHeartbeat(store, config.heartbeatIntervalMs, logger);
  // The OAuth endpoints need a TokenAuthority, which lives in the workers: the primary does not
  // serve them (and its discovery documents do not list them); HTTPS as configured.
  // The workers trace their own calls; the primary its HTTP requests.
  const tracing = await createTracing(config.tracing, { instanceId: `authority-primary-${process.pid}`, logger });
  const http = new HttpServer({ address: config.httpAddr, logger, tracing, tls: authorityHttpsOptions(config), routes: authorityHttpRoutes({ config, keys, store, metrics: metricsRoute }) });
  const httpPort = await http.start();
  logger.info({ workers: config.workers, httpPort, grpc: config.grpcAddr.text }, 'token authority serving');

  return {
    async stop() {
      stopping = true;
      stopHangupRelay();
      logger.info('shutting down workers');
      const exits = Object.values(cluster.workers ?? {}).map(
        (w) => new Promise<void>((resolve) => {
          if (!w || w.isDead()) return resolve();
          w.once('exit', () => resolve());
          w.process.kill('SIGTERM');
        }),
      );
      await Promise.all(exits);
      heartbeat.stop();
      await http.stop();
      await keys.stop();
      await store.close();
      await tracing?.shutdown();
      logger.info('shutdown complete');
    },
  };
}
