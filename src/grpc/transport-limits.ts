import type { Config } from '../config/config.js';
import { DEFAULTS } from '../shared/defaults.js';

/** Calls in flight when a connection reaches its maximum age get this long to finish (GetPropagation waits up to 30 s). */
export const CONNECTION_AGE_GRACE_MS = 35_000;
/** A keepalive ping unanswered for this long closes the connection. */
export const KEEPALIVE_TIMEOUT_MS = 20_000;
export const DEFAULT_MAX_MESSAGE_BYTES = DEFAULTS.maxMessageBytes;

/** grpc-js server options that bound what one client connection can hold. */
export function transportLimits(config: Pick<Config, 'maxConcurrentStreams' | 'keepaliveTimeMs' | 'maxConnectionIdleMs' | 'maxConnectionAgeMs'>): Record<string, number> {
  const o: Record<string, number> = { 'grpc.max_concurrent_streams': config.maxConcurrentStreams };
  if (config.keepaliveTimeMs > 0) Object.assign(o, { 'grpc.keepalive_time_ms': config.keepaliveTimeMs, 'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS });
  if (config.maxConnectionIdleMs > 0) o['grpc.max_connection_idle_ms'] = config.maxConnectionIdleMs;
  if (config.maxConnectionAgeMs > 0) Object.assign(o, { 'grpc.max_connection_age_ms': config.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': CONNECTION_AGE_GRACE_MS });
  return o;
}
