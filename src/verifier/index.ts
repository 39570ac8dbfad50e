/**
 * `token-authority`: the embeddable verifier library. Verify access tokens issued by a
 * token-authority locally, with revocations pushed from its feed. It imports no server code: a
 * logger is passed in, and Redis is reached only through a RevocationSource
 * (`token-authority/redis` provides one).
 *
 * Everything is made by a factory (`createVerifier`, `createRemoteKeyResolver`,
 * `createStaticKeyResolver`); only the error is a class. What you create you also close: a
 * verifier's `stop()` closes none of the resources it was given.
 */
export { createVerifier, DEFAULT_MAX_TOKEN_LIFETIME_MS, type StalenessPolicy, type Verifier, type VerifierOptions, type VerifierStatus } from './create-verifier.js';
export {
  createRemoteKeyResolver,
  createStaticKeyResolver,
  keysFromJwks,
  type KeysFromJwksResult,
  type RemoteKeyResolver,
  type RemoteKeyResolverOptions,
  type RemoteKeyResolverStats,
  type SkippedJwk,
} from './key-resolvers.js';
export type { KeyResolver, VerificationKey } from './key-resolver.js';
export type { FeedListener, FeedSubscription, RevocationLogPage, RevocationSource } from './revocation-source.js';
export type { FreshnessStatus, LostRevocation } from './revocation-sync.js';
export type { DpopReplayCache, ReplayVerdict } from './dpop-replay-cache.js';
export { VerifyReasons, type Confirmation, type VerifiedClaims, type VerifyReason, type VerifyRequirements, type VerifyResult } from '../shared/claims.js';
export { ErrorCodes, TokenAuthorityError, type ErrorCode } from '../shared/errors.js';
export type { Clock } from '../shared/clock.js';
export type { Logger } from '../shared/logger.js';
export { parseFeedMessage, type FeedMessage, type HeartbeatEvent, type RevocationEvent } from '../shared/revocation-event.js';
export { SIGNING_ALGORITHMS, type SigningAlgorithm } from './jose-rules.js';
