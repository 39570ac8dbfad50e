import assert from 'node:assert/strict';
import { credentials, Metadata } from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { VerifyFailureReason } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { AuthorizationClient, CheckRequest, type CheckResponse } from '../../src/gen/envoy/service/auth/v3/external_auth.js';
import { createVerifier, createRemoteKeyResolver, type RemoteKeyResolver, type Verifier } from '../../src/verifier/index.js';
import { createRedisRevocationSource } from '../../src/store/redis-revocation-source.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../helpers/authority.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { eventually } from '../helpers/eventually.js';
import { startSidecarProcess, type SidecarProcess } from '../helpers/sidecar.js';

const REVOKED = VerifyFailureReason.VERIFY_FAILURE_REASON_REVOKED;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

describe('sidecars and an embedded verifier, fed by Redis (real processes)', function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let ta: TestAuthority;
  let sidecars: SidecarProcess[] = [];
  let local: Verifier;
  let localKeys: RemoteKeyResolver | undefined;
  let localSource: ReturnType<typeof createRedisRevocationSource>;

  before(async () => {
    redis = await startRedis();
    ta = await startTestAuthority({ TA_REDIS_URL: redis.url, TA_HEARTBEAT_INTERVAL: '200ms' });
    sidecars = await Promise.all(
      ['sc-a', 'sc-b', 'sc-c'].map((instanceId) => startSidecarProcess({ authorityHttpPort: ta.running.httpPort, redisUrl: redis.url, instanceId })),
    );
    localSource = createRedisRevocationSource({ url: redis.url });
    local = createVerifier({ issuer: TEST_ISSUER, keys: (localKeys = createRemoteKeyResolver({ jwksUrl: `${ta.httpBase}/.well-known/jwks.json` })), revocations: localSource });
    await local.start();
  });
  after(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    await local?.stop();
    localKeys?.stop();
    await localSource?.close();
    await ta?.close();
    await redis?.stop();
  });

  it('a token revoked at the authority is rejected by three sidecars and an in-process verifier', async () => {
    const issued = await ta.client.issue({ subject: 'ivy', audience: ['orders'], scopes: ['read'] });
    for (const s of sidecars) assert.equal((await s.client.verify({ token: issued.accessToken })).valid, true, `${s.instanceId} accepts it first`);
    assert.equal((await local.verify(issued.accessToken)).valid, true);
    const { sequence } = await ta.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
    // GetPropagation waits until every sidecar has reported the sequence.
    const prop = await ta.client.getPropagation({ sequence, minVerifiers: 3, waitMs: 5000 });
    assert.ok(prop.appliedCount >= 3, `applied by ${prop.appliedCount}`);
    assert.deepEqual(prop.verifiers.filter((v) => v.appliedSequence >= sequence).map((v) => v.instanceId).sort(), ['sc-a', 'sc-b', 'sc-c']);
    for (const s of sidecars) assert.equal((await s.client.verify({ token: issued.accessToken })).reason, REVOKED, `${s.instanceId} rejects it`);
    await eventually(() => local.status().revocation.appliedSeq >= sequence, 5000, 'local verifier applied the sequence');
    const r = await local.verify(issued.accessToken);
    assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED');
  });

  it('a cached token is still rejected once revoked (the cache never skips the revocation check)', async () => {
    const issued = await ta.client.issue({ subject: 'jack', audience: ['orders'] });
    for (let i = 0; i < 3; i++) assert.equal((await local.verify(issued.accessToken)).valid, true);
    const hitsBefore = local.status().cache.hits;
    const { sequence } = await ta.client.revoke({ target: { $case: 'sessionId', sessionId: issued.sessionId } });
    await eventually(() => local.status().revocation.appliedSeq >= sequence, 5000);
    const r = await local.verify(issued.accessToken);
    assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED');
    assert.ok(local.status().cache.hits > hitsBefore, 'the rejection came from a cache hit');
  });

  it('propagation over 200 revocations reaches the in-process verifier (figures reported, not asserted)', async () => {
    const delays: number[] = [];
    const applied = new Map<number, number>();
    const poll = setInterval(() => undefined, 1000);
    try {
      for (let i = 0; i < 200; i++) {
        const ev = await ta.running.store.revoke({ kind: 'jti', id: `prop-${i}-${Date.now()}`, until: Date.now() + 60_000 });
        const t0 = performance.now();
        while (local.status().revocation.appliedSeq < ev.seq) await new Promise((r) => setImmediate(r));
        applied.set(ev.seq, performance.now() - t0);
        delays.push(performance.now() - t0);
      }
    } finally {
      clearInterval(poll);
    }
    const sorted = [...delays].sort((a, b) => a - b);
    assert.equal(applied.size, 200, 'every revocation was applied');
    console.log(`      propagation to an in-process verifier over 200 revocations: p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms`);
  });

  it('catches up from the log when its pub/sub connection is killed while revocations happen', async () => {
    const admin = new Redis(redis.url);
    try {
      const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => ta.client.issue({ subject: `kill-${i}`, audience: ['orders'] })));
      let last = 0;
      for (let i = 0; i < tokens.length; i++) {
        if (i % 5 === 0) await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
        last = (await ta.client.revoke({ target: { $case: 'token', token: tokens[i]!.accessToken } })).sequence;
      }
      await eventually(() => local.status().revocation.appliedSeq >= last, 10_000, 'local verifier caught up');
      for (const s of sidecars) await eventually(async () => (await s.status()).revocation.appliedSeq >= last, 10_000, `${s.instanceId} caught up`);
      for (const t of tokens) {
        const r = await local.verify(t.accessToken);
        assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED', 'nothing missed');
        assert.equal((await sidecars[0]!.client.verify({ token: t.accessToken })).reason, REVOKED);
      }
      assert.ok(local.status().revocation.resyncs > 1, 'it resynced from the log');
    } finally {
      admin.disconnect();
    }
  });

  it('answers Envoy ext_authz Check: allow with claim headers, deny with 401/403 and the reason', async () => {
    const s = sidecars[0]!;
    const client = new AuthorizationClient(`127.0.0.1:${s.grpcPort}`, credentials.createInsecure());
    const check = (headers: Record<string, string>, ext: Record<string, string> = {}) =>
      new Promise<CheckResponse>((resolve, reject) =>
        client.check(CheckRequest.fromPartial({ attributes: { request: { http: { headers, path: '/orders', method: 'GET' } }, contextExtensions: ext } }), new Metadata(), (e, r) => (e ? reject(e) : resolve(r))),
      );
    try {
      const issued = await ta.client.issue({ subject: 'kim', audience: ['orders'], scopes: ['read'] });
      const ok = await check({ authorization: `Bearer ${issued.accessToken}`, 'x-auth-subject': 'spoofed' }, { audience: 'orders', required_scopes: 'read' });
      assert.equal(ok.status?.code, 0);
      assert.equal(ok.httpResponse?.$case, 'okResponse');
      const headers = ok.httpResponse?.$case === 'okResponse' ? ok.httpResponse.okResponse.headers : [];
      const sub = headers.find((h) => h.header?.key === 'x-auth-subject');
      assert.equal(sub?.header?.value, 'kim');
      assert.equal(sub?.appendAction, 2, 'overwrites any client-sent value');
      const missing = await check({});
      assert.equal(missing.httpResponse?.$case === 'deniedResponse' && missing.httpResponse.deniedResponse.status?.code, 401);
      const scope = await check({ authorization: `Bearer ${issued.accessToken}` }, { required_scopes: 'admin' });
      assert.equal(scope.httpResponse?.$case === 'deniedResponse' && scope.httpResponse.deniedResponse.status?.code, 403);
      await ta.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
      await eventually(async () => {
        const r = await check({ authorization: `Bearer ${issued.accessToken}` });
        return r.httpResponse?.$case === 'deniedResponse' && r.httpResponse.deniedResponse.status?.code === 401 && r.httpResponse.deniedResponse.body.includes('REVOKED');
      }, 5000, 'revoked token denied with 401 and the reason');
    } finally {
      client.close();
    }
  });

  it('picks up a key rotation at the authority without a restart', async () => {
    // Two rotations: the new active key was generated by the first, after every sidecar fetched
    // the JWKS, so the sidecars must refetch on the unknown kid.
    await ta.running.keys.rotate();
    await ta.running.keys.rotate();
    const issued = await ta.client.issue({ subject: 'lee', audience: ['orders'] });
    for (const s of sidecars) assert.equal((await s.client.verify({ token: issued.accessToken })).valid, true, `${s.instanceId} knows the new active key`);
    const r = await local.verify(issued.accessToken);
    assert.equal(r.valid ? 'valid' : `${r.reason}: ${r.detail}`, 'valid');
  });

  it('a sidecar started after 10 000 revocations loads them all', async () => {
    const victim = await ta.client.issue({ subject: 'mo', audience: ['orders'] });
    // 500 in flight at a time: 10 000 at once can outlast the 1 s command timeout on a loaded machine.
    for (let start = 0; start < 10_000; start += 500) {
      const batch: Array<Promise<unknown>> = [];
      for (let i = start; i < start + 500; i++) batch.push(ta.running.store.revoke({ kind: 'jti', id: `bulk-${i}`, until: Date.now() + 600_000 }));
      await Promise.all(batch);
    }
    const { sequence } = await ta.client.revoke({ target: { $case: 'token', token: victim.accessToken } });
    const late = await startSidecarProcess({ authorityHttpPort: ta.running.httpPort, redisUrl: redis.url, instanceId: 'sc-late' });
    try {
      const st = await late.status();
      assert.ok(st.revocation.appliedSeq >= sequence, `applied ${st.revocation.appliedSeq}, expected ≥ ${sequence}`);
      assert.ok(st.revocation.entries.jti >= 10_001, `holds ${st.revocation.entries.jti} jti entries`);
      assert.equal((await late.client.verify({ token: victim.accessToken })).reason, REVOKED);
    } finally {
      await late.stop();
    }
  });
});
