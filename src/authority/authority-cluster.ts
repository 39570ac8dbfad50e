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
import { isClusterWorker, reportWorkerReady, startWorkerCluster, workerId, workerMetrics, type WorkerCluster } from '../grpc/worker-cluster.js';

/**
 * Multi-core mode (TA_WORKERS > 1; forking, restarts and the metrics sum are
 * src/grpc/worker-cluster.ts, shared with the sidecar). Workers each run the gRPC server on one shared port (node's
 * cluster module hands connections out round-robin); every worker has its own verifier fed by the
 * Redis feed, and they share keys through the key store (rotation is compare-and-set, so exactly
 * one wins). The primary does what must happen once: HTTP (JWKS, discovery, health, metrics
 * aggregated over the workers), heartbeats on the feed, and restarting a worker that dies.
 */
export async function runAuthority(config: Readonly<Config>, logger: Logger): Promise<{ stop(): Promise<void> }> {
  if (config.workers <= 1) return startAuthority(config, logger);
  return isClusterWorker() ? startWorker(config, logger) : startPrimary(config, logger);
}

async function startWorker(config: Readonly<Config>, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const metrics = workerMetrics();
  const running = await startAuthority(config, logger.child({ worker: workerId() }), { role: 'worker', metrics });
  reportWorkerReady({ grpcPort: running.grpcPort });
  return running;
}

async function startPrimary(config: Readonly<Config>, logger: Logger): Promise<{ stop(): Promise<void> }> {
  logger.info({ workers: config.workers }, 'starting authority cluster');
  // The primary's key manager only reads (rotation happens in workers, by schedule or CLI): it
  // serves the JWKS and reloads the key store to follow rotations.
  const keys = await createKeyManager(config, logger, 'follow');
  const store = createTokenStore(config, systemClock, logger);
  const ownMetrics: Metrics = createMetrics();

  // From the start, so a hangup during start-up does not end the primary either. A worker still
  // starting reads the policy file itself; only ready ones are signalled.
  let workers: WorkerCluster | undefined;
  const stopHangupRelay = relayHangupToWorkers(config, () => workers?.readyWorkers() ?? [], logger);
  // Workers first: they create or repair the key set (the first one alone, so no two workers race
  // to create it); then the primary reads it.
  workers = await startWorkerCluster({ workers: config.workers, logger, firstAlone: true, ownMetrics });
  const cluster = workers;
  const metricsRoute = (): Route => async () => ({ status: 200, ...(await cluster.metrics()) });

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
      stopHangupRelay();
      await cluster.stop();
      heartbeat.stop();
      await http.stop();
      await keys.stop();
      await store.close();
      await tracing?.shutdown();
      logger.info('shutdown complete');
    },
  };
}
