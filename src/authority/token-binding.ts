import { invalidArgument } from '../shared/errors.js';

/**
 * What a sender-constrained token is bound to (RFC 7800 `cnf`): the SHA-256 thumbprint of the
 * client's certificate (RFC 8705 §3.1, `x5t#S256`) or of its DPoP public key (RFC 9449 §6, `jkt`).
 * The same shape as the verifier's `VerifiedClaims.confirmation`.
 */
export type TokenBinding = { readonly x5tS256: string } | { readonly jkt: string };

/**
 * Where a session keeps its binding: an entry of the session's `extra` map named like the claim
 * (`cnf`, a reserved claim name, so no extra claim can take it), holding the claim's JSON. Being in
 * `extra` it is covered by the session seal (session-seal.ts): a writer of the store can neither
 * strip a binding nor change it without Refresh refusing the session.
 */
export const BINDING_FIELD = 'cnf';

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

/** The session field's value (the claim's JSON). */
export function bindingField(b: TokenBinding): string {
  return JSON.stringify(cnfClaim(b));
}

/**
 * The binding a session field holds, undefined for an unbound session. The field is sealed, so a
 * value this authority did not write never gets here (the seal check comes first); it throws
 * rather than guess.
 */
export function bindingOfField(value: string | undefined): TokenBinding | undefined {
  if (value === undefined) return undefined;
  const cnf = JSON.parse(value) as Record<string, unknown>;
  const keys = Object.keys(cnf);
  if (keys.length === 1 && typeof cnf['x5t#S256'] === 'string') return { x5tS256: requireThumbprint('cnf.x5t#S256', cnf['x5t#S256']) };
  if (keys.length === 1 && typeof cnf.jkt === 'string') return { jkt: requireThumbprint('cnf.jkt', cnf.jkt) };
  throw new Error('the session binding is not a cnf claim this authority writes');
}

/** A name for the access line and messages: `x5t#S256` or `jkt`. */
export function bindingKind(b: TokenBinding): 'x5t#S256' | 'jkt' {
  return 'x5tS256' in b ? 'x5t#S256' : 'jkt';
}
