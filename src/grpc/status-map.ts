import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ErrorCodes, isTokenAuthorityError, type ErrorCode } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';

/** The only table from error codes to gRPC status codes. */
const STATUS_BY_CODE: Readonly<Record<ErrorCode, status>> = {
  [ErrorCodes.INVALID_ARGUMENT]: status.INVALID_ARGUMENT,
  [ErrorCodes.PERMISSION_DENIED]: status.PERMISSION_DENIED,
  [ErrorCodes.UNAUTHENTICATED]: status.UNAUTHENTICATED,
  [ErrorCodes.REFRESH_INVALID]: status.UNAUTHENTICATED,
  [ErrorCodes.REFRESH_EXPIRED]: status.UNAUTHENTICATED,
  [ErrorCodes.REFRESH_REUSED]: status.UNAUTHENTICATED,
  [ErrorCodes.SESSION_REVOKED]: status.UNAUTHENTICATED,
  [ErrorCodes.DPOP_PROOF_INVALID]: status.UNAUTHENTICATED,
  [ErrorCodes.STORE_UNAVAILABLE]: status.UNAVAILABLE,
  [ErrorCodes.RATE_LIMITED]: status.RESOURCE_EXHAUSTED,
  [ErrorCodes.NOT_FOUND]: status.NOT_FOUND,
  [ErrorCodes.FAILED_PRECONDITION]: status.FAILED_PRECONDITION,
  [ErrorCodes.CONFIG]: status.INTERNAL,
  [ErrorCodes.KEY]: status.INTERNAL,
  [ErrorCodes.UNIMPLEMENTED]: status.UNIMPLEMENTED,
  [ErrorCodes.INTERNAL]: status.INTERNAL,
};

/**
 * Codes whose message is NOT sent to the caller: configuration, key and internal failures may name
 * files, keys or internals. The caller gets INTERNAL with a generic message; the error is logged.
 */
const INTERNAL_CODES: ReadonlySet<ErrorCode> = new Set([ErrorCodes.CONFIG, ErrorCodes.KEY, ErrorCodes.INTERNAL]);

export function grpcStatusOf(code: ErrorCode): status {
  return STATUS_BY_CODE[code];
}

/**
 * Turn anything a handler threw into a gRPC error. Known errors keep their message and carry their
 * stable code in the `ta-error-code` trailer; anything else becomes INTERNAL with a generic message
 * while the full error is logged.
 */
export function toServiceError(err: unknown, logger: Logger, method: string): Partial<ServiceError> {
  const metadata = new Metadata();
  if (isTokenAuthorityError(err) && !INTERNAL_CODES.has(err.code)) {
    metadata.set('ta-error-code', err.code);
    return { code: STATUS_BY_CODE[err.code], details: err.message, metadata };
  }
  logger.error({ err, method }, 'unexpected error in handler');
  metadata.set('ta-error-code', ErrorCodes.INTERNAL);
  return { code: status.INTERNAL, details: 'internal error (logged on the server)', metadata };
}
