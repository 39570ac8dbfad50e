import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createRedisRevocationSource } from '../../src/store/redis-revocation-source.js';
import { createVerifier, createRemoteKeyResolver, type RemoteKeyResolver, type Verifier } from '../../src/verifier/index.js';
import type { IssueResponse } from '../../src/gen/tokenauthority/v1/token_authority.js';
import { TEST_ISSUER } from '../helpers/authority.js';
import { eventually } from '../helpers/eventually.js';
import { mapConcurrent, outcomeOf, outcomeOfResult } from '../helpers/load.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { startSidecarProcess, type SidecarProcess } from '../helpers/sidecar.js';
import { directStore, readWholeLog, sidecarResyncs, sleep, startAuthorityProcess, type AuthorityProcess, type SeqProbe } from './fault-fixtures.js';
import { seededSuite } from '../helpers/seeded-random.js';

const REVOCATIONS = 500;
const CUT_EVERY_MS = 50;

describe('fault: verifier subscriber connections cut repeatedly while revocations happen', function () {
  seededSuite('fault/feed-cut'); // no random choices here yet: the seed is printed all the same
  this.timeout(90_000);
  let redis: RedisServer;
  let keyDir: string;
  let authority: AuthorityProcess;
  let sidecar: SidecarProcess;
  let localSource: ReturnType<typeof createRedisRevocationSource>;
  let local: Verifier;
  let localKeys: RemoteKeyResolver | undefined;

  before(async () => {
    redis = await startRedis();
    keyDir = await mkdtemp(join(tmpdir(), 'ta-fault-'));
    authority = await startAuthorityProcess({ keyDir, redisUrl: redis.url, env: { TA_HEARTBEAT_INTERVAL: '100ms' } });
    sidecar = await startSidecarProcess({ authorityHttpPort: authority.httpPort, redisUrl: redis.url, instanceId: 'feed-cut-sidecar' });
    localSource = createRedisRevocationSource({ url: redis.url });
    local = createVerifier({ issuer: TEST_ISSUER, keys: (localKeys = createRemoteKeyResolver({ jwksUrl: `${authority.httpBase}/.well-known/jwks.json` })), revocations: localSource });
    await local.start();
  });

  after(async () => {
    await sidecar?.stop();
    await local?.stop();
    localKeys?.stop();
    await localSource?.close();
    await authority?.stop();
    await redis?.stop();
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it(`misses no sequence: CLIENT KILL TYPE pubsub every ${CUT_EVERY_MS} ms during ${REVOCATIONS} revocations`, async () => {
    const tokens: IssueResponse[] = await mapConcurrent(Array.from({ length: REVOCATIONS }, (_, i) => i), 8, (i) =>
      authority.client.issue({ subject: `cut-${i % 50}`, audience: ['orders'] }),
    );
    const resyncsBefore = { library: local.status().revocation.resyncs, sidecar: await sidecarResyncs(sidecar) };

    const admin = new Redis(redis.url);
    let cutting = true;
    let cuts = 0;
    let clientsKilled = 0;
    const cutter = (async () => {
      while (cutting) {
        clientsKilled += Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
        cuts++;
        await sleep(CUT_EVERY_MS);
      }
    })();
    const sequences: number[] = [];
    const started = performance.now();
    try {
      // Half by access token (jti), half by refresh token (the session).
      await mapConcurrent(tokens, 4, async (t, i) => {
        const res = await authority.client.revoke({ target: { $case: 'token', token: i % 2 === 0 ? t.accessToken : t.refreshToken } });
        sequences.push(res.sequence);
      });
    } finally {
      cutting = false;
      await cutter;
      admin.disconnect();
    }
    const revokingMs = Math.round(performance.now() - started);

    const reader = directStore(redis.url);
    let headSeq: number;
    try {
      const log = await readWholeLog(reader);
      headSeq = log.headSeq;
      assert.equal(sequences.length, REVOCATIONS);
      assert.equal(new Set(sequences).size, REVOCATIONS, 'every revocation got its own sequence');
      for (const s of sequences) assert.ok(log.bySeq.has(s), `sequence ${s} is in the log`);
    } finally {
      await reader.close();
    }

    const probes: SeqProbe[] = [
      { name: 'authority', appliedSeq: () => authority.appliedSeq() },
      { name: 'sidecar', appliedSeq: async () => (await sidecar.status()).revocation.appliedSeq },
      { name: 'library', appliedSeq: () => local.status().revocation.appliedSeq },
    ];
    for (const p of probes) await eventually(async () => (await p.appliedSeq()) >= headSeq, 10_000, `${p.name} reaches the head ${headSeq}`);
    // Nothing was revoked since: the applied sequence is exactly the head, not past it.
    for (const p of probes) assert.equal(await p.appliedSeq(), headSeq, `${p.name}: appliedSeq == head`);

    const notRevoked: string[] = [];
    await mapConcurrent(tokens, 8, async (t, i) => {
      const answers = {
        authority: outcomeOf(await authority.client.verify({ token: t.accessToken })),
        sidecar: outcomeOf(await sidecar.client.verify({ token: t.accessToken })),
        library: outcomeOfResult(await local.verify(t.accessToken)),
      };
      for (const [where, outcome] of Object.entries(answers)) if (outcome !== 'REVOKED') notRevoked.push(`token ${i} at ${where}: ${outcome}`);
    });
    assert.deepEqual(notRevoked, [], 'every revoked token is rejected everywhere');

    const resyncs = {
      library: local.status().revocation.resyncs - resyncsBefore.library,
      sidecar: (await sidecarResyncs(sidecar)) - resyncsBefore.sidecar,
    };
    console.log(`      ${REVOCATIONS} revocations in ${revokingMs} ms; ${cuts} CLIENT KILL rounds killed ${clientsKilled} subscriber connections; catch-ups from the log: ${JSON.stringify(resyncs)}; head ${headSeq}, missed sequences: 0`);
    assert.ok(clientsKilled >= 3, 'subscriber connections were actually cut');
    assert.ok(resyncs.library >= 1 && resyncs.sidecar >= 1, 'the verifiers caught up from the log');
  });
});
