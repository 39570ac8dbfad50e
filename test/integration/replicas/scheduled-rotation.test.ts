import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generateSigningKey } from '../../../src/keys/key-generator.js';
import { type KeySetDocument } from '../../../src/keys/key-store.js';
import { parseKeyEncryptionKey } from '../../../src/keys/key-encryption-key.js';
import { KeySetCipher } from '../../../src/keys/key-set-cipher.js';
import { RedisKeyStore } from '../../../src/keys/redis-key-store.js';
import { RedisCommandClient } from '../../../src/store/redis-client.js';
import { parseRedisUrl } from '../../../src/store/redis-connection.js';
import { TEST_ISSUER } from '../../helpers/authority.js';
import { kidOf, startAuthorityProcess, type AuthorityProcess } from '../../helpers/authority-process.js';
import { eventually } from '../../helpers/eventually.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const HOUR = 3_600_000;

/**
 * Scheduled rotation across real processes. The 60 s minimum interval is too long to wait for, so
 * the shared key set is seeded with an active key activated two hours ago: every replica finds the
 * rotation overdue at its first maintenance tick (about a second after start) and tries to rotate.
 * The replicas start at once, so their ticks fall within a few hundred milliseconds of each other;
 * whichever way they interleave, the version compare-and-set in Redis must let exactly one rotate.
 * (The forced overlap of two rotations on one version is in redis-key-store.test.ts.)
 */
describe('scheduled key rotation with three authority processes on one Redis', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let store: RedisKeyStore;
  let replicas: AuthorityProcess[] = [];
  let seeded: KeySetDocument;

  before(async () => {
    redis = await startRedis();
    const kekText = randomBytes(32).toString('base64');
    store = new RedisKeyStore({
      connection: new RedisCommandClient(parseRedisUrl(redis.url), { lazyConnect: true, connectionName: 'test-keys', label: 'Redis key store', closedMessage: 'the Redis key store is closed' }),
      cipher: new KeySetCipher(parseKeyEncryptionKey(kekText)),
    });
    const now = Date.now();
    const [active, next] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('ES256')]);
    seeded = {
      version: 1,
      keys: [
        { ...active, state: 'active', createdAt: now - 3 * HOUR, activatedAt: now - 2 * HOUR },
        { ...next, state: 'next', createdAt: now - 2 * HOUR },
      ],
    };
    assert.equal(await store.save(seeded, 0), true);
    const env = {
      TA_KEY_STORE: 'redis',
      TA_REDIS_URL: redis.url,
      TA_KEY_ENCRYPTION_KEY: kekText,
      TA_ISSUER: TEST_ISSUER,
      TA_KEY_ROTATION_INTERVAL: '60s',
      TA_MAX_ACCESS_TTL: '10s',
      TA_ACCESS_TTL: '10s',
    };
    replicas = await Promise.all(['R1', 'R2', 'R3'].map((name) => startAuthorityProcess(name, env)));
  });

  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await store?.close();
    await redis?.stop();
  });

  it('is performed by exactly one replica, and every replica then signs with the promoted key', async () => {
    const [oldActive, oldNext] = seeded.keys;
    await eventually(async () => (await store.load())?.version === 2, 20_000, 'a scheduled rotation is stored');
    // Every replica ends up on the rotated set: the winner at once, a loser when its compare-and-set
    // fails (or at its next reload). From then on the active key is fresh, so none can rotate again.
    const tokens = new Map<string, string>();
    for (const r of replicas) {
      await eventually(async () => {
        const token = (await r.client.issue({ subject: `s-${r.name}`, audience: ['orders'] })).accessToken;
        tokens.set(r.name, token);
        return kidOf(token) === oldNext!.kid;
      }, 15_000, `${r.name} signs with the promoted key`);
    }

    const rotations = replicas.flatMap((r) => r.proc.lines.filter((l) => l.msg === 'rotated the signing key').map((l): Record<string, unknown> => ({ replica: r.name, ...l })));
    assert.equal(rotations.length, 1, `rotations logged: ${JSON.stringify(rotations)}`);
    assert.equal(rotations[0]!.reason, 'scheduled');
    assert.equal(rotations[0]!.kid, oldNext!.kid);
    assert.equal(rotations[0]!.retiredKid, oldActive!.kid);

    const doc = (await store.load())!;
    assert.equal(doc.version, 2, 'no second rotation');
    assert.deepEqual(doc.keys.map((k) => `${k.kid}:${k.state}`).sort().filter((s) => !s.endsWith(':next')), [`${oldActive!.kid}:retired`, `${oldNext!.kid}:active`].sort());
    assert.equal(doc.keys.filter((k) => k.state === 'next').length, 1);

    // The rotation one replica performed is honoured by the others: tokens cross-verify.
    for (const issuer of replicas) {
      for (const verifier of replicas) {
        const r = await verifier.client.verify({ token: tokens.get(issuer.name)! });
        assert.equal(r.valid, true, `${issuer.name}'s token at ${verifier.name}: ${r.detail}`);
      }
    }
  });
});
