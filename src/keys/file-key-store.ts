/**
 * The key set as one JSON file, `keys.json`, in a private directory. Suits a single host (one
 * authority plus the CLI, or replicas sharing a local volume); replicas on different hosts use
 * a shared store such as Redis.
 *
 * Writes are atomic (temp file + fsync + rename), so a reader sees the old or the new document,
 * never half of one. Compare-and-set needs read-check-write to be exclusive between processes:
 * an exclusive lock file (`O_CREAT|O_EXCL`) guards it, broken only when older than a stale-lock
 * timeout (a writer that died holding it).
 *
 * With a {@link KeySetCipher} (an operator key-encryption key) the private keys are sealed at rest
 * (key-set-cipher.ts): saves always seal, and a plaintext file is refused on every read, so whoever
 * can write the file cannot plant a signing key. {@link FileKeyStore.sealAtRest} re-seals a file
 * sealed under a previous KEK in place, and converts a plaintext one only when asked explicitly
 * (`token-authority keys seal`). Without a cipher, a sealed file is refused with a message that
 * says which KEK it needs.
 *
 * Either way the file must be a regular file owned by this process's user and not accessible by
 * group or others, in a directory not writable by group or others (POSIX).
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCodes, TokenAuthorityError, errorMessage } from '../shared/errors.js';
import { KeySetCipher, isSealedKeySet } from './key-set-cipher.js';
import { assertNextVersion, parseKeySetDocument } from './key-set-document.js';
import type { KeySetDocument, KeyStore } from './key-store.js';
import { CHECKS_FILE_MODES, privateDirectoryProblem, privateFileProblem } from '../shared/file-permissions.js';

/** Tuning for {@link FileKeyStore}; the defaults suit every deployment we know of. */
export interface FileKeyStoreOptions {
  /** A lock file older than this is presumed left by a dead writer and removed. Default 10 000. */
  staleLockMs?: number;
  /** How long a save waits for the lock before failing. Default 15 000 (longer than staleLockMs). */
  lockTimeoutMs?: number;
  /** Seal private keys at rest under an operator key-encryption key. */
  cipher?: KeySetCipher;
}

/** The file name inside the store directory. */
export const KEYS_FILE_NAME = 'keys.json';

function keyError(message: string, cause?: unknown): TokenAuthorityError {
  return new TokenAuthorityError(ErrorCodes.KEY, message, cause === undefined ? undefined : { cause });
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

function describe(err: unknown): string {
  const code = errnoCode(err);
  if (code === 'EACCES' || code === 'EPERM') return `permission denied (${code})`;
  return code ?? errorMessage(err);
}

const checkModes = CHECKS_FILE_MODES;
/** This process's uid where the platform has one. */
const processUid = checkModes && typeof process.getuid === 'function' ? process.getuid() : undefined;

/** A {@link KeyStore} backed by `<dir>/keys.json` (mode 0600, directory 0700). */
export class FileKeyStore implements KeyStore {
  /** The absolute or relative path of the keys file. */
  readonly path: string;
  private readonly lockPath: string;
  private readonly staleLockMs: number;
  private readonly lockTimeoutMs: number;
  private readonly cipher: KeySetCipher | undefined;

  constructor(
    readonly dir: string,
    options: FileKeyStoreOptions = {},
  ) {
    this.path = join(dir, KEYS_FILE_NAME);
    this.lockPath = `${this.path}.lock`;
    this.staleLockMs = options.staleLockMs ?? 10_000;
    this.lockTimeoutMs = options.lockTimeoutMs ?? 15_000;
    this.cipher = options.cipher;
  }

  /**
   * @throws TokenAuthorityError ERR_KEY, naming the path, if the file cannot be read, is
   *   readable or writable by group or others, is owned by another user, sits in a directory
   *   writable by group or others, is in the clear while a KEK is configured, or does not hold a
   *   valid key set.
   */
  async load(): Promise<KeySetDocument | undefined> {
    const value = await this.readRaw();
    return value === undefined ? undefined : this.decode(value);
  }

  async save(doc: KeySetDocument, expectedVersion: number): Promise<boolean> {
    assertNextVersion(doc, expectedVersion);
    await this.ensureDir();
    const release = await this.lock();
    try {
      const current = await this.load();
      if ((current?.version ?? 0) !== expectedVersion) return false;
      await this.writeAtomically(this.encode(doc));
      return true;
    } finally {
      await release();
    }
  }

  /**
   * With a cipher: rewrites a file sealed under a previous KEK sealed under the current one, and,
   * only with `migratePlaintext` (the explicit migration step, `token-authority keys seal`), a
   * plaintext file sealed. The document and its version stay the same. Creates the directory
   * (0700) if there is none, as a first save would.
   * @returns what was done.
   * @throws TokenAuthorityError ERR_KEY for a plaintext file without `migratePlaintext`.
   */
  async sealAtRest(options: { migratePlaintext?: boolean } = {}): Promise<'sealed' | 'resealed' | 'unchanged'> {
    if (this.cipher === undefined) return 'unchanged';
    await this.ensureDir();
    const release = await this.lock();
    try {
      const value = await this.readRaw();
      if (value === undefined) return 'unchanged';
      if (!isSealedKeySet(value)) {
        if (!options.migratePlaintext) throw this.plaintextRefused();
        await this.writeAtomically(this.encode(parseKeySetDocument(value, this.path)));
        return 'sealed';
      }
      if (!this.cipher.needsReseal(value)) return 'unchanged';
      await this.writeAtomically(this.encode(this.cipher.open(value, this.path)));
      return 'resealed';
    } finally {
      await release();
    }
  }

  private plaintextRefused(): TokenAuthorityError {
    return keyError(
      `key store file ${this.path} holds private keys in the clear, but a key-encryption key is configured: refusing it, ` +
        'since whoever can write that file could plant a signing key. If it is a key file from before the key-encryption key was set, ' +
        'encrypt it once with `token-authority keys seal` (same TA_KEY_DIR and key-encryption key) and start again; ' +
        'otherwise restore keys.json from a backup and find out who wrote it',
    );
  }

  private encode(doc: KeySetDocument): string {
    return `${JSON.stringify(this.cipher === undefined ? doc : this.cipher.seal(doc), null, 2)}\n`;
  }

  private decode(value: unknown): KeySetDocument {
    if (!isSealedKeySet(value)) {
      if (this.cipher !== undefined) throw this.plaintextRefused();
      return parseKeySetDocument(value, this.path);
    }
    if (this.cipher === undefined) {
      const kek = (value as { kek?: unknown }).kek;
      throw keyError(
        `key store file ${this.path} is encrypted under key-encryption key ${String(kek)}; ` +
          'set TA_KEY_ENCRYPTION_KEY (or TA_KEY_ENCRYPTION_KEY_FILE) to that key',
      );
    }
    return this.cipher.open(value, this.path);
  }

  /** The parsed JSON of the file, or undefined if there is none. */
  private async readRaw(): Promise<unknown> {
    if (!(await this.checkDir())) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(this.path, 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw keyError(`cannot read key store file ${this.path}: ${describe(err)}`, err);
    }
    let text: string;
    try {
      // fstat the open handle, not the path, so the checked file is the one that is read.
      this.checkFile(await handle.stat());
      text = await handle.readFile('utf8');
    } catch (err) {
      if (err instanceof TokenAuthorityError) throw err;
      throw keyError(`cannot read key store file ${this.path}: ${describe(err)}`, err);
    } finally {
      await handle.close();
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // V8's message quotes the input, which here is private key material: never pass it on.
      throw keyError(`key store file ${this.path} is corrupt: not valid JSON; restore it from a backup or remove it to start with new keys`);
    }
    return value;
  }

  /**
   * Whoever can write the directory can replace keys.json (rename over it). @returns false if it
   * does not exist (so neither does the file).
   */
  private async checkDir(): Promise<boolean> {
    if (!checkModes) return true;
    let st: Stats;
    try {
      st = await stat(this.dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw keyError(`cannot read key store directory ${this.dir}: ${describe(err)}`, err);
    }
    if (!st.isDirectory()) throw keyError(`key store directory ${this.dir} is not a directory`);
    const problem = privateDirectoryProblem(st.mode, this.dir, 'keys.json');
    if (problem !== undefined) throw keyError(`key store directory ${this.dir} ${problem}`);
    return true;
  }

  private checkFile(st: Stats): void {
    if (!st.isFile()) throw keyError(`key store file ${this.path} is not a regular file`);
    if (processUid !== undefined && st.uid !== processUid) {
      throw keyError(
        `key store file ${this.path} is owned by uid ${st.uid}, not by this process's uid ${processUid}: refusing keys someone else wrote; ` +
          `if the file is genuine, run: chown ${processUid} ${this.path}`,
      );
    }
    const problem = privateFileProblem(st.mode, this.path, 'private keys');
    if (problem !== undefined) throw keyError(`key store file ${this.path} ${problem}`);
  }

  private async ensureDir(): Promise<void> {
    try {
      const created = await mkdir(this.dir, { recursive: true, mode: 0o700 });
      // mkdir's mode is filtered by the umask; say exactly what we mean for a directory we made.
      if (created !== undefined && checkModes) await chmod(this.dir, 0o700);
    } catch (err) {
      throw keyError(`cannot create key store directory ${this.dir}: ${describe(err)}`, err);
    }
  }

  private async writeAtomically(text: string): Promise<void> {
    const tmp = join(this.dir, `.${KEYS_FILE_NAME}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const handle = await open(tmp, 'wx', 0o600);
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw keyError(`cannot write key store file ${this.path}: ${describe(err)}`, err);
    }
    await this.syncDir();
  }

  /** Makes the rename itself durable; best effort, as not every platform can fsync a directory. */
  private async syncDir(): Promise<void> {
    try {
      const handle = await open(this.dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch {
      // Durability of the directory entry is an optimisation here, not a correctness condition.
    }
  }

  /** Takes the lock file; resolves to its release. */
  private async lock(): Promise<() => Promise<void>> {
    const token = `${process.pid} ${randomBytes(8).toString('hex')}\n`;
    const deadline = Date.now() + this.lockTimeoutMs;
    for (;;) {
      try {
        const handle = await open(this.lockPath, 'wx', 0o600);
        try {
          await handle.writeFile(token, 'utf8');
        } finally {
          await handle.close();
        }
        return () => this.unlock(token);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') {
          throw keyError(`cannot create lock file ${this.lockPath}: ${describe(err)}`, err);
        }
      }
      await this.breakIfStale();
      if (Date.now() >= deadline) {
        throw keyError(
          `timed out after ${this.lockTimeoutMs} ms waiting for lock file ${this.lockPath}; ` +
            'if no other process is writing keys, remove it',
        );
      }
      await delay(5 + Math.floor(Math.random() * 20));
    }
  }

  private async breakIfStale(): Promise<void> {
    let st: Stats;
    try {
      st = await stat(this.lockPath);
    } catch {
      return; // Gone already: retry at once.
    }
    if (Date.now() - st.mtimeMs <= this.staleLockMs) return;
    // Re-check just before unlinking, so a lock that was replaced in between is left alone.
    const again = await stat(this.lockPath).catch(() => undefined);
    if (again !== undefined && again.ino === st.ino && again.mtimeMs === st.mtimeMs) {
      await unlink(this.lockPath).catch(() => {});
    }
  }

  /** Removes the lock only if it is still ours (it may have been broken as stale meanwhile). */
  private async unlock(token: string): Promise<void> {
    const content = await readFile(this.lockPath, 'utf8').catch(() => undefined);
    if (content === token) await unlink(this.lockPath).catch(() => {});
  }
}
