import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Config } from '../config/config.js';
import { SIGNING_ALGORITHMS } from '../verifier/jose-rules.js';
import { certificateThumbprint } from '../verifier/certificate-thumbprint.js';
import type { Logger } from '../shared/logger.js';
import { ErrorCodes, isTokenAuthorityError } from '../shared/errors.js';
import { principalOf, type Caller } from '../grpc/caller.js';
import type { RateLimiter } from '../grpc/rate-limiter.js';
import type { HttpAnswer, Route } from '../http/http-server.js';
import { setOutcome } from '../telemetry/tracing.js';
import { readFormBody, type FormParams } from '../http/form-body.js';
import { audited, type TokenAuthority, type TokenPair } from './token-authority.js';
import { httpCaller } from './http-caller.js';
import { looksLikeRefreshToken } from './session-records.js';
import { NO_STORE, OAuthError, oauthErrorAnswer } from './oauth-errors.js';
import { OAUTH_PATHS, tokenEndpointUrl } from './oauth-paths.js';
import { validateScopes } from './admission.js';
import { cnfClaim, type TokenBinding } from './token-binding.js';

export { OAUTH_PATHS } from './oauth-paths.js';

export interface OAuthEndpointDeps {
  authority: TokenAuthority;
  settings: Pick<Config, 'issuer' | 'allowedAudiences'>;
  /** The same per-caller limits as gRPC: client_credentials counts as Issue, refresh as Refresh, revocation as Revoke. */
  rateLimiter?: RateLimiter | undefined;
  logger: Logger;
}

/** How clients authenticate, as the metadata documents say it. */
export interface OAuthAuthMethods {
  /** Mutual TLS is configured (TA_TLS_CLIENT_CA): tls_client_auth is possible. */
  mtls: boolean;
  /** Introspection callers are identified by certificate (a client policy), not by being on loopback. */
  introspectionByCertificate: boolean;
}

/**
 * The endpoint fields of the RFC 8414 and OpenID discovery documents. Only what is true: no
 * authorization endpoint, no ID tokens; access tokens of client_credentials over mutual TLS are
 * bound to the certificate (RFC 8705 §3.3 `tls_client_certificate_bound_access_tokens`, only when
 * mutual TLS is configured), and DPoP proofs are accepted with the signing algorithms every
 * verifier accepts (RFC 9449 §5.1).
 */
export function oauthMetadata(issuer: string, auth: OAuthAuthMethods): Record<string, unknown> {
  const tls = auth.mtls ? ['tls_client_auth'] : [];
  return {
    token_endpoint: tokenEndpointUrl(issuer),
    introspection_endpoint: issuer + OAUTH_PATHS.introspection,
    revocation_endpoint: issuer + OAUTH_PATHS.revocation,
    grant_types_supported: auth.mtls ? ['refresh_token', 'client_credentials'] : ['refresh_token'],
    // Refresh needs no client authentication (holding the refresh token suffices, as gRPC Refresh).
    token_endpoint_auth_methods_supported: ['none', ...tls],
    introspection_endpoint_auth_methods_supported: auth.introspectionByCertificate ? ['tls_client_auth'] : ['none'],
    revocation_endpoint_auth_methods_supported: ['none', ...tls],
    dpop_signing_alg_values_supported: [...SIGNING_ALGORITHMS],
    ...(auth.mtls ? { tls_client_certificate_bound_access_tokens: true } : {}),
  };
}

/** POST routes for the HTTP server: token (RFC 6749), introspection (RFC 7662), revocation (RFC 7009). */
export function oauthRoutes(deps: OAuthEndpointDeps): Record<string, Route> {
  return {
    [OAUTH_PATHS.token]: endpoint('token', deps, (form, caller, log, req) => tokenEndpoint(deps, form, caller, log, req)),
    [OAUTH_PATHS.introspection]: endpoint('introspect', deps, (form, caller) => introspectionEndpoint(deps, form, caller)),
    [OAUTH_PATHS.revocation]: endpoint('revoke', deps, (form, caller, log) => revocationEndpoint(deps, form, caller, log)),
  };
}

type Handler = (form: FormParams, caller: Caller, log: Record<string, unknown>, req: IncomingMessage) => Promise<HttpAnswer>;

/** Body reading, error answers and one access line per request (never a token in it). */
function endpoint(name: string, deps: OAuthEndpointDeps, handler: Handler): Route {
  const { logger } = deps;
  const accessLog = logger.isLevelEnabled?.('info') ?? true;
  return async (req, span) => {
    const started = performance.now();
    const caller = httpCaller(req);
    const log: Record<string, unknown> = {};
    let answer: HttpAnswer;
    let error: string | undefined;
    try {
      answer = await handler(await readFormBody(req), caller, log, req);
    } catch (err) {
      answer = oauthErrorAnswer(err, logger, name, req.headers.authorization);
      error = (err as Error).message;
    }
    if (span) setOutcome(span, log);
    if (accessLog) {
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      logger.info({ endpoint: name, status: answer.status, ms, peer: caller.peer, ...(caller.identities[0] ? { client: caller.identities[0] } : {}), ...log, ...(error ? { error } : {}) }, 'oauth');
    }
    return answer;
  };
}

const json = (body: unknown): HttpAnswer => ({ status: 200, body: JSON.stringify(body), headers: { ...NO_STORE } });

function required(form: FormParams, name: string): string {
  const value = form.get(name);
  if (value === undefined || value.length === 0) throw new OAuthError('invalid_request', 400, `parameter ${name} is required`);
  return value;
}

/**
 * The `client_id` parameter OAuth libraries send: accepted everywhere, and when the caller also
 * presented a verified certificate it must name one of that certificate's identities.
 */
function clientIdOf(form: FormParams, caller: Caller): string | undefined {
  const id = form.get('client_id');
  if (id === undefined || id.length === 0) return undefined;
  if (caller.identities.length > 0 && !caller.identities.includes(id)) {
    throw new OAuthError('invalid_client', 401, `client_id "${id.slice(0, 100)}" is not an identity of the client certificate presented (${caller.identities.join(', ')})`);
  }
  return id;
}

function limit(deps: OAuthEndpointDeps, method: 'Issue' | 'Refresh' | 'Revoke', caller: Caller): void {
  if (deps.rateLimiter?.applies(method)) deps.rateLimiter.check(method, caller);
}

/** Space-separated list (RFC 6749 §3.3), empty entries dropped. */
const spaceList = (text: string) => text.split(' ').filter((s) => s.length > 0);

/** exp − iat of a token this authority just signed (no trust decision rests on it). */
function lifetimeSeconds(accessToken: string): number {
  const payload = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp: number; iat: number; scope?: string };
  return payload.exp - payload.iat;
}

function scopeOf(accessToken: string): string | undefined {
  const payload = JSON.parse(Buffer.from(accessToken.split('.')[1] ?? '', 'base64url').toString('utf8')) as { scope?: string };
  return payload.scope;
}

/**
 * The request's `DPoP` header (RFC 9449 §4.1), or undefined. More than one is refused (§4.3 check
 * 1); node joins repeated headers with ", ", which no compact JWS contains, so the proof checker
 * refuses a joined value too.
 */
function dpopHeader(req: IncomingMessage): string | undefined {
  const values = req.headersDistinct.dpop;
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw new OAuthError('invalid_dpop_proof', 400, 'more than one DPoP header (RFC 9449 §4.3: exactly one)');
  return values[0];
}

/** `token_type` of a token response (RFC 9449 §5: DPoP for a DPoP-bound token). */
const tokenType = (pair: TokenPair) => (pair.confirmation && 'jkt' in pair.confirmation ? 'DPoP' : 'Bearer');

async function tokenEndpoint(deps: OAuthEndpointDeps, form: FormParams, caller: Caller, log: Record<string, unknown>, req: IncomingMessage): Promise<HttpAnswer> {
  const clientId = clientIdOf(form, caller);
  const grantType = required(form, 'grant_type');
  log.grant = grantType;
  switch (grantType) {
    case 'refresh_token':
      limit(deps, 'Refresh', caller);
      return refreshGrant(deps, form, log, dpopHeader(req));
    case 'client_credentials':
      limit(deps, 'Issue', caller);
      return clientCredentialsGrant(deps, form, caller, clientId, log, req);
    default:
      throw new OAuthError('unsupported_grant_type', 400, `grant_type "${grantType.slice(0, 60)}" is not supported here (supported: refresh_token, client_credentials)`);
  }
}

/**
 * RFC 6749 §6 through TokenAuthority.refresh: the same rotation, reuse detection, lifetimes and
 * binding as gRPC Refresh. The `DPoP` header is the proof a DPoP-bound session needs (RFC 9449
 * §5); a proof sent for any other session is checked all the same (an invalid one is refused) but
 * binds nothing: the token stays as it was issued (Refresh keeps a session's binding, it never adds
 * one).
 */
async function refreshGrant(deps: OAuthEndpointDeps, form: FormParams, log: Record<string, unknown>, dpopProof: string | undefined): Promise<HttpAnswer> {
  const refreshToken = required(form, 'refresh_token');
  const scope = form.get('scope');
  if (scope !== undefined) {
    // §6: a scope, if given, may not exceed the original; narrowing is not offered, so it must equal it.
    const session = await deps.authority.introspectRefresh(refreshToken);
    if (session) {
      const wanted = new Set(spaceList(scope));
      const same = wanted.size === session.scopes.length && session.scopes.every((s) => wanted.has(s));
      if (!same) throw new OAuthError('invalid_scope', 400, `scope must be omitted or equal the session's scope ("${session.scopes.join(' ')}"): narrowing on refresh is not supported`);
    }
  }
  const pair = await audited(log, deps.authority.refresh({ refreshToken, accessTtlSeconds: 0, ...(dpopProof !== undefined ? { dpopProof } : {}) }));
  const granted = scopeOf(pair.accessToken);
  return json({
    access_token: pair.accessToken,
    token_type: tokenType(pair),
    expires_in: lifetimeSeconds(pair.accessToken),
    refresh_token: pair.refreshToken,
    ...(granted ? { scope: granted } : {}),
  });
}

/**
 * RFC 6749 §4.4 for a workload authenticated by its mutual-TLS certificate (RFC 8705 §2): the
 * subject is its identity, and audiences, scopes and the longest TTL come from its `issue` grant
 * in the client policy; `scope` and `audience`/`resource` narrow them. No refresh token is
 * returned (§4.4.3): the client asks again with its certificate. TokenAuthority.issue still
 * records a session for the token (so Revoke by session_id works for it); its refresh token is
 * never disclosed and the record expires with TA_REFRESH_TTL.
 *
 * The token is sender-constrained: to the key of the request's DPoP proof when it sends one (RFC
 * 9449 §5, `cnf.jkt`, token_type DPoP), else to the client certificate it authenticated with (RFC
 * 8705 §3, `cnf.x5t#S256`). A stolen token is then useless without that key or certificate.
 */
async function clientCredentialsGrant(deps: OAuthEndpointDeps, form: FormParams, caller: Caller, clientId: string | undefined, log: Record<string, unknown>, req: IncomingMessage): Promise<HttpAnswer> {
  if (caller.identities.length === 0) {
    throw new OAuthError('invalid_client', 401, 'client_credentials needs client authentication by mutual TLS (RFC 8705 tls_client_auth): present a client certificate signed by TA_TLS_CLIENT_CA that names your identity');
  }
  const proof = dpopHeader(req);
  const confirmation: TokenBinding = proof !== undefined ? { jkt: deps.authority.tokenEndpointProofs(proof) } : { x5tS256: certificateThumbprint(peerCertificateDer(req)) };
  const subject = clientId ?? caller.identities[0]!;
  const grant = deps.authority.issueGrantOf(principalOf(caller));

  const scopeParam = form.get('scope');
  let scopes: string[];
  try {
    scopes = validateScopes(scopeParam !== undefined ? spaceList(scopeParam) : [...(grant.scopes ?? [])]);
  } catch (err) {
    throw new OAuthError('invalid_scope', 400, (err as Error).message);
  }
  const notGranted = grant.scopes ? scopes.filter((s) => !grant.scopes!.includes(s)) : [];
  if (notGranted.length > 0) {
    throw new OAuthError('invalid_scope', 400, `scope ${notGranted.join(' ')} is not in this client's issue grant (allowed: ${grant.scopes!.join(' ') || 'none'})`);
  }

  const audienceParam = form.get('audience');
  const requested = [...(audienceParam !== undefined ? spaceList(audienceParam) : []), ...form.getAll('resource').filter((r) => r.length > 0)];
  const allowed = grant.audiences ?? (deps.settings.allowedAudiences.length > 0 ? deps.settings.allowedAudiences : undefined);
  const audience = requested.length > 0 ? [...new Set(requested)] : allowed ? [...allowed] : [];
  if (audience.length === 0) {
    throw new OAuthError('invalid_request', 400, 'audience (or resource) is required: this client may issue for any audience, so name the one the token is for');
  }
  const outside = allowed ? audience.filter((a) => !allowed.includes(a)) : [];
  if (outside.length > 0) {
    throw new OAuthError('invalid_target', 400, `audience ${outside.map((a) => `"${a.slice(0, 100)}"`).join(', ')} is not allowed for this client (allowed: ${allowed!.join(', ')})`);
  }

  const pair = await audited(log, deps.authority.issue({ subject, audience, scopes, extraClaims: {}, accessTtlSeconds: 0, clientId: subject, confirmation }, principalOf(caller)));
  return json({
    access_token: pair.accessToken,
    token_type: tokenType(pair),
    expires_in: lifetimeSeconds(pair.accessToken),
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
  });
}

/** The DER of the verified client certificate of an mTLS request (httpCaller found identities in it). */
function peerCertificateDer(req: IncomingMessage): Buffer {
  const socket = req.socket;
  const der = socket instanceof TLSSocket && socket.authorized ? socket.getPeerCertificate().raw : undefined;
  if (!der || der.length === 0) throw new OAuthError('invalid_client', 401, 'no verified client certificate on this connection');
  return der;
}

const INACTIVE: HttpAnswer = { status: 200, body: JSON.stringify({ active: false }), headers: { ...NO_STORE } };

/**
 * RFC 7662. Access tokens go through the authority's own verifier (signature, issuer, expiry,
 * revocation; fail-closed when the feed is stale), refresh tokens through their session. Anything
 * not active is `{"active": false}` and nothing else. The hint only names a type; both are tried
 * by the token's shape, which tells them apart.
 */
async function introspectionEndpoint(deps: OAuthEndpointDeps, form: FormParams, caller: Caller): Promise<HttpAnswer> {
  clientIdOf(form, caller);
  deps.authority.authorizeIntrospection(principalOf(caller));
  const token = required(form, 'token');
  form.get('token_type_hint');
  if (looksLikeRefreshToken(token)) {
    const s = await deps.authority.introspectRefresh(token);
    if (!s) return INACTIVE;
    return json({
      active: true,
      token_type: 'refresh_token',
      ...(s.scopes.length > 0 ? { scope: s.scopes.join(' ') } : {}),
      client_id: s.clientId,
      sub: s.subject,
      aud: s.audience.length === 1 ? s.audience[0] : s.audience,
      iss: deps.settings.issuer,
      exp: Math.floor(s.expiresAt / 1000),
      iat: Math.floor(s.issuedAt / 1000),
      sid: s.sessionId,
      ...(s.confirmation ? { cnf: cnfClaim(s.confirmation) } : {}),
    });
  }
  const c = await deps.authority.introspectAccess(token);
  if (!c) return INACTIVE;
  return json({
    active: true,
    token_type: c.confirmation && 'jkt' in c.confirmation ? 'DPoP' : 'Bearer',
    ...(c.scopes.length > 0 ? { scope: c.scopes.join(' ') } : {}),
    ...(c.extra.client_id !== undefined ? { client_id: c.extra.client_id } : {}),
    sub: c.subject,
    aud: c.audience.length === 1 ? c.audience[0] : c.audience,
    iss: c.issuer,
    exp: c.expiresAt,
    iat: c.issuedAt,
    nbf: c.notBefore,
    jti: c.tokenId,
    sid: c.sessionId,
    // RFC 8705 §3.2, RFC 9449 §6.2: the resource server checks the binding.
    ...(c.confirmation ? { cnf: cnfClaim(c.confirmation) } : {}),
  });
}

/**
 * RFC 7009 through TokenAuthority.revoke, exactly like gRPC Revoke by token: holding the token
 * suffices; a refresh token ends its whole session. Unknown, malformed or already revoked tokens
 * are a 200 too (§2.2), so the answer tells nothing about a token.
 */
async function revocationEndpoint(deps: OAuthEndpointDeps, form: FormParams, caller: Caller, log: Record<string, unknown>): Promise<HttpAnswer> {
  clientIdOf(form, caller);
  const token = required(form, 'token');
  form.get('token_type_hint');
  limit(deps, 'Revoke', caller);
  try {
    await audited(log, deps.authority.revoke({ kind: 'token', token }, '', principalOf(caller)));
  } catch (err) {
    if (!(isTokenAuthorityError(err) && (err.code === ErrorCodes.NOT_FOUND || err.code === ErrorCodes.INVALID_ARGUMENT))) throw err;
    log.unknown = true;
  }
  return { status: 200, body: '', contentType: 'text/plain; charset=utf-8', headers: { ...NO_STORE } };
}
