import {
  RevocationKind,
  type Confirmation,
  type GetPropagationResponse,
  type IssueResponse,
  type TokenAuthorityServiceServer,
} from '../gen/tokenauthority/v1/token_authority.js';
import { invalidArgument } from '../shared/errors.js';
import type { KeyManager } from '../keys/key-manager.js';
import { principalOf } from '../grpc/caller.js';
import { rateLimitKey } from '../grpc/rate-limiter.js';
import { jwksResponse } from '../grpc/jwks-response.js';
import { type GrpcServiceRegistration, unary, type UnaryDeps } from '../grpc/server.js';
import { TokenAuthorityServiceWithCachedVerify, verifyRpc } from '../grpc/verify-response.js';
import { audited, type TokenAuthority, type TokenPair } from './token-authority.js';
import type { PropagationTracker } from './propagation.js';
import type { TokenBinding } from './token-binding.js';

/** IssueRequest.confirmation as the authority's binding (validated there). */
function bindingOf(c: Confirmation | undefined): TokenBinding | undefined {
  if (c === undefined) return undefined;
  const b = c.binding;
  // A Confirmation sent empty is a client that meant to bind and did not say to what.
  if (!b) throw invalidArgument('confirmation is set but names neither x5t_s256 nor jkt');
  return b.$case === 'x5tS256' ? { x5tS256: b.x5tS256 } : { jkt: b.jkt };
}

const KIND = { jti: RevocationKind.REVOCATION_KIND_TOKEN, sid: RevocationKind.REVOCATION_KIND_SESSION, sub: RevocationKind.REVOCATION_KIND_SUBJECT } as const;

function pair(p: TokenPair): IssueResponse {
  return {
    accessToken: p.accessToken,
    accessExpiresAt: new Date(p.accessExpiresAt),
    refreshToken: p.refreshToken,
    refreshExpiresAt: new Date(p.refreshExpiresAt),
    sessionId: p.sessionId,
    tokenId: p.tokenId,
    keyId: p.keyId,
  };
}

/** The gRPC face of the authority: message conversion only; the rules live in TokenAuthority. */
export function createAuthorityService(
  authority: TokenAuthority,
  keys: KeyManager,
  propagation: PropagationTracker,
  deps: UnaryDeps,
): GrpcServiceRegistration {
  const implementation: TokenAuthorityServiceServer = {
    issue: unary('Issue', deps, async (req, ctx) =>
      pair(await audited(ctx.log, authority.issue(
        { subject: req.subject, audience: req.audience, scopes: req.scopes, extraClaims: req.extraClaims, accessTtlSeconds: req.accessTtlSeconds, clientId: req.clientId, confirmation: bindingOf(req.confirmation) },
        principalOf(ctx.caller),
      ))),
    ),
    verify: verifyRpc((token, req) => authority.verify(token, req), deps),
    refresh: unary('Refresh', deps, async (req, ctx) =>
      pair(await audited(ctx.log, authority.refresh({ refreshToken: req.refreshToken, accessTtlSeconds: req.accessTtlSeconds, ...(req.dpopProof ? { dpopProof: req.dpopProof } : {}) }))),
    ),
    revoke: unary('Revoke', deps, async (req, ctx) => {
      const t = req.target;
      if (!t) throw invalidArgument('one of token, session_id, subject or token_id is required');
      const target =
        t.$case === 'token' ? { kind: 'token' as const, token: t.token }
        : t.$case === 'sessionId' ? { kind: 'session' as const, sessionId: t.sessionId }
        : t.$case === 'subject' ? { kind: 'subject' as const, subject: t.subject }
        : { kind: 'tokenId' as const, tokenId: t.tokenId };
      const out = await audited(ctx.log, authority.revoke(target, req.reason, principalOf(ctx.caller)));
      return { sequence: out.sequence, kind: KIND[out.kind], revokedId: out.id, entryExpiresAt: new Date(out.entryExpiresAt) };
    }),
    getJwks: unary('GetJwks', deps, () => jwksResponse(keys.jwksJson(), keys.jwks().keys)),
    getPropagation: unary('GetPropagation', deps, async (req, ctx): Promise<GetPropagationResponse> => {
      if (req.sequence <= 0) throw invalidArgument('sequence must be positive');
      if (req.waitMs > 30_000) throw invalidArgument('wait_ms must be at most 30000');
      const wait = req.waitMs > 0 ? { signal: ctx.signal, deadlineMs: ctx.deadlineMs, caller: rateLimitKey(ctx.caller) } : {};
      const r = await propagation.query(req.sequence, req.minVerifiers, req.waitMs, wait);
      if (req.waitMs > 0 && ctx.signal.aborted) ctx.log.cancelled = true;
      return {
        verifiers: r.verifiers.map((v) => ({ instanceId: v.instanceId, appliedSequence: v.seq, reportedAt: new Date(v.reportedAt) })),
        appliedCount: r.appliedCount,
        liveCount: r.verifiers.length,
      };
    }),
  };
  return { name: 'tokenauthority.v1.TokenAuthorityService', definition: TokenAuthorityServiceWithCachedVerify, implementation };
}
