import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey } from '../../../src/keys/key-generator.js';
import { type KeySetDocument, type StoredKey } from '../../../src/keys/key-store.js';
import { FileKeyStore } from '../../../src/keys/file-key-store.js';
import { createKeyEncryptionKey, parseKeyEncryptionKey, readKeyEncryptionKeyFile } from '../../../src/keys/key-encryption-key.js';
import { KeySetCipher, SEALED_KEY_SET_FORMAT, type SealedKeySet } from '../../../src/keys/key-set-cipher.js';
import { ErrorCodes, isTokenAuthorityError } from '../../../src/shared/errors.js';
import { makeTempDir, removeTempDir } from '../keys/helpers.js';

const newKek = () => createKeyEncryptionKey(randomBytes(32));

async function generateDoc(version = 1): Promise<KeySetDocument> {
  const [a, n, r] = await Promise.all([generateSigningKey('ES256'), generateSigningKey('EdDSA'), generateSigningKey('RS256')]);
  const keys: StoredKey[] = [
    { ...a, state: 'active', createdAt: 1000, activatedAt: 2000 },
    { ...n, state: 'next', createdAt: 3000 },
    { ...r, state: 'retired', createdAt: 500, activatedAt: 600, retiredAt: 2000, removeAfter: 9000 },
  ];
  return { version, keys };
}

// Generated once, on first use: RSA key generation would dominate the run time otherwise.
let docs: Promise<[KeySetDocument, KeySetDocument]> | undefined;
async function sampleDoc(version = 1): Promise<KeySetDocument> {
  docs ??= Promise.all([generateDoc(), generateDoc()]);
  return structuredClone({ ...(await docs)[0], version });
}
async function otherDoc(version = 1): Promise<KeySetDocument> {
  docs ??= Promise.all([generateDoc(), generateDoc()]);
  return structuredClone({ ...(await docs)[1], version });
}

/** Every private member value of every key: none may appear in a sealed document. */
function privateValues(doc: KeySetDocument): string[] {
  return doc.keys.flatMap((k) => ['d', 'p', 'q', 'dp', 'dq', 'qi'].map((m) => (k.privateJwk as unknown as Record<string, string | undefined>)[m]).filter((v): v is string => v !== undefined));
}

function decryptError(pattern: RegExp = /cannot decrypt signing keys: wrong TA_KEY_ENCRYPTION_KEY\?/) {
  return (err: unknown) => {
    assert.ok(isTokenAuthorityError(err), `expected a TokenAuthorityError, got ${String(err)}`);
    assert.equal(err.code, ErrorCodes.KEY);
    assert.match(err.message, pattern);
    return true;
  };
}

describe('key-encryption key (KEK) parsing', () => {
  const raw = randomBytes(32);

  it('accepts 64 hex digits, base64 and base64url (padded or not), all the same key', () => {
    const forms = [raw.toString('hex'), raw.toString('base64'), raw.toString('base64url'), ` ${raw.toString('base64')}\n`];
    const ids = forms.map((f) => parseKeyEncryptionKey(f).id);
    assert.equal(new Set(ids).size, 1);
    assert.match(ids[0]!, /^[0-9a-f]{16}$/);
    assert.notEqual(parseKeyEncryptionKey(randomBytes(32).toString('hex')).id, ids[0], 'another key has another id');
  });

  it('refuses wrong lengths, other encodings and placeholders without echoing the input', () => {
    for (const bad of [randomBytes(16).toString('hex'), randomBytes(31).toString('base64'), 'correct horse battery staple', Buffer.alloc(32).toString('base64'), 'A'.repeat(64)]) {
      assert.throws(() => parseKeyEncryptionKey(bad), (err: Error) => !err.message.includes(bad.trim()) && /32|placeholder/.test(err.message), bad);
    }
  });

  it('keeps the raw bytes in a KeyObject, so printing the KEK shows no key', () => {
    const kek = parseKeyEncryptionKey(raw.toString('hex'));
    const printed = `${JSON.stringify(kek)} ${String(kek.key)}`;
    assert.ok(!printed.includes(raw.toString('hex')) && !printed.includes(raw.toString('base64')));
  });

  it('reads a KEK file only if it is private (0600)', async () => {
    const dir = await makeTempDir();
    try {
      const file = join(dir, 'kek');
      await writeFile(file, `${raw.toString('base64')}\n`, { mode: 0o600 });
      assert.equal((await readKeyEncryptionKeyFile(file)).id, parseKeyEncryptionKey(raw.toString('hex')).id);
      await chmod(file, 0o644);
      await assert.rejects(readKeyEncryptionKeyFile(file), (err: unknown) => isTokenAuthorityError(err) && err.code === ErrorCodes.CONFIG && /accessible by group or others \(mode 0644\); run: chmod 600/.test(err.message));
      await assert.rejects(readKeyEncryptionKeyFile(join(dir, 'missing')), /cannot be read \(ENOENT\)/);
    } finally {
      await removeTempDir(dir);
    }
  });
});

describe('KeySetCipher (AES-256-GCM envelope of the private keys)', () => {
  let doc: KeySetDocument;
  before(async () => {
    doc = await sampleDoc(7);
  });

  it('round-trips a document of every algorithm exactly', () => {
    const cipher = new KeySetCipher(newKek());
    const sealed = JSON.parse(JSON.stringify(cipher.seal(doc))) as unknown;
    assert.deepEqual(cipher.open(sealed, 'test'), doc);
  });

  it('leaves no private key material in the clear, and records format, version and KEK id', () => {
    const kek = newKek();
    const sealed = new KeySetCipher(kek).seal(doc);
    const text = JSON.stringify(sealed);
    for (const v of privateValues(doc)) assert.ok(!text.includes(v), 'a private member value appears in the sealed document');
    assert.ok(!/"privateJwk"/.test(text));
    assert.equal(sealed.format, SEALED_KEY_SET_FORMAT);
    assert.equal(sealed.version, 7);
    assert.equal(sealed.kek, kek.id);
    for (const k of sealed.keys) {
      assert.equal(k.sealedPrivateJwk.enc, 'A256GCM');
      assert.equal(k.sealedPrivateJwk.kek, kek.id);
      assert.equal(Buffer.from(k.sealedPrivateJwk.iv, 'base64url').length, 12, '96-bit IV');
      assert.equal(Buffer.from(k.sealedPrivateJwk.tag, 'base64url').length, 16);
    }
    assert.deepEqual(sealed.keys.map((k) => k.publicJwk), doc.keys.map((k) => k.publicJwk), 'public keys stay readable');
  });

  it('uses a fresh random IV for every encryption', () => {
    const cipher = new KeySetCipher(newKek());
    const ivs = Array.from({ length: 20 }, () => cipher.seal(doc).keys.map((k) => k.sealedPrivateJwk.iv)).flat();
    assert.equal(new Set(ivs).size, ivs.length);
  });

  it('refuses another KEK, naming both KEK ids', () => {
    const a = newKek();
    const b = newKek();
    const sealed = new KeySetCipher(a).seal(doc);
    assert.throws(() => new KeySetCipher(b).open(sealed, 'Redis key k'), decryptError(new RegExp(`wrong TA_KEY_ENCRYPTION_KEY\\? The key set in Redis key k was encrypted under key-encryption key ${a.id}, but the configured key is ${b.id}`)));
  });

  it('refuses a KEK that claims the right id but is another key (authentication fails)', () => {
    const a = newKek();
    const impostor = { id: a.id, key: newKek().key };
    assert.throws(() => new KeySetCipher(impostor).open(new KeySetCipher(a).seal(doc), 'x'), decryptError(/Authentication failed for key/));
  });

  describe('binds every public member to its private key (AAD)', () => {
    const cases: Array<[string, (s: SealedKeySet, other: SealedKeySet) => void]> = [
      ['swaps in another public key, so tokens of an attacker\'s key would verify', (s, o) => { s.keys[2]!.publicJwk = { ...o.keys[2]!.publicJwk, kid: s.keys[2]!.kid }; }],
      ['changes a key\'s state', (s) => { s.keys[2]!.state = 'active'; s.keys[0]!.state = 'retired'; }],
      ['extends a retired key\'s removeAfter', (s) => { s.keys[2]!.removeAfter = 99_999_999; }],
      ['renames a kid', (s) => { s.keys[1]!.kid = 'renamed'; s.keys[1]!.publicJwk.kid = 'renamed'; }],
      ['moves a wrapped key into another document version', (s) => { s.version = 8; }],
      ['transplants a wrapped private key from another document', (s, o) => { s.keys[0]!.sealedPrivateJwk = o.keys[0]!.sealedPrivateJwk; }],
      ['flips a ciphertext bit', (s) => { const ct = Buffer.from(s.keys[0]!.sealedPrivateJwk.ct, 'base64url'); ct[0] = ct[0]! ^ 1; s.keys[0]!.sealedPrivateJwk.ct = ct.toString('base64url'); }],
      ['adds a member to a public JWK', (s) => { (s.keys[0]!.publicJwk as unknown as Record<string, string>).x5u = 'https://evil.example'; }],
    ];
    for (const [what, tamper] of cases) {
      it(`refuses a document whose writer ${what}`, async () => {
        const kek = newKek();
        const cipher = new KeySetCipher(kek);
        const sealed = structuredClone(cipher.seal(doc));
        const other = cipher.seal(await otherDoc(7));
        tamper(sealed, other);
        assert.throws(() => cipher.open(JSON.parse(JSON.stringify(sealed)), 'x'), decryptError(/cannot decrypt signing keys.*(Authentication failed|was sealed with another key, or was modified)/));
      });
    }
  });

  it('refuses a key planted next to genuine ones', async () => {
    const cipher = new KeySetCipher(newKek());
    const sealed = cipher.seal(doc);
    const attacker = new KeySetCipher(newKek()).seal(await otherDoc(7));
    sealed.keys.push({ ...attacker.keys[0]!, kid: 'planted', state: 'retired', retiredAt: 1, removeAfter: 2, publicJwk: { ...attacker.keys[0]!.publicJwk, kid: 'planted' } });
    assert.throws(() => cipher.open(sealed, 'x'), decryptError());
  });

  it('opens documents sealed under a previous KEK and says when they need re-sealing', () => {
    const old = newKek();
    const current = newKek();
    const sealedOld = new KeySetCipher(old).seal(doc);
    const rotating = new KeySetCipher(current, [old]);
    assert.deepEqual(rotating.open(sealedOld, 'x'), doc);
    assert.equal(rotating.needsReseal(sealedOld), true);
    assert.equal(rotating.needsReseal(rotating.seal(doc)), false);
    assert.equal(rotating.seal(doc).kek, current.id, 'new documents are sealed under the current KEK');
  });

  it('reports a malformed envelope by member, not as a decryption failure', () => {
    const cipher = new KeySetCipher(newKek());
    const sealed = cipher.seal(doc) as unknown as { keys: Array<Record<string, unknown>> };
    delete sealed.keys[1]!.sealedPrivateJwk;
    assert.throws(() => cipher.open(sealed, 'x'), decryptError(/invalid sealed key set in x: keys\[1\]\.sealedPrivateJwk must be/));
    assert.throws(() => cipher.open({ version: 1, keys: [] }, 'x'), decryptError(/format must be "ta-keyset-sealed\/1"/));
  });
});

describe('FileKeyStore with a key-encryption key', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('writes keys.json sealed and reads it back; compare-and-set still holds', async () => {
    const doc = await sampleDoc(1);
    const store = new FileKeyStore(dir, { cipher: new KeySetCipher(newKek()) });
    assert.equal(await store.save(doc, 0), true);
    const text = await readFile(store.path, 'utf8');
    for (const v of privateValues(doc)) assert.ok(!text.includes(v), 'private material on disk in the clear');
    assert.match(text, /"format": "ta-keyset-sealed\/1"/);
    assert.deepEqual(await store.load(), doc);
    assert.equal(await store.save(doc, 0), false, 'a stale expected version still loses');
    assert.equal(await store.save({ ...doc, version: 2 }, 1), true);
  });

  it('refuses a plaintext keys.json once a KEK is configured, and seals it in place only when asked, keeping its version', async () => {
    const doc = await sampleDoc(4);
    await new FileKeyStore(dir).save({ ...doc, version: 1 }, 0);
    const plain = new FileKeyStore(dir);
    const cipher = new KeySetCipher(newKek());
    const sealedStore = new FileKeyStore(dir, { cipher });
    await assert.rejects(sealedStore.load(), decryptError(/holds private keys in the clear, but a key-encryption key is configured/));
    await assert.rejects(sealedStore.sealAtRest(), decryptError(/in the clear.*token-authority keys seal/));
    assert.equal(await sealedStore.sealAtRest({ migratePlaintext: true }), 'sealed');
    assert.equal(await sealedStore.sealAtRest({ migratePlaintext: true }), 'unchanged');
    const text = await readFile(sealedStore.path, 'utf8');
    for (const v of privateValues(doc)) assert.ok(!text.includes(v));
    assert.equal((await sealedStore.load())?.version, 1);
    await assert.rejects(plain.load(), decryptError(new RegExp(`is encrypted under key-encryption key ${cipher.kekId}; set TA_KEY_ENCRYPTION_KEY`)));
  });

  it('re-seals under the current KEK after a KEK rotation', async () => {
    const old = newKek();
    const current = newKek();
    await new FileKeyStore(dir, { cipher: new KeySetCipher(old) }).save(await sampleDoc(1), 0);
    const rotated = new FileKeyStore(dir, { cipher: new KeySetCipher(current, [old]) });
    assert.equal(await rotated.sealAtRest(), 'resealed');
    await assert.rejects(new FileKeyStore(dir, { cipher: new KeySetCipher(old) }).load(), decryptError(new RegExp(`encrypted under key-encryption key ${current.id}`)));
    assert.equal((await new FileKeyStore(dir, { cipher: new KeySetCipher(current) }).load())?.version, 1);
  });
});
