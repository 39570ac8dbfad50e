import { invalidArgument } from '../shared/errors.js';

/**
 * What a sender-constrained token is bound to (RFC 7800 `cnf`): the SHA-256 thumbprint of the
 * client's certificate (RFC 8705 §3.1, `x5t#S256`) or of its DPoP public key (RFC 9449 §6, `jkt`).
 * The same shape as the verifier's `VerifiedClaims.confirmation`.
 */
export type TokenBinding = { readonly x5tS256: string } | { readonly jkt: string };

/*
 * A session keeps its binding as `constraints.confirmation` (SessionConstraints in
 * store/token-store.ts), which the session seal covers (session-records.ts): a writer of the store
 * can neither strip a binding, nor change or add one, without Refresh refusing the session.
 */

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

/** A base64url SHA-256 thumbprint: 43 characters, canonical, 32 bytes. */
function requireThumbprint(field: string, value: string): string {
  if (!THUMBPRINT.test(value) || Buffer.from(value, 'base64url').toString('base64url') !== value) {
    throw invalidArgument(`${field} must be the base64url (no padding) SHA-256 thumbprint: 43 characters of A-Z a-z 0-9 - _ encoding 32 bytes`);
  }
  return value;
}

/** The validated binding of an Issue request; INVALID_ARGUMENT names the field. */
export function validateBinding(b: TokenBinding): TokenBinding {
  if ('x5tS256' in b) return { x5tS256: requireThumbprint('confirmation.x5t_s256', b.x5tS256) };
  return { jkt: requireThumbprint('confirmation.jkt', b.jkt) };
}

/** The RFC 7800 `cnf` claim of a bound token. */
export function cnfClaim(b: TokenBinding): Record<string, string> {
  return 'x5tS256' in b ? { 'x5t#S256': b.x5tS256 } : { jkt: b.jkt };
}

/** A name for the access line and messages: `x5t#S256` or `jkt`. */
export function bindingKind(b: TokenBinding): 'x5t#S256' | 'jkt' {
  return 'x5tS256' in b ? 'x5t#S256' : 'jkt';
}
