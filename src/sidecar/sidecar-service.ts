import type { TokenAuthorityServiceServer } from '../gen/tokenauthority/v1/token_authority.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { InternalVerifier } from '../verifier/create-verifier.js';
import { jwksResponse } from '../grpc/jwks-response.js';
import { type GrpcServiceRegistration, unary, type UnaryDeps } from '../grpc/server.js';
import { TokenAuthorityServiceWithCachedVerify, verifyRpc } from '../grpc/verify-response.js';

const authorityOnly = (method: string) => () => {
  throw new TokenAuthorityError(ErrorCodes.UNIMPLEMENTED, `${method} is answered by the authority, not by a sidecar: call the authority's address`);
};

/**
 * TokenAuthorityService as a sidecar serves it: Verify answered locally (so a client moves from the
 * authority to its sidecar by changing only the address) and GetJwks from the cached key set.
 */
export function createSidecarService(verifier: InternalVerifier, jwksJson: () => string, deps: UnaryDeps): GrpcServiceRegistration {
  const implementation: TokenAuthorityServiceServer = {
    verify: verifyRpc((token, req) => verifier.verifyNow(token, req), deps),
    getJwks: unary('GetJwks', deps, () => jwksResponse(jwksJson())),
    issue: unary('Issue', deps, authorityOnly('Issue')),
    refresh: unary('Refresh', deps, authorityOnly('Refresh')),
    revoke: unary('Revoke', deps, authorityOnly('Revoke')),
    getPropagation: unary('GetPropagation', deps, authorityOnly('GetPropagation')),
  };
  return { name: 'tokenauthority.v1.TokenAuthorityService', definition: TokenAuthorityServiceWithCachedVerify, implementation };
}
