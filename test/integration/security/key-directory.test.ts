import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, chown, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { createKeyStore } from '../../../src/authority/create-key-store.js';
import { loadConfig } from '../../../src/config/config.js';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { generateSigningKey } from '../../../src/keys/key-generator.js';
import { type KeySetDocument, type StoredKey } from '../../../src/keys/key-store.js';
import { KeyManager } from '../../../src/keys/key-manager.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { startTestAuthority, type TestAuthority } from '../../helpers/authority.js';
import { runCli } from '../../helpers/cli-process.js';
import { makeTempDir, removeTempDir } from '../../unit/keys/helpers.js';

/**
 * The file key store against a writer of the key directory (SECURITY.md, threat model): with a
 * key-encryption key, a plaintext keys.json is refused at start and at runtime (only the explicit
 * `token-authority keys seal` converts one); a file owned by another user, or a directory others
 * may write, is refused whatever the KEK.
 */
const posix = process.platform !== 'win32';
const kekText = () => randomBytes(32).toString('base64');
const OTHER_UID = 54321;

async function plaintextDoc(version: number, nowMs = Date.now()): Promise<KeySetDocument> {
  const [a, n] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('ES256')]);
  const keys: StoredKey[] = [
    { ...a, state: 'active', createdAt: nowMs, activatedAt: nowMs },
    { ...n, state: 'next', createdAt: nowMs },
  ];
  return { version, keys };
}

/** Writes keys.json the way an attacker with write access to the directory would: atomically. */
async function plant(dir: string, doc: KeySetDocument): Promise<void> {
  const tmp = join(dir, '.planted.tmp');
  await writeFile(tmp, JSON.stringify(doc), { mode: 0o600 });
  await rename(tmp, join(dir, 'keys.json'));
}

function keyError(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(isTokenAuthorityError(err), `expected a TokenAuthorityError, got ${String(err)}`);
    assert.equal(err.code, ErrorCodes.KEY);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('key directory: what a writer of TA_KEY_DIR can do', function () {
  this.timeout(30_000);
  let root: string;
  beforeEach(async () => {
    root = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(root);
  });

  it('first start with a KEK and no key directory creates the directory (0700) and sealed keys', async () => {
    const dir = join(root, 'not', 'yet');
    const config = loadConfig('authority', { env: { TA_KEY_DIR: dir, TA_KEY_ENCRYPTION_KEY: kekText() } });
    const manager = new KeyManager({ store: await createKeyStore(config, silentLogger), algorithm: 'ES256', rotationIntervalMs: 0, retainMs: 60_000, reloadIntervalMs: 0 });
    await manager.start();
    try {
      if (posix) assert.equal((await stat(dir)).mode & 0o777, 0o700);
      assert.match(await readFile(join(dir, 'keys.json'), 'utf8'), /"format": "ta-keyset-sealed\/1"/);
    } finally {
      await manager.stop();
    }
  });

  describe('with a key-encryption key', () => {
    it('refuses a plaintext keys.json at start with a clear error, and leaves it as it is', async () => {
      const doc = await plaintextDoc(1);
      await new FileKeyStore(root).save(doc, 0);
      const before = await readFile(join(root, 'keys.json'), 'utf8');
      const config = loadConfig('authority', { env: { TA_KEY_DIR: root, TA_KEY_ENCRYPTION_KEY: kekText() } });
      await assert.rejects(createKeyStore(config, silentLogger), keyError(/holds private keys in the clear, but a key-encryption key is configured: refusing it.*token-authority keys seal/));
      assert.equal(await readFile(join(root, 'keys.json'), 'utf8'), before, 'not silently converted');
    });

    it('refuses a plaintext keys.json planted while the authority runs; the old keys keep serving', async () => {
      const ta: TestAuthority = await startTestAuthority({ TA_KEY_DIR: root, TA_KEY_ENCRYPTION_KEY: kekText() });
      try {
        const activeKid = ta.running.keys.signer().kid;
        const jwksBefore = ta.running.keys.jwksJson();
        const planted = await plaintextDoc(100);
        await plant(root, planted);
        await assert.rejects(ta.running.keys.reload(), keyError(/in the clear, but a key-encryption key is configured/));
        await assert.rejects(ta.running.keys.runMaintenance(), keyError(/in the clear/));
        assert.equal(ta.running.keys.signer().kid, activeKid, 'the planted key does not sign');
        assert.equal(ta.running.keys.jwksJson(), jwksBefore, 'the planted keys are not published');
        const jwks = (await (await fetch(`${ta.httpBase}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
        assert.ok(!jwks.keys.some((k) => planted.keys.some((p) => p.kid === k.kid)));
        const issued = await ta.client.issue({ subject: 'still-serving', audience: ['orders'] });
        assert.equal(decodeProtectedHeader(issued.accessToken).kid, activeKid);
        assert.equal((await ta.client.verify({ token: issued.accessToken })).valid, true);
      } finally {
        await ta.stop();
      }
    });

    it('`token-authority keys seal` is the one explicit migration: it encrypts the file, and the authority then starts', async () => {
      const doc = await plaintextDoc(3);
      await new FileKeyStore(root).save({ ...doc, version: 1 }, 0);
      const kek = kekText();
      const env = { TA_KEY_DIR: root, TA_KEY_ENCRYPTION_KEY: kek, PATH: process.env.PATH ?? '' };
      const sealing = runCli(['keys', 'seal'], env);
      assert.equal(await sealing.exited, 0, sealing.stderr());
      assert.match(sealing.stdout(), /^encrypted the private keys in .*keys\.json under key-encryption key [0-9a-f]{16}\n$/);
      const text = await readFile(join(root, 'keys.json'), 'utf8');
      for (const k of doc.keys) assert.ok(!text.includes(k.privateJwk.d!), 'no private key in the clear');
      const store = await createKeyStore(loadConfig('authority', { env }), silentLogger);
      assert.deepEqual((await store.load())?.keys.map((k) => k.kid), doc.keys.map((k) => k.kid));
      const again = runCli(['keys', 'seal'], env);
      assert.equal(await again.exited, 0);
      assert.match(again.stdout(), /already encrypted/);
    });
  });

  (posix ? describe : describe.skip)('file owner and directory mode (with or without a KEK)', () => {
    for (const withKek of [false, true]) {
      const label = withKek ? 'with a KEK' : 'without a KEK';
      const store = () => createKeyStore(loadConfig('authority', { env: { TA_KEY_DIR: root, ...(withKek ? { TA_KEY_ENCRYPTION_KEY: kekText() } : {}) } }), silentLogger, { readOnly: true });

      it(`refuses keys.json owned by another user (${label})`, async () => {
        await plant(root, await plaintextDoc(1));
        await chown(join(root, 'keys.json'), OTHER_UID, OTHER_UID);
        await assert.rejects(async () => (await store()).load(), keyError(new RegExp(`owned by uid ${OTHER_UID}, not by this process's uid ${process.getuid!()}`)));
      });

      it(`refuses a key directory writable by group or others (${label})`, async () => {
        await plant(root, await plaintextDoc(1));
        for (const mode of [0o770, 0o703, 0o1777]) {
          await chmod(root, mode);
          await assert.rejects(async () => (await store()).load(), keyError(/key store directory .* is writable by group or others .*chmod go-w/), mode.toString(8));
        }
        await chmod(root, 0o700);
        if (!withKek) assert.equal((await (await store()).load())?.version, 1, 'accepted once fixed');
      });
    }

    it('a running authority keeps serving when keys.json turns up owned by another user', async () => {
      const ta = await startTestAuthority({ TA_KEY_DIR: root });
      try {
        const activeKid = ta.running.keys.signer().kid;
        await plant(root, await plaintextDoc(50));
        await chown(join(root, 'keys.json'), OTHER_UID, OTHER_UID);
        await assert.rejects(ta.running.keys.reload(), keyError(/owned by uid/));
        assert.equal(ta.running.keys.signer().kid, activeKid);
        assert.ok((await ta.client.issue({ subject: 'x', audience: ['orders'] })).accessToken);
      } finally {
        await ta.stop();
      }
    });
  });
});
