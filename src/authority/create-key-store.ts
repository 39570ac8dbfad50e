/**
 * Builds the signing-key store the configuration asks for. It lives here, not in keys/, because
 * it joins three layers keys/ may not know: the configuration, and store/'s Redis connections.
 */
import type { Config } from '../config/config.js';
import { revocationRetentionMs } from '../config/derived-settings.js';
import { FileKeyStore } from '../keys/file-key-store.js';
import { KeyManager } from '../keys/key-manager.js';
import { configuredKeyEncryptionKeys } from '../keys/key-encryption-key.js';
import { KeySetCipher } from '../keys/key-set-cipher.js';
import type { KeyStore } from '../keys/key-store.js';
import { RedisKeyStore } from '../keys/redis-key-store.js';
import { ErrorCodes, TokenAuthorityError } from '../shared/errors.js';
import type { Clock } from '../shared/clock.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { RedisCommandClient } from '../store/redis-client.js';
import { redactUrl } from '../shared/redact-url.js';
import { parseRedisUrl } from '../store/redis-connection.js';

/** The operator's key-encryption key(s) from the configuration, or undefined if none is set. */
export async function keySetCipherFor(config: Config): Promise<KeySetCipher | undefined> {
  const keks = await configuredKeyEncryptionKeys(config);
  return keks === undefined ? undefined : new KeySetCipher(keks.current, keks.previous);
}

/**
 * The key store of TA_KEY_STORE: a RedisKeyStore on TA_REDIS_URL (sealed under the KEK), or a
 * FileKeyStore in TA_KEY_DIR (sealed if a KEK is set). A store found sealed under a previous KEK
 * is re-sealed under the current KEK here (not with `readOnly`, for commands that only look). A
 * keys.json in the clear while a KEK is set is refused, here and on every later read: only
 * {@link sealKeyFile} (`token-authority keys seal`) converts one. The KeyManager given the store
 * closes it when it stops.
 * @throws TokenAuthorityError ERR_CONFIG for an unreadable KEK file; ERR_KEY if the stored keys
 *   cannot be decrypted with the configured KEK(s) or are in the clear while a KEK is set;
 *   ERR_STORE_UNAVAILABLE if Redis does not answer.
 */
export async function createKeyStore(config: Config, logger: Logger, options: { readOnly?: boolean } = {}): Promise<KeyStore> {
  const log = logger.child({ component: 'key-store' });
  const cipher = await keySetCipherFor(config);
  if (config.keyStore === 'redis') {
    // The configuration guarantees both; checked again so a hand-built Config fails clearly.
    if (config.redisUrl === undefined || cipher === undefined) {
      throw new TokenAuthorityError(ErrorCodes.CONFIG, 'TA_KEY_STORE=redis needs TA_REDIS_URL and a key-encryption key');
    }
    const target = parseRedisUrl(config.redisUrl);
    const connection = new RedisCommandClient(target, {
      lazyConnect: true,
      commandTimeoutMs: config.redisCommandTimeoutMs,
      connectionName: 'token-authority-keys',
      label: 'Redis key store',
      closedMessage: 'the Redis key store is closed',
      logger: logger.child({ component: 'redis-key-store' }),
    });
    const store = new RedisKeyStore({ connection, cipher });
    try {
      if (!options.readOnly && (await store.reseal())) log.info({ key: store.key, kekId: cipher.kekId }, 're-encrypted the signing keys under the current key-encryption key');
    } catch (err) {
      await store.close();
      throw err;
    }
    log.info({ redis: redactUrl(config.redisUrl), key: store.key, kekId: cipher.kekId }, 'signing keys in Redis, encrypted under the key-encryption key');
    return store;
  }
  const store = new FileKeyStore(config.keyDir, cipher === undefined ? {} : { cipher });
  const outcome = options.readOnly ? 'unchanged' : await store.sealAtRest();
  if (outcome === 'resealed') log.info({ path: store.path, kekId: cipher?.kekId }, 're-encrypted the key file under the current key-encryption key');
  if (config.redisUrl !== undefined) {
    log.warn(
      { path: store.path },
      'signing keys are in a local file while sessions are in Redis: replicas on other hosts would not share them; set TA_KEY_STORE=redis to run replicas',
    );
  }
  return store;
}

/**
 * The one explicit migration of a plaintext keys.json to a sealed one (`token-authority keys
 * seal`): run once, by the operator, after setting a KEK for an existing file key store. Also
 * re-seals a file sealed under a previous KEK.
 * @throws TokenAuthorityError ERR_CONFIG without a KEK or with TA_KEY_STORE=redis.
 */
export async function sealKeyFile(config: Config): Promise<{ outcome: 'sealed' | 'resealed' | 'unchanged'; path: string; kekId: string }> {
  if (config.keyStore !== 'file') {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, 'keys seal works on the file key store (TA_KEY_STORE=file): keys in Redis are always encrypted');
  }
  const cipher = await keySetCipherFor(config);
  if (cipher === undefined) {
    throw new TokenAuthorityError(ErrorCodes.CONFIG, 'keys seal needs a key-encryption key: set TA_KEY_ENCRYPTION_KEY or TA_KEY_ENCRYPTION_KEY_FILE');
  }
  const store = new FileKeyStore(config.keyDir, { cipher });
  return { outcome: await store.sealAtRest({ migratePlaintext: true }), path: store.path, kekId: cipher.kekId };
}

/**
 * How a process uses the signing keys: `serve` signs and rotates on TA_KEY_ROTATION_INTERVAL (an
 * authority, or a worker); `follow` only reads, re-reading the store every second to follow
 * rotations made elsewhere (the cluster primary, which serves the JWKS); `command` is one operator
 * command (`token-authority keys rotate`): rotation on demand only, nothing logged.
 */
export type KeyManagerMode = 'serve' | 'follow' | 'command';

/**
 * The one place a KeyManager is built from the configuration: its store ({@link createKeyStore},
 * unless one is given), algorithm, rotation schedule and how long a retired key stays published
 * ({@link revocationRetentionMs}). The manager closes the store when it stops.
 */
export async function createKeyManager(
  config: Config,
  logger: Logger,
  mode: KeyManagerMode,
  overrides: { keyStore?: KeyStore; clock?: Clock } = {},
): Promise<KeyManager> {
  const log = mode === 'command' ? silentLogger : logger;
  const store = overrides.keyStore ?? (await createKeyStore(config, log, { readOnly: mode === 'follow' }));
  return new KeyManager({
    store,
    algorithm: config.keyAlgorithm,
    rotationIntervalMs: mode === 'serve' ? config.keyRotationIntervalMs : 0,
    retainMs: revocationRetentionMs(config),
    ...(mode === 'follow' ? { reloadIntervalMs: 1000 } : {}),
    ...(overrides.clock ? { clock: overrides.clock } : {}),
    ...(mode === 'command' ? {} : { logger }),
  });
}
