import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, status } from '@grpc/grpc-js';
import { loadConfig } from '../../src/config/config.js';
import { AuthorizationClient, CheckRequest, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth.js';
import type { VerifyReason } from '../../src/shared/claims.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar/sidecar-server.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { eventually } from '../helpers/eventually.js';
import { authorityClient, expectStatus, type AuthorityClient } from '../helpers/grpc-client.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { RPC_CORPUS, signedBy, type AttackCase, type CorpusContext } from './attack-corpus.js';
import { BINDING_CORPUS, makeBindingFixtures, runBindingCorpus, type BindingContext, type BindingFixtures, type BindingPresentation } from './binding-corpus.js';
import { answerOf, CORPUS_AUDIENCE, makeCorpusKeys, reportTimings, revokedIds, runCorpus, seedKeyDir, type Answer } from './corpus-harness.js';

describe('attack corpus → sidecar (Verify RPC and Envoy ext_authz Check)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let sidecar: RunningSidecar;
  let client: AuthorityClient;
  let authz: AuthorizationClient;
  let keyDir: string;
  let ctx: CorpusContext;

  before(async () => {
    const { keys, generated } = await makeCorpusKeys();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-corpus-keys-'));
    await seedKeyDir(keyDir, generated);
    redis = await startRedis();
    ta = await startTestAuthority({ TA_KEY_DIR: keyDir, TA_REDIS_URL: redis.url, TA_HEARTBEAT_INTERVAL: '200ms' });
    const config = loadConfig('sidecar', {
      env: {
        TA_GRPC_ADDR: '127.0.0.1:0',
        TA_HTTP_ADDR: '127.0.0.1:0',
        TA_ISSUER: TEST_ISSUER,
        TA_AUTHORITY_URL: ta.httpBase,
        TA_REDIS_URL: redis.url,
        TA_AUDIENCE: '*',
        TA_LOG_LEVEL: 'silent',
        // Let 1 MiB tokens reach the verifier, as at the authority (corpus-authority.test.ts).
        TA_MAX_MESSAGE_BYTES: '4MiB',
        // forward-auth's X-Client-Cert counts (the binding corpus); nothing else reads it.
        TA_TRUST_FORWARDED_CLIENT_CERT: 'true',
      },
    });
    sidecar = await startSidecar(config, silentLogger, { metrics: createMetrics({ defaultMetrics: false }) });
    client = authorityClient(sidecar.grpcPort);
    authz = new AuthorizationClient(`127.0.0.1:${sidecar.grpcPort}`, credentials.createInsecure());

    // Revoked at the authority after the sidecar started: these reach it over the feed.
    const revoked = revokedIds();
    let seq = 0;
    seq = Math.max(seq, (await ta.client.revoke({ target: { $case: 'tokenId', tokenId: revoked.jti } })).sequence);
    seq = Math.max(seq, (await ta.client.revoke({ target: { $case: 'sessionId', sessionId: revoked.sid } })).sequence);
    seq = Math.max(seq, (await ta.client.revoke({ target: { $case: 'subject', subject: revoked.sub } })).sequence);
    await eventually(() => sidecar.verifier.status().revocation.appliedSeq >= seq, 10_000, 'the sidecar applied the revocations');
    const issued = await ta.client.issue({ subject: 'corpus', audience: [CORPUS_AUDIENCE] });
    ctx = {
      issuer: TEST_ISSUER,
      audience: CORPUS_AUDIENCE,
      nowSec: () => Math.floor(Date.now() / 1000),
      keys: keys.trusted,
      removed: keys.removed,
      attacker: keys.attacker,
      refreshToken: issued.refreshToken,
      revoked,
    };
  });
  after(async () => {
    authz?.close();
    client?.close();
    await sidecar?.stop();
    await ta?.close();
    await redis?.stop();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('trusts exactly the authority’s published keys', () => {
    assert.deepEqual([...sidecar.keys.stats().kids].sort(), [ctx.keys.ES256.kid, ctx.keys.EdDSA.kid, ctx.keys.RS256.kid].sort());
  });

  describe('Verify RPC', () => {
    const run = runCorpus(RPC_CORPUS, () => ctx, async (token, c) =>
      answerOf(await client.verify({ token: token as string, audience: CORPUS_AUDIENCE, requiredScopes: [...(c.requiredScopes ?? [])] })),
    );
    it('ran every case within a generous time bound', () => reportTimings('sidecar Verify', run, { totalMs: 15_000, caseMs: 2_000 }));
  });

  describe('Envoy ext_authz Check (authorization: Bearer <token>)', () => {
    const check = (headers: Record<string, string>, c: AttackCase) =>
      new Promise<CheckResponse>((resolve, reject) =>
        authz.check(
          CheckRequest.fromPartial({
            attributes: {
              request: { http: { headers, path: '/orders', method: 'GET' } },
              contextExtensions: { audience: CORPUS_AUDIENCE, required_scopes: (c.requiredScopes ?? []).join(' ') },
            },
          }),
          new Metadata(),
          { deadline: new Date(Date.now() + 10_000) },
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );

    /** An allow, or a deny whose HTTP status, gRPC status and body agree on the reason. */
    const answerOfCheck = (r: CheckResponse): Answer => {
      if (r.httpResponse?.$case === 'okResponse') {
        assert.equal(r.status?.code, status.OK);
        return { outcome: 'VALID', detail: '' };
      }
      assert.equal(r.httpResponse?.$case, 'deniedResponse', 'a denial carries a denied response');
      const denied = r.httpResponse.deniedResponse;
      const body = JSON.parse(denied.body) as { reason: VerifyReason | 'MISSING_TOKEN'; detail: string; error: string };
      const forbidden = body.reason === 'MISSING_SCOPE';
      assert.equal(denied.status?.code, forbidden ? 403 : 401, `HTTP status for ${body.reason}`);
      assert.equal(r.status?.code, forbidden ? status.PERMISSION_DENIED : status.UNAUTHENTICATED);
      const challenge = denied.headers.find((h) => h.header?.key === 'www-authenticate')?.header?.value ?? '';
      assert.match(challenge, /^Bearer/, 'an RFC 6750 challenge');
      if (body.reason !== 'MISSING_TOKEN') assert.match(challenge, new RegExp(`error_description="${body.reason}"`));
      return { outcome: body.reason, detail: body.detail };
    };

    const run = runCorpus(
      RPC_CORPUS,
      () => ctx,
      async (token, c) => answerOfCheck(await check({ authorization: `Bearer ${token as string}` }, c)),
      (c) => c.viaHeader ?? c.expect,
    );
    it('ran every case within a generous time bound', () => reportTimings('sidecar Check', run, { totalMs: 15_000, caseMs: 2_000 }));

    it('reads the credential exactly as RFC 6750/9110 frame it: scheme case-insensitive, 1*SP, OWS trimmed, nothing else', async () => {
      const t = signedBy(ctx, 'ES256');
      const none: AttackCase = { name: 'header form', ref: 'RFC 6750 §2.1', expect: 'VALID', make: () => t };
      const outcome = async (authorization: string | undefined) =>
        answerOfCheck(await check(authorization === undefined ? {} : { authorization }, none)).outcome;
      const forms: Array<[string | undefined, string]> = [
        [`Bearer ${t}`, 'VALID'],
        [`bearer ${t}`, 'VALID'],
        [`BEARER   ${t}`, 'VALID'],
        [` \tBearer ${t} \t`, 'VALID'],
        [`Bearer\t${t}`, 'MISSING_TOKEN'],
        [`Bearer`, 'MISSING_TOKEN'],
        [`Bearer    `, 'MISSING_TOKEN'],
        [`Basic ${Buffer.from('a:b').toString('base64')}`, 'MISSING_TOKEN'],
        [`Bearer${t}`, 'MISSING_TOKEN'],
        [`Token ${t}`, 'MISSING_TOKEN'],
        [undefined, 'MISSING_TOKEN'],
        [`Bearer ${t} ${t}`, 'MALFORMED'],
        [`Bearer ${t},${t}`, 'MALFORMED'],
        [`Bearer \u00a0${t}`, 'MALFORMED'],
      ];
      for (const [authorization, want] of forms) assert.equal(await outcome(authorization), want, JSON.stringify(authorization?.slice(0, 20)));
      // A million blanks cost a linear scan, not a backtracking regex.
      const started = Date.now();
      assert.equal(await outcome(`Bearer ${' \t'.repeat(500_000)}x`), 'MALFORMED');
      assert.equal(await outcome(`Bearer ${' '.repeat(1_000_000)}`), 'MISSING_TOKEN');
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    });
  });

  describe('binding corpus: Verify RPC, ext_authz Check and forward-auth', () => {
    let fixtures: BindingFixtures;
    const contexts: Record<'rpc' | 'check' | 'forward', BindingContext> = {} as never;
    before(async () => {
      fixtures = await makeBindingFixtures();
      const base = { ...ctx, certificates: fixtures.certificates, dpopKeys: fixtures.dpopKeys, thief: fixtures.thief };
      contexts.rpc = { ...base, request: { method: 'GET', uri: 'https://orders.test:8443/orders/42' } };
      contexts.check = { ...base, request: { method: 'PUT', uri: 'https://orders.test:8443/orders/42' } };
      contexts.forward = { ...base, request: { method: 'DELETE', uri: 'https://shop.test/orders/42' } };
    });
    after(() => fixtures?.cleanup());

    /** A denial over HTTP: the challenge names the scheme RFC 9449 §7.1 / RFC 6750 §3 give it. */
    const challengeAgrees = (challenge: string, reason: string, p: BindingPresentation) => {
      if (reason === 'INVALID_DPOP_PROOF') assert.match(challenge, /^DPoP error="invalid_dpop_proof", error_description="INVALID_DPOP_PROOF", algs="/);
      else if (p.scheme === 'DPoP') assert.match(challenge, new RegExp(`^DPoP error="invalid_token", error_description="${reason}"`));
      else assert.match(challenge, new RegExp(`^Bearer error="invalid_token", error_description="${reason}"`));
    };

    describe('Verify RPC (client_certificate as DER, dpop_proof, http_method, http_uri)', () => {
      runBindingCorpus(BINDING_CORPUS, () => contexts.rpc, async (p) =>
        answerOf(await client.verify({
          token: p.token,
          audience: CORPUS_AUDIENCE,
          ...(p.certificate ? { clientCertificate: p.certificate.der } : {}),
          ...(p.proof !== undefined ? { dpopProof: p.proof, httpMethod: contexts.rpc.request.method, httpUri: contexts.rpc.request.uri } : {}),
        })), (c) => c.viaRpc ?? c.expect);
    });

    describe('ext_authz Check (source.certificate, dpop header, the request\'s method/scheme/host/path)', () => {
      runBindingCorpus(BINDING_CORPUS, () => contexts.check, async (p) => {
        const r = await new Promise<CheckResponse>((resolve, reject) =>
          authz.check(
            CheckRequest.fromPartial({
              attributes: {
                ...(p.certificate ? { source: { certificate: encodeURIComponent(p.certificate.pem) } } : {}),
                request: { http: { method: 'PUT', scheme: 'https', host: 'orders.test:8443', path: '/orders/42?page=1', headers: { authorization: `${p.scheme} ${p.token}`, ...(p.proof !== undefined ? { dpop: p.proof } : {}) } } },
                contextExtensions: { audience: CORPUS_AUDIENCE },
              },
            }),
            (e, res) => (e ? reject(e) : resolve(res)),
          ),
        );
        if (r.httpResponse?.$case === 'okResponse') return { outcome: 'VALID', detail: '' };
        assert.equal(r.httpResponse?.$case, 'deniedResponse');
        const denied = r.httpResponse.deniedResponse;
        const body = JSON.parse(denied.body) as { reason: VerifyReason; detail: string };
        assert.equal(denied.status?.code, 401);
        challengeAgrees(denied.headers.find((h) => h.header?.key === 'www-authenticate')?.header?.value ?? '', body.reason, p);
        return { outcome: body.reason, detail: body.detail };
      });
    });

    describe('forward-auth /authz (X-Client-Cert, DPoP, X-Forwarded-Method/-Proto/-Host/-Uri)', () => {
      runBindingCorpus(BINDING_CORPUS, () => contexts.forward, async (p) => {
        const res = await fetch(`http://127.0.0.1:${sidecar.httpPort}/authz?audience=${CORPUS_AUDIENCE}`, {
          headers: {
            authorization: `${p.scheme} ${p.token}`,
            'x-forwarded-method': 'DELETE', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.test', 'x-forwarded-uri': '/orders/42?x=1',
            ...(p.certificate ? { 'x-client-cert': encodeURIComponent(p.certificate.pem) } : {}),
            ...(p.proof !== undefined ? { dpop: p.proof } : {}),
          },
        });
        if (res.status === 200) return { outcome: 'VALID', detail: '' };
        const body = (await res.json()) as { reason: VerifyReason; detail: string };
        assert.equal(res.status, 401);
        challengeAgrees(res.headers.get('www-authenticate') ?? '', body.reason, p);
        return { outcome: body.reason, detail: body.detail };
      });
    });
  });

  it('answers Refresh and the other authority-only RPCs with UNIMPLEMENTED, whatever the token', async () => {
    await expectStatus(client.refresh({ refreshToken: ctx.refreshToken }), status.UNIMPLEMENTED, 'answered by the authority');
    await expectStatus(client.refresh({ refreshToken: signedBy(ctx, 'ES256') }), status.UNIMPLEMENTED);
  });

  it('stays responsive: a freshly issued token verifies through Verify and Check', async () => {
    const issued = await ta.client.issue({ subject: 'after-corpus', audience: [CORPUS_AUDIENCE], scopes: ['read'] });
    const v = await client.verify({ token: issued.accessToken, audience: CORPUS_AUDIENCE, requiredScopes: ['read'] });
    assert.equal(v.valid, true, v.detail);
    const r = await new Promise<CheckResponse>((resolve, reject) =>
      authz.check(
        CheckRequest.fromPartial({ attributes: { request: { http: { headers: { authorization: `Bearer ${issued.accessToken}` } } }, contextExtensions: { audience: CORPUS_AUDIENCE } } }),
        (e, res) => (e ? reject(e) : resolve(res)),
      ),
    );
    assert.equal(r.httpResponse?.$case, 'okResponse');
    assert.equal((await fetch(`http://127.0.0.1:${sidecar.httpPort}/healthz`)).status, 200);
  });
});
