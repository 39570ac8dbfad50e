import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.js';
import { startSidecar, type RunningSidecar } from '../../src/sidecar/sidecar-server.js';
import { createMetrics, type Metrics } from '../../src/telemetry/metrics.js';
import { silentLogger } from '../../src/shared/logger.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { eventually } from '../helpers/eventually.js';
import { startCaddy, startEchoUpstream, startNginx, type Gateway, type Upstream } from '../helpers/gateways.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const CLAIM_HEADERS = ['x-auth-subject', 'x-auth-scopes', 'x-auth-audience', 'x-auth-token-id', 'x-auth-session-id', 'x-auth-expires-at', 'x-auth-issuer'];

describe('forward-auth (/authz) on the sidecar, directly and behind real nginx and Caddy', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let sidecar: RunningSidecar;
  let metrics: Metrics;
  let upstream: Upstream;
  let base: string;
  const gateways: Gateway[] = [];

  const issue = (scopes: string[] = ['read'], audience = ['orders']) => ta.client.issue({ subject: 'frieda', audience, scopes }).then((r) => r.accessToken);
  const outcome = async (name: string) => {
    const text = await metrics.registry.getSingleMetricAsString('ta_verify_outcomes_total');
    return Number(new RegExp(`outcome="${name}"} (\\d+)`).exec(text)?.[1] ?? 0);
  };

  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_HEARTBEAT_INTERVAL: '100ms' });
    metrics = createMetrics({ defaultMetrics: false });
    const config = loadConfig('sidecar', {
      env: {
        TA_GRPC_ADDR: '127.0.0.1:0',
        TA_HTTP_ADDR: '127.0.0.1:0',
        TA_ISSUER: TEST_ISSUER,
        TA_AUTHORITY_URL: ta.httpBase,
        TA_REDIS_URL: redis.url,
        TA_AUDIENCE: 'orders',
        TA_STALENESS_BOUND: '600ms',
        TA_REDIS_COMMAND_TIMEOUT: '200ms',
      },
    });
    sidecar = await startSidecar(config, silentLogger, { metrics });
    base = `http://127.0.0.1:${sidecar.httpPort}`;
    upstream = await startEchoUpstream();
    const gatewayOptions = { sidecarHttpPort: sidecar.httpPort, upstreamPort: upstream.port, query: 'audience=orders&required_scopes=read', claimHeaders: CLAIM_HEADERS };
    gateways.push(await startNginx(gatewayOptions), await startCaddy(gatewayOptions));
  });
  after(async () => {
    for (const g of gateways) await g.stop();
    await upstream?.stop();
    await sidecar?.stop();
    await ta?.close();
    await redis?.stop();
  });

  describe('the endpoint itself', () => {
    it('allows a valid token with every claim header, for any method and any path below /authz', async () => {
      const token = await issue(['read', 'write']);
      const validBefore = await outcome('valid');
      for (const [method, path] of [['GET', '/authz'], ['POST', '/authz/orders/42'], ['DELETE', '/authz/x'], ['HEAD', '/authz']] as const) {
        const res = await fetch(`${base}${path}?required_scopes=read,write`, { method, headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 200, `${method} ${path}`);
        assert.equal(res.headers.get('x-auth-subject'), 'frieda');
        assert.equal(res.headers.get('x-auth-scopes'), 'read write');
        assert.equal(res.headers.get('x-auth-audience'), 'orders');
        assert.equal(res.headers.get('x-auth-issuer'), TEST_ISSUER);
        assert.match(res.headers.get('x-auth-token-id') ?? '', /^[A-Za-z0-9_-]{22}$/);
        assert.equal(res.headers.get('cache-control'), 'no-store');
      }
      assert.equal(await outcome('valid'), validBefore + 4, 'each answer is counted with Verify and Check');
      assert.equal((await fetch(`${base}/authzfoo`, { headers: { authorization: `Bearer ${token}` } })).status, 404, 'only /authz and below');
    });

    it('answers a missing token with a bare Bearer challenge (RFC 6750 §3.1)', async () => {
      const res = await fetch(`${base}/authz`);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.equal(res.headers.get('x-auth-subject'), null);
      assert.equal(((await res.json()) as { reason: string }).reason, 'MISSING_TOKEN');
    });

    it('answers an invalid, wrong-audience or revoked token with 401 invalid_token and the reason', async () => {
      const garbage = await fetch(`${base}/authz`, { headers: { authorization: 'Bearer not.a.token' } });
      assert.equal(garbage.status, 401);
      assert.equal(garbage.headers.get('www-authenticate'), 'Bearer error="invalid_token", error_description="MALFORMED"');

      const billing = await issue(['read'], ['billing']);
      const wrongAud = await fetch(`${base}/authz`, { headers: { authorization: `Bearer ${billing}` } });
      assert.equal(wrongAud.status, 401, 'the sidecar default audience applies');
      assert.match(wrongAud.headers.get('www-authenticate') ?? '', /WRONG_AUDIENCE/);
      const named = await fetch(`${base}/authz?audience=billing`, { headers: { authorization: `Bearer ${billing}` } });
      assert.equal(named.status, 200, 'the audience parameter replaces the default');

      const token = await issue();
      const { sequence } = await ta.client.revoke({ target: { $case: 'token', token } });
      await eventually(() => sidecar.verifier.status().revocation.appliedSeq >= sequence, 5000);
      const revoked = await fetch(`${base}/authz`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(revoked.status, 401);
      assert.equal(revoked.headers.get('www-authenticate'), 'Bearer error="invalid_token", error_description="REVOKED"');
    });

    it('answers a missing scope with 403 insufficient_scope naming the scopes required', async () => {
      const token = await issue(['read']);
      const res = await fetch(`${base}/authz?required_scopes=read%20admin`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer error="insufficient_scope", error_description="MISSING_SCOPE", scope="read admin"');
    });

    it('refuses a proxy configuration naming several audiences with 400, not a verdict', async () => {
      const token = await issue();
      const res = await fetch(`${base}/authz?audience=orders,billing`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 400);
      assert.match(await res.text(), /more than one audience/);
    });
  });

  for (const which of ['nginx', 'caddy']) {
    describe(`behind ${which}`, () => {
      const gw = () => gateways.find((g) => g.name === which)!;

      it('passes an allowed request with the claim headers, replacing any the client sent', async () => {
        const token = await issue();
        const before = upstream.seen.length;
        const res = await fetch(`${gw().url}/orders/42?x=1`, { headers: { authorization: `Bearer ${token}`, 'x-auth-subject': 'mallory', 'x-auth-scopes': 'admin' } });
        assert.equal(res.status, 200, await res.clone().text());
        const seen = (await res.json()) as Record<string, string>;
        assert.equal(upstream.seen.length, before + 1);
        assert.equal(seen['x-auth-subject'], 'frieda', 'the client-supplied x-auth-subject never reaches the upstream');
        assert.equal(seen['x-auth-scopes'], 'read');
        assert.equal(seen['x-auth-audience'], 'orders');
      });

      it('denies without a token (401, Bearer challenge) and never reaches the upstream', async () => {
        const before = upstream.seen.length;
        const res = await fetch(`${gw().url}/orders/42`, { headers: { 'x-auth-subject': 'mallory' } });
        assert.equal(res.status, 401);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
        assert.equal(upstream.seen.length, before);
      });

      it('denies a token without the required scope with 403', async () => {
        const token = await issue(['write']);
        const before = upstream.seen.length;
        const res = await fetch(`${gw().url}/orders/42`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 403);
        // nginx passes the subrequest's WWW-Authenticate on a 401 only; Caddy passes the whole answer.
        if (which === 'caddy') assert.match(res.headers.get('www-authenticate') ?? '', /insufficient_scope/);
        assert.equal(upstream.seen.length, before);
      });

      it('allows a token, then denies it once revoked', async () => {
        const token = await issue();
        assert.equal((await fetch(`${gw().url}/a`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
        const { sequence } = await ta.client.revoke({ target: { $case: 'token', token } });
        await eventually(() => sidecar.verifier.status().revocation.appliedSeq >= sequence, 5000);
        const before = upstream.seen.length;
        const res = await fetch(`${gw().url}/a`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, 401);
        assert.match(res.headers.get('www-authenticate') ?? '', /REVOKED/);
        assert.equal(upstream.seen.length, before);
      });
    });
  }

  describe('while the verifier is stale (fail-closed)', () => {
    it('answers 503 with Retry-After, directly and through Caddy; nginx turns it into 500', async () => {
      const token = await issue();
      await redis.kill();
      await eventually(() => sidecar.verifier.status().revocation.stale, 10_000, 'state goes stale');
      const direct = await fetch(`${base}/authz`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(direct.status, 503);
      assert.equal(direct.headers.get('retry-after'), '1');
      assert.equal(((await direct.json()) as { reason: string }).reason, 'STALE');
      const caddy = await fetch(`${gateways.find((g) => g.name === 'caddy')!.url}/a`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(caddy.status, 503);
      assert.equal(caddy.headers.get('retry-after'), '1');
      // nginx's auth_request allows only 2xx, 401 and 403 from the subrequest; anything else is a 500.
      assert.equal((await fetch(`${gateways.find((g) => g.name === 'nginx')!.url}/a`, { headers: { authorization: `Bearer ${token}` } })).status, 500);
    });
  });
});
