import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../src/config/config.js';
import { parseKeyEncryptionKey } from '../../../src/keys/key-encryption-key.js';
import { configProblem } from '../../helpers/config-problem.js';

const KEK = randomBytes(32).toString('base64');

function authority(env: Record<string, string>) {
  return loadConfig('authority', { env });
}

describe('configuration of the shared key store and Redis topologies', () => {
  it('defaults to the file key store without a KEK', () => {
    const c = authority({});
    assert.equal(c.keyStore, 'file');
    assert.equal(c.keyEncryptionKey, undefined);
  });

  it('accepts TA_KEY_STORE=redis with TA_REDIS_URL and a KEK, parsed to its id', () => {
    const c = authority({ TA_KEY_STORE: 'redis', TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_KEY_ENCRYPTION_KEY: KEK });
    assert.equal(c.keyStore, 'redis');
    assert.equal(c.keyEncryptionKey?.id, parseKeyEncryptionKey(KEK).id);
    const f = authority({ TA_KEY_STORE: 'redis', TA_REDIS_URL: 'redis://127.0.0.1:6379', TA_KEY_ENCRYPTION_KEY_FILE: '/run/secrets/kek' });
    assert.equal(f.keyEncryptionKeyFile, '/run/secrets/kek');
  });

  it('says what TA_KEY_STORE=redis is missing: the Redis URL and the KEK', () => {
    const message = configProblem({ TA_KEY_STORE: 'redis' });
    assert.match(message, /2 problems/);
    assert.match(message, /TA_KEY_STORE \(--key-store\): redis keeps the signing keys in the Redis of TA_REDIS_URL, which is not set/);
    assert.match(message, /TA_KEY_STORE \(--key-store\): redis needs a key-encryption key, so that no private key sits in Redis in the clear: set TA_KEY_ENCRYPTION_KEY .*openssl rand -base64 32.* or TA_KEY_ENCRYPTION_KEY_FILE/);
  });

  it('refuses both KEK sources at once, and previous KEKs without a current one', () => {
    assert.match(configProblem({ TA_KEY_ENCRYPTION_KEY: KEK, TA_KEY_ENCRYPTION_KEY_FILE: '/k' }), /TA_KEY_ENCRYPTION_KEY_FILE \(--key-encryption-key-file\): set either TA_KEY_ENCRYPTION_KEY or TA_KEY_ENCRYPTION_KEY_FILE, not both/);
    assert.match(configProblem({ TA_KEY_ENCRYPTION_KEY_PREVIOUS: KEK }), /TA_KEY_ENCRYPTION_KEY_PREVIOUS .*need a current one/);
  });

  it('names a bad KEK without echoing it', () => {
    const bad = 'not-a-real-key-but-secret-anyway';
    const message = configProblem({ TA_KEY_ENCRYPTION_KEY: bad });
    assert.match(message, /TA_KEY_ENCRYPTION_KEY \(--key-encryption-key\): must be 32 random bytes/);
    assert.ok(!message.includes(bad));
    const previous = configProblem({ TA_KEY_ENCRYPTION_KEY: KEK, TA_KEY_ENCRYPTION_KEY_PREVIOUS: `${randomBytes(32).toString('hex')},${bad}` });
    assert.match(previous, /entry 2 must be 32 random bytes/);
    assert.ok(!previous.includes(bad));
  });

  it('parses a list of previous KEKs', () => {
    const old1 = randomBytes(32).toString('hex');
    const old2 = randomBytes(32).toString('base64url');
    const c = authority({ TA_KEY_ENCRYPTION_KEY: KEK, TA_KEY_ENCRYPTION_KEY_PREVIOUS: ` ${old1} , ${old2} ` });
    assert.deepEqual(c.keyEncryptionKeyPrevious?.map((k) => k.id), [parseKeyEncryptionKey(old1).id, parseKeyEncryptionKey(old2).id]);
  });

  it('accepts every Redis URL form, for the authority and the sidecar alike', () => {
    for (const url of ['redis://h:1/0', 'rediss://u:p@h', 'redis-sentinel://s1:26379,s2:26379/mymaster', 'rediss-sentinel://s1/m?sentinelPassword=x', 'redis-cluster://a:7000,b:7001', 'rediss-cluster://a:7000']) {
      assert.equal(authority({ TA_REDIS_URL: url }).redisUrl, url);
      const sidecar = loadConfig('sidecar', { env: { TA_REDIS_URL: url, TA_AUTHORITY_URL: 'http://a:8080', TA_ISSUER: 'https://i', TA_AUDIENCE: 'orders' } });
      assert.equal(sidecar.redisUrl, url);
    }
  });

  it('reports a bad Redis URL with the reason and without its password', () => {
    const message = configProblem({ TA_REDIS_URL: 'redis-sentinel://u:hunter2@s1,s2' });
    assert.match(message, /TA_REDIS_URL \(--redis-url\): invalid Redis url "redis-sentinel:\/\/u:\*\*\*@s1,s2": names no master/);
    assert.ok(!message.includes('hunter2'));
  });
});
