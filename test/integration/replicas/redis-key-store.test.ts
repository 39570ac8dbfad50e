import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createKeyStore, sealKeyFile } from '../../../src/authority/create-key-store.js';
import { loadConfig } from '../../../src/config/config.js';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { generateSigningKey } from '../../../src/keys/key-generator.js';
import { KeyManager } from '../../../src/keys/key-manager.js';
import { type KeySetDocument, type KeyStore, type StoredKey } from '../../../src/keys/key-store.js';
import { createKeyEncryptionKey, type KeyEncryptionKey } from '../../../src/keys/key-encryption-key.js';
import { KeySetCipher } from '../../../src/keys/key-set-cipher.js';
import { RedisKeyStore } from '../../../src/keys/redis-key-store.js';
import { ManualClock } from '../../../src/shared/clock.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { RedisCommandClient } from '../../../src/store/redis-client.js';
import { parseRedisUrl } from '../../../src/store/redis-connection.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { capturingLogger, GatedStore, makeTempDir, removeTempDir, SaveGate } from '../../unit/keys/helpers.js';

const HOUR = 3_600_000;

function codeIs(code: string, pattern?: RegExp) {
  return (err: unknown) => {
    assert.ok(isTokenAuthorityError(err), `expected a TokenAuthorityError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (pattern) assert.match(err.message, pattern);
    return true;
  };
}

async function sampleDoc(version: number): Promise<KeySetDocument> {
  const [a, n] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('ES256')]);
  const keys: StoredKey[] = [
    { ...a, state: 'active', createdAt: 1000, activatedAt: 1000 },
    { ...n, state: 'next', createdAt: 1000 },
  ];
  return { version, keys };
}

describe('RedisKeyStore (real redis-server)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let raw: Redis;
  let kek: KeyEncryptionKey;
  let n = 0;
  let open: Array<{ close(): Promise<void> }> = [];
  let prefix: string;

  before(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url);
    raw.on('error', () => {});
    kek = createKeyEncryptionKey(randomBytes(32));
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });
  beforeEach(() => {
    prefix = `t${++n}:`;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  /** A store on its own connection, as another process would have. */
  function store(options: { kek?: KeyEncryptionKey; previous?: KeyEncryptionKey[]; url?: string } = {}): RedisKeyStore {
    const connection = new RedisCommandClient(parseRedisUrl(options.url ?? redis.url), { lazyConnect: true, commandTimeoutMs: 1000, connectionName: 'test-keys', label: 'Redis key store', closedMessage: 'the Redis key store is closed' });
    const s = new RedisKeyStore({ connection, cipher: new KeySetCipher(options.kek ?? kek, options.previous ?? []), keyPrefix: prefix });
    open.push(s);
    return s;
  }

  describe('compare-and-set contract', () => {
    it('is empty at first, then returns what was saved', async () => {
      const s = store();
      assert.equal(await s.load(), undefined);
      const doc = await sampleDoc(1);
      assert.equal(await s.save(doc, 0), true);
      assert.deepEqual(await s.load(), doc);
      assert.deepEqual(await store().load(), doc, 'another connection reads the same set');
    });

    it('refuses a save whose expected version is stale, from any connection', async () => {
      const a = store();
      const b = store();
      const v1 = await sampleDoc(1);
      assert.equal(await a.save(v1, 0), true);
      assert.equal(await b.save(await sampleDoc(1), 0), false, 'second initialisation must lose');
      assert.deepEqual(await b.load(), v1);
      const v2 = { ...v1, version: 2, keys: v1.keys.slice(0, 1) };
      assert.equal(await b.save(v2, 1), true);
      assert.equal(await a.save({ ...v1, version: 2 }, 1), false);
      assert.equal((await a.load())?.version, 2);
    });

    it('rejects a document whose version is not expectedVersion + 1', async () => {
      await assert.rejects(store().save(await sampleDoc(5), 0), codeIs(ErrorCodes.INTERNAL));
    });

    it('lets exactly one of 20 concurrent initialisations win', async () => {
      const docs = await Promise.all(Array.from({ length: 20 }, () => sampleDoc(1)));
      const stores = docs.map(() => store());
      const results = await Promise.all(docs.map((d, i) => stores[i]!.save(d, 0)));
      assert.equal(results.filter(Boolean).length, 1);
      const winner = docs[results.indexOf(true)]!;
      assert.deepEqual(await store().load(), winner);
    });
  });

  describe('what sits in Redis', () => {
    it('is one hash under the {ta} tag, with the version and a sealed document without private material', async () => {
      const s = store();
      const doc = await sampleDoc(1);
      await s.save(doc, 0);
      assert.equal(s.key, `${prefix}{ta}:keys`);
      assert.equal(await raw.type(s.key), 'hash');
      const stored = await raw.hgetall(s.key);
      assert.deepEqual(Object.keys(stored).sort(), ['doc', 'version']);
      assert.equal(stored.version, '1');
      for (const k of doc.keys) assert.ok(!stored.doc!.includes(k.privateJwk.d), `${k.kid}'s private key is in Redis in the clear`);
      const parsed = JSON.parse(stored.doc!) as { format: string; kek: string; keys: Array<{ sealedPrivateJwk: { kek: string } }> };
      assert.equal(parsed.format, 'ta-keyset-sealed/1');
      assert.equal(parsed.kek, kek.id);
      assert.ok(parsed.keys.every((k) => k.sealedPrivateJwk.kek === kek.id));
    });

    it('refuses a plaintext key set planted in Redis', async () => {
      const s = store();
      await raw.hset(s.key, 'version', '1', 'doc', JSON.stringify(await sampleDoc(1)));
      await assert.rejects(s.load(), codeIs(ErrorCodes.KEY, /is not encrypted under a key-encryption key; refusing it/));
    });

    it('refuses a public key swapped in Redis (its private key is bound to it)', async () => {
      const s = store();
      const doc = await sampleDoc(1);
      await s.save(doc, 0);
      const stored = JSON.parse((await raw.hget(s.key, 'doc'))!) as { keys: Array<{ publicJwk: { x: string; y: string } }> };
      const attacker = await generateSigningKey('ES256');
      stored.keys[1]!.publicJwk.x = (attacker.publicJwk as { x: string }).x;
      stored.keys[1]!.publicJwk.y = (attacker.publicJwk as { y: string }).y;
      await raw.hset(s.key, 'doc', JSON.stringify(stored));
      await assert.rejects(s.load(), codeIs(ErrorCodes.KEY, /cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY\? Authentication failed/));
    });

    it('refuses a version field that disagrees with the sealed document', async () => {
      const s = store();
      await s.save(await sampleDoc(1), 0);
      await raw.hset(s.key, 'version', '5');
      await assert.rejects(s.load(), codeIs(ErrorCodes.KEY, /inconsistent: version field 5, document version 1/));
    });

    it('answers a wrong KEK with "cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY?"', async () => {
      await store().save(await sampleDoc(1), 0);
      const other = createKeyEncryptionKey(randomBytes(32));
      await assert.rejects(store({ kek: other }).load(), codeIs(ErrorCodes.KEY, new RegExp(`cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY\\? .*encrypted under key-encryption key ${kek.id}, but the configured key is ${other.id}`)));
    });

    it('re-seals under a new KEK while the old one is still accepted (KEK rotation)', async () => {
      const next = createKeyEncryptionKey(randomBytes(32));
      const doc = await sampleDoc(1);
      await store().save(doc, 0);
      const rotating = store({ kek: next, previous: [kek] });
      assert.deepEqual(await rotating.load(), doc, 'the old KEK still opens it');
      assert.equal(await rotating.reseal(), true);
      assert.equal(await rotating.reseal(), false, 'nothing left to re-seal');
      assert.deepEqual(await store({ kek: next }).load(), doc, 'the new KEK alone opens it, version unchanged');
      await assert.rejects(store().load(), codeIs(ErrorCodes.KEY, /wrong TA_KEY_ENCRYPTION_KEY/));
    });
  });

  describe('createKeyStore (what `serve` and `keys` use)', () => {
    it('builds a RedisKeyStore for TA_KEY_STORE=redis and re-encrypts under a rotated KEK at start', async () => {
      const oldKek = randomBytes(32).toString('hex');
      const newKek = randomBytes(32).toString('hex');
      const env = { TA_KEY_STORE: 'redis', TA_REDIS_URL: redis.url };
      const before = await createKeyStore(loadConfig('authority', { env: { ...env, TA_KEY_ENCRYPTION_KEY: oldKek } }), capturingLogger().logger);
      open.push({ close: () => before.close!() });
      assert.ok(before instanceof RedisKeyStore);
      await raw.del(before.key);
      const doc = await sampleDoc(1);
      assert.equal(await before.save(doc, 0), true);

      const { logger, lines } = capturingLogger();
      const after = await createKeyStore(loadConfig('authority', { env: { ...env, TA_KEY_ENCRYPTION_KEY: newKek, TA_KEY_ENCRYPTION_KEY_PREVIOUS: oldKek } }), logger);
      open.push({ close: () => after.close!() });
      assert.ok(lines.some((l) => l.msg === 're-encrypted the signing keys under the current key-encryption key'));
      const sealed = JSON.parse((await raw.hget((after as RedisKeyStore).key, 'doc'))!) as { kek: string; version: number };
      assert.equal(sealed.kek, loadConfig('authority', { env: { TA_KEY_ENCRYPTION_KEY: newKek } }).keyEncryptionKey!.id);
      assert.equal(sealed.version, 1, 'the version is kept');
      assert.deepEqual(await after.load(), doc);
      const readOnly = await createKeyStore(loadConfig('authority', { env: { ...env, TA_KEY_ENCRYPTION_KEY: oldKek } }), logger, { readOnly: true });
      open.push({ close: () => readOnly.close!() });
      await assert.rejects(readOnly.load(), codeIs(ErrorCodes.KEY, /wrong TA_KEY_ENCRYPTION_KEY/));
      await raw.del(before.key);
    });

    it('encrypts a plaintext keys.json in place only through sealKeyFile (`keys seal`), never silently at start', async () => {
      const dir = await makeTempDir();
      try {
        const doc = await sampleDoc(1);
        await new FileKeyStore(dir).save(doc, 0);
        const config = loadConfig('authority', { env: { TA_KEY_DIR: dir, TA_KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') } });
        await assert.rejects(createKeyStore(config, capturingLogger().logger), codeIs(ErrorCodes.KEY, /in the clear.*token-authority keys seal/));
        assert.equal((await sealKeyFile(config)).outcome, 'sealed');
        const s = await createKeyStore(config, capturingLogger().logger);
        assert.ok(s instanceof FileKeyStore);
        const text = await readFile(join(dir, 'keys.json'), 'utf8');
        for (const k of doc.keys) assert.ok(!text.includes(k.privateJwk.d));
        assert.deepEqual(await s.load(), doc);
      } finally {
        await removeTempDir(dir);
      }
    });

    it('warns that a file key store is not shared when sessions are in Redis', async () => {
      const dir = await makeTempDir();
      try {
        const { logger, lines } = capturingLogger();
        await createKeyStore(loadConfig('authority', { env: { TA_KEY_DIR: dir, TA_REDIS_URL: redis.url } }), logger);
        assert.ok(lines.some((l) => l.level === 'warn' && /set TA_KEY_STORE=redis to run replicas/.test(l.msg ?? '')));
      } finally {
        await removeTempDir(dir);
      }
    });
  });

  describe('key managers on separate connections (replicas)', () => {
    const managers: KeyManager[] = [];
    afterEach(async () => {
      await Promise.all(managers.splice(0).map((m) => m.stop()));
    });
    function manager(s: KeyStore, clock: ManualClock, rotationIntervalMs = 0): KeyManager {
      const m = new KeyManager({ store: s, algorithm: 'ES256', rotationIntervalMs, retainMs: HOUR, clock, reloadIntervalMs: 0 });
      managers.push(m);
      return m;
    }

    it('agree on one key set when they all start on an empty Redis at once', async () => {
      const clock = new ManualClock();
      const ms = Array.from({ length: 5 }, () => manager(store(), clock));
      await Promise.all(ms.map((m) => m.start()));
      for (const m of ms) assert.deepEqual(m.list(), ms[0]!.list());
      assert.equal((await store().load())?.version, 1);
    });

    it('rotate exactly once when two scheduled rotations fall due together (forced overlap)', async () => {
      const clock = new ManualClock();
      const gate = new SaveGate();
      const a = manager(new GatedStore(store(), gate), clock, HOUR);
      const b = manager(new GatedStore(store(), gate), clock, HOUR);
      await a.start();
      await b.start();
      const before = (await store().load())!;
      clock.advance(HOUR);
      gate.arm(2);
      await Promise.all([a.runMaintenance(), b.runMaintenance()]);
      const after = (await store().load())!;
      assert.equal(after.version, before.version + 1, 'exactly one write won');
      assert.equal(after.keys.filter((k) => k.state === 'retired').length, 1, 'the loser did not rotate again');
      assert.equal(a.signer().kid, b.signer().kid);
      assert.equal(a.signer().kid, before.keys.find((k) => k.state === 'next')!.kid);
    });

    it('rotate exactly once when ten replicas find the rotation due at the same moment', async () => {
      const clock = new ManualClock();
      const ms = Array.from({ length: 10 }, () => manager(store(), clock, HOUR));
      await Promise.all(ms.map((m) => m.start()));
      const before = (await store().load())!;
      clock.advance(3 * HOUR); // Overdue by several intervals: still one rotation, not a catch-up series.
      await Promise.all(ms.map((m) => m.runMaintenance()));
      await Promise.all(ms.map((m) => m.runMaintenance()));
      const after = (await store().load())!;
      assert.equal(after.version, before.version + 1);
      assert.equal(new Set(ms.map((m) => m.signer().kid)).size, 1);
    });

    it('fail with ERR_STORE_UNAVAILABLE while Redis is down, keep signing, and recover', async () => {
      const clock = new ManualClock();
      const m = manager(store(), clock);
      await m.start();
      const kid = m.signer().kid;
      await redis.kill();
      try {
        await assert.rejects(m.reload(), codeIs(ErrorCodes.STORE_UNAVAILABLE));
        assert.equal(m.signer().kid, kid, 'the keys in memory still sign');
      } finally {
        await redis.restart();
      }
      // The data is gone (no AOF): the manager keeps its keys; a reload sees the empty store.
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          assert.equal(await m.reload(), false);
          break;
        } catch (err) {
          if (Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });
  });
});
