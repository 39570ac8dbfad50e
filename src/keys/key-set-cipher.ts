/**
 * Envelope encryption of a key-set document for storage outside the process (Redis, or keys.json
 * when a KEK is configured).
 *
 * Every private JWK is encrypted with AES-256-GCM under the operator's key-encryption key, with a
 * fresh random 96-bit IV per encryption (every save re-encrypts every key, so an IV is never reused
 * under one KEK in practice: 2^-32 collision odds only after ~2^32 encryptions). The public parts
 * stay readable, so an operator can inspect the key set with redis-cli, but they are not trusted:
 * the additional authenticated data of each key binds
 *   format, KEK id, document version, kid, alg, state, createdAt, activatedAt, retiredAt,
 *   removeAfter and every member of the public JWK,
 * so a writer without the KEK cannot pair a wrapped private key with another public key (which
 * would make verifiers accept tokens it signed), change a key's state or times, plant a key of its
 * own, or move a wrapped key into another document version. What it can still do is delete the
 * document or replay an older one whole; both are visible (the version goes back or keys vanish)
 * and the KeyManager logs the former.
 *
 * Stored form (JSON):
 * ```
 * { "format": "ta-keyset-sealed/1", "version": 7, "kek": "<KEK id>",
 *   "keys": [ { "kid", "alg", "state", "createdAt", "activatedAt"?, "retiredAt"?, "removeAfter"?,
 *               "publicJwk": {…},
 *               "sealedPrivateJwk": { "enc": "A256GCM", "kek": "<KEK id>", "iv", "ct", "tag" } } ] }
 * ```
 * The KEK id is recorded per key, so a KEK can be rotated: configure the new KEK and keep the old
 * one as a previous KEK until the next save has re-encrypted everything under the new one.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { KeyEncryptionKey } from './key-encryption-key.js';
import { parseKeySetDocument } from './key-set-document.js';
import type { KeySetDocument, PrivateJwk, StoredKey } from './key-store.js';

/** The `format` member of a sealed key set. */
export const SEALED_KEY_SET_FORMAT = 'ta-keyset-sealed/1';

const ENC = 'A256GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What a wrapped private JWK looks like in storage. */
export interface SealedPrivateJwk {
  enc: typeof ENC;
  kek: string;
  iv: string;
  ct: string;
  tag: string;
}

/** A stored key with its private JWK wrapped. */
export type SealedStoredKey = Omit<StoredKey, 'privateJwk'> & { sealedPrivateJwk: SealedPrivateJwk };

/** A key-set document as stored: private keys wrapped. */
export interface SealedKeySet {
  format: typeof SEALED_KEY_SET_FORMAT;
  version: number;
  /** The KEK that sealed this document (each key records its own too). */
  kek: string;
  keys: SealedStoredKey[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True if `value` claims to be a sealed key set (whether or not it is a valid one). */
export function isSealedKeySet(value: unknown): boolean {
  return isRecord(value) && value.format === SEALED_KEY_SET_FORMAT;
}

/** Members in a fixed order, so seal and open compute byte-identical AAD from equal values. */
function canonical(record: Record<string, unknown>): Array<[string, unknown]> {
  return Object.keys(record)
    .sort()
    .map((k) => [k, record[k]]);
}

function aadOf(kekId: string, version: unknown, key: Record<string, unknown>): Buffer {
  const publicJwk = isRecord(key.publicJwk) ? canonical(key.publicJwk) : key.publicJwk ?? null;
  return Buffer.from(
    JSON.stringify([
      SEALED_KEY_SET_FORMAT,
      kekId,
      version,
      key.kid,
      key.alg,
      key.state,
      key.createdAt,
      key.activatedAt ?? null,
      key.retiredAt ?? null,
      key.removeAfter ?? null,
      publicJwk,
    ]),
    'utf8',
  );
}

/**
 * Seals and opens key-set documents under a KEK. Seals with `current`; opens documents sealed
 * under `current` or any of `previous` (for KEK rotation).
 */
export class KeySetCipher {
  private readonly keks: ReadonlyMap<string, KeyEncryptionKey>;

  constructor(
    private readonly current: KeyEncryptionKey,
    previous: readonly KeyEncryptionKey[] = [],
  ) {
    this.keks = new Map([current, ...previous].map((k) => [k.id, k]));
  }

  /** The id of the KEK new documents are sealed under. */
  get kekId(): string {
    return this.current.id;
  }

  /** True if a sealed key set has keys wrapped under another KEK than the current one. */
  needsReseal(value: unknown): boolean {
    if (!isRecord(value) || !Array.isArray(value.keys)) return false;
    return value.keys.some((k: unknown) => !isRecord(k) || !isRecord(k.sealedPrivateJwk) || k.sealedPrivateJwk.kek !== this.current.id);
  }

  /** Wraps every private JWK of `doc`. The result holds no private key material in the clear. */
  seal(doc: KeySetDocument): SealedKeySet {
    const kek = this.current;
    const keys = doc.keys.map((key): SealedStoredKey => {
      const { privateJwk, ...meta } = key;
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', kek.key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aadOf(kek.id, doc.version, meta as unknown as Record<string, unknown>));
      const ct = Buffer.concat([cipher.update(JSON.stringify(privateJwk), 'utf8'), cipher.final()]);
      return {
        ...meta,
        sealedPrivateJwk: {
          enc: ENC,
          kek: kek.id,
          iv: iv.toString('base64url'),
          ct: ct.toString('base64url'),
          tag: cipher.getAuthTag().toString('base64url'),
        },
      };
    });
    return { format: SEALED_KEY_SET_FORMAT, version: doc.version, kek: kek.id, keys };
  }

  /**
   * Unwraps a sealed key set and validates the result like any stored document.
   * @param where names the store in messages (e.g. the Redis key or file path).
   * @throws TokenAuthorityError ERR_KEY: "cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY?"
   *   when the KEK is not the one the set was sealed under or authentication fails; otherwise
   *   naming the malformed member. Messages never contain key material.
   */
  open(value: unknown, where: string): KeySetDocument {
    const bad = (problem: string) => new TokenAuthorityError(ErrorCodes.KEY, `invalid sealed key set in ${where}: ${problem}`);
    if (!isRecord(value) || value.format !== SEALED_KEY_SET_FORMAT) throw bad(`format must be "${SEALED_KEY_SET_FORMAT}"`);
    if (!Array.isArray(value.keys)) throw bad('keys must be an array');
    const keys = value.keys.map((raw: unknown, i): unknown => {
      if (!isRecord(raw)) throw bad(`keys[${i}] must be an object`);
      const { sealedPrivateJwk: sealed, ...meta } = raw;
      if (
        !isRecord(sealed) ||
        sealed.enc !== ENC ||
        ![sealed.kek, sealed.iv, sealed.ct, sealed.tag].every((s) => typeof s === 'string')
      ) {
        throw bad(`keys[${i}].sealedPrivateJwk must be {enc: "${ENC}", kek, iv, ct, tag}`);
      }
      const kekId = sealed.kek as string;
      const kek = this.keks.get(kekId);
      if (kek === undefined) {
        throw new TokenAuthorityError(
          ErrorCodes.KEY,
          `cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY? The key set in ${where} was encrypted under ` +
            `key-encryption key ${kekId}, but the configured key${this.keks.size > 1 ? 's are' : ' is'} ${[...this.keks.keys()].join(', ')}`,
        );
      }
      const iv = Buffer.from(sealed.iv as string, 'base64url');
      const tag = Buffer.from(sealed.tag as string, 'base64url');
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw bad(`keys[${i}].sealedPrivateJwk has a malformed iv or tag`);
      let plain: string;
      try {
        const decipher = createDecipheriv('aes-256-gcm', kek.key, iv, { authTagLength: TAG_BYTES });
        decipher.setAAD(aadOf(kekId, value.version, meta));
        decipher.setAuthTag(tag);
        plain = Buffer.concat([decipher.update(Buffer.from(sealed.ct as string, 'base64url')), decipher.final()]).toString('utf8');
      } catch {
        throw new TokenAuthorityError(
          ErrorCodes.KEY,
          `cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY? Authentication failed for key ${String(meta.kid)} ` +
            `under key-encryption key ${kekId}: the key set in ${where} was sealed with another key, or was modified`,
        );
      }
      let privateJwk: PrivateJwk;
      try {
        privateJwk = JSON.parse(plain) as PrivateJwk;
      } catch {
        // Authenticated yet not JSON: a writer holding the KEK wrote garbage. Never echo it.
        throw bad(`keys[${i}] decrypts to something that is not a JWK`);
      }
      return { ...meta, privateJwk };
    });
    return parseKeySetDocument({ version: value.version, keys }, where);
  }
}
