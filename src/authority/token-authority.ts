import type { Config } from '../config/config.js';
import type { RefreshSnapshot, RefreshStorage, RevocationLog, RotateChecks, RotateResult, SessionConstraints, SessionRecord, SessionStorage } from '../store/token-store.js';
import type { KeyManager } from '../keys/key-manager.js';
import type { InternalVerifier } from '../verifier/create-verifier.js';
import { verifySignatureAndParse } from '../verifier/verify-token.js';
import { MAX_ACCESS_TOKEN_BYTES, type AccessTokenPayload, type VerifiedClaims, type VerifyRequirements, type VerifyResult } from '../shared/claims.js';
import type { Clock } from '../shared/clock.js';
import { ErrorCodes, TokenAuthorityError, invalidArgument } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { RevocationEvent } from '../shared/revocation-event.js';
import type { Principal } from '../shared/principal.js';
import { admitIssue, LIMITS, requireText, type AccessPolicy, type IssueGrant, type IssueRequest } from './admission.js';
import { hashRefreshToken, ID_PLACEHOLDER, looksLikeRefreshToken, newId, newRefreshToken, type SealedSession, type SessionSeal } from './session-records.js';
import { bindingKind, cnfClaim, validateBinding, type TokenBinding } from './token-binding.js';
import { createTokenEndpointProofCheck, type TokenEndpointProofCheck } from './token-endpoint-dpop.js';

/** The settings the rules need (allowedAudiences empty = any audience). */
export type TokenAuthoritySettings = Pick<
  Config,
  'issuer' | 'accessTtlMs' | 'maxAccessTtlMs' | 'refreshTtlMs' | 'sessionMaxLifetimeMs' | 'sessionIdleTimeoutMs' | 'refreshGraceMs' | 'clockSkewMs' | 'allowedAudiences'
>;

/** What Issue asks for: the request admission checks (subject, audience, scopes, extra claims, client_id), a TTL and a binding. */
export interface IssueInput extends IssueRequest {
  /** 0 = default. */
  accessTtlSeconds: number;
  /** Sender-constrains the token and its session (RFC 7800 `cnf`); undefined = a bearer token. */
  confirmation?: TokenBinding;
}

/** What Issue and Refresh return. Times are epoch ms. */
export interface TokenPair {
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
  sessionId: string;
  tokenId: string;
  keyId: string;
  subject: string;
  /** The binding the access token carries (its `cnf`), if any. */
  confirmation?: TokenBinding;
}

export type RevokeTarget =
  | { kind: 'token'; token: string }
  | { kind: 'session'; sessionId: string }
  | { kind: 'subject'; subject: string }
  | { kind: 'tokenId'; tokenId: string };

export interface RevokeOutcome {
  /** 0 when there was nothing left to revoke (the token had already expired). */
  sequence: number;
  kind: 'jti' | 'sid' | 'sub';
  id: string;
  entryExpiresAt: number;
}

/** What the rules need of the store: sessions, refresh records, and recording revocations (token-store.ts). */
export type TokenAuthorityStore = SessionStorage & RefreshStorage & RevocationLog;

export interface TokenAuthorityDeps {
  settings: TokenAuthoritySettings;
  keys: KeyManager;
  store: TokenAuthorityStore;
  verifier: InternalVerifier;
  policy: AccessPolicy;
  sessionSeal: SessionSeal;
  clock: Clock;
  logger: Logger;
  /**
   * The longest access TTL tokens may still have out (the store's high-water mark, at least
   * settings.maxAccessTtlMs): session and subject revocation entries live that long. Default: the setting.
   */
  revocationTtlMs?: () => number;
  /** Called once per refresh-token reuse detected (a metric). */
  onReuseDetected?: () => void;
  /**
   * Checks DPoP proofs made for the token endpoint (Refresh of a `jkt`-bound session). Default:
   * token-endpoint-dpop.ts with this replica's replay cache.
   */
  tokenEndpointProofs?: TokenEndpointProofCheck;
}

/**
 * Issue, Refresh, Revoke and Verify, independent of the transport. The adapters (authority-service.ts
 * for gRPC, oauth-endpoints.ts for HTTP) convert messages and say who is calling (a Principal);
 * this class holds the rules, and returns with each result what the call's access line says
 * (AuditFields, at the end of this file) rather than writing into a transport's log.
 */
export class TokenAuthority {
  /** DPoP proofs for the token endpoint's URL (RFC 9449 §5): Refresh and the HTTP token endpoint. */
  readonly tokenEndpointProofs: TokenEndpointProofCheck;

  constructor(private readonly deps: TokenAuthorityDeps) {
    this.tokenEndpointProofs = deps.tokenEndpointProofs ?? createTokenEndpointProofCheck({ issuer: deps.settings.issuer, clockSkewMs: deps.settings.clockSkewMs, clock: deps.clock });
  }

  async issue(input: IssueInput, principal: Principal): Promise<Audited<TokenPair>> {
    const { settings, policy, clock, store } = this.deps;
    const { grant, subject, audience, scopes, extra, clientId } = admitIssue(policy, principal, input, settings.allowedAudiences);
    const ttlMs = this.accessTtl(input.accessTtlSeconds, grant.maxAccessTtlMs);
    const confirmation = input.confirmation ? validateBinding(input.confirmation) : undefined;

    const now = clock.nowMs();
    const sessionId = newId();
    this.assertTokenFits({ subject, audience, scopes, extra, clientId, sessionId, generation: Number.MAX_SAFE_INTEGER, confirmation }, now, ttlMs);
    const refreshToken = newRefreshToken();
    const absoluteExpiresAt = now + settings.sessionMaxLifetimeMs;
    const refreshExpiresAt = Math.min(now + settings.refreshTtlMs, absoluteExpiresAt);
    const sessionExtra: Record<string, string> = { ...extra, client_id: clientId };
    // The grant's cap and the binding travel with the session (sealed): every Refresh applies them.
    const constraints: SessionConstraints = {
      ...(grant.maxAccessTtlMs !== undefined ? { maxAccessTtlMs: grant.maxAccessTtlMs } : {}),
      ...(confirmation ? { confirmation } : {}),
    };
    const seal = this.deps.sessionSeal.seal({ sessionId, subject, audience, scopes, extra: sessionExtra, absoluteExpiresAt, createdAt: now, constraints });
    const integrity = this.deps.sessionSeal.refresh;
    const refreshKey = integrity.keys(refreshToken)[0]!;
    const { generation } = await store.createSession({
      sessionId,
      subject,
      audience,
      scopes,
      extra: sessionExtra,
      constraints,
      seal,
      refreshHash: refreshKey,
      refreshProof: integrity.liveProof(refreshKey, sessionId, refreshExpiresAt, now),
      refreshExpiresAt,
      absoluteExpiresAt,
      now,
    });
    const access = this.sign({ subject, audience, scopes, extra, clientId, sessionId, generation, confirmation }, now, ttlMs);
    return {
      result: { ...access, refreshToken, refreshExpiresAt, sessionId, subject, ...(confirmation ? { confirmation } : {}) },
      audit: { sub: subject, sid: sessionId, jti: access.tokenId, kid: access.keyId, ...(confirmation ? { cnf: bindingKind(confirmation) } : {}) },
    };
  }

  /**
   * `dpopProof`: a DPoP proof for the token endpoint (RFC 9449 §5), needed when the session is
   * bound to a DPoP key. Checked once, before the store is asked; its key is compared with the
   * session's sealed binding before anything is written, so without the key a refresh token of
   * such a session can be neither spent nor used to trigger reuse detection.
   */
  async refresh(input: { refreshToken: string; accessTtlSeconds: number; dpopProof?: string }): Promise<Audited<TokenPair>> {
    const { settings, clock, store, verifier } = this.deps;
    if (!looksLikeRefreshToken(input.refreshToken)) {
      throw new TokenAuthorityError(ErrorCodes.REFRESH_INVALID, 'refresh_token is not a refresh token of this authority');
    }
    this.accessTtl(input.accessTtlSeconds, undefined); // validates the request before anything is spent
    const proofKey = input.dpopProof ? this.tokenEndpointProofs(input.dpopProof) : undefined;
    const now = clock.nowMs();
    const integrity = this.deps.sessionSeal.refresh;
    const successor = newRefreshToken();
    // Check before rotating: the store hands what it read to `checks` before any write, and
    // Refresh signs only from the session that passed them.
    let verified: SealedSession | undefined;
    const checks: RotateChecks = {
      check: (snap) => {
        verified = undefined;
        const { proven, sealed } = this.checkSnapshot(snap);
        checkRefreshBinding(sealed, proofKey);
        if (proven) verified = sealed;
        return { proven };
      },
      liveProof: integrity.liveProof,
      graceProof: integrity.graceProof,
    };
    const successorKey = integrity.keys(successor)[0]!;
    let result: RotateResult = { outcome: 'invalid' };
    // Under the current secret first; older ones only find tokens issued before a KEK rotation.
    for (const key of integrity.keys(input.refreshToken)) {
      result = await store.rotateRefresh({
        presentedHash: key,
        successorHash: successorKey,
        successorExpiresAt: now + settings.refreshTtlMs,
        now,
        graceMs: settings.refreshGraceMs,
        idleTimeoutMs: settings.sessionIdleTimeoutMs,
        revocationUntil: this.revocationUntil(now),
        checks,
      });
      if (result.outcome !== 'invalid' || result.unproven) break;
    }
    switch (result.outcome) {
      case 'invalid':
        if (result.unproven) {
          this.deps.logger.error('refresh token record failed its integrity check (written or restored by something other than this authority?): refusing to refresh');
          throw new TokenAuthorityError(ErrorCodes.REFRESH_INVALID, 'refresh token is not valid (its record failed an integrity check)');
        }
        // Cheap, on the miss path only: a record under the pre-upgrade key (plain SHA-256).
        if (await store.findSessionByRefresh(hashRefreshToken(input.refreshToken))) {
          throw new TokenAuthorityError(ErrorCodes.REFRESH_INVALID, 'refresh token was issued before the storage format upgrade; sign in again');
        }
        throw new TokenAuthorityError(ErrorCodes.REFRESH_INVALID, 'refresh token is not valid (unknown, superseded, or expired and removed)');
      case 'expired':
        throw withAudit(new TokenAuthorityError(ErrorCodes.REFRESH_EXPIRED, 'refresh token or its session has expired: sign in again'), { sid: result.session.sessionId });
      case 'revoked':
        throw withAudit(new TokenAuthorityError(ErrorCodes.SESSION_REVOKED, 'the session was revoked: sign in again'), { sid: result.session.sessionId });
      case 'reused':
        verifier.applyRevocation(result.event);
        this.deps.onReuseDetected?.();
        this.deps.logger.warn({ sid: result.session.sessionId, sub: result.session.subject, seq: result.event.seq }, 'refresh token reuse detected: session revoked');
        throw withAudit(
          new TokenAuthorityError(
            ErrorCodes.REFRESH_REUSED,
            'refresh token was already used: the whole session has been revoked (a copy of the token may have been stolen); sign in again',
          ),
          { sid: result.session.sessionId, sub: result.session.subject, seq: result.event.seq, reuse: true },
        );
      case 'rotated':
        break;
    }
    // Signed from the sealed content only.
    const s: SealedSession | undefined = verified;
    if (!s || s.sessionId !== result.session.sessionId) throw new TokenAuthorityError(ErrorCodes.INTERNAL, 'the store rotated a session that was not checked');
    const confirmation = s.constraints.confirmation;
    const ttlMs = this.accessTtl(input.accessTtlSeconds, s.constraints.maxAccessTtlMs);
    const refreshExpiresAt = Math.min(now + settings.refreshTtlMs, s.absoluteExpiresAt);
    const { client_id: clientId, ...extra } = s.extra;
    const access = this.sign(
      { subject: s.subject, audience: s.audience, scopes: s.scopes, extra, clientId: clientId ?? 'token-authority', sessionId: s.sessionId, generation: result.generation, confirmation },
      now,
      ttlMs,
    );
    return {
      result: { ...access, refreshToken: successor, refreshExpiresAt, sessionId: s.sessionId, subject: s.subject, ...(confirmation ? { confirmation } : {}) },
      audit: {
        sub: s.subject,
        sid: s.sessionId,
        jti: access.tokenId,
        kid: access.keyId,
        ...(result.viaGrace ? { grace: true as const } : {}),
        ...(confirmation ? { cnf: bindingKind(confirmation) } : {}),
      },
    };
  }

  async revoke(target: RevokeTarget, reason: string, principal: Principal): Promise<Audited<RevokeOutcome>> {
    const { clock, store, verifier, policy, settings } = this.deps;
    if (reason.length > 0) requireText('reason', reason, LIMITS.reasonBytes);
    const why = reason.length > 0 ? reason : undefined;
    const now = clock.nowMs();
    let event: RevocationEvent;
    let subject: string | undefined;
    switch (target.kind) {
      case 'token': {
        const token = target.token;
        if (token.length === 0) throw invalidArgument('token is empty');
        if (looksLikeRefreshToken(token)) {
          // Revoking needs no proof (it only takes away); pre-upgrade records are found too.
          let session: SessionRecord | undefined;
          for (const key of [...this.deps.sessionSeal.refresh.keys(token), hashRefreshToken(token)]) {
            session = await store.findSessionByRefresh(key);
            if (session) break;
          }
          if (!session) throw new TokenAuthorityError(ErrorCodes.NOT_FOUND, 'refresh token is unknown (never issued, or expired and removed)');
          event = await store.revoke({ kind: 'sid', id: session.sessionId, until: this.revocationUntil(now), ...(why ? { reason: why } : {}) });
          break;
        }
        const claims = this.provenClaims(token);
        const until = claims.expiresAt * 1000 + settings.clockSkewMs;
        if (until <= now) return { result: { sequence: 0, kind: 'jti', id: claims.tokenId, entryExpiresAt: until }, audit: { jti: claims.tokenId } };
        event = await store.revoke({ kind: 'jti', id: claims.tokenId, until, ...(why ? { reason: why } : {}) });
        subject = claims.subject;
        break;
      }
      case 'session':
        policy.authorize(principal, 'revoke:session');
        event = await store.revoke({ kind: 'sid', id: requireText('session_id', target.sessionId, LIMITS.idBytes), until: this.revocationUntil(now), ...(why ? { reason: why } : {}) });
        break;
      case 'subject':
        policy.authorize(principal, 'revoke:subject');
        event = await store.revoke({ kind: 'sub', id: requireText('subject', target.subject, LIMITS.subjectBytes), until: this.revocationUntil(now), ...(why ? { reason: why } : {}) });
        break;
      case 'tokenId':
        policy.authorize(principal, 'revoke:token_id');
        event = await store.revoke({ kind: 'jti', id: requireText('token_id', target.tokenId, LIMITS.idBytes), until: this.revocationUntil(now), ...(why ? { reason: why } : {}) });
        break;
    }
    // Durable now: honour it on this replica at once, ahead of the feed.
    verifier.applyRevocation(event);
    return {
      result: { sequence: event.seq, kind: event.kind, id: event.id, entryExpiresAt: event.until },
      audit: { ...(subject !== undefined ? { sub: subject } : {}), seq: event.seq, [event.kind]: event.id },
    };
  }

  /** Synchronous unless the token names a kid that must be looked up first. */
  verify(token: string, requirements: VerifyRequirements): VerifyResult | Promise<VerifyResult> {
    return this.deps.verifier.verifyNow(token, requirements);
  }

  /**
   * RFC 7662 for an access token: its claims when it is active, else undefined. A bound token is
   * active without its certificate or proof (which belong to the resource server's request, RFC
   * 8705 §3.2, RFC 9449 §6.2: the answer's `cnf` says what to check). Given neither, the
   * verifier fails such a token only in its binding stage, which runs after every other check
   * (time, audience, revocation, staleness), so BINDING_MISMATCH here means all else passed.
   */
  async introspectAccess(token: string): Promise<VerifiedClaims | undefined> {
    const r = await this.deps.verifier.verifyNow(token, {});
    if (r.valid) return r.claims;
    if (r.reason !== 'BINDING_MISMATCH') return undefined;
    try {
      const claims = this.provenClaims(token);
      return claims.confirmation !== undefined ? claims : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The checks of a rotation, on what the store read and before it writes anything. Throws
   * (nothing is written) when the session's seal fails or this authority holds a revocation of it;
   * returns the sealed content and whether the record's own proof holds (rotate a live token,
   * grace for a spent one).
   */
  private checkSnapshot(snap: RefreshSnapshot): { proven: boolean; sealed: SealedSession } {
    const s = snap.session;
    const sealed = snap.sessionId === s.sessionId ? this.deps.sessionSeal.open(s) : undefined;
    if (!sealed) {
      this.deps.logger.error({ sid: s.sessionId, sub: s.subject }, 'session record failed its integrity check (written by something other than this authority?): refusing to refresh');
      throw new TokenAuthorityError(ErrorCodes.REFRESH_INVALID, 'refresh token is not valid (its session record failed an integrity check)');
    }
    // Revocations this replica knows of (the log's retention window) hold whatever the store says.
    if (!s.revoked && this.deps.verifier.isSessionRevoked(s)) {
      this.deps.logger.error({ sid: s.sessionId, sub: s.subject }, 'the store has a session as live that this authority holds a revocation of (state rolled back?): refusing to refresh');
      throw new TokenAuthorityError(ErrorCodes.SESSION_REVOKED, 'the session was revoked: sign in again');
    }
    const integrity = this.deps.sessionSeal.refresh;
    const proven =
      snap.state === 'live'
        ? integrity.checkLive(snap.key, snap.sessionId, snap.expiresAt, snap.issuedAt, snap.proof)
        : snap.successor !== undefined && snap.spentAt !== undefined && integrity.checkGrace(snap.key, snap.sessionId, snap.successor, snap.spentAt, snap.proof);
    return { proven, sealed };
  }

  /** The access token's claims if its signature and issuer are ours, whatever its age. */
  private provenClaims(token: string): VerifiedClaims {
    const parsed = verifySignatureAndParse(token, this.deps.keys.resolver, {
      issuer: this.deps.settings.issuer,
      algorithms: ['ES256', 'EdDSA', 'RS256'],
      clockSkewSec: Math.floor(this.deps.settings.clockSkewMs / 1000),
      maxTokenBytes: MAX_ACCESS_TOKEN_BYTES,
    });
    if (!parsed.ok) throw invalidArgument(`token is neither a refresh token nor a valid access token of this issuer (${parsed.reason}: ${parsed.detail})`);
    return parsed.claims;
  }

  /** An entry for a session or subject can be dropped once every access token it covers has expired. */
  private revocationUntil(now: number): number {
    const ttl = Math.max(this.deps.settings.maxAccessTtlMs, this.deps.revocationTtlMs?.() ?? 0);
    return now + ttl + this.deps.settings.clockSkewMs;
  }

  private accessTtl(requestedSeconds: number, grantMaxMs: number | undefined): number {
    const { accessTtlMs, maxAccessTtlMs } = this.deps.settings;
    const cap = Math.min(maxAccessTtlMs, grantMaxMs ?? Infinity);
    if (!Number.isInteger(requestedSeconds) || requestedSeconds < 0) throw invalidArgument('access_ttl_seconds must be a non-negative integer');
    const wanted = requestedSeconds === 0 ? accessTtlMs : requestedSeconds * 1000;
    return Math.min(wanted, cap);
  }

  /**
   * Refuse, before anything is stored, a request whose token would exceed what verifiers accept:
   * header and signature are bounded by the longest kid and signature (RS256), the payload is exact.
   */
  private assertTokenFits(t: TokenFields, nowMs: number, ttlMs: number): void {
    const payloadBytes = Buffer.byteLength(JSON.stringify(this.payload(t, nowMs, ttlMs, ID_PLACEHOLDER)));
    const estimate = 100 + Math.ceil((payloadBytes * 4) / 3) + 2 + 342;
    if (estimate > MAX_ACCESS_TOKEN_BYTES) {
      throw invalidArgument(
        `the access token would be about ${estimate} bytes, more than the ${MAX_ACCESS_TOKEN_BYTES} verifiers accept: use fewer or shorter audiences, scopes or extra claims`,
      );
    }
  }

  private payload(t: TokenFields, nowMs: number, ttlMs: number, tokenId: string): AccessTokenPayload {
    const iat = Math.floor(nowMs / 1000);
    return {
      ...t.extra,
      iss: this.deps.settings.issuer,
      sub: t.subject,
      aud: t.audience.length === 1 ? t.audience[0]! : [...t.audience],
      exp: iat + Math.max(1, Math.floor(ttlMs / 1000)),
      iat,
      nbf: iat,
      jti: tokenId,
      sid: t.sessionId,
      gen: t.generation,
      client_id: t.clientId,
      ...(t.scopes.length > 0 ? { scope: t.scopes.join(' ') } : {}),
      ...(t.confirmation ? { cnf: cnfClaim(t.confirmation) } : {}),
    };
  }

  private sign(t: TokenFields, nowMs: number, ttlMs: number): { accessToken: string; accessExpiresAt: number; tokenId: string; keyId: string } {
    const signer = this.deps.keys.signer();
    const tokenId = newId();
    const payload = this.payload(t, nowMs, ttlMs, tokenId);
    return { accessToken: signer.sign(payload), accessExpiresAt: payload.exp * 1000, tokenId, keyId: signer.kid };
  }

  // ---- For the OAuth HTTP endpoints (oauth-endpoints.ts): read-only views and policy questions ----

  /** Throws UNAUTHENTICATED / PERMISSION_DENIED unless the caller may introspect tokens (RFC 7662 §4). */
  authorizeIntrospection(principal: Principal): void {
    this.deps.policy.authorize(principal, 'introspect');
  }

  /** The caller's `issue` grant (its audiences, scopes and max TTL); throws as Issue would when it has none. */
  issueGrantOf(principal: Principal): IssueGrant {
    this.deps.policy.authorize(principal, 'issue');
    return this.deps.policy.issueGrant(principal);
  }

  /**
   * What introspection may say about a refresh token: its session while this token is the
   * session's current, proven, unexpired one (RFC 7662 §2.2: a token that may be used now), and the
   * session is live (not revoked, its subject not signed out, within its absolute and idle
   * lifetimes, record and seal intact); else undefined. The same checks as Refresh, read only:
   * a spent or superseded token is inactive.
   */
  async introspectRefresh(refreshToken: string): Promise<RefreshIntrospection | undefined> {
    const { store, clock, settings } = this.deps;
    if (!looksLikeRefreshToken(refreshToken)) return undefined;
    const now = clock.nowMs();
    for (const key of this.deps.sessionSeal.refresh.keys(refreshToken)) {
      const snap = await store.loadRefresh(key);
      if (!snap) continue;
      const s = snap.session;
      if (snap.state !== 'live' || snap.current !== key || s.revoked || s.generation < snap.currentGeneration) return undefined;
      let checked: { proven: boolean; sealed: SealedSession };
      try {
        checked = this.checkSnapshot(snap);
      } catch {
        return undefined;
      }
      if (!checked.proven) return undefined;
      const sealed = checked.sealed;
      const idleEndsAt = settings.sessionIdleTimeoutMs > 0 ? snap.issuedAt + settings.sessionIdleTimeoutMs : Infinity;
      const expiresAt = Math.min(snap.expiresAt, s.absoluteExpiresAt, idleEndsAt);
      if (now >= expiresAt) return undefined;
      return {
        sessionId: sealed.sessionId,
        subject: sealed.subject,
        audience: sealed.audience,
        scopes: sealed.scopes,
        clientId: sealed.extra.client_id ?? 'token-authority',
        issuedAt: snap.issuedAt,
        expiresAt,
        ...(sealed.constraints.confirmation !== undefined ? { confirmation: sealed.constraints.confirmation } : {}),
      };
    }
    return undefined;
  }
}

/** A live refresh token's session, as introspection reports it. Times are epoch ms. */
export interface RefreshIntrospection {
  sessionId: string;
  subject: string;
  audience: readonly string[];
  scopes: readonly string[];
  clientId: string;
  /** When the session's current refresh token was issued (its last rotation). */
  issuedAt: number;
  /** When it stops being usable: refresh TTL, idle timeout or the session's absolute lifetime. */
  expiresAt: number;
  /** The session's binding (RFC 7662 `cnf`, RFC 8705 §3.2 / RFC 9449 §6.2). */
  confirmation?: TokenBinding;
}

/** What goes into an access token besides times and its id. */
interface TokenFields {
  subject: string;
  audience: readonly string[];
  scopes: readonly string[];
  extra: Record<string, string>;
  clientId: string;
  sessionId: string;
  generation: number;
  confirmation?: TokenBinding | undefined;
}

/**
 * RFC 9449 §5 for Refresh: a session bound to a DPoP key is refreshed only with a proof by that key.
 * A session bound to a certificate needs nothing here: the refresh token is already the session's
 * own secret, and each new access token stays bound to the certificate, which every resource
 * server checks; the gRPC caller (often a backend refreshing for its user) need not be the
 * certificate's holder. Runs after the seal check, so the binding read is the one Issue wrote.
 */
function checkRefreshBinding(session: SealedSession, proofKey: string | undefined): void {
  const binding = session.constraints.confirmation;
  if (!binding || !('jkt' in binding)) return;
  if (proofKey === undefined) {
    throw new TokenAuthorityError(ErrorCodes.DPOP_PROOF_INVALID, 'this session is bound to a DPoP key: refresh needs a DPoP proof signed by that key (RefreshRequest.dpop_proof, or the DPoP header at the token endpoint)');
  }
  if (proofKey !== binding.jkt) {
    throw new TokenAuthorityError(ErrorCodes.DPOP_PROOF_INVALID, 'the DPoP proof is signed by another key than the one this session is bound to');
  }
}

/*
 * ---- What an operation tells its call's access line ----
 *
 * TokenAuthority returns these with its result, or attaches them to the error it throws, instead
 * of writing into a transport's log bag; the adapters (authority-service.ts for gRPC,
 * oauth-endpoints.ts for HTTP) put them on the line with `audited`. Only ids and flags: no field
 * can hold a token (tokens are never logged).
 */

/** The access-line fields of one operation. */
export interface AuditFields {
  /** The token's or session's subject, or the subject revoked. */
  readonly sub?: string;
  /** The session. */
  readonly sid?: string;
  /** The access token's id (issued, or revoked). */
  readonly jti?: string;
  /** The key that signed the access token. */
  readonly kid?: string;
  /** The revocation's sequence on the feed. */
  readonly seq?: number;
  /** Refresh accepted the spent parent again within the grace window. */
  readonly grace?: true;
  /** Refresh met a spent token again: the session is now revoked. */
  readonly reuse?: true;
  /** The kind of binding the token carries (its `cnf`): `x5t#S256` or `jkt`. */
  readonly cnf?: 'x5t#S256' | 'jkt';
}

/** A result with what its access line says about it. */
export interface Audited<T> {
  readonly result: T;
  readonly audit: AuditFields;
}

const refusals = new WeakMap<object, AuditFields>();

/** `err`, carrying what the access line of the refused call says (read back with {@link auditOf}). */
export function withAudit<E extends Error>(err: E, audit: AuditFields): E {
  refusals.set(err, audit);
  return err;
}

/** The audit fields a refusal carries, if it carries any. */
export function auditOf(err: unknown): AuditFields | undefined {
  return typeof err === 'object' && err !== null ? refusals.get(err) : undefined;
}

/**
 * For the adapters: the operation's result, its audit fields (of the result, or of the refusal it
 * threw) added to the call's access-line fields.
 */
export async function audited<T>(line: Record<string, unknown>, operation: Promise<Audited<T>>): Promise<T> {
  try {
    const { result, audit } = await operation;
    Object.assign(line, audit);
    return result;
  } catch (err) {
    const audit = auditOf(err);
    if (audit) Object.assign(line, audit);
    throw err;
  }
}
