import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionSealFor } from '../../../src/authority/session-records.js';
import { loadConfig } from '../../../src/config/config.js';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { readKeyEncryptionKeyFile } from '../../../src/keys/key-encryption-key.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { CHECKS_FILE_MODES, modeText, privateDirectoryProblem, privateFileProblem } from '../../../src/shared/file-permissions.js';

describe('the "file must be private" rule (shared/file-permissions.ts)', () => {
  before(function () {
    // The rule is POSIX mode bits; on Windows it is documented as not checked.
    assert.ok(CHECKS_FILE_MODES, 'these tests run on a POSIX system');
  });

  it('a secret file may carry no group or other bit; a directory holding one no group or other write bit', () => {
    assert.equal(modeText(0o100640), '0640');
    assert.equal(privateFileProblem(0o100600, '/k', 'x'), undefined);
    assert.equal(privateFileProblem(0o100400, '/k', 'x'), undefined);
    for (const mode of [0o640, 0o604, 0o610, 0o601, 0o660, 0o644]) {
      assert.equal(privateFileProblem(mode, '/d/k', 'the thing'), `holds the thing but is accessible by group or others (mode ${modeText(mode)}); run: chmod 600 /d/k`);
    }
    for (const mode of [0o700, 0o755, 0o711]) assert.equal(privateDirectoryProblem(0o40000 | mode, '/d', 'k'), undefined);
    for (const mode of [0o770, 0o757, 0o777]) assert.match(privateDirectoryProblem(mode, '/d', 'k') ?? '', /writable by group or others .*chmod go-w \/d/);
  });

  describe('every secret file obeys it', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'ta-private-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('the key-encryption key file (ERR_CONFIG)', async () => {
      const file = join(dir, 'kek');
      writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
      await readKeyEncryptionKeyFile(file);
      chmodSync(file, 0o640);
      await assert.rejects(readKeyEncryptionKeyFile(file), (e: unknown) => isTokenAuthorityError(e) && e.code === ErrorCodes.CONFIG && e.message.endsWith(privateFileProblem(0o640, file, 'the key-encryption key')!));
    });

    it('the session-seal secret (ERR_KEY)', async () => {
      const config = loadConfig('authority', { env: { TA_KEY_DIR: dir } });
      await sessionSealFor(config); // creates session-seal.key, 0600
      const file = join(dir, 'session-seal.key');
      chmodSync(file, 0o644);
      await assert.rejects(sessionSealFor(config), (e: unknown) => isTokenAuthorityError(e) && e.code === ErrorCodes.KEY && e.message === `${file} ${privateFileProblem(0o644, file, 'the session-seal secret')!}`);
    });

    it('keys.json and its directory (ERR_KEY)', async () => {
      const store = new FileKeyStore(dir);
      await store.load();
      chmodSync(dir, 0o770);
      await assert.rejects(store.load(), (e: unknown) => isTokenAuthorityError(e) && e.code === ErrorCodes.KEY && e.message.endsWith(privateDirectoryProblem(0o770, dir, 'keys.json')!));
    });
  });
});
