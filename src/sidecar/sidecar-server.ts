import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { SidecarConfig } from '../config/config.js';
import { revocationRetentionMs } from '../config/derived-settings.js';
import { redactUrl } from '../shared/redact-url.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { createMetrics, gauge, type Metrics } from '../telemetry/metrics.js';
import { registerRedisMetrics } from '../telemetry/redis-metrics.js';
import { GrpcServer, InflightTracker } from '../grpc/server.js';
import { registerVerifierGauges } from '../telemetry/verifier-gauges.js';
import { createTracing } from '../telemetry/create-tracing.js';
import { RedisTokenStore } from '../store/redis-token-store.js';
import { createRedisDpopReplayCache, type RedisDpopReplayCache } from '../store/redis-dpop-replay.js';
import type { TokenStore } from '../store/token-store.js';
import { createInternalVerifier, DEFAULT_MAX_TOKEN_LIFETIME_MS, type InternalVerifier } from '../verifier/create-verifier.js';
import { createRemoteKeyResolver, type RemoteKeyResolver } from '../verifier/key-resolvers.js';
import { serverCredentials } from '../grpc/credentials.js';
import { transportLimits } from '../grpc/transport-limits.js';
import { HttpServer, healthRoute, metricsRoute, type Route } from '../http/http-server.js';
import { clusterMetricsRouteFromWorker, isClusterWorker, reportWorkerReady, startWorkerCluster, workerId, workerMetrics } from '../grpc/worker-cluster.js';
import { createExtAuthzService } from './ext-authz.js';
import { createSidecarService } from './sidecar-service.js';
import { FORWARD_AUTH_PATH, forwardAuthRoute } from './forward-auth.js';

export interface SidecarOverrides {
  clock?: Clock;
  metrics?: Metrics;
  /** A revocation source other than Redis at TA_REDIS_URL (tests). */
  store?: TokenStore;
  /** The /metrics route (a cluster worker's answers with every worker summed). */
  metricsRoute?: Route;
}

export interface RunningSidecar {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly instanceId: string;
  readonly verifier: InternalVerifier;
  readonly keys: RemoteKeyResolver;
  stop(): Promise<void>;
}

/** TA_AUDIENCE's explicit "no default audience": a request that names none is checked for none. */
export const ANY_AUDIENCE = '*';

/** How often a sidecar refreshes its propagation receipt, and how long a receipt lives. */
const RECEIPT_INTERVAL_MS = 1000;
const RECEIPT_TTL_MS = 5000;

/**
 * A sidecar verifier: keys from the authority's JWKS, revocations from Redis, answering
 * TokenAuthorityService/Verify and Envoy's ext_authz Check locally.
 */
export async function startSidecar(config: SidecarConfig, logger: Logger, overrides: SidecarOverrides = {}): Promise<RunningSidecar> {
  const clock = overrides.clock ?? systemClock;
  const metrics = overrides.metrics ?? createMetrics();
  // Each worker of a cluster reports its own receipt: a configured instance id gets the worker's number.
  const worker = workerId();
  const instanceId = config.instanceId !== undefined ? (worker !== undefined ? `${config.instanceId}-w${worker}` : config.instanceId) : `${hostname()}-${process.pid}-${randomUUID().slice(0, 4)}`;
  logger.info({ grpc: config.grpcAddr.text, http: config.httpAddr.text, authority: redactUrl(config.authorityUrl), redis: redactUrl(config.redisUrl), instanceId, policy: config.stalenessPolicy }, 'starting sidecar verifier');

  if (config.audience === ANY_AUDIENCE) {
    logger.warn(
      { audience: config.audience },
      'TA_AUDIENCE=*: tokens for ANY audience are accepted when a Verify request or an ext_authz route names none; set TA_AUDIENCE to this service\'s audience unless every caller names one',
    );
  }

  // Off (undefined) unless the OTEL_* settings ask for it.
  const tracing = await createTracing(config.tracing, { instanceId, logger });
  const redisMetrics = registerRedisMetrics(metrics);
  const store = overrides.store ?? new RedisTokenStore({
    url: config.redisUrl,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    retentionMs: revocationRetentionMs(config),
    logger: logger.child({ component: 'redis' }),
    onCommandError: redisMetrics.onCommandError,
    ...(tracing ? { traceCommand: tracing.traceCommand } : {}),
  });
  redisMetrics.watch(store);
  const keys = createRemoteKeyResolver({
    jwksUrl: `${config.authorityUrl}/.well-known/jwks.json`,
    cooldownMs: config.jwksCooldownMs,
    clock,
    logger: logger.child({ component: 'jwks' }),
  });

  // Propagation receipts: report the applied sequence at once when it moves, and refresh the
  // receipt's TTL every second so the authority can tell live verifiers from dead ones; a receipt
  // is kept (stale) for TA_RECEIPT_RETENTION after the last report, for `token-authority status`.
  let applied = 0;
  let reported = -1;
  let reporting = false;
  const report = () => {
    if (reporting) return;
    reporting = true;
    const seq = applied;
    store.reportApplied(instanceId, seq, RECEIPT_TTL_MS, config.receiptRetentionMs).then(
      () => {
        reported = seq;
        reporting = false;
        if (applied !== reported) report();
      },
      () => {
        reporting = false;
      },
    );
  };
  // TA_DPOP_REPLAY_SCOPE: proofs single-use across the sidecars of one service, not only per sidecar.
  const dpopReplay: RedisDpopReplayCache | undefined = config.dpopReplayScope !== undefined
    ? createRedisDpopReplayCache({ url: config.redisUrl, scope: config.dpopReplayScope, commandTimeoutMs: config.redisCommandTimeoutMs, logger })
    : undefined;
  const verifier = createInternalVerifier({
    ...(dpopReplay ? { dpopReplayCache: dpopReplay } : {}),
    issuer: config.issuer,
    keys,
    revocations: store,
    clockSkewMs: config.clockSkewMs,
    tokenCacheSize: config.tokenCacheSize,
    stalenessBoundMs: config.stalenessBoundMs,
    stalenessPolicy: config.stalenessPolicy,
    maxTokenLifetimeMs: Math.max(config.maxAccessTtlMs, DEFAULT_MAX_TOKEN_LIFETIME_MS),
    // `*`: no audience check unless a request names one (the operator's explicit choice).
    ...(config.audience !== ANY_AUDIENCE ? { audience: config.audience } : {}),
    clock,
    logger: logger.child({ component: 'verifier' }),
  }, {
    onApplied: (seq) => {
      applied = seq;
      report();
    },
  });

  await verifier.start();
  if (keys.stats().kids.length === 0) logger.warn({ authority: redactUrl(config.authorityUrl) }, 'authority JWKS not reachable yet: tokens answer UNKNOWN_KEY until it is');
  const receiptTimer = setInterval(report, RECEIPT_INTERVAL_MS);
  receiptTimer.unref();
  report();

  const inflight = new InflightTracker();
  const deps = { logger: logger.child({ component: 'grpc' }), metrics, inflight, accessLogSample: config.accessLogSample, tracing };
  gauge(metrics, 'ta_grpc_requests_in_flight', 'gRPC calls being handled now.', () => inflight.size);
  const grpc = new GrpcServer({
    address: config.grpcAddr,
    credentials: serverCredentials(config),
    maxReceiveMessageBytes: config.maxMessageBytes,
    channelOptions: transportLimits(config),
    services: [createSidecarService(verifier, () => keys.jwksJson(), deps), createExtAuthzService(verifier, deps, { trustForwardedClientCert: config.trustForwardedClientCert })],
    protoFiles: ['tokenauthority/v1/token_authority.proto', 'envoy/service/auth/v3/external_auth.proto'],
    logger,
  });
  registerVerifierGauges(metrics, verifier);
  gauge(metrics, 'ta_jwks_fetch_failures_total', 'Failed fetches of the authority JWKS since start (the last good key set is kept).', () => keys.stats().failures);
  gauge(metrics, 'ta_jwks_keys', 'Verification keys loaded from the authority JWKS.', () => keys.stats().kids.length);
  const http = new HttpServer({
    address: config.httpAddr,
    logger,
    tracing,
    routes: {
      '/metrics': overrides.metricsRoute ?? metricsRoute(metrics),
      '/healthz': healthRoute(async () => {
        const s = verifier.status();
        const keysLoaded = keys.stats().kids.length > 0;
        const ok = keysLoaded && s.revocation.synced && !s.revocation.stale;
        return { ok, details: { keys: keysLoaded ? 'loaded' : 'missing', revocation: s.revocation.stale ? 'stale' : 'fresh', appliedSeq: s.revocation.appliedSeq, ageMs: Math.round(s.revocation.ageMs) } };
      }),
      '/status': () => ({ status: 200, body: JSON.stringify({ instanceId, ...verifier.status(), jwks: keys.stats() }), headers: { 'cache-control': 'no-store' } }),
    },
    prefixRoutes: { [FORWARD_AUTH_PATH]: forwardAuthRoute(verifier, { metrics, logger: logger.child({ component: 'forward-auth' }), accessLogSample: config.accessLogSample, trustForwardedClientCert: config.trustForwardedClientCert }) },
  });
  const grpcPort = await grpc.start();
  const httpPort = await http.start();
  // SIGHUP's default action ends the process; a sidecar has nothing to reload, so it only logs.
  const onHangup = () => logger.info('SIGHUP: the sidecar has nothing to reload; ignored');
  process.on('SIGHUP', onHangup);
  logger.info({ grpcPort, httpPort, instanceId, appliedSeq: verifier.status().revocation.appliedSeq }, 'sidecar serving');

  let stopping: Promise<void> | undefined;
  return {
    grpcPort,
    httpPort,
    instanceId,
    verifier,
    keys,
    stop() {
      stopping ??= (async () => {
        process.off('SIGHUP', onHangup);
        await grpc.shutdown(config.shutdownGraceMs);
        clearInterval(receiptTimer);
        await http.stop();
        // The verifier closes nothing it was given: the resolver and the store are closed here.
        await verifier.stop();
        keys.stop();
        if (!overrides.store) await store.close();
        await dpopReplay?.close();
        await tracing?.shutdown();
        logger.info('sidecar stopped');
      })();
      return stopping;
    },
  };
}

/**
 * The sidecar command: one process, or with TA_WORKERS > 1 a cluster (src/grpc/worker-cluster.ts,
 * as for the authority) whose workers each run a whole sidecar (verifier, feed subscription,
 * receipt) on the same gRPC and HTTP ports; any worker answers /metrics with all of them summed.
 * The primary only supervises.
 */
export async function runSidecar(config: SidecarConfig, logger: Logger): Promise<{ stop(): Promise<void> }> {
  if (config.workers <= 1) return startSidecar(config, logger);
  if (isClusterWorker()) {
    const running = await startSidecar(config, logger.child({ worker: workerId() }), { metrics: workerMetrics(), metricsRoute: clusterMetricsRouteFromWorker() });
    reportWorkerReady({ grpcPort: running.grpcPort, httpPort: running.httpPort });
    return running;
  }
  logger.info({ workers: config.workers }, 'starting sidecar cluster');
  // SIGHUP's default action ends the process; the workers ignore it, so does the primary.
  const onHangup = () => logger.info('SIGHUP: the sidecar has nothing to reload; ignored');
  process.on('SIGHUP', onHangup);
  const workers = await startWorkerCluster({ workers: config.workers, logger });
  const { grpcPort, httpPort } = workers.firstReady;
  logger.info({ workers: config.workers, grpcPort, httpPort }, 'sidecar serving');
  return {
    async stop() {
      process.off('SIGHUP', onHangup);
      await workers.stop();
      logger.info('sidecar stopped');
    },
  };
}
