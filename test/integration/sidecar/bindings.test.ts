import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { loadConfig } from '../../../src/config/config.js';
import { AuthorizationClient, CheckRequest, type CheckResponse } from '../../../src/gen/envoy/service/auth/v3/external_auth.js';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { startSidecar, type RunningSidecar } from '../../../src/sidecar/sidecar-server.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { createMetrics } from '../../../src/telemetry/metrics.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { forgeDpopProof, generateDpopKey, type DpopKey } from '../../helpers/dpop-forge.js';
import { authorityClient, type AuthorityClient } from '../../helpers/grpc-client.js';
import { createPki, type CertFiles, type Pki } from '../../helpers/pki.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const R = VerifyFailureReason;
const der = (c: CertFiles) => Buffer.from(new X509Certificate(c.certPem).raw);
/** RFC 8705 §3.1 and Envoy's XFCC Hash, computed here independently of the code under test. */
const x5t = (c: CertFiles) => createHash('sha256').update(der(c)).digest('base64url');
const hexHash = (c: CertFiles) => createHash('sha256').update(der(c)).digest('hex');
/** What Envoy puts in `source.certificate` and nginx in `$ssl_client_escaped_cert`. */
const urlPem = (c: CertFiles) => encodeURIComponent(c.certPem.toString('utf8'));

/**
 * Sender-constrained tokens at the sidecar, on each of its paths: the Verify RPC, Envoy's
 * ext_authz Check (certificate from `source.certificate` or, trusted, `x-forwarded-client-cert`;
 * DPoP from the `dpop` header and the request's method, scheme, host and path) and forward-auth
 * (`X-Client-Cert`, `DPoP` and `X-Forwarded-*`). Two real sidecars: one trusting forwarded
 * certificate headers, one (the default) not.
 */
describe('sender-constrained tokens at the sidecar: Verify, ext_authz Check, forward-auth', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let trusting: RunningSidecar;
  let plain: RunningSidecar;
  let pki: Pki;
  let alice: CertFiles;
  let mallory: CertFiles;
  let key: DpopKey;
  let otherKey: DpopKey;
  const clients: Array<{ close(): void }> = [];

  const sidecar = (trust: boolean, env: Record<string, string> = {}) =>
    startSidecar(
      loadConfig('sidecar', {
        env: {
          TA_GRPC_ADDR: '127.0.0.1:0', TA_HTTP_ADDR: '127.0.0.1:0', TA_ISSUER: TEST_ISSUER, TA_AUTHORITY_URL: ta.httpBase, TA_REDIS_URL: redis.url,
          TA_AUDIENCE: 'orders', TA_LOG_LEVEL: 'silent', ...(trust ? { TA_TRUST_FORWARDED_CLIENT_CERT: 'true' } : {}), ...env,
        },
      }),
      silentLogger,
      { metrics: createMetrics({ defaultMetrics: false }) },
    );

  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
    [trusting, plain] = await Promise.all([sidecar(true), sidecar(false)]);
    pki = createPki();
    const ca = pki.createCa('sidecar-bind-ca');
    alice = ca.issue('alice', { san: ['URI:spiffe://corp/alice'] });
    mallory = ca.issue('mallory', { san: ['URI:spiffe://corp/alice'] });
    [key, otherKey] = await Promise.all([generateDpopKey('ES256'), generateDpopKey('RS256')]);
  });
  after(async () => {
    for (const c of clients) c.close();
    await trusting?.stop();
    await plain?.stop();
    await ta?.close();
    await redis?.stop();
    pki?.cleanup();
  });

  const issue = (confirmation?: { x5tS256: string } | { jkt: string }) =>
    ta.client
      .issue({ subject: 'alice', audience: ['orders'], scopes: ['read'], ...(confirmation ? { confirmation: { binding: 'x5tS256' in confirmation ? { $case: 'x5tS256', x5tS256: confirmation.x5tS256 } : { $case: 'jkt', jkt: confirmation.jkt } } } : {}) })
      .then((r) => r.accessToken);

  describe('Verify RPC', () => {
    let client: AuthorityClient;
    before(() => {
      client = authorityClient(plain.grpcPort);
      clients.push(client);
    });
    const URI = 'https://api.test/orders';

    it('answers every binding reason as the authority does, and reports the confirmation', async () => {
      const byCert = await issue({ x5tS256: x5t(alice) });
      assert.equal((await client.verify({ token: byCert })).reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
      assert.equal((await client.verify({ token: byCert, clientCertificate: der(mallory) })).reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
      const ok = await client.verify({ token: byCert, clientCertificate: alice.certPem });
      assert.equal(ok.valid, true, ok.detail);
      assert.deepEqual(ok.claims?.confirmation, { binding: { $case: 'x5tS256', x5tS256: x5t(alice) } });

      const byKey = await issue({ jkt: key.jkt });
      const proof = forgeDpopProof({ key, method: 'GET', uri: URI, accessToken: byKey });
      const good = await client.verify({ token: byKey, dpopProof: proof, httpMethod: 'GET', httpUri: URI });
      assert.equal(good.valid, true, good.detail);
      assert.deepEqual(good.claims?.confirmation, { binding: { $case: 'jkt', jkt: key.jkt } });
      const replay = await client.verify({ token: byKey, dpopProof: proof, httpMethod: 'GET', httpUri: URI });
      assert.equal(replay.reason, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF, replay.detail);
      assert.match(replay.detail, /replay/);
      const other = await client.verify({ token: byKey, dpopProof: forgeDpopProof({ key: otherKey, method: 'GET', uri: URI, accessToken: byKey }), httpMethod: 'GET', httpUri: URI });
      assert.equal(other.reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
      const wrongMethod = await client.verify({ token: byKey, dpopProof: forgeDpopProof({ key, method: 'GET', uri: URI, accessToken: byKey }), httpMethod: 'DELETE', httpUri: URI });
      assert.equal(wrongMethod.reason, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF);
      assert.equal((await client.verify({ token: byKey })).reason, R.VERIFY_FAILURE_REASON_BINDING_MISMATCH);
    });

    it('a proof is single-use per verifier: one accepted by the authority is still new to the sidecar, then spent there', async () => {
      const byKey = await issue({ jkt: key.jkt });
      const proof = forgeDpopProof({ key, method: 'GET', uri: URI, accessToken: byKey });
      const req = { token: byKey, dpopProof: proof, httpMethod: 'GET', httpUri: URI };
      assert.equal((await ta.client.verify(req)).valid, true);
      assert.equal((await client.verify(req)).valid, true);
      assert.equal((await client.verify(req)).reason, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF);
    });
  });

  describe('TA_DPOP_REPLAY_SCOPE: one proof, once across the sidecars of a service', () => {
    let a: RunningSidecar;
    let b: RunningSidecar;
    let other: RunningSidecar;
    before(async () => {
      [a, b, other] = await Promise.all([sidecar(false, { TA_DPOP_REPLAY_SCOPE: 'orders-svc' }), sidecar(false, { TA_DPOP_REPLAY_SCOPE: 'orders-svc' }), sidecar(false, { TA_DPOP_REPLAY_SCOPE: 'billing-svc' })]);
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop(), other?.stop()]);
    });

    it('a proof accepted by one replica is a replay at the other, over Verify and forward-auth; another scope is apart', async () => {
      const URI = 'https://api.test/orders';
      const t = await issue({ jkt: key.jkt });
      const [ca, cb, co] = [a, b, other].map((sc) => authorityClient(sc.grpcPort));
      clients.push(ca!, cb!, co!);
      const proof = forgeDpopProof({ key, method: 'GET', uri: URI, accessToken: t });
      const req = { token: t, dpopProof: proof, httpMethod: 'GET', httpUri: URI };
      assert.equal((await ca!.verify(req)).valid, true);
      const replay = await cb!.verify(req);
      assert.equal(replay.reason, R.VERIFY_FAILURE_REASON_INVALID_DPOP_PROOF, replay.detail);
      assert.match(replay.detail, /replay/);
      assert.equal((await co!.verify(req)).valid, true, 'another service keeps its own proofs');
      assert.equal((await plain.verifier.verifyNow(t, { dpop: { proof, method: 'GET', uri: URI } })).valid, true, 'a sidecar without the setting remembers only its own');

      const fwd = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.test', 'x-forwarded-uri': '/orders' };
      const second = forgeDpopProof({ key, method: 'GET', uri: URI, accessToken: t });
      const at = (sc: RunningSidecar) => fetch(`http://127.0.0.1:${sc.httpPort}/authz?audience=orders`, { headers: { authorization: `DPoP ${t}`, dpop: second, ...fwd } });
      assert.equal((await at(b)).status, 200);
      const again = await at(a);
      assert.equal(again.status, 401);
      assert.equal(((await again.json()) as { reason: string }).reason, 'INVALID_DPOP_PROOF');
    });
  });

  describe('ext_authz Check', () => {
    let trustingAuthz: AuthorizationClient;
    let plainAuthz: AuthorizationClient;
    before(() => {
      trustingAuthz = new AuthorizationClient(`127.0.0.1:${trusting.grpcPort}`, credentials.createInsecure());
      plainAuthz = new AuthorizationClient(`127.0.0.1:${plain.grpcPort}`, credentials.createInsecure());
      clients.push(trustingAuthz, plainAuthz);
    });
    const check = (authz: AuthorizationClient, o: { authorization: string; headers?: Record<string, string>; sourceCertificate?: string; method?: string; path?: string }) =>
      new Promise<CheckResponse>((resolve, reject) =>
        authz.check(
          CheckRequest.fromPartial({
            attributes: {
              source: o.sourceCertificate !== undefined ? { certificate: o.sourceCertificate, principal: 'spiffe://corp/alice' } : undefined,
              request: { http: { method: o.method ?? 'GET', scheme: 'https', host: 'api.test', path: o.path ?? '/orders/42?page=2', headers: { authorization: o.authorization, ...o.headers } } },
            },
          }),
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
    const allowed = (r: CheckResponse) => r.httpResponse?.$case === 'okResponse';
    const challenge = (r: CheckResponse) =>
      r.httpResponse?.$case === 'deniedResponse' ? r.httpResponse.deniedResponse.headers.find((h) => h.header?.key === 'www-authenticate')?.header?.value : undefined;
    const reasonOf = (r: CheckResponse) => (r.httpResponse?.$case === 'deniedResponse' ? (JSON.parse(r.httpResponse.deniedResponse.body) as { reason: string }).reason : 'allowed');

    it('certificate-bound: the peer certificate Envoy reports in source.certificate', async () => {
      const t = await issue({ x5tS256: x5t(alice) });
      for (const authz of [plainAuthz, trustingAuthz]) {
        assert.ok(allowed(await check(authz, { authorization: `Bearer ${t}`, sourceCertificate: urlPem(alice) })), 'the peer certificate is always used');
        const none = await check(authz, { authorization: `Bearer ${t}` });
        assert.equal(reasonOf(none), 'BINDING_MISMATCH');
        assert.equal(challenge(none), 'Bearer error="invalid_token", error_description="BINDING_MISMATCH"');
        assert.equal(reasonOf(await check(authz, { authorization: `Bearer ${t}`, sourceCertificate: urlPem(mallory) })), 'BINDING_MISMATCH');
      }
    });

    it('x-forwarded-client-cert Hash= counts only with TA_TRUST_FORWARDED_CLIENT_CERT=true, and the peer certificate wins over it', async () => {
      const t = await issue({ x5tS256: x5t(alice) });
      const xfcc = (c: CertFiles) => ({ 'x-forwarded-client-cert': `By=spiffe://corp/envoy;Hash=${hexHash(c)};Subject="O=tests,CN=x";URI=spiffe://corp/alice` });
      assert.ok(allowed(await check(trustingAuthz, { authorization: `Bearer ${t}`, headers: xfcc(alice) })), 'trusted: the hash is the certificate');
      assert.equal(reasonOf(await check(plainAuthz, { authorization: `Bearer ${t}`, headers: xfcc(alice) })), 'BINDING_MISMATCH', 'untrusted: any client could send it');
      assert.equal(reasonOf(await check(trustingAuthz, { authorization: `Bearer ${t}`, headers: xfcc(mallory) })), 'BINDING_MISMATCH');
      // Several hops: the last element is the nearest proxy's.
      const hops = { 'x-forwarded-client-cert': `Hash=${hexHash(mallory)};URI=spiffe://corp/x,By=spiffe://corp/envoy;Hash=${hexHash(alice)}` };
      assert.ok(allowed(await check(trustingAuthz, { authorization: `Bearer ${t}`, headers: hops })));
      assert.equal(reasonOf(await check(trustingAuthz, { authorization: `Bearer ${t}`, headers: xfcc(alice), sourceCertificate: urlPem(mallory) })), 'BINDING_MISMATCH', 'the peer certificate wins');
      assert.equal(reasonOf(await check(trustingAuthz, { authorization: `Bearer ${t}`, headers: { 'x-forwarded-client-cert': `Hash=${hexHash(alice).toUpperCase()}` } })), 'BINDING_MISMATCH', 'Envoy sends lowercase hex; anything else is no hash');
    });

    it('DPoP-bound: the DPoP scheme with a proof for the request\'s method, scheme, host and path (query ignored)', async () => {
      const t = await issue({ jkt: key.jkt });
      const proof = (o: { method?: string; uri?: string; k?: DpopKey } = {}) => forgeDpopProof({ key: o.k ?? key, method: o.method ?? 'GET', uri: o.uri ?? 'https://api.test/orders/42', accessToken: t });
      const first = proof();
      assert.ok(allowed(await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: first } })));
      const replay = await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: first } });
      assert.equal(reasonOf(replay), 'INVALID_DPOP_PROOF');
      assert.equal(challenge(replay), 'DPoP error="invalid_dpop_proof", error_description="INVALID_DPOP_PROOF", algs="ES256 EdDSA RS256"');
      assert.equal(reasonOf(await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: proof({ uri: 'https://api.test/orders/43' }) } })), 'INVALID_DPOP_PROOF');
      assert.equal(reasonOf(await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: proof({ uri: 'http://api.test/orders/42' }) } })), 'INVALID_DPOP_PROOF', 'the scheme counts');
      assert.equal(reasonOf(await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: proof() }, method: 'POST' })), 'INVALID_DPOP_PROOF');
      const otherKeyed = await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: proof({ k: otherKey }) } });
      assert.equal(reasonOf(otherKeyed), 'BINDING_MISMATCH');
      assert.equal(challenge(otherKeyed), 'DPoP error="invalid_token", error_description="BINDING_MISMATCH", algs="ES256 EdDSA RS256"', 'a token presented as DPoP gets a DPoP challenge');
      const noProof = await check(plainAuthz, { authorization: `DPoP ${t}` });
      assert.equal(reasonOf(noProof), 'BINDING_MISMATCH');
      const asBearer = await check(plainAuthz, { authorization: `Bearer ${t}`, headers: { dpop: proof() } });
      assert.equal(reasonOf(asBearer), 'BINDING_MISMATCH', 'RFC 9449 §7.2: a DPoP-bound token presented as Bearer');
      assert.equal(challenge(asBearer), 'Bearer error="invalid_token", error_description="BINDING_MISMATCH"');
    });

    it('an unbound token: Bearer as before; the DPoP scheme is refused', async () => {
      const t = await issue();
      assert.ok(allowed(await check(plainAuthz, { authorization: `Bearer ${t}` })));
      const dpop = await check(plainAuthz, { authorization: `DPoP ${t}`, headers: { dpop: forgeDpopProof({ key, method: 'GET', uri: 'https://api.test/orders/42', accessToken: t }) } });
      assert.equal(reasonOf(dpop), 'BINDING_MISMATCH');
    });
  });

  describe('forward-auth /authz', () => {
    const authz = (sc: RunningSidecar, headers: Record<string, string> | Array<[string, string]>) => fetch(`http://127.0.0.1:${sc.httpPort}/authz?audience=orders`, { headers });
    const forwarded = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.test', 'x-forwarded-uri': '/orders/42?x=1' };
    const reasonOf = async (res: Response) => ((await res.json()) as { reason: string }).reason;

    it('certificate-bound: X-Client-Cert (URL-encoded PEM) counts only with TA_TRUST_FORWARDED_CLIENT_CERT=true', async () => {
      const t = await issue({ x5tS256: x5t(alice) });
      const ok = await authz(trusting, { authorization: `Bearer ${t}`, 'x-client-cert': urlPem(alice) });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('x-auth-subject'), 'alice');
      const untrusted = await authz(plain, { authorization: `Bearer ${t}`, 'x-client-cert': urlPem(alice) });
      assert.equal(untrusted.status, 401);
      assert.equal(untrusted.headers.get('www-authenticate'), 'Bearer error="invalid_token", error_description="BINDING_MISMATCH"');
      assert.equal(await reasonOf(await authz(trusting, { authorization: `Bearer ${t}`, 'x-client-cert': urlPem(mallory) })), 'BINDING_MISMATCH');
      assert.equal(await reasonOf(await authz(trusting, { authorization: `Bearer ${t}`, 'x-client-cert': 'not%20a%20certificate' })), 'BINDING_MISMATCH');
      assert.equal(await reasonOf(await authz(trusting, { authorization: `Bearer ${t}` })), 'BINDING_MISMATCH');
    });

    it('DPoP-bound: the DPoP header, checked against X-Forwarded-Method/-Proto/-Host/-Uri', async () => {
      const t = await issue({ jkt: key.jkt });
      const proof = (uri = 'https://shop.test/orders/42', method = 'GET') => forgeDpopProof({ key, method, uri, accessToken: t });
      const first = proof();
      const ok = await authz(plain, { authorization: `DPoP ${t}`, dpop: first, ...forwarded });
      assert.equal(ok.status, 200, await ok.clone().text());
      const replay = await authz(plain, { authorization: `DPoP ${t}`, dpop: first, ...forwarded });
      assert.equal(replay.status, 401);
      assert.equal(replay.headers.get('www-authenticate'), 'DPoP error="invalid_dpop_proof", error_description="INVALID_DPOP_PROOF", algs="ES256 EdDSA RS256"');
      assert.equal(await reasonOf(await authz(plain, { authorization: `DPoP ${t}`, dpop: proof('https://shop.test/orders/7'), ...forwarded })), 'INVALID_DPOP_PROOF');
      assert.equal(await reasonOf(await authz(plain, { authorization: `DPoP ${t}`, dpop: proof(undefined, 'POST'), ...forwarded })), 'INVALID_DPOP_PROOF');
      const { 'x-forwarded-host': _h, ...noHost } = forwarded;
      const blind = await authz(plain, { authorization: `DPoP ${t}`, dpop: proof(), ...noHost });
      assert.equal(blind.status, 401);
      assert.match(((await blind.json()) as { detail: string }).detail, /X-Forwarded-Host/);
      const two = await authz(plain, [['authorization', `DPoP ${t}`], ['dpop', proof()], ['dpop', proof()], ...Object.entries(forwarded)]);
      assert.equal(await reasonOf(two), 'INVALID_DPOP_PROOF');
      assert.equal(await reasonOf(await authz(plain, { authorization: `DPoP ${t}`, ...forwarded })), 'BINDING_MISMATCH');
      assert.equal(await reasonOf(await authz(plain, { authorization: `Bearer ${t}`, dpop: proof(), ...forwarded })), 'BINDING_MISMATCH');
    });

    it('an unbound token: Bearer as before, the DPoP scheme refused', async () => {
      const t = await issue();
      assert.equal((await authz(plain, { authorization: `Bearer ${t}`, ...forwarded })).status, 200);
      const proofWithBearer = forgeDpopProof({ key, method: 'GET', uri: 'https://shop.test/orders/42', accessToken: t });
      assert.equal((await authz(plain, { authorization: `Bearer ${t}`, dpop: proofWithBearer })).status, 200, 'a proof beside a Bearer token is not looked at, X-Forwarded-* or not');
      const dpop = await authz(plain, { authorization: `DPoP ${t}`, dpop: forgeDpopProof({ key, method: 'GET', uri: 'https://shop.test/orders/42', accessToken: t }), ...forwarded });
      assert.equal(dpop.status, 401);
      assert.equal(await reasonOf(dpop), 'BINDING_MISMATCH');
      assert.equal(dpop.headers.get('www-authenticate'), 'DPoP error="invalid_token", error_description="BINDING_MISMATCH", algs="ES256 EdDSA RS256"');
    });
  });
});
