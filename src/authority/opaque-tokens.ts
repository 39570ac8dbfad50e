import { createHash, randomBytes } from 'node:crypto';

/**
 * Opaque identifiers and refresh tokens. A refresh token is `tart_` + 256 random bits (base64url):
 * the prefix lets Revoke tell it from an access token and lets secret scanners find leaked ones.
 * Only its SHA-256 reaches the store.
 */
export const REFRESH_TOKEN_PREFIX = 'tart_';
const REFRESH_TOKEN_LENGTH = REFRESH_TOKEN_PREFIX.length + 43;

export function newRefreshToken(): string {
  return REFRESH_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function looksLikeRefreshToken(value: string): boolean {
  return value.length === REFRESH_TOKEN_LENGTH && value.startsWith(REFRESH_TOKEN_PREFIX) && /^[A-Za-z0-9_-]+$/.test(value.slice(REFRESH_TOKEN_PREFIX.length));
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/** 128 random bits, base64url: token ids (jti) and session ids (sid). */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}
