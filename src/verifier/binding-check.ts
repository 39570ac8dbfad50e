/**
 * The sender-constraint stage (RFC 8705 §3, RFC 9449 §7): run on every call, also when the
 * token's signature result came from the cache, because the certificate and the proof belong to
 * the request, not to the token.
 *
 * The rules, in order:
 * - the scheme: `requirements.scheme`, or 'DPoP' when a `dpop` proof is given and no scheme is.
 *   The DPoP scheme needs a `jkt`-bound token (an unbound or certificate-bound one is
 *   BINDING_MISMATCH, RFC 9449 §7.1); a `jkt`-bound token presented as 'Bearer' is
 *   BINDING_MISMATCH (RFC 9449 §7.2) whatever proof comes with it.
 * - an unbound token (no `cnf`) with no DPoP scheme: valid; a certificate or a proof given with it
 *   is not looked at (an explicit 'Bearer' scheme with a proof is a bearer request).
 * - `x5t#S256`: the client certificate (or its thumbprint) must be given and its DER's SHA-256
 *   must equal it.
 * - `jkt`: a proof must be given and pass checkDpopProof for this method, URI and token, signed by
 *   the bound key (another key is BINDING_MISMATCH, any other failure INVALID_DPOP_PROOF).
 */
import { rejected, type VerifiedClaims, type VerifyRequirements, type VerifyResult } from '../shared/claims.js';
import { certificateThumbprint } from './certificate-thumbprint.js';
import { checkDpopProof, type DpopProofResult } from './dpop-proof.js';
import type { DpopReplayCache } from './dpop-replay-cache.js';
import type { TokenCheckOptions } from './verify-token.js';

/** What the binding stage needs beyond the token's options. */
export interface BindingCheckOptions {
  /** DPoP window in seconds. */
  dpopWindowSec: number;
  /** Where proof ids are claimed: synchronous for verifySync, possibly shared for verify. */
  replay: DpopReplayCache;
}

/** Does this call need the binding stage at all? False for the unbound-token hot path. */
export function needsBindingCheck(claims: VerifiedClaims, req: VerifyRequirements): boolean {
  return claims.confirmation !== undefined || req.scheme === 'DPoP' || (req.dpop != null && req.scheme === undefined);
}

/**
 * Check the token's binding against the request. `valid` is the result of the earlier stages
 * (returned as is when the binding holds). A promise only when a `jkt`-bound token meets an
 * asynchronous replay cache.
 */
export function checkBinding(
  valid: VerifyResult & { valid: true },
  token: string,
  req: VerifyRequirements,
  opts: TokenCheckOptions,
  binding: BindingCheckOptions,
  nowSec: number,
): VerifyResult | Promise<VerifyResult> {
  const cnf = valid.claims.confirmation;
  // null (from JavaScript callers) counts as not given, like undefined.
  const scheme = req.scheme ?? (req.dpop != null ? 'DPoP' : undefined);
  if (cnf === undefined) {
    return scheme === 'DPoP' ? rejected('BINDING_MISMATCH', 'the DPoP scheme was used with a token that is not bound to a DPoP key') : valid;
  }
  if ('x5tS256' in cnf) {
    if (scheme === 'DPoP') return rejected('BINDING_MISMATCH', 'the DPoP scheme was used with a certificate-bound token');
    const cert = req.clientCertificate;
    if (cert === undefined) return rejected('BINDING_MISMATCH', 'the token is bound to a client certificate and none was presented');
    let thumbprint: string;
    try {
      thumbprint = cachedCertificateThumbprint(cert);
    } catch {
      return rejected('BINDING_MISMATCH', 'the token is bound to a client certificate and the one presented is neither DER, PEM nor a thumbprint');
    }
    return thumbprint === cnf.x5tS256 ? valid : rejected('BINDING_MISMATCH', 'the token is bound to another client certificate');
  }
  if (scheme === 'Bearer') return rejected('BINDING_MISMATCH', 'a DPoP-bound token was presented with the Bearer scheme');
  const dpop = req.dpop;
  if (dpop == null) return rejected('BINDING_MISMATCH', 'the token is bound to a DPoP key and no DPoP proof was presented');
  if (typeof dpop !== 'object') return rejected('INVALID_DPOP_PROOF', 'dpop must be { proof, method, uri }');
  const checked = checkDpopProof(dpop.proof, {
    method: dpop.method,
    uri: dpop.uri,
    accessToken: token,
    jkt: cnf.jkt,
    nowSec,
    windowSec: binding.dpopWindowSec,
    clockSkewSec: opts.clockSkewSec,
    algorithms: opts.algorithms,
    replay: binding.replay,
  });
  return 'ok' in checked ? answer(checked, valid) : checked.then((r) => answer(r, valid));
}

function answer(r: DpopProofResult, valid: VerifyResult): VerifyResult {
  return r.ok ? valid : rejected(r.reason, r.detail);
}

/**
 * Thumbprints of PEM certificates seen recently, by their text (a proxy forwards the same text on
 * every request of a connection); bounded, emptied when full. DER bytes are hashed on every call
 * (~1 µs per KB): a Uint8Array can be refilled in place, so its identity proves nothing.
 */
const byPem = new Map<string, string>();
const PEM_CACHE_SIZE = 256;

function cachedCertificateThumbprint(cert: Uint8Array | string | { readonly x5tS256: string }): string {
  if (typeof cert === 'object' && !(cert instanceof Uint8Array)) {
    if (cert === null || typeof cert.x5tS256 !== 'string') throw new TypeError('not a thumbprint');
    return cert.x5tS256;
  }
  if (typeof cert === 'string') {
    let t = byPem.get(cert);
    if (t === undefined) {
      t = certificateThumbprint(cert);
      if (byPem.size >= PEM_CACHE_SIZE) byPem.clear();
      byPem.set(cert, t);
    }
    return t;
  }
  return certificateThumbprint(cert);
}
