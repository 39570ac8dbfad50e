import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keySetCipherFor } from '../../../src/authority/create-key-store.js';
import { sessionSealFor } from '../../../src/authority/session-records.js';
import { loadConfig } from '../../../src/config/config.js';
import { configuredKeyEncryptionKeys, parseKeyEncryptionKey } from '../../../src/keys/key-encryption-key.js';

describe('the key-encryption key from the environment or its file: one reader (configuredKeyEncryptionKeys)', () => {
  let dir: string;
  const kekText = randomBytes(32).toString('base64');
  const oldText = randomBytes(32).toString('base64');
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ta-kek-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('takes TA_KEY_ENCRYPTION_KEY, else reads TA_KEY_ENCRYPTION_KEY_FILE, else there is none', async () => {
    const file = join(dir, 'kek');
    writeFileSync(file, `${kekText}\n`, { mode: 0o600 });
    const fromEnv = await configuredKeyEncryptionKeys(loadConfig('authority', { env: { TA_KEY_ENCRYPTION_KEY: kekText, TA_KEY_ENCRYPTION_KEY_PREVIOUS: oldText } }));
    const fromFile = await configuredKeyEncryptionKeys(loadConfig('authority', { env: { TA_KEY_ENCRYPTION_KEY_FILE: file } }));
    assert.equal(fromEnv?.current.id, parseKeyEncryptionKey(kekText).id);
    assert.deepEqual(fromEnv?.previous.map((k) => k.id), [parseKeyEncryptionKey(oldText).id]);
    assert.equal(fromFile?.current.id, parseKeyEncryptionKey(kekText).id);
    assert.deepEqual(fromFile?.previous, []);
    assert.equal(await configuredKeyEncryptionKeys(loadConfig('authority', { env: {} })), undefined);
  });

  it('the key-set cipher and the session seal use the same key, whichever way it was given', async () => {
    const file = join(dir, 'kek');
    writeFileSync(file, kekText, { mode: 0o600 });
    const id = parseKeyEncryptionKey(kekText).id;
    for (const env of [{ TA_KEY_ENCRYPTION_KEY: kekText }, { TA_KEY_ENCRYPTION_KEY_FILE: file }]) {
      const config = loadConfig('authority', { env: { ...env, TA_KEY_DIR: dir } });
      assert.equal((await keySetCipherFor(config))?.kekId, id);
      const seal = (await sessionSealFor(config)).seal({ sessionId: 's', subject: 'u', audience: ['a'], scopes: [], extra: {}, absoluteExpiresAt: 1, createdAt: 0, constraints: {} });
      assert.ok(seal.startsWith(`v2.kek-${id}.`), seal);
    }
  });
});
