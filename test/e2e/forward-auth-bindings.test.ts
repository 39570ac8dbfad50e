import assert from 'node:assert/strict';
import { createHash, KeyObject, X509Certificate } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadConfig } from '../../src/config/config.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar/sidecar-server.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { forgeDpopProof, type DpopKey } from '../helpers/dpop-forge.js';
import { startCaddy, startEchoUpstream, startNginx, type Gateway, type Upstream } from '../helpers/gateways.js';
import { standardPki, type CertFiles } from '../helpers/pki.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

/**
 * Bound tokens through a real nginx in front of the sidecar's forward-auth: nginx terminates mutual
 * TLS and hands the client certificate to /authz as `X-Client-Cert: $ssl_client_escaped_cert`
 * (overwriting any the client sent), with `X-Forwarded-Proto/-Host/-Uri` for DPoP, the documented
 * snippet (docs/sidecar-and-gateways.md). The DPoP requests are made by openid-client's
 * fetchProtectedResource, a real OAuth client.
 */
describe('forward-auth with sender-constrained tokens behind real nginx (mutual TLS, DPoP)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let sidecar: RunningSidecar;
  let upstream: Upstream;
  let nginx: Gateway;
  let caddy: Gateway;
  let pki: ReturnType<typeof standardPki>;
  let alice: CertFiles;
  let mallory: CertFiles;
  const agents: Agent[] = [];

  const x5t = (c: CertFiles) => createHash('sha256').update(new X509Certificate(c.certPem).raw).digest('base64url');
  /** A fetch over TLS to nginx trusting the test CA, presenting `cert` when given. */
  function tlsFetch(cert?: CertFiles): typeof undiciFetch {
    const agent = new Agent({ connect: { ca: pki.ca.certPem, ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) } });
    agents.push(agent);
    return ((url: string, options?: object) => undiciFetch(url, { ...options, dispatcher: agent })) as typeof undiciFetch;
  }
  const issue = (confirmation: { x5tS256: string } | { jkt: string }) =>
    ta.client
      .issue({ subject: 'frieda', audience: ['orders'], scopes: ['read'], confirmation: { binding: 'x5tS256' in confirmation ? { $case: 'x5tS256', x5tS256: confirmation.x5tS256 } : { $case: 'jkt', jkt: confirmation.jkt } } })
      .then((r) => r.accessToken);

  before(async () => {
    pki = standardPki();
    alice = pki.ca.issue('alice', { san: ['URI:spiffe://corp/alice'] });
    mallory = pki.ca.issue('mallory', { san: ['URI:spiffe://corp/alice'] });
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_HEARTBEAT_INTERVAL: '100ms' });
    sidecar = await startSidecar(
      loadConfig('sidecar', {
        env: {
          TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_ISSUER: TEST_ISSUER, TA_AUTHORITY_URL: ta.httpBase, TA_REDIS_URL: redis.url,
          TA_AUDIENCE: 'orders', TA_TRUST_FORWARDED_CLIENT_CERT: 'true',
        },
      }),
      silentLogger,
      { metrics: createMetrics({ defaultMetrics: false }) },
    );
    upstream = await startEchoUpstream();
    nginx = await startNginx({
      sidecarHttpPort: sidecar.httpPort,
      upstreamPort: upstream.port,
      query: 'audience=orders&required_scopes=read',
      claimHeaders: ['x-auth-subject'],
      tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca.cert },
      authzHeaders: { 'X-Client-Cert': '$ssl_client_escaped_cert', 'X-Forwarded-Proto': '$scheme', 'X-Forwarded-Host': '$http_host', 'X-Forwarded-Uri': '$request_uri' },
    });
    // Caddy's forward_auth as it comes: it sends the DPoP header and X-Forwarded-* by itself.
    caddy = await startCaddy({ sidecarHttpPort: sidecar.httpPort, upstreamPort: upstream.port, query: 'audience=orders&required_scopes=read', claimHeaders: ['x-auth-subject'] });
  });
  after(async () => {
    await caddy?.stop();
    await nginx?.stop();
    await upstream?.stop();
    await sidecar?.stop();
    await ta?.close();
    await redis?.stop();
    await Promise.all(agents.map((a) => a.close()));
    pki?.cleanup();
  });

  describe('a certificate-bound token', () => {
    it('passes with the certificate it is bound to, presented to nginx over mutual TLS', async () => {
      const token = await issue({ x5tS256: x5t(alice) });
      const before = upstream.seen.length;
      const res = await tlsFetch(alice)(`${nginx.url}/orders/42`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(((await res.json()) as Record<string, string>)['x-auth-subject'], 'frieda');
      assert.equal(upstream.seen.length, before + 1);
    });

    it('is refused from another certificate with the same identity, and from a client without one', async () => {
      const token = await issue({ x5tS256: x5t(alice) });
      const before = upstream.seen.length;
      const other = await tlsFetch(mallory)(`${nginx.url}/orders/42`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(other.status, 401);
      assert.equal(other.headers.get('www-authenticate'), 'Bearer error="invalid_token", error_description="BINDING_MISMATCH"');
      const none = await tlsFetch()(`${nginx.url}/orders/42`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(none.status, 401);
      assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
    });

    it('a client cannot claim the certificate by sending X-Client-Cert itself: nginx overwrites it', async () => {
      const token = await issue({ x5tS256: x5t(alice) });
      const forged = { authorization: `Bearer ${token}`, 'x-client-cert': encodeURIComponent(alice.certPem.toString('utf8')) };
      assert.equal((await tlsFetch()(`${nginx.url}/orders/42`, { headers: forged })).status, 401, 'no certificate on the connection');
      assert.equal((await tlsFetch(mallory)(`${nginx.url}/orders/42`, { headers: forged })).status, 401, 'another certificate on the connection');
    });
  });

  describe('a DPoP-bound token', () => {
    let key: DpopKey;
    let config: client.Configuration;
    let handle: client.DPoPHandle;
    before(async () => {
      const pair = await client.randomDPoPKeyPair('ES256', { extractable: true });
      const { kty, crv, x, y } = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as Record<string, string>;
      const publicJwk = { kty: kty!, crv: crv!, x: x!, y: y! };
      key = { alg: 'ES256', privateKey: KeyObject.from(pair.privateKey), publicKey: KeyObject.from(pair.publicKey), publicJwk, privateJwk: {}, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') };
      config = new client.Configuration({ issuer: TEST_ISSUER }, 'shop-frontend');
      config[client.customFetch] = tlsFetch() as unknown as client.CustomFetch;
      handle = client.getDPoPHandle(config, pair);
    });

    it('passes with openid-client\'s DPoP proof for the request (fetchProtectedResource)', async () => {
      const token = await issue({ jkt: key.jkt });
      for (const [method, path] of [['GET', '/orders/42?page=2'], ['POST', '/orders']] as const) {
        const res = await client.fetchProtectedResource(config, token, new URL(`${nginx.url}${path}`), method, method === 'POST' ? '{}' : undefined, new Headers({ 'content-type': 'application/json' }), { DPoP: handle });
        assert.equal(res.status, 200, `${method} ${path}: ${await res.clone().text()}`);
        assert.equal(((await res.json()) as Record<string, string>)['x-auth-subject'], 'frieda');
      }
    });

    it('passes through Caddy\'s forward_auth unconfigured (it forwards DPoP and X-Forwarded-* by itself); a replay is refused', async () => {
      const token = await issue({ jkt: key.jkt });
      const url = `${caddy.url}/orders/7?x=1`;
      const proof = forgeDpopProof({ key, method: 'PATCH', uri: url, accessToken: token });
      const first = await fetch(url, { method: 'PATCH', headers: { authorization: `DPoP ${token}`, dpop: proof } });
      assert.equal(first.status, 200, await first.clone().text());
      assert.equal(((await first.json()) as Record<string, string>)['x-auth-subject'], 'frieda');
      const replay = await fetch(url, { method: 'PATCH', headers: { authorization: `DPoP ${token}`, dpop: proof } });
      assert.equal(replay.status, 401);
      assert.match(replay.headers.get('www-authenticate') ?? '', /^DPoP error="invalid_dpop_proof"/);
    });

    it('is refused with a replayed proof (DPoP challenge), a proof for another path, as Bearer, and without a proof', async () => {
      const token = await issue({ jkt: key.jkt });
      const url = `${nginx.url}/orders/42`;
      const proof = forgeDpopProof({ key, method: 'GET', uri: url, accessToken: token });
      const send = (headers: Record<string, string>) => tlsFetch()(url, { headers });
      assert.equal((await send({ authorization: `DPoP ${token}`, dpop: proof })).status, 200);
      const replay = await send({ authorization: `DPoP ${token}`, dpop: proof });
      assert.equal(replay.status, 401);
      assert.equal(replay.headers.get('www-authenticate'), 'DPoP error="invalid_dpop_proof", error_description="INVALID_DPOP_PROOF", algs="ES256 EdDSA RS256"');
      const elsewhere = await send({ authorization: `DPoP ${token}`, dpop: forgeDpopProof({ key, method: 'GET', uri: `${nginx.url}/admin`, accessToken: token }) });
      assert.match(elsewhere.headers.get('www-authenticate') ?? '', /invalid_dpop_proof/);
      const asBearer = await send({ authorization: `Bearer ${token}`, dpop: forgeDpopProof({ key, method: 'GET', uri: url, accessToken: token }) });
      assert.equal(asBearer.status, 401);
      assert.match(asBearer.headers.get('www-authenticate') ?? '', /BINDING_MISMATCH/);
      assert.equal((await send({ authorization: `DPoP ${token}` })).status, 401);
    });
  });
});
