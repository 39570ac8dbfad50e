import { SIGNING_ALGORITHMS, type SigningAlgorithm } from './jose-rules.js';
import { MAX_ACCESS_TOKEN_BYTES, rejected, type VerifiedClaims, type VerifyReason, type VerifyRequirements, type VerifyResult } from '../shared/claims.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { DEFAULTS } from '../shared/defaults.js';
import { invalidArgument } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import { checkBinding, needsBindingCheck, type BindingCheckOptions } from './binding-check.js';
import { DEFAULT_DPOP_WINDOW_SEC } from './dpop-proof.js';
import { MemoryDpopReplayCache, type DpopReplayCache, type ReplayVerdict, type SyncDpopReplayCache } from './dpop-replay-cache.js';
import type { KeyResolver } from './key-resolver.js';
import type { RevocationSource } from './revocation-source.js';
import { RevocationState } from './revocation-state.js';
import { RevocationSync, type FreshnessStatus, type LostRevocation } from './revocation-sync.js';
import { TokenCache } from './token-cache.js';
import { checkTimeAudienceScopes, verifySignatureAndParse, type TokenCheckOptions } from './verify-token.js';

/** Default of VerifierOptions.maxTokenLifetimeMs: 24 h. */
export const DEFAULT_MAX_TOKEN_LIFETIME_MS = 86_400_000;

/** What to do when the revocation state is staler than `stalenessBoundMs`. */
export type StalenessPolicy = 'fail-closed' | 'fail-open';

/** Options of {@link createVerifier}. Durations are in milliseconds. */
export interface VerifierOptions {
  /** The `iss` every token must carry, exactly. */
  issuer: string;
  /** Where keys come from: the authority's JWKS (see createRemoteKeyResolver) or a local key set. */
  keys: KeyResolver;
  /**
   * Where revocations come from. Omit only where revocation is not wanted: without it, revoked
   * tokens stay valid until they expire.
   */
  revocations?: RevocationSource;
  /** Accepted algorithms. Default: ES256, EdDSA, RS256. `none` and HMAC can never be enabled. */
  algorithms?: readonly SigningAlgorithm[];
  /** Leeway for exp/nbf/iat. Default 30 000. */
  clockSkewMs?: number;
  /** Longer tokens are rejected as MALFORMED before any parsing. Default 8192. */
  maxTokenBytes?: number;
  /** Audience required when a call names none. Default: no audience check unless a call asks. */
  audience?: string;
  /** Verified-token cache entries (0 = off). Default 10 000. */
  tokenCacheSize?: number;
  /** Revocation state older than this is stale. Default 5000. */
  stalenessBoundMs?: number;
  /** Default 'fail-closed': stale state answers STALE. 'fail-open' accepts, counts and logs. */
  stalenessPolicy?: StalenessPolicy;
  /** How long start() waits for the initial revocation load. Default 10 000. */
  startTimeoutMs?: number;
  /**
   * Longest token lifetime accepted, `exp - iat`, in ms: longer ones (and `exp` before `iat` by
   * the clock-skew leeway or more) are MALFORMED. It also bounds how long a revocation entry is held, whatever the feed says.
   * Default 86 400 000 (24 h); set it to the authority's TA_MAX_ACCESS_TTL or above.
   */
  maxTokenLifetimeMs?: number;
  /**
   * How old a DPoP proof may be (`iat`), for `jkt`-bound tokens (RFC 9449 §11.1). Default 60 000.
   * A proof may also be up to `clockSkewMs` ahead.
   */
  dpopWindowMs?: number;
  /**
   * Most DPoP proof ids this verifier holds to refuse replays (each for its proof's window); when
   * full, new proofs are refused (INVALID_DPOP_PROOF) rather than unexpired ids evicted.
   * Default 200 000.
   */
  dpopReplayCacheSize?: number;
  /**
   * A replay cache shared by the replicas of one service (e.g. `createRedisDpopReplayCache` from
   * `token-authority/redis`): `verify()` claims each proof in the verifier's own cache and then in
   * this one, so a proof is single-use across the replicas. `verifySync()` cannot wait: it answers
   * from the verifier's own cache and records the proof in the shared one in the background (the
   * other replicas refuse it once that write lands). Default: none (single-use per verifier).
   */
  dpopReplayCache?: DpopReplayCache;
  clock?: Clock;
  logger?: Logger;
}

/** Counters and freshness, for an API and metrics. */
export interface VerifierStatus {
  revocation: FreshnessStatus & { stale: boolean; entries: { jti: number; sid: number; sub: number } };
  cache: { size: number; capacity: number; hits: number; misses: number; evictions: number; hitRate: number };
  outcomes: Readonly<Record<'valid' | VerifyReason, number>>;
  /** Tokens accepted while stale under the fail-open policy. */
  acceptedWhileStale: number;
  /** The verifier's own DPoP replay cache: live proof ids, its bound, proofs refused because it was full, replays refused. */
  dpopReplay: { size: number; maxEntries: number; refusedFull: number; replays: number };
}

/**
 * A local token verifier: no network call per request.
 *
 * Ownership: the verifier owns only what it starts itself (its feed subscription, its timers).
 * `stop()` ends those and closes none of the resources it was given: stop the key resolver
 * (`keys.stop()`) and close the revocation source (`revocations.close()`) yourself, after the
 * verifier, since you created them and may share them.
 */
export interface Verifier {
  /** Verify a token. Never throws for a bad token: it answers `{ valid: false, reason, detail }`. */
  verify(token: unknown, requirements?: VerifyRequirements): Promise<VerifyResult>;
  /** Like verify, but never waits: an unknown `kid` answers UNKNOWN_KEY (a key refetch is started). */
  verifySync(token: unknown, requirements?: VerifyRequirements): VerifyResult;
  /**
   * Load keys (`keys.start()`: a remote JWKS is fetched), subscribe to revocations and load the
   * log. Resolves once loaded (or after startTimeoutMs).
   */
  start(): Promise<void>;
  /**
   * Stop the verifier's own work: its feed subscription and timers. Closes nothing it was given:
   * the key resolver and the revocation source are the caller's to stop and close.
   */
  stop(): Promise<void>;
  status(): VerifierStatus;
}

/**
 * Hooks of the authority and the sidecar, not part of the library's surface (see
 * {@link createInternalVerifier}).
 */
export interface InternalVerifierHooks {
  /** Called with the applied sequence as it advances (propagation receipts). */
  onApplied?: (seq: number) => void;
  /**
   * Called when the revocation log went back (Redis lost writes this verifier had read) with the
   * revocations this verifier holds that the log now lacks. The authority re-appends them
   * (TokenStore.restoreRevocations).
   */
  onLostRevocations?: (lost: LostRevocation[]) => void;
}

/** The verifier as the authority and the sidecar use it: the public one plus their hooks. */
export interface InternalVerifier extends Verifier {
  /**
   * Like verify, but answers synchronously when it can: only an unknown `kid` (a key set to
   * refetch) returns a promise. The Verify RPC's hot path.
   */
  verifyNow(token: unknown, requirements?: VerifyRequirements): VerifyResult | Promise<VerifyResult>;
  /** Apply a revocation now, ahead of the feed (the authority does this for its own Revoke). */
  applyRevocation(event: RevocationEvent): void;
  /**
   * Does a live revocation entry cover this session (its sid, or its subject below this
   * generation)? The authority asks before it refreshes a session, whatever the store says.
   */
  isSessionRevoked(session: { sessionId: string; subject: string; generation: number }): boolean;
}

/** The logger each verifier was created with, for `requireToken` (module-private, never a property). */
const loggers = new WeakMap<Verifier, Logger>();

/** The logger a verifier of this copy of the library was created with, if any. */
export function verifierLogger(verifier: Verifier): Logger | undefined {
  return loggers.get(verifier);
}

/**
 * Create a local verifier: the same checks and reason codes as the authority's Verify RPC
 * (signature over an algorithm allow-list, `typ: at+jwt`, iss, exp/nbf/iat with leeway, audience,
 * scopes), a revocation state kept current from the feed, and a cache of verified tokens.
 *
 * @example
 * const keys = createRemoteKeyResolver({ jwksUrl: 'https://auth.example.com/.well-known/jwks.json' });
 * const revocations = createRedisRevocationSource({ url: process.env.REDIS_URL }); // token-authority/redis
 * const verifier = createVerifier({ issuer: 'https://auth.example.com', keys, revocations });
 * await verifier.start();
 * const result = await verifier.verify(token, { audience: 'orders' });
 * // on shutdown: the verifier first, then what you gave it
 * await verifier.stop();
 * keys.stop();
 * await revocations.close();
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const inner = createInternalVerifier(options);
  // Only the public methods: the internal ones are not reachable from a library caller.
  const verifier: Verifier = { verify: inner.verify, verifySync: inner.verifySync, start: inner.start, stop: inner.stop, status: inner.status };
  loggers.set(verifier, options.logger ?? silentLogger);
  return verifier;
}

/**
 * The verifier behind {@link createVerifier}, with the hooks of the authority and the sidecar.
 * Not exported by the package: `src/authority` and `src/sidecar` import it from this module.
 */
export function createInternalVerifier(options: VerifierOptions, hooks: InternalVerifierHooks = {}): InternalVerifier {
  const algorithms = options.algorithms ?? SIGNING_ALGORITHMS;
  for (const alg of algorithms) {
    if (!(SIGNING_ALGORITHMS as readonly string[]).includes(alg)) {
      throw invalidArgument(`algorithms: "${String(alg)}" is not supported (allowed: ${SIGNING_ALGORITHMS.join(', ')})`);
    }
  }
  if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw invalidArgument('issuer is required');
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const skewMs = options.clockSkewMs ?? DEFAULTS.clockSkewMs;
  const lifetimeMs = options.maxTokenLifetimeMs ?? DEFAULT_MAX_TOKEN_LIFETIME_MS;
  if (!Number.isSafeInteger(lifetimeMs) || lifetimeMs < 1000) throw invalidArgument('maxTokenLifetimeMs must be an integer of at least 1000 (ms)');
  const checkOpts: TokenCheckOptions = {
    issuer: options.issuer,
    algorithms,
    clockSkewSec: Math.floor(skewMs / 1000),
    maxTokenBytes: options.maxTokenBytes ?? MAX_ACCESS_TOKEN_BYTES,
    maxLifetimeSec: Math.floor(lifetimeMs / 1000),
  };
  const dpopWindowMs = options.dpopWindowMs ?? DEFAULT_DPOP_WINDOW_SEC * 1000;
  if (!Number.isSafeInteger(dpopWindowMs) || dpopWindowMs < 1000) throw invalidArgument('dpopWindowMs must be an integer of at least 1000 (ms)');
  const replaySize = options.dpopReplayCacheSize;
  if (replaySize !== undefined && (!Number.isSafeInteger(replaySize) || replaySize < 1)) throw invalidArgument('dpopReplayCacheSize must be a positive integer');
  const localReplay = new MemoryDpopReplayCache({ maxEntries: replaySize });
  const shared = options.dpopReplayCache;
  if (shared !== undefined && typeof shared?.claim !== 'function') throw invalidArgument('dpopReplayCache must have a claim(id, untilMs, nowMs) method');
  // Own cache first (so verifySync and verify never accept one proof twice between them), then the shared one.
  const sharedReplay: DpopReplayCache | undefined = shared && {
    claim(id: string, untilMs: number, nowMs: number): ReplayVerdict | Promise<ReplayVerdict> {
      const local = localReplay.claim(id, untilMs, nowMs);
      return local === 'fresh' ? shared.claim(id, untilMs, nowMs) : local;
    },
  };
  // verifySync cannot wait for the shared cache: it answers from its own and records the proof in
  // the shared one in the background, so the other replicas refuse it once that write lands.
  const syncReplay: SyncDpopReplayCache = shared
    ? {
        claim(id: string, untilMs: number, nowMs: number): ReplayVerdict {
          const local = localReplay.claim(id, untilMs, nowMs);
          if (local === 'fresh') {
            try {
              void Promise.resolve(shared.claim(id, untilMs, nowMs)).catch(() => undefined);
            } catch {
              // a shared cache that throws: the local answer stands
            }
          }
          return local;
        },
      }
    : localReplay;
  const dpopWindowSec = Math.floor(dpopWindowMs / 1000);
  const syncBinding: BindingCheckOptions = { dpopWindowSec, replay: syncReplay };
  const asyncBinding: BindingCheckOptions = sharedReplay ? { dpopWindowSec, replay: sharedReplay } : syncBinding;
  const boundMs = options.stalenessBoundMs ?? DEFAULTS.stalenessBoundMs;
  const failOpen = (options.stalenessPolicy ?? DEFAULTS.stalenessPolicy) === 'fail-open';
  const capacity = options.tokenCacheSize ?? DEFAULTS.tokenCacheSize;
  const cache = capacity > 0 ? new TokenCache({ capacity, clock, clockSkewSec: checkOpts.clockSkewSec }) : undefined;
  const state = new RevocationState();
  const sync = options.revocations
    ? new RevocationSync({
        source: options.revocations,
        state,
        clock,
        logger,
        onApplied: hooks.onApplied,
        onLostRevocations: hooks.onLostRevocations,
        // No token this verifier accepts outlives now + lifetime + skew (iat) + skew (exp).
        maxEntryLifetimeMs: lifetimeMs + 2 * skewMs,
      })
    : undefined;
  const outcomes: Record<string, number> = { valid: 0 };
  let acceptedWhileStale = 0;
  let pruneTimer: NodeJS.Timeout | undefined;

  const countNow = (result: VerifyResult): VerifyResult => {
    const key = result.valid ? 'valid' : result.reason;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
    return result;
  };
  const count = (result: VerifyResult | Promise<VerifyResult>): VerifyResult | Promise<VerifyResult> =>
    result instanceof Promise ? result.then(countNow) : countNow(result);

  /**
   * Everything after the signature: time, audience, scopes, revocation, staleness, and last the
   * binding (so a proof's id is claimed only for a token that is otherwise valid).
   */
  const finish = (claims: VerifiedClaims, token: string, req: VerifyRequirements | undefined, nowMs: number, binding: BindingCheckOptions): VerifyResult | Promise<VerifyResult> => {
    const effective = req?.audience === undefined && options.audience !== undefined ? { ...req, audience: options.audience } : (req ?? {});
    const checked = checkTimeAudienceScopes(claims, effective, checkOpts, Math.floor(nowMs / 1000));
    if (!checked.valid) return checked;
    if (state.isRevoked(claims, nowMs)) return rejected('REVOKED', 'the token, its session or its subject generation was revoked');
    if (sync && sync.ageMs() > boundMs) {
      if (!failOpen) {
        return rejected('STALE', `revocation state is ${describeAge(sync.ageMs())} old (bound ${boundMs}ms): cannot tell whether the token was revoked`);
      }
      acceptedWhileStale++;
      if (acceptedWhileStale === 1 || acceptedWhileStale % 1000 === 0) {
        logger.warn({ acceptedWhileStale, ageMs: sync.ageMs() }, 'accepting tokens with stale revocation state (fail-open)');
      }
    }
    if (!needsBindingCheck(claims, effective)) return checked;
    return checkBinding(checked, token, effective, checkOpts, binding, Math.floor(nowMs / 1000));
  };

  /** One evaluation, uncounted. `unknownKid` is set when the only problem was a kid not known yet. */
  const evaluate = (token: unknown, req: VerifyRequirements | undefined, binding: BindingCheckOptions): { result: VerifyResult | Promise<VerifyResult>; unknownKid?: string } => {
    const nowMs = clock.nowMs();
    // Oversized input is refused by the parser before it is ever hashed as a cache key.
    if (cache && typeof token === 'string' && token.length <= checkOpts.maxTokenBytes) {
      const hit = cache.get(token);
      // A key withdrawn from the key set takes its cached tokens with it.
      if (hit && options.keys.get(hit.keyId)) return { result: finish(hit, token, req, nowMs, binding) };
      if (hit) cache.delete(token);
    }
    const parsed = verifySignatureAndParse(token, options.keys, checkOpts);
    if (!parsed.ok) {
      return { result: rejected(parsed.reason, parsed.detail), ...(parsed.reason === 'UNKNOWN_KEY' && parsed.kid !== undefined ? { unknownKid: parsed.kid } : {}) };
    }
    cache?.set(token as string, parsed.claims);
    return { result: finish(parsed.claims, token as string, req, nowMs, binding) };
  };

  const verifyNow: InternalVerifier['verifyNow'] = (token, req) => {
    const first = evaluate(token, req, asyncBinding);
    if (first.unknownKid === undefined || !options.keys.resolveUnknown) return count(first.result);
    // An unknown kid may be a key the authority just published: refetch (rate-limited) and retry once.
    return options.keys.resolveUnknown(first.unknownKid).then(
      (key) => count(key ? evaluate(token, req, asyncBinding).result : first.result),
      () => count(first.result),
    );
  };

  // Methods close over local functions, never `this`, so `const { verify } = verifier` works.
  const verifier: InternalVerifier = {
    verifySync(token, req) {
      const { result, unknownKid } = evaluate(token, req, syncBinding);
      if (unknownKid !== undefined) void options.keys.resolveUnknown?.(unknownKid).catch(() => undefined);
      // The local replay cache answers synchronously, so the binding stage does too.
      return countNow(result as VerifyResult);
    },
    verifyNow,
    async verify(token, req) {
      return verifyNow(token, req);
    },
    isSessionRevoked({ sessionId, subject, generation }) {
      return state.isRevoked({ tokenId: '', sessionId, subject, generation } as VerifiedClaims, clock.nowMs());
    },
    applyRevocation(event) {
      if (sync) sync.applyLocal(event);
      else state.apply(event);
    },
    async start() {
      pruneTimer = setInterval(() => {
        const now = clock.nowMs();
        state.prune(now);
        localReplay.prune(now);
      }, 1000);
      pruneTimer.unref();
      await Promise.all([options.keys.start?.(), sync?.start(options.startTimeoutMs)]);
    },
    async stop() {
      // Only what start() opened: the key resolver and the revocation source are the caller's.
      if (pruneTimer) clearInterval(pruneTimer);
      await sync?.stop();
    },
    status() {
      const fresh: FreshnessStatus = sync?.status() ?? {
        appliedSeq: 0, headSeq: 0, ageMs: 0, lag: 0, connected: false, synced: false, resyncs: 0,
      };
      const c = cache?.stats() ?? { size: 0, hits: 0, misses: 0, evictions: 0 };
      return {
        revocation: { ...fresh, stale: sync ? fresh.ageMs > boundMs : false, entries: state.stats() },
        cache: { ...c, capacity, hitRate: c.hits + c.misses > 0 ? c.hits / (c.hits + c.misses) : 0 },
        outcomes: { ...outcomes } as VerifierStatus['outcomes'],
        acceptedWhileStale,
        dpopReplay: localReplay.stats(),
      };
    },
  };
  loggers.set(verifier, logger);
  return verifier;
}

function describeAge(ms: number): string {
  return Number.isFinite(ms) ? `${Math.round(ms)}ms` : 'not yet loaded, infinitely';
}
