import { createHash, randomFillSync } from 'node:crypto';

/**
 * Opaque identifiers and refresh tokens. A refresh token is `tart_` + 256 random bits (base64url):
 * the prefix lets Revoke tell it from an access token and lets secret scanners find leaked ones.
 * Only an HMAC of it reaches the store (record-integrity.ts); hashRefreshToken (plain SHA-256) is
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
