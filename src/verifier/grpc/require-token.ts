import { Metadata, status, type handleUnaryCall, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import type { VerifiedClaims, VerifyRequirements } from '../../shared/claims.js';
import { errorMessage } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/logger.js';
import { reasonStatus, type DenialReason } from '../../shared/reason-status.js';
import { verifierLogger, type Verifier } from '../create-verifier.js';
import { bearerToken } from '../bearer-token.js';

/** What a protected method requires of the caller's token, and where its failures are logged. */
export interface RequireTokenOptions extends VerifyRequirements {
  /**
   * Where a handler that throws or rejects is logged (the caller gets INTERNAL). Default: the
   * logger the verifier was created with.
   */
  logger?: Logger;
}

/** A unary handler that also receives the verified claims of the caller's token. */
export type AuthenticatedUnaryHandler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, claims: VerifiedClaims) => void | Promise<void>;

/** The bearer token in `authorization` metadata, if any. */
export function bearerFromMetadata(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  return typeof value === 'string' ? bearerToken(value) : undefined;
}

/**
 * The status a rejected token maps to, from the one table (REASON_STATUS): scope problems are
 * PERMISSION_DENIED, a stale verifier UNAVAILABLE, anything else UNAUTHENTICATED.
 */
export function statusForReason(reason: DenialReason): status {
  return reasonStatus(reason).grpc as number as status;
}

function rejection(reason: DenialReason, detail: string): Partial<ServiceError> {
  const metadata = new Metadata();
  metadata.set('ta-verify-reason', reason);
  return { code: statusForReason(reason), details: `${reason}: ${detail}`, metadata };
}

/**
 * Verify the caller's token before a unary handler runs, locally. An mTLS-bound token
 * (`cnf` `x5t#S256`, RFC 8705) must come over a connection with that client certificate (taken
 * from the call's TLS auth context unless `clientCertificate` is given); a DPoP-bound token cannot
 * be used here (gRPC has no DPoP proof) and is BINDING_MISMATCH. A missing or invalid
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
  const { logger: given, ...requirements } = options;
  const logger = given ?? verifierLogger(verifier) ?? silentLogger;
  /** A handler failure: logged (never the token), answered with a generic INTERNAL. */
  const failed = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, err: unknown) => {
    logger.error({ err: errorMessage(err), method: call.getPath() }, 'requireToken: the handler failed; answered INTERNAL');
    callback({ code: status.INTERNAL, details: 'internal error' }, null);
  };
  return (call, callback) => {
    const token = bearerFromMetadata(call.metadata);
    if (!token) {
      callback(rejection('MISSING_TOKEN', 'no "authorization: Bearer <token>" metadata'), null);
      return;
    }
    // An mTLS-bound token (cnf x5t#S256) is checked against the certificate of this connection.
    const peerCertificate = requirements.clientCertificate === undefined ? call.getAuthContext?.()?.sslPeerCertificate?.raw : undefined;
    verifier.verify(token, peerCertificate ? { ...requirements, clientCertificate: peerCertificate } : requirements).then(
      (result) => {
        if (!result.valid) {
          callback(rejection(result.reason, result.detail), null);
          return;
        }
        // A synchronous throw is caught here too (it would otherwise be an unhandled rejection).
        let done: void | Promise<void>;
        try {
          done = handler(call, callback, result.claims);
        } catch (err) {
          failed(call, callback, err);
          return;
        }
        Promise.resolve(done).catch((err: unknown) => failed(call, callback, err));
      },
      (err: unknown) => {
        logger.error({ err: errorMessage(err), method: call.getPath() }, 'requireToken: token verification failed unexpectedly');
        callback({ code: status.INTERNAL, details: 'token verification failed unexpectedly' }, null);
      },
    );
  };
}
