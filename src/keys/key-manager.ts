/**
 * The signing keys of the authority, their lifecycle (next → active → retired → removed), and
 * signing an access token with the active one (`createSigner`, at the end).
 *
 * A `next` key is published one full rotation interval before it signs, so every verifier
 * that honours the JWKS max-age already holds it when the first token under it arrives; a
 * `retired` key stays published until every token it signed has expired. All replicas (and the
 * CLI) share one key-set document in the store; every change is a compare-and-set on its
 * version, so concurrent rotations resolve to exactly one.
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { ACCESS_TOKEN_TYP, isSigningAlgorithm, jwsCryptoArgs, type SigningAlgorithm } from '../verifier/jose-rules.js';
import type { AccessTokenPayload } from '../shared/claims.js';
import { systemClock, type Clock } from '../shared/clock.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import type { KeyResolver, VerificationKey } from '../verifier/key-resolver.js';
import { generateSigningKey, type GeneratedKey } from './key-generator.js';
import { importPrivateKey, importPublicKey } from './key-material.js';
import { parseKeySetDocument } from './key-set-document.js';
import type { KeySetDocument, KeyState, KeyStore, PublicJwk, StoredKey } from './key-store.js';

/** Options of {@link KeyManager}. */
export interface KeyManagerOptions {
  store: KeyStore;
  /** The algorithm of keys this manager generates. Changing it takes effect at the next rotation. */
  algorithm: SigningAlgorithm;
  /** Scheduled rotation period; 0 rotates only on demand. */
  rotationIntervalMs: number;
  /** How long a retired key stays published: max access-token TTL + clock skew. */
  retainMs: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * How often the store is re-read to pick up changes made by another process (the CLI, another
   * replica); 0 disables the periodic re-read. Default 5000.
   */
  reloadIntervalMs?: number;
}

/** What may be said about a key: everything but its private material. */
export interface KeyInfo {
  kid: string;
  alg: SigningAlgorithm;
  state: KeyState;
  createdAt: number;
  activatedAt?: number;
  retiredAt?: number;
  removeAfter?: number;
}

/** A published JWKS. Frozen: it is shared by every caller until the key set changes. */
export interface Jwks {
  readonly keys: readonly PublicJwk[];
}

/** How many times a write is retried after losing a compare-and-set. */
const MAX_CAS_ATTEMPTS = 5;
/** A flood of tokens with made-up kids costs at most one store read per this period. */
const UNKNOWN_KID_RELOAD_COOLDOWN_MS = 1000;
/** Lower bound between timer ticks, so a failing store is not hammered in a loop. */
const MIN_TICK_MS = 1000;
/** setTimeout's ceiling (a 32-bit signed int); longer delays fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const STATE_ORDER: Readonly<Record<KeyState, number>> = { active: 0, next: 1, retired: 2 };

/** Publication order: active first (most tokens are signed by it), then next, then newest retired. */
function publicationOrder(a: StoredKey, b: StoredKey): number {
  return STATE_ORDER[a.state] - STATE_ORDER[b.state] || (b.retiredAt ?? 0) - (a.retiredAt ?? 0);
}

function isExpired(key: StoredKey, nowMs: number): boolean {
  return key.state === 'retired' && (key.removeAfter ?? 0) <= nowMs;
}

function infoOf(key: StoredKey): KeyInfo {
  const info: KeyInfo = { kid: key.kid, alg: key.alg, state: key.state, createdAt: key.createdAt };
  if (key.activatedAt !== undefined) info.activatedAt = key.activatedAt;
  if (key.retiredAt !== undefined) info.retiredAt = key.retiredAt;
  if (key.removeAfter !== undefined) info.removeAfter = key.removeAfter;
  return info;
}

function storedKey(generated: GeneratedKey, state: KeyState, nowMs: number): StoredKey {
  const key: StoredKey = { ...generated, state, createdAt: nowMs };
  if (state === 'active') key.activatedAt = nowMs;
  return key;
}

function configError(message: string): TokenAuthorityError {
  return new TokenAuthorityError(ErrorCodes.CONFIG, `KeyManager: ${message}`);
}

function checkDuration(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw configError(`${name} must be a non-negative number of milliseconds (got ${String(value)})`);
  }
  return value;
}

/** Owns the signing keys: serves the active signer, the published JWKS and a local key resolver. */
export class KeyManager {
  /** Every published key (next, active, retired-not-yet-removed), for the local verifier. */
  readonly resolver: KeyResolver;

  private readonly store: KeyStore;
  private readonly algorithm: SigningAlgorithm;
  private readonly rotationIntervalMs: number;
  private readonly retainMs: number;
  private readonly reloadIntervalMs: number;
  private readonly clock: Clock;
  private readonly log: Logger;

  private doc: KeySetDocument | undefined;
  private published = new Map<string, VerificationKey>();
  private publishedKids = '';
  private activeSigner: Signer | undefined;
  private jwksView: Jwks = Object.freeze({ keys: Object.freeze([]) });
  private jwksText = '{"keys":[]}';
  private nextRemovalAt: number | undefined;
  private readonly listeners = new Set<() => void>();

  private started = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Every operation that reads-then-writes the store runs on this chain, one at a time. */
  private tail: Promise<unknown> = Promise.resolve();
  /** A generated `next` key kept across compare-and-set retries of one rotation. */
  private pendingNext: GeneratedKey | undefined;
  private unknownKidReload: Promise<unknown> | undefined;
  private lastUnknownKidReloadMs = Number.NEGATIVE_INFINITY;

  constructor(options: KeyManagerOptions) {
    if (typeof options.store?.load !== 'function' || typeof options.store.save !== 'function') {
      throw configError('store must implement load() and save()');
    }
    if (!isSigningAlgorithm(options.algorithm)) {
      throw configError(`algorithm must be ES256, EdDSA or RS256 (got ${String(options.algorithm)})`);
    }
    this.store = options.store;
    this.algorithm = options.algorithm;
    this.rotationIntervalMs = checkDuration('rotationIntervalMs', options.rotationIntervalMs);
    this.retainMs = checkDuration('retainMs', options.retainMs);
    this.reloadIntervalMs = checkDuration('reloadIntervalMs', options.reloadIntervalMs ?? 5000);
    this.clock = options.clock ?? systemClock;
    this.log = (options.logger ?? silentLogger).child({ component: 'key-manager' });
    this.resolver = {
      get: (kid) => this.published.get(kid),
      resolveUnknown: (kid) => this.resolveUnknownKid(kid),
    };
  }

  /**
   * Loads the key set (initialising it with an active and a next key if the store is empty),
   * repairs what is missing, and starts the rotation/reload timer.
   * @throws TokenAuthorityError ERR_KEY if the stored keys are unreadable or invalid.
   */
  async start(): Promise<void> {
    if (this.started) throw new TokenAuthorityError(ErrorCodes.FAILED_PRECONDITION, 'KeyManager already started');
    this.started = true;
    try {
      await this.exclusive(() => this.initialise());
    } catch (err) {
      this.started = false;
      throw err;
    }
    this.scheduleTick();
  }

  /**
   * Stops the timers, waits for an operation in flight and closes the store (the manager owns the
   * store it was given). The keys held in memory stay usable.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.tail;
    await this.store.close?.();
  }

  /**
   * The active key's signer.
   * @throws TokenAuthorityError ERR_FAILED_PRECONDITION if there is no active key (not started).
   */
  signer(): Signer {
    if (this.activeSigner === undefined) {
      throw new TokenAuthorityError(ErrorCodes.FAILED_PRECONDITION, 'no active signing key; start the key manager first');
    }
    return this.activeSigner;
  }

  /** The published key set, active key first. */
  jwks(): Jwks {
    return this.jwksView;
  }

  /** {@link jwks} serialised; recomputed only when the key set changes. */
  jwksJson(): string {
    return this.jwksText;
  }

  /**
   * Cache-Control max-age for the JWKS: a tenth of the rotation interval, so a `next` key reaches
   * every verifier long before it signs, within [60, 3600] seconds; 3600 without rotation.
   */
  jwksMaxAgeSec(): number {
    if (this.rotationIntervalMs === 0) return 3600;
    return Math.min(3600, Math.max(60, Math.floor(this.rotationIntervalMs / 1000 / 10)));
  }

  /**
   * Rotates now: next → active, active → retired, and a fresh next key. If another process
   * rotates at the same moment, its rotation stands and this call does not rotate again.
   * @returns the key that is active afterwards.
   */
  async rotate(): Promise<KeyInfo> {
    this.assertStarted();
    return this.exclusive(async () => {
      await this.reloadInternal();
      return this.rotateInternal('manual');
    });
  }

  /** Re-reads the store. @returns true if the key set changed. */
  async reload(): Promise<boolean> {
    this.assertStarted();
    return this.exclusive(() => this.reloadInternal());
  }

  /**
   * What the timer does on every tick: reload, remove retired keys past `removeAfter`, rotate if
   * due. Public so tests with a manual clock and operator tooling can run it on demand.
   */
  async runMaintenance(): Promise<void> {
    this.assertStarted();
    return this.exclusive(async () => {
      try {
        await this.reloadInternal();
        await this.purgeInternal();
        if (this.isRotationDue(this.requireDoc(), this.clock.nowMs())) await this.rotateInternal('scheduled');
      } finally {
        // Even with the store down, a key past its retention stops being published.
        this.refreshView(this.requireDoc());
      }
    });
  }

  /** Every key in the set (including retired keys awaiting removal), in publication order. */
  list(): KeyInfo[] {
    return [...(this.doc?.keys ?? [])].sort(publicationOrder).map(infoOf);
  }

  /** Calls `listener` after every change of the key set. @returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  // ---- internals: everything below runs inside exclusive() unless stated ----

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => {});
    return run;
  }

  private assertStarted(): void {
    if (!this.started) throw new TokenAuthorityError(ErrorCodes.FAILED_PRECONDITION, 'KeyManager not started');
  }

  private requireDoc(): KeySetDocument {
    if (this.doc === undefined) throw new TokenAuthorityError(ErrorCodes.FAILED_PRECONDITION, 'KeyManager has no key set');
    return this.doc;
  }

  private async loadDoc(): Promise<KeySetDocument | undefined> {
    const raw = await this.store.load();
    // Stores are not trusted to validate: a Redis value or a hand-edited file is checked here too.
    return raw === undefined ? undefined : parseKeySetDocument(raw, 'key store');
  }

  private async initialise(): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const loaded = await this.loadDoc();
      if (loaded === undefined) {
        const [active, next] = await Promise.all([generateSigningKey(this.algorithm), generateSigningKey(this.algorithm)]);
        const now = this.clock.nowMs();
        const doc: KeySetDocument = { version: 1, keys: [storedKey(active, 'active', now), storedKey(next, 'next', now)] };
        if (await this.store.save(doc, 0)) {
          this.apply(doc);
          this.log.info({ kid: active.kid, nextKid: next.kid, alg: this.algorithm }, 'initialised a new signing key set');
          return;
        }
        continue; // Another process initialised first: use its keys.
      }
      this.apply(loaded);
      const repaired = await this.repair(loaded);
      if (repaired === undefined || (await this.store.save(repaired, loaded.version))) {
        if (repaired !== undefined) this.apply(repaired);
        this.warnOnAlgorithmMismatch();
        this.log.info({ kid: this.activeSigner?.kid, version: this.doc?.version, keys: this.doc?.keys.length }, 'loaded the signing key set');
        return;
      }
    }
    throw new TokenAuthorityError(ErrorCodes.KEY, `could not initialise the key set: it changed under ${MAX_CAS_ATTEMPTS} attempts in a row`);
  }

  /**
   * Restores the invariant "one active and one next key" and drops expired retired keys. A next
   * key of another algorithm than configured is kept: replacing it here would make every start
   * of a differently configured process (say, an operator's CLI) rewrite the key set.
   * @returns the repaired document, or undefined if nothing was needed.
   */
  private async repair(doc: KeySetDocument): Promise<KeySetDocument | undefined> {
    const now = this.clock.nowMs();
    const keys = doc.keys.filter((k) => !isExpired(k, now)).map((k) => ({ ...k }));
    let changed = keys.length !== doc.keys.length;
    let next = keys.find((k) => k.state === 'next');
    if (!keys.some((k) => k.state === 'active')) {
      changed = true;
      if (next !== undefined) {
        next.state = 'active';
        next.activatedAt = now;
        this.log.warn({ kid: next.kid }, 'key set had no active key; promoted the next key');
        next = undefined;
      } else {
        const fresh = storedKey(await generateSigningKey(this.algorithm), 'active', now);
        keys.push(fresh);
        this.log.warn({ kid: fresh.kid }, 'key set had no active or next key; generated an active key that signs at once');
      }
    }
    if (next === undefined) {
      keys.push(storedKey(await generateSigningKey(this.algorithm), 'next', now));
      changed = true;
    }
    return changed ? { version: doc.version + 1, keys } : undefined;
  }

  private warnOnAlgorithmMismatch(): void {
    const keys = this.doc?.keys ?? [];
    const active = keys.find((k) => k.state === 'active');
    const next = keys.find((k) => k.state === 'next');
    if (active === undefined || active.alg === this.algorithm) return;
    // No silent switch: only keys generated from now on use the configured algorithm, and each
    // is published for a full interval as `next` before it signs.
    this.log.warn(
      { kid: active.kid, alg: active.alg, nextKid: next?.kid, nextAlg: next?.alg, configured: this.algorithm },
      next?.alg === this.algorithm
        ? 'the active key uses another algorithm than configured; the next rotation activates a key of the configured algorithm'
        : 'the active key uses another algorithm than configured; the next rotation generates a key of the configured algorithm, which signs from the rotation after',
    );
  }

  private isRotationDue(doc: KeySetDocument, nowMs: number): boolean {
    if (this.rotationIntervalMs === 0) return false;
    const active = doc.keys.find((k) => k.state === 'active');
    // Measured from the key set's own activatedAt, so a restart neither resets nor repeats it.
    // A replica that just lost a rotation race sees the winner's fresh activatedAt here and
    // stands down (the spec's "not within interval/2" holds a fortiori).
    return active === undefined || nowMs >= (active.activatedAt ?? 0) + this.rotationIntervalMs;
  }

  private async rotateInternal(reason: 'manual' | 'scheduled'): Promise<KeyInfo> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const base = this.requireDoc();
      const now = this.clock.nowMs();
      const activeBefore = base.keys.find((k) => k.state === 'active');
      if (reason === 'scheduled' && !this.isRotationDue(base, now)) return infoOf(activeBefore!);
      const { doc, promoted, signer } = await this.buildRotation(base, now);
      if (await this.store.save(doc, base.version)) {
        this.pendingNext = undefined;
        this.apply(doc, signer);
        this.log.info(
          { kid: promoted.kid, alg: promoted.alg, retiredKid: activeBefore?.kid, nextKid: doc.keys.find((k) => k.state === 'next')?.kid, reason },
          'rotated the signing key',
        );
        return infoOf(promoted);
      }
      await this.reloadInternal();
      const activeAfter = this.requireDoc().keys.find((k) => k.state === 'active');
      if (reason === 'manual' && activeAfter !== undefined && activeAfter.kid !== activeBefore?.kid) {
        // Another process rotated between our read and our write: that rotation is the one asked for.
        this.log.info({ kid: activeAfter.kid }, 'another process rotated the key concurrently; not rotating again');
        return infoOf(activeAfter);
      }
    }
    throw new TokenAuthorityError(ErrorCodes.STORE_UNAVAILABLE, `could not rotate: the key set changed under ${MAX_CAS_ATTEMPTS} attempts in a row`);
  }

  private async buildRotation(base: KeySetDocument, now: number): Promise<{ doc: KeySetDocument; promoted: StoredKey; signer: Signer }> {
    const keys = base.keys.filter((k) => !isExpired(k, now)).map((k) => ({ ...k }));
    const active = keys.find((k) => k.state === 'active');
    let promoted = keys.find((k) => k.state === 'next');
    if (active !== undefined) {
      active.state = 'retired';
      active.retiredAt = now;
      active.removeAfter = now + this.retainMs;
    }
    if (promoted !== undefined) {
      const publishedForMs = now - promoted.createdAt;
      if (publishedForMs < this.jwksMaxAgeSec() * 1000) {
        this.log.warn(
          { kid: promoted.kid, publishedForMs },
          'activating a next key published for less than the JWKS max-age; verifiers will refetch the JWKS on its kid',
        );
      }
      promoted.state = 'active';
      promoted.activatedAt = now;
    } else {
      promoted = storedKey(await generateSigningKey(this.algorithm), 'active', now);
      keys.push(promoted);
      this.log.warn({ kid: promoted.kid }, 'no next key to promote; generated an active key that signs at once');
    }
    // Import before saving: a key that cannot sign must never become the stored active key.
    const signer = createSigner(promoted);
    this.pendingNext ??= await generateSigningKey(this.algorithm);
    keys.push(storedKey(this.pendingNext, 'next', now));
    return { doc: { version: base.version + 1, keys }, promoted, signer };
  }

  private async purgeInternal(): Promise<void> {
    const doc = this.requireDoc();
    const now = this.clock.nowMs();
    const expired = doc.keys.filter((k) => isExpired(k, now));
    if (expired.length === 0) return;
    const purged: KeySetDocument = { version: doc.version + 1, keys: doc.keys.filter((k) => !isExpired(k, now)) };
    if (await this.store.save(purged, doc.version)) {
      this.apply(purged);
      this.log.info({ kids: expired.map((k) => k.kid) }, 'removed retired keys past their retention');
    } else {
      // Someone else wrote meanwhile (probably the same removal); the next tick looks again.
      await this.reloadInternal();
    }
  }

  private async reloadInternal(): Promise<boolean> {
    const loaded = await this.loadDoc();
    const current = this.doc;
    if (loaded === undefined) {
      if (current !== undefined) this.log.error({ version: current.version }, 'the key store is empty; keeping the keys held in memory');
      return false;
    }
    if (current !== undefined && loaded.version === current.version) return false;
    if (current !== undefined && loaded.version < current.version) {
      this.log.warn({ from: current.version, to: loaded.version }, 'the key set version went backwards (store restored?); following the store');
    }
    this.apply(loaded);
    return true;
  }

  /** Re-derives the published view when only time has changed (a retired key expired). */
  private refreshView(doc: KeySetDocument): void {
    const now = this.clock.nowMs();
    if (doc.keys.some((k) => isExpired(k, now) && this.published.has(k.kid))) this.apply(doc);
  }

  /**
   * Makes `doc` the current key set. Everything is computed before anything is assigned, so an
   * invalid key leaves the previous state intact. Not async: the view never mixes two sets.
   */
  private apply(doc: KeySetDocument, preparedSigner?: Signer): void {
    const now = this.clock.nowMs();
    const active = doc.keys.find((k) => k.state === 'active');
    let signer: Signer | undefined;
    if (active !== undefined) {
      if (this.activeSigner?.kid === active.kid) signer = this.activeSigner;
      else if (preparedSigner?.kid === active.kid) signer = preparedSigner;
      else signer = createSigner(active);
    }
    const publishedKeys = doc.keys.filter((k) => !isExpired(k, now)).sort(publicationOrder);
    const published = new Map<string, VerificationKey>();
    for (const k of publishedKeys) {
      const known = this.published.get(k.kid);
      const key: KeyObject = known !== undefined && known.alg === k.alg ? known.key : importPublicKey(k);
      published.set(k.kid, Object.freeze({ kid: k.kid, alg: k.alg, key }));
    }
    const kids = publishedKeys.map((k) => `${k.kid}:${k.state}`).join(',');
    const changed = this.doc?.version !== doc.version || this.publishedKids !== kids;
    const removals = publishedKeys.filter((k) => k.state === 'retired').map((k) => k.removeAfter ?? 0);

    this.doc = doc;
    this.activeSigner = signer;
    if (changed) {
      this.published = published;
      this.publishedKids = kids;
      this.jwksView = Object.freeze({ keys: Object.freeze(publishedKeys.map((k) => Object.freeze({ ...k.publicJwk }))) });
      this.jwksText = JSON.stringify(this.jwksView);
      this.nextRemovalAt = removals.length > 0 ? Math.min(...removals) : undefined;
      for (const listener of this.listeners) {
        try {
          listener();
        } catch (err) {
          this.log.error({ err }, 'a key-change listener threw');
        }
      }
    }
  }

  // ---- timer and unknown-kid reloads (outside exclusive) ----

  private scheduleTick(): void {
    if (this.stopped || !this.started) return;
    const now = this.clock.nowMs();
    const candidates: number[] = [];
    if (this.reloadIntervalMs > 0) candidates.push(this.reloadIntervalMs);
    const activatedAt = this.doc?.keys.find((k) => k.state === 'active')?.activatedAt;
    if (this.rotationIntervalMs > 0 && activatedAt !== undefined) candidates.push(activatedAt + this.rotationIntervalMs - now);
    if (this.nextRemovalAt !== undefined) candidates.push(this.nextRemovalAt - now);
    if (candidates.length === 0) return;
    const floor = this.reloadIntervalMs > 0 ? Math.min(MIN_TICK_MS, this.reloadIntervalMs) : MIN_TICK_MS;
    const delayMs = Math.min(MAX_TIMER_MS, Math.max(floor, Math.min(...candidates)));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runMaintenance()
        .catch((err: unknown) => this.log.error({ err }, 'key maintenance failed; retrying on the next tick'))
        .finally(() => this.scheduleTick());
    }, delayMs);
    // Key upkeep must never keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  /**
   * A token names a kid we do not know: another replica may have rotated (twice, faster than
   * our reload). Re-read the store, at most once per cooldown, shared by concurrent callers.
   */
  private async resolveUnknownKid(kid: string): Promise<VerificationKey | undefined> {
    if (!this.started || this.stopped) return this.published.get(kid);
    if (this.unknownKidReload === undefined) {
      const now = this.clock.nowMs();
      if (now - this.lastUnknownKidReloadMs < UNKNOWN_KID_RELOAD_COOLDOWN_MS) return this.published.get(kid);
      this.lastUnknownKidReloadMs = now;
      this.unknownKidReload = this.reload()
        .catch((err: unknown) => this.log.warn({ err }, 'reloading keys for an unknown kid failed'))
        .finally(() => {
          this.unknownKidReload = undefined;
        });
    }
    await this.unknownKidReload;
    return this.published.get(kid);
  }
}

/*
 * Signing, the Issue hot path: one compact JWS per call. Everything that does not depend on the
 * payload (KeyObject, header, sign options) is computed once per key, so a signature costs one
 * JSON.stringify, two base64url encodings and the signature itself.
 */

/** Signs access tokens with one key. */
export interface Signer {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** A compact JWS, header `{"alg":…,"kid":…,"typ":"at+jwt"}`, over `JSON.stringify(payload)`. */
  sign(payload: AccessTokenPayload): string;
}

/**
 * A signer for a stored key. The private key is imported (and checked against the public JWK)
 * here, once.
 * @throws TokenAuthorityError ERR_KEY if the key material is invalid.
 */
export function createSigner(key: Pick<StoredKey, 'kid' | 'alg' | 'privateJwk' | 'publicJwk'>): Signer {
  const { kid, alg } = key;
  // The digest and the R||S form of ES256, as the verifier reads them (jose-rules.ts).
  const { digest, input: options } = jwsCryptoArgs(importPrivateKey(key), alg);
  const prefix = `${Buffer.from(JSON.stringify({ alg, kid, typ: ACCESS_TOKEN_TYP })).toString('base64url')}.`;
  return {
    kid,
    alg,
    sign(payload: AccessTokenPayload): string {
      const signingInput = prefix + Buffer.from(JSON.stringify(payload)).toString('base64url');
      // The signing input is pure base64url (ASCII), so latin1 is an exact and cheaper encoding.
      const signature = cryptoSign(digest, Buffer.from(signingInput, 'latin1'), options);
      return `${signingInput}.${signature.toString('base64url')}`;
    },
  };
}
