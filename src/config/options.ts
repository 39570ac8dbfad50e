import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { parseDurationMs } from '../shared/duration.js';
import { DEFAULTS, byteSizeText, durationText } from '../shared/defaults.js';
import { errorMessage } from '../shared/errors.js';
import { SIGNING_ALGORITHMS } from '../verifier/jose-rules.js';
import { parseKeyEncryptionKey, type KeyEncryptionKey } from '../keys/key-encryption-key.js';
import { parseRedisUrl } from '../store/redis-connection.js';
import { parseRateLimit } from './rate-limit-spec.js';

/**
 * Every setting in one table: its env var, its CLI flag, its default and how it is validated.
 * The configuration table in docs/configuration.md is printed from here (`token-authority config --markdown`), so
 * the two cannot drift.
 */

const duration = (what: string, opts: { min?: number; allowZero?: boolean } = {}) =>
  z.string().transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration (examples: 900s, 15m, 1h, 7d)` });
      return z.NEVER;
    }
    if (ms === 0 && opts.allowZero) return 0;
    if (ms < (opts.min ?? 1)) {
      ctx.addIssue({ code: 'custom', message: `${what} must be at least ${opts.min ?? 1}ms${opts.allowZero ? ' (or 0 to disable)' : ''}` });
      return z.NEVER;
    }
    return ms;
  });

/** A parsed listen address (TA_GRPC_ADDR, TA_HTTP_ADDR). */
export interface ListenAddress {
  host: string;
  port: number;
  text: string;
}

const hostPort = z.string().transform((text, ctx): ListenAddress => {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not host:port (examples: 127.0.0.1:50051, 0.0.0.0:50051, [::1]:50051)` });
    return z.NEVER;
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port, text: text.trim() };
});

const bool = z.string().transform((text, ctx) => {
  const t = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
  ctx.addIssue({ code: 'custom', message: `"${text}" is not a boolean (true/false)` });
  return z.NEVER;
});

const list = z.string().transform((text) =>
  text.split(',').map((s) => s.trim()).filter((s) => s.length > 0),
);

const int = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `"${text}" must be an integer from ${min} to ${max}` });
      return z.NEVER;
    }
    return n;
  });

const url = (what: string, protocols: string[]) =>
  z.string().transform((text, ctx) => {
    try {
      const u = new URL(text);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return text.replace(/\/+$/, '');
    } catch {
      // The value is echoed by describeIssue (config.ts), redacted.
      ctx.addIssue({ code: 'custom', message: `not a valid ${what} (${protocols.map((p) => p + '//').join(' or ')}…)` });
      return z.NEVER;
    }
  });

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, b: 1, kib: 1024, mib: 1024 * 1024 };

const byteSize = (min: number, max: number) =>
  z.string().transform((text, ctx) => {
    const m = /^\s*(\d+)\s*(b|kib|mib)?\s*$/i.exec(text);
    const n = m ? Number(m[1]) * BYTE_UNITS[(m[2] ?? '').toLowerCase()]! : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `"${text}" must be a size from ${min / 1024} KiB to ${max / 1024 / 1024} MiB (examples: 65536, 64KiB, 2MiB)` });
      return z.NEVER;
    }
    return n;
  });

const rateLimit = z.string().transform((text, ctx) => {
  const parsed = parseRateLimit(text);
  if (!parsed.ok) {
    ctx.addIssue({ code: 'custom', message: parsed.message });
    return z.NEVER;
  }
  return parsed.spec;
});

/** Any URL form of redis-connection.ts; its messages never echo a password. */
const redisUrl = z.string().transform((text, ctx) => {
  try {
    parseRedisUrl(text);
    return text.trim();
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err) });
    return z.NEVER;
  }
});

/** A key-encryption key: its messages never echo the value. */
const kek = z.string().transform((text, ctx): KeyEncryptionKey => {
  try {
    return parseKeyEncryptionKey(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: errorMessage(err) });
    return z.NEVER;
  }
});

const kekList = z.string().transform((text, ctx): KeyEncryptionKey[] => {
  const out: KeyEncryptionKey[] = [];
  for (const [i, part] of text.split(',').map((p) => p.trim()).filter((p) => p !== '').entries()) {
    try {
      out.push(parseKeyEncryptionKey(part));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `entry ${i + 1} ${errorMessage(err)}` });
    }
  }
  return out;
});

/** An OTLP/HTTP endpoint URL (http or https); echoed redacted (it may carry credentials). */
const otlpUrl = url('OTLP/HTTP endpoint URL', ['http:', 'https:']);

/** The OTLP protocols this build exports with: OTLP/HTTP only (the OpenTelemetry default is http/protobuf). */
const otlpProtocol = z.string().transform((text, ctx): 'http/protobuf' | 'http/json' => {
  const t = text.trim();
  if (t === 'http/protobuf' || t === 'http/json') return t;
  ctx.addIssue({ code: 'custom', message: t === 'grpc' ? '"grpc" is not supported: spans are exported over OTLP/HTTP (http/protobuf or http/json, a collector\'s port 4318)' : `"${text}" must be http/protobuf or http/json` });
  return z.NEVER;
});

/** OTEL_RESOURCE_ATTRIBUTES: `key=value,key2=value2`, values percent-encoded (OpenTelemetry resource SDK spec). */
const resourceAttributes = z.string().transform((text, ctx): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq).trim() : '';
    if (key === '') {
      ctx.addIssue({ code: 'custom', message: `"${pair}" is not key=value` });
      return z.NEVER;
    }
    try {
      out[key] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      ctx.addIssue({ code: 'custom', message: `the value of ${key} is not valid percent-encoding` });
      return z.NEVER;
    }
  }
  return out;
});

const ratio = z.string().transform((text, ctx) => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) {
    ctx.addIssue({ code: 'custom', message: `"${text}" must be a sampling ratio from 0 to 1` });
    return z.NEVER;
  }
  return n;
});

/** The samplers of the OpenTelemetry environment-variable spec that need no remote service. */
export const OTEL_SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'] as const;

export interface OptionSpec {
  /** Key in the resulting config object (its type is this option's parsed value: config.ts). */
  key: string;
  env: string;
  flag: string;
  description: string;
  /** Default as text (parsed like user input); undefined = unset. */
  default?: string;
  /** A different default for the sidecar (so it can run beside an authority on one host). */
  sidecarDefault?: string;
  schema: z.ZodType<unknown, string>;
  /** Which commands read it. */
  scope: 'common' | 'authority' | 'sidecar';
  /** A secret: never echoed in errors or logs. */
  secret?: boolean;
}

/** The table with each row's literal types, from which config.ts derives the configuration's type. */
export const OPTION_TABLE = [
  { key: 'grpcAddr', env: 'TA_GRPC_ADDR', flag: '--grpc-addr', scope: 'common', default: '127.0.0.1:50051', sidecarDefault: '127.0.0.1:50061', schema: hostPort,
    description: 'gRPC listen address (port 0 picks a free port). A non-loopback address needs TLS or TA_INSECURE=true.' },
  { key: 'httpAddr', env: 'TA_HTTP_ADDR', flag: '--http-addr', scope: 'common', default: '127.0.0.1:8080', sidecarDefault: '127.0.0.1:8081', schema: hostPort,
    description: 'HTTP listen address for JWKS, discovery, the OAuth endpoints, /metrics and /healthz (HTTPS on the authority when TA_TLS_CERT is set).' },
  { key: 'redisUrl', env: 'TA_REDIS_URL', flag: '--redis-url', scope: 'common', schema: redisUrl, secret: true,
    description: 'Redis URL: `redis://` or `rediss://` (TLS) for one server, `redis-sentinel://h1:26379,h2:26379/<master>` for Sentinel, `redis-cluster://h1:6379,h2:6379` for a Cluster (see Scaling). Unset: the embedded in-memory store (single process, nothing survives a restart except keys).' },
  { key: 'redisCommandTimeoutMs', env: 'TA_REDIS_COMMAND_TIMEOUT', flag: '--redis-command-timeout', scope: 'common', default: durationText(DEFAULTS.redisCommandTimeoutMs), schema: duration('the Redis command timeout', { min: 10 }),
    description: 'Every Redis command fails with UNAVAILABLE after this long instead of hanging.' },
  { key: 'redisWaitReplicas', env: 'TA_REDIS_WAIT_REPLICAS', flag: '--redis-wait-replicas', scope: 'authority', default: 'auto', schema: z.string().transform((text, ctx): number | 'auto' => {
      if (text.trim() === 'auto') return 'auto';
      const n = Number(text);
      if (!Number.isInteger(n) || n < 0 || n > 100) {
        ctx.addIssue({ code: 'custom', message: `"${text}" must be "auto" or an integer from 0 to 100 (replicas that must hold a write before it is acknowledged)` });
        return z.NEVER;
      }
      return n;
    }),
    description: 'Replicas that must confirm (Redis WAIT) every revocation, logout, reuse-detection revocation and refresh rotation before the call is acknowledged; fewer within TA_REDIS_WAIT_TIMEOUT → UNAVAILABLE (the write may or may not have applied; retrying is safe). `auto` = 1 for `redis-sentinel://` and `redis-cluster://`, 0 for one server. See "What an acknowledged revocation survives".' },
  { key: 'redisWaitTimeoutMs', env: 'TA_REDIS_WAIT_TIMEOUT', flag: '--redis-wait-timeout', scope: 'authority', schema: duration('the replica wait timeout', { min: 1 }),
    description: 'How long a write waits for TA_REDIS_WAIT_REPLICAS replicas; must be below TA_REDIS_COMMAND_TIMEOUT. Default: 500ms, or half TA_REDIS_COMMAND_TIMEOUT if that is less.' },
  { key: 'redisWaitAof', env: 'TA_REDIS_WAIT_AOF', flag: '--redis-wait-aof', scope: 'authority', default: 'false', schema: bool,
    description: 'Wait with WAITAOF (Redis ≥ 7.2) instead of WAIT: the replicas must have written the write to their append-only file (fsync), not only hold it in memory. Needs `appendonly yes` on the replicas.' },
  { key: 'issuer', env: 'TA_ISSUER', flag: '--issuer', scope: 'common', schema: url('issuer URL', ['http:', 'https:']),
    description: 'The `iss` of every token, and the externally visible base URL of the authority\'s HTTP endpoints (discovery lists <issuer>/oauth2/token etc.). Default: http://<TA_HTTP_ADDR>. Must match on every replica and verifier.' },
  { key: 'accessTtlMs', env: 'TA_ACCESS_TTL', flag: '--access-ttl', scope: 'authority', default: '15m', schema: duration('TA_ACCESS_TTL', { min: 1000 }),
    description: 'Default access-token lifetime.' },
  { key: 'maxAccessTtlMs', env: 'TA_MAX_ACCESS_TTL', flag: '--max-access-ttl', scope: 'common', default: '1h', schema: duration('TA_MAX_ACCESS_TTL', { min: 1000 }),
    description: 'Upper bound on any access-token lifetime (per-request TTLs are capped to it). Also bounds how long revocation entries are kept.' },
  { key: 'refreshTtlMs', env: 'TA_REFRESH_TTL', flag: '--refresh-ttl', scope: 'authority', default: '14d', schema: duration('TA_REFRESH_TTL', { min: 1000 }),
    description: 'Lifetime of each refresh token (a session unused this long ends).' },
  { key: 'sessionMaxLifetimeMs', env: 'TA_SESSION_MAX_LIFETIME', flag: '--session-max-lifetime', scope: 'authority', default: '90d', schema: duration('TA_SESSION_MAX_LIFETIME', { min: 1000 }),
    description: 'Absolute session lifetime: no refresh past this, however often the session is used.' },
  { key: 'sessionIdleTimeoutMs', env: 'TA_SESSION_IDLE_TIMEOUT', flag: '--session-idle-timeout', scope: 'authority', default: '0', schema: duration('TA_SESSION_IDLE_TIMEOUT', { allowZero: true }),
    description: 'End a session unused for this long (0 = off; the refresh TTL still applies).' },
  { key: 'refreshGraceMs', env: 'TA_REFRESH_GRACE', flag: '--refresh-grace', scope: 'authority', default: '0', schema: duration('TA_REFRESH_GRACE', { allowZero: true }),
    description: 'Window in which the immediate parent refresh token may be presented again without triggering reuse detection (0 = off). See "Refresh-token reuse".' },
  { key: 'clockSkewMs', env: 'TA_CLOCK_SKEW', flag: '--clock-skew', scope: 'common', default: durationText(DEFAULTS.clockSkewMs), schema: duration('TA_CLOCK_SKEW', { allowZero: true }),
    description: 'Leeway for exp/nbf/iat checks.' },
  { key: 'allowedAudiences', env: 'TA_ALLOWED_AUDIENCES', flag: '--allowed-audiences', scope: 'authority', default: '', schema: list,
    description: 'Comma-separated audiences Issue may mint tokens for. Empty = any.' },
  { key: 'keyAlgorithm', env: 'TA_KEY_ALG', flag: '--key-alg', scope: 'authority', default: 'ES256', schema: z.enum(SIGNING_ALGORITHMS),
    description: 'Signing algorithm for new keys: ES256, EdDSA or RS256.' },
  { key: 'keyStore', env: 'TA_KEY_STORE', flag: '--key-store', scope: 'authority', default: 'file', schema: z.enum(['file', 'redis']),
    description: 'Where the signing keys live: `file` (TA_KEY_DIR, one host) or `redis` (shared by every replica on TA_REDIS_URL; needs a key-encryption key).' },
  { key: 'keyDir', env: 'TA_KEY_DIR', flag: '--key-dir', scope: 'authority', default: '.data/keys', schema: z.string().min(1),
    description: 'Directory holding the signing keys (keys.json, mode 0600) when TA_KEY_STORE=file.' },
  { key: 'keyEncryptionKey', env: 'TA_KEY_ENCRYPTION_KEY', flag: '--key-encryption-key', scope: 'authority', schema: kek, secret: true,
    description: 'Key-encryption key: 32 random bytes, base64 or hex (`openssl rand -base64 32`). Private signing keys are stored only AES-256-GCM-encrypted under it. Required with TA_KEY_STORE=redis; with `file` it encrypts keys.json. Prefer the env var or the _FILE variant to the flag.' },
  { key: 'keyEncryptionKeyFile', env: 'TA_KEY_ENCRYPTION_KEY_FILE', flag: '--key-encryption-key-file', scope: 'authority', schema: z.string().min(1),
    description: 'A file (mode 0600) holding the key-encryption key, instead of TA_KEY_ENCRYPTION_KEY.' },
  { key: 'keyEncryptionKeyPrevious', env: 'TA_KEY_ENCRYPTION_KEY_PREVIOUS', flag: '--key-encryption-key-previous', scope: 'authority', schema: kekList, secret: true,
    description: 'Comma-separated former key-encryption keys, accepted for decryption only, while rotating the KEK (see Scaling).' },
  { key: 'keyRotationIntervalMs', env: 'TA_KEY_ROTATION_INTERVAL', flag: '--key-rotation-interval', scope: 'authority', default: '7d', schema: duration('TA_KEY_ROTATION_INTERVAL', { allowZero: true, min: 60_000 }),
    description: 'Rotate the signing key this often (0 = only by `token-authority keys rotate`).' },
  { key: 'heartbeatIntervalMs', env: 'TA_HEARTBEAT_INTERVAL', flag: '--heartbeat-interval', scope: 'authority', default: '1s', schema: duration('TA_HEARTBEAT_INTERVAL', { min: 50 }),
    description: 'How often the authority publishes a heartbeat (head sequence) on the revocation feed.' },
  { key: 'workers', env: 'TA_WORKERS', flag: '--workers', scope: 'common', default: '1', schema: z.string().transform((text, ctx) => {
      if (text.trim() === 'auto') return availableParallelism();
      const n = Number(text);
      if (!Number.isInteger(n) || n < 1 || n > 256) {
        ctx.addIssue({ code: 'custom', message: `"${text}" must be "auto" or an integer from 1 to 256` });
        return z.NEVER;
      }
      return n;
    }),
    description: 'Worker processes ("auto" = one per core), for the authority and the sidecar. More than 1 needs TA_REDIS_URL. Authority: the workers serve gRPC, the primary HTTP and heartbeats. Sidecar: every worker runs a whole sidecar (its own verifier and feed subscription) on the same gRPC and HTTP ports, and /metrics sums them.' },
  { key: 'insecure', env: 'TA_INSECURE', flag: '--insecure', scope: 'common', default: 'false', schema: bool,
    description: 'Allow plaintext gRPC on a non-loopback address. Never in production.' },
  { key: 'tlsCert', env: 'TA_TLS_CERT', flag: '--tls-cert', scope: 'common', schema: z.string().min(1),
    description: 'PEM certificate chain for TLS on gRPC and, on the authority, HTTPS on TA_HTTP_ADDR.' },
  { key: 'tlsKey', env: 'TA_TLS_KEY', flag: '--tls-key', scope: 'common', schema: z.string().min(1),
    description: 'PEM private key for TLS (gRPC, and the authority\'s HTTPS).' },
  { key: 'tlsClientCa', env: 'TA_TLS_CLIENT_CA', flag: '--tls-client-ca', scope: 'common', schema: z.string().min(1),
    description: 'PEM CA bundle: require client certificates signed by it on gRPC (mutual TLS); the authority\'s HTTPS port asks for one and takes identities only from certificates it signed.' },
  { key: 'clientPolicy', env: 'TA_CLIENT_POLICY', flag: '--client-policy', scope: 'authority', schema: z.string().min(1),
    description: 'JSON file saying which client-certificate identity may Issue (audiences, scopes, max TTL) and revoke what; reloaded on SIGHUP. Needs TA_TLS_CLIENT_CA. Unset: privileged calls from loopback only (insecure development mode). See "Caller credentials and policy".' },
  { key: 'maxMessageBytes', env: 'TA_MAX_MESSAGE_BYTES', flag: '--max-message-bytes', scope: 'common', default: byteSizeText(DEFAULTS.maxMessageBytes), schema: byteSize(16 * 1024, 64 * 1024 * 1024),
    description: 'Largest gRPC request accepted; a bigger one is refused with RESOURCE_EXHAUSTED before it is buffered. The largest valid request is about 20 KiB.' },
  { key: 'maxConcurrentStreams', env: 'TA_MAX_CONCURRENT_STREAMS', flag: '--max-concurrent-streams', scope: 'common', default: String(DEFAULTS.maxConcurrentStreams), schema: int(1, 100_000),
    description: 'Calls in flight per client connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS).' },
  { key: 'keepaliveTimeMs', env: 'TA_KEEPALIVE_TIME', flag: '--keepalive-time', scope: 'common', default: '2m', schema: duration('TA_KEEPALIVE_TIME', { allowZero: true, min: 10_000 }),
    description: 'Ping each client connection this often; one that does not answer within 20 s is closed, so vanished clients do not hold resources (0 = off).' },
  { key: 'maxConnectionIdleMs', env: 'TA_MAX_CONNECTION_IDLE', flag: '--max-connection-idle', scope: 'common', default: '5m', schema: duration('TA_MAX_CONNECTION_IDLE', { allowZero: true, min: 1000 }),
    description: 'Close a client connection with no call for this long (GOAWAY; clients reconnect on their next call) (0 = off).' },
  { key: 'maxConnectionAgeMs', env: 'TA_MAX_CONNECTION_AGE', flag: '--max-connection-age', scope: 'common', default: '30m', schema: duration('TA_MAX_CONNECTION_AGE', { allowZero: true, min: 1000 }),
    description: 'Ask clients to reconnect after this long (GOAWAY; calls in flight get 35 s to finish), which rebalances load across replicas (0 = off).' },
  { key: 'rateLimitIssue', env: 'TA_RATE_LIMIT_ISSUE', flag: '--rate-limit-issue', scope: 'authority', default: '200/s:400', schema: rateLimit,
    description: 'Issue calls per caller: `<count>/<s|m|h>[:<burst>]` (burst defaults to the count), or off. The caller is its client-certificate identity, else its IP address. Over it: RESOURCE_EXHAUSTED.' },
  { key: 'rateLimitRefresh', env: 'TA_RATE_LIMIT_REFRESH', flag: '--rate-limit-refresh', scope: 'authority', default: '500/s:1000', schema: rateLimit,
    description: 'Refresh calls per caller (same syntax). Clients behind one NAT or gateway share their IP\'s budget.' },
  { key: 'rateLimitRevoke', env: 'TA_RATE_LIMIT_REVOKE', flag: '--rate-limit-revoke', scope: 'authority', default: '100/s:200', schema: rateLimit,
    description: 'Revoke calls per caller (same syntax). Each revocation is held in memory by every verifier until it expires, so this also bounds their state. Verify is never rate-limited.' },
  { key: 'rateLimitCallers', env: 'TA_RATE_LIMIT_CALLERS', flag: '--rate-limit-callers', scope: 'authority', default: '10000', schema: int(1, 10_000_000),
    description: 'Callers tracked per rate limit (about 100 bytes each); past it the least recently seen caller is forgotten.' },
  { key: 'shutdownGraceMs', env: 'TA_SHUTDOWN_GRACE', flag: '--shutdown-grace', scope: 'common', default: '10s', schema: duration('TA_SHUTDOWN_GRACE', { allowZero: true }),
    description: 'On SIGTERM/SIGINT, wait this long for in-flight calls before forcing them closed.' },
  { key: 'logLevel', env: 'TA_LOG_LEVEL', flag: '--log-level', scope: 'common', default: 'info', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    description: 'Log level (pino).' },
  { key: 'accessLogSample', env: 'TA_ACCESS_LOG_SAMPLE', flag: '--access-log-sample', scope: 'common', default: String(DEFAULTS.accessLogSample), schema: int(0, 1_000_000),
    description: 'Access lines (info) for accepted Verify, ext_authz Check and forward-auth calls: 1 in N, each marked `sampled: N` (0 = none, 1 = every call). Every other call (Issue, Refresh, Revoke …), every denial and every error is always logged; all calls are counted in /metrics.' },
  { key: 'authorityUrl', env: 'TA_AUTHORITY_URL', flag: '--authority-url', scope: 'sidecar', schema: url('authority URL', ['http:', 'https:']),
    description: 'Sidecar: the authority\'s HTTP base URL (its JWKS is at /.well-known/jwks.json).' },
  { key: 'audience', env: 'TA_AUDIENCE', flag: '--audience', scope: 'sidecar', schema: z.string().regex(/^[^\s\u0000-\u001f\u007f]+$/, 'must be one audience, without whitespace'),
    description: 'Sidecar (required): audience required of every token unless a request names another, or `*` to accept any audience when a request names none (logged as a warning at start).' },
  { key: 'instanceId', env: 'TA_INSTANCE_ID', flag: '--instance-id', scope: 'sidecar', schema: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'letters, digits, _ . : - (at most 128)'),
    description: 'Sidecar: name reported in propagation receipts. Default: <hostname>-<pid>.' },
  { key: 'receiptRetentionMs', env: 'TA_RECEIPT_RETENTION', flag: '--receipt-retention', scope: 'sidecar', default: '10m', schema: duration('TA_RECEIPT_RETENTION', { min: 5000 }),
    description: 'Sidecar: how long its propagation receipt is kept after its last report (at least 5s, the receipt TTL). Live for 5 s after each report, then stale: `token-authority status` shows a sidecar that stopped reporting as stale for this long, then forgets it.' },
  { key: 'stalenessBoundMs', env: 'TA_STALENESS_BOUND', flag: '--staleness-bound', scope: 'sidecar', default: durationText(DEFAULTS.stalenessBoundMs), schema: duration('TA_STALENESS_BOUND', { min: 100 }),
    description: 'Sidecar: revocation state older than this is stale (no heartbeat or event seen).' },
  { key: 'stalenessPolicy', env: 'TA_STALENESS_POLICY', flag: '--staleness-policy', scope: 'sidecar', default: DEFAULTS.stalenessPolicy, schema: z.enum(['fail-closed', 'fail-open']),
    description: 'Sidecar: when stale, fail-closed answers STALE; fail-open accepts (counted and logged).' },
  { key: 'jwksCooldownMs', env: 'TA_JWKS_COOLDOWN', flag: '--jwks-cooldown', scope: 'sidecar', default: durationText(DEFAULTS.jwksCooldownMs), schema: duration('TA_JWKS_COOLDOWN', { min: 100 }),
    description: 'Sidecar: minimum time between JWKS refetches triggered by unknown kids.' },
  { key: 'dpopReplayScope', env: 'TA_DPOP_REPLAY_SCOPE', flag: '--dpop-replay-scope', scope: 'common', schema: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, '1-64 characters of A-Z a-z 0-9 . _ : -'),
    description: 'Share the Verify RPC\'s (and, at a sidecar, Check\'s and forward-auth\'s) DPoP replay protection through TA_REDIS_URL with every process of the same scope (the replicas of one service, or of the authority, share a name), so a proof is accepted once across them; each proof is held only for its window. Unset: each process remembers its own proofs. Fails closed: while Redis does not answer, DPoP-bound tokens are refused (INVALID_DPOP_PROOF). The token endpoint\'s proofs stay per replica (each comes with a single-use refresh token or the client\'s certificate).' },
  { key: 'trustForwardedClientCert', env: 'TA_TRUST_FORWARDED_CLIENT_CERT', flag: '--trust-forwarded-client-cert', scope: 'sidecar', default: 'false', schema: bool,
    description: 'Sidecar: take the client certificate of a certificate-bound token from what the proxy forwards: Envoy\'s `x-forwarded-client-cert` `Hash=` on ext_authz (a peer certificate in `source.certificate` still wins), `X-Client-Cert` (URL-encoded PEM, nginx `$ssl_client_escaped_cert`) on forward-auth. Only behind a proxy that removes these headers from client requests: otherwise any client can claim any certificate.' },
  { key: 'tokenCacheSize', env: 'TA_TOKEN_CACHE_SIZE', flag: '--token-cache-size', scope: 'common', default: String(DEFAULTS.tokenCacheSize), schema: int(0, 10_000_000),
    description: 'Verified-token cache entries (0 = off). About 1.5 KB each.' },
  // OpenTelemetry tracing: the standard OTEL_* variables (flags for symmetry). Tracing is off unless
  // they ask for it; the rule is tracingSettings() in tracing-settings.ts (docs/operations.md, Tracing).
  { key: 'otelSdkDisabled', env: 'OTEL_SDK_DISABLED', flag: '--otel-sdk-disabled', scope: 'common', default: 'false', schema: bool,
    description: 'Tracing: `true` turns tracing off whatever the other OTEL_* variables say.' },
  { key: 'otelTracesExporter', env: 'OTEL_TRACES_EXPORTER', flag: '--otel-traces-exporter', scope: 'common', schema: z.enum(['otlp', 'none']),
    description: 'Tracing: `otlp` turns tracing on (to the OTLP endpoint, default http://localhost:4318/v1/traces), `none` off. Unset: on only when an OTLP endpoint variable is set.' },
  { key: 'otelExporterOtlpEndpoint', env: 'OTEL_EXPORTER_OTLP_ENDPOINT', flag: '--otel-exporter-otlp-endpoint', scope: 'common', schema: otlpUrl,
    description: 'Tracing: the collector\'s OTLP/HTTP base URL (spans go to `<url>/v1/traces`). Setting it turns tracing on.' },
  { key: 'otelExporterOtlpTracesEndpoint', env: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', flag: '--otel-exporter-otlp-traces-endpoint', scope: 'common', schema: otlpUrl,
    description: 'Tracing: the full URL spans are posted to (used as is; wins over OTEL_EXPORTER_OTLP_ENDPOINT). Setting it turns tracing on.' },
  { key: 'otelExporterOtlpProtocol', env: 'OTEL_EXPORTER_OTLP_PROTOCOL', flag: '--otel-exporter-otlp-protocol', scope: 'common', default: 'http/protobuf', schema: otlpProtocol,
    description: 'Tracing: `http/protobuf` or `http/json` (OTLP/HTTP; `grpc` is not supported).' },
  { key: 'otelExporterOtlpTracesProtocol', env: 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', flag: '--otel-exporter-otlp-traces-protocol', scope: 'common', schema: otlpProtocol,
    description: 'Tracing: the protocol for spans, winning over OTEL_EXPORTER_OTLP_PROTOCOL.' },
  { key: 'otelServiceName', env: 'OTEL_SERVICE_NAME', flag: '--otel-service-name', scope: 'common', default: 'token-authority', sidecarDefault: 'token-authority-sidecar', schema: z.string().min(1),
    description: 'Tracing: `service.name` of the exported spans (wins over a service.name in OTEL_RESOURCE_ATTRIBUTES).' },
  { key: 'otelResourceAttributes', env: 'OTEL_RESOURCE_ATTRIBUTES', flag: '--otel-resource-attributes', scope: 'common', schema: resourceAttributes,
    description: 'Tracing: extra resource attributes, `key=value,key2=value2` (values percent-encoded), e.g. deployment.environment.name=prod.' },
  { key: 'otelTracesSampler', env: 'OTEL_TRACES_SAMPLER', flag: '--otel-traces-sampler', scope: 'common', default: 'parentbased_always_on', schema: z.enum(OTEL_SAMPLERS),
    description: 'Tracing: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio (parentbased: follow the caller\'s sampled flag in `traceparent`).' },
  { key: 'otelTracesSamplerArg', env: 'OTEL_TRACES_SAMPLER_ARG', flag: '--otel-traces-sampler-arg', scope: 'common', default: '1', schema: ratio,
    description: 'Tracing: the ratio of the traceidratio samplers, 0 to 1.' },
  { key: 'otelBspScheduleDelayMs', env: 'OTEL_BSP_SCHEDULE_DELAY', flag: '--otel-bsp-schedule-delay', scope: 'common', default: '5000', schema: int(1, 600_000),
    description: 'Tracing: milliseconds between two exports of finished spans.' },
  { key: 'otelBspMaxQueueSize', env: 'OTEL_BSP_MAX_QUEUE_SIZE', flag: '--otel-bsp-max-queue-size', scope: 'common', default: '2048', schema: int(1, 1_000_000),
    description: 'Tracing: finished spans held for export; past it new spans are dropped (memory stays bounded when the collector is down).' },
  { key: 'otelBspMaxExportBatchSize', env: 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', flag: '--otel-bsp-max-export-batch-size', scope: 'common', default: '512', schema: int(1, 1_000_000),
    description: 'Tracing: spans per export request (at most OTEL_BSP_MAX_QUEUE_SIZE).' },
] as const satisfies readonly OptionSpec[];

/** The table, row by row, for code that walks it (flags, help, loadConfig, the docs table). */
export const OPTIONS: readonly OptionSpec[] = OPTION_TABLE;

