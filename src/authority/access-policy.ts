import { permissionDenied } from '../shared/errors.js';
import type { Principal } from '../shared/principal.js';

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
