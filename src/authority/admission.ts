import { RESERVED_CLAIMS } from '../shared/claims.js';
import { invalidArgument, permissionDenied } from '../shared/errors.js';
import { principalName, type Principal } from '../shared/principal.js';

/**
 * What a request must satisfy before the authority acts on it, in one place: who may call what
 * (the AccessPolicy contract; the loopback default below, the policy file in file-policy.ts), what
 * an Issue may ask for under the caller's grant (`admitIssue`), and the input limits every request
 * meets (`LIMITS`; documented in docs/api.md, "Limits").
 */

/** Privileged actions: the ones holding a token does not entitle anyone to. */
export type PrivilegedAction = 'issue' | 'revoke:subject' | 'revoke:session' | 'revoke:token_id' | 'introspect';

export interface IssueGrant {
  /** Audiences this caller may mint tokens for (undefined = any the server allows). */
  audiences?: readonly string[];
  /** Scopes this caller may grant (undefined = any). */
  scopes?: readonly string[];
  /** Longest access-token TTL this caller may ask for, ms (undefined = server maximum). */
  maxAccessTtlMs?: number;
  /** `client_id` values this caller may put into tokens (undefined = any). */
  clientIds?: readonly string[];
  /** Extra-claim names this caller may set (undefined = any). */
  extraClaims?: readonly string[];
}

/** Decides who may do what. Throws PERMISSION_DENIED / UNAUTHENTICATED naming the missing right. */
export interface AccessPolicy {
  authorize(principal: Principal, action: PrivilegedAction): void;
  /** Limits on what this principal may issue; called after authorize(principal, 'issue'). */
  issueGrant(principal: Principal): IssueGrant;
}

/**
 * Development policy until caller credentials are configured: privileged calls are allowed from
 * loopback peers, or from anywhere when insecure mode was explicitly chosen.
 */
export function createLoopbackPolicy(options: { insecure: boolean }): AccessPolicy {
  return {
    authorize(principal, action) {
      if (options.insecure || principal.loopback) return;
      throw permissionDenied(
        `${action} is privileged: without caller credentials it is allowed only from loopback (caller ${principal.peer}); configure mutual TLS and a client policy, or TA_INSECURE=true for development`,
      );
    },
    issueGrant: () => ({}),
  };
}

/** What an Issue asks for, as admission reads it (TokenAuthority's IssueInput adds the TTL and the binding). */
export interface IssueRequest {
  subject: string;
  audience: readonly string[];
  scopes: readonly string[];
  extraClaims: Readonly<Record<string, string>>;
  /** OAuth client the token is for (RFC 9068 `client_id`); default: the caller's identity. */
  clientId?: string;
}

/** An Issue admitted: the caller's grant, and the request's fields checked and normalised. */
export interface AdmittedIssue {
  readonly grant: IssueGrant;
  readonly subject: string;
  readonly audience: string[];
  readonly scopes: string[];
  readonly extra: Record<string, string>;
  readonly clientId: string;
}

/**
 * Admit an Issue: the caller may issue (policy), every field is within the input limits, every
 * audience is one this authority serves (`allowedAudiences`, empty = any) and the caller's grant
 * allows it, and so are the scopes, extra claims and `client_id` (by default the caller's own
 * identity, preferring one the grant lists). Throws PERMISSION_DENIED / INVALID_ARGUMENT naming
 * what is missing, checking in that order.
 */
export function admitIssue(policy: AccessPolicy, principal: Principal, input: IssueRequest, allowedAudiences: readonly string[]): AdmittedIssue {
  policy.authorize(principal, 'issue');
  const grant = policy.issueGrant(principal);
  const subject = requireText('subject', input.subject, LIMITS.subjectBytes);
  const audience = validateAudiences(input.audience);
  for (const aud of audience) {
    if (allowedAudiences.length > 0 && !allowedAudiences.includes(aud)) {
      throw permissionDenied(`audience "${aud}" is not allowed on this authority (allowed: ${allowedAudiences.join(', ')})`);
    }
    if (grant.audiences && !grant.audiences.includes(aud)) {
      throw permissionDenied(`client ${principalName(principal)} may not issue tokens for audience "${aud}"; allowed: ${grant.audiences.join(', ') || 'none'}`);
    }
  }
  const scopes = validateScopes(input.scopes);
  if (grant.scopes) {
    const denied = scopes.filter((s) => !grant.scopes!.includes(s));
    if (denied.length > 0) {
      throw permissionDenied(`client ${principalName(principal)} may not grant scope${denied.length > 1 ? 's' : ''} ${denied.join(', ')}; allowed: ${grant.scopes.join(', ') || 'none'}`);
    }
  }
  const extra = validateExtraClaims(input.extraClaims);
  if (grant.extraClaims) {
    const denied = Object.keys(extra).filter((name) => !grant.extraClaims!.includes(name));
    if (denied.length > 0) {
      throw permissionDenied(`client ${principalName(principal)} may not set extra claim${denied.length > 1 ? 's' : ''} ${denied.join(', ')}; allowed: ${grant.extraClaims.join(', ') || 'none'}`);
    }
  }
  const clientId = input.clientId ? requireText('client_id', input.clientId, LIMITS.clientIdBytes) : defaultClientId(principal, grant.clientIds);
  if (grant.clientIds && !grant.clientIds.includes(clientId)) {
    throw permissionDenied(`client ${principalName(principal)} may not issue tokens with client_id "${clientId}"; allowed: ${grant.clientIds.join(', ') || 'none'}`);
  }
  return { grant, subject, audience, scopes, extra, clientId };
}

/** The caller's own identity, preferring one the grant lists as a client_id. */
function defaultClientId(principal: Principal, allowed: readonly string[] | undefined): string {
  const own = principal.identities.map((i) => i.value);
  if (allowed) return own.find((i) => allowed.includes(i)) ?? allowed[0] ?? own[0] ?? 'token-authority';
  return own[0] ?? 'token-authority';
}

/* ---- Input limits ---- */

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
