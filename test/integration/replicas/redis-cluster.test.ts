import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { VerifyFailureReason } from '../../../src/gen/tokenauthority/v1/token_authority.js';
import { keySlot } from '../../../src/store/redis-connection.js';
import { createRedisRevocationSource, type RedisRevocationSource } from '../../../src/store/redis-revocation-source.js';
import { RedisTokenStore } from '../../../src/store/redis-token-store.js';
import { createVerifier, createRemoteKeyResolver, type RemoteKeyResolver, type Verifier } from '../../../src/verifier/index.js';
import { runTokenStoreContract } from '../../contract/token-store.contract.js';
import { FeedCollector } from '../../contract/feed-collector.js';
import { startTestAuthority, TEST_ISSUER, type TestAuthority } from '../../helpers/authority.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedisCluster, type RedisCluster } from '../../helpers/redis-cluster.js';
import { startSidecarProcess, type SidecarProcess } from '../../helpers/sidecar.js';

const HOUR = 3_600_000;
const REVOKED = VerifyFailureReason.VERIFY_FAILURE_REASON_REVOKED;

/** A plain connection to one cluster node (for inspection and slot surgery). */
function node(port: number): Redis {
  const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  return r;
}

async function shardChannels(port: number): Promise<string[]> {
  const r = node(port);
  try {
    return (await r.call('PUBSUB', 'SHARDCHANNELS')) as string[];
  } finally {
    r.disconnect();
  }
}

async function plainChannels(port: number): Promise<string[]> {
  const r = node(port);
  try {
    return (await r.call('PUBSUB', 'CHANNELS')) as string[];
  } finally {
    r.disconnect();
  }
}

/** Moves one slot, with its keys, from one master to another (what `redis-cli --cluster reshard` does). */
async function migrateSlot(cluster: RedisCluster, slot: number, fromPort: number, toPort: number): Promise<void> {
  const from = node(fromPort);
  const to = node(toPort);
  const others = cluster.servers.filter((s) => s.port !== fromPort && s.port !== toPort).map((s) => node(s.port));
  try {
    const fromId = (await from.call('CLUSTER', 'MYID')) as string;
    const toId = (await to.call('CLUSTER', 'MYID')) as string;
    await to.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
    await from.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
    for (;;) {
      const keys = (await from.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
      if (keys.length === 0) break;
      await from.call('MIGRATE', '127.0.0.1', toPort, '', 0, 5000, 'KEYS', ...keys);
    }
    await to.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    await from.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
    for (const o of others) await o.call('CLUSTER', 'SETSLOT', slot, 'NODE', toId);
  } finally {
    for (const c of [from, to, ...others]) c.disconnect();
  }
}

describe('Redis Cluster (3 masters on loopback, real redis-server processes)', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let n = 0;

  before(async () => {
    cluster = await startRedisCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  runTokenStoreContract('RedisTokenStore on a Redis Cluster', async (options) => {
    const store = new RedisTokenStore({
      url: cluster.url,
      keyPrefix: `cl${++n}:`,
      retentionMs: options?.retentionMs ?? HOUR,
      commandTimeoutMs: 2000,
      // This cluster has no replicas (test/fault/failover-cluster.test.ts has them).
      waitReplicas: 0,
    });
    return { store, clock: undefined, cleanup: () => store.close() };
  });

  it('keeps every key in the {ta} slot and publishes the feed with sharded pub/sub on that slot\'s owner', async () => {
    const store = new RedisTokenStore({ url: cluster.url, keyPrefix: 'shard:', retentionMs: HOUR, waitReplicas: 0 });
    const feed = new FeedCollector();
    try {
      const subscription = await store.subscribe(feed);
      const owner = await cluster.ownerOf('shard:{ta}:feed');
      assert.equal(owner, await cluster.ownerOf('{ta}'));
      assert.ok((await shardChannels(owner)).includes('shard:{ta}:feed'), 'SSUBSCRIBEd on the owner');
      for (const s of cluster.servers) {
        assert.deepEqual(await plainChannels(s.port), [], `no plain SUBSCRIBE on ${s.port}`);
        if (s.port !== owner) assert.deepEqual(await shardChannels(s.port), [], `nothing on ${s.port}, which does not own the slot`);
      }
      const event = await store.revoke({ kind: 'jti', id: 'sharded', until: Date.now() + HOUR });
      await feed.until('the revocation arrives over sharded pub/sub', () => feed.revocations.some((e) => e.seq === event.seq));
      assert.equal(feed.revocations.at(-1)?.id, 'sharded');
      const ownerNode = node(owner);
      try {
        const keys = (await ownerNode.call('KEYS', 'shard:*')) as string[];
        assert.ok(keys.length >= 2, `keys on the owner: ${keys.join(', ')}`);
        for (const k of keys) assert.equal(keySlot(k), keySlot('{ta}'));
      } finally {
        ownerNode.disconnect();
      }
      await subscription.close();
    } finally {
      await store.close();
    }
  });

  describe('an authority and verifiers on the Cluster (keys in the Cluster too)', () => {
    let ta: TestAuthority;
    let source: RedisRevocationSource;
    let verifier: Verifier;
    let verifierKeys: RemoteKeyResolver | undefined;
    let sidecar: SidecarProcess;

    before(async () => {
      ta = await startTestAuthority({ TA_REDIS_URL: cluster.url, TA_REDIS_WAIT_REPLICAS: '0', TA_KEY_STORE: 'redis', TA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('hex') });
      source = createRedisRevocationSource({ url: cluster.url });
      verifier = createVerifier({ issuer: TEST_ISSUER, keys: (verifierKeys = createRemoteKeyResolver({ jwksUrl: `${ta.httpBase}/.well-known/jwks.json` })), revocations: source });
      await verifier.start();
      sidecar = await startSidecarProcess({ authorityHttpPort: ta.running.httpPort, redisUrl: cluster.url, instanceId: 'sc-cluster' });
    });
    after(async () => {
      await sidecar?.stop();
      await verifier?.stop();
      verifierKeys?.stop();
      await source?.close();
      await ta?.close();
    });

    it('revoke at the authority → REVOKED at an in-process verifier and at a sidecar process', async () => {
      const issued = await ta.client.issue({ subject: 'cluster-user', audience: ['orders'] });
      assert.equal((await verifier.verify(issued.accessToken)).valid, true);
      assert.equal((await sidecar.client.verify({ token: issued.accessToken })).valid, true);
      const { sequence } = await ta.client.revoke({ target: { $case: 'token', token: issued.accessToken } });
      const propagation = await ta.client.getPropagation({ sequence, minVerifiers: 1, waitMs: 5000 });
      assert.ok(propagation.verifiers.some((v) => v.instanceId === 'sc-cluster' && v.appliedSequence >= sequence));
      assert.equal((await sidecar.client.verify({ token: issued.accessToken })).reason, REVOKED);
      await eventually(() => verifier.status().revocation.appliedSeq >= sequence, 5000, 'the in-process verifier applied it');
      const r = await verifier.verify(issued.accessToken);
      assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED');
    });

    it('keeps revoking and verifying after the {ta} slot migrates to another master', async () => {
      const slot = keySlot('{ta}');
      const from = await cluster.ownerOf('{ta}');
      const to = cluster.servers.find((s) => s.port !== from)!.port;
      const before = await ta.client.issue({ subject: 'before-move', audience: ['orders'] });
      const resyncs = verifier.status().revocation.resyncs;

      await migrateSlot(cluster, slot, from, to);
      assert.equal(await cluster.ownerOf('{ta}'), to);

      // Redis unsubscribes shard channels whose slot left the node; the subscribers re-resolve the
      // owner, subscribe there and re-read the log.
      await eventually(async () => (await shardChannels(to)).includes('ta:v1:{ta}:feed'), 10_000, 'the feed is subscribed on the new owner');
      assert.ok(!(await shardChannels(from)).includes('ta:v1:{ta}:feed'), 'and no longer on the old one');

      const after = await ta.client.issue({ subject: 'after-move', audience: ['orders'] });
      assert.equal((await ta.client.verify({ token: before.accessToken })).valid, true, 'sessions and keys moved with the slot');
      assert.equal((await ta.client.refresh({ refreshToken: before.refreshToken })).sessionId, before.sessionId);
      const { sequence } = await ta.client.revoke({ target: { $case: 'sessionId', sessionId: after.sessionId } });
      await eventually(() => verifier.status().revocation.appliedSeq >= sequence, 10_000, 'the in-process verifier applied the revocation');
      const r = await verifier.verify(after.accessToken);
      assert.equal(r.valid ? 'valid' : r.reason, 'REVOKED');
      assert.ok(verifier.status().revocation.resyncs > resyncs, 'the verifier re-read the log after the move');
      await eventually(async () => (await sidecar.client.verify({ token: after.accessToken })).reason === REVOKED, 10_000, 'the sidecar rejects it');
    });
  });
});
