import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.js';
import { authorityStalenessBoundMs, revocationRetentionMs } from '../config/derived-settings.js';
import { redactUrl } from '../shared/redact-url.js';
import { systemClock, type Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { counter, createMetrics, gauge, labelledGauge, type Metrics } from '../telemetry/metrics.js';
import { registerRedisMetrics } from '../telemetry/redis-metrics.js';
import { registerVerifierGauges } from '../telemetry/verifier-gauges.js';
import { createTracing } from '../telemetry/create-tracing.js';
import type { CommandTracer } from '../store/command-tracer.js';
import { createKeyManager } from './create-key-store.js';
import { KeyManager } from '../keys/key-manager.js';
import type { KeyStore } from '../keys/key-store.js';
import { MemoryTokenStore } from '../store/memory-token-store.js';
import { RedisTokenStore } from '../store/redis-token-store.js';
import { createRedisDpopReplayCache } from '../store/redis-dpop-replay.js';
import type { AccessTtlRecord, FeedPublisher, RevocationRepair, TokenStore } from '../store/token-store.js';
import { createInternalVerifier, DEFAULT_MAX_TOKEN_LIFETIME_MS, type Verifier } from '../verifier/create-verifier.js';
import type { LostRevocation } from '../verifier/revocation-sync.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import { MAX_RESTORE_BATCH } from '../store/store-input.js';
import { GrpcServer, InflightTracker } from '../grpc/server.js';
import { HttpServer, metricsRoute } from '../http/http-server.js';
import { authorityHttpRoutes } from './authority-http.js';
import { authorityHttpsOptions, warnIfPlaintextOAuth } from './http-caller.js';
import { oauthMetadata, oauthRoutes } from './oauth-endpoints.js';
import type { AccessPolicy } from './admission.js';
import { prepareCallerSecurity } from './caller-security.js';
import { createAuthorityService } from './authority-service.js';
import { createPropagationTracker } from './propagation.js';
import { TokenAuthority } from './token-authority.js';
import { sessionSealFor } from './session-records.js';

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

export function createTokenStore(config: Config, clock: Clock, logger: Logger, onCommandError?: (op: string) => void, traceCommand?: CommandTracer): TokenStore {
  const retentionMs = revocationRetentionMs(config);
  if (config.redisUrl === undefined) return new MemoryTokenStore({ clock, retentionMs });
  const store = new RedisTokenStore({
    url: config.redisUrl,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    retentionMs,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
    waitAof: config.redisWaitAof,
    logger: logger.child({ component: 'redis' }),
    ...(onCommandError ? { onCommandError } : {}),
    ...(traceCommand ? { traceCommand } : {}),
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
  // Off (undefined) unless the OTEL_* settings ask for it; each worker of TA_WORKERS>1 has its own.
  const tracing = await createTracing(config.tracing, { instanceId, logger });

  const redisMetrics = registerRedisMetrics(metrics);
  const store = overrides.store ?? createTokenStore(config, clock, logger, redisMetrics.onCommandError, tracing?.traceCommand);
  redisMetrics.watch(store);
  const keys = await createKeyManager(config, logger, 'serve', { clock, ...(overrides.keyStore ? { keyStore: overrides.keyStore } : {}) });
  // The longest access TTL any replica may still have tokens out for (a lowered
  // TA_MAX_ACCESS_TTL keeps the old one until its last token expired): revocation entries and the
  // log's retention cover it, and this replica's Verify accepts such tokens.
  const accessTtl = await startAccessTtlHighWater(store, config, logger);
  // TA_DPOP_REPLAY_SCOPE: a proof accepted by Verify at one replica is a replay at the others.
  const dpopReplay = config.dpopReplayScope !== undefined && config.redisUrl !== undefined
    ? createRedisDpopReplayCache({ url: config.redisUrl, scope: config.dpopReplayScope, commandTimeoutMs: config.redisCommandTimeoutMs, logger })
    : undefined;
  const verifier = createInternalVerifier({
    ...(dpopReplay ? { dpopReplayCache: dpopReplay } : {}),
    issuer: config.issuer,
    keys: keys.resolver,
    revocations: store,
    clockSkewMs: config.clockSkewMs,
    tokenCacheSize: config.tokenCacheSize,
    stalenessBoundMs: authorityStalenessBoundMs(config),
    maxTokenLifetimeMs: Math.max(accessTtl.current(), DEFAULT_MAX_TOKEN_LIFETIME_MS),
    clock,
    logger: logger.child({ component: 'verifier' }),
  }, {
    // After a Redis failover lost acknowledged revocations, append again what this replica still
    // holds (docs/operations.md, "What an acknowledged revocation survives").
    onLostRevocations: (lost) => void restoreLostRevocations(store, lost, (events) => events.forEach((e) => verifier.applyRevocation(e)), logger),
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
    revocationTtlMs: accessTtl.current,
    onReuseDetected: counter(metrics, 'ta_refresh_reuse_detected_total', 'Refresh-token reuse detected (a spent refresh token presented again): its session was revoked.'),
  });

  const single = (overrides.role ?? 'single') === 'single';
  await keys.start();
  const heartbeat = single ? startHeartbeat(store, config.heartbeatIntervalMs, logger) : { stop() {} };
  await verifier.start();

  const inflight = new InflightTracker();
  const grpc = new GrpcServer({
    address: config.grpcAddr,
    ...security.server,
    services: [createAuthorityService(authority, keys, createPropagationTracker(store), { logger: logger.child({ component: 'grpc' }), metrics, inflight, rateLimiter: security.rateLimiter, accessLogSample: config.accessLogSample, tracing })],
    protoFiles: ['tokenauthority/v1/token_authority.proto'],
    logger,
  });
  registerGauges(metrics, keys, verifier, clock, config.keyRotationIntervalMs);
  gauge(
    metrics,
    'ta_propagation_receipts',
    'Verifiers with a live propagation receipt (reported within the receipt TTL); -1 when the store cannot be read.',
    () => store.listApplied().then((r) => r.length, () => -1),
    'max',
  );
  gauge(
    metrics,
    'ta_propagation_receipts_stale',
    'Verifiers whose propagation receipt is stale: they stopped reporting, within their TA_RECEIPT_RETENTION (`token-authority status` names them); -1 when the store cannot be read.',
    () => store.listReceipts().then((r) => r.filter((x) => !x.live).length, () => -1),
    'max',
  );
  gauge(metrics, 'ta_grpc_requests_in_flight', 'gRPC calls being handled now.', () => inflight.size);
  const oauth = oauthMetadata(config.issuer, { mtls: config.tlsClientCa !== undefined, introspectionByCertificate: security.filePolicy !== undefined });
  if (single) warnIfPlaintextOAuth(config, logger);
  const http = single
    ? new HttpServer({
        address: config.httpAddr,
        logger,
        tracing,
        tls: authorityHttpsOptions(config),
        routes: authorityHttpRoutes({ config, keys, store, metrics: () => metricsRoute(metrics), verifierStatus: () => verifier.status(), oauth }),
        postRoutes: oauthRoutes({ authority, settings: config, rateLimiter: security.rateLimiter, logger: logger.child({ component: 'oauth' }) }),
      })
    : undefined;
  let grpcPort: number;
  let httpPort: number;
  try {
    grpcPort = await grpc.start();
    httpPort = http ? await http.start() : 0;
  } catch (err) {
    heartbeat.stop();
    accessTtl.stop();
    security.close();
    await Promise.allSettled([grpc.shutdown(0), http?.stop(), verifier.stop(), keys.stop()]);
    await store.close();
    await dpopReplay?.close();
    await tracing?.shutdown();
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
        accessTtl.stop();
        security.close();
        await http?.stop();
        await verifier.stop();
        await keys.stop();
        await store.close();
        await dpopReplay?.close();
        // Last, so the spans of calls that finished during the grace period are exported too.
        await tracing?.shutdown();
        logger.info('shutdown complete');
      })();
      return stopping;
    },
  };
}

/** How often the access-TTL high-water mark is recorded again (its horizon is twice this). */
const ACCESS_TTL_RECORD_INTERVAL_MS = 60_000;

/**
 * Record this replica's TA_MAX_ACCESS_TTL in the store now and every minute, and keep the shared
 * high-water mark it answers. A store that cannot be reached at start leaves the configured value
 * (and retries with the next round).
 */
export async function startAccessTtlHighWater(store: AccessTtlRecord, config: Pick<Config, 'maxAccessTtlMs' | 'clockSkewMs'>, logger: Logger): Promise<{ current: () => number; stop(): void }> {
  let highWater = config.maxAccessTtlMs;
  const record = async () => {
    try {
      const best = await store.recordAccessTtl({ ttlMs: config.maxAccessTtlMs, horizonMs: 2 * ACCESS_TTL_RECORD_INTERVAL_MS, slackMs: config.clockSkewMs });
      if (best > config.maxAccessTtlMs && best !== highWater) {
        logger.warn({ configuredMs: config.maxAccessTtlMs, highWaterMs: best }, 'access tokens with a longer TTL than TA_MAX_ACCESS_TTL may still be valid (the setting was lowered, or another replica has a higher one): revocation entries are kept for the longer TTL');
      }
      highWater = Math.max(best, config.maxAccessTtlMs);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'could not record the access-TTL high-water mark; retrying');
    }
  };
  await record();
  const timer = setInterval(() => void record(), ACCESS_TTL_RECORD_INTERVAL_MS);
  timer.unref();
  return { current: () => highWater, stop: () => clearInterval(timer) };
}

/**
 * Append again, in batches, the revocations this replica's verifier holds that the log lost (the
 * verifier found the log went back: RevocationSyncOptions.onLostRevocations). Retries a failing
 * batch with backoff for about a minute, then gives up loudly: they stay enforced here, and in
 * every verifier that still holds them, but a verifier started later would not learn them.
 */
export async function restoreLostRevocations(
  store: RevocationRepair,
  lost: readonly LostRevocation[],
  onAppended: (events: RevocationEvent[]) => void,
  logger: Logger,
): Promise<number> {
  let appended = 0;
  for (let i = 0; i < lost.length; i += MAX_RESTORE_BATCH) {
    const batch = lost.slice(i, i + MAX_RESTORE_BATCH);
    for (let attempt = 0; ; attempt++) {
      try {
        const events = await store.restoreRevocations(batch);
        appended += events.length;
        onAppended(events);
        break;
      } catch (err) {
        if (attempt >= 8) {
          logger.error({ err: (err as Error).message, remaining: lost.length - i }, 'could not append lost revocations again: verifiers started later will not know them');
          return appended;
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 250 * 2 ** attempt)).unref());
      }
    }
  }
  logger.warn({ held: lost.length, appended }, 'revocations the log had lost were appended again');
  return appended;
}

export function startHeartbeat(store: FeedPublisher, intervalMs: number, logger: Logger): { stop(): void } {
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

function registerGauges(metrics: Metrics, keys: KeyManager, verifier: Verifier, clock: Clock, rotationIntervalMs: number): void {
  labelledGauge(metrics, 'ta_signing_key_age_seconds', 'Age of each published signing key, by kid and state.', ['kid', 'state'], () =>
    keys.list().map((k) => ({ labels: { kid: k.kid, state: k.state }, value: (clock.nowMs() - k.createdAt) / 1000 })),
  );
  gauge(metrics, 'ta_signing_key_next_rotation_seconds', 'Seconds until the scheduled key rotation (negative: overdue; +Inf: TA_KEY_ROTATION_INTERVAL=0).', () => {
    const activatedAt = keys.list().find((k) => k.state === 'active')?.activatedAt;
    if (rotationIntervalMs === 0 || activatedAt === undefined) return Infinity;
    return (activatedAt + rotationIntervalMs - clock.nowMs()) / 1000;
  }, 'min');
  registerVerifierGauges(metrics, verifier);
}
