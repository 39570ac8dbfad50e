import type { ServerCredentials } from '@grpc/grpc-js';
import type { Config } from '../config/config.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { serverCredentials } from '../grpc/credentials.js';
import { transportLimits } from '../grpc/transport-limits.js';
import { createRateLimiter, type RateLimiter } from '../grpc/rate-limiter.js';
import { createLoopbackPolicy, type AccessPolicy } from './admission.js';
import { createFilePolicy, type FilePolicy } from './file-policy.js';

/** Everything about who may call the authority and how much: built once at start. */
export interface CallerSecurity {
  /** Who may do what (the file policy, or the loopback development policy). */
  readonly policy: AccessPolicy;
  /** The file policy when TA_CLIENT_POLICY is set (reloaded on SIGHUP). */
  readonly filePolicy: FilePolicy | undefined;
  /** Spread into GrpcServerOptions: TLS credentials and transport limits. */
  readonly server: { credentials: ServerCredentials; maxReceiveMessageBytes: number; channelOptions: Record<string, number> };
  /** Per-caller limits for the unary wrapper; undefined when every limit is off. */
  readonly rateLimiter: RateLimiter | undefined;
  /** Remove the SIGHUP handler (installed always: reload the client policy, or log and ignore). */
  close(): void;
}

/**
 * Read and check the TLS files and the client policy, build the rate limiter, and say at start how
 * (in)secure this authority is. Throws ERR_CONFIG on a bad file, before anything has started.
 */
export function prepareCallerSecurity(config: Config, deps: { clock: Clock; logger: Logger; policy?: AccessPolicy | undefined }): CallerSecurity {
  const { clock, logger } = deps;
  // Real time, not the injected clock: TLS handshakes check certificates against real time too.
  const credentials = serverCredentials(config);
  const tls = config.tlsCert !== undefined;
  const mtls = tls && config.tlsClientCa !== undefined;
  let filePolicy: FilePolicy | undefined;
  let policy: AccessPolicy;
  if (deps.policy) policy = deps.policy;
  else if (config.clientPolicy !== undefined) {
    filePolicy = createFilePolicy(config.clientPolicy, logger.child({ component: 'client-policy' }));
    policy = filePolicy;
  } else {
    policy = createLoopbackPolicy({ insecure: config.insecure });
    logger.warn(
      { grpc: config.grpcAddr.text, tls, mtls, insecure: config.insecure },
      `INSECURE development mode: no client policy (TA_CLIENT_POLICY), so Issue and Revoke by subject/session_id/token_id are allowed from ${config.insecure ? 'ANY caller that can reach the port (TA_INSECURE=true)' : 'any process on this host (loopback)'}${tls ? '' : ', over plaintext gRPC'}. For production: mutual TLS (TA_TLS_CERT, TA_TLS_KEY, TA_TLS_CLIENT_CA) and TA_CLIENT_POLICY`,
    );
  }
  if (mtls && filePolicy) logger.info({ grpc: config.grpcAddr.text, clients: filePolicy.clientCount }, 'mutual TLS: callers are identified by their client certificate');

  const limits = {
    Issue: { spec: config.rateLimitIssue, setting: 'TA_RATE_LIMIT_ISSUE' },
    Refresh: { spec: config.rateLimitRefresh, setting: 'TA_RATE_LIMIT_REFRESH' },
    Revoke: { spec: config.rateLimitRevoke, setting: 'TA_RATE_LIMIT_REVOKE' },
  };
  const anyLimit = Object.values(limits).some((l) => l.spec !== null);
  const rateLimiter = anyLimit ? createRateLimiter({ limits, clock, maxCallers: config.rateLimitCallers }) : undefined;
  logger.info(
    { issue: limits.Issue.spec?.text ?? 'off', refresh: limits.Refresh.spec?.text ?? 'off', revoke: limits.Revoke.spec?.text ?? 'off', maxMessageBytes: config.maxMessageBytes },
    'per-caller rate limits',
  );

  // Always handled: SIGHUP's default action ends the process, and a stray hangup (a closed
  // terminal, a reload sent to every service) must not take the authority down.
  const onHangup = filePolicy
    ? () => void filePolicy!.reload()
    : () => logger.info('SIGHUP: no client policy to reload (TA_CLIENT_POLICY is unset); ignored');
  process.on('SIGHUP', onHangup);
  return {
    policy,
    filePolicy,
    server: { credentials, maxReceiveMessageBytes: config.maxMessageBytes, channelOptions: transportLimits(config) },
    rateLimiter,
    close: () => void process.off('SIGHUP', onHangup),
  };
}

/**
 * In worker mode (TA_WORKERS > 1) the operator signals the primary, but the workers hold the
 * policy: pass SIGHUP on to every worker. Without a client policy the primary logs and ignores it
 * (it never ends the process). Returns the function that removes the handler.
 */
export function relayHangupToWorkers(config: Config, workers: () => Iterable<{ process: { kill(signal: NodeJS.Signals): unknown } } | undefined>, logger: Logger): () => void {
  if (config.clientPolicy === undefined) {
    const ignore = () => logger.info('SIGHUP: no client policy to reload (TA_CLIENT_POLICY is unset); ignored');
    process.on('SIGHUP', ignore);
    return () => void process.off('SIGHUP', ignore);
  }
  const relay = () => {
    logger.info('SIGHUP: asking every worker to reload the client policy');
    for (const w of workers()) w?.process.kill('SIGHUP');
  };
  process.on('SIGHUP', relay);
  return () => void process.off('SIGHUP', relay);
}
