import assert from 'node:assert/strict';
import { credentials, makeGenericClientConstructor, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { TokenAuthorityServiceService, type GetJwksResponse } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { startOrdersService } from '../../examples/orders-service.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { eventually } from '../helpers/eventually.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

describe('examples/orders-service.ts: a grpc-js service protected by requireToken', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let orders: Awaited<ReturnType<typeof startOrdersService>>;
  let client: InstanceType<ReturnType<typeof makeGenericClientConstructor>>;

  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url });
    orders = await startOrdersService({ issuer: TEST_ISSUER, authorityUrl: ta.httpBase, redisUrl: redis.url });
    const Client = makeGenericClientConstructor({ getJwks: TokenAuthorityServiceService.getJwks }, 'Orders');
    client = new Client(`127.0.0.1:${orders.port}`, credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await orders?.stop();
    await ta?.close();
    await redis?.stop();
  });

  const call = (token?: string) =>
    new Promise<GetJwksResponse>((resolve, reject) => {
      const md = new Metadata();
      if (token) md.set('authorization', `Bearer ${token}`);
      (client as unknown as { getJwks: (req: object, md: Metadata, cb: (e: ServiceError | null, r: GetJwksResponse) => void) => void }).getJwks({}, md, (e, r) => (e ? reject(e) : resolve(r)));
    });

  it('serves a caller with a valid token, hands the handler its claims, rejects the rest with the reason', async () => {
    const issued = await ta.client.issue({ subject: 'olga', audience: ['orders'], scopes: ['orders:read'] });
    const ok = await call(issued.accessToken);
    assert.deepEqual(JSON.parse(ok.jwksJson), { order: 42, owner: 'olga' });

    await assert.rejects(call(), (e: ServiceError) => e.code === status.UNAUTHENTICATED && /MISSING_TOKEN/.test(e.details));
    const noScope = await ta.client.issue({ subject: 'olga', audience: ['orders'], scopes: ['orders:write'] });
    await assert.rejects(call(noScope.accessToken), (e: ServiceError) => e.code === status.PERMISSION_DENIED && /MISSING_SCOPE/.test(e.details));
    const otherAud = await ta.client.issue({ subject: 'olga', audience: ['billing'], scopes: ['orders:read'] });
    await assert.rejects(call(otherAud.accessToken), (e: ServiceError) => e.code === status.UNAUTHENTICATED && e.metadata.get('ta-verify-reason')[0] === 'WRONG_AUDIENCE');

    const { sequence } = await ta.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
    await eventually(() => orders.verifier.status().revocation.appliedSeq >= sequence, 5000);
    await assert.rejects(call(issued.accessToken), (e: ServiceError) => e.code === status.UNAUTHENTICATED && /REVOKED/.test(e.details));
  });
});
