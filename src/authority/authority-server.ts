import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { redactUrl } from '../config/options.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { createMetrics, gauge, labelledGauge, type Metrics } from '../telemetry/metrics.js';
import { registerVerifierGauges } from '../telemetry/verifier-gauges.js';
import { createKeyStore } from './create-key-store.js';
import { KeyManager } from '../keys/key-manager.js';
import type { KeyStore } from '../keys/key-store.js';
import { MemoryTokenStore } from '../store/memory-token-store.js';
import { RedisTokenStore } from '../store/redis-token-store.js';
import type { TokenStore } from '../store/token-store.js';
import { createVerifier } from '../verifier/create-verifier.js';
import { GrpcServer } from '../grpc/server.js';
import { InflightTracker } from '../grpc/unary.js';
import { HttpServer, metricsRoute } from '../http/http-server.js';
import { authorityHttpRoutes } from './authority-http.js';
import type { AccessPolicy } from './access-policy.js';
import { prepareCallerSecurity } from './caller-security.js';
import { createAuthorityService } from './authority-service.js';
import { createPropagationTracker } from './propagation.js';
import { TokenAuthority } from './token-authority.js';
import { sessionSealFor } from './session-seal.js';

export interface AuthorityOverrides {
  clock?: Clock;
  metrics?: Metrics;
  keyStore?: KeyStore;
  store?: TokenStore;
  policy?: AccessPolicy;
  /**
   * 'single' (default): gRPC + HTTP + heartbeats in this process. 'worker': gRPC only — the
   * cluster primary (authority-cluster.ts) serves HTTP and publishes heartbeats.
   */
  role?: 'single' | 'worker';
}

export interface RunningAuthority {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly keys: KeyManager;
  readonly store: TokenStore;
  readonly authority: TokenAuthority;
  /** Graceful: stop accepting, finish in-flight calls (up to the grace period), release everything. */
  stop(): Promise<void>;
}

export function createTokenStore(config: Config, clock: Clock, logger: Logger): TokenStore {
  const retentionMs = config.maxAccessTtlMs + config.clockSkewMs;
  if (config.redisUrl === undefined) return new MemoryTokenStore({ clock, retentionMs });
  const store = new RedisTokenStore({
    url: config.redisUrl,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    retentionMs,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    waitAof: config.redisWaitAof,
    logger: logger.child({ component: 'redis' }),
  });
  const { replicas, timeoutMs, aof } = store.wait;
  const auto = config.redisWaitReplicas === 'auto' ? ' (TA_REDIS_WAIT_REPLICAS=auto: 1 on Sentinel and Cluster, 0 on one server)' : '';
  if (replicas === 0) {
    logger.warn(`revocations and refresh rotations are acknowledged without waiting for a Redis replica${auto}: a Redis failover or a restart without AOF can lose acknowledged ones; set TA_REDIS_WAIT_REPLICAS on a replicated Redis`);
  } else {
    logger.info({ waitReplicas: replicas, waitTimeoutMs: timeoutMs, waitAof: aof }, `revocations and refresh rotations are acknowledged only once ${replicas} Redis replica${replicas === 1 ? ' holds' : 's hold'} them${aof ? ' in its append-only file (WAITAOF)' : ' (WAIT)'}${auto}; fewer within ${timeoutMs} ms → UNAVAILABLE`);
  }
  return store;
}

/** Start the authority: keys, store, local verifier, gRPC and HTTP servers. */
export async function startAuthority(config: Config, logger: Logger, overrides: AuthorityOverrides = {}): Promise<RunningAuthority> {
  const clock = overrides.clock ?? systemClock;
  const metrics = overrides.metrics ?? createMetrics();
  const instanceId = `authority-${randomUUID().slice(0, 8)}`;
  logger.info({ grpc: config.grpcAddr.text, http: config.httpAddr.text, store: config.redisUrl ? redactUrl(config.redisUrl) : 'memory (embedded)', issuer: config.issuer, alg: config.keyAlgorithm }, 'starting token authority');
  if (!config.redisUrl) logger.warn('embedded in-memory store: sessions and revocations live in this process only and are lost on restart; set TA_REDIS_URL for anything shared or durable');
  const security = prepareCallerSecurity(config, { clock, logger, policy: overrides.policy });

  const store = overrides.store ?? createTokenStore(config, clock, logger);
  const keys = new KeyManager({
    store: overrides.keyStore ?? (await createKeyStore(config, logger)),
    algorithm: config.keyAlgorithm,
    rotationIntervalMs: config.keyRotationIntervalMs,
    retainMs: config.maxAccessTtlMs + config.clockSkewMs,
    clock,
    logger,
  });
  const verifier = createVerifier({
    issuer: config.issuer,
    keys: keys.resolver,
    revocations: store,
    clockSkewMs: config.clockSkewMs,
    tokenCacheSize: config.tokenCacheSize,
    stalenessBoundMs: Math.max(3 * config.heartbeatIntervalMs, 2000),
    clock,
    logger: logger.child({ component: 'verifier' }),
  });
  const sessionSeal = await sessionSealFor(config);
  const authority = new TokenAuthority({
    sessionSeal,
    settings: config,
    keys,
    store,
    verifier,
    policy: security.policy,
    clock,
    logger: logger.child({ component: 'authority' }),
  });

  const single = (overrides.role ?? 'single') === 'single';
  await keys.start();
  const heartbeat = single ? startHeartbeat(store, config.heartbeatIntervalMs, logger) : { stop() {} };
  await verifier.start();

  const inflight = new InflightTracker();
  const grpc = new GrpcServer({
    address: config.grpcAddr,
    ...security.server,
    services: [createAuthorityService(authority, keys, createPropagationTracker(store), { logger: logger.child({ component: 'grpc' }), metrics, inflight, rateLimiter: security.rateLimiter })],
    protoFiles: ['tokenauthority/v1/token_authority.proto'],
    logger,
  });
  registerGauges(metrics, keys, verifier, clock);
  gauge(metrics, 'ta_grpc_requests_in_flight', 'gRPC calls being handled now.', () => inflight.size);
  const http = single
    ? new HttpServer({ address: config.httpAddr, logger, routes: authorityHttpRoutes({ config, keys, store, metrics: () => metricsRoute(metrics), verifierStatus: () => verifier.status() }) })
    : undefined;
  let grpcPort: number;
  let httpPort: number;
  try {
    grpcPort = await grpc.start();
    httpPort = http ? await http.start() : 0;
  } catch (err) {
    heartbeat.stop();
    security.close();
    await Promise.allSettled([grpc.shutdown(0), http?.stop(), verifier.stop(), keys.stop()]);
    await store.close();
    throw err;
  }
  logger.info({ grpcPort, httpPort, instanceId, kid: keys.signer().kid }, 'token authority serving');

  let stopping: Promise<void> | undefined;
  return {
    grpcPort,
    httpPort,
    keys,
    store,
    authority,
    stop() {
      stopping ??= (async () => {
        logger.info({ inflight: inflight.size }, 'shutting down: no new calls, finishing calls in flight');
        await grpc.shutdown(config.shutdownGraceMs);
        heartbeat.stop();
        security.close();
        await http?.stop();
        await verifier.stop();
        await keys.stop();
        await store.close();
        logger.info('shutdown complete');
      })();
      return stopping;
    },
  };
}

export function startHeartbeat(store: TokenStore, intervalMs: number, logger: Logger): { stop(): void } {
  let failing = false;
  const beat = () =>
    store.heartbeat().then(
      () => {
        if (failing) logger.info('revocation feed heartbeat recovered');
        failing = false;
      },
      (err: Error) => {
        if (!failing) logger.warn({ err: err.message }, 'revocation feed heartbeat failed; verifiers will see the feed as stale');
        failing = true;
      },
    );
  void beat();
  const timer = setInterval(beat, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

function registerGauges(metrics: Metrics, keys: KeyManager, verifier: ReturnType<typeof createVerifier>, clock: Clock): void {
  labelledGauge(metrics, 'ta_signing_key_age_seconds', 'Age of each published signing key, by kid and state.', ['kid', 'state'], () =>
    keys.list().map((k) => ({ labels: { kid: k.kid, state: k.state }, value: (clock.nowMs() - k.createdAt) / 1000 })),
  );
  registerVerifierGauges(metrics, verifier);
}
