import { SIGNING_ALGORITHMS } from '../verifier/jose-rules.js';
import type { Clock } from '../shared/clock.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { checkDpopProof, DEFAULT_DPOP_WINDOW_SEC } from '../verifier/dpop-proof.js';
import { MemoryDpopReplayCache, type SyncDpopReplayCache } from '../verifier/dpop-replay-cache.js';
import { tokenEndpointUrl } from './oauth-paths.js';

/**
 * Checks a DPoP proof made for the authority's token endpoint (RFC 9449 §5) and returns the RFC
 * 7638 thumbprint of its key; throws DPOP_PROOF_INVALID with the reason otherwise.
 */
export type TokenEndpointProofCheck = (proof: string) => string;

/**
 * The one rule for DPoP at the token endpoint, over HTTP (the `DPoP` header) and gRPC
 * (RefreshRequest.dpop_proof) alike: `htm` POST, `htu` the token endpoint URL the RFC 8414 metadata
 * advertises (issuer + /oauth2/token, so a proof made for the HTTP endpoint also serves gRPC
 * Refresh: one rule, one proof format for the client), `iat` within the DPoP window, no `ath`
 * looked at (no access token is presented), each proof once. Checked by the verifier library's
 * proof checker, so the algorithm allow-list and key rules are every resource server's.
 *
 * Replays are remembered by this replica only: a proof replayed at another replica still needs the
 * refresh token it came with, which rotation has spent by then (reuse detection), and a
 * client_credentials proof needs the client's certificate as well.
 */
export function createTokenEndpointProofCheck(options: { issuer: string; clockSkewMs: number; clock: Clock; windowSec?: number; replay?: SyncDpopReplayCache }): TokenEndpointProofCheck {
  const uri = tokenEndpointUrl(options.issuer);
  const windowSec = options.windowSec ?? DEFAULT_DPOP_WINDOW_SEC;
  const replay = options.replay ?? new MemoryDpopReplayCache();
  const clockSkewSec = Math.floor(options.clockSkewMs / 1000);
  return (proof) => {
    const r = checkDpopProof(proof, { method: 'POST', uri, nowSec: Math.floor(options.clock.nowMs() / 1000), windowSec, clockSkewSec, algorithms: SIGNING_ALGORITHMS, replay });
    if (!r.ok) throw new TokenAuthorityError(ErrorCodes.DPOP_PROOF_INVALID, `the DPoP proof is not valid for POST ${uri}: ${r.detail}`);
    return r.jkt;
  };
}
