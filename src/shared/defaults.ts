/**
 * The defaults that the embeddable library (and the stores and servers built without the CLI) and
 * the CLI's options table share, in one place: the library applies these when an option is left
 * out, and src/config/options.ts prints them as the settings' defaults, so a process configured by
 * environment and one built in code behave alike. Durations in milliseconds.
 */
export const DEFAULTS = Object.freeze({
  /** Leeway for exp/nbf/iat (TA_CLOCK_SKEW, VerifierOptions.clockSkewMs). */
  clockSkewMs: 30_000,
  /** Revocation state older than this is stale (TA_STALENESS_BOUND, VerifierOptions.stalenessBoundMs). */
  stalenessBoundMs: 5000,
  /** What a stale verifier answers (TA_STALENESS_POLICY, VerifierOptions.stalenessPolicy). */
  stalenessPolicy: 'fail-closed' as 'fail-closed' | 'fail-open',
  /** Verified-token cache entries (TA_TOKEN_CACHE_SIZE, VerifierOptions.tokenCacheSize). */
  tokenCacheSize: 10_000,
  /** Minimum time between JWKS refetches for unknown kids (TA_JWKS_COOLDOWN, RemoteKeyResolverOptions.cooldownMs). */
  jwksCooldownMs: 10_000,
  /** A Redis command unanswered this long fails (TA_REDIS_COMMAND_TIMEOUT, the stores' and the source's commandTimeoutMs). */
  redisCommandTimeoutMs: 1000,
  /** Accepted Verify/Check/forward-auth calls logged 1 in N (TA_ACCESS_LOG_SAMPLE, UnaryDeps.accessLogSample). */
  accessLogSample: 100,
  /** Largest gRPC request accepted (TA_MAX_MESSAGE_BYTES). */
  maxMessageBytes: 64 * 1024,
  /** Calls in flight per client connection (TA_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: 100,
});

/** A duration in the options table's notation: the largest unit that divides it exactly (30000 → "30s"). */
export function durationText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A byte size in the options table's notation (65536 → "64KiB"). */
export function byteSizeText(bytes: number): string {
  if (bytes > 0 && bytes % (1024 * 1024) === 0) return `${bytes / 1024 / 1024}MiB`;
  if (bytes > 0 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return String(bytes);
}
