import assert from 'node:assert/strict';
import { chmod, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { generateSigningKey } from '../../../src/keys/key-generator.js';
import { parseKeySetDocument } from '../../../src/keys/key-set-document.js';
import { type KeySetDocument, type KeyStore, type StoredKey } from '../../../src/keys/key-store.js';
import { MemoryKeyStore } from '../../../src/keys/memory-key-store.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { makeTempDir, removeTempDir } from './helpers.js';

async function sampleDoc(version: number): Promise<KeySetDocument> {
  const [a, n] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('ES256')]);
  const keys: StoredKey[] = [
    { ...a, state: 'active', createdAt: 1000, activatedAt: 1000 },
    { ...n, state: 'next', createdAt: 1000 },
  ];
  return { version, keys };
}

const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function keyError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(isTokenAuthorityError(err), `expected a TokenAuthorityError, got ${String(err)}`);
    assert.equal(err.code, ErrorCodes.KEY);
    assert.match(err.message, pattern);
    return true;
  };
}

function casContract(name: string, makeStore: () => KeyStore) {
  describe(`${name}: compare-and-set contract`, () => {
    it('is empty at first, then returns what was saved', async () => {
      const store = makeStore();
      assert.equal(await store.load(), undefined);
      const doc = await sampleDoc(1);
      assert.equal(await store.save(doc, 0), true);
      assert.deepEqual(await store.load(), doc);
    });

    it('refuses a save whose expected version is stale', async () => {
      const store = makeStore();
      const v1 = await sampleDoc(1);
      assert.equal(await store.save(v1, 0), true);
      assert.equal(await store.save(await sampleDoc(1), 0), false, 'second initialisation must lose');
      assert.deepEqual(await store.load(), v1);
      const v2 = { ...v1, version: 2, keys: v1.keys.slice(0, 1) };
      assert.equal(await store.save(v2, 1), true);
      assert.equal(await store.save({ ...v1, version: 2 }, 1), false);
      assert.equal((await store.load())?.version, 2);
    });

    it('rejects a document whose version is not expectedVersion + 1', async () => {
      const store = makeStore();
      await assert.rejects(store.save(await sampleDoc(5), 0), (err) => isTokenAuthorityError(err) && err.code === ErrorCodes.INTERNAL);
    });

    it('does not let callers alias the stored document', async () => {
      const store = makeStore();
      const doc = await sampleDoc(1);
      await store.save(doc, 0);
      doc.keys[0]!.state = 'retired';
      const loaded = await store.load();
      assert.equal(loaded?.keys[0]?.state, 'active');
      loaded!.keys.length = 0;
      assert.equal((await store.load())?.keys.length, 2);
    });
  });
}

casContract('MemoryKeyStore', () => new MemoryKeyStore());

describe('FileKeyStore', () => {
  let root: string;
  beforeEach(async () => {
    root = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(root);
  });

  casContract('FileKeyStore', () => new FileKeyStore(join(root, `store-${Math.random().toString(36).slice(2)}`)));

  it('creates the directory 0700 and keys.json 0600, leaving no temp or lock file', async () => {
    const dir = join(root, 'nested', 'keys');
    const store = new FileKeyStore(dir);
    assert.equal(store.path, join(dir, 'keys.json'));
    assert.equal(await store.save(await sampleDoc(1), 0), true);
    assert.equal(await store.save(await sampleDoc(2), 1), true);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(store.path)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['keys.json']);
    assert.equal(JSON.parse(await readFile(store.path, 'utf8')).version, 2);
  });

  for (const mode of [0o640, 0o604, 0o660]) {
    it(`refuses to load a keys.json with mode ${mode.toString(8)}, saying to chmod 600`, async () => {
      const store = new FileKeyStore(root);
      await store.save(await sampleDoc(1), 0);
      await chmod(store.path, mode);
      await assert.rejects(store.load(), keyError(new RegExp(`${esc(store.path)}.*group or others.*chmod 600 ${esc(store.path)}`)));
      await assert.rejects(store.save(await sampleDoc(2), 1), keyError(/chmod 600/), 'must not overwrite it either');
      await chmod(store.path, 0o600);
      assert.equal((await store.load())?.version, 1);
    });
  }

  it('reports a corrupt file with its path and without quoting its content', async () => {
    const store = new FileKeyStore(root);
    await writeFile(store.path, '{"version":1,"keys":[{"d":"SECRETSECRET"', { mode: 0o600 });
    await assert.rejects(store.load(), (err) => {
      keyError(new RegExp(`${esc(store.path)} is corrupt: not valid JSON`))(err);
      assert.doesNotMatch((err as Error).message, /SECRET/);
      assert.equal((err as Error).cause, undefined);
      return true;
    });
  });

  it('reports a well-formed file holding an invalid key set, naming the member', async () => {
    const store = new FileKeyStore(root);
    const doc = await sampleDoc(1);
    (doc.keys[0]!.publicJwk as unknown as Record<string, unknown>).d = doc.keys[0]!.privateJwk.d;
    await writeFile(store.path, JSON.stringify(doc), { mode: 0o600 });
    await assert.rejects(store.load(), keyError(new RegExp(`invalid key set in ${esc(store.path)}: keys\\[0\\]\\.publicJwk must not contain the private member "d"`)));
  });

  it('lets exactly one of several concurrent writers win a version', async () => {
    const dir = join(root, 'shared');
    await new FileKeyStore(dir).save(await sampleDoc(1), 0);
    const docs = await Promise.all(Array.from({ length: 4 }, () => sampleDoc(2)));
    const results = await Promise.all(docs.map((d) => new FileKeyStore(dir).save(d, 1)));
    assert.equal(results.filter(Boolean).length, 1);
    const winner = docs[results.indexOf(true)]!;
    assert.deepEqual(await new FileKeyStore(dir).load(), winner);
    assert.deepEqual(await readdir(dir), ['keys.json']);
  });

  it('breaks a stale lock left by a dead writer', async () => {
    const store = new FileKeyStore(root, { staleLockMs: 1000 });
    const lock = `${store.path}.lock`;
    await writeFile(lock, '12345 dead\n', { mode: 0o600 });
    const past = new Date(Date.now() - 60_000);
    await utimes(lock, past, past);
    assert.equal(await store.save(await sampleDoc(1), 0), true);
    assert.deepEqual(await readdir(root), ['keys.json']);
  });

  it('waits for a live lock and fails with a message naming it', async () => {
    const store = new FileKeyStore(root, { staleLockMs: 60_000, lockTimeoutMs: 150 });
    const lock = `${store.path}.lock`;
    await writeFile(lock, '1 live\n', { mode: 0o600 });
    await assert.rejects(store.save(await sampleDoc(1), 0), keyError(new RegExp(`waiting for lock file ${esc(lock)}`)));
    assert.equal(await store.load(), undefined);
  });
});

describe('parseKeySetDocument', () => {
  it('accepts a valid document and drops unknown members', async () => {
    const doc = await sampleDoc(3);
    const parsed = parseKeySetDocument({ ...doc, extra: true, keys: doc.keys.map((k) => ({ ...k, junk: 1 })) }, 'test');
    assert.deepEqual(parsed, doc);
  });

  const cases: [string, (doc: KeySetDocument) => unknown, RegExp][] = [
    ['a non-object', () => 'nope', /document must be a JSON object/],
    ['version 0', (d) => ({ ...d, version: 0 }), /version must be a positive integer/],
    ['two active keys', (d) => ({ ...d, keys: d.keys.map((k) => ({ ...k, state: 'active', activatedAt: 1 })) }), /2 active keys/],
    ['a duplicate kid', (d) => ({ ...d, keys: [d.keys[0], { ...d.keys[0], state: 'next' }] }), /kid ".*" twice/],
    ['an unknown algorithm', (d) => ({ ...d, keys: [{ ...d.keys[0], alg: 'HS256' }] }), /keys\[0\]\.alg must be one of/],
    ['an active key without activatedAt', (d) => ({ ...d, keys: [{ ...d.keys[0], activatedAt: undefined }] }), /no activatedAt/],
    ['a retired key without removeAfter', (d) => ({ ...d, keys: [{ ...d.keys[0], state: 'retired', retiredAt: 5 }] }), /lacks retiredAt or removeAfter/],
    ['a key type that does not fit the algorithm', (d) => ({ ...d, keys: [{ ...d.keys[0], alg: 'RS256' }] }), /publicJwk\.kty must be "RSA"/],
    ['a private key for another public key', (d) => ({ ...d, keys: [{ ...d.keys[0], privateJwk: { ...d.keys[1]!.privateJwk, kid: d.keys[0]!.kid } }] }), /privateJwk\.x does not match/],
    ['a private key without d', (d) => ({ ...d, keys: [{ ...d.keys[0], privateJwk: { ...d.keys[0]!.publicJwk } }] }), /privateJwk\.d must be a base64url string/],
  ];
  for (const [what, mutate, pattern] of cases) {
    it(`rejects ${what}`, async () => {
      const input = mutate(await sampleDoc(1));
      assert.throws(() => parseKeySetDocument(input, 'where.json'), keyError(new RegExp(`where\\.json: .*${pattern.source}`)));
    });
  }
});
