import { isIP } from 'node:net';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { redactUrl } from '../shared/redact-url.js';
import { OPTION_TABLE, OPTIONS, type ListenAddress, type OptionSpec } from './options.js';
import { tracingSettings, type OtelOptions, type TracingSettings } from './tracing-settings.js';

import type { z } from 'zod';

export type { ListenAddress } from './options.js';

export type ConfigScope = 'authority' | 'sidecar';

/**
 * The configuration's type is computed from the options table (OPTION_TABLE in options.ts), the
 * same rows loadConfig walks: each option of a scope is a member named by its `key`, typed by
 * what its schema returns, present whenever the option has a default and optional otherwise. No
 * member can be declared here that the table does not fill, nor one forgotten that it does.
 */
type Row = (typeof OPTION_TABLE)[number];
type InScope<S extends ConfigScope> = Extract<Row, { scope: 'common' | S }>;
type ValueOf<R extends Row> = z.output<R['schema']>;
type FromTable<S extends ConfigScope> = {
  readonly [R in InScope<S> as R extends { default: string } ? R['key'] : never]: ValueOf<R>;
} & {
  readonly [R in InScope<S> as R extends { default: string } ? never : R['key']]?: ValueOf<R>;
};
/** The parsed value of the setting `K`. */
export type SettingValue<K extends Row['key']> = ValueOf<Extract<Row, { key: K }>>;
/** Flattens an intersection for readable hover text and error messages. */
type Flat<T> = { [K in keyof T]: T[K] } & {};

/**
 * The authority's configuration. Besides the table: `issuer` is always set (default
 * `http://<TA_HTTP_ADDR>`); `tracing` is derived from the OTEL_* rows. Durations are in milliseconds.
 */
export type AuthorityConfig = Flat<Omit<FromTable<'authority'>, 'issuer' | 'allowedAudiences'> & {
  readonly issuer: string;
  readonly allowedAudiences: readonly string[];
  /** OpenTelemetry tracing, resolved from the OTEL_* options; undefined = off (tracing-settings.ts). */
  readonly tracing?: TracingSettings;
}>;

/**
 * The sidecar's configuration. Besides the table: the start-up checks require TA_AUTHORITY_URL,
 * TA_REDIS_URL, TA_ISSUER and TA_AUDIENCE, so they are always set.
 */
export type SidecarConfig = Flat<Omit<FromTable<'sidecar'>, 'authorityUrl' | 'redisUrl' | 'issuer' | 'audience'> & {
  readonly authorityUrl: string;
  readonly redisUrl: string;
  readonly issuer: string;
  readonly audience: string;
  /** OpenTelemetry tracing, resolved from the OTEL_* options; undefined = off (tracing-settings.ts). */
  readonly tracing?: TracingSettings;
}>;

/** The configuration of a scope. */
export type ConfigOf<S extends ConfigScope> = S extends 'sidecar' ? SidecarConfig : AuthorityConfig;

/** The authority's configuration, by the name the authority's modules use. */
export type Config = AuthorityConfig;

/** Raw inputs: environment variables and CLI flags (by option key). Flags win over env. */
export interface ConfigSources {
  env: Readonly<Record<string, string | undefined>>;
  flags?: Readonly<Record<string, string | undefined>>;
}

/**
 * Read and validate the configuration. Every bad value is named (env var and flag) in one error,
 * thrown as TokenAuthorityError(ERR_CONFIG); nothing is partially applied.
 */
export function loadConfig<S extends ConfigScope>(scope: S, sources: ConfigSources): ConfigOf<S> {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const opt of OPTIONS) {
    if (opt.scope !== 'common' && opt.scope !== scope) continue;
    readOption(opt, scope, sources, out, problems);
  }
  if (problems.length === 0) crossChecks(scope, out, problems);
  throwProblems(problems);
  const httpAddr = out.httpAddr as ListenAddress;
  out.issuer ??= `http://${httpAddr.text}`;
  if (Array.isArray(out.allowedAudiences)) Object.freeze(out.allowedAudiences);
  const tracing = tracingSettings(out as unknown as OtelOptions);
  if (tracing) out.tracing = Object.freeze(tracing);
  // Every member was filled from its row above (or by the cross-checks' guarantees), so the
  // record is what ConfigOf<S> computes from the same rows.
  return Object.freeze(out) as ConfigOf<S>;
}

/**
 * One setting, read exactly as loadConfig reads it (its flag, else its environment variable, else
 * its default) and validated by its row: for commands that need only it, such as the client
 * commands' TA_GRPC_ADDR / --grpc-addr. Undefined when unset without a default.
 * @throws TokenAuthorityError ERR_CONFIG naming the variable and the flag.
 */
export function loadSetting<K extends Row['key']>(key: K, sources: ConfigSources, scope: ConfigScope = 'authority'): SettingValue<K> | undefined {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  readOption(byKey(key), scope, sources, out, problems);
  throwProblems(problems);
  return out[key] as SettingValue<K> | undefined;
}

function readOption(opt: OptionSpec, scope: ConfigScope, sources: ConfigSources, out: Record<string, unknown>, problems: string[]): void {
  const raw = sources.flags?.[opt.key] ?? sources.env[opt.env] ?? (scope === 'sidecar' ? (opt.sidecarDefault ?? opt.default) : opt.default);
  if (raw === undefined || (raw === '' && opt.default === undefined)) return;
  const parsed = opt.schema.safeParse(raw);
  if (parsed.success) out[opt.key] = parsed.data;
  else problems.push(`${label(opt)}: ${parsed.error.issues.map((i) => describeIssue(opt, raw, i.message)).join('; ')}`);
}

function throwProblems(problems: readonly string[]): void {
  if (problems.length === 0) return;
  throw new TokenAuthorityError(
    ErrorCodes.CONFIG,
    `invalid configuration (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n  - ${problems.join('\n  - ')}`,
  );
}

function label(opt: OptionSpec): string {
  return `${opt.env} (${opt.flag})`;
}

function describeIssue(opt: OptionSpec, raw: string, message: string): string {
  // zod's enum messages do not echo the value; make every message say what was given (a URL only
  // redacted: it may carry a password).
  if (opt.secret) return message;
  const shown = raw.includes('://') || raw.includes('@') ? redactUrl(raw) : raw;
  return message.includes(`"${shown}"`) ? message : `${message} (got "${shown}")`;
}

const byKey = (key: string) => OPTIONS.find((o) => o.key === key)!;

function crossChecks(scope: ConfigScope, c: Record<string, unknown>, problems: string[]): void {
  const say = (key: string, message: string) => problems.push(`${label(byKey(key))}: ${message}`);
  if (scope === 'authority') {
    if ((c.accessTtlMs as number) > (c.maxAccessTtlMs as number)) say('accessTtlMs', 'must not exceed TA_MAX_ACCESS_TTL');
    if ((c.refreshTtlMs as number) > (c.sessionMaxLifetimeMs as number)) say('refreshTtlMs', 'must not exceed TA_SESSION_MAX_LIFETIME');
    if (c.redisWaitTimeoutMs !== undefined && (c.redisWaitTimeoutMs as number) >= (c.redisCommandTimeoutMs as number)) {
      say('redisWaitTimeoutMs', 'must be below TA_REDIS_COMMAND_TIMEOUT: the wait is one Redis command, and the command timeout would cut it short');
    }
    if (c.redisUrl === undefined && typeof c.redisWaitReplicas === 'number' && c.redisWaitReplicas > 0) {
      say('redisWaitReplicas', 'waiting for replicas needs TA_REDIS_URL: the embedded store has none');
    }
    if ((c.workers as number) > 1 && c.redisUrl === undefined) say('workers', 'more than one worker needs TA_REDIS_URL: the embedded store lives in one process');
    if (c.dpopReplayScope !== undefined && c.redisUrl === undefined) say('dpopReplayScope', 'shares DPoP proofs through the Redis of TA_REDIS_URL, which is not set');
    const rot = c.keyRotationIntervalMs as number;
    if (rot > 0 && rot < 2 * (c.maxAccessTtlMs as number)) {
      say('keyRotationIntervalMs', 'must be 0 (off) or at least twice TA_MAX_ACCESS_TTL, so a retired key outlives every token it signed before the next rotation');
    }
    const hasKek = c.keyEncryptionKey !== undefined || c.keyEncryptionKeyFile !== undefined;
    if (c.keyEncryptionKey !== undefined && c.keyEncryptionKeyFile !== undefined) {
      say('keyEncryptionKeyFile', 'set either TA_KEY_ENCRYPTION_KEY or TA_KEY_ENCRYPTION_KEY_FILE, not both');
    }
    if (c.keyStore === 'redis') {
      if (c.redisUrl === undefined) {
        say('keyStore', 'redis keeps the signing keys in the Redis of TA_REDIS_URL, which is not set');
      }
      if (!hasKek) {
        say('keyStore', 'redis needs a key-encryption key, so that no private key sits in Redis in the clear: set TA_KEY_ENCRYPTION_KEY (32 random bytes, base64 or hex: openssl rand -base64 32) or TA_KEY_ENCRYPTION_KEY_FILE');
      }
    }
    if (c.keyEncryptionKeyPrevious !== undefined && (c.keyEncryptionKeyPrevious as unknown[]).length > 0 && !hasKek) {
      say('keyEncryptionKeyPrevious', 'former key-encryption keys need a current one: set TA_KEY_ENCRYPTION_KEY or TA_KEY_ENCRYPTION_KEY_FILE');
    }
  }
  if (scope === 'sidecar') {
    if (c.authorityUrl === undefined) say('authorityUrl', 'is required for a sidecar (the authority\'s HTTP base URL, e.g. http://127.0.0.1:8080)');
    if (c.redisUrl === undefined) say('redisUrl', 'is required for a sidecar: revocations reach it over Redis pub/sub');
    if (c.issuer === undefined) say('issuer', 'is required for a sidecar: the `iss` every token must carry (the authority\'s TA_ISSUER)');
    if (c.audience === undefined) {
      say('audience', 'is required for a sidecar: the audience every token must carry when a request names none (e.g. TA_AUDIENCE=orders), or * to accept tokens for any audience then');
    }
  }
  if ((c.otelBspMaxExportBatchSize as number) > (c.otelBspMaxQueueSize as number)) say('otelBspMaxExportBatchSize', 'must not exceed OTEL_BSP_MAX_QUEUE_SIZE');
  const hasCert = c.tlsCert !== undefined;
  if (hasCert !== (c.tlsKey !== undefined)) say('tlsCert', 'TA_TLS_CERT and TA_TLS_KEY must be set together');
  if (c.tlsClientCa !== undefined && !hasCert) say('tlsClientCa', 'mutual TLS needs TA_TLS_CERT and TA_TLS_KEY too');
  if (c.clientPolicy !== undefined && c.tlsClientCa === undefined) {
    say('clientPolicy', 'the client policy names callers by their client certificate, so it needs mutual TLS: set TA_TLS_CLIENT_CA (the CA that signs client certificates) with TA_TLS_CERT and TA_TLS_KEY');
  }
  const grpc = c.grpcAddr as ListenAddress;
  if (!hasCert && !c.insecure && !isLoopback(grpc.host)) {
    say('grpcAddr', `${grpc.text} is not a loopback address and TLS is off: set TA_TLS_CERT/TA_TLS_KEY, or TA_INSECURE=true if plaintext is really intended`);
  }
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}
