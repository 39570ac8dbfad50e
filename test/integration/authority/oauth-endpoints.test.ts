import assert from 'node:assert/strict';
import { createHash, KeyObject, X509Certificate } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { REFRESH_TOKEN_PREFIX } from '../../../src/authority/session-records.js';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { forgeDpopProof, type DpopKey } from '../../helpers/dpop-forge.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import type { AuthorityClient } from '../../helpers/grpc-client.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/local-ports.js';
import { standardPki, type CertFiles } from '../../helpers/pki.js';
import { TEST_POLICY, tlsClient, writePolicy } from '../security/security-fixtures.js';

/**
 * The OAuth endpoints driven by panva's openid-client (v6), as a real OAuth client would: discovery,
 * the refresh and client_credentials grants over (mutual) TLS, introspection and revocation.
 */
describe('OAuth endpoints (openid-client over mutual TLS)', () => {
  let pki: ReturnType<typeof standardPki>;
  let gatewayCert: CertFiles;
  let ta: TestAuthority;
  let issuer: string;
  let grpcLogin: AuthorityClient;
  const clock = new ManualClock(Date.now());
  const agents: Agent[] = [];

  /** A fetch that trusts the test CA and presents `cert` (mutual TLS) when given. */
  function tlsFetch(cert?: CertFiles): client.CustomFetch {
    const agent = new Agent({ connect: { ca: pki.ca.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) } });
    agents.push(agent);
    return ((url: string, options: Parameters<client.CustomFetch>[1]) => undiciFetch(url, { ...(options as object), dispatcher: agent })) as unknown as client.CustomFetch;
  }

  /** An openid-client Configuration from the authority's discovery document. */
  function discover(clientId: string, cert?: CertFiles, algorithm: 'oidc' | 'oauth2' = 'oidc'): Promise<client.Configuration> {
    return client.discovery(new URL(issuer), clientId, undefined, cert ? client.TlsClientAuth() : client.None(), { [client.customFetch]: tlsFetch(cert), algorithm });
  }

  /** A raw POST to an endpoint (for what openid-client would never send). */
  async function post(path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }, cert?: CertFiles) {
    const res = await (tlsFetch(cert) as unknown as typeof undiciFetch)(`${issuer}${path}`, { method: 'POST', body, headers });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
  }

  async function rejects(p: Promise<unknown>, error: string, status: number): Promise<client.ResponseBodyError> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof client.ResponseBodyError, `expected an OAuth error response, got ${String(err)}`);
      assert.equal(err.error, error, err.error_description);
      assert.equal(err.status, status);
      return err;
    }
    assert.fail(`expected ${error}`);
  }

  let gateway: client.Configuration;
  let login: client.Configuration;
  let app: client.Configuration;

  before(async () => {
    // Real clients (openid-client's DPoP proofs) stamp the wall clock: start it now, not when mocha loaded this file.
    clock.set(Date.now());
    pki = standardPki();
    gatewayCert = pki.ca.issue('gateway', { san: ['URI:spiffe://corp/gateway'] });
    const policy = writePolicy(pki.pki.dir, { ...TEST_POLICY, clients: { ...TEST_POLICY.clients, 'spiffe://corp/gateway': { introspect: true } } });
    const port = await freePort();
    issuer = `https://127.0.0.1:${port}`;
    ta = await startTestAuthority(
      {
        TA_HTTP_ADDR: `127.0.0.1:${port}`, TA_ISSUER: issuer, TA_REFRESH_GRACE: '0',
        TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert, TA_CLIENT_POLICY: policy,
      },
      { clock },
    );
    grpcLogin = tlsClient(ta.running.grpcPort, pki.ca, pki.login);
    gateway = await discover('spiffe://corp/gateway', gatewayCert);
    login = await discover('spiffe://corp/login', pki.login);
    app = await discover('web-app');
  });
  after(async () => {
    grpcLogin?.close();
    await ta?.close();
    await Promise.all(agents.map((a) => a.close()));
    pki?.cleanup();
  });

  const userSession = () => grpcLogin.issue({ subject: 'alice', audience: ['orders'], scopes: ['read'] });

  describe('discovery', () => {
    it('lists the endpoints below the issuer, the grants and the auth methods (OpenID and RFC 8414 alike)', async () => {
      const oauth2 = (await discover('web-app', undefined, 'oauth2')).serverMetadata();
      for (const m of [app.serverMetadata(), oauth2]) {
        assert.equal(m.issuer, issuer);
        assert.equal(m.jwks_uri, `${issuer}/.well-known/jwks.json`);
        assert.equal(m.token_endpoint, `${issuer}/oauth2/token`);
        assert.equal(m.introspection_endpoint, `${issuer}/oauth2/introspect`);
        assert.equal(m.revocation_endpoint, `${issuer}/oauth2/revoke`);
        assert.deepEqual(m.grant_types_supported, ['refresh_token', 'client_credentials']);
        assert.deepEqual(m.token_endpoint_auth_methods_supported, ['none', 'tls_client_auth']);
        assert.deepEqual(m.introspection_endpoint_auth_methods_supported, ['tls_client_auth']);
        assert.deepEqual(m.revocation_endpoint_auth_methods_supported, ['none', 'tls_client_auth']);
        // Only what is true: no ID tokens; client_credentials tokens are bound to the certificate (RFC 8705 §3.3).
        assert.equal(m.id_token_signing_alg_values_supported, undefined);
        assert.equal(m.tls_client_certificate_bound_access_tokens, true);
        assert.deepEqual(m.dpop_signing_alg_values_supported, ['ES256', 'EdDSA', 'RS256']);
      }
    });
  });

  describe('token endpoint: refresh_token', () => {
    it('rotates: a new access token and a new refresh token, no-store', async () => {
      const issued = await userSession();
      const r = await client.refreshTokenGrant(app, issued.refreshToken);
      assert.equal(r.token_type, 'bearer');
      assert.ok(r.refresh_token && r.refresh_token !== issued.refreshToken);
      assert.equal(r.scope, 'read');
      assert.equal(r.expires_in, 900);
      const claims = decodeJwt(r.access_token);
      assert.equal(claims.sub, 'alice');
      assert.equal(claims.sid, issued.sessionId);
      assert.equal((await grpcLogin.verify({ token: r.access_token, audience: 'orders' })).valid, true);
      const raw = await post('/oauth2/token', new URLSearchParams({ grant_type: 'refresh_token', refresh_token: r.refresh_token }).toString());
      assert.equal(raw.status, 200);
      assert.equal(raw.headers.get('cache-control'), 'no-store');
      assert.equal(raw.headers.get('pragma'), 'no-cache');
    });

    it('reuse of a spent refresh token is invalid_grant and revokes the session', async () => {
      const issued = await userSession();
      const next = await client.refreshTokenGrant(app, issued.refreshToken);
      await rejects(client.refreshTokenGrant(app, issued.refreshToken), 'invalid_grant', 400);
      await rejects(client.refreshTokenGrant(app, next.refresh_token!), 'invalid_grant', 400);
      const v = await grpcLogin.verify({ token: next.access_token });
      assert.equal(v.valid, false, 'the access token of the revoked session no longer verifies');
    });

    it('refuses an unknown refresh token and a scope other than the session\'s', async () => {
      await rejects(client.refreshTokenGrant(app, 'not-a-refresh-token'), 'invalid_grant', 400);
      const issued = await userSession();
      await rejects(client.refreshTokenGrant(app, issued.refreshToken, { scope: 'read write' }), 'invalid_scope', 400);
      assert.equal((await client.refreshTokenGrant(app, issued.refreshToken, { scope: 'read' })).scope, 'read', 'the same scope is fine, and the refusal spent nothing');
    });
  });

  describe('token endpoint: client_credentials over mutual TLS', () => {
    it('issues for the certificate identity with the issue grant\'s audiences and scopes; no refresh token', async () => {
      const r = await client.clientCredentialsGrant(login);
      assert.equal(r.refresh_token, undefined);
      assert.equal(r.scope, 'read write');
      const c = decodeJwt(r.access_token);
      assert.equal(c.sub, 'spiffe://corp/login');
      assert.equal(c.client_id, 'spiffe://corp/login');
      assert.deepEqual(c.aud, ['orders', 'billing']);
      assert.equal(c.exp! - c.iat!, 900, 'the grant\'s maxAccessTtl (15m)');
      assert.equal(r.expires_in, 900);
    });

    it('narrows by scope and audience/resource', async () => {
      const r = await client.clientCredentialsGrant(login, { scope: 'read', audience: 'orders' });
      assert.equal(r.scope, 'read');
      const c = decodeJwt(r.access_token);
      assert.equal(c.aud, 'orders');
      assert.equal(c.scope, 'read');
      assert.equal(decodeJwt((await client.clientCredentialsGrant(login, { resource: 'billing' })).access_token).aud, 'billing');
    });

    it('refuses a scope or audience outside the grant', async () => {
      await rejects(client.clientCredentialsGrant(login, { scope: 'read admin' }), 'invalid_scope', 400);
      await rejects(client.clientCredentialsGrant(login, { resource: 'admin' }), 'invalid_target', 400);
    });

    it('refuses a client without an issue grant (unauthorized_client) and one without a certificate (invalid_client, 401)', async () => {
      const ops = await discover('ops-cli.corp.internal', pki.opsCli);
      await rejects(client.clientCredentialsGrant(ops), 'unauthorized_client', 400);
      await rejects(client.clientCredentialsGrant(app), 'invalid_client', 401);
    });

    it('takes no identity from a certificate another CA signed, whatever it claims', async () => {
      const rogue = await discover('spiffe://corp/login', pki.rogue);
      await rejects(client.clientCredentialsGrant(rogue), 'invalid_client', 401);
    });

    it('refuses a client_id that is not the certificate\'s identity', async () => {
      const liar = await discover('spiffe://corp/payments', pki.login);
      await rejects(client.clientCredentialsGrant(liar), 'invalid_client', 401);
    });
  });

  describe('sender-constrained tokens at the token endpoint (RFC 8705 §3, RFC 9449 §5), driven by openid-client', () => {
    const RESOURCE = 'https://api.test/orders';
    const thumbprintOf = (c: CertFiles) => createHash('sha256').update(new X509Certificate(c.certPem).raw).digest('base64url');
    /** openid-client's own DPoP key pair, and the same key as the test's proof forge needs it. */
    async function dpopKeyPair(): Promise<{ handle: client.DPoPHandle; key: DpopKey }> {
      const pair = await client.randomDPoPKeyPair('ES256', { extractable: true });
      const { kty, crv, x, y } = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as Record<string, string>;
      const publicJwk = { kty: kty!, crv: crv!, x: x!, y: y! };
      const key: DpopKey = { alg: 'ES256', privateKey: KeyObject.from(pair.privateKey), publicKey: KeyObject.from(pair.publicKey), publicJwk, privateJwk: {}, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
      return { handle: client.getDPoPHandle(login, pair), key };
    }
    const verifyWithProof = (token: string, key: DpopKey) => grpcLogin.verify({ token, dpopProof: forgeDpopProof({ key, method: 'GET', uri: RESOURCE, accessToken: token }), httpMethod: 'GET', httpUri: RESOURCE });

    it('client_credentials over mutual TLS binds the token to the client certificate (cnf x5t#S256)', async () => {
      const r = await client.clientCredentialsGrant(login);
      assert.equal(r.token_type, 'bearer');
      assert.deepEqual(decodeJwt(r.access_token).cnf, { 'x5t#S256': thumbprintOf(pki.login) });
      assert.equal((await grpcLogin.verify({ token: r.access_token, clientCertificate: pki.login.certPem })).valid, true);
      const stolen = await grpcLogin.verify({ token: r.access_token });
      assert.equal(stolen.reason, VerifyFailureReason.VERIFY_FAILURE_REASON_BINDING_MISMATCH, 'without the certificate a stolen token is worthless');
      assert.equal((await grpcLogin.verify({ token: r.access_token, clientCertificate: pki.opsCli.certPem })).reason, VerifyFailureReason.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
    });

    it('client_credentials with openid-client\'s DPoP binds to its key instead (token_type DPoP, cnf jkt)', async () => {
      const { handle, key } = await dpopKeyPair();
      const r = await client.clientCredentialsGrant(login, { scope: 'read' }, { DPoP: handle });
      assert.equal(r.token_type, 'dpop');
      assert.deepEqual(decodeJwt(r.access_token).cnf, { jkt: key.jkt });
      assert.equal((await verifyWithProof(r.access_token, key)).valid, true);
      assert.equal((await grpcLogin.verify({ token: r.access_token, clientCertificate: pki.login.certPem })).reason, VerifyFailureReason.VERIFY_FAILURE_REASON_BINDING_MISMATCH, 'the certificate does not stand in for the key');
    });

    it('refresh_token of a DPoP-bound session: openid-client\'s proof refreshes, a request without one is invalid_dpop_proof', async () => {
      const { handle, key } = await dpopKeyPair();
      const issued = await grpcLogin.issue({ subject: 'alice', audience: ['orders'], scopes: ['read'], confirmation: { binding: { $case: 'jkt', jkt: key.jkt } } });
      await rejects(client.refreshTokenGrant(app, issued.refreshToken), 'invalid_dpop_proof', 400);
      const other = await dpopKeyPair();
      await rejects(client.refreshTokenGrant(app, issued.refreshToken, undefined, { DPoP: other.handle }), 'invalid_dpop_proof', 400);
      const r = await client.refreshTokenGrant(app, issued.refreshToken, undefined, { DPoP: handle });
      assert.equal(r.token_type, 'dpop');
      assert.deepEqual(decodeJwt(r.access_token).cnf, { jkt: key.jkt });
      assert.equal((await verifyWithProof(r.access_token, key)).valid, true);
      // The rotated refresh token is still the key's: again with openid-client's proof.
      assert.equal((await client.refreshTokenGrant(app, r.refresh_token!, undefined, { DPoP: handle })).token_type, 'dpop');
    });

    it('refuses two DPoP headers, and a proof for another URL', async () => {
      const { key } = await dpopKeyPair();
      const issued = await grpcLogin.issue({ subject: 'alice', audience: ['orders'], confirmation: { binding: { $case: 'jkt', jkt: key.jkt } } });
      const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: issued.refreshToken }).toString();
      const proof = () => forgeDpopProof({ key, method: 'POST', uri: `${issuer}/oauth2/token` });
      const res = await (tlsFetch() as unknown as typeof undiciFetch)(`${issuer}/oauth2/token`, {
        method: 'POST', body, headers: [['content-type', 'application/x-www-form-urlencoded'], ['dpop', proof()], ['dpop', proof()]],
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'invalid_dpop_proof');
      const elsewhere = await post('/oauth2/token', body, { 'content-type': 'application/x-www-form-urlencoded', dpop: forgeDpopProof({ key, method: 'POST', uri: 'https://other.test/oauth2/token' }) });
      assert.equal(elsewhere.status, 400);
      assert.equal(elsewhere.json().error, 'invalid_dpop_proof');
      assert.match(String(elsewhere.json().error_description), /htu/);
      const ok = await post('/oauth2/token', body, { 'content-type': 'application/x-www-form-urlencoded', dpop: proof() });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json().token_type, 'DPoP');
    });

    it('introspection reports a bound access token active with its cnf (the resource server checks it, RFC 8705 §3.2, RFC 9449 §6.2)', async () => {
      const { key } = await dpopKeyPair();
      const byKey = await grpcLogin.issue({ subject: 'alice', audience: ['orders'], confirmation: { binding: { $case: 'jkt', jkt: key.jkt } } });
      const a = await client.tokenIntrospection(gateway, byKey.accessToken);
      assert.equal(a.active, true);
      assert.equal(a.token_type, 'DPoP');
      assert.deepEqual(a.cnf, { jkt: key.jkt });
      const r = await client.tokenIntrospection(gateway, byKey.refreshToken);
      assert.deepEqual(r.cnf, { jkt: key.jkt });
      const byCert = await client.clientCredentialsGrant(login);
      const c = await client.tokenIntrospection(gateway, byCert.access_token);
      assert.equal(c.active, true);
      assert.deepEqual(c.cnf, { 'x5t#S256': thumbprintOf(pki.login) });
      await grpcLogin.revoke({ target: { $case: 'token', token: byKey.accessToken } });
      assert.deepEqual({ ...(await client.tokenIntrospection(gateway, byKey.accessToken)) }, { active: false }, 'a revoked bound token is inactive');
    });
  });

  describe('introspection', () => {
    it('describes an active access token', async () => {
      const issued = await userSession();
      const r = await client.tokenIntrospection(gateway, issued.accessToken);
      const c = decodeJwt(issued.accessToken);
      assert.deepEqual(
        { ...r },
        { active: true, token_type: 'Bearer', scope: 'read', client_id: 'spiffe://corp/login', sub: 'alice', aud: 'orders', iss: issuer, exp: c.exp, iat: c.iat, nbf: c.nbf, jti: c.jti, sid: issued.sessionId },
      );
      assert.equal((await client.tokenIntrospection(gateway, issued.accessToken, { token_type_hint: 'refresh_token' })).active, true, 'a wrong hint does not matter');
    });

    it('describes an active refresh token, with or without the hint', async () => {
      const issued = await userSession();
      for (const params of [undefined, { token_type_hint: 'refresh_token' }, { token_type_hint: 'access_token' }]) {
        const r = await client.tokenIntrospection(gateway, issued.refreshToken, params);
        assert.equal(r.active, true);
        assert.equal(r.token_type, 'refresh_token');
        assert.equal(r.sub, 'alice');
        assert.equal(r.sid, issued.sessionId);
        assert.equal(r.client_id, 'spiffe://corp/login');
        assert.equal(r.scope, 'read');
        assert.equal(r.exp, Math.floor(issued.refreshExpiresAt!.getTime() / 1000));
      }
    });

    it('answers {"active": false} for a refresh token already spent by rotation; its successor is active', async () => {
      const issued = await userSession();
      const next = await client.refreshTokenGrant(app, issued.refreshToken);
      const raw = await post('/oauth2/introspect', new URLSearchParams({ token: issued.refreshToken }).toString(), undefined, gatewayCert);
      assert.equal(raw.text, '{"active":false}');
      assert.equal((await client.tokenIntrospection(gateway, next.refresh_token!)).active, true);
    });

    it('answers exactly {"active": false} for revoked, garbage and unknown tokens', async () => {
      const issued = await userSession();
      await grpcLogin.revoke({ target: { $case: 'sessionId', sessionId: issued.sessionId } });
      for (const token of [issued.accessToken, issued.refreshToken, 'garbage', 'eyJhbGciOiJub25lIn0.e30.', `${REFRESH_TOKEN_PREFIX}${'A'.repeat(43)}`]) {
        const raw = await post('/oauth2/introspect', new URLSearchParams({ token }).toString(), undefined, gatewayCert);
        assert.equal(raw.status, 200);
        assert.equal(raw.text, '{"active":false}', `for ${token.slice(0, 12)}…`);
        assert.equal(raw.headers.get('cache-control'), 'no-store');
        assert.equal((await client.tokenIntrospection(gateway, token)).active, false);
      }
    });

    it('reports a refresh token inactive once its subject is revoked everywhere', async () => {
      const issued = await userSession();
      const ops = tlsClient(ta.running.grpcPort, pki.ca, pki.opsCli);
      try {
        await ops.revoke({ target: { $case: 'subject', subject: 'alice' } });
      } finally {
        ops.close();
      }
      assert.equal((await client.tokenIntrospection(gateway, issued.refreshToken)).active, false);
      assert.equal((await client.tokenIntrospection(gateway, issued.accessToken)).active, false);
    });

    it('refuses callers that are not authenticated or hold no introspect right', async () => {
      const issued = await userSession();
      await rejects(client.tokenIntrospection(app, issued.accessToken), 'invalid_client', 401);
      await rejects(client.tokenIntrospection(login, issued.accessToken), 'unauthorized_client', 400);
      await rejects(client.tokenIntrospection(await discover('spiffe://corp/stranger', pki.stranger), issued.accessToken), 'unauthorized_client', 400);
      const rogueGateway = pki.rogue; // signed by another CA: its claims count for nothing
      await rejects(client.tokenIntrospection(await discover('spiffe://corp/login', rogueGateway), issued.accessToken), 'invalid_client', 401);
    });

    it('reports an expired access token inactive', async () => {
      const old = await userSession();
      assert.equal((await client.tokenIntrospection(gateway, old.accessToken)).active, true);
      clock.advance(900_000 + 31_000);
      let fresh = '';
      await eventually(async () => {
        fresh = (await userSession()).accessToken;
        return (await client.tokenIntrospection(gateway, fresh)).active === true;
      }, 10_000, 'a fresh token is active again once a heartbeat at the new time arrived');
      assert.deepEqual({ ...(await client.tokenIntrospection(gateway, old.accessToken)) }, { active: false });
    });
  });

  describe('revocation', () => {
    it('answers 200 for unknown and malformed tokens', async () => {
      await client.tokenRevocation(app, 'garbage');
      await client.tokenRevocation(app, `${REFRESH_TOKEN_PREFIX}${'A'.repeat(43)}`);
      await client.tokenRevocation(app, 'eyJhbGciOiJub25lIn0.e30.');
    });

    it('revoking a refresh token ends its session; revoking again is still 200', async () => {
      const issued = await userSession();
      await client.tokenRevocation(app, issued.refreshToken, { token_type_hint: 'refresh_token' });
      assert.equal((await client.tokenIntrospection(gateway, issued.refreshToken)).active, false);
      assert.equal((await client.tokenIntrospection(gateway, issued.accessToken)).active, false, 'the session\'s access token too');
      await rejects(client.refreshTokenGrant(app, issued.refreshToken), 'invalid_grant', 400);
      await client.tokenRevocation(app, issued.refreshToken);
    });

    it('revoking an access token revokes it alone', async () => {
      const issued = await userSession();
      await client.tokenRevocation(login, issued.accessToken);
      assert.equal((await client.tokenIntrospection(gateway, issued.accessToken)).active, false);
      assert.equal((await client.tokenIntrospection(gateway, issued.refreshToken)).active, true);
    });
  });

  describe('request handling', () => {
    const form = 'application/x-www-form-urlencoded';
    it('POST only, form bodies only, bounded, each parameter once', async () => {
      const get = await (tlsFetch() as unknown as typeof undiciFetch)(`${issuer}/oauth2/token`);
      assert.equal(get.status, 405);
      assert.equal(get.headers.get('allow'), 'POST');
      const json = await post('/oauth2/token', '{"grant_type":"refresh_token"}', { 'content-type': 'application/json' });
      assert.equal(json.status, 415);
      assert.equal(json.json().error, 'invalid_request');
      const big = await post('/oauth2/token', `grant_type=refresh_token&refresh_token=${'a'.repeat(17 * 1024)}`, { 'content-type': form });
      assert.equal(big.status, 413);
      const twice = await post('/oauth2/token', 'grant_type=refresh_token&grant_type=client_credentials', { 'content-type': form });
      assert.equal(twice.status, 400);
      assert.match(String(twice.json().error_description), /grant_type is given more than once/);
      const unknown = await post('/oauth2/token', 'grant_type=password&username=a&password=b', { 'content-type': `${form}; charset=UTF-8` });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.json().error, 'unsupported_grant_type');
      const missing = await post('/oauth2/introspect', '', { 'content-type': form }, gatewayCert);
      assert.equal(missing.status, 400);
      assert.equal(missing.json().error, 'invalid_request');
    });

    it('answers a client that tried the Authorization header with a challenge of its scheme', async () => {
      const r = await post('/oauth2/introspect', 'token=x', { 'content-type': form, authorization: 'Basic d2ViOnNlY3JldA==' });
      assert.equal(r.status, 401);
      assert.equal(r.json().error, 'invalid_client');
      assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm="token-authority", error="invalid_client"$/);
    });
  });
});

describe('OAuth endpoints in development mode (no client policy, plain HTTP)', () => {
  let ta: TestAuthority;
  before(async () => {
    ta = await startTestAuthority({ TA_RATE_LIMIT_REVOKE: '1/h:2' });
  });
  after(() => ta?.close());

  it('counts revocations against the same per-caller Revoke budget as gRPC (429 when spent)', async () => {
    const tokens = await Promise.all([1, 2, 3].map(() => ta.client.issue({ subject: 'carol', audience: ['orders'] })));
    await ta.client.revoke({ target: { $case: 'token', token: tokens[0]!.accessToken } });
    const revoke = (token: string) => fetch(`${ta.httpBase}/oauth2/revoke`, { method: 'POST', body: new URLSearchParams({ token }) });
    assert.equal((await revoke(tokens[1]!.accessToken)).status, 200);
    const limited = await revoke(tokens[2]!.accessToken);
    assert.equal(limited.status, 429);
    const body = (await limited.json()) as { error: string; error_description: string };
    assert.equal(body.error, 'temporarily_unavailable');
    assert.match(body.error_description, /Revoke rate limit exceeded/);
  });

  it('lets a loopback caller introspect, as privileged gRPC calls are allowed from loopback, and says so', async () => {
    const disco = (await (await fetch(`${ta.httpBase}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.deepEqual(disco.introspection_endpoint_auth_methods_supported, ['none']);
    assert.deepEqual(disco.grant_types_supported, ['refresh_token'], 'no client_credentials without mutual TLS');
    const issued = await ta.client.issue({ subject: 'bob', audience: ['orders'] });
    const res = await fetch(`${ta.httpBase}/oauth2/introspect`, { method: 'POST', body: new URLSearchParams({ token: issued.accessToken }) });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { active: boolean; sub: string }).sub, 'bob');
  });
});
