import { createHash, createHmac, hkdfSync, randomBytes, randomFillSync, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { configuredKeyEncryptionKeys, type KeyEncryptionKey } from '../keys/key-encryption-key.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { SessionConstraints, SessionRecord } from '../store/token-store.js';
import { privateFileProblem } from '../shared/file-permissions.js';

/**
 * What a session hands out and what the store keeps of it, in one place: the ids and refresh
 * tokens the authority makes (below), and what protects the stored session and refresh records
 * from an attacker who can write to Redis but does not hold the seal secret: the session seal and
 * the refresh-record keys and proofs (`createRefreshIntegrity`), both from the same secrets.
 */

/**
 * Opaque identifiers and refresh tokens. A refresh token is `tart_` + 256 random bits (base64url):
 * the prefix lets Revoke tell it from an access token and lets secret scanners find leaked ones.
 * Only an HMAC of it reaches the store (createRefreshIntegrity, below); hashRefreshToken (plain SHA-256) is
 * the pre-upgrade key, still looked up to explain a refusal and to let Revoke end such sessions.
 */
export const REFRESH_TOKEN_PREFIX = 'tart_';
const REFRESH_TOKEN_LENGTH = REFRESH_TOKEN_PREFIX.length + 43;

/**
 * Random bytes drawn from a pool refilled 4 KiB at a time: one CSPRNG call per ~150 ids instead of
 * one per id (several per Issue), the same bytes quality. Each byte is handed out once.
 */
const pool = Buffer.alloc(4096);
let offset = pool.length;
function random(n: number): Buffer {
  if (offset + n > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  offset += n;
  return out;
}

export function newRefreshToken(): string {
  return REFRESH_TOKEN_PREFIX + random(32).toString('base64url');
}

export function looksLikeRefreshToken(value: string): boolean {
  return value.length === REFRESH_TOKEN_LENGTH && value.startsWith(REFRESH_TOKEN_PREFIX) && /^[A-Za-z0-9_-]+$/.test(value.slice(REFRESH_TOKEN_PREFIX.length));
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** 128 random bits, base64url: token ids (jti) and session ids (sid). */
export function newId(): string {
  return random(16).toString('base64url');
}

/** As long as any id newId() returns, for size estimates. */
export const ID_PLACEHOLDER = 'A'.repeat(22);

/**
 * Integrity of session records. Refresh signs an access token from what the store says a session
 * is; without a check, anyone who can write to Redis could plant a session (any subject, audience
 * and scopes) with a refresh token of their choosing and have the authority sign for it. Issue seals
 * the session's claims and constraints with an HMAC under a secret that is not in the store, kept
 * as the record's `seal` field; Refresh and introspection use only what `open` returns, and refuse
 * a session whose seal does not match.
 *
 * The secret is derived (HKDF) from the key-encryption key when one is configured, so every
 * replica sharing the KEK shares it and a KEK rotation keeps older seals checkable through
 * TA_KEY_ENCRYPTION_KEY_PREVIOUS; without a KEK it is a random 256-bit file `session-seal.key`
 * (mode 0600) in TA_KEY_DIR, beside the signing keys.
 */

/**
 * Where sessions stored before the seal was a field of the session record keep it: entries of the
 * session's `extra` map under reserved claim names (src/shared/claims.ts), the seal and the
 * issuing grant's access-TTL cap (ms, as text) beside the claims. Read (their seal is checked as
 * it was made, `v1`), never written.
 */
export const LEGACY_SEAL_CLAIM = 'ta_seal';
export const LEGACY_CAP_CLAIM = 'ta_cap';

/** What a seal covers: everything Refresh puts into a token or applies to it, apart from the times and ids it makes. */
export interface SealedSession {
  sessionId: string;
  subject: string;
  audience: readonly string[];
  scopes: readonly string[];
  /** Extra claims including client_id. */
  extra: Readonly<Record<string, string>>;
  absoluteExpiresAt: number;
  createdAt: number;
  /** Covered whole (canonical JSON): a member added to SessionConstraints is sealed with no change here. */
  constraints: Readonly<SessionConstraints>;
}

/** A stored session as the seal reads it: a SessionRecord, or the session of a refresh snapshot. */
export type StoredSession = Readonly<Pick<SessionRecord, 'sessionId' | 'subject' | 'absoluteExpiresAt' | 'createdAt' | 'constraints' | 'seal'>> & {
  readonly audience: readonly string[];
  readonly scopes: readonly string[];
  readonly extra: Readonly<Record<string, string>>;
};

export interface SessionSeal {
  /** The seal to store with a new session (SessionRecord.seal). */
  seal(session: SealedSession): string;
  /**
   * The sealed content of a stored session, in either layout (the seal a field of its own, or a
   * pre-upgrade one inside `extra`), or undefined when the seal does not hold for what is stored.
   */
  open(stored: StoredSession): SealedSession | undefined;
  /** Store keys and proofs of refresh-token records, from the same secrets (createRefreshIntegrity below). */
  readonly refresh: RefreshIntegrity;
}

/** JSON with every object's keys sorted (and undefined members dropped, as JSON.stringify does). */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])) : v,
  );
}

const sortedEntries = (extra: Readonly<Record<string, string>>) => Object.keys(extra).sort().map((k) => [k, extra[k]]);

/** What a `v2` seal (the seal a field of its own) covers. */
function canonical(s: SealedSession): string {
  return JSON.stringify(['ta-session-v2', s.sessionId, s.subject, s.audience, s.scopes, sortedEntries(s.extra), s.absoluteExpiresAt, s.createdAt, canonicalJson(s.constraints)]);
}

/** What a `v1` seal covers: the pre-upgrade layout, the cap among the claims in `extra`. */
function canonicalV1(s: Omit<SealedSession, 'constraints'>): string {
  return JSON.stringify(['ta-session-v1', s.sessionId, s.subject, s.audience, s.scopes, sortedEntries(s.extra), s.absoluteExpiresAt, s.createdAt]);
}

/** A seal over HMAC-SHA256 with `current`, checkable with any of `keys` (by id). */
export function createSessionSeal(current: { id: string; secret: Buffer }, older: ReadonlyArray<{ id: string; secret: Buffer }> = []): SessionSeal {
  const byId = new Map([current, ...older].map((k) => [k.id, k.secret]));
  const mac = (secret: Buffer, text: string) => createHmac('sha256', secret).update(text).digest();
  const holds = (version: 'v1' | 'v2', text: string, seal: string | undefined) => {
    const m = /^(v[12])\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(seal ?? '');
    const secret = m && m[1] === version ? byId.get(m[2]!) : undefined;
    if (!m || !secret) return false;
    return timingSafeEqual(mac(secret, text), Buffer.from(m[3]!, 'base64url'));
  };
  return {
    refresh: createRefreshIntegrity(current, older),
    seal: (s) => `v2.${current.id}.${mac(current.secret, canonical(s)).toString('base64url')}`,
    open(stored) {
      const fields = { sessionId: stored.sessionId, subject: stored.subject, audience: stored.audience, scopes: stored.scopes, absoluteExpiresAt: stored.absoluteExpiresAt, createdAt: stored.createdAt };
      if (stored.seal !== undefined) {
        const sealed: SealedSession = { ...fields, extra: stored.extra, constraints: stored.constraints ?? {} };
        return holds('v2', canonical(sealed), stored.seal) ? sealed : undefined;
      }
      // A pre-upgrade session: nothing but claims and the two reserved entries in `extra`.
      const { [LEGACY_SEAL_CLAIM]: seal, ...sealedExtra } = stored.extra;
      if (stored.constraints !== undefined || !holds('v1', canonicalV1({ ...fields, extra: sealedExtra }), seal)) return undefined;
      const { [LEGACY_CAP_CLAIM]: cap, ...extra } = sealedExtra;
      return { ...fields, extra, constraints: cap !== undefined ? { maxAccessTtlMs: Number(cap) } : {} };
    },
  };
}

/**
 * Integrity of refresh-token records against a writer of the store who lacks the seal secret
 * (the same secrets as the session seal above). Two secrets are derived (HKDF, own labels) from each seal secret:
 *
 *  - the key secret: a token's store key is HMAC(key secret, token). Without the secret nobody can
 *    make a token of their choosing map to a record, nor find the record of a token they hold
 *    other than by asking the authority;
 *  - the proof secret: a live record carries `proof` = MAC over (key, sid, exp, issuedAt), so a
 *    record cannot be repointed to another session or have its expiry or issue time (idle timeout)
 *    changed; a spent record carries a grace proof over (key, sid, successor, spentAt), so the grace
 *    window cannot be widened or moved. Stores delete these proofs when a token is spent (live
 *    proof) or its session revoked (both), so edits of `state`/`revoked` fields revive nothing.
 *
 * Proofs are `p1.<secret id>.<mac>`, checkable with any configured secret (KEK rotation); keys are
 * computed for every configured secret, the current one first.
 */
export interface RefreshIntegrity {
  /** The store keys a token may have: under the current secret first, then under older ones. */
  keys(token: string): string[];
  liveProof(key: string, sessionId: string, expiresAt: number, issuedAt: number): string;
  graceProof(key: string, sessionId: string, successor: string, spentAt: number): string;
  checkLive(key: string, sessionId: string, expiresAt: number, issuedAt: number, proof: string | undefined): boolean;
  checkGrace(key: string, sessionId: string, successor: string, spentAt: number, proof: string | undefined): boolean;
}

interface Derived {
  id: string;
  keySecret: Buffer;
  proofSecret: Buffer;
}

const derive = (secret: Buffer, label: string) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), label, 32));

export function createRefreshIntegrity(current: { id: string; secret: Buffer }, older: ReadonlyArray<{ id: string; secret: Buffer }> = []): RefreshIntegrity {
  const all: Derived[] = [current, ...older].map((k) => ({
    id: k.id,
    keySecret: derive(k.secret, 'token-authority refresh-token store key v1'),
    proofSecret: derive(k.secret, 'token-authority refresh-token record proof v1'),
  }));
  const byId = new Map(all.map((d) => [d.id, d.proofSecret]));
  const mac = (secret: Buffer, fields: ReadonlyArray<string | number>) => createHmac('sha256', secret).update(JSON.stringify(fields)).digest();
  const make = (fields: ReadonlyArray<string | number>) => `p1.${all[0]!.id}.${mac(all[0]!.proofSecret, fields).toString('base64url')}`;
  const check = (fields: ReadonlyArray<string | number>, proof: string | undefined) => {
    const m = /^p1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(proof ?? '');
    const secret = m ? byId.get(m[1]!) : undefined;
    if (!m || !secret) return false;
    return timingSafeEqual(mac(secret, fields), Buffer.from(m[2]!, 'base64url'));
  };
  const live = (key: string, sid: string, exp: number, iat: number) => ['live', key, sid, exp, iat];
  const grace = (key: string, sid: string, succ: string, spentAt: number) => ['grace', key, sid, succ, spentAt];
  return {
    keys: (token) => all.map((d) => createHmac('sha256', d.keySecret).update(token).digest('base64url')),
    liveProof: (key, sid, exp, iat) => make(live(key, sid, exp, iat)),
    graceProof: (key, sid, succ, spentAt) => make(grace(key, sid, succ, spentAt)),
    checkLive: (key, sid, exp, iat, proof) => Number.isSafeInteger(exp) && Number.isSafeInteger(iat) && check(live(key, sid, exp, iat), proof),
    checkGrace: (key, sid, succ, spentAt, proof) => Number.isSafeInteger(spentAt) && check(grace(key, sid, succ, spentAt), proof),
  };
}

function fromKek(kek: KeyEncryptionKey): { id: string; secret: Buffer } {
  const secret = Buffer.from(hkdfSync('sha256', kek.key.export(), Buffer.alloc(0), 'token-authority session seal v1', 32));
  return { id: `kek-${kek.id}`, secret };
}

/** The seal for this configuration (see the module comment for where its secret comes from). */
export async function sessionSealFor(config: Config): Promise<SessionSeal> {
  const keks = await configuredKeyEncryptionKeys(config);
  if (keks !== undefined) return createSessionSeal(fromKek(keks.current), keks.previous.map(fromKek));
  return createSessionSeal({ id: 'file', secret: await fileSecret(config.keyDir) });
}

async function fileSecret(dir: string): Promise<Buffer> {
  const path = join(dir, 'session-seal.key');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    // 'wx': of several processes starting at once, exactly one creates it; the others read it.
    const handle = await open(path, 'wx', 0o600);
    try {
      await handle.writeFile(randomBytes(32).toString('base64url') + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new TokenAuthorityError(ErrorCodes.KEY, `cannot create ${path}: ${(err as Error).message}`, { cause: err });
  }
  const problem = privateFileProblem((await stat(path)).mode, path, 'the session-seal secret');
  if (problem !== undefined) throw new TokenAuthorityError(ErrorCodes.KEY, `${path} ${problem}`);
  for (let attempt = 0; ; attempt++) {
    const text = (await readFile(path, 'utf8')).trim();
    const secret = Buffer.from(text, 'base64url');
    if (secret.length === 32) return secret;
    // Another process may be between creating and writing the file.
    if (attempt >= 50) throw new TokenAuthorityError(ErrorCodes.KEY, `${path} does not hold a 32-byte base64url secret`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
