/**
 * The key set in Redis, shared by every authority replica (and the operator CLI) on that Redis.
 *
 * One hash, `<prefix>{ta}:keys`, fields `version` (the document version) and `doc` (the sealed
 * document, JSON). Its `{ta}` hash tag puts it in the slot of every other token-authority key, so
 * on a Cluster it lives on the same shard. A save is a compare-and-set in one Lua script: the
 * stored version must still be the expected one. Private keys are always sealed under the
 * operator's key-encryption key (key-set-cipher.ts); a document that is not sealed is refused,
 * since anyone able to write to Redis could otherwise plant a signing key.
 *
 * This module takes a ready-made connection instead of a URL so that keys/ stays independent of
 * store/ (the layering rule); the composition root builds it from TA_REDIS_URL as a
 * `RedisCommandClient` (store/redis-client.ts), which carries the Redis failure contract.
 */
import type { Cluster, Redis } from 'ioredis';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import { KeySetCipher, isSealedKeySet } from './key-set-cipher.js';
import { assertNextVersion } from './key-set-document.js';
import type { KeySetDocument, KeyStore } from './key-store.js';

/** Options of {@link RedisKeyStore}. */
export interface RedisKeyStoreOptions {
  /** The connection (single server, Sentinel or Cluster). The store owns it: close() closes it. */
  connection: RedisKeyStoreConnection;
  /** Seals private keys before they reach Redis. */
  cipher: KeySetCipher;
  /** Same prefix as the token store's (default `ta:v1:`); `{ta}:keys` is appended. */
  keyPrefix?: string;
}

/**
 * What the key store needs of its connection: store/redis-client.ts's `RedisCommandClient`
 * (deadlines, no queue or retries, ERR_STORE_UNAVAILABLE without arguments, outages logged once).
 */
export interface RedisKeyStoreConnection {
  readonly client: Redis | Cluster;
  /** Runs one command under the failure contract. */
  run<T>(op: string, command: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The key's name after the prefix. */
export const REDIS_KEY_SET_SUFFIX = '{ta}:keys';

const CAS_SCRIPT = `
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'doc', ARGV[3])
return 1
`;

type CasCommand = (key: string, expected: number, next: number, doc: string) => Promise<number>;

/** A {@link KeyStore} in Redis with compare-and-set saves and sealed private keys. */
export class RedisKeyStore implements KeyStore {
  /** The Redis key holding the key set. */
  readonly key: string;
  private readonly connection: RedisKeyStoreConnection;
  private readonly client: Redis | Cluster;
  private readonly cipher: KeySetCipher;

  constructor(options: RedisKeyStoreOptions) {
    const prefix = options.keyPrefix ?? 'ta:v1:';
    if (/[{}]/.test(prefix)) throw new TokenAuthorityError(ErrorCodes.CONFIG, 'keyPrefix must not contain "{" or "}"');
    if (!(options.cipher instanceof KeySetCipher)) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, 'RedisKeyStore needs a cipher: private keys never reach Redis in the clear');
    }
    this.key = `${prefix}${REDIS_KEY_SET_SUFFIX}`;
    this.connection = options.connection;
    this.client = options.connection.client;
    this.cipher = options.cipher;
    this.client.defineCommand('taKeySetCas', { numberOfKeys: 1, lua: CAS_SCRIPT });
  }

  /**
   * @throws TokenAuthorityError ERR_KEY if the stored set is not sealed, is sealed under another
   *   KEK ("cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY?") or is invalid;
   *   ERR_STORE_UNAVAILABLE if Redis does not answer.
   */
  async load(): Promise<KeySetDocument | undefined> {
    const [version, text] = await this.read('load');
    return text === null ? undefined : this.decode(version, text).doc;
  }

  async save(doc: KeySetDocument, expectedVersion: number): Promise<boolean> {
    assertNextVersion(doc, expectedVersion);
    const sealed = JSON.stringify(this.cipher.seal(doc));
    const cas = (this.client as unknown as { taKeySetCas: CasCommand }).taKeySetCas;
    const written = await this.run('save', () => cas.call(this.client, this.key, expectedVersion, doc.version, sealed));
    return Number(written) === 1;
  }

  /**
   * Re-seals a key set wrapped under a previous KEK under the current one (KEK rotation), keeping
   * its version. A no-op when it is already current, absent, or changed meanwhile (the next save
   * seals under the current KEK anyway).
   * @returns true if it rewrote the key set.
   */
  async reseal(): Promise<boolean> {
    const [version, text] = await this.read('reseal');
    if (text === null) return false;
    const { doc, stored } = this.decode(version, text);
    if (!this.cipher.needsReseal(stored)) return false;
    const sealed = JSON.stringify(this.cipher.seal(doc));
    const cas = (this.client as unknown as { taKeySetCas: CasCommand }).taKeySetCas;
    return Number(await this.run('reseal', () => cas.call(this.client, this.key, doc.version, doc.version, sealed))) === 1;
  }

  private async read(op: string): Promise<[string | null, string | null]> {
    const [version, text] = await this.run(op, () => this.client.hmget(this.key, 'version', 'doc'));
    return [version ?? null, text ?? null];
  }

  private decode(version: string | null, text: string): { doc: KeySetDocument; stored: unknown } {
    let stored: unknown;
    try {
      stored = JSON.parse(text);
    } catch {
      throw new TokenAuthorityError(ErrorCodes.KEY, `the key set in Redis key ${this.key} is corrupt: not valid JSON`);
    }
    if (!isSealedKeySet(stored)) {
      throw new TokenAuthorityError(
        ErrorCodes.KEY,
        `the key set in Redis key ${this.key} is not encrypted under a key-encryption key; refusing it, since anyone ` +
          'with write access to Redis could have planted it. Delete the key to start with new keys.',
      );
    }
    const doc = this.cipher.open(stored, `Redis key ${this.key}`);
    if (String(doc.version) !== version) {
      throw new TokenAuthorityError(ErrorCodes.KEY, `the key set in Redis key ${this.key} is inconsistent: version field ${String(version)}, document version ${doc.version}`);
    }
    return { doc, stored };
  }

  /** Releases the connection. */
  close(): Promise<void> {
    return this.connection.close();
  }

  private run<T>(op: string, command: () => Promise<T>): Promise<T> {
    return this.connection.run(op, command);
  }
}
