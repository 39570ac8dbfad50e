/**
 * The operator's key-encryption key (KEK): 32 random bytes that wrap every private signing key
 * before it leaves the process for a shared store. It is held as a KeyObject, so the raw bytes
 * never sit in a plain Buffer that a stray log line or error could print.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import { ErrorCodes, TokenAuthorityError, errorMessage } from '../shared/errors.js';
import { privateFileProblem } from '../shared/file-permissions.js';

/** AES-256: the KEK is exactly this many bytes. */
export const KEK_BYTES = 32;

/** A key-encryption key and its public identifier. */
export interface KeyEncryptionKey {
  /**
   * 16 hex characters derived from the key (HMAC-SHA256 of a fixed label), recorded beside every
   * wrapped key: it says which KEK a key set needs without revealing anything about the KEK.
   */
  readonly id: string;
  readonly key: KeyObject;
}

/**
 * Decodes a KEK written as 64 hex digits or as base64/base64url (43 or 44 characters), the output
 * of `openssl rand -hex 32` or `openssl rand -base64 32`.
 * @throws TokenAuthorityError ERR_CONFIG with a message that never contains the input (it completes
 *   a sentence about the setting: "TA_KEY_ENCRYPTION_KEY <message>").
 */
const kekError = (problem: string) => new TokenAuthorityError(ErrorCodes.CONFIG, problem);

export function parseKeyEncryptionKey(text: string): KeyEncryptionKey {
  const t = text.trim();
  let bytes: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    bytes = Buffer.from(t, 'hex');
  } else if (/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(t)) {
    bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  } else {
    throw kekError(`must be ${KEK_BYTES} random bytes as 64 hex digits or base64 (generate one with: openssl rand -base64 32)`);
  }
  if (bytes.length !== KEK_BYTES) throw kekError(`must decode to exactly ${KEK_BYTES} bytes`);
  if (bytes.every((b) => b === bytes[0])) throw kekError('is a placeholder (every byte the same), not a random key');
  return createKeyEncryptionKey(bytes);
}

/** Wraps raw key bytes; the caller should drop its own copy. */
export function createKeyEncryptionKey(bytes: Uint8Array): KeyEncryptionKey {
  if (bytes.length !== KEK_BYTES) {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, `a key-encryption key must be ${KEK_BYTES} bytes`);
  }
  const key = createSecretKey(Buffer.from(bytes));
  const id = createHmac('sha256', key).update('token-authority key-encryption-key id v1').digest('hex').slice(0, 16);
  return Object.freeze({ id, key });
}

/**
 * Reads a KEK from a file holding it as hex or base64 (surrounding whitespace ignored). The file,
 * like keys.json, must not be accessible by group or others.
 * @throws TokenAuthorityError ERR_CONFIG naming the file and what is wrong with it.
 */
export async function readKeyEncryptionKeyFile(path: string): Promise<KeyEncryptionKey> {
  const fail = (problem: string) =>
    new TokenAuthorityError(ErrorCodes.CONFIG, `TA_KEY_ENCRYPTION_KEY_FILE ${path}: ${problem}`);
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const st: Stats = await handle.stat();
      if (!st.isFile()) throw fail('is not a regular file');
      const problem = privateFileProblem(st.mode, path, 'the key-encryption key');
      if (problem !== undefined) throw fail(problem);
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (err instanceof TokenAuthorityError) throw err;
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : String(err);
    throw fail(`cannot be read (${code})`);
  }
  try {
    return parseKeyEncryptionKey(text);
  } catch (err) {
    throw fail(errorMessage(err));
  }
}

/** The KEK settings (TA_KEY_ENCRYPTION_KEY, TA_KEY_ENCRYPTION_KEY_FILE, TA_KEY_ENCRYPTION_KEY_PREVIOUS). */
export interface KeyEncryptionKeySettings {
  keyEncryptionKey?: KeyEncryptionKey;
  keyEncryptionKeyFile?: string;
  keyEncryptionKeyPrevious?: readonly KeyEncryptionKey[];
}

/**
 * The operator's key-encryption key, from TA_KEY_ENCRYPTION_KEY or else the file of
 * TA_KEY_ENCRYPTION_KEY_FILE (the configuration refuses both at once), with the former keys still
 * accepted for decryption; undefined if none is set. The one place either is read.
 * @throws TokenAuthorityError ERR_CONFIG for an unreadable or non-private KEK file.
 */
export async function configuredKeyEncryptionKeys(settings: KeyEncryptionKeySettings): Promise<{ current: KeyEncryptionKey; previous: readonly KeyEncryptionKey[] } | undefined> {
  let current = settings.keyEncryptionKey;
  if (current === undefined && settings.keyEncryptionKeyFile !== undefined) current = await readKeyEncryptionKeyFile(settings.keyEncryptionKeyFile);
  if (current === undefined) return undefined;
  return { current, previous: settings.keyEncryptionKeyPrevious ?? [] };
}
