import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { describeSymbolByReflection, healthClient, listServicesByReflection } from '../../helpers/grpc-standard-clients.js';

describe('authority keys: rotation and restart', () => {
  let ta: TestAuthority | undefined;
  afterEach(async () => {
    await ta?.close();
    ta = undefined;
  });

  it('after rotation, old tokens stay valid, new tokens carry the new kid, and both keys are published', async () => {
    ta = await startTestAuthority();
    const before = await ta.client.issue({ subject: 'alice', audience: ['orders'] });
    const jwksBefore = JSON.parse((await ta.client.getJwks()).jwksJson) as { keys: Array<{ kid: string }> };
    assert.equal(jwksBefore.keys.length, 2, 'active + next are published from the start');
    const active = await ta.running.keys.rotate();
    assert.notEqual(active.kid, before.keyId);
    assert.ok(jwksBefore.keys.some((k) => k.kid === active.kid), 'the new active key was published before it signed');
    const after = await ta.client.issue({ subject: 'alice', audience: ['orders'] });
    assert.equal(after.keyId, active.kid);
    assert.equal((await ta.client.verify({ token: before.accessToken })).valid, true, 'a token of the retired key still verifies');
    assert.equal((await ta.client.verify({ token: after.accessToken })).valid, true);
    const kids = (JSON.parse((await ta.client.getJwks()).jwksJson) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    assert.ok(kids.includes(before.keyId) && kids.includes(after.keyId), 'retired and active keys are both published');
    const http = (await (await fetch(`${ta.httpBase}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    assert.deepEqual(http.keys.map((k) => k.kid).sort(), [...kids].sort(), 'HTTP JWKS equals GetJwks');
  });

  it('keys survive a restart: same kid, old tokens still verify; key file is 0600', async () => {
    ta = await startTestAuthority();
    const keyDir = ta.keyDir;
    const issued = await ta.client.issue({ subject: 'alice', audience: ['orders'] });
    await ta.stop();
    const mode = (await stat(join(keyDir, 'keys.json'))).mode & 0o777;
    assert.equal(mode, 0o600);
    const second = await startTestAuthority({ TA_KEY_DIR: keyDir });
    try {
      const again = await second.client.issue({ subject: 'alice', audience: ['orders'] });
      assert.equal(again.keyId, issued.keyId);
      assert.equal((await second.client.verify({ token: issued.accessToken })).valid, true);
    } finally {
      await second.close();
      await ta.close();
    }
  });
});

describe('authority endpoints: health, reflection, discovery, metrics', () => {
  let ta: TestAuthority;
  before(async () => {
    ta = await startTestAuthority();
  });
  after(() => ta.close());

  it('serves grpc.health.v1 as SERVING for the server and the service', async () => {
    const h = healthClient(ta.running.grpcPort);
    try {
      assert.equal(await h.check(''), 'SERVING');
      assert.equal(await h.check('tokenauthority.v1.TokenAuthorityService'), 'SERVING');
    } finally {
      h.close();
    }
  });

  it('serves reflection listing the service and describing it (what grpcurl and ghz need)', async () => {
    const services = await listServicesByReflection(ta.running.grpcPort);
    assert.ok(services.includes('tokenauthority.v1.TokenAuthorityService'), services.join(','));
    assert.ok(services.includes('grpc.health.v1.Health'));
    assert.ok((await describeSymbolByReflection(ta.running.grpcPort, 'tokenauthority.v1.TokenAuthorityService')) >= 1);
  });

  it('serves the JWKS with Cache-Control and discovery naming issuer and jwks_uri', async () => {
    const res = await fetch(`${ta.httpBase}/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('cache-control') ?? '', /^public, max-age=\d+$/);
    const jwks = (await res.json()) as { keys: Array<Record<string, unknown>> };
    for (const k of jwks.keys) for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[secret], undefined);
    const disco = (await (await fetch(`${ta.httpBase}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    assert.equal(disco.issuer, TEST_ISSUER);
    assert.equal(disco.jwks_uri, `${TEST_ISSUER}/.well-known/jwks.json`);
  });

  it('advertises in discovery only what the service offers (no ID tokens; the OAuth endpoints it serves)', async () => {
    const disco = (await (await fetch(`${ta.httpBase}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(disco).sort(), [
      'dpop_signing_alg_values_supported',
      'grant_types_supported',
      'introspection_endpoint',
      'introspection_endpoint_auth_methods_supported',
      'issuer',
      'jwks_uri',
      'revocation_endpoint',
      'revocation_endpoint_auth_methods_supported',
      'token_endpoint',
      'token_endpoint_auth_methods_supported',
    ]);
    assert.ok(!Object.keys(disco).some((k) => k.startsWith('id_token') || k === 'response_types_supported' || k === 'subject_types_supported'));
    const rfc8414 = await (await fetch(`${ta.httpBase}/.well-known/oauth-authorization-server`)).json();
    assert.deepEqual(rfc8414, disco, 'RFC 8414 metadata and the OpenID document agree');
  });

  it('answers /healthz and exposes RPC, verify-outcome and key-age metrics', async () => {
    const health = await fetch(`${ta.httpBase}/healthz`);
    assert.equal(health.status, 200);
    await ta.client.verify({ token: 'junk' });
    await ta.client.issue({ subject: 'm', audience: ['orders'] });
    const text = await (await fetch(`${ta.httpBase}/metrics`)).text();
    assert.match(text, /ta_grpc_requests_total\{method="Verify",code="OK"\} [1-9]/);
    assert.match(text, /ta_grpc_request_duration_seconds_bucket\{le="[0-9.]+",method="Issue"\}/);
    assert.match(text, /ta_verify_outcomes_total\{outcome="MALFORMED"\} [1-9]/);
    assert.match(text, /ta_signing_key_age_seconds\{kid="[^"]+",state="active"\}/);
    assert.equal((await fetch(`${ta.httpBase}/nope`)).status, 404);
  });
});
