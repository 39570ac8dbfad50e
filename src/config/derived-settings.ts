/**
 * Values derived from several settings, each computed here and nowhere else, so that every process
 * (authority, its cluster primary, the sidecar, the CLI) derives them alike.
 */
import type { Config } from './config.js';

/**
 * How long a revocation entry, the revocation log's entries and a retired signing key are kept:
 * the longest access-token lifetime plus the clock skew, since a verifier may accept a token until
 * `exp + skew` and must still see its revocation (and its key) until then.
 */
export function revocationRetentionMs(config: Pick<Config, 'maxAccessTtlMs' | 'clockSkewMs'>): number {
  return config.maxAccessTtlMs + config.clockSkewMs;
}

/**
 * The staleness bound of the authority's own verifier (the sidecar's is TA_STALENESS_BOUND): three
 * missed heartbeats, and never below 2 s, so one late heartbeat on a loaded host is not an outage.
 */
export function authorityStalenessBoundMs(config: Pick<Config, 'heartbeatIntervalMs'>): number {
  return Math.max(3 * config.heartbeatIntervalMs, 2000);
}
