/** `token-authority/grpc`: helpers for grpc-js services that verify tokens with the local verifier. */
export { bearerFromMetadata, requireToken, statusForReason, type AuthenticatedUnaryHandler, type RequireTokenOptions } from './require-token.js';
