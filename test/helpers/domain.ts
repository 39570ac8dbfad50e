/**
 * The domain class TokenAuthority on its own: no gRPC server, no network, no files. Built the way
 * src/authority/authority-server.ts builds it (a KeyManager over a memory key store, a
 * MemoryTokenStore, the local verifier fed by that store, a session seal), on a ManualClock.
 * This is the one place unit tests construct it: when the wiring changes, adapt it here.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createLoopbackPolicy, type AccessPolicy } from '../../src/authority/admission.js';
import { createSessionSeal, type SessionSeal } from '../../src/authority/session-records.js';
import { TokenAuthority, type TokenAuthorityStore } from '../../src/authority/token-authority.js';
import type { RevocationSource } from '../../src/verifier/revocation-source.js';
import type { Principal } from '../../src/shared/principal.js';
import { KeyManager } from '../../src/keys/key-manager.js';
import { MemoryKeyStore } from '../../src/keys/memory-key-store.js';
import { ManualClock } from '../../src/shared/clock.js';
import { silentLogger } from '../../src/shared/logger.js';
import { MemoryTokenStore } from '../../src/store/memory-token-store.js';
import { createInternalVerifier, DEFAULT_MAX_TOKEN_LIFETIME_MS, type InternalVerifier } from '../../src/verifier/create-verifier.js';
import { TEST_ISSUER } from './authority.js';

/** A loopback caller without a certificate (the development policy lets it do everything). */
export const LOOPBACK_CALLER: Principal = { peer: '127.0.0.1:50000', address: '127.0.0.1', loopback: true, identities: [] };

/** A remote caller with certificate identities: SAN URIs (a value with ":"), else SAN DNS names. */
export function remoteCaller(...identities: string[]): Principal {
  return { peer: '10.0.0.7:4242', address: '10.0.0.7', loopback: false, identities: identities.map((value) => ({ kind: value.includes(':') ? 'uri' : 'dns', value })) };
}

export interface DomainOptions {
  /** Configuration as environment entries (TA_REFRESH_GRACE, …) over the test defaults. */
  env?: Record<string, string>;
  /** Default: the development policy (loopback callers hold every right). */
  policy?: AccessPolicy;
  /** Default: a ManualClock at the current time. */
  clock?: ManualClock;
  /**
   * 'live' (default): the verifier follows the store's feed, as in the server. 'held': the feed
   * delivers nothing, so the verifier knows only what it loaded at start and what the authority
   * applied to it directly (its own Revoke, a reuse it detected).
   */
  feed?: 'live' | 'held';
}

export interface Domain {
  readonly authority: TokenAuthority;
  readonly clock: ManualClock;
  readonly store: MemoryTokenStore;
  readonly keys: KeyManager;
  readonly verifier: InternalVerifier;
  readonly sessionSeal: SessionSeal;
  /** The seal's secret and its id (for tests that make seals the way an earlier version did). */
  readonly sealSecret: { id: string; secret: Buffer };
  readonly config: Readonly<Config>;
  /** How often onReuseDetected was called. */
  readonly reuses: number;
  close(): Promise<void>;
}

export async function startDomain(options: DomainOptions = {}): Promise<Domain> {
  const clock = options.clock ?? new ManualClock(Date.now());
  const config = loadConfig('authority', { env: { TA_ISSUER: TEST_ISSUER, TA_LOG_LEVEL: 'silent', ...options.env } });
  const store = new MemoryTokenStore({ clock, retentionMs: config.maxAccessTtlMs + config.clockSkewMs });
  const keys = new KeyManager({
    store: new MemoryKeyStore(),
    algorithm: config.keyAlgorithm,
    rotationIntervalMs: 0,
    retainMs: config.maxAccessTtlMs + config.clockSkewMs,
    reloadIntervalMs: 0,
    clock,
    logger: silentLogger,
  });
  const verifier = createInternalVerifier({
    issuer: config.issuer,
    keys: keys.resolver,
    revocations: options.feed === 'held' ? heldFeed(store) : store,
    clockSkewMs: config.clockSkewMs,
    tokenCacheSize: config.tokenCacheSize,
    // The manual clock jumps hours without heartbeats: staleness is the verifier's rule, tested
    // there; here it must not hide REVOKED/VALID answers.
    stalenessBoundMs: 10 * 365 * 86_400_000,
    maxTokenLifetimeMs: Math.max(config.maxAccessTtlMs, DEFAULT_MAX_TOKEN_LIFETIME_MS),
    clock,
    logger: silentLogger,
  });
  const sealSecret = { id: 'unit', secret: randomBytes(32) };
  const sessionSeal = createSessionSeal(sealSecret);
  let reuses = 0;
  const authority = new TokenAuthority({
    sessionSeal,
    settings: config,
    keys,
    store: narrowed(store),
    verifier,
    policy: options.policy ?? createLoopbackPolicy({ insecure: false }),
    clock,
    logger: silentLogger,
    onReuseDetected: () => void reuses++,
  });
  await keys.start();
  await verifier.start();
  return {
    authority,
    clock,
    store,
    keys,
    verifier,
    sessionSeal,
    sealSecret,
    config,
    get reuses() {
      return reuses;
    },
    async close() {
      await verifier.stop();
      await keys.stop();
      await store.close();
    },
  };
}

/** The store's log, behind a feed that stays connected and delivers no message. */
function heldFeed(store: MemoryTokenStore): RevocationSource {
  return {
    readLog: (afterSeq, limit) => store.readLog(afterSeq, limit),
    subscribe: (listener) => store.subscribe({ onMessage: () => {}, onReady: () => listener.onReady(), onDisconnect: (err) => listener.onDisconnect(err) }),
  };
}

/**
 * The store as TokenAuthority declares it needs it, and nothing more: the suite fails to compile
 * if the authority needs more, and a call of anything else cannot happen. Calls go to the store's
 * methods at call time, so a test that wraps one of them still sees the authority's calls.
 */
function narrowed(store: MemoryTokenStore): TokenAuthorityStore {
  return {
    createSession: (input) => store.createSession(input),
    findSessionByRefresh: (hash) => store.findSessionByRefresh(hash),
    getSession: (id) => store.getSession(id),
    rotateRefresh: (input) => store.rotateRefresh(input),
    loadRefresh: (hash) => store.loadRefresh(hash),
    revoke: (input) => store.revoke(input),
  };
}
