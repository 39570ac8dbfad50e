import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { KeyEncryptionKey } from '../keys/key-encryption-key.js';
import { configuredKeyEncryptionKeys } from '../keys/key-encryption-key.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { createRefreshIntegrity, type RefreshIntegrity } from './refresh-integrity.js';
import { privateFileProblem } from '../shared/file-permissions.js';

/**
 * Integrity of session records. Refresh signs an access token from what the store says a session
 * is; without a check, anyone who can write to Redis could plant a session (any subject, audience
 * and scopes) with a refresh token of their choosing and have the authority sign for it. Issue seals
 * the session's claims with an HMAC under a secret that is not in the store; Refresh refuses a
 * session whose seal does not match.
 *
 * The secret is derived (HKDF) from the key-encryption key when one is configured, so every
 * replica sharing the KEK shares it and a KEK rotation keeps older seals checkable through
 * TA_KEY_ENCRYPTION_KEY_PREVIOUS; without a KEK it is a random 256-bit file `session-seal.key`
 * (mode 0600) in TA_KEY_DIR, beside the signing keys.
 */

/** Where the seal is kept: an entry of the session's `extra` map, a reserved claim name. */
export const SEAL_FIELD = 'ta_seal';
/**
 * The issuing client's access-TTL cap (ms), an entry of the session's `extra` map and so covered
 * by the seal; Refresh applies it. Reserved; never put into a token.
 */
export const CAP_FIELD = 'ta_cap';

/** What a seal covers: everything Refresh puts into a token, apart from times and ids it makes. */
export interface SealedSession {
  sessionId: string;
  subject: string;
  audience: readonly string[];
  scopes: readonly string[];
  /** Extra claims including client_id, excluding the seal itself. */
  extra: Readonly<Record<string, string>>;
  absoluteExpiresAt: number;
  createdAt: number;
}

export interface SessionSeal {
  seal(session: SealedSession): string;
  check(session: SealedSession, seal: string | undefined): boolean;
  /** Store keys and proofs of refresh-token records, from the same secrets (refresh-integrity.ts). */
  readonly refresh: RefreshIntegrity;
}

function canonical(s: SealedSession): string {
  const extra = Object.keys(s.extra).sort().map((k) => [k, s.extra[k]]);
  return JSON.stringify(['ta-session-v1', s.sessionId, s.subject, s.audience, s.scopes, extra, s.absoluteExpiresAt, s.createdAt]);
}

/** A seal over HMAC-SHA256 with `current`, checkable with any of `keys` (by id). */
export function createSessionSeal(current: { id: string; secret: Buffer }, older: ReadonlyArray<{ id: string; secret: Buffer }> = []): SessionSeal {
  const byId = new Map([current, ...older].map((k) => [k.id, k.secret]));
  const mac = (secret: Buffer, s: SealedSession) => createHmac('sha256', secret).update(canonical(s)).digest();
  return {
    refresh: createRefreshIntegrity(current, older),
    seal: (s) => `v1.${current.id}.${mac(current.secret, s).toString('base64url')}`,
    check(s, seal) {
      const m = /^v1\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{43})$/.exec(seal ?? '');
      const secret = m ? byId.get(m[1]!) : undefined;
      if (!m || !secret) return false;
      return timingSafeEqual(mac(secret, s), Buffer.from(m[2]!, 'base64url'));
    },
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
