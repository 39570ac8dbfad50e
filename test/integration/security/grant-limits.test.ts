import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { decodeJwt } from 'jose';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { expectStatus, type AuthorityClient } from '../../helpers/grpc-client.js';
import { standardPki } from '../../helpers/pki.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { tlsClient, writePolicy } from './security-fixtures.js';

/**
 * M1 (Refresh applies the issuing client's maxAccessTtl) and L3 (client_id and extra claims are
 * limited to what the client policy grants), over gRPC with mutual TLS, memory and Redis store.
 */
const POLICY = {
  version: 1,
  clients: {
    // 5-minute grant; may name itself or "web" as client_id; may set only the "tenant" extra claim.
    'spiffe://corp/login': { issue: { audiences: ['orders'], scopes: ['*'], maxAccessTtl: '5m', clientIds: ['spiffe://corp/login', 'web'], extraClaims: ['tenant'] } },
    // No lists: its own identity as client_id only, any extra claim, the server's TTL limits.
    'spiffe://corp/stranger': { issue: { audiences: ['*'], scopes: ['*'] } },
  },
};

for (const backend of ['memory', 'redis'] as const) {
  describe(`issuing grants over mutual TLS (${backend} store)`, function () {
    this.timeout(30_000);
    let pki: ReturnType<typeof standardPki>;
    let redis: RedisServer | undefined;
    let ta: TestAuthority;
    let login: AuthorityClient;
    let other: AuthorityClient;

    before(async () => {
      pki = standardPki();
      if (backend === 'redis') redis = await startRedis();
      ta = await startTestAuthority({
        TA_TLS_CERT: pki.server.cert, TA_TLS_KEY: pki.server.key, TA_TLS_CLIENT_CA: pki.ca.cert,
        TA_CLIENT_POLICY: writePolicy(pki.pki.dir, POLICY, `grant-policy-${backend}.json`),
        TA_MAX_ACCESS_TTL: '1h', TA_ACCESS_TTL: '15m',
        ...(redis ? { TA_REDIS_URL: redis.url } : {}),
      });
      login = tlsClient(ta.running.grpcPort, pki.ca, pki.login);
      other = tlsClient(ta.running.grpcPort, pki.ca, pki.stranger);
    });
    after(async () => {
      for (const c of [login, other]) c?.close();
      await ta?.close();
      await redis?.stop();
      pki?.cleanup();
    });

    const lifetime = (token: string) => {
      const { exp, iat } = decodeJwt(token);
      return exp! - iat!;
    };

    it('M1: Refresh keeps the issuing client\'s 5-minute grant, by default and when asking for 1h', async () => {
      const issued = await login.issue({ subject: 'alice', audience: ['orders'], accessTtlSeconds: 3600 });
      assert.equal(lifetime(issued.accessToken), 300);
      const byDefault = await login.refresh({ refreshToken: issued.refreshToken });
      assert.equal(lifetime(byDefault.accessToken), 300, 'the default TTL (15m) is capped too');
      // Refresh needs no rights: any holder of the token may call it, here another client.
      const asked = await other.refresh({ refreshToken: byDefault.refreshToken, accessTtlSeconds: 3600 });
      assert.equal(lifetime(asked.accessToken), 300);
      const shorter = await login.refresh({ refreshToken: asked.refreshToken, accessTtlSeconds: 60 });
      assert.equal(lifetime(shorter.accessToken), 60, 'shorter than the cap is honoured');
      // Without a cap in the grant, the server's limits apply as before.
      const free = await other.issue({ subject: 'bob', audience: ['orders'] });
      assert.equal(lifetime((await other.refresh({ refreshToken: free.refreshToken, accessTtlSeconds: 3600 })).accessToken), 3600);
    });

    it('L3: client_id is the caller\'s own identity or one its grant lists; others are denied', async () => {
      const own = await login.issue({ subject: 'alice', audience: ['orders'] });
      assert.equal(decodeJwt(own.accessToken).client_id, 'spiffe://corp/login');
      const web = await login.issue({ subject: 'alice', audience: ['orders'], clientId: 'web' });
      assert.equal(decodeJwt(web.accessToken).client_id, 'web');
      assert.equal(decodeJwt((await login.refresh({ refreshToken: web.refreshToken })).accessToken).client_id, 'web', 'kept on refresh');
      await expectStatus(login.issue({ subject: 'alice', audience: ['orders'], clientId: 'spiffe://corp/admin-console' }), status.PERMISSION_DENIED,
        'client spiffe://corp/login may not issue tokens with client_id "spiffe://corp/admin-console"; allowed: spiffe://corp/login, web');
      // No list in the policy: only its own identity.
      await expectStatus(other.issue({ subject: 'bob', audience: ['orders'], clientId: 'web' }), status.PERMISSION_DENIED, 'allowed: spiffe://corp/stranger');
      const self = await other.issue({ subject: 'bob', audience: ['orders'], clientId: 'spiffe://corp/stranger' });
      assert.equal(decodeJwt(self.accessToken).client_id, 'spiffe://corp/stranger');
    });

    it('L3: extra claims are limited to the grant\'s allow-list, when it has one', async () => {
      const ok = await login.issue({ subject: 'alice', audience: ['orders'], extraClaims: { tenant: 'acme' } });
      assert.equal(decodeJwt(ok.accessToken).tenant, 'acme');
      await expectStatus(login.issue({ subject: 'alice', audience: ['orders'], extraClaims: { tenant: 'acme', role: 'admin', org: 'x' } }), status.PERMISSION_DENIED,
        'client spiffe://corp/login may not set extra claims role, org; allowed: tenant');
      const any = await other.issue({ subject: 'bob', audience: ['orders'], extraClaims: { role: 'admin' } });
      assert.equal(decodeJwt(any.accessToken).role, 'admin', 'no allow-list: any extra claim');
    });
  });
}
