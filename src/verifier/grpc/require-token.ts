import { Metadata, status, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { VerifiedClaims, VerifyReason, VerifyRequirements } from '../../shared/claims.js';
import type { Verifier } from '../create-verifier.js';
import { bearerToken } from '../bearer-token.js';

/** What a protected method requires of the caller's token. */
export type RequireTokenOptions = VerifyRequirements;

/** A unary handler that also receives the verified claims of the caller's token. */
export type AuthenticatedUnaryHandler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, claims: VerifiedClaims) => void | Promise<void>;

/** The bearer token in `authorization` metadata, if any. */
export function bearerFromMetadata(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  return typeof value === 'string' ? bearerToken(value) : undefined;
}

/** The status a rejected token maps to: scope problems are PERMISSION_DENIED, a stale verifier UNAVAILABLE. */
export function statusForReason(reason: VerifyReason | 'MISSING_TOKEN'): status {
  if (reason === 'MISSING_SCOPE') return status.PERMISSION_DENIED;
  if (reason === 'STALE') return status.UNAVAILABLE;
  return status.UNAUTHENTICATED;
}

function rejection(reason: VerifyReason | 'MISSING_TOKEN', detail: string): Partial<ServiceError> {
  const metadata = new Metadata();
  metadata.set('ta-verify-reason', reason);
  return { code: statusForReason(reason), details: `${reason}: ${detail}`, metadata };
}

/**
 * Verify the caller's token before a unary handler runs, locally. A missing or invalid
 * token is answered with UNAUTHENTICATED (PERMISSION_DENIED for missing scopes, UNAVAILABLE while the
 * revocation state is stale) and the reason in the message and in `ta-verify-reason` trailing
 * metadata. The handler is called with the claims.
 *
 * @example
 * server.addService(OrdersService, {
 *   getOrder: requireToken(verifier, { audience: 'orders', requiredScopes: ['orders:read'] },
 *     (call, callback, claims) => callback(null, loadOrder(call.request.id, claims.subject))),
 * });
 */
export function requireToken<Req, Res>(verifier: Verifier, options: RequireTokenOptions, handler: AuthenticatedUnaryHandler<Req, Res>): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const token = bearerFromMetadata(call.metadata);
    if (!token) {
      callback(rejection('MISSING_TOKEN', 'no "authorization: Bearer <token>" metadata'), null);
      return;
    }
    verifier.verify(token, options).then(
      (result) => {
        if (!result.valid) {
          callback(rejection(result.reason, result.detail), null);
          return;
        }
        Promise.resolve(handler(call, callback, result.claims)).catch((err: unknown) => {
          callback({ code: status.INTERNAL, details: 'internal error' }, null);
          void err;
        });
      },
      () => callback({ code: status.INTERNAL, details: 'token verification failed unexpectedly' }, null),
    );
  };
}
