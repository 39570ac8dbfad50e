import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { TEST_ISSUER } from '../../helpers/authority.js';
import { startAuthorityProcess, type AuthorityProcess } from '../../helpers/authority-process.js';
import { startSidecarProcess, type SidecarProcess } from '../../helpers/sidecar.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { eventually } from '../../helpers/eventually.js';
import { expectStatus } from '../../helpers/grpc-client.js';
import {
  composeWorkloads,
  dashboardExpressions,
  dockerHealthcheck,
  exposedMetricNames,
  kubernetesWorkloads,
  promqlMetrics,
  ruleExpressions,
} from '../../helpers/deploy-artifacts.js';

/**
 * deploy/ against running processes: a real authority (`token-authority serve`, Redis) and a real
 * sidecar. Every metric the Grafana dashboard and the alert rules query is on their /metrics, every
 * probe path in the manifests answers 200, and the Dockerfile's HEALTHCHECK command passes.
 */

/** Series Prometheus makes itself, not scraped from a target. */
const PROMETHEUS_OWN = new Set(['up']);
const JOBS: Record<string, 'authority' | 'sidecar'> = { 'token-authority': 'authority', 'token-authority-sidecar': 'sidecar' };

describe('deploy/ against a running authority and sidecar', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let keyDir: string;
  let authority: AuthorityProcess;
  let sidecar: SidecarProcess;
  const scraped: Record<'authority' | 'sidecar', Set<string>> = { authority: new Set(), sidecar: new Set() };
  const base = () => ({ authority: authority.httpBase, sidecar: `http://127.0.0.1:${sidecar.httpPort}` });
  const metricsText = async (url: string) => (await fetch(`${url}/metrics`)).text();

  before(async () => {
    redis = await startRedis();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-deploy-keys-'));
    authority = await startAuthorityProcess('deploy-authority', { TA_REDIS_URL: redis.url, TA_ISSUER: TEST_ISSUER, TA_KEY_DIR: keyDir, TA_HEARTBEAT_INTERVAL: '200ms', TA_RATE_LIMIT_ISSUE: '1/h:2' });
    sidecar = await startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: redis.url, instanceId: 'deploy-sidecar', env: { TA_AUDIENCE: 'orders' } });

    // Traffic that makes every labelled series appear: Issue, Verify at both, Refresh, a reuse, forward-auth.
    const issued = await authority.client.issue({ subject: 'dash', audience: ['orders'], scopes: ['orders:read'] });
    assert.equal((await authority.client.verify({ token: issued.accessToken })).valid, true);
    await eventually(async () => (await sidecar.client.verify({ token: issued.accessToken })).valid, 10_000, 'the sidecar accepts the token');
    const authz = await fetch(`${base().sidecar}/authz?audience=orders&required_scopes=orders:read`, { headers: { authorization: `Bearer ${issued.accessToken}` } });
    assert.equal(authz.status, 200);
    // Refresh, then present the spent refresh token again: reuse (its session is revoked).
    await authority.client.refresh({ refreshToken: issued.refreshToken });
    await expectStatus(authority.client.refresh({ refreshToken: issued.refreshToken }), status.UNAUTHENTICATED);
    // The sidecar's propagation receipt reaches the authority's gauge.
    await eventually(async () => /^ta_propagation_receipts 1$/m.test(await metricsText(authority.httpBase)), 10_000, 'the authority counts the sidecar\'s receipt');
    scraped.authority = exposedMetricNames(await metricsText(base().authority));
    scraped.sidecar = exposedMetricNames(await metricsText(base().sidecar));
  });

  after(async () => {
    await sidecar?.stop();
    await authority?.stop();
    await redis?.stop();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  function missing(exprs: Array<{ where: string; expr: string }>): string[] {
    const problems: string[] = [];
    for (const { where, expr } of exprs) {
      const names = promqlMetrics(expr);
      if (names.length === 0) problems.push(`${where}: no metric found in ${expr}`);
      for (const { name, job } of names) {
        if (PROMETHEUS_OWN.has(name)) continue;
        const role = job === undefined ? undefined : JOBS[job];
        if (job !== undefined && role === undefined) problems.push(`${where}: job="${job}" is neither token-authority nor token-authority-sidecar`);
        else if (role ? !scraped[role].has(name) : !scraped.authority.has(name) && !scraped.sidecar.has(name)) {
          problems.push(`${where}: ${name} is not on the ${role ?? 'authority\'s or the sidecar\'s'} /metrics`);
        }
      }
    }
    return problems;
  }

  it('every metric the Grafana dashboard queries is on a running authority\'s or sidecar\'s /metrics', () => {
    const exprs = dashboardExpressions();
    assert.ok(exprs.length >= 20, `the dashboard has its queries (${exprs.length})`);
    assert.deepEqual(missing(exprs), []);
  });

  it('every metric the alert rules use is on a running authority\'s or sidecar\'s /metrics', () => {
    assert.deepEqual(missing(ruleExpressions()), []);
  });

  it('every probe path in compose.yaml and the Kubernetes manifests answers 200 on the process it probes', async () => {
    const problems: string[] = [];
    let probes = 0;
    for (const w of [...composeWorkloads(), ...kubernetesWorkloads()]) {
      if (w.role !== 'authority' && w.role !== 'sidecar') continue;
      for (const p of w.probes) {
        probes++;
        const res = await fetch(`${base()[w.role]}${p.path}`);
        if (res.status !== 200) problems.push(`${w.file} ${w.where}: ${p.kind} ${p.path} answered ${res.status} on a running ${w.role}`);
      }
    }
    assert.ok(probes >= 5, `probes found (${probes})`);
    assert.deepEqual(problems, []);
  });

  it('the Dockerfile HEALTHCHECK command passes against a running authority and sidecar, and fails when nothing listens', () => {
    const hc = dockerHealthcheck()!;
    const run = (httpAddr: string | undefined) =>
      spawnSync(process.execPath, ['-e', hc.script], { env: { ...process.env, ...(httpAddr ? { TA_HTTP_ADDR: httpAddr } : {}) }, timeout: 10_000 }).status;
    assert.equal(run(`0.0.0.0:${authority.httpPort}`), 0, 'authority healthy');
    assert.equal(run(`0.0.0.0:${sidecar.httpPort}`), 0, 'sidecar healthy');
    assert.equal(run('127.0.0.1:1'), 1, 'nothing on the port: unhealthy');
  });

  it('the metrics added for the dashboard and alerts count their events', async () => {
    const value = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}"[\]]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    let a = await metricsText(base().authority);
    assert.equal(value(a, 'ta_refresh_reuse_detected_total'), 1, 'the one reuse is counted');
    const nextRotation = value(a, 'ta_signing_key_next_rotation_seconds');
    assert.ok(nextRotation > 7 * 86400 - 120 && nextRotation <= 7 * 86400, `next rotation in ~7 d (TA_KEY_ROTATION_INTERVAL default): ${nextRotation}`);
    assert.equal(value(a, 'ta_redis_connected'), 1);
    assert.equal(value(a, 'ta_redis_errors_total'), 0);
    assert.equal(value(a, 'ta_rate_limit_refusals_total{method="Issue"}'), 0, 'shown at 0 before any refusal');
    // TA_RATE_LIMIT_ISSUE=1/h:2: one Issue was made, the next passes, the third is refused.
    await authority.client.issue({ subject: 'dash2', audience: ['orders'] });
    await expectStatus(authority.client.issue({ subject: 'dash3', audience: ['orders'] }), status.RESOURCE_EXHAUSTED);
    assert.equal(value(await metricsText(base().authority), 'ta_rate_limit_refusals_total{method="Issue"}'), 1);
    const sc = await metricsText(base().sidecar);
    assert.ok(value(sc, 'ta_jwks_keys') >= 1, 'the sidecar holds the authority keys');
    assert.equal(value(sc, 'ta_jwks_fetch_failures_total'), 0);
    // Redis goes away: both processes say so.
    await redis.stop();
    await eventually(async () => {
      a = await metricsText(base().authority);
      return value(a, 'ta_redis_connected') === 0 && value(a, 'ta_redis_errors_total') > 0 && value(a, 'ta_propagation_receipts') === -1;
    }, 10_000, 'the authority reports Redis down, failed commands, and unreadable receipts');
    await eventually(async () => {
      const t = await metricsText(base().sidecar);
      return value(t, 'ta_redis_connected') === 0 && value(t, 'ta_redis_errors_total') > 0;
    }, 10_000, 'the sidecar reports Redis down and failed commands');
  });
});
