import assert from 'node:assert/strict';
import { credentials, Metadata, ServerCredentials, status } from '@grpc/grpc-js';
import { AuthorizationClient, CheckRequest, type CheckResponse } from '../../../src/gen/envoy/service/auth/v3/external_auth.js';
import { GrpcServer } from '../../../src/grpc/server.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { createExtAuthzService } from '../../../src/sidecar/ext-authz.js';
import { createVerifier } from '../../../src/verifier/create-verifier.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import { accessPayload, forgeToken, generateTestKey } from '../../helpers/token-forge.js';

/**
 * `x-auth-audience` and `x-auth-scopes` are space-separated lists, so no audience or scope may
 * contain a space: Issue refuses one, and ext_authz denies a token carrying one rather than
 * forward a list the service would split differently.
 */
describe('claim headers: audiences and scopes are space-free', () => {
  describe('Issue (gRPC)', () => {
    let ta: TestAuthority;
    before(async () => {
      ta = await startTestAuthority();
    });
    after(() => ta.close());

    for (const [what, audience] of [
      ['a space', 'orders billing'],
      ['a tab', 'orders\tbilling'],
      ['a no-break space', 'orders\u00a0billing'],
      ['a line separator', 'orders\u2028billing'],
      ['a C1 control character', 'orders\u0085'],
      ['a leading space', ' orders'],
    ] as const) {
      it(`refuses an audience with ${what}, naming the field`, async () => {
        await expectStatus(ta.client.issue({ subject: 'a', audience: ['orders', audience] }), status.INVALID_ARGUMENT, /audience\[1\].*(whitespace|control)/);
      });
    }

    it('refuses the audience "*" (it means "any audience" in TA_AUDIENCE and the client policy)', async () => {
      await expectStatus(ta.client.issue({ subject: 'a', audience: ['*'] }), status.INVALID_ARGUMENT, /audience\[0\].*reserved/);
    });

    it('refuses a scope with a space (RFC 6749 scope-token)', async () => {
      await expectStatus(ta.client.issue({ subject: 'a', audience: ['orders'], scopes: ['read write'] }), status.INVALID_ARGUMENT, /scopes\[0\]/);
    });

    it('still issues for ordinary audiences such as URLs and URNs', async () => {
      const issued = await ta.client.issue({ subject: 'a', audience: ['https://api.example.com/orders', 'urn:corp:billing'], scopes: ['orders:read'] });
      const v = await ta.client.verify({ token: issued.accessToken, audience: 'urn:corp:billing' });
      assert.equal(v.valid, true, v.detail);
    });
  });

  describe('ext_authz Check', () => {
    const key = generateTestKey('ES256');
    let server: GrpcServer;
    let client: AuthorizationClient;
    const check = (token: string) =>
      new Promise<CheckResponse>((resolve, reject) =>
        client.check(
          CheckRequest.fromPartial({ attributes: { request: { http: { headers: { authorization: `Bearer ${token}` }, path: '/', method: 'GET' } } } }),
          new Metadata(),
          (e, r) => (e ? reject(e) : resolve(r)),
        ),
      );
    const headerOf = (r: CheckResponse, name: string) =>
      r.httpResponse?.$case === 'okResponse' ? r.httpResponse.okResponse.headers.find((h) => h.header?.key === name)?.header?.value : undefined;

    before(async () => {
      const verifier = createVerifier({
        issuer: TEST_ISSUER,
        keys: { get: (kid) => (kid === key.kid ? key.verificationKey : undefined) },
      });
      await verifier.start();
      server = new GrpcServer({
        address: { host: '127.0.0.1', port: 0, text: '127.0.0.1:0' },
        credentials: ServerCredentials.createInsecure(),
        services: [createExtAuthzService(verifier, { logger: silentLogger })],
        protoFiles: ['envoy/service/auth/v3/external_auth.proto'],
        logger: silentLogger,
      });
      const port = await server.start();
      client = new AuthorizationClient(`127.0.0.1:${port}`, credentials.createInsecure());
    });
    after(async () => {
      client?.close();
      await server?.shutdown(0);
    });

    it('allows a token with space-free audiences and forwards them space-joined', async () => {
      const token = forgeToken({ key, payload: accessPayload({ iss: TEST_ISSUER, aud: ['orders', 'billing'], scope: 'read write' }) });
      const r = await check(token);
      assert.equal(r.status?.code, status.OK);
      assert.equal(headerOf(r, 'x-auth-audience'), 'orders billing');
      assert.equal(headerOf(r, 'x-auth-scopes'), 'read write');
    });

    it('denies (401, MALFORMED) a token whose audience contains a space instead of forwarding an ambiguous list', async () => {
      const token = forgeToken({ key, payload: accessPayload({ iss: TEST_ISSUER, aud: ['orders billing', 'admin'] }) });
      const r = await check(token);
      assert.equal(r.httpResponse?.$case, 'deniedResponse');
      assert.equal(r.httpResponse?.$case === 'deniedResponse' && r.httpResponse.deniedResponse.status?.code, 401);
      assert.match(r.status?.message ?? '', /^MALFORMED: .*audience/);
    });

    it('denies a token whose scope carries a control character', async () => {
      const token = forgeToken({ key, payload: accessPayload({ iss: TEST_ISSUER, aud: 'orders', scope: 'read\twrite' }) });
      const r = await check(token);
      assert.equal(r.httpResponse?.$case, 'deniedResponse');
      assert.match(r.status?.message ?? '', /^MALFORMED: .*scope/);
    });
  });
});
