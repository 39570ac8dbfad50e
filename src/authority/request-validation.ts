import { RESERVED_CLAIMS } from '../shared/claims.js';
import { invalidArgument } from '../shared/errors.js';

/** Input limits. Documented in docs/api.md ("Limits"). */
export const LIMITS = {
  subjectBytes: 256,
  audiences: 16,
  audienceBytes: 256,
  scopes: 64,
  scopeBytes: 128,
  extraClaims: 32,
  extraClaimNameBytes: 64,
  extraClaimsTotalBytes: 4096,
  reasonBytes: 128,
  idBytes: 256,
  clientIdBytes: 256,
} as const;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
const CLAIM_NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;

export function requireText(field: string, value: string, maxBytes: number): string {
  if (value.length === 0) throw invalidArgument(`${field} is required`);
  if (bytes(value) > maxBytes) throw invalidArgument(`${field} is longer than ${maxBytes} bytes`);
  if (CONTROL.test(value)) throw invalidArgument(`${field} contains control characters`);
  return value;
}

/** Whitespace of any kind, and C1 controls (C0 and DEL are refused by requireText already). */
const AUDIENCE_FORBIDDEN = /[\s\u0080-\u009f]/u;

/**
 * Audiences travel space-separated in the sidecar's `x-auth-audience` header, so none may contain
 * whitespace; `*` is reserved (it means "any audience" in TA_AUDIENCE and the client policy).
 */
export function validateAudiences(values: readonly string[]): string[] {
  if (values.length === 0) throw invalidArgument('audience: at least one audience is required');
  if (values.length > LIMITS.audiences) throw invalidArgument(`audience: at most ${LIMITS.audiences} audiences`);
  return [...new Set(values.map((a, i) => {
    const field = `audience[${i}]`;
    requireText(field, a, LIMITS.audienceBytes);
    if (AUDIENCE_FORBIDDEN.test(a)) throw invalidArgument(`${field} contains whitespace or control characters (audiences are forwarded space-separated in x-auth-audience)`);
    if (a === '*') throw invalidArgument(`${field} "*" is reserved: it means "any audience" to the sidecar (TA_AUDIENCE) and the client policy`);
    return a;
  }))];
}

export function validateScopes(values: readonly string[]): string[] {
  if (values.length > LIMITS.scopes) throw invalidArgument(`scopes: at most ${LIMITS.scopes} scopes`);
  return [...new Set(values.map((s, i) => {
    if (s.length === 0) throw invalidArgument(`scopes[${i}] is empty`);
    if (bytes(s) > LIMITS.scopeBytes) throw invalidArgument(`scopes[${i}] is longer than ${LIMITS.scopeBytes} bytes`);
    if (!SCOPE_TOKEN.test(s)) throw invalidArgument(`scopes[${i}] "${s.slice(0, 40)}" has characters not allowed in a scope (RFC 6749 §3.3: printable ASCII except space, " and \\)`);
    return s;
  }))];
}

export function validateExtraClaims(extra: Readonly<Record<string, string>>): Record<string, string> {
  const names = Object.keys(extra);
  if (names.length > LIMITS.extraClaims) throw invalidArgument(`extra_claims: at most ${LIMITS.extraClaims} claims`);
  let total = 0;
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = extra[name]!;
    if (!CLAIM_NAME.test(name) || bytes(name) > LIMITS.extraClaimNameBytes) {
      throw invalidArgument(`extra_claims: "${name.slice(0, 40)}" is not a valid claim name (letters, digits, _ . : -; at most ${LIMITS.extraClaimNameBytes} bytes)`);
    }
    if (RESERVED_CLAIMS.has(name)) throw invalidArgument(`extra_claims: "${name}" is a reserved claim name and is set by the authority`);
    total += bytes(name) + bytes(value);
    out[name] = value;
  }
  if (total > LIMITS.extraClaimsTotalBytes) throw invalidArgument(`extra_claims: ${total} bytes in total, more than the ${LIMITS.extraClaimsTotalBytes} allowed`);
  return out;
}
