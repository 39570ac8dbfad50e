import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { IssueResponse } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { createRedisRevocationSource } from '../../../src/store/redis-revocation-source.js';
import { createVerifier, createRemoteKeyResolver, type Verifier } from '../../../src/verifier/index.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { eventually } from '../../helpers/eventually.js';
import { recordingLogger } from '../../helpers/recording-logger.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

/** Make `target` a copy of `source`'s dataset (full resync as a replica), then a writable primary again. */
async function copyDataset(target: Redis, sourcePort: number, seqKey: string, source: Redis): Promise<void> {
  await target.call('REPLICAOF', '127.0.0.1', String(sourcePort));
  const want = await source.get(seqKey);
  await eventually(async () => {
    const info = String(await target.call('INFO', 'replication'));
    return /master_link_status:up/.test(info) && (await target.get(seqKey).catch(() => null)) === want;
  }, 10_000, 'replica in sync');
  await target.call('REPLICAOF', 'NO', 'ONE');
}

/**
 * Issue 13, "fresh must mean complete": the Redis primary loses acknowledged revocations (here it
 * is turned back into an older copy of itself — what a failover to a lagging replica does), then
 * hands their sequence numbers out again. The authority still holds them; it must append them
 * again, so that a verifier started afterwards rejects every revoked token, and a revoked
 * session's refresh token stays dead.
 */
describe('lost writes on a real Redis: the authority re-appends what the log lost', function () {
  this.timeout(60_000);
  let primary: RedisServer;
  let snapshot: RedisServer;
  let authority: TestAuthority;
  let a: Redis;
  let b: Redis;
  const logger = recordingLogger();
  const extra: Array<{ stop(): Promise<void> | void }> = [];

  before(async () => {
    [primary, snapshot] = await Promise.all([startRedis(), startRedis()]);
    a = new Redis(primary.url);
    b = new Redis(snapshot.url);
    authority = await startTestAuthority({ TA_REDIS_URL: primary.url, TA_HEARTBEAT_INTERVAL: '100ms' }, {}, logger);
  });

  after(async () => {
    for (const e of extra.reverse()) await e.stop();
    await authority?.close();
    a?.disconnect();
    b?.disconnect();
    await Promise.all([primary?.stop(), snapshot?.stop()]);
  });

  const verifierOn = async (url: string): Promise<Verifier> => {
    const source = createRedisRevocationSource({ url });
    const keys = createRemoteKeyResolver({ jwksUrl: `${authority.httpBase}/.well-known/jwks.json` });
    const v = createVerifier({ issuer: TEST_ISSUER, keys, revocations: source });
    // Stopped in reverse: the verifier, then what it was given (it closes none of them).
    extra.push({ stop: () => source.close() }, { stop: async () => keys.stop() }, { stop: () => v.stop() });
    await v.start();
    return v;
  };

  it('a verifier started after the loss rejects every revoked token; a lost session revocation stays in force', async () => {
    const seqKey = 'ta:v1:{ta}:seq';
    const issue = (i: number) => authority.client.issue({ subject: `lost-${i}`, audience: ['orders'] });
    const tokens: IssueResponse[] = await Promise.all(Array.from({ length: 60 }, (_, i) => issue(i)));
    const revokeToken = (t: IssueResponse) => authority.client.revoke({ target: { $case: 'token', token: t.accessToken } });

    // Kept by the "replica": revoked before it took its copy.
    for (const t of tokens.slice(0, 10)) await revokeToken(t);
    await copyDataset(b, primary.port, seqKey, a);

    // Acknowledged by the primary after the copy: these are lost. A jti, a session (logout by
    // refresh token) and a subject (sign out everywhere).
    for (const t of tokens.slice(10, 40)) await revokeToken(t);
    const loggedOut = tokens[40]!;
    await authority.client.revoke({ target: { $case: 'token', token: loggedOut.refreshToken } });
    await authority.client.revoke({ target: { $case: 'subject', subject: 'lost-41' } });
    const headBeforeLoss = Number(await a.get(seqKey));
    // The authority's verifier has read them back from the log (a heartbeat-driven read).
    await logger.waitFor((l) => l.msg === 'revocation state caught up from the log' && l.fields.to === headBeforeLoss && l.fields.head === headBeforeLoss, 10_000);

    // The loss: the primary becomes the older copy; then new revocations reuse the lost numbers.
    await copyDataset(a, snapshot.port, seqKey, b);
    assert.equal(Number(await a.get(seqKey)), 10, 'the primary went back to seq 10');
    for (const t of tokens.slice(42, 60)) await revokeToken(t);
    assert.ok(Number(await a.get(seqKey)) >= headBeforeLoss - 20, 'lost numbers handed out again');

    const done = await logger.waitFor((l) => l.msg === 'revocations the log had lost were appended again', 15_000);
    const restored = (await a.xrange('ta:v1:{ta}:log', '-', '+')).filter(([, f]) => String(f[f.indexOf('e') + 1]).includes('"reason":"restored"')).length;
    console.log(`      lost: 32 revocations (30 jti, 1 sid, 1 sub); handed over ${String(done.fields.held)}, re-appended ${restored}; head now ${await a.get(seqKey)}`);
    assert.equal(restored, 32, 'exactly the lost ones are appended again');

    const fresh = await verifierOn(primary.url);
    const revoked = tokens; // every one: 0-39 and 42-59 by token, 40 by its session, 41 by its subject
    const accepted: string[] = [];
    for (const t of revoked) {
      const r = await fresh.verify(t.accessToken);
      if (r.valid || r.reason !== 'REVOKED') accepted.push(`lost-${tokens.indexOf(t)}: ${r.valid ? 'valid' : r.reason}`);
    }
    assert.deepEqual(accepted, [], 'a verifier started after the loss rejects every revoked token');
    for (const t of revoked) {
      const r = await authority.client.verify({ token: t.accessToken });
      assert.equal(r.valid, false, `authority Verify rejects lost-${tokens.indexOf(t)}`);
    }
    // The logged-out session's refresh token does not come back to life.
    await assert.rejects(authority.client.refresh({ refreshToken: loggedOut.refreshToken }), /revoked/i);
  });
});
